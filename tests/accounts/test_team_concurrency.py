"""The last-owner rule under concurrency: two owners demoted at the same moment, in two real threads with their
own database connections. At least one owner must remain, whatever the interleaving."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from django.db import connection

from core.errors import DomainError
from tenants import services
from tenants.context import tenant_context
from tenants.models import Membership
from tests.factories import make_member, make_tenant, owner_of

pytestmark = pytest.mark.django_db(transaction=True)


def _demote_concurrently(tenant, memberships):
    """Demote each membership to manager in its own thread (actor: that owner), started together.

    Returns one outcome per thread: "ok", or the exception it raised."""
    start = threading.Barrier(len(memberships))
    outcomes: list[object] = [None] * len(memberships)

    def run(index: int, membership: Membership) -> None:
        try:
            start.wait(timeout=10)
            with tenant_context(tenant):
                services.change_member(membership, actor=membership.user, role="manager")
            outcomes[index] = "ok"
        except Exception as error:  # noqa: BLE001 - the outcome is what the test inspects
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, m)) for i, m in enumerate(memberships)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def _owners(tenant):
    with tenant_context(tenant):
        return list(Membership.objects.filter(role="owner", is_active=True))


def _two_owners(tenant):
    first = owner_of(tenant)
    second = make_member(tenant, "owner")
    with tenant_context(tenant):
        return [Membership.objects.select_related("user").get(user=user) for user in (first, second)]


def test_two_owners_demoted_at_once_leaves_exactly_one_owner():
    tenant = make_tenant()
    memberships = _two_owners(tenant)

    outcomes = _demote_concurrently(tenant, memberships)

    assert outcomes.count("ok") == 1, outcomes
    assert len(_owners(tenant)) == 1


def _with_both_rows_locked(monkeypatch, parties: int) -> None:
    """Make every change_member wait, once it holds the lock on its own membership row, until all the others
    hold theirs: the interleaving where both demotions have started before either checks the owners.

    If the service serialises the demotions before that point (the others then wait on a lock of ours), the
    wait times out and each carries on alone: the test then checks the serialised outcome."""
    both_locked = threading.Barrier(parties)
    check = services.check_keeps_an_owner

    def check_after_barrier(*args, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_locked.wait(timeout=1)
        return check(*args, **kwargs)

    monkeypatch.setattr(services, "check_keeps_an_owner", check_after_barrier)


def test_two_owners_demoted_at_once_with_both_rows_locked_still_leaves_one_owner(monkeypatch):
    tenant = make_tenant()
    memberships = _two_owners(tenant)
    _with_both_rows_locked(monkeypatch, len(memberships))

    outcomes = _demote_concurrently(tenant, memberships)

    assert outcomes.count("ok") == 1, outcomes
    assert len(_owners(tenant)) == 1


def test_demotion_waiting_for_the_other_is_refused_as_last_owner(monkeypatch):
    """The second demotion starts while the first holds the owner rows: it waits for the lock, re-reads the
    owners after the first commits, and is refused with the service's own error."""
    tenant = make_tenant()
    first, second = _two_owners(tenant)
    first_checked = threading.Event()
    check = services.check_keeps_an_owner

    def check_then_signal(membership, *args, **kwargs):
        result = check(membership, *args, **kwargs)
        if membership.pk == first.pk:
            first_checked.set()
            time.sleep(0.2)  # keep the owner rows locked while the second demotion queues behind them
        return result

    monkeypatch.setattr(services, "check_keeps_an_owner", check_then_signal)
    outcomes: dict[str, object] = {}

    def run(name: str, membership: Membership, wait_for: threading.Event | None) -> None:
        try:
            if wait_for is not None:
                assert wait_for.wait(timeout=10)
            with tenant_context(tenant):
                services.change_member(membership, actor=membership.user, role="manager")
            outcomes[name] = "ok"
        except Exception as error:  # noqa: BLE001
            outcomes[name] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=("first", first, None)),
        threading.Thread(target=run, args=("second", second, first_checked)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert outcomes["first"] == "ok", outcomes
    assert isinstance(outcomes["second"], DomainError), outcomes
    assert outcomes["second"].code == "last_owner"
    assert [m.pk for m in _owners(tenant)] == [second.pk]


def test_the_refused_demotion_is_a_last_owner_error_even_with_both_rows_locked(monkeypatch):
    tenant = make_tenant()
    memberships = _two_owners(tenant)
    _with_both_rows_locked(monkeypatch, len(memberships))

    outcomes = _demote_concurrently(tenant, memberships)

    refused = [outcome for outcome in outcomes if outcome != "ok"]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], DomainError), repr(refused[0])
    assert refused[0].code == "last_owner"
