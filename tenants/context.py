"""The one mechanism that sets the current tenant.

``tenant_context(tenant)`` opens a transaction (or a savepoint inside one) and runs
``set_config('app.tenant_id', <id>, true)``: the setting lives exactly as long as the transaction, which is what
keeps it correct under PgBouncer transaction pooling. PostgreSQL's row-level security policies read it; with no
tenant set they see NULL, so every query returns zero rows and every write fails (fail closed).

The same id is kept in a context variable so the ORM can add ``tenant_id = …`` to queries (for the indexes) and
new rows get their tenant filled in. Context variables follow ``asyncio`` tasks and ``sync_to_async`` threads.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db import connections, transaction

from core import locking

if TYPE_CHECKING:
    from tenants.models import Tenant

_current_tenant_id: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "tenant_id", default=None
)


class NoTenantError(LookupError):
    """Raised where code needs the current tenant and none is set."""


def current_tenant_id() -> uuid.UUID | None:
    return _current_tenant_id.get()


def require_tenant_id() -> uuid.UUID:
    tenant_id = _current_tenant_id.get()
    if tenant_id is None:
        raise NoTenantError("no tenant is set: wrap this code in tenants.context.tenant_context(tenant)")
    return tenant_id


def _as_uuid(tenant: Tenant | uuid.UUID | str) -> uuid.UUID:
    if isinstance(tenant, uuid.UUID):
        return tenant
    if isinstance(tenant, str):
        return uuid.UUID(tenant)
    return tenant.pk


def _set_database_tenant(tenant_id: uuid.UUID | None, using: str, *, entering: bool = False) -> None:
    select = "SELECT set_config('app.tenant_id', %s, true)"
    noting = entering and locking.order_is_checked_from_here(using)  # where the lock order is checked
    with connections[using].cursor() as cursor:
        cursor.execute(locking.noting_transaction_start(select) if noting else select, [str(tenant_id or "")])
        if noting:
            locking.note_transaction_start(cursor.fetchone()[-1], using)


@contextlib.contextmanager
def tenant_context(tenant: Tenant | uuid.UUID | str, using: str = "default") -> Iterator[uuid.UUID]:
    """Run the block in a transaction scoped to ``tenant``; nested blocks become savepoints.

    A nested block for another tenant is allowed (platform jobs walk tenants) and the outer tenant is restored
    when it ends.
    """
    tenant_id = _as_uuid(tenant)
    outer = _current_tenant_id.get()
    nested = connections[using].in_atomic_block
    token = _current_tenant_id.set(tenant_id)
    try:
        with transaction.atomic(using=using):
            _set_database_tenant(tenant_id, using, entering=True)
            yield tenant_id
            if nested and outer != tenant_id and not connections[using].needs_rollback:
                # Releasing the savepoint keeps our setting: give the rest of the outer transaction its tenant
                # back. (On an exception the savepoint rolls back, which restores the setting by itself.)
                _set_database_tenant(outer, using)
    finally:
        _current_tenant_id.reset(token)


@contextlib.contextmanager
def tenant_bound(tenant: Tenant | uuid.UUID | str) -> Iterator[uuid.UUID]:
    """Make ``tenant`` current without opening a transaction, for code that must not sit in one long transaction
    (a view or task that calls a payment gateway): it opens ``tenant_context(require_tenant_id())`` around each
    of its database steps itself. Outside those steps the database sees no tenant (fail closed)."""
    tenant_id = _as_uuid(tenant)
    token = _current_tenant_id.set(tenant_id)
    try:
        yield tenant_id
    finally:
        _current_tenant_id.reset(token)


@contextlib.contextmanager
def no_tenant() -> Iterator[None]:
    """Explicitly leave tenant scope (platform-level code on a tenant request)."""
    token = _current_tenant_id.set(None)
    try:
        yield
    finally:
        _current_tenant_id.reset(token)
