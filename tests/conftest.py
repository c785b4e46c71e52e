from __future__ import annotations

import pytest
from django.core.cache import caches

from tenants.db import as_owner

# The local payment gateways (session fixtures `fake_stripe`, `fake_paypal`).
pytest_plugins = ["tests.fake_stripe", "tests.fake_paypal"]


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_modify_db_settings):
    """Create and migrate the test database as the owner role; the tests themselves run as the runtime role
    (not superuser, not BYPASSRLS, not owner), as the app does."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock(), as_owner():
        db_cfg = setup_databases(verbosity=request.config.option.verbose, interactive=False)
    yield
    with django_db_blocker.unblock(), as_owner():
        teardown_databases(db_cfg, verbosity=request.config.option.verbose)


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache: this run's keys only (other runs may share the server)."""
    for alias in ("default", "sessions"):
        caches[alias].delete_pattern("*")
    yield
