"""Capacity services: every write that moves seats or changes departures, holds and allotments."""

from inventory.services.allotments import (
    create_allotment,
    create_allotments,
    release_allotment,
    release_allotments,
    release_due_allotments,
    resize_allotment,
)
from inventory.services.departures import (
    ClosureResult,
    add_closure,
    cancel_departure,
    change_capacity,
    close_departure,
    create_departure,
    create_schedule,
    extend_schedule,
    generate_departures,
    reopen_departure,
)
from inventory.services.holds import (
    convert_hold,
    expire_holds,
    extend_hold,
    hold_max_lifetime_seconds,
    hold_ttl_seconds,
    place_hold,
    release_hold,
    release_sold_hold,
)

__all__ = [
    "ClosureResult",
    "add_closure",
    "cancel_departure",
    "change_capacity",
    "close_departure",
    "convert_hold",
    "create_allotment",
    "create_allotments",
    "create_departure",
    "create_schedule",
    "expire_holds",
    "extend_hold",
    "extend_schedule",
    "generate_departures",
    "hold_max_lifetime_seconds",
    "hold_ttl_seconds",
    "place_hold",
    "release_allotment",
    "release_allotments",
    "release_due_allotments",
    "release_hold",
    "release_sold_hold",
    "reopen_departure",
    "resize_allotment",
]
