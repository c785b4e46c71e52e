from __future__ import annotations

import time

from django.core.cache import cache
from django.db import connection


def health_report() -> dict:
    checks = {}
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        cache.set("healthz", "1", 10)
        checks["cache"] = "ok" if cache.get("healthz") == "1" else "error: read back failed"
    except Exception as exc:  # noqa: BLE001
        checks["cache"] = f"error: {exc.__class__.__name__}"
    return {
        "ok": all(value == "ok" for value in checks.values()),
        "checks": checks,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
