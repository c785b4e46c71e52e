"""Settings for the type checker: django-stubs' mypy plugin imports a settings module and sets Django up to learn
the models. This is production's settings with placeholder values for what they require from the environment, so
`make test` type-checks on a fresh clone with no PostgreSQL, Valkey or secrets: nothing connects to these."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "typecheck-only-not-a-secret-" + "x" * 24)
os.environ.setdefault("DATABASE_URL", "postgresql://typecheck@localhost/typecheck")
os.environ.setdefault("REDIS_URL", "redis://localhost:6379")

from tourops.settings import *  # noqa: E402,F403
