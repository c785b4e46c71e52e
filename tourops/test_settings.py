"""Test configuration: starts the embedded servers when no DATABASE_URL / REDIS_URL are set, gives each
pytest-xdist worker its own Valkey databases, and otherwise keeps production's security settings."""

import atexit
import os

from tourops import devservices

_OWN_SERVERS = not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
if _OWN_SERVERS:
    _values = devservices.ensure_services()
    # Set in the environment so xdist workers, started after this, reuse the same servers.
    os.environ.update(_values)
    _started = devservices.ensure_services.started
    if (_started.postgres or _started.valkey) and "PYTEST_XDIST_WORKER" not in os.environ:
        atexit.register(devservices.stop_services, postgres=_started.postgres, valkey=_started.valkey)

# One id per test run (the xdist controller sets it, workers inherit it): concurrent runs on one machine get their
# own test databases, cache keys and Celery queues instead of tripping over each other.
RUN_ID = os.environ.setdefault("TOUROPS_TEST_RUN_ID", str(os.getpid()))
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
os.environ["REDIS_DB_OFFSET"] = str(4 * (1 + int(_worker.removeprefix("gw") or 0)))
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 20)
os.environ["SECURE_SSL_REDIRECT"] = "false"  # tests speak plain http to the test client; HSTS stays on
# Tests open, close, drop and switch the role of connections themselves, which a process-wide pool would hide;
# tests/attacks/test_isolation.py checks that a pooled connection comes back clean.
os.environ["DATABASE_POOL_MAX_SIZE"] = "0"
os.environ.setdefault("API_THROTTLE_ANON", "10000/min")
os.environ.setdefault("API_THROTTLE_USER", "10000/min")
os.environ.setdefault("API_THROTTLE_TOKEN", "10000/min")

from tourops.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; production keeps PBKDF2/Argon2
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOCK_ORDER_CHECK = True  # a lock taken against core.locking.LOCK_ORDER fails the test that took it

DATABASES["default"]["TEST"] = {"NAME": f"test_tourops_{RUN_ID}"}  # noqa: F405 (xdist adds _gw<N>)
for _cache in CACHES.values():  # noqa: F405
    _cache["KEY_PREFIX"] = f"{_cache['KEY_PREFIX']}-test{RUN_ID}"
CELERY_TASK_DEFAULT_QUEUE = f"tourops-test-{RUN_ID}-{_worker}"

# Tests do not collect static files; an existing (empty) root keeps WhiteNoise from warning on every client.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
