"""The last-owner rule under concurrency: two owners demoted at the same moment, in two real threads with their
own database connections. At least one owner must remain, whatever the interleaving."""

from __future__ import annotations

import functools

import pytest

from core.errors import DomainError
from tenants import services
from tenants.context import tenant_context
from tenants.models import Membership
from tests.factories import make_member, make_tenant, owner_of
from tests.races import Meeting, Racer, finish, run_after, run_before, start_together

pytestmark = pytest.mark.django_db(transaction=True)


def _demoters(tenant, memberships) -> list[Racer]:
    """One racer per membership, demoting it to manager (actor: that owner); outcome "ok" or the exception."""

    def demote(membership: Membership) -> str:
        with tenant_context(tenant):
            services.change_member(membership, actor=membership.user, role="manager")
        return "ok"

    return [Racer(f"demotion of {m.user}", functools.partial(demote, m)) for m in memberships]


def _demote_concurrently(racers: list[Racer]) -> list[object]:
    """Start the demotions together; one outcome per racer: "ok", or the exception it raised."""
    return finish(*start_together(racers))


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
    racers = _demoters(tenant, _two_owners(tenant))

    outcomes = _demote_concurrently(racers)

    assert outcomes.count("ok") == 1, outcomes
    assert len(_owners(tenant)) == 1


def _with_both_rows_locked(monkeypatch, racers: list[Racer]) -> None:
    """Make every change_member wait, once it holds the lock on its own membership row, until each of the others
    holds its own: the interleaving where both demotions have started before either checks the owners.

    If the service serialises the demotions before that point, the others wait on a lock of ours: that is seen
    (PostgreSQL shows them waiting) and each carries on alone; the test then checks the serialised outcome."""
    run_before(monkeypatch, services, "check_keeps_an_owner", Meeting(racers).arrive, once=False)


def test_two_owners_demoted_at_once_with_both_rows_locked_still_leaves_one_owner(monkeypatch):
    tenant = make_tenant()
    racers = _demoters(tenant, _two_owners(tenant))
    _with_both_rows_locked(monkeypatch, racers)

    outcomes = _demote_concurrently(racers)

    assert outcomes.count("ok") == 1, outcomes
    assert len(_owners(tenant)) == 1


def test_demotion_waiting_for_the_other_is_refused_as_last_owner(monkeypatch):
    """The second demotion starts while the first holds the owner rows: it waits for the lock, re-reads the
    owners after the first commits, and is refused with the service's own error."""
    tenant = make_tenant()
    first, second = _two_owners(tenant)
    first_demotion, second_demotion = _demoters(tenant, [first, second])

    def let_the_second_queue(membership, *args, **kwargs):
        """The first demotion has checked the owners and holds their rows: the second starts now and runs until
        it waits for them (or ends)."""
        second_demotion.start()
        second_demotion.wait_until_blocked_or_finished()

    run_after(
        monkeypatch, services, "check_keeps_an_owner", let_the_second_queue
    )  # its first call: the first's
    first_demotion.start()
    outcomes = dict(zip(["first", "second"], finish(first_demotion, second_demotion), strict=True))

    assert outcomes["first"] == "ok", outcomes
    assert isinstance(outcomes["second"], DomainError), outcomes
    assert outcomes["second"].code == "last_owner"
    assert [m.pk for m in _owners(tenant)] == [second.pk]


def test_the_refused_demotion_is_a_last_owner_error_even_with_both_rows_locked(monkeypatch):
    tenant = make_tenant()
    racers = _demoters(tenant, _two_owners(tenant))
    _with_both_rows_locked(monkeypatch, racers)

    outcomes = _demote_concurrently(racers)

    refused = [outcome for outcome in outcomes if outcome != "ok"]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], DomainError), repr(refused[0])
    assert refused[0].code == "last_owner"
