"""Keysets for PII: an AEAD keyset (AES256_GCM) and a PRF keyset (HMAC-SHA256) for blind indexes.

Keysets are read from a file or an environment variable as Tink JSON. In production the keyset is expected to be
delivered by the secret manager (KMS-wrapped at rest); settings refuse to start without one. Rotation adds a new
primary key and keeps the old ones, so old ciphertexts still decrypt (Tink prefixes each ciphertext with its key
id); ``manage.py pii_reencrypt`` then rewrites old rows under the new primary.
"""

from __future__ import annotations

import os
from pathlib import Path

import tink
from tink import aead, prf, secret_key_access
from tink.proto import tink_pb2

aead.register()
prf.register()

AEAD_TEMPLATE = aead.aead_key_templates.AES256_GCM
PRF_TEMPLATE = prf.prf_key_templates.HMAC_SHA256


def parse_keyset(json_text: str) -> tink.KeysetHandle:
    return tink.json_proto_keyset_format.parse(json_text, secret_key_access.TOKEN)


def serialize_keyset(handle: tink.KeysetHandle) -> str:
    return tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN)


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def generate_keyset_files(aead_path: Path, index_path: Path) -> None:
    if not aead_path.exists():
        _write_secret(aead_path, serialize_keyset(tink.new_keyset_handle(AEAD_TEMPLATE)))
    if not index_path.exists():
        _write_secret(index_path, serialize_keyset(tink.new_keyset_handle(PRF_TEMPLATE)))


def rotated(handle: tink.KeysetHandle) -> tink.KeysetHandle:
    """A copy of ``handle`` with a fresh AES256_GCM key added as the primary; older keys stay to decrypt."""
    keyset = tink_pb2.Keyset.FromString(tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    fresh = tink_pb2.Keyset.FromString(
        tink.proto_keyset_format.serialize(tink.new_keyset_handle(AEAD_TEMPLATE), secret_key_access.TOKEN)
    )
    new_key = fresh.key[0]
    taken = {key.key_id for key in keyset.key}
    while (
        new_key.key_id in taken
    ):  # ids are random 32-bit; a clash is unlikely but must not corrupt the keyset
        fresh = tink_pb2.Keyset.FromString(
            tink.proto_keyset_format.serialize(tink.new_keyset_handle(AEAD_TEMPLATE), secret_key_access.TOKEN)
        )
        new_key = fresh.key[0]
    keyset.key.append(new_key)
    keyset.primary_key_id = new_key.key_id
    return tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)


def rotate_keyset_file(path: Path) -> int:
    """Rotate the keyset stored at ``path`` in place; returns the new primary key id."""
    handle = rotated(parse_keyset(path.read_text()))
    _write_secret(path, serialize_keyset(handle))
    return handle.keyset_info().primary_key_id
