"""Re-encrypt stored personal data under the current primary key (after ``pii_rotate_key``)."""

from __future__ import annotations

from django.apps import apps
from django.db import models

from core.pii.crypto import ciphertext_key_id, primary_key_id
from core.pii.fields import Ciphertext, EncryptedTextField


def encrypted_fields() -> dict[type[models.Model], list[EncryptedTextField]]:
    found: dict[type[models.Model], list[EncryptedTextField]] = {}
    for model in apps.get_models():
        fields = [field for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)]
        if fields:
            found[model] = fields
    return found


def reencrypt_queryset(queryset, fields: list[EncryptedTextField], batch_size: int = 500) -> int:
    """Rewrite every value of ``fields`` not made by the primary key; returns the number of rows changed.

    Runs as the runtime role: for tenant tables the caller sets the tenant context (RLS shows nothing else).
    """
    primary = primary_key_id()
    model = queryset.model
    changed = 0
    for row in queryset.iterator(chunk_size=batch_size):
        updates = {}
        for field in fields:
            stored = row.__dict__.get(field.attname)
            if isinstance(stored, Ciphertext) and ciphertext_key_id(stored) != primary:
                updates[field.attname] = field.encrypt_for(row, getattr(row, field.attname))
        if updates:
            model._base_manager.filter(pk=row.pk).update(**updates)
            changed += 1
    return changed
