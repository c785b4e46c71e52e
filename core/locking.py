"""Row locks: the one place rows are locked, and the one global order they are locked in.

A writer that must decide on committed numbers (a booking's paid amount, an agency's credit, the owners of a team)
locks the rows it decides on with ``lock_rows`` / ``lock_row``: ``SELECT … FOR NO KEY UPDATE OF <table>`` by default,
the lock a plain ``UPDATE`` takes, which does not block inserts of rows that reference the locked one. Seats are not
locked here: they move by conditional ``UPDATE`` statements on the departure row (``inventory.services``).

Two writers that lock the same rows in different orders can each hold one and wait for the other. So every
transaction takes its locks in ``LOCK_ORDER`` (model by model) and the rows of one model in primary-key order
(``lock_rows`` sorts them). Where the order is checked (``settings.LOCK_ORDER_CHECK``: tests and development), a lock
that could wait, taken after a lock of a later model or of a later row of the same model, raises
``LockOrderViolation``. Locks that cannot wait are exempt: rows taken with ``skip_locked``, and rows this transaction
created or changed itself (nobody else can hold those). A transaction is the application's: its outermost atomic
block (a ``tenant_context``), not a test case's own wrapping transaction.

A lock wait is bounded (``settings.LOCK_TIMEOUT_SECONDS``, as ``SET LOCAL lock_timeout``, which also bounds the rest
of the transaction's statements): waiting longer raises ``LockTimeout``, a retryable error that the API answers with
503 and ``Retry-After``, that a form shows as a message, and that an outbox consumer retries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import OperationalError, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import RawSQL

from core.errors import DomainError

M = TypeVar("M", bound=models.Model)

# The global lock order, as model labels: a transaction locks rows of an earlier model before those of a later one.
LOCK_ORDER: tuple[str, ...] = (
    "tenants.Membership",  # a team's owners (never locked with booking rows)
    "otp_totp.TOTPDevice",  # a user's authenticator being enrolled (alone)
    "partners.Agency",  # its credit and account: before any of its bookings
    "partners.PartnerUser",
    "bookings.Booking",  # what was paid, its status: every change of a booking starts here
    "bookings.BookingItem",
    "inventory.Hold",  # then its seats: holds before their departures …
    "inventory.Departure",
    "inventory.Allotment",  # … and a departure before its allotment blocks
    "payments.Payment",  # a payment's refunded amount: after the booking (and its seats, on cancellation)
    "bookings.Notification",  # an email being sent (alone)
    "events.OutboxEvent",  # the relay's sweep (alone, SKIP LOCKED)
)
RANK = {label: rank for rank, label in enumerate(LOCK_ORDER)}

NO_KEY_UPDATE = "no key update"
UPDATE = "update"  # also blocks inserts of rows that reference it: where that is the point (a team's owners)

# Where the order is checked, an application transaction notes the transaction id it starts with — its own, or its
# savepoint's inside a test case's transaction. PostgreSQL tells a savepoint's id only as the ``xmin`` of a row it
# writes, hence a scratch table of the session written to in the statement that sets the tenant (not counted as a
# query of its own). Rows whose version is at least that new and whose transaction is still in progress are the
# transaction's own: another transaction's rows in progress are invisible to it. (Tests and development only: a
# session's scratch table has no place behind a transaction-pooling PgBouncer.)
PROBE_TABLE = "lock_order_probe"
_XID8 = "(((pg_current_xact_id()::text::bigint >> 32) << 32) | {table}.xmin::text::bigint)"
_ROW_IS_OURS_SQL = (
    f"CASE WHEN {_XID8} >= %s THEN pg_xact_status({_XID8}::text::xid8) = 'in progress' ELSE false END"
)


class LockTimeout(DomainError):
    """Another writer held a row longer than the bound: nothing was changed; try again in a moment."""

    status = 503
    code = "busy"
    retry_after = 1

    def __init__(self, label: str):
        super().__init__(
            "Someone else is changing this right now; nothing was changed. Please try again in a moment."
        )
        self.label = label


class LockOrderViolation(AssertionError):
    """A lock taken against ``LOCK_ORDER`` (a bug: two such writers can deadlock)."""


@dataclass
class _Trail:
    """The locks one application transaction has taken so far, in order."""

    block: Any  # the transaction's outermost application atomic block …
    savepoint: str | None  # … and its savepoint, when a test case's transaction wraps it
    first_transaction_id: int
    last: tuple[int, Any] | None = None  # (rank, primary key) of the furthest lock in the order
    held: set[tuple[str, Any]] = field(default_factory=set)


def _application_block(connection: BaseDatabaseWrapper) -> tuple[Any, str | None] | None:
    """The outermost atomic block that is not a test case's, with its savepoint id (None when it is the
    transaction itself)."""
    for depth, block in enumerate(connection.atomic_blocks):
        if not getattr(block, "_from_testcase", False):
            return block, connection.savepoint_ids[depth - 1] if depth else None
    return None


def order_is_checked_from_here(using: str = "default") -> bool:
    """Whether the order is checked and the innermost atomic block is where an application transaction begins."""
    if not settings.LOCK_ORDER_CHECK:
        return False
    connection = connections[using]
    found = _application_block(connection)
    return found is not None and found[0] is connection.atomic_blocks[-1]


def noting_transaction_start(select_sql: str) -> str:
    """``select_sql`` (a SELECT of a few columns) with one more column: the id this transaction starts with."""
    probe = f"INSERT INTO {PROBE_TABLE} VALUES (0) RETURNING {_XID8.format(table=PROBE_TABLE)} AS first_id"
    return f"WITH transaction_start AS ({probe}) {select_sql}, (SELECT first_id FROM transaction_start)"


def note_transaction_start(first_transaction_id: int, using: str = "default") -> None:
    """Start the trail of the application transaction beginning in the innermost atomic block."""
    connection = connections[using]
    block, savepoint = _application_block(connection) or (None, None)
    connection.lock_trail = _Trail(block, savepoint, first_transaction_id)  # type: ignore[attr-defined]


def create_probe_table(sender, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """``connection_created``: the session's scratch table, where the order is checked."""
    if settings.LOCK_ORDER_CHECK and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NULL", [f"pg_temp.{PROBE_TABLE}"])
            if cursor.fetchone()[0]:
                cursor.execute(f"CREATE TEMP TABLE {PROBE_TABLE} (n int)")


def _current_trail(connection: BaseDatabaseWrapper) -> _Trail | None:
    trail = getattr(connection, "lock_trail", None)
    found = _application_block(connection)
    if trail is None or found is None or trail.block is not found[0] or trail.savepoint != found[1]:
        return None  # a transaction that began outside tenant_context (platform-level): not checked
    return trail


def _label(model: type[models.Model]) -> str:
    label = model._meta.concrete_model._meta.label  # type: ignore[union-attr]  # a concrete model has one
    if label not in RANK:
        raise LockOrderViolation(
            f"{label} is not in core.locking.LOCK_ORDER: place it there before locking it."
        )
    return label


def _check_and_record(trail: _Trail, label: str, keys: Iterable[Any], *, waits: bool) -> None:
    rank = RANK[label]
    new = sorted(key for key in keys if (label, key) not in trail.held)
    if not new:
        return
    if waits and trail.last is not None and (rank, new[0]) < trail.last:
        later = LOCK_ORDER[trail.last[0]]
        rule = f"{label} before {later}" if rank < trail.last[0] else "rows of one model in primary-key order"
        raise LockOrderViolation(
            f"{label} {new[0]} locked after {later} {trail.last[1]} in one transaction; core.locking.LOCK_ORDER "
            f"says {rule}."
        )
    trail.held.update((label, key) for key in new)
    trail.last = max(trail.last or (rank, new[-1]), (rank, new[-1]))


def lock_rows(
    queryset: models.QuerySet[M], *, skip_locked: bool = False, strength: str = NO_KEY_UPDATE
) -> list[M]:
    """Lock the rows of ``queryset`` (its model's table only, whatever it joins) in primary-key order and return
    them, fresh. With ``skip_locked``, rows another transaction holds are left out instead of waited for (sweeps);
    only such a queryset may be sliced (``[:limit]``), keeping its own order."""
    model = queryset.model
    label = _label(model)
    if queryset.query.is_sliced:
        if not skip_locked:
            raise ValueError(
                "A sliced queryset is locked only with skip_locked: which rows it names may change."
            )
    else:
        queryset = queryset.order_by("pk")
    connection = connections[queryset.db]
    if not connection.in_atomic_block:
        raise RuntimeError("Rows are locked inside a transaction (transaction.atomic or tenant_context).")
    trail = _current_trail(connection) if settings.LOCK_ORDER_CHECK else None
    if trail is not None and not skip_locked:
        table = connection.ops.quote_name(model._meta.db_table)
        # The table name is our model's, quoted; the only value is a parameter.
        ours = RawSQL(_ROW_IS_OURS_SQL.format(table=table), [trail.first_transaction_id])  # noqa: S611
        queryset = queryset.annotate(lock_row_is_ours=ours)  # type: ignore[assignment]  # the same rows
    if not skip_locked:  # a sweep that skips locked rows never waits: no bound to set (a round trip saved)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)",
                [f"{int(settings.LOCK_TIMEOUT_SECONDS * 1000)}ms"],
            )
    try:
        rows = list(
            queryset.select_for_update(
                no_key=strength == NO_KEY_UPDATE, of=("self",), skip_locked=skip_locked
            )
        )
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) == "55P03":  # lock_not_available: the bound was reached
            raise LockTimeout(label) from error
        raise
    if trail is not None:
        _check_and_record(
            trail,
            label,
            [row.pk for row in rows if not getattr(row, "lock_row_is_ours", False)],
            waits=not skip_locked,
        )
    return rows


def lock_row(
    queryset_or_model: models.QuerySet[M] | type[M], *, strength: str = NO_KEY_UPDATE, **lookup: Any
) -> M:
    """Lock the one row ``lookup`` names (``Model.DoesNotExist`` if there is none, as ``.get`` would raise)."""
    queryset = (
        queryset_or_model
        if isinstance(queryset_or_model, models.QuerySet)
        else queryset_or_model._default_manager.all()
    )
    rows = lock_rows(queryset.filter(**lookup), strength=strength)
    # Every concrete model has its own DoesNotExist and MultipleObjectsReturned (the stubs cannot know it of M).
    if not rows:
        raise queryset.model.DoesNotExist(  # type: ignore[attr-defined]
            f"No {queryset.model._meta.verbose_name} matches {lookup}."
        )
    if len(rows) > 1:
        raise queryset.model.MultipleObjectsReturned(f"{len(rows)} rows match {lookup}.")  # type: ignore[attr-defined]
    return rows[0]
