"""Model fields for personal data.

``EncryptedTextField`` stores AES-256-GCM ciphertext (bytea) bound to tenant + table + column; the value on the
instance is the plaintext, decrypted on first access (the tenant is known only from the instance, so decryption
cannot happen in ``from_db_value``). ``BlindIndexField`` stores a keyed hash of another field for equality
lookups: ``Model.objects.filter(**blind_lookup(Model, "email_index", "a@b.com", tenant_id=...))``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core import validators
from django.core.exceptions import FieldError
from django.db import models

from core.pii.crypto import PLATFORM_SCOPE, blind_index, decrypt, decrypt_bytes, encrypt, encrypt_bytes


class Ciphertext(bytes):
    """Bytes read from the database and not yet decrypted (or just encrypted for writing)."""


def scope_of(instance) -> str:
    tenant_id = getattr(instance, "tenant_id", None)
    return str(tenant_id) if tenant_id else PLATFORM_SCOPE


class _PlaintextDescriptor:
    def __init__(self, field: EncryptedTextField):
        self.field = field

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        if (
            self.field.attname not in instance.__dict__
        ):  # deferred by .only()/.defer(): load it, as Django does
            instance.refresh_from_db(fields=[self.field.attname])
        value = instance.__dict__.get(self.field.attname)
        if isinstance(value, Ciphertext):
            value = self.field.decrypt_for(instance, value)
            instance.__dict__[self.field.attname] = value
        return self.field.empty_plaintext if value is None else value

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.Field):
    description = "Text encrypted with AES-256-GCM (Tink), bound to tenant, table and column"
    empty_strings_allowed = True
    empty_plaintext: str | bytes = ""
    column: str  # always a column of its own (Field allows None for relations); part of the associated data

    def __init__(self, *args, max_length: int | None = None, **kwargs):
        kwargs["null"] = True  # an empty value is stored as NULL: no ciphertext for nothing
        kwargs.setdefault("blank", True)
        self.plain_max_length = max_length
        super().__init__(*args, **kwargs)
        if max_length:
            self.validators.append(validators.MaxLengthValidator(max_length))

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("null", None)
        if self.plain_max_length:
            kwargs["max_length"] = self.plain_max_length
        return name, path, args, kwargs

    def get_internal_type(self) -> str:
        return "BinaryField"

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only=private_only)
        setattr(cls, self.attname, _PlaintextDescriptor(self))

    def from_db_value(self, value, expression, connection):
        return None if value is None else Ciphertext(bytes(value))

    def to_python(self, value):
        if value is None or isinstance(value, str):
            return value or ""
        return str(value)

    def decrypt_for(self, instance, ciphertext: bytes) -> str:
        return decrypt(
            ciphertext, scope=scope_of(instance), table=self.model._meta.db_table, column=self.column
        )

    def encrypt_for(self, instance, plaintext: str) -> Ciphertext:
        return Ciphertext(
            encrypt(plaintext, scope=scope_of(instance), table=self.model._meta.db_table, column=self.column)
        )

    def pre_save(self, model_instance, add):
        plaintext = getattr(model_instance, self.attname)
        return self.encrypt_for(model_instance, plaintext) if plaintext else None

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None or isinstance(value, Ciphertext):
            return None if value is None else bytes(value)
        raise TypeError(
            f"{self.model._meta.label}.{self.name} is encrypted: it cannot be compared in SQL; "
            "use its blind index for equality lookups"
        )

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(
            f"{self.model._meta.label}.{self.name} is encrypted and cannot be compared in SQL "
            f"(lookup {lookup_name!r}); look it up through its blind index instead"
        )

    def value_to_string(self, obj):
        return getattr(obj, self.attname)

    def formfield(self, **kwargs):
        defaults: dict[str, Any] = {"form_class": forms.CharField, "max_length": self.plain_max_length}
        defaults.update(kwargs)
        return super().formfield(**defaults)


class EncryptedBinaryField(EncryptedTextField):
    """Bytes (a generated PDF naming travellers, say) encrypted like ``EncryptedTextField``; reads give bytes."""

    description = "Bytes encrypted with AES-256-GCM (Tink), bound to tenant, table and column"
    empty_strings_allowed = False
    empty_plaintext = b""

    def to_python(self, value):
        return b"" if value is None else bytes(value)

    # The bytes twin of EncryptedTextField: its plaintext is bytes, not str. Every caller (the descriptor, pre_save,
    # re-encryption) passes a value of the same field, so these narrower signatures never meet a str.
    def decrypt_for(self, instance, ciphertext: bytes) -> bytes:  # type: ignore[override]
        return decrypt_bytes(
            ciphertext, scope=scope_of(instance), table=self.model._meta.db_table, column=self.column
        )

    def encrypt_for(self, instance, plaintext: bytes) -> Ciphertext:  # type: ignore[override]
        return Ciphertext(
            encrypt_bytes(
                plaintext, scope=scope_of(instance), table=self.model._meta.db_table, column=self.column
            )
        )

    def value_to_string(self, obj):
        return f"<{len(getattr(obj, self.attname))} bytes>"

    def formfield(self, **kwargs):
        return None


class BlindIndexField(models.Field):
    """Keyed HMAC-SHA256 of ``source`` (normalised: NFKC, trimmed, case-folded), scoped to the tenant."""

    description = "Blind index of an encrypted field"

    def __init__(self, *args, source: str, **kwargs):
        self.source = source
        kwargs["null"] = True
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("null", None)
        kwargs.pop("editable", None)
        kwargs["source"] = self.source
        return name, path, args, kwargs

    def get_internal_type(self) -> str:
        return "BinaryField"

    @property
    def purpose(self) -> str:
        return f"{self.model._meta.db_table}.{self.source}"

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.source)
        digest = blind_index(value, scope=scope_of(model_instance), purpose=self.purpose) if value else None
        setattr(model_instance, self.attname, digest)
        return digest

    def from_db_value(self, value, expression, connection):
        return None if value is None else bytes(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        return None if value is None else bytes(value)


def blind_lookup(model, field_name: str, value: str, *, tenant_id: object | None) -> dict[str, bytes]:
    """Filter kwargs matching rows whose ``source`` equals ``value``: the rows of ``tenant_id`` (the scope their
    index was computed in, see ``scope_of``), or platform rows (``tenant_id`` None)."""
    field = model._meta.get_field(field_name)
    scope = str(tenant_id) if tenant_id and hasattr(model, "tenant_id") else PLATFORM_SCOPE
    return {field_name: blind_index(value, scope=scope, purpose=field.purpose)}
