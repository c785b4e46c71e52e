"""Running service calls in real threads that start together, each thread with its own database connection."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from django.db import connections
from django.db.models import Sum

from core.errors import DomainError
from inventory.models import Allotment, Departure, Hold
from tenants.context import tenant_context

THREADS = 32  # ≥ 32 as asked, and few enough to share the server's 100 connections with parallel test runs


def run_together(work: Callable[[int], list[object]], threads: int = THREADS) -> list[object]:
    """Run ``work(thread_index)`` in ``threads`` threads released at once by a barrier; returns every outcome the
    calls reported (a value, or the exception raised)."""
    barrier = threading.Barrier(threads)
    outcomes: list[list[object]] = [[] for _ in range(threads)]

    def body(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = work(index)
        except BaseException as error:  # the test inspects it
            outcomes[index] = [error]
        finally:
            connections.close_all()

    pool = [threading.Thread(target=body, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in pool), "a racing thread did not finish"
    return [outcome for per_thread in outcomes for outcome in per_thread]


def attempt(tenant, call: Callable[[], object]) -> object:
    """One call in its own tenant transaction: its result, or the DomainError's code. Anything else (an
    IntegrityError, a deadlock) is returned as the exception itself, which the tests reject."""
    try:
        with tenant_context(tenant):
            return call()
    except DomainError as error:
        return error.code
    except Exception as error:
        return error


def kinds(outcomes: list[object]) -> Counter:
    return Counter(
        "hold"
        if isinstance(outcome, Hold)
        else outcome
        if isinstance(outcome, str)
        else type(outcome).__name__
        for outcome in outcomes
    )


def unexpected(outcomes: list[object]) -> list[object]:
    return [outcome for outcome in outcomes if isinstance(outcome, BaseException)]


def assert_consistent(tenant, departure: Departure) -> Departure:
    """The departure's counters agree with its holds and allotments, and fit its capacity."""
    with tenant_context(tenant):
        fresh = Departure.objects.get(pk=departure.pk)
        holds = Hold.objects.filter(departure=fresh)
        active = holds.filter(status=Hold.Status.ACTIVE).aggregate(n=Sum("seats"))["n"] or 0
        sold = holds.filter(status=Hold.Status.CONVERTED).aggregate(n=Sum("seats"))["n"] or 0
        assert (fresh.held, fresh.sold) == (active, sold)
        unused = 0
        for allotment in Allotment.objects.filter(departure=fresh):
            taken = (
                holds.filter(
                    allotment=allotment, status__in=[Hold.Status.ACTIVE, Hold.Status.CONVERTED]
                ).aggregate(n=Sum("seats_from_allotment"))["n"]
                or 0
            )
            assert allotment.used == taken, (allotment.used, taken)
            if allotment.status == Allotment.Status.ACTIVE:
                unused += allotment.seats - allotment.used
        assert fresh.allotted == unused
        assert fresh.allotted + fresh.held + fresh.sold <= fresh.capacity
    return fresh
