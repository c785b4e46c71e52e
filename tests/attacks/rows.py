"""One row builder per TenantModel, so every isolation test runs for every tenant table.

``tenants.checks.tenant_models()`` is the list of tables to attack; ``ROW_SPECS`` says how to make a row of each.
A TenantModel without an entry here makes the attack tests fail (not skip): add its builder when you add it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from django.db import models
from django.db.models import F

from tenants.checks import tenant_models
from tenants.context import current_tenant_id, tenant_context
from tenants.models import AuditEvent, Membership, Tenant
from tenants.roles import Role
from tests.factories import make_tenant, make_user


@dataclass(frozen=True)
class RowSpec:
    """``build(marker)`` returns an unsaved row (its tenant is filled in by ``save()`` inside a tenant context)
    whose text, as shown in the admin, contains ``marker``. ``change`` is an update an attacker would want to
    make. ``append_only`` tables have no UPDATE/DELETE grant for the runtime role at all."""

    build: Callable[[str], models.Model]
    change: dict[str, Any] = field(default_factory=dict)
    append_only: bool = False


def _membership(marker: str) -> Membership:
    return Membership(user=make_user(f"{marker}@example.com"), role=Role.SALES)


def _audit_event(marker: str) -> AuditEvent:
    return AuditEvent(
        action=AuditEvent.Action.CHANGE,
        actor_label=marker,
        target_type="tests.probe",
        target_id=marker,
        target_label=marker,
        changes={"probe": [None, marker]},
    )


# --- catalogue, pricing, partners, inventory ------------------------------------------------------------------
# Parents are created in the current tenant context. Some tests build a row outside any context (to prove that
# saving it fails there); its parents then live in a scratch tenant, which is never the one the row claims.


def _parents(create: Callable[[], Any]) -> Any:
    if current_tenant_id() is not None:
        return create()
    with tenant_context(make_tenant(f"rows{uuid.uuid4().hex[:10]}")):
        return create()


def _saved(build: Callable[[str], models.Model], marker: str) -> models.Model:
    """A parent row, saved (in the current tenant, or a scratch one outside any context)."""

    def create():
        row = build(marker)
        row.save()
        return row

    return _parents(create)


def _tour(marker: str = ""):
    from tests.catalogue import make_tour

    title = marker or None
    return make_tour(title, slug=f"t-{uuid.uuid4().hex[:16]}")


def _option(marker: str):
    from tests.catalogue import make_option

    return make_option(_tour(), code="shared", name=marker)


def _departure(marker: str):
    from tests.catalogue import make_departure

    return make_departure(_option(marker), capacity=20)


def _agency_named(marker: str):
    from tests.catalogue import make_agency

    return make_agency(marker)


def _agency(marker: str):
    from partners.models import Agency

    return Agency(legal_name=marker, country="MA", currency="MAD", email="bookings@agency.example")


def _agency_contact(marker: str):
    from partners.models import AgencyContact

    return AgencyContact(agency=_parents(lambda: _agency_named(f"agency of {marker}")), name=marker)


def _partner_user(marker: str):
    from partners.models import PartnerUser

    agency = _parents(lambda: _agency_named(f"agency of {marker}"))
    return PartnerUser(user=make_user(f"{marker}@example.com"), agency=agency)


def _contract(marker: str):
    from partners.models import Contract

    agency = _parents(lambda: _agency_named(marker))
    return Contract(
        agency=agency, model=Contract.Model.NET_RATE, credit_limit=500_000, valid_from=dt.date(2026, 1, 1)
    )


def _destination(marker: str):
    from tours.models import Destination

    return Destination(name=marker, slug=marker, country="MA")


def _category(marker: str):
    from tours.models import Category

    return Category(name=marker, slug=marker)


def _tour_row(marker: str):
    from tours.models import Tour

    return Tour(slug=marker, title=marker, duration_minutes=120, time_zone="Africa/Casablanca")


def _tour_category(marker: str):
    from tours.models import Category, TourCategory

    def parents():
        return _tour(marker), Category.objects.create(name=marker, slug=marker)

    tour, category = _parents(parents)
    return TourCategory(tour=tour, category=category)


def _tour_child(model_name: str, **fields):
    def build(marker: str):
        from tours import models as tours_models

        model = getattr(tours_models, model_name)
        values = {name: (marker if value is _MARKER else value) for name, value in fields.items()}
        return model(tour=_parents(lambda: _tour(marker)), **values)

    return build


_MARKER = object()


def _tax_rate(marker: str):
    from tours.models import TaxRate

    return TaxRate(name=marker, percent=Decimal("20.000"))


def _price_list(marker: str):
    from tours.models import PriceList

    return PriceList(name=marker, channel="retail", currency="EUR")


def _season(marker: str):
    from tours.models import PriceList, Season

    price_list = _parents(
        lambda: PriceList.objects.create(name=f"list {marker}", channel="retail", currency="EUR")
    )
    return Season(
        price_list=price_list, name=marker, start_date=dt.date(2026, 6, 1), end_date=dt.date(2026, 8, 31)
    )


def _rate(marker: str):
    from tests.catalogue import make_unit_types
    from tours.models import PriceList, Rate

    def parents():
        option = _option("shared")
        unit = make_unit_types(option.tour)["adult"]
        unit.name = marker
        unit.save(update_fields=["name"])
        return PriceList.objects.create(name=f"list {marker}", channel="retail", currency="EUR"), option, unit

    price_list, option, unit = _parents(parents)
    return Rate(price_list=price_list, option=option, unit_type=unit, amount=4500)


def _surcharge(marker: str):
    from tours.models import PriceList, Surcharge

    price_list = _parents(
        lambda: PriceList.objects.create(name=f"list {marker}", channel="retail", currency="EUR")
    )
    return Surcharge(price_list=price_list, name=marker, amount=10_000)


def _promo_code(marker: str):
    from tours.models import PromoCode

    return PromoCode(code=marker, kind=PromoCode.Kind.PERCENT, percent=Decimal("10"))


def _promo_redemption(marker: str):
    from tours.models import PromoCode, PromoRedemption

    promo = _parents(
        lambda: PromoCode.objects.create(
            code=f"p{uuid.uuid4().hex[:12]}", kind="percent", percent=Decimal("5")
        )
    )
    return PromoRedemption(promo=promo, reference=marker)


def _schedule(marker: str):
    from inventory.models import Schedule

    option = _parents(lambda: _option(marker))
    return Schedule(
        option=option,
        start_date=dt.date(2026, 6, 1),
        end_date=dt.date(2026, 6, 30),
        times=[dt.time(9, 0)],
        capacity=20,
    )


def _closure(marker: str):
    from inventory.models import Closure

    tour = _parents(lambda: _tour(marker))
    return Closure(tour=tour, start_date=dt.date(2026, 12, 24), end_date=dt.date(2026, 12, 26), reason=marker)


def _departure_row(marker: str):
    from inventory.models import Departure

    option = _parents(lambda: _option(marker))
    starts_at = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)
    return Departure(
        tour=option.tour,
        option=option,
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(hours=2),
        local_date=starts_at.date(),
        capacity=20,
    )


def _allotment(marker: str):
    from inventory.models import Allotment

    departure, agency = _parents(lambda: (_departure(f"trip {marker}"), _agency_named(marker)))
    return Allotment(
        agency=agency, departure=departure, seats=5, release_at=departure.starts_at - dt.timedelta(days=7)
    )


def _hold(marker: str):
    from inventory.models import Hold

    departure = _parents(lambda: _departure(marker))
    return Hold(
        departure=departure,
        channel="retail",
        units={"adult": 2},
        seats=2,
        idempotency_key=marker,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15),
    )


def _outbox_event(marker: str):
    from events.models import OutboxEvent

    return OutboxEvent(
        name="probe.event", aggregate_type="tests.probe", aggregate_id=marker, payload={"m": marker}
    )


def _saved_outbox_event(marker: str):
    return _saved(_outbox_event, marker)


def _processed_event(marker: str):
    from events.models import ProcessedEvent

    return ProcessedEvent(event=_saved_outbox_event(marker), consumer=marker)


def _dead_letter(marker: str):
    from events.models import DeadLetter

    return DeadLetter(event=_saved_outbox_event(marker), consumer=marker, error=marker, attempts=6)


def _booking(marker: str):
    from bookings.models import Booking

    return Booking(
        channel="retail",
        language="en",
        lead_name=f"Lead {marker}",
        lead_email=f"{marker}@traveller.example",
        currency="EUR",
        total=10000,
        agent_reference=marker,
    )


def _saved_booking(marker: str):
    return _saved(_booking, marker)


def _booking_item(marker: str):
    from bookings.models import BookingItem

    booking, departure = _parents(lambda: (_saved_booking(marker), _departure(marker)))
    return BookingItem(
        booking=booking,
        departure=departure,
        option=departure.option,
        units={"adult": 1},
        seats=1,
        quote={},
        total=0,
    )


def _traveller(marker: str):
    from bookings.models import Traveller

    return Traveller(
        booking=_saved_booking(marker), unit_code=marker[:30], first_name="Ana", last_name=marker
    )


def _status_change(marker: str):
    from bookings.models import StatusChange

    return StatusChange(
        booking=_saved_booking(marker), from_status="on_hold", to_status="confirmed", actor_label=marker
    )


def _consent(marker: str):
    from bookings.models import Consent

    return Consent(
        booking=_saved_booking(marker),
        terms_version=marker[:40],
        accepted_at=dt.datetime.now(dt.UTC),
        ip_address="",
    )


def _document(marker: str):
    from bookings.models import Document

    return Document(
        booking=_saved_booking(marker),
        kind="voucher",
        filename=f"{marker[:100]}.pdf",
        content=b"%PDF-1.7 probe",
        sha256="0" * 64,
        size=14,
    )


def _notification(marker: str):
    from bookings.models import Notification

    return Notification(
        booking=_saved_booking(marker),
        kind="confirmation",
        key=marker[:100],
        recipient="probe@example.com",
        language="en",
        subject=marker,
    )


def _invoice_series(marker: str):
    from bookings.models import InvoiceSeries

    return InvoiceSeries(prefix=marker[:32], next_number=7)


def _invoice(marker: str):
    from bookings.models import Invoice

    return Invoice(
        booking=_saved_booking(marker),
        kind="invoice",
        series=marker[:32],
        number=1,
        currency="EUR",
        total=100,
        lines=[],
    )


def _payment(marker: str):
    from payments.models import Payment

    return Payment(
        booking=_saved_booking(marker),
        provider="offline",
        method="bank_transfer",
        amount=100,
        currency="EUR",
        status="succeeded",
        provider_reference=marker,
        succeeded_at=dt.datetime.now(dt.UTC),
    )


def _saved_payment(marker: str):
    return _saved(_payment, marker)


def _refund(marker: str):
    from payments.models import Refund

    payment = _saved_payment(marker)
    return Refund(
        payment=payment,
        booking_id=payment.booking_id,
        amount=50,
        currency="EUR",
        request_key=marker,
        idempotency_key=marker,
        reason=marker,
    )


def _payment_terms(marker: str):
    from payments.models import PaymentTerms

    return PaymentTerms(name=marker, kind="deposit", deposit_percent=Decimal("20"))


def _payment_schedule(marker: str):
    from payments.models import PaymentSchedule

    return PaymentSchedule(
        booking=_saved_booking(marker), kind="deposit", terms={"name": marker}, customer_reference=marker
    )


def _installment(marker: str):
    from payments.models import Installment

    schedule = _saved(_payment_schedule, marker)
    return Installment(
        schedule=schedule,
        sequence=1,
        kind="deposit",
        due_on=dt.date(2026, 6, 1),
        amount=100,
        last_failure=marker,
    )


def _gateway_account(marker: str):
    from payments.models import GatewayAccount

    # One account per provider and tenant: a second row in the same tenant takes the other provider.
    taken = set(GatewayAccount.objects.values_list("provider", flat=True))
    provider = "paypal" if "stripe" in taken else "stripe"
    return GatewayAccount(provider=provider, public_key=marker, secret_key=f"sk_test_{marker}")


def _webhook_event(marker: str):
    from payments.models import WebhookEvent

    return WebhookEvent(
        provider="stripe", event_id=marker, event_type="payment_intent.succeeded", object_kind="payment"
    )


def _exchange_rate(marker: str):
    from payments.models import ExchangeRate

    # Its day is drawn at random so several rows never share (pair, day).
    day = dt.date(2000, 1, 1) + dt.timedelta(days=uuid.uuid4().int % 36_500)
    return ExchangeRate(base="EUR", quote="JPY", rate=Decimal("160.5"), valid_on=day, note=marker)


ROW_SPECS: dict[str, RowSpec] = {
    "tenants.Membership": RowSpec(_membership, change={"role": Role.OWNER, "is_active": False}),
    "tenants.AuditEvent": RowSpec(_audit_event, change={"target_label": "tampered"}, append_only=True),
    "partners.Agency": RowSpec(_agency, change={"status": "suspended"}),
    "bookings.Booking": RowSpec(_booking, change={"total": 1, "internal_notes": "tampered"}),
    "bookings.BookingItem": RowSpec(_booking_item, change={"seats": 99}),
    "bookings.Traveller": RowSpec(_traveller, change={"nationality": "XX"}),
    "bookings.StatusChange": RowSpec(_status_change, change={"reason": "tampered"}),
    "bookings.InvoiceSeries": RowSpec(_invoice_series, change={"next_number": 1}),
    "bookings.Invoice": RowSpec(_invoice, change={"total": 1}, append_only=True),
    "bookings.Consent": RowSpec(_consent, change={"marketing_opt_in": True}),
    "bookings.Document": RowSpec(_document, change={"filename": "tampered.pdf"}),
    "bookings.Notification": RowSpec(_notification, change={"status": "failed"}),
    "payments.Payment": RowSpec(_payment, change={"amount": 1, "status": "cancelled"}),
    "payments.Refund": RowSpec(_refund, change={"amount": 1, "status": "succeeded"}),
    "payments.PaymentTerms": RowSpec(_payment_terms, change={"deposit_percent": Decimal("99.00")}),
    "payments.PaymentSchedule": RowSpec(_payment_schedule, change={"needs_attention": True}),
    "payments.Installment": RowSpec(_installment, change={"amount": 1}),
    "payments.GatewayAccount": RowSpec(_gateway_account, change={"public_key": "tampered", "live": True}),
    "payments.WebhookEvent": RowSpec(_webhook_event, change={"outcome": "tampered"}),
    "payments.ExchangeRate": RowSpec(_exchange_rate, change={"rate": Decimal("1.0000000000")}),
    "events.OutboxEvent": RowSpec(_outbox_event, change={"name": "tampered.event"}),
    "events.ProcessedEvent": RowSpec(_processed_event, change={"consumer": "tampered"}),
    "events.DeadLetter": RowSpec(_dead_letter, change={"error": "tampered"}),
    "partners.AgencyContact": RowSpec(_agency_contact, change={"job_title": "tampered"}),
    "partners.PartnerUser": RowSpec(_partner_user, change={"is_active": False}),
    "partners.Contract": RowSpec(_contract, change={"credit_limit": 99_999_999}),
    "tours.Destination": RowSpec(_destination, change={"name": "tampered"}),
    "tours.Category": RowSpec(_category, change={"name": "tampered"}),
    "tours.Tour": RowSpec(_tour_row, change={"status": "archived"}),
    # A link row has no column of its own to tamper with: a self-assignment still has to reach the row.
    "tours.TourCategory": RowSpec(_tour_category, change={"category_id": F("category_id")}),
    "tours.TourTranslation": RowSpec(
        _tour_child("TourTranslation", language="fr", title=_MARKER), change={"title": "tampered"}
    ),
    "tours.ItineraryDay": RowSpec(
        _tour_child("ItineraryDay", day=1, title=_MARKER), change={"title": "tampered"}
    ),
    "tours.TourImage": RowSpec(
        _tour_child("TourImage", image="tours/probe.jpg", alt_text=_MARKER), change={"alt_text": "tampered"}
    ),
    "tours.CancellationTier": RowSpec(
        _tour_child("CancellationTier", days_before=30, refund_percent=100), change={"refund_percent": 0}
    ),
    "tours.Option": RowSpec(_tour_child("Option", code="shared", name=_MARKER), change={"is_active": False}),
    "tours.UnitType": RowSpec(
        _tour_child("UnitType", code="adult", kind="adult", name=_MARKER), change={"name": "tampered"}
    ),
    "tours.BookingQuestion": RowSpec(
        _tour_child("BookingQuestion", code="diet", text=_MARKER), change={"required": True}
    ),
    "tours.TaxRate": RowSpec(_tax_rate, change={"percent": Decimal("0.000")}),
    "tours.PriceList": RowSpec(_price_list, change={"is_active": False}),
    "tours.Season": RowSpec(_season, change={"priority": 9}),
    "tours.Rate": RowSpec(_rate, change={"amount": 1}),
    "tours.Surcharge": RowSpec(_surcharge, change={"amount": 1}),
    "tours.PromoCode": RowSpec(_promo_code, change={"is_active": False}),
    "tours.PromoRedemption": RowSpec(_promo_redemption, change={"reference": "tampered"}),
    "inventory.Schedule": RowSpec(_schedule, change={"capacity": 999}),
    "inventory.Closure": RowSpec(_closure, change={"reason": "tampered"}),
    "inventory.Departure": RowSpec(_departure_row, change={"status": "cancelled"}),
    "inventory.Allotment": RowSpec(_allotment, change={"status": "released"}),
    "inventory.Hold": RowSpec(_hold, change={"status": "released"}),
}

TENANT_MODELS = tenant_models()


def label(model: type[models.Model]) -> str:
    return model._meta.label


def spec_for(model: type[models.Model]) -> RowSpec:
    spec = ROW_SPECS.get(label(model))
    if spec is None:
        pytest.fail(
            f"{label(model)} is a TenantModel without a row builder: add it to ROW_SPECS in "
            f"tests/attacks/rows.py so its tenant isolation is tested.",
            pytrace=False,
        )
    return spec


class Row(NamedTuple):
    obj: models.Model
    marker: str


def new_marker(model: type[models.Model], side: str) -> str:
    return f"{side}-{model._meta.model_name}-{uuid.uuid4().hex[:12]}"


def create_row(model: type[models.Model], tenant: Tenant, side: str) -> Row:
    marker = new_marker(model, side)
    with tenant_context(tenant):
        obj = spec_for(model).build(marker)
        obj.save()
    return Row(obj, marker)


def insert_statement(obj: models.Model, connection) -> tuple[str, list[Any]]:
    """A raw ``INSERT`` of every concrete column of an unsaved ``obj`` (as the ORM would write them)."""
    quote = connection.ops.quote_name
    fields = [f for f in obj._meta.concrete_fields if not (f.primary_key and getattr(obj, f.attname) is None)]
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(obj._meta.db_table)} ({columns}) VALUES ({placeholders})", values
