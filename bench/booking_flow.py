"""Complete bookings over the real API, all at once, and how long the worker takes to finish each one.

    .venv/bin/python bench/booking_flow.py                       # 50 concurrent bookings
    .venv/bin/python bench/booking_flow.py --bookings 10 --expect invoice,voucher

1. Starts what it needs: the embedded servers (if not running; stops only what it started), a throwaway database it
   migrates and drops at the end, uvicorn as ``make run`` starts it (``tourops.asgi``, 2 workers, DEBUG off, TLS
   settings on behind a trusted ``X-Forwarded-Proto`` as a TLS-terminating proxy would send) and a Celery worker
   (concurrency 2) on a queue of its own, so no other worker on the same broker takes its tasks.
2. Seeds one tenant: --tours published tours (trade and retail prices, a departure a day for two weeks) and
   --agencies agencies, each with a contract whose credit covers every booking and one booker who signs in with
   ``/api/v1/auth/token/``.
3. --bookings concurrent clients (threads, one keep-alive connection each, started together) each complete one
   booking as an agency booker: search → availability → hold (2 adults) → booking with 2 named travellers on account
   → confirm. Every HTTP step is timed.
4. Waits (at most --wait seconds) until every confirmed booking has what the consumers make, as named by --expect:
   ``invoice`` (bookings.Invoice), ``invoice_pdf`` and ``voucher`` (bookings.Document), ``email`` (the confirmation
   in bookings.Notification, queued) and ``email_sent`` (sent). Whatever is still missing then is reported, not
   waited for.

Prints ONE JSON object as its last line: "request_p95_ms" (all HTTP steps; target < 1,000), "steps" (p50/p95 per
step), "confirmed_to_documents_p95_ms" (from a booking's ``confirmed_at`` to the ``created_at`` of the last row it
expects; target < 1,000), "consumers" (per expectation), counts, "errors", "missing", wall times and "ok". The exit
status is 0 when every booking was confirmed and finished without errors and both targets are met.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _harness import bench_database, database_env, free_port, stop_process_group  # noqa: E402

TARGET_MS = 1000.0
STEPS = ("search", "availability", "hold", "booking", "confirm")
PASSWORD = "bench booker password, not a secret"
TRAVELLERS = (("Ana", "Lima"), ("Rui", "Costa"))
DEPARTURE_DAYS = range(7, 21)  # a departure a day, one to three weeks ahead


@dataclass(frozen=True)
class Expectation:
    """A row a consumer makes for a confirmed booking, and which of its columns says when."""

    model: str
    filters: dict
    time_field: str


EXPECTATIONS = {
    "invoice": Expectation("bookings.Invoice", {"kind": "invoice"}, "issued_at"),
    "invoice_pdf": Expectation("bookings.Document", {"kind": "invoice"}, "created_at"),
    "voucher": Expectation("bookings.Document", {"kind": "voucher"}, "created_at"),
    "email": Expectation("bookings.Notification", {"kind": "confirmation"}, "created_at"),
    "email_sent": Expectation(
        "bookings.Notification", {"kind": "confirmation", "sent_at__isnull": False}, "sent_at"
    ),
}
DEFAULT_EXPECT = "invoice,invoice_pdf,voucher,email"


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank, in the values' unit, rounded to 0.01."""
    if not values:
        return None
    data = sorted(values)
    return round(data[min(len(data) - 1, int(p / 100 * len(data)))], 2)


def summary(values_ms: list[float]) -> dict:
    return {
        "count": len(values_ms),
        "p50_ms": percentile(values_ms, 50),
        "p95_ms": percentile(values_ms, 95),
        "max_ms": round(max(values_ms), 2) if values_ms else None,
    }


# --- the processes: web server and worker ---------------------------------------------------------------------


def asgi_application():
    """The uvicorn factory: ``tourops.asgi.application`` (what ``make run`` serves), its tasks sent to this run's
    queue."""
    _use_own_queue(os.environ["BENCH_CELERY_QUEUE"])
    from tourops.asgi import application

    return application


def _use_own_queue(queue: str) -> None:
    from tourops.celery import app

    app.conf.task_default_queue = queue


def run_worker(queue: str, ready_file: str, concurrency: int) -> None:
    """The Celery worker of ``make run`` (prefork, --concurrency), on this run's queue only; touches ``ready_file``
    once it consumes. Gossip and mingle are off: they would talk to other workers on the same broker."""
    from celery.signals import worker_ready

    from tourops.celery import app

    _use_own_queue(queue)
    worker_ready.connect(lambda **_: Path(ready_file).write_text("ready"), weak=False)
    app.worker_main(
        [
            "worker",
            "--queues", queue,
            "--hostname", f"{queue}@%h",
            "--concurrency", str(concurrency),
            "--loglevel", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
    )  # fmt: skip


@dataclass
class Processes:
    server: subprocess.Popen
    worker: subprocess.Popen
    log_dir: Path
    ready_file: Path
    port: int

    def stop(self) -> None:
        for process in (self.server, self.worker):
            stop_process_group(process)

    def log_tail(self, name: str, chars: int = 1500) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def start_processes(database: str, queue: str, args) -> Processes:
    log_dir = Path(tempfile.mkdtemp(prefix="bench_booking_flow_"))
    ready_file = log_dir / "worker.ready"
    port = free_port()
    env = database_env(database)
    # The harness turns the connection pool off for its own threads; the server and worker keep it, as in make run.
    env.pop("DATABASE_POOL_MAX_SIZE", None)
    env.pop("DJANGO_DEBUG", None)
    env.update(
        {
            "BENCH_CELERY_QUEUE": queue,
            "TRUST_X_FORWARDED_PROTO": "true",
            "PUBLIC_PORT": str(port),  # links on vouchers and in emails point at this server
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "API_THROTTLE_TOKEN": "1000/min",  # every booker signs in from this one address
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    server_command = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "--factory", "booking_flow:asgi_application",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.web_workers),
        "--no-access-log", "--proxy-headers", "--lifespan", "off", "--log-level", "warning",
    ]  # fmt: skip
    worker_command = [
        sys.executable, __file__, "--worker", queue, "--ready-file", str(ready_file),
        "--concurrency", str(args.concurrency),
    ]  # fmt: skip
    started = []
    for name, command in (("server", server_command), ("worker", worker_command)):
        log = (log_dir / f"{name}.log").open("wb")
        started.append(
            subprocess.Popen(  # noqa: S603 (our own argv)
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
        log.close()
    return Processes(*started, log_dir=log_dir, ready_file=ready_file, port=port)


def wait_ready(processes: Processes, host: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    server_up = False
    while time.monotonic() < deadline:
        for name, process in (("server", processes.server), ("worker", processes.worker)):
            if process.poll() is not None:
                raise RuntimeError(f"the {name} exited during start-up: {processes.log_tail(name)}")
        if not server_up:
            try:
                status, _, _ = Client(processes.port, host).call("GET", "/healthz")
                server_up = status == 200
            except OSError:
                pass
        if server_up and processes.ready_file.exists():
            return
        time.sleep(0.2)
    raise RuntimeError(
        f"not ready within {timeout:.0f} s: server {'up' if server_up else 'down'}, "
        f"worker {'ready' if processes.ready_file.exists() else 'not ready'}: {processes.log_tail('worker')}"
    )


# --- the data -------------------------------------------------------------------------------------------------


def seed(tours: int, agencies: int, bookings: int, host: str) -> tuple[object, list[str]]:
    """One tenant with published tours and departures, and agencies with a contract and a booker each. Returns the
    tenant and the bookers' emails."""
    from zoneinfo import ZoneInfo

    from accounts.models import User
    from partners import services as partners
    from partners.models import Contract
    from tenants.context import tenant_context
    from tenants.models import Membership
    from tests.catalogue import make_departure, make_option, make_price_list, make_tour, make_unit_types
    from tests.factories import make_tenant
    from tours.models import Channel

    tenant = make_tenant(f"bookflow{os.getpid()}", host=host)
    today = dt.date.today()
    emails = []
    with tenant_context(tenant):
        owner = Membership.objects.get(role="owner").user
        for n in range(tours):
            tour = make_tour(f"Bench kayak tour {n}", slug=f"bench-kayak-{n}", time_zone="Europe/Lisbon")
            option = make_option(tour)
            units = make_unit_types(tour)
            make_price_list(option, units, {"adult": 9000, "child": 4500, "infant": 0})
            make_price_list(option, units, {"adult": 7500, "child": 3800, "infant": 0}, channel=Channel.TRADE)
            zone = ZoneInfo(tour.time_zone)
            for days in DEPARTURE_DAYS:
                day = today + dt.timedelta(days=days)
                starts_at = dt.datetime(day.year, day.month, day.day, 9, tzinfo=zone).astimezone(dt.UTC)
                make_departure(option, capacity=40, starts_at=starts_at)
        credit = bookings * 2 * 7500 * 10  # ample: the credit check is measured, not the refusal
        for n in range(agencies):
            agency = partners.create_agency(
                actor=owner, legal_name=f"Bench Agency {n} Ltd", country="GB", currency="EUR",
                email=f"agency{n}@bench.example",
            )  # fmt: skip
            partners.save_contract(
                agency,
                actor=owner,
                model=Contract.Model.NET_RATE,
                credit_limit=credit,
                valid_from=today - dt.timedelta(days=1),
            )
            email = f"booker{n}@bench{os.getpid()}.example"
            partners.add_partner_user(agency, email=email, actor=owner)
            emails.append(email)
    for user in User.objects.filter(email__in=emails):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return tenant, emails


# --- the clients ----------------------------------------------------------------------------------------------


class StepFailed(Exception):
    def __init__(self, step: str, status: int | None, detail: str):
        super().__init__(f"{step}: {status} {detail}")
        self.step, self.status, self.detail = step, status, detail


class Client:
    """One keep-alive connection, as a booker's integration would hold; JSON in and out."""

    def __init__(self, port: int, host: str, token: str | None = None):
        self.port, self.host, self.token = port, host, token
        self.connection: http.client.HTTPConnection | None = None

    def call(
        self, method: str, path: str, body: dict | None = None, **headers: str
    ) -> tuple[int, object, float]:
        """Returns (status, decoded JSON or text, elapsed seconds including any reconnect)."""
        headers = {"Host": self.host, "X-Forwarded-Proto": "https", "Accept": "application/json", **headers}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: retry once on a new one
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.connection.request(method, path, body=data, headers=headers)
                response = self.connection.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt == 2 or not reused:
                    raise
        elapsed = time.perf_counter() - started
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw[:300].decode(errors="replace")
        return response.status, decoded, elapsed

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


@dataclass
class Results:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {step: [] for step in STEPS})
    booking_ids: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, client: Client, step: str, expected: int, method: str, path: str, body=None, **headers):
        try:
            status, data, elapsed = client.call(method, path, body, **headers)
        except (OSError, http.client.HTTPException) as error:
            raise StepFailed(step, None, repr(error)) from error
        with self.lock:
            self.latencies_ms[step].append(elapsed * 1000)
        if status != expected:
            raise StepFailed(step, status, json.dumps(data)[:300])
        return data


def sign_in(port: int, host: str, emails: list[str]) -> tuple[list[str], list[float]]:
    tokens, latencies = [], []
    for email in emails:
        status, data, elapsed = Client(port, host).call(
            "POST", "/api/v1/auth/token/", {"email": email, "password": PASSWORD}
        )
        if status != 200:
            raise RuntimeError(f"{email} could not sign in: {status} {data}")
        tokens.append(data["access"])
        latencies.append(elapsed * 1000)
    return tokens, latencies


def complete_booking(n: int, client: Client, results: Results) -> None:
    """search → availability → hold → booking with 2 travellers on account → confirm, as an agency's booker."""
    rng = random.Random(n)
    first = dt.date.today() + dt.timedelta(days=DEPARTURE_DAYS.start)
    last = dt.date.today() + dt.timedelta(days=DEPARTURE_DAYS.stop - 1)
    found = results.timed(
        client, "search", 200, "GET", f"/api/v1/tours/?q=kayak&date_from={first}&date_to={last}&limit=20"
    )
    if not found["results"]:
        raise StepFailed("search", 200, "no tour found")
    slug = found["results"][n % len(found["results"])]["slug"]
    calendar = results.timed(
        client, "availability", 200, "GET", f"/api/v1/tours/{slug}/availability/?from={first}&to={last}"
    )
    bookable = [
        d for d in calendar["departures"] if d["seats_left"] >= 2 and d["status"] in ("available", "limited")
    ]
    if not bookable:
        raise StepFailed("availability", 200, "no departure with 2 seats left")
    key = f"bench-{os.getpid()}-{n}"
    hold = results.timed(
        client, "hold", 201, "POST", "/api/v1/holds/",
        {"departure": rng.choice(bookable)["departure"], "units": {"adult": 2}},
        **{"Idempotency-Key": f"{key}-hold"},
    )  # fmt: skip
    booking = results.timed(
        client, "booking", 201, "POST", "/api/v1/bookings/",
        {
            "holds": [hold["id"]],
            "lead": {"name": "Ana Lima", "email": f"lead{n}@bench.example", "phone": "+351 912 345 678"},
            "travellers": [
                {"unit_code": "adult", "first_name": first_name, "last_name": last_name}
                for first_name, last_name in TRAVELLERS
            ],
            "language": "en",
            "on_account": True,
            "agent_reference": f"BENCH-{n}",
        },
        **{"Idempotency-Key": f"{key}-booking"},
    )  # fmt: skip
    confirmed = results.timed(client, "confirm", 200, "POST", f"/api/v1/bookings/{booking['id']}/confirm/")
    if confirmed["status"] != "confirmed":
        raise StepFailed("confirm", 200, f"status {confirmed['status']}")
    with results.lock:
        results.booking_ids.append(booking["id"])


def run_bookings(port: int, host: str, tokens: list[str], bookings: int, ramp: float) -> Results:
    """``bookings`` threads released together (or spread over ``ramp`` seconds)."""
    results = Results()
    barrier = threading.Barrier(bookings + 1)

    def run(n: int) -> None:
        client = Client(port, host, tokens[n % len(tokens)])
        try:
            barrier.wait()
            if ramp:
                time.sleep(ramp * n / bookings)
            complete_booking(n, client, results)
        except StepFailed as failure:
            with results.lock:
                results.errors.append({"booking": n, "step": failure.step, "status": failure.status,
                                       "detail": failure.detail})  # fmt: skip
        except Exception as error:  # noqa: BLE001 - counted and reported; the other bookings go on
            with results.lock:
                results.errors.append({"booking": n, "step": "client", "status": None, "detail": repr(error)})
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(bookings)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    return results


# --- the worker's part ----------------------------------------------------------------------------------------


def wait_for_consumers(tenant, booking_ids: list[str], expect: list[str], wait: float) -> tuple[dict, dict]:
    """Polls until every booking has a row for every expectation, or ``wait`` seconds. Returns
    {expectation: {booking_id: when}} and {booking_id: confirmed_at}."""
    from django.apps import apps
    from django.db.models import Min

    from bookings.models import Booking
    from tenants.context import tenant_context

    started = time.monotonic()
    found: dict[str, dict] = {name: {} for name in expect}
    with tenant_context(tenant):
        confirmed_at = dict(Booking.objects.filter(pk__in=booking_ids).values_list("pk", "confirmed_at"))
        confirmed_at = {str(pk): at for pk, at in confirmed_at.items()}
        while True:
            for name in expect:
                expectation = EXPECTATIONS[name]
                model = apps.get_model(expectation.model)
                rows = (
                    model.objects.filter(booking_id__in=booking_ids, **expectation.filters)
                    .values("booking_id")
                    .annotate(at=Min(expectation.time_field))
                )
                found[name] = {str(row["booking_id"]): row["at"] for row in rows}
            complete = all(len(found[name]) == len(booking_ids) for name in expect)
            if complete or time.monotonic() - started >= wait:
                return found, confirmed_at
            time.sleep(0.2)


def consumer_figures(found: dict, confirmed_at: dict, expect: list[str]) -> dict:
    """Per expectation and overall: milliseconds from confirmed_at to the row, and what is missing."""
    per_expectation, missing = {}, {}
    last_row_ms = []
    for name in expect:
        delays = [
            (found[name][pk] - at).total_seconds() * 1000
            for pk, at in confirmed_at.items()
            if pk in found[name]
        ]
        per_expectation[name] = {"made": len(found[name]), **summary(delays)}
        absent = [pk for pk in confirmed_at if pk not in found[name]]
        if absent:
            missing[name] = len(absent)
    for pk, at in confirmed_at.items():
        if all(pk in found[name] for name in expect):
            last_row_ms.append(max((found[name][pk] - at).total_seconds() * 1000 for name in expect))
    return {
        "consumers": per_expectation,
        "missing": missing,
        "finished_bookings": len(last_row_ms),
        "confirmed_to_documents_p50_ms": percentile(last_row_ms, 50),
        "confirmed_to_documents_p95_ms": percentile(last_row_ms, 95),
        "confirmed_to_documents_max_ms": round(max(last_row_ms), 2) if last_row_ms else None,
    }


def integrity(tenant, booking_ids: list[str]) -> dict:
    """Seats sold match the confirmed bookings; consumers that gave up (dead letters)."""
    from django.db.models import Sum

    from events.models import DeadLetter
    from inventory.models import Departure
    from tenants.context import tenant_context

    with tenant_context(tenant):
        sold = Departure.objects.aggregate(sold=Sum("sold"))["sold"] or 0
        dead = list(DeadLetter.objects.values_list("consumer", "error")[:5])
    return {
        "seats_sold": sold,
        "seats_sold_match": sold == 2 * len(booking_ids),
        "dead_letters": len(dead),
        "dead_letter_samples": [f"{consumer}: {error[:200]}" for consumer, error in dead],
    }


# --- the run --------------------------------------------------------------------------------------------------


def measure(args, database: str, started: float) -> dict:
    host = f"bookflow{os.getpid()}.localhost"
    queue = f"bench-booking-flow-{os.getpid()}"
    expect = args.expect
    result: dict = {"bookings": args.bookings, "agencies": args.agencies, "expect": expect}
    phases = Phases(started)
    processes = start_processes(database, queue, args)  # they boot while the data is seeded
    phases.done("database")
    tenant = None
    try:
        tenant, emails = seed(args.tours, args.agencies, args.bookings, host)
        phases.done("seed")
        wait_ready(processes, host)
        phases.done("start_up")
        tokens, sign_in_ms = sign_in(processes.port, host, emails)
        phases.done("sign_in")
        results = run_bookings(processes.port, host, tokens, args.bookings, args.ramp)
        phases.done("bookings")
        all_requests = [ms for step in STEPS for ms in results.latencies_ms[step]]
        result.update(
            {
                "confirmed": len(results.booking_ids),
                "errors": len(results.errors),
                "error_samples": results.errors[:5],
                "requests": len(all_requests),
                "request_p50_ms": percentile(all_requests, 50),
                "request_p95_ms": percentile(all_requests, 95),
                "request_max_ms": round(max(all_requests), 2) if all_requests else None,
                "steps": {step: summary(results.latencies_ms[step]) for step in STEPS},
                "sign_in": summary(sign_in_ms),
            }
        )
        found, confirmed_at = wait_for_consumers(tenant, results.booking_ids, expect, args.wait)
        phases.done("consumers")  # from the last confirmation to the last expected row (or --wait)
        result.update(consumer_figures(found, confirmed_at, expect))
        result.update(integrity(tenant, results.booking_ids))
        if result["missing"] or result["dead_letters"]:
            result["worker_log_tail"] = processes.log_tail("worker", 800)
        targets_met = all(
            result[figure] is not None and result[figure] < TARGET_MS
            for figure in ("request_p95_ms", "confirmed_to_documents_p95_ms")
        )
        correct = (
            result["errors"] == 0
            and result["confirmed"] == args.bookings
            and not result["missing"]
            and result["seats_sold_match"]
            and result["dead_letters"] == 0
        )
        result["correct"] = correct
        result["ok"] = correct and targets_met
    except Exception as error:  # noqa: BLE001 - still one JSON line, with what the processes said
        result.update(
            {"ok": False, "error": repr(error), "server_log_tail": processes.log_tail("server", 800)}
        )
        result["worker_log_tail"] = processes.log_tail("worker", 800)
    finally:
        processes.stop()
        _forget(queue, host, tenant)
        phases.done("stop")
        if result.get("correct"):  # slow but right: the logs say nothing the figures do not
            shutil.rmtree(processes.log_dir, ignore_errors=True)
        else:
            result["logs"] = str(processes.log_dir)
        result["phases_s"] = phases.seconds
        result["total_wall_s"] = round(time.monotonic() - started, 2)
    return result


class Phases:
    """Wall time of each phase of the run, in seconds."""

    def __init__(self, started: float):
        self.last = started
        self.seconds: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self.last, 2)
        self.last = now


def _forget(queue: str, host: str, tenant) -> None:
    """What the run left in the shared Valkey: its queue and its cache entries."""
    import redis
    from django.conf import settings
    from django.core.cache import cache

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # The queue (empty unless the run was cut short) and kombu's routing sets for the exchange named after it.
    broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    broker.close()
    cache.delete_pattern(f"*{host}*")
    if tenant is not None:
        cache.delete_pattern(f"*{tenant.pk}*")


def _expectations(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(EXPECTATIONS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expect one or more of {', '.join(EXPECTATIONS)} (got {', '.join(unknown) or 'nothing'})"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=50, help="concurrent complete bookings")
    parser.add_argument(
        "--agencies", type=int, default=10, help="agencies (one booker each) sharing the bookings"
    )
    parser.add_argument("--tours", type=int, default=5)
    parser.add_argument(
        "--expect", type=_expectations, default=_expectations(DEFAULT_EXPECT),
        help=f"rows each confirmed booking must get from the consumers: {', '.join(EXPECTATIONS)} "
        f"(default {DEFAULT_EXPECT})",
    )  # fmt: skip
    parser.add_argument("--wait", type=float, default=60.0, help="longest wait for the consumers, seconds")
    parser.add_argument(
        "--ramp", type=float, default=0.0, help="spread the bookings' start over this many seconds"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--timeout", type=float, default=300.0, help="hard limit for the whole run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run the Celery worker on this queue
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker, args.ready_file, args.concurrency)
        return 0
    if args.bookings < 1 or args.agencies < 1 or args.tours < 1:
        parser.error("--bookings, --agencies and --tours are at least 1")

    started = time.monotonic()
    # Interrupted (Ctrl-C, SIGTERM): still stop the server and the worker and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with bench_database("bench_booking_flow", args.timeout) as database:
        result = measure(args, database, started)
    print(json.dumps(result), flush=True)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
