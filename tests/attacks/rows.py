"""One row builder per TenantModel, so every isolation test runs for every tenant table.

``tenants.checks.tenant_models()`` is the list of tables to attack; ``ROW_SPECS`` says how to make a row of each.
A TenantModel without an entry here makes the attack tests fail (not skip): add its builder when you add it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
from django.db import models

from tenants.checks import tenant_models
from tenants.context import tenant_context
from tenants.models import AuditEvent, Membership, Tenant
from tenants.roles import Role
from tests.factories import make_user


@dataclass(frozen=True)
class RowSpec:
    """``build(marker)`` returns an unsaved row (its tenant is filled in by ``save()`` inside a tenant context)
    whose text, as shown in the admin, contains ``marker``. ``change`` is an update an attacker would want to
    make. ``append_only`` tables have no UPDATE/DELETE grant for the runtime role at all."""

    build: Callable[[str], models.Model]
    change: dict[str, Any] = field(default_factory=dict)
    append_only: bool = False


def _membership(marker: str) -> Membership:
    return Membership(user=make_user(f"{marker}@example.com"), role=Role.SALES)


def _audit_event(marker: str) -> AuditEvent:
    return AuditEvent(
        action=AuditEvent.Action.CHANGE,
        actor_label=marker,
        target_type="tests.probe",
        target_id=marker,
        target_label=marker,
        changes={"probe": [None, marker]},
    )


ROW_SPECS: dict[str, RowSpec] = {
    "tenants.Membership": RowSpec(_membership, change={"role": Role.OWNER, "is_active": False}),
    "tenants.AuditEvent": RowSpec(_audit_event, change={"target_label": "tampered"}, append_only=True),
}

TENANT_MODELS = tenant_models()


def label(model: type[models.Model]) -> str:
    return model._meta.label


def spec_for(model: type[models.Model]) -> RowSpec:
    spec = ROW_SPECS.get(label(model))
    if spec is None:
        pytest.fail(
            f"{label(model)} is a TenantModel without a row builder: add it to ROW_SPECS in "
            f"tests/attacks/rows.py so its tenant isolation is tested.",
            pytrace=False,
        )
    return spec


class Row(NamedTuple):
    obj: models.Model
    marker: str


def new_marker(model: type[models.Model], side: str) -> str:
    return f"{side}-{model._meta.model_name}-{uuid.uuid4().hex[:12]}"


def create_row(model: type[models.Model], tenant: Tenant, side: str) -> Row:
    marker = new_marker(model, side)
    with tenant_context(tenant):
        obj = spec_for(model).build(marker)
        obj.save()
    return Row(obj, marker)


def insert_statement(obj: models.Model, connection) -> tuple[str, list[Any]]:
    """A raw ``INSERT`` of every concrete column of an unsaved ``obj`` (as the ORM would write them)."""
    quote = connection.ops.quote_name
    fields = [f for f in obj._meta.concrete_fields if not (f.primary_key and getattr(obj, f.attname) is None)]
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(obj._meta.db_table)} ({columns}) VALUES ({placeholders})", values
