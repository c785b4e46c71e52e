"""What every benchmark needs around it: the embedded servers, Django with production settings (DEBUG off, no
connection pool: each client thread has its own connection), a throwaway database migrated as the owner role and
used as the runtime role, and a hard time limit. Everything it started is stopped and dropped at the end."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _configure():
    from tourops import devservices

    os.environ.update(devservices.ensure_services())
    os.environ["DJANGO_SETTINGS_MODULE"] = "tourops.settings"
    os.environ["DATABASE_POOL_MAX_SIZE"] = "0"  # a shared pool would cap the client threads at its size
    os.environ.pop("DJANGO_DEBUG", None)
    import django

    django.setup()
    return devservices.ensure_services.started


@contextlib.contextmanager
def bench_database(prefix: str, timeout: float) -> Iterator[str]:
    """Yields the name of a fresh, migrated database (``<prefix>_<pid>``); gives up the whole process with a
    JSON error line after ``timeout`` seconds."""

    def give_up() -> None:
        print(json.dumps({"error": f"timed out after {timeout:.0f} s"}), flush=True)
        os._exit(2)

    watchdog = threading.Timer(timeout, give_up)
    watchdog.daemon = True
    watchdog.start()
    started = _configure()
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases

    from tenants.db import as_owner
    from tourops import devservices

    name = f"{prefix}_{os.getpid()}"
    connections["default"].settings_dict["TEST"]["NAME"] = name
    with as_owner():
        databases = setup_databases(verbosity=0, interactive=False)
    try:
        yield name
    finally:
        connections.close_all()
        with as_owner():
            teardown_databases(databases, verbosity=0)
        if started.postgres or started.valkey:
            devservices.stop_services(postgres=started.postgres, valkey=started.valkey)
        watchdog.cancel()


# --- processes the benchmarks start (web server, worker) ----------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_env(database: str) -> dict[str, str]:
    """This process's environment with both database URLs pointing at ``database`` (for the processes a benchmark
    starts against its throwaway database)."""
    from urllib.parse import urlsplit, urlunsplit

    env = dict(os.environ)
    for name in ("DATABASE_URL", "DATABASE_OWNER_URL"):
        env[name] = urlunsplit(urlsplit(env[name])._replace(path=f"/{database}"))
    return env


def stop_process_group(process, grace: float = 15.0) -> None:
    """SIGTERM to the process group a benchmark started (``start_new_session=True``), SIGKILL after ``grace``."""
    import signal
    import subprocess

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
