"""Holds under concurrency: the hold service against one departure row, from many clients at once.

    .venv/bin/python bench/holds.py                   # 10,000 attempts, 64 clients, 5 s throughput windows
    .venv/bin/python bench/holds.py --clients 96 --seconds 8

1. 10,000 one-seat hold attempts from 64 concurrent clients (threads, each with its own database connection)
   through ``place_hold`` on one 50-seat departure → "successes" (must be 50) and "oversold" (seats held or sold
   beyond capacity, counted from the hold rows and from the counters; must be 0).
2. Throughput on a departure too large to fill: ``place_hold`` for a fixed time, then the bare minimum the same
   work needs in raw SQL (tenant transaction, conditional UPDATE of the departure, INSERT of the hold) at the same
   concurrency → "service_hps", "raw_hps", "ratio" (service / raw; target >= 0.5).

Starts the embedded servers if they are not running (and stops only what it started), works in a throwaway
database that it migrates and drops, is bounded in time (--timeout), and prints ONE JSON object as its last line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import bench_database  # noqa: E402


def _world(capacities: list[int]):
    from tenants.context import tenant_context
    from tests.catalogue import make_departure, make_option, make_tour, make_unit_types
    from tests.factories import make_tenant

    tenant = make_tenant(f"bench{os.getpid()}")
    with tenant_context(tenant):
        tour = make_tour()
        option = make_option(tour)
        make_unit_types(tour)
        start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(microsecond=0)
        departures = [
            make_departure(option, capacity=capacity, starts_at=start + dt.timedelta(hours=index))
            for index, capacity in enumerate(capacities)
        ]
    return tenant, departures


def _run_clients(clients: int, body) -> float:
    """Run ``body(index)`` in ``clients`` threads started together; returns the wall time."""
    from django.db import connections

    barrier = threading.Barrier(clients + 1)

    def run(index: int) -> None:
        try:
            barrier.wait()
            body(index)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def contention(tenant, departure, clients: int, attempts: int) -> dict:
    """Phase 1: many more attempts than seats."""
    from django.db.models import Sum

    from core.errors import DomainError
    from inventory.models import Departure, Hold
    from inventory.services import place_hold
    from tenants.context import tenant_context

    counts = {"successes": 0, "refused": 0, "errors": 0}
    lock = threading.Lock()
    errors: list[str] = []

    def body(index: int) -> None:
        mine = {"successes": 0, "refused": 0, "errors": 0}
        for n in range(attempts // clients + (1 if index < attempts % clients else 0)):
            try:
                with tenant_context(tenant):
                    place_hold(departure, {"adult": 1}, "retail", f"p1-{index}-{n}")
                mine["successes"] += 1
            except DomainError as error:
                mine["refused" if error.code == "not_enough_seats" else "errors"] += 1
            except Exception as error:  # reported in the JSON: an IntegrityError here would be a 500
                mine["errors"] += 1
                if len(errors) < 3:
                    errors.append(repr(error))
        with lock:
            for key, value in mine.items():
                counts[key] += value

    seconds = _run_clients(clients, body)
    with tenant_context(tenant):
        fresh = Departure.objects.get(pk=departure.pk)
        taken_by_rows = (
            Hold.objects.filter(departure=fresh, status__in=["active", "converted"]).aggregate(
                n=Sum("seats")
            )["n"]
            or 0
        )
    oversold = max(
        0, fresh.held + fresh.sold + fresh.allotted - fresh.capacity, taken_by_rows - fresh.capacity
    )
    return {
        **counts,
        "attempts": attempts,
        "oversold": oversold,
        "held": fresh.held,
        "counters_match_rows": taken_by_rows == fresh.held + fresh.sold,
        "contention_seconds": round(seconds, 2),
        "contention_attempts_per_s": round(attempts / seconds, 1),
        "error_samples": errors,
    }


def _timed(clients: int, seconds: float, one) -> tuple[int, int]:
    """Call ``one(index, n)`` in a closed loop from every client for ``seconds``; returns (successes, failures)."""
    totals = [0, 0]
    lock = threading.Lock()

    def body(index: int) -> None:
        done = failed = n = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            n += 1
            try:
                one(index, n)
                done += 1
            except Exception:
                failed += 1
        with lock:
            totals[0] += done
            totals[1] += failed

    _run_clients(clients, body)
    return totals[0], totals[1]


def throughput(tenant, departure, clients: int, seconds: float) -> dict:
    """Phase 2: the service against the raw SQL it stands for, same clients, same row, same time."""
    from django.db import connection
    from django.utils import timezone

    from core.ids import uuid7
    from inventory.models import Departure, Hold
    from inventory.services import place_hold
    from tenants.context import tenant_context

    departure_table, hold_table = Departure._meta.db_table, Hold._meta.db_table

    def service(index: int, n: int, tag: str = "s") -> None:
        with tenant_context(tenant):
            place_hold(departure, {"adult": 1}, "retail", f"{tag}-{index}-{n}")

    def raw(index: int, n: int, tag: str = "r") -> None:
        now = timezone.now()
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {departure_table} SET held = held + 1 WHERE id = %s AND status = 'open' "
                "AND capacity - allotted - held - sold >= 1",
                [departure.id],
            )
            if cursor.rowcount != 1:
                raise RuntimeError("full")
            cursor.execute(
                f"INSERT INTO {hold_table} (tenant_id, id, departure_id, channel, units, seats, seats_from_allotment,"
                " idempotency_key, status, expires_at, created_at) VALUES (%s, %s, %s, 'retail', %s, 1, 0, %s,"
                " 'active', %s, %s)",
                [
                    tenant.pk,
                    uuid7(),
                    departure.id,
                    '{"adult": 1}',
                    f"{tag}-{index}-{n}",
                    now + dt.timedelta(minutes=15),
                    now,
                ],
            )

    # Warm both paths (connections, caches) before measuring; then alternate so neither gets the quieter machine.
    _timed(clients, 1.0, lambda i, n: service(i, n, "ws"))
    _timed(clients, 1.0, lambda i, n: raw(i, n, "wr"))
    service_done = raw_done = failures = 0
    half = seconds / 2
    for round_ in range(2):
        done, failed = _timed(clients, half, lambda i, n, r=round_: service(i, n, f"s{r}"))
        service_done += done
        failures += failed
        done, failed = _timed(clients, half, lambda i, n, r=round_: raw(i, n, f"r{r}"))
        raw_done += done
        failures += failed
    service_hps = service_done / seconds
    raw_hps = raw_done / seconds
    return {
        "service_hps": round(service_hps, 1),
        "raw_hps": round(raw_hps, 1),
        "ratio": round(service_hps / raw_hps, 3) if raw_hps else None,
        "throughput_failures": failures,
        "throughput_seconds_each": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--seats", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=6.0, help="throughput window per path")
    parser.add_argument("--timeout", type=float, default=300.0, help="hard limit for the whole run")
    args = parser.parse_args(argv)

    result: dict = {"clients": args.clients}
    with bench_database("bench_holds", args.timeout):
        from django.core.cache import cache

        tenant, (small, large) = _world([args.seats, 10_000_000])
        try:
            result.update(contention(tenant, small, args.clients, args.attempts))
            result.update(throughput(tenant, large, args.clients, args.seconds))
            result["ok"] = (
                result["oversold"] == 0
                and result["successes"] == args.seats
                and result["errors"] == 0
                and (result["ratio"] or 0) >= 0.5
            )
        finally:
            cache.delete_pattern(f"*avail*{tenant.pk}*")
    print(json.dumps(result), flush=True)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
