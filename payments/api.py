"""A booking's money over the API.

``GET /api/v1/bookings/<reference>/payments/``: ledger, schedule, payment attempts and refunds — staff with the
payments view permission, or a booker of the booking's agency. ``POST /api/v1/bookings/<reference>/refunds/``
with ``{amount, reason}`` and an ``Idempotency-Key`` header: staff allowed to add refunds (finance, manager,
owner) only, never an agency's booker. The refund is decided at once (201 with its rows); the gateway parts are
``pending`` and sent by a task, offline parts wait for staff to record the money sent back.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from bookings.models import Booking
from core.errors import DomainError
from payments import selectors
from payments.serializers import (
    IDEMPOTENCY_KEY_MAX,
    BookingPaymentsSerializer,
    RefundCreatedSerializer,
    RefundRequestSerializer,
)
from payments.services import refunds, schedules
from tenants.permissions import HasApiAccess, IsTenantMember, partner_of, scope_to_partner

VIEW_PERMISSION = "payments.view_payment"
REFUND_PERMISSION = "payments.add_refund"

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=True,
    description="A retry with the same key returns the same refund (it is never made twice).",
)


def _booking(request, reference: str) -> Booking:
    """The booking by its reference among those the caller may see (a booker: their agency's only)."""
    booking = (
        scope_to_partner(Booking.objects.all(), request).filter(reference=reference.strip().upper()).first()
    )
    if booking is None:
        raise Http404("No such booking.")
    return booking


def _ledger(booking: Booking) -> dict:
    ledger = selectors.ledger(booking)
    return {
        "currency": ledger.currency,
        "total": ledger.total,
        "paid": ledger.paid,
        "refunded": ledger.refunded,
        "net_paid": ledger.net_paid,
        "balance": ledger.balance,
        "refundable": refunds.refundable(booking),
        "due_now": schedules.amount_due_now(booking),
    }


def _staff_with(request, permission: str) -> bool:
    return IsTenantMember().has_permission(request, None) and request.user.has_perm(permission)


class BookingPaymentsView(APIView):
    permission_classes = [HasApiAccess]

    @extend_schema(tags=["payments"], responses=BookingPaymentsSerializer, summary="A booking's money")
    def get(self, request, reference: str):
        if partner_of(request) is None and not _staff_with(request, VIEW_PERMISSION):
            raise PermissionDenied("Your role may not see payments.")
        booking = _booking(request, reference)
        data = {
            "reference": booking.reference,
            "ledger": _ledger(booking),
            "schedule": schedules.installment_states(booking),
            "payments": selectors.payments_of(booking),
            "refunds": selectors.refunds_of(booking),
        }
        return Response(BookingPaymentsSerializer(data).data)


class BookingRefundsView(APIView):
    permission_classes = [HasApiAccess]

    @extend_schema(
        tags=["payments"],
        request=RefundRequestSerializer,
        responses={201: RefundCreatedSerializer},
        parameters=[IDEMPOTENCY_KEY],
        summary="Refund part or all of what was paid (gateway parts are sent in the background)",
    )
    def post(self, request, reference: str):
        # An agency's booker may read its bookings' payments but never give money back, whatever else they are.
        if partner_of(request) is not None or not _staff_with(request, REFUND_PERMISSION):
            raise PermissionDenied("Refunds are made by staff allowed to refund (finance, manager, owner).")
        booking = _booking(request, reference)
        payload = RefundRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not key or len(key) > IDEMPOTENCY_KEY_MAX:
            raise DomainError(
                f"A refund needs an Idempotency-Key header of 1 to {IDEMPOTENCY_KEY_MAX} characters, so a retry "
                "never refunds twice.",
                code="invalid",
                fields={"idempotency_key": ["Required header, at most 100 characters."]},
            )
        made = refunds.request_refund(
            booking,
            amount=payload.validated_data["amount"],
            reason=payload.validated_data["reason"],
            request_key=key,
            actor=request.user,
            request=request,
        )
        booking.refresh_from_db()
        body = RefundCreatedSerializer({"refunds": made, "ledger": _ledger(booking)}).data
        return Response(body, status=status.HTTP_201_CREATED)
