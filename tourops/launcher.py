"""`make run`: embedded servers (unless DATABASE_URL/REDIS_URL are set), migrate, demo data, then web + Celery
worker + beat in the foreground until Ctrl-C, which stops every process this launcher started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tourops import devservices

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def _env() -> tuple[dict[str, str], devservices.Started | None]:
    env = dict(os.environ)
    started = None
    if not (env.get("DATABASE_URL") and env.get("REDIS_URL")):
        env.update(devservices.ensure_services())
        started = devservices.ensure_services.started
    env.setdefault("DJANGO_SETTINGS_MODULE", "tourops.settings")
    env.setdefault("DJANGO_DEBUG", "true")
    env.setdefault("TLS_ENABLED", "false")  # plain http on *.localhost
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env, started


def _manage(env: dict[str, str], *args: str, capture: bool = False) -> str:
    result = subprocess.run(  # noqa: S603
        [PYTHON, str(BASE_DIR / "manage.py"), *args],
        env=env,
        cwd=BASE_DIR,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout or ""


def _wait_healthy(port: str, processes: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise SystemExit("a process exited during start-up; see its output above")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the web server did not answer /healthz on port {port} within {timeout:.0f} s")


def _start_fake_gateways(env: dict[str, str]) -> list[subprocess.Popen]:
    """The local Stripe and PayPal (there is no internet here), unless real gateways are configured
    (``STRIPE_API_BASE`` set, or ``FAKE_GATEWAYS=false``). Every process started after this uses them."""
    if env.get("STRIPE_API_BASE") or env.get("FAKE_GATEWAYS", "true").lower() in ("0", "false", "no"):
        return []
    from tourops import fakes

    stripe, stripe_url = fakes.spawn("tourops.fakes.stripe", env=env, cwd=BASE_DIR, start_new_session=True)
    paypal, paypal_url = fakes.spawn("tourops.fakes.paypal", env=env, cwd=BASE_DIR, start_new_session=True)
    env.update(
        STRIPE_API_BASE=stripe_url,
        STRIPE_JS_URL=f"{stripe_url}/js.stripe.com/v3/",
        PAYPAL_API_BASE=paypal_url,
    )
    return [stripe, paypal]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    started_at = time.monotonic()
    env, started = _env()
    port = env.get("PORT", "8000")
    env.setdefault("PUBLIC_PORT", port)  # links in emails and on vouchers point at this server
    print("· migrating", flush=True)
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "collectstatic", "--noinput", "-v", "0")
    _manage(env, "tenancy_check")
    processes: list[subprocess.Popen] = _start_fake_gateways(env)
    try:
        logins = _manage(
            env, "seed_demo", "--port", port, capture=True
        )  # registers the demo webhooks at the fakes
    except BaseException:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        raise

    commands = {
        "web": [
            PYTHON,
            "-m",
            "uvicorn",
            "tourops.asgi:application",
            "--host",
            env.get("HOST", "127.0.0.1"),
            "--port",
            port,
            "--workers",
            env.get("WEB_CONCURRENCY", "2"),
            "--no-access-log",
            "--proxy-headers",
            "--lifespan",
            "off",
        ],
        "worker": [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "tourops",
            "worker",
            "-l",
            "INFO",
            "--concurrency",
            env.get("CELERY_CONCURRENCY", "2"),
        ],
        "beat": [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "tourops",
            "beat",
            "-l",
            "INFO",
            "--schedule",
            str(devservices.VAR_DIR / "celerybeat-schedule"),
        ],
    }
    for command in commands.values():
        # Own process group each, so Ctrl-C handling is ours and children of children go too.
        processes.append(subprocess.Popen(command, env=env, cwd=BASE_DIR, start_new_session=True))  # noqa: S603

    def stop(*_args) -> None:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if started is not None and (started.postgres or started.valkey):
            devservices.stop_services(postgres=started.postgres, valkey=started.valkey)
        print(
            "\nStopped web, worker, beat and the local gateways"
            + (" and the embedded servers" if started and (started.postgres or started.valkey) else "")
            + ". Data stays in var/."
        )

    signal.signal(signal.SIGTERM, _interrupt)
    # Explicitly, too: a shell that starts us in the background (no job control) leaves SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    try:
        _wait_healthy(port, processes)
        elapsed = time.monotonic() - started_at
        print(
            "\n"
            + "=" * 100
            + f"\ntourops is running (ready in {elapsed:.1f} s). Ctrl-C stops everything.\n\n"
            + f"  Nordlys Adventures (tour operator)  http://nordlys.localhost:{port}/   back office: /admin/\n"
            + f"  Sahara Trails DMC (inbound DMC)     http://sahara.localhost:{port}/    back office: /admin/\n"
            + f"  Platform admin                      http://platform.localhost:{port}/admin/\n"
            + f"  API docs                            http://nordlys.localhost:{port}/api/v1/docs/\n"
            + f"  Health                              http://127.0.0.1:{port}/healthz\n\n"
            + logins
            + "\nBook a tour on a tenant's site and pay on its checkout page with Stripe's test cards (local fake):\n"
            + "  4242 4242 4242 4242 pays · 4000 0000 0000 0002 is declined · 4000 0027 6000 3184 asks for 3-D Secure;\n"
            + "  any future expiry date and any CVC. PayPal (the fallback) approves on its own local page.\n"
            + "\nEmails are printed here by the worker (console backend). "
            + "`./manage.py <command>` in another terminal uses the same database and cache.\n"
            + "=" * 100,
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("a process exited; stopping the others", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    raise SystemExit(main())
