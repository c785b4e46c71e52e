"""The emails about a booking's money — receipt, failed installment (and its final notice), upcoming installment,
refund — as the booking's mailer (``bookings.services.notifications``) needs to know them: the event each reports,
when it still makes sense, what its template shows. Registered when Django starts (``PaymentsConfig.ready``); the
consumers that queue them are in ``payments.handlers``."""

from __future__ import annotations

import uuid

from bookings.models import Booking, Notification
from bookings.services.notifications import EmailKind, local_date, register_kind
from payments.models import Payment, PaymentTerms, Refund
from payments.services import schedules

Kind = Notification.Kind
Status = Booking.Status

# Failure codes (Stripe's decline codes, or ours) the emails explain in words of their own; any other code gets
# the general wording.
EXPLAINED_FAILURES = {
    "card_declined",
    "insufficient_funds",
    "authentication_required",
    "expired_card",
    "no_saved_card",
    "incorrect_cvc",
    "processing_error",
}


def _amount(notification: Notification, payload: dict) -> dict:
    return {
        "amount": payload.get("amount"),
        "amount_currency": payload.get("currency") or notification.booking.currency,
    }


def _status_label(booking: Booking) -> str:
    return f"booking {booking.get_status_display().lower()}"


def _receipt_reason(booking: Booking) -> str:
    return ""  # money was received, whatever happened to the booking since


def _dunning_reason(booking: Booking) -> str:
    # The installment may have been paid from the booking page, or the booking cancelled, since the attempt.
    if booking.status != Status.CONFIRMED:
        return _status_label(booking)
    return "" if schedules.amount_due_now(booking) > 0 else "nothing due"


def _dunning_context(notification: Notification, payload: dict, language: str) -> dict:
    """A failed installment attempt: what was owed, why it failed, when the next (or last) attempt is and, for a
    final notice, what the booking's frozen terms say happens after it."""
    booking = notification.booking
    reason = str(payload.get("reason") or "")
    if reason == "declined":  # our code when the gateway gave none
        reason = "card_declined"
    schedule = getattr(booking, "schedule", None)  # a booking made before schedules existed has none
    terms = schedule.terms if schedule is not None else {}
    return {
        **_amount(notification, payload),
        "failure": reason if reason in EXPLAINED_FAILURES else "other",
        "next_attempt_on": local_date(payload.get("next_attempt_on"), language),
        "cancel_after_final_failure": terms.get("after_final_failure")
        == PaymentTerms.AfterFinalFailure.CANCEL,
    }


def _upcoming_reason(booking: Booking) -> str:
    if booking.status != Status.CONFIRMED:
        return _status_label(booking)
    return "" if schedules.outstanding(booking) > 0 else "nothing due"


def _upcoming_context(notification: Notification, payload: dict, language: str) -> dict:
    return {
        **_amount(notification, payload),
        "due_on": local_date(payload.get("due_on"), language),
        "card": payload.get("card") or "",
    }


def _refund_reason(booking: Booking) -> str:
    # Whatever the booking's state: money went back and the payer should hear of it. Only a resend of a booking
    # never refunded makes no sense.
    return "" if booking.refunds.filter(status=Refund.Status.SUCCEEDED).exists() else "no refund was made"


def _refund_context(notification: Notification, payload: dict, language: str) -> dict:
    """Where the money went back (the refunded payment's provider and method) and why (the refund's kind)."""
    booking = notification.booking
    payment = None
    if payload.get("payment"):
        try:
            payment = Payment.objects.filter(booking=booking, pk=uuid.UUID(str(payload["payment"]))).first()
        except ValueError:
            payment = None
    if payment is None:
        refunded_to = "unknown"
    elif payment.provider == Payment.Provider.PAYPAL:
        refunded_to = "paypal"
    elif payment.method == Payment.Method.CARD:
        refunded_to = "card"
    elif payment.method == Payment.Method.BANK_TRANSFER:
        refunded_to = "bank_transfer"
    else:
        refunded_to = "unknown"
    return {
        **_amount(notification, payload),
        "refund_kind": payload.get("kind") or "",
        "refunded_to": refunded_to,
        "card_summary": payment.payment_method_summary if payment is not None else "",
        # A surplus is either paid for a booking that had lapsed (it is no longer being sold or travelled on) or
        # paid on top of its total (twice).
        "lapsed": booking.status in (Status.CANCELLED, Status.EXPIRED, Status.REFUNDED),
        # The money goes back to whoever paid: an agency reading at its own address sees its amount, a traveller
        # reading an agency's booking (the agency has no address) must not learn the agency's net price.
        "show_amount": booking.agency_id is None
        or (bool(booking.agency.email) and notification.recipient == booking.agency.email),
    }


def register() -> None:
    register_kind(
        Kind.RECEIPT,
        EmailKind(
            "payment.processed",
            _receipt_reason,
            lambda n, payload, _: _amount(n, payload),
            traveller_pays=True,
        ),
    )
    for kind, final in ((Kind.PAYMENT_FAILED, False), (Kind.FINAL_NOTICE, True)):
        register_kind(
            kind,
            EmailKind(
                "payment.installment_failed",
                _dunning_reason,
                _dunning_context,
                payload={"final_notice": final},
                traveller_pays=True,
            ),
        )
    register_kind(
        Kind.UPCOMING_PAYMENT,
        EmailKind("payment.installment_upcoming", _upcoming_reason, _upcoming_context, traveller_pays=True),
    )
    register_kind(Kind.REFUND, EmailKind("payment.refunded", _refund_reason, _refund_context))
