"""What racing seat changes may leave behind (see tests/races.py for running them): the outcomes counted by kind,
and a departure whose counters agree with its holds and allotments."""

from __future__ import annotations

from collections import Counter

from django.db.models import Sum

from inventory.models import Allotment, Departure, Hold
from tenants.context import tenant_context


def kinds(outcomes: list[object]) -> Counter:
    """How many of each outcome: "hold" for a hold placed, an error code as it is, anything else by its type."""
    return Counter(
        "hold"
        if isinstance(outcome, Hold)
        else outcome
        if isinstance(outcome, str)
        else type(outcome).__name__
        for outcome in outcomes
    )


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
