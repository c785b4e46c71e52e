from __future__ import annotations

import functools
import hmac
import unicodedata
from pathlib import Path

import tink
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from tink import aead, prf

from core.pii.keys import parse_keyset

# Rows that belong to no tenant (platform users) are bound to this instead of a tenant id.
PLATFORM_SCOPE = "platform"


class DecryptionError(Exception):
    """The ciphertext does not open with this keyset and associated data (wrong tenant, table, column or key)."""


def _keyset_json(inline: str | None, file_name: str | None, what: str) -> str:
    if inline:
        return inline
    if file_name and Path(file_name).exists():
        return Path(file_name).read_text()
    raise ImproperlyConfigured(
        f"No {what} keyset: set PII_{what.upper().replace(' ', '_')}_KEYSET or its _FILE "
        "(the dev launcher generates one under var/keys/)."
    )


@functools.cache
def _aead() -> aead.Aead:
    handle = parse_keyset(_keyset_json(settings.PII_AEAD_KEYSET, settings.PII_AEAD_KEYSET_FILE, "aead"))
    return handle.primitive(aead.Aead)


@functools.cache
def _prf() -> prf.Prf:
    handle = parse_keyset(
        _keyset_json(settings.PII_BLIND_INDEX_KEYSET, settings.PII_BLIND_INDEX_KEYSET_FILE, "blind index")
    )
    return handle.primitive(prf.PrfSet).primary()


def reload_keys() -> None:
    """Forget the cached primitives (after a rotation, or when tests swap keysets)."""
    _aead.cache_clear()
    _prf.cache_clear()


def check_keys() -> None:
    """Fail at start-up, not at the first traveller, when keysets are missing or unreadable."""
    _aead()
    _prf()


def associated_data(scope: str, table: str, column: str) -> bytes:
    # Binding the ciphertext to its place: a value copied to another tenant, table or column will not decrypt.
    return f"{scope}\x1f{table}\x1f{column}".encode()


def encrypt(plaintext: str, *, scope: str, table: str, column: str) -> bytes:
    return encrypt_bytes(plaintext.encode(), scope=scope, table=table, column=column)


def encrypt_bytes(plaintext: bytes, *, scope: str, table: str, column: str) -> bytes:
    return _aead().encrypt(plaintext, associated_data(scope, table, column))


def decrypt(ciphertext: bytes, *, scope: str, table: str, column: str) -> str:
    return decrypt_bytes(ciphertext, scope=scope, table=table, column=column).decode()


def decrypt_bytes(ciphertext: bytes, *, scope: str, table: str, column: str) -> bytes:
    try:
        return _aead().decrypt(bytes(ciphertext), associated_data(scope, table, column))
    except tink.TinkError as exc:
        raise DecryptionError(f"cannot decrypt {table}.{column} for scope {scope}") from exc


def primary_key_id() -> int:
    return (
        parse_keyset(_keyset_json(settings.PII_AEAD_KEYSET, settings.PII_AEAD_KEYSET_FILE, "aead"))
        .keyset_info()
        .primary_key_id
    )


def ciphertext_key_id(ciphertext: bytes) -> int:
    """The id of the key that made a Tink ciphertext (TINK output prefix: 0x01 + 4-byte key id)."""
    return int.from_bytes(bytes(ciphertext)[1:5], "big")


def normalise_for_index(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().casefold()


def blind_index(value: str, *, scope: str, purpose: str) -> bytes:
    """Keyed hash for equality lookups; scoped so equal values in two tenants do not link up."""
    message = f"{scope}\x1f{purpose}\x1f{normalise_for_index(value)}".encode()
    return _prf().compute(message, 32)


def same_index(left: bytes, right: bytes) -> bool:
    return hmac.compare_digest(bytes(left), bytes(right))
