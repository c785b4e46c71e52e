"""Closed-loop HTTP load against a running server (loopback only): N concurrent clients for T seconds.

    .venv/bin/python bench/http_load.py --url http://127.0.0.1:8000/ --host nordlys.localhost --clients 50 --seconds 10
    .venv/bin/python bench/http_load.py --url http://127.0.0.1:8000/api/v1/me/ --host nordlys.localhost \
        --login sales@nordlys.demo:tourops-demo-2026

With --login the clients send a bearer token obtained once from the host's token endpoint (a role without MFA).

Prints requests/s and latency percentiles. Bounded in count and time; stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit


def access_token(parts, host: str, login: str) -> str:
    email, _, password = login.partition(":")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
    body = json.dumps({"email": email, "password": password})
    conn.request("POST", "/api/v1/auth/token/", body, {"Host": host, "Content-Type": "application/json"})
    response = conn.getresponse()
    payload = json.loads(response.read() or b"{}")
    if response.status != 200:
        raise SystemExit(f"sign-in failed ({response.status}): {payload}")
    return payload["access"]


def run(url: str, host: str, clients: int, seconds: float, max_requests: int, login: str = "") -> dict:
    parts = urlsplit(url)
    if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("loopback targets only")
    headers = {"Host": host}
    if login:
        headers["Authorization"] = f"Bearer {access_token(parts, host, login)}"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
        while time.monotonic() < deadline:
            with lock:
                if len(latencies) >= max_requests:
                    return
            started = time.perf_counter()
            conn.request("GET", parts.path or "/", headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    begun = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    duration = time.monotonic() - begun
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / duration, 1),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000/healthz")
    parser.add_argument("--host", default="nordlys.localhost")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument(
        "--login", default="", help="email:password of a member without MFA, for API endpoints"
    )
    args = parser.parse_args()
    print(run(args.url, args.host, args.clients, args.seconds, args.max_requests, args.login))


if __name__ == "__main__":
    main()
