"""Who consumes which event. A consumer is a function ``(event: OutboxEvent) -> None`` registered with
``@consumer("booking.confirmed", ...)`` in an app's ``handlers.py`` (loaded at start-up by this app). It runs in a
Celery task, inside the event's tenant context, at most once per event (see events.tasks.handle)."""

from __future__ import annotations

from collections.abc import Callable

HANDLERS: dict[str, Callable] = {}
SUBSCRIPTIONS: dict[str, list[str]] = {}


def consumer(*event_names: str, name: str | None = None):
    def register(func: Callable) -> Callable:
        consumer_name = name or f"{func.__module__}.{func.__qualname__}"
        if consumer_name in HANDLERS and HANDLERS[consumer_name] is not func:
            raise ValueError(f"two consumers are named {consumer_name}")
        HANDLERS[consumer_name] = func
        for event_name in event_names:
            names = SUBSCRIPTIONS.setdefault(event_name, [])
            if consumer_name not in names:
                names.append(consumer_name)
        return func

    return register


def consumers_of(event_name: str) -> list[str]:
    return list(SUBSCRIPTIONS.get(event_name, ()))
