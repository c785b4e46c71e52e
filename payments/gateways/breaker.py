"""A circuit breaker per gateway, kept in the shared cache so every web and worker process sees the same state.

Closed: calls go through; failures (outages only) are counted in a fixed window. At ``failure_threshold`` failures
within ``window_seconds`` it opens: ``available()`` is False for ``open_seconds`` (checkout offers the other
gateway instead of making payers wait for timeouts). Then it is half-open: exactly one caller gets True and probes;
its success closes the breaker, its failure re-opens it for another ``open_seconds``.

Cache keys (all expire by themselves, so an idle breaker forgets):
- ``…:failures`` – failure count of the current window (created with the window's timeout by ``cache.add``);
- ``…:opened_at`` – when the breaker last opened (absent = closed);
- ``…:probe`` – taken with ``cache.add`` by the one half-open caller allowed through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import caches

from payments.gateways.base import GatewayUnavailable

T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        window_seconds: float = 60,
        open_seconds: float = 30,
        *,
        clock: Callable[[], float] = time.time,
        cache_alias: str = "default",
    ):
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.window_seconds = window_seconds
        self.open_seconds = open_seconds
        self.clock = clock  # wall-clock seconds shared by all processes; injectable so tests need not sleep
        self.cache = caches[cache_alias]
        prefix = f"payments:breaker:{name}"
        self._failures_key = f"{prefix}:failures"
        self._window_key = f"{prefix}:window_started"
        self._opened_key = f"{prefix}:opened_at"
        self._probe_key = f"{prefix}:probe"

    def _ttl(self, seconds: float) -> int:
        # Cache TTLs are whole seconds; the timestamps stored decide, TTLs only clean up.
        return max(1, int(seconds) + 1)

    def _opened_at(self) -> float | None:
        return self.cache.get(self._opened_key)

    def state(self) -> str:
        opened_at = self._opened_at()
        if opened_at is None:
            return CLOSED
        return OPEN if self.clock() - opened_at < self.open_seconds else HALF_OPEN

    def available(self) -> bool:
        """Closed → True. Open → False. Half-open → True for exactly one caller (the probe), False for the rest."""
        opened_at = self._opened_at()
        if opened_at is None:
            return True
        if self.clock() - opened_at < self.open_seconds:
            return False
        # cache.add is atomic (SET NX): one winner among every process. The probe key outlives a crashed prober
        # only by open_seconds, after which another caller may probe.
        return self.cache.add(self._probe_key, opened_at, timeout=self._ttl(self.open_seconds))

    def record_success(self) -> None:
        self.cache.delete_many([self._opened_key, self._probe_key, self._failures_key, self._window_key])

    def record_failure(self) -> None:
        now = self.clock()
        if self._opened_at() is not None:
            # A failed probe (or a straggler that started before the breaker opened): open for a new period.
            self._open(now)
            return
        window_started = self.cache.get(self._window_key)
        if window_started is None or now - window_started >= self.window_seconds:
            self.cache.set(self._window_key, now, timeout=self._ttl(self.window_seconds))
            self.cache.set(self._failures_key, 0, timeout=self._ttl(self.window_seconds))
        try:
            failures = self.cache.incr(self._failures_key)
        except ValueError:  # the count expired between the lines above: this failure starts a new window
            self.cache.add(self._failures_key, 1, timeout=self._ttl(self.window_seconds))
            failures = 1
        if failures >= self.failure_threshold:
            self._open(now)

    def _open(self, now: float) -> None:
        self.cache.set(self._opened_key, now, timeout=self._ttl(self.open_seconds + self.window_seconds))
        self.cache.delete_many([self._probe_key, self._failures_key, self._window_key])


def guarded(breaker: CircuitBreaker, call: Callable[[], T]) -> T:
    """Run ``call()`` and tell the breaker how it went. Only outages count as failures: a declined card or a
    rejected request means the gateway is up and answering."""
    try:
        result = call()
    except GatewayUnavailable:
        breaker.record_failure()
        raise
    breaker.record_success()
    return result
