"""Bookings' writes, one module per use case: ``create`` (a new booking), ``travellers``, ``lifecycle`` (confirm,
cancel, expire, complete …), ``changes`` (another date, other units), ``credit`` (an agency's credit), and the
state machine they share (``transitions``); invoices, documents, emails and check-in have their own modules here.
"""

from bookings.services.changes import CHANGEABLE, MOVABLE, modify_booking, move_departure
from bookings.services.create import Lead, book_departure, create_booking
from bookings.services.credit import CREDIT_USING, credit_available
from bookings.services.lifecycle import (
    PAYMENT_GRACE,
    CancellationTerms,
    cancel_booking,
    cancellation_terms,
    complete_booking,
    confirm_booking,
    expire_booking,
    expire_lapsed_bookings,
    keep_seats_for_payment,
    mark_no_show,
    mark_refunded,
)
from bookings.services.transitions import TRANSITIONS, IllegalTransition
from bookings.services.travellers import (
    TRAVELLER_FIELDS,
    TRAVELLERS_EDITABLE,
    TravellerDetails,
    details_cutoff,
    update_travellers,
)

__all__ = [
    "CHANGEABLE",
    "CREDIT_USING",
    "MOVABLE",
    "PAYMENT_GRACE",
    "TRANSITIONS",
    "TRAVELLERS_EDITABLE",
    "TRAVELLER_FIELDS",
    "CancellationTerms",
    "IllegalTransition",
    "Lead",
    "TravellerDetails",
    "book_departure",
    "cancel_booking",
    "cancellation_terms",
    "complete_booking",
    "confirm_booking",
    "create_booking",
    "credit_available",
    "details_cutoff",
    "expire_booking",
    "expire_lapsed_bookings",
    "keep_seats_for_payment",
    "mark_no_show",
    "mark_refunded",
    "modify_booking",
    "move_departure",
    "update_travellers",
]
