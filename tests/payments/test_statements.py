"""Trade bookings on account settled by the agency's payments against its statement: what the statement lists and
totals (per currency, oldest departure first), how a transfer is spread over bookings, what is refused (changing
nothing), retries and races, the credit that comes back, and the back-office page."""

from __future__ import annotations

import datetime as dt
import re
from functools import partial

import pytest

from bookings import services as booking_services
from bookings.models import Booking
from bookings.services import credit_available
from core.errors import ConflictError, DomainError
from events.models import OutboxEvent
from payments.models import Payment
from payments.services.offline import record_offline_payment
from payments.services.statements import record_agency_payment, statement
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.backoffice.conftest import signed_in
from tests.bookings.world import World
from tests.catalogue import make_departure
from tests.payments.helpers import clerk, retail_booking
from tests.races import attempt_together, unexpected

ADULT = 8000  # trade price of an adult in the World, EUR minor units


def _booking_on(world: World, departure, key: str, adults: int) -> Booking:
    """A confirmed on-account booking on ``departure`` (the World books its own departure)."""
    own = world.departure
    world.departure = departure
    try:
        return world.confirmed_booking(key, adults)
    finally:
        world.departure = own


def _early_departure(world: World, days: int = 10):
    starts_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).replace(microsecond=0)
    return make_departure(world.option, capacity=20, starts_at=starts_at)


def _two_bookings(world: World) -> tuple[Booking, Booking]:
    """(late, early): the later departure is booked first, so departure order differs from booking order."""
    late = world.confirmed_booking("late", 3)  # 30 days out, 240.00
    early = _booking_on(world, _early_departure(world), "early", 1)  # 10 days out, 80.00
    return late, early


def _paid(*bookings: Booking) -> list[int]:
    return [Booking.objects.get(pk=booking.pk).paid for booking in bookings]


def _nothing_recorded(world: World, *bookings: Booking) -> None:
    assert _paid(*bookings) == [0] * len(bookings)
    assert Payment.objects.count() == 0
    assert not OutboxEvent.objects.filter(name="payment.processed").exists()
    assert not AuditEvent.objects.filter(
        target_type="partners.agency", target_id=str(world.agency.pk)
    ).exists()


@pytest.mark.django_db
def test_the_statement_lists_what_the_agency_owes_oldest_departure_first_with_totals():
    world = World()
    with tenant_context(world.tenant):
        late, early = _two_bookings(world)
        Booking.objects.filter(pk=late.pk).update(agent_reference="AG-77")
        settled = world.confirmed_booking("settled", 1)
        Booking.objects.filter(pk=settled.pk).update(paid=ADULT)  # paid in full: not on the statement
        world.trade_booking("held", 1)  # on hold: not using credit yet
        retail_booking(world, "retail")  # not the agency's
        charged = _booking_on(world, _early_departure(world, days=5), "charged", 2)
        charged = booking_services.cancel_booking(charged, reason="client changed plans")
        charge = Booking.objects.get(pk=charged.pk).cancellation_charge
        assert 0 < charge < 2 * ADULT  # late cancellation: part of the price stays owed

        current = statement(world.agency)

        assert [line.reference for line in current.lines] == [
            charged.reference,
            early.reference,
            late.reference,
        ]
        by_reference = {line.reference: line for line in current.lines}
        line = by_reference[late.reference]
        assert (line.agent_reference, line.lead_name, line.currency) == ("AG-77", "Ana Lima", "EUR")
        assert (line.amount, line.paid, line.open) == (3 * ADULT, 0, 3 * ADULT)
        assert line.first_departure == world.departure.local_date
        cancelled = by_reference[charged.reference]
        assert cancelled.is_cancellation_charge and (cancelled.amount, cancelled.open) == (charge, charge)
        assert list(current.totals) == ["EUR"]
        total = current.totals["EUR"]
        assert (total.amount, total.paid, total.open) == (4 * ADULT + charge, 0, 4 * ADULT + charge)
        # the statement owes exactly what the credit check counts
        limit = world.agency.contracts.get().credit_limit
        assert credit_available(world.agency) == limit - total.open

        # "until": only what departs by then
        until = statement(world.agency, until=early.items.first().departure.local_date)
        assert [line.reference for line in until.lines] == [charged.reference, early.reference]
        assert until.open_in("EUR") == ADULT + charge


@pytest.mark.django_db
def test_a_transfer_is_spread_over_open_bookings_oldest_departure_first_and_audited_once():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        late, early = _two_bookings(world)

        payments = record_agency_payment(
            world.agency, amount=10000, currency="EUR", reference=" TRF-2026-001 ", actor=staff
        )

        assert [(p.booking_id, p.amount) for p in payments] == [(early.pk, ADULT), (late.pk, 10000 - ADULT)]
        for payment in payments:
            assert (payment.provider, payment.method, payment.status) == (
                "offline",
                "bank_transfer",
                "succeeded",
            )
            assert payment.provider_reference == f"TRF-2026-001/{payment.booking.reference}"
            assert payment.currency == "EUR" and payment.recorded_by == staff
        assert _paid(early, late) == [ADULT, 10000 - ADULT]
        assert statement(world.agency).open_in("EUR") == 4 * ADULT - 10000
        assert [line.reference for line in statement(world.agency).lines] == [
            late.reference
        ]  # early: settled
        events = OutboxEvent.objects.filter(name="payment.processed").order_by("created_at")
        assert [event.aggregate_id for event in events] == [str(early.pk), str(late.pk)]
        assert {event.payload["agency_payment"] for event in events} == {"TRF-2026-001"}
        record = AuditEvent.objects.get(target_type="partners.agency", target_id=str(world.agency.pk))
        assert record.actor_id == str(staff.pk)
        assert record.changes["amount"] == [None, 10000]
        assert [part["booking"] for part in record.changes["allocation"][1]] == [
            early.reference,
            late.reference,
        ]
        assert not AuditEvent.objects.filter(target_type="payments.payment").exists()


@pytest.mark.django_db
def test_paying_more_than_is_open_is_refused_and_records_nothing():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        late, early = _two_bookings(world)
        with pytest.raises(DomainError) as refused:
            record_agency_payment(
                world.agency, amount=4 * ADULT + 1, currency="EUR", reference="T1", actor=staff
            )
        assert refused.value.code == "overpayment" and "€320.00" in refused.value.message
        _nothing_recorded(world, late, early)

        for amount, field_name in ((0, "amount"), (12.5, "amount"), (True, "amount")):
            with pytest.raises(DomainError) as invalid:
                record_agency_payment(
                    world.agency, amount=amount, currency="EUR", reference="T1", actor=staff
                )
            assert invalid.value.code == "invalid" and field_name in invalid.value.fields
        with pytest.raises(DomainError) as no_reference:
            record_agency_payment(world.agency, amount=100, currency="EUR", reference=" ", actor=staff)
        assert "reference" in no_reference.value.fields
        with pytest.raises(DomainError) as bad_currency:
            record_agency_payment(world.agency, amount=100, currency="XXY", reference="T1", actor=staff)
        assert "currency" in bad_currency.value.fields
        _nothing_recorded(world, late, early)

        # exactly the open total settles everything
        record_agency_payment(world.agency, amount=4 * ADULT, currency="EUR", reference="T1", actor=staff)
        assert _paid(late, early) == [3 * ADULT, ADULT]
        with pytest.raises(ConflictError) as nothing:
            record_agency_payment(world.agency, amount=1, currency="EUR", reference="T2", actor=staff)
        assert nothing.value.code == "nothing_due"


@pytest.mark.django_db
def test_the_same_bank_reference_is_never_counted_twice():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        late, early = _two_bookings(world)
        record_agency_payment(world.agency, amount=1000, currency="EUR", reference="TRF-1", actor=staff)
        before = (_paid(late, early), Payment.objects.count())

        with pytest.raises(ConflictError) as again:
            record_agency_payment(world.agency, amount=1000, currency="EUR", reference="TRF-1", actor=staff)
        assert again.value.code == "duplicate_reference" and "reference" in again.value.fields

        # a transfer already recorded on one booking is not recorded again for the agency
        record_offline_payment(late, amount=500, method="bank_transfer", reference="TRF-2", actor=staff)
        with pytest.raises(ConflictError) as single:
            record_agency_payment(world.agency, amount=500, currency="EUR", reference="TRF-2", actor=staff)
        assert single.value.code == "duplicate_reference"
        assert (_paid(late, early), Payment.objects.count()) == (
            [before[0][0] + 500, before[0][1]],
            before[1] + 1,
        )


@pytest.mark.django_db
def test_a_retry_with_the_same_idempotency_key_returns_the_same_payments():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        late, early = _two_bookings(world)
        first = record_agency_payment(
            world.agency,
            amount=9000,
            currency="EUR",
            reference="TRF-9",
            actor=staff,
            idempotency_key="form-1",
        )
        retried = record_agency_payment(
            world.agency,
            amount=9000,
            currency="EUR",
            reference="TRF-9",
            actor=staff,
            idempotency_key="form-1",
        )

        assert [p.pk for p in retried] == [p.pk for p in first] and len(first) == 2
        assert _paid(early, late) == [ADULT, 1000]
        assert Payment.objects.count() == 2
        assert AuditEvent.objects.filter(target_type="partners.agency").count() == 1

        with pytest.raises(ConflictError) as reused:
            record_agency_payment(
                world.agency,
                amount=5000,
                currency="EUR",
                reference="TRF-10",
                actor=staff,
                idempotency_key="form-1",
            )
        assert reused.value.code == "idempotency_key_reused"
        assert Payment.objects.count() == 2


@pytest.mark.django_db
def test_currencies_are_kept_apart():
    world = World()
    staff = clerk(world)
    with tenant_context(world.tenant):
        late, early = _two_bookings(world)
        # The agency invoiced in USD before: an older booking of its still owes dollars.
        Booking.objects.filter(pk=late.pk).update(currency="USD")

        current = statement(world.agency)
        assert sorted(current.totals) == ["EUR", "USD"]
        assert (current.open_in("EUR"), current.open_in("USD")) == (ADULT, 3 * ADULT)

        with pytest.raises(DomainError) as refused:  # EUR and USD together would cover it: never mixed
            record_agency_payment(world.agency, amount=ADULT + 1, currency="EUR", reference="E1", actor=staff)
        assert refused.value.code == "overpayment"
        with pytest.raises(ConflictError) as nothing:
            record_agency_payment(world.agency, amount=100, currency="GBP", reference="G1", actor=staff)
        assert nothing.value.code == "nothing_due"

        dollars = record_agency_payment(
            world.agency, amount=5000, currency="usd", reference="U1", actor=staff
        )
        assert [(p.booking_id, p.currency, p.amount) for p in dollars] == [(late.pk, "USD", 5000)]
        assert _paid(early, late) == [0, 5000]
        current = statement(world.agency)
        assert (current.open_in("EUR"), current.open_in("USD")) == (ADULT, 3 * ADULT - 5000)


@pytest.mark.django_db
def test_the_agency_credit_grows_back_after_its_payment():
    world = World(credit_limit=40000)
    staff = clerk(world)
    with tenant_context(world.tenant):
        _two_bookings(world)
        assert credit_available(world.agency) == 40000 - 4 * ADULT
        with pytest.raises(ConflictError) as refused:  # 3 more adults do not fit the credit left
            world.confirmed_booking("third", 3)
        assert refused.value.code == "credit_exceeded"

        record_agency_payment(world.agency, amount=20000, currency="EUR", reference="TRF-C", actor=staff)

        assert credit_available(world.agency) == 40000 - 4 * ADULT + 20000
        world.confirmed_booking("fourth", 3)  # now it fits
        assert credit_available(world.agency) == 40000 - 4 * ADULT + 20000 - 3 * ADULT


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_agency_payments_never_allocate_more_than_is_open():
    world = World()
    staff = [clerk(world), clerk(world)]
    with tenant_context(world.tenant):
        late, early = _two_bookings(world)

    def pay(actor, reference):
        record_agency_payment(world.agency, amount=20000, currency="EUR", reference=reference, actor=actor)
        return "recorded"

    outcomes = attempt_together(
        world.tenant, *[partial(pay, actor, f"TRF-{n}") for n, actor in enumerate(staff)]
    )

    assert not unexpected(outcomes), outcomes
    assert sorted(outcomes) == ["overpayment", "recorded"]
    with tenant_context(world.tenant):
        assert _paid(early, late) == [ADULT, 20000 - ADULT]
        assert sum(Payment.objects.values_list("amount", flat=True)) == 20000
        assert statement(world.agency).open_in("EUR") == 4 * ADULT - 20000


# --- the back office ---------------------------------------------------------------------------------------------


def _statement_url(world: World) -> str:
    return f"/admin/partners/agency/{world.agency.pk}/statement/"


def _form_key(page: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)


@pytest.mark.django_db
def test_finance_sees_the_statement_downloads_it_and_records_a_payment():
    world = World()
    with tenant_context(world.tenant):
        late, early = _two_bookings(world)
    _, client = signed_in(world.tenant, "finance")

    agency_page = client.get(f"/admin/partners/agency/{world.agency.pk}/change/").content.decode()
    assert _statement_url(world) in agency_page

    page = client.get(_statement_url(world)).content.decode()
    assert page.index(early.reference) < page.index(late.reference)
    assert "€320.00" in page and "Ana Lima" in page and 'id="record-payment"' in page

    download = client.get(f"/admin/partners/agency/{world.agency.pk}/statement.csv")
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    rows = download.content.decode("utf-8-sig").splitlines()
    assert rows[0].startswith("Booking,Agent reference,Lead")
    assert rows[1].startswith(early.reference) and rows[2].startswith(late.reference)
    assert rows[-1] == "Total,,,,,EUR,320.00,0.00,320.00"

    # too much: shown on the form, nothing recorded
    key = _form_key(page)
    form = {"amount": "320.01", "currency": "EUR", "reference": "BANK-77", "idempotency_key": key}
    refused = client.post(_statement_url(world), form)
    assert refused.status_code == 200
    assert (
        "Nothing was recorded" in refused.content.decode() and "At most €320.00" in refused.content.decode()
    )
    bad = client.post(_statement_url(world), {**form, "amount": "1.234"})
    assert "EUR has at most 2 decimals" in bad.content.decode()
    with tenant_context(world.tenant):
        assert Payment.objects.count() == 0

    recorded = client.post(_statement_url(world), {**form, "amount": "100.50"})
    assert recorded.status_code == 302 and recorded["Location"] == _statement_url(world)
    again = client.post(_statement_url(world), {**form, "amount": "100.50"})  # the same form sent twice
    assert again.status_code == 302
    with tenant_context(world.tenant):
        assert _paid(early, late) == [ADULT, 10050 - ADULT]
        assert Payment.objects.count() == 2
    assert "€219.50" in client.get(_statement_url(world)).content.decode()


@pytest.mark.django_db
def test_read_only_staff_see_the_statement_but_cannot_record_a_payment():
    world = World()
    with tenant_context(world.tenant):
        late, early = _two_bookings(world)
    _, client = signed_in(world.tenant, "read_only")

    page = client.get(_statement_url(world))
    assert page.status_code == 200 and early.reference in page.content.decode()
    assert 'id="record-payment"' not in page.content.decode()
    form = {"amount": "80.00", "currency": "EUR", "reference": "BANK-1", "idempotency_key": "k1"}
    assert client.post(_statement_url(world), form).status_code == 403
    with tenant_context(world.tenant):
        assert _paid(early, late) == [0, 0] and Payment.objects.count() == 0
