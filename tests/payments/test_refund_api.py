"""A booking's money over the API: staff and the booking's agency read the ledger, schedule, payments and refunds;
finance (and managers, owners) refund with an Idempotency-Key, once; over-refunds, missing keys and everyone else
are refused and change nothing."""

from __future__ import annotations

import pytest

from accounts.models import User
from bookings.models import Booking
from partners.models import PartnerUser
from payments.models import Payment, Refund
from payments.services.offline import record_offline_payment
from tenants.context import tenant_context
from tests.api.conftest import Api, staff_api
from tests.bookings.world import World
from tests.factories import PASSWORD
from tests.payments.helpers import clerk, retail_booking

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return World()


def _paid(world: World, booking: Booking, amount: int, reference: str) -> Booking:
    with tenant_context(world.tenant):
        record_offline_payment(
            booking, amount=amount, method="bank_transfer", reference=reference, actor=clerk(world)
        )
        return Booking.objects.get(pk=booking.pk)


def _retail_paid(world: World, key: str, amount: int = 5000) -> Booking:
    with tenant_context(world.tenant):
        booking = retail_booking(world, key)
    return _paid(world, booking, amount, f"TRF-{key}")


def _booker(world: World, email: str = "booker@agency.example") -> Api:
    with tenant_context(world.tenant):
        user = User.objects.create_user(email, PASSWORD)
        PartnerUser.objects.create(user=user, agency=world.agency)
    return Api(world.tenant, user)


def _url(booking: Booking, what: str = "payments") -> str:
    return f"/api/v1/bookings/{booking.reference}/{what}/"


def _state(world: World, booking: Booking) -> tuple:
    with tenant_context(world.tenant):
        return (
            Refund.objects.filter(booking=booking).count(),
            sum(Payment.objects.filter(booking=booking).values_list("refunded", flat=True)),
            Booking.objects.get(pk=booking.pk).paid,
        )


def test_staff_read_the_ledger_schedule_payments_and_refunds(world):
    booking = _retail_paid(world, "a", 5000)
    response = staff_api(world.tenant, "finance")("get", _url(booking))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["reference"] == booking.reference
    assert body["ledger"] == {
        "currency": "EUR",
        "total": 20000,
        "paid": 5000,
        "refunded": 0,
        "net_paid": 5000,
        "balance": 15000,
        "refundable": 5000,
        "due_now": 15000,
    }
    assert [(row["sequence"], row["amount"], row["covered"], row["paid"]) for row in body["schedule"]] == [
        (1, 20000, 5000, False)
    ]
    [payment] = body["payments"]
    assert (payment["provider"], payment["method"], payment["amount"], payment["status"]) == (
        "offline",
        "bank_transfer",
        5000,
        "succeeded",
    )
    assert body["refunds"] == []
    # The reference is case-insensitive; an unknown one is a 404.
    assert staff_api(world.tenant, "read_only")("get", _url(booking).lower()).status_code == 200
    assert staff_api(world.tenant, "sales")("get", "/api/v1/bookings/NOPE/payments/").status_code == 404


def test_finance_refunds_once_per_idempotency_key(world):
    booking = _retail_paid(world, "a", 5000)
    api = staff_api(world.tenant, "finance")

    created = api(
        "post", _url(booking, "refunds"), {"amount": 2000, "reason": "goodwill"}, **{"Idempotency-Key": "r-1"}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    [refund] = body["refunds"]
    assert (refund["amount"], refund["currency"], refund["status"], refund["reason"]) == (
        2000,
        "EUR",
        "pending",
        "goodwill",
    )
    assert body["ledger"]["refundable"] == 3000 and body["ledger"]["refunded"] == 0  # pending: not gone yet

    again = api(
        "post", _url(booking, "refunds"), {"amount": 2000, "reason": "goodwill"}, **{"Idempotency-Key": "r-1"}
    )
    assert again.status_code == 201 and [row["id"] for row in again.json()["refunds"]] == [refund["id"]]
    assert _state(world, booking) == (1, 2000, 5000)

    reused = api(
        "post", _url(booking, "refunds"), {"amount": 100, "reason": "other"}, **{"Idempotency-Key": "r-1"}
    )
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"

    listed = api("get", _url(booking)).json()
    assert [row["id"] for row in listed["refunds"]] == [refund["id"]]


def test_over_refund_bad_input_and_missing_key_are_400_and_change_nothing(world):
    booking = _retail_paid(world, "a", 5000)
    api = staff_api(world.tenant, "finance")
    before = _state(world, booking)

    over = api(
        "post", _url(booking, "refunds"), {"amount": 5001, "reason": "x"}, **{"Idempotency-Key": "o-1"}
    )
    assert over.status_code == 400 and over.json()["error"]["code"] == "over_refund"
    assert "€50.01" in over.json()["error"]["message"] and "€50.00" in over.json()["error"]["message"]
    for body in ({"amount": 0, "reason": "x"}, {"amount": "12.50", "reason": "x"}, {"amount": 100}):
        response = api("post", _url(booking, "refunds"), body, **{"Idempotency-Key": "b-1"})
        assert response.status_code == 400, body
    no_key = api("post", _url(booking, "refunds"), {"amount": 100, "reason": "x"})
    assert no_key.status_code == 400 and "Idempotency-Key" in no_key.json()["error"]["message"]
    long_key = api(
        "post", _url(booking, "refunds"), {"amount": 100, "reason": "x"}, **{"Idempotency-Key": "k" * 101}
    )
    assert long_key.status_code == 400
    assert _state(world, booking) == before


def test_roles_without_refund_permission_are_403(world):
    booking = _retail_paid(world, "a", 5000)
    for role in ("sales", "operations", "read_only", "guide"):
        response = staff_api(world.tenant, role)(
            "post",
            _url(booking, "refunds"),
            {"amount": 100, "reason": "x"},
            **{"Idempotency-Key": f"k-{role}"},
        )
        assert response.status_code == 403, role
    assert staff_api(world.tenant, "guide")("get", _url(booking)).status_code == 403
    manager = staff_api(world.tenant, "manager")(
        "post", _url(booking, "refunds"), {"amount": 100, "reason": "x"}, **{"Idempotency-Key": "k-manager"}
    )
    assert manager.status_code == 201
    assert _state(world, booking)[0] == 1


def test_a_booker_reads_only_their_agencys_payments_and_never_refunds(world):
    with tenant_context(world.tenant):
        own = world.trade_booking("own", 1)
    own = _paid(world, own, 3000, "AGENCY-1")
    other = _retail_paid(world, "retail", 5000)
    booker = _booker(world)

    read = booker("get", _url(own))
    assert read.status_code == 200 and read.json()["ledger"]["paid"] == 3000
    assert booker("get", _url(other)).status_code == 404
    refused = booker(
        "post", _url(own, "refunds"), {"amount": 100, "reason": "x"}, **{"Idempotency-Key": "p-1"}
    )
    assert refused.status_code == 403
    assert _state(world, own) == (0, 0, 3000)


def test_another_tenants_booking_is_not_found(world):
    booking = _retail_paid(world, "a", 5000)
    elsewhere = World()
    api = staff_api(elsewhere.tenant, "finance")
    assert api("get", _url(booking)).status_code == 404
    refund = api(
        "post", _url(booking, "refunds"), {"amount": 100, "reason": "x"}, **{"Idempotency-Key": "x-1"}
    )
    assert refund.status_code == 404
    assert _state(world, booking) == (0, 0, 5000)
