"""Money received outside a gateway (a bank transfer, cash, a card terminal), recorded by staff. Like every
succeeded payment it publishes ``payment.processed`` on the booking, whose consumer (``payments.handlers``)
confirms the booking once nothing is due any more."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from bookings.locks import lock_booking
from bookings.models import Booking
from core.errors import ConflictError, DomainError
from core.money import format_money
from events.outbox import publish
from payments.models import Payment
from payments.services.paid import adjust_paid
from payments.services.schedules import PAYABLE_STATUSES
from tenants import audit

if TYPE_CHECKING:
    from accounts.models import User


def _clean_offline_input(
    booking: Booking, amount: object, method: str, reference: str, currency: str | None, idempotency_key: str
) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise DomainError.for_field(
            f"The amount is a whole number of minor units of {booking.currency} (e.g. 1250 for 12.50).",
            "amount",
        )
    if amount <= 0:
        raise DomainError.for_field("The amount received must be more than zero.", "amount")
    if method not in Payment.Method.values:
        raise DomainError.for_field(
            f"Unknown payment method {method!r}; one of: {', '.join(Payment.Method.values)}.", "method"
        )
    if currency is not None and currency != booking.currency:
        raise DomainError.for_field(
            f"Booking {booking.reference} is in {booking.currency}; record the payment in {booking.currency} "
            f"(a payment is never converted silently).",
            "currency",
        )
    if method == Payment.Method.BANK_TRANSFER and not reference:
        raise DomainError.for_field("Enter the bank's reference of the transfer.", "reference")
    reference_max = Payment._meta.get_field("provider_reference").max_length
    if reference_max is not None and len(reference) > reference_max:
        raise DomainError.for_field("The reference is too long (255 characters at most).", "reference")
    key_max = Payment._meta.get_field("idempotency_key").max_length
    if key_max is not None and len(idempotency_key) > key_max:
        raise DomainError.for_field(
            "The idempotency key is too long (100 characters at most).", "idempotency_key"
        )


def _replayed(
    booking: Booking, idempotency_key: str, amount: int, method: str, reference: str
) -> Payment | None:
    """The payment this key already recorded (a retried request), or None. The same key for a different payment
    is a client bug: refused, never silently answered with the first payment."""
    if not idempotency_key:
        return None
    existing = Payment.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    if (existing.booking_id, existing.amount, existing.method, existing.provider_reference) != (
        booking.pk,
        amount,
        method,
        reference,
    ):
        raise ConflictError(
            "This idempotency key was already used for a different payment.",
            code="idempotency_key_reused",
            fields={"idempotency_key": ["Already used for a different payment."]},
        )
    return existing


def _refuse_duplicate_reference(reference: str) -> None:
    if not reference:
        return
    existing = (
        Payment.objects.filter(provider=Payment.Provider.OFFLINE, provider_reference=reference)
        .select_related("booking")
        .first()
    )
    if existing is not None:
        raise_duplicate_reference(reference, existing.booking.reference)


def raise_duplicate_reference(reference: str, booking_reference: str | None = None) -> NoReturn:
    where = f" (booking {booking_reference})" if booking_reference else ""
    message = f"A payment with reference {reference!r} is already recorded{where}; the same money is not counted twice."
    raise ConflictError(message, code="duplicate_reference", fields={"reference": [message]})


@transaction.atomic
def record_offline_payment(
    booking: Booking,
    *,
    amount: int,
    method: str,
    reference: str,
    actor: User | None,
    idempotency_key: str = "",
    currency: str | None = None,
    request: HttpRequest | None = None,
) -> Payment:
    """Staff record money received outside a gateway (a bank transfer seen on the statement, cash, a card
    terminal): a succeeded ``Payment``, ``booking.paid`` grows by ``amount``, the action is audited and
    ``payment.processed`` published (its consumer confirms the booking once nothing is due now).

    ``amount`` is an int of minor units of the booking's currency (``currency``, when given, must be it), never
    more than the balance: an overpayment is refused (the surplus would be a refund to make, not a payment to
    keep). A reference is required for a bank transfer and may not repeat one already recorded. The same
    ``idempotency_key`` returns the same payment (a retried form or API call records nothing twice)."""
    reference = (reference or "").strip()
    idempotency_key = (idempotency_key or "").strip()
    _clean_offline_input(booking, amount, method, reference, currency, idempotency_key)
    replayed = _replayed(booking, idempotency_key, amount, method, reference)
    if replayed is not None:
        return replayed

    # Every change of a booking's paid amount is serialised on its row: two clerks recording the last of the
    # balance at once are decided one after the other, on committed numbers.
    booking = lock_booking(booking)
    replayed = _replayed(booking, idempotency_key, amount, method, reference)  # committed while we waited
    if replayed is not None:
        return replayed
    if booking.status not in PAYABLE_STATUSES:
        raise ConflictError(
            f"Booking {booking.reference} is {booking.get_status_display().lower()}; payments are recorded only "
            f"while it is on hold, awaiting payment or confirmed.",
            code="not_payable",
            fields={"status": [booking.status]},
        )
    balance = booking.balance
    if balance <= 0:
        raise ConflictError(
            f"Booking {booking.reference} is paid in full; there is nothing to record.", code="nothing_due"
        )
    if amount > balance:
        raise DomainError(
            f"{format_money(amount, booking.currency)} is more than the balance of {format_money(balance, booking.currency)}; "
            f"record at most the balance (an overpayment would have to be refunded).",
            code="overpayment",
            fields={"amount": [f"At most {format_money(balance, booking.currency)}."]},
        )
    _refuse_duplicate_reference(reference)

    paid_before = booking.paid
    payment = save_offline_payment(
        booking,
        amount=amount,
        method=method,
        reference=reference,
        idempotency_key=idempotency_key,
        actor=actor,
    )
    audit.record(
        audit.Action.CREATE,
        actor=actor,
        target=payment,
        request=request,
        changes={
            "booking": [None, booking.reference],
            "amount": [None, amount],
            "currency": [None, booking.currency],
            "method": [None, method],
            "reference": [None, reference],
            "booking_paid": [paid_before, booking.paid],
        },
    )
    return payment


def save_offline_payment(
    booking: Booking,
    *,
    amount: int,
    method: str,
    reference: str,
    idempotency_key: str,
    actor: User | None,
    shown_reference: str = "",
    announce: dict | None = None,
) -> Payment:
    """The succeeded offline Payment row, ``booking.paid`` grown by it and ``payment.processed`` published (the
    caller holds the booking's row lock and has checked the amount). A reference or key taken meanwhile by a
    concurrent payment is refused, naming ``shown_reference`` (what staff typed) when given."""
    payment = Payment(
        booking=booking,
        provider=Payment.Provider.OFFLINE,
        method=method,
        amount=amount,
        currency=booking.currency,
        status=Payment.Status.SUCCEEDED,
        provider_reference=reference,
        idempotency_key=idempotency_key,
        recorded_by=actor if getattr(actor, "pk", None) else None,
        succeeded_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            payment.save()
    except IntegrityError as error:
        if "payment_unique_provider_reference" in str(error):
            raise_duplicate_reference(
                shown_reference or reference, booking.reference if shown_reference else None
            )
        if "payment_unique_idempotency_key" in str(error):
            raise ConflictError(
                "This idempotency key was already used for a different payment.",
                code="idempotency_key_reused",
            ) from None
        raise
    adjust_paid(booking, amount)
    publish(
        "payment.processed",
        booking,
        {
            "reference": booking.reference,
            "payment": str(payment.pk),
            "amount": amount,
            "currency": booking.currency,
            "provider": payment.provider,
            "method": method,
            **(announce or {}),
        },
    )
    return payment
