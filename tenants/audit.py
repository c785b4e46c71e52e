"""Recording staff actions: one function, ``record``, that writes to the tenant's audit log inside a tenant
context and to the platform audit log outside one."""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models

from core import http
from core.errors import DomainError
from core.pii.fields import BlindIndexField, EncryptedTextField
from tenants.context import current_tenant_id
from tenants.models import AuditEvent, AuditRecord, PlatformAuditEvent

Action = AuditRecord.Action
_MASK = "(encrypted)"
_M = TypeVar("_M", bound=models.Model)


def client_ip(request) -> str | None:
    return (http.client_ip(request) or None) if request is not None else None


def snapshot(instance: models.Model) -> dict[str, Any]:
    """Field values for before/after comparison; personal data is never copied into the log."""
    values: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if isinstance(field, BlindIndexField) or field.name in {"password"}:
            continue
        if isinstance(field, EncryptedTextField):
            values[field.name] = _MASK if getattr(instance, field.attname) else ""
            continue
        value = field.value_from_object(instance)
        values[field.name] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
    return values


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    before, after = before or {}, after or {}
    changed = {}
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            changed[name] = [before.get(name), after.get(name)]
    return changed


def record(
    action: str,
    *,
    actor=None,
    target: models.Model | None = None,
    changes: dict | None = None,
    request=None,
    actor_label: str = "",
) -> AuditRecord:
    fields = {
        "action": action,
        "actor_id": str(actor.pk) if actor is not None and actor.pk else "",
        "actor_label": actor_label or (str(actor) if actor is not None else ""),
        "changes": changes or {},
        "ip_address": client_ip(request),
    }
    if target is not None:
        fields.update(
            target_type=target._meta.label_lower,
            target_id=str(target.pk),
            target_label=str(target)[:300],
        )
    model = AuditEvent if current_tenant_id() is not None else PlatformAuditEvent
    return model.objects.create(**fields)


def save_audited(instance: _M, *, actor, request=None) -> _M:
    """Validate (``full_clean``: a DomainError with field errors on bad input), save and record the change with
    before/after values. For services whose write is "these fields, validated"; seat movements and the like have
    their own services."""
    adding = instance._state.adding
    before = None if adding else snapshot(type(instance)._base_manager.get(pk=instance.pk))
    try:
        instance.full_clean()
    except ValidationError as error:
        fields = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
        names = ", ".join(sorted(fields))
        raise DomainError(f"Some fields are invalid: {names}.", code="invalid", fields=fields) from error
    instance.save()
    record(
        Action.CREATE if adding else Action.CHANGE,
        actor=actor,
        target=instance,
        changes=diff(before, snapshot(instance)),
        request=request,
    )
    return instance
