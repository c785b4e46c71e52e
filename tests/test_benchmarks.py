"""The benchmarks still run (with tiny parameters): each starts what it needs, prints one JSON line and meets
its correctness targets. The figures themselves are for bench/README.md, not for CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(script: str, *args: str) -> dict:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "DJANGO_SETTINGS"))
    }
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
    )
    last = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
    assert last.startswith("{"), completed.stdout[-2000:] + completed.stderr[-2000:]
    return json.loads(last)


def test_holds_bench_never_oversells():
    result = _run("holds.py", "--clients", "16", "--attempts", "300", "--seats", "20", "--seconds", "0.5")
    assert (result["successes"], result["oversold"], result["errors"]) == (20, 0, 0), result
    assert result["counters_match_rows"] is True


def test_availability_bench_serves_without_errors():
    result = _run(
        "availability.py",
        "--users",
        "30",
        "--seconds",
        "2",
        "--tours",
        "2",
        "--max-steps",
        "0",
        "--timeout",
        "200",
    )
    assert result["errors"] == 0 and result["requests"] > 0, result


def test_booking_flow_bench_confirms_and_finishes_every_booking():
    """Three bookings through the API against uvicorn and a Celery worker; each gets its invoice, invoice PDF,
    voucher and confirmation email from the consumers (the bench's default expectations)."""
    result = _run(
        "booking_flow.py",
        *("--bookings", "3", "--agencies", "2", "--tours", "1", "--wait", "45", "--timeout", "200"),
    )
    assert result["expect"] == ["invoice", "invoice_pdf", "voucher", "email"], result
    assert (result["confirmed"], result["errors"], result["missing"]) == (3, 0, {}), result
    assert result["seats_sold_match"] is True and result["dead_letters"] == 0, result
    assert result["requests"] == 3 * 5 and result["confirmed_to_documents_p95_ms"] is not None, result
