"""Personal data at rest: AES-256-GCM ciphertext bound to scope (tenant) + table + column, blind indexes, key
rotation and re-encryption, and the field's refusal to be compared in SQL."""

from __future__ import annotations

import io
import json
import uuid
from types import SimpleNamespace

import pytest
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from accounts.models import User
from core.pii import crypto
from core.pii.crypto import DecryptionError, blind_index, ciphertext_key_id, decrypt, encrypt, primary_key_id
from core.pii.keys import generate_keyset_files
from tests.factories import make_user

PHONE = "+351 912 345 678"
TABLE = User._meta.db_table
PHONE_FIELD = User._meta.get_field("phone")


def raw_phone(user: User) -> bytes | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM accounts_user WHERE id = %s", [user.pk])
        value = cursor.fetchone()[0]
    return None if value is None else bytes(value)


@pytest.fixture
def temp_keysets(tmp_path):
    """Fresh keysets in a temporary directory, in force for the test only."""
    aead_path, index_path = tmp_path / "aead.json", tmp_path / "index.json"
    generate_keyset_files(aead_path, index_path)
    try:
        with override_settings(
            PII_AEAD_KEYSET=None,
            PII_BLIND_INDEX_KEYSET=None,
            PII_AEAD_KEYSET_FILE=str(aead_path),
            PII_BLIND_INDEX_KEYSET_FILE=str(index_path),
        ):
            crypto.reload_keys()
            yield aead_path
    finally:
        crypto.reload_keys()  # back to the configured keysets, whatever happened


# --- storage -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_column_holds_ciphertext_and_orm_gives_plaintext():
    user = make_user(phone=PHONE)
    stored = raw_phone(user)
    assert isinstance(stored, bytes)
    assert PHONE.encode() not in stored
    assert b"912" not in stored and b"345 678" not in stored
    assert stored[0] == 0x01  # Tink prefix: version byte + 4-byte key id
    assert ciphertext_key_id(stored) == primary_key_id()
    assert User.objects.get(pk=user.pk).phone == PHONE


@pytest.mark.django_db
def test_same_value_encrypts_differently_each_time():
    first, second = make_user(phone=PHONE), make_user(phone=PHONE)
    assert raw_phone(first) != raw_phone(second)  # random nonce: equal values do not show as equal


@pytest.mark.django_db
def test_empty_phone_is_stored_as_null():
    user = make_user()
    assert raw_phone(user) is None
    assert User.objects.get(pk=user.pk).phone == ""
    assert User.objects.filter(pk=user.pk, phone__isnull=True).exists()


@pytest.mark.django_db
def test_ciphertext_opens_only_with_its_own_scope_table_and_column():
    user = make_user(phone=PHONE)
    stored = raw_phone(user)
    assert decrypt(stored, scope=crypto.PLATFORM_SCOPE, table=TABLE, column="phone") == PHONE  # control
    wrong_places = [
        {"scope": str(uuid.uuid4()), "table": TABLE, "column": "phone"},
        {"scope": crypto.PLATFORM_SCOPE, "table": "tenants_tenant", "column": "phone"},
        {"scope": crypto.PLATFORM_SCOPE, "table": TABLE, "column": "full_name"},
    ]
    for place in wrong_places:
        with pytest.raises(DecryptionError):
            decrypt(stored, **place)


@pytest.mark.django_db
def test_tampered_ciphertext_does_not_decrypt():
    stored = bytearray(raw_phone(make_user(phone=PHONE)))
    stored[-1] ^= 0x01
    with pytest.raises(DecryptionError):
        decrypt(bytes(stored), scope=crypto.PLATFORM_SCOPE, table=TABLE, column="phone")


@pytest.mark.django_db
def test_ciphertext_copied_between_platform_rows_still_decrypts():
    """Documented limit: the associated data is scope + table + column, not the row. Users are platform rows
    (scope "platform"), so a ciphertext moved to another user's row opens there. Whoever can write raw SQL to
    this table can swap values between users; they cannot move them to another column, table or tenant."""
    source, target = make_user(phone=PHONE), make_user(phone="+44 20 7946 0000")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_user SET phone = (SELECT phone FROM accounts_user WHERE id = %s) WHERE id = %s",
            [source.pk, target.pk],
        )
    assert User.objects.get(pk=target.pk).phone == PHONE


def test_tenant_is_part_of_the_associated_data():
    tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
    ciphertext = encrypt(PHONE, scope=tenant_a, table="bookings_traveller", column="phone")
    assert decrypt(ciphertext, scope=tenant_a, table="bookings_traveller", column="phone") == PHONE
    for scope in (tenant_b, crypto.PLATFORM_SCOPE):
        with pytest.raises(DecryptionError):
            decrypt(ciphertext, scope=scope, table="bookings_traveller", column="phone")


def test_field_binds_rows_with_a_tenant_id_to_that_tenant():
    """What a tenant-scoped model gets from the field: ``scope_of`` uses the row's tenant_id."""
    row_a, row_b = SimpleNamespace(tenant_id=uuid.uuid4()), SimpleNamespace(tenant_id=uuid.uuid4())
    ciphertext = PHONE_FIELD.encrypt_for(row_a, PHONE)
    assert PHONE_FIELD.decrypt_for(row_a, ciphertext) == PHONE
    with pytest.raises(DecryptionError):
        PHONE_FIELD.decrypt_for(row_b, ciphertext)
    with pytest.raises(DecryptionError):
        PHONE_FIELD.decrypt_for(SimpleNamespace(), ciphertext)  # platform scope


# --- blind index -------------------------------------------------------------------------------------------------


def test_blind_index_is_deterministic_per_scope_and_purpose():
    first = blind_index("ana@example.com", scope="platform", purpose="accounts_user.email")
    assert first == blind_index("ana@example.com", scope="platform", purpose="accounts_user.email")
    assert isinstance(first, bytes) and len(first) == 32
    assert b"ana" not in first
    assert crypto.same_index(
        first, blind_index("ana@example.com", scope="platform", purpose="accounts_user.email")
    )


@pytest.mark.parametrize(
    "variant",
    [
        "  Ana@Example.COM \n",  # case and surrounding whitespace
        "\uff21\uff4e\uff41@example.com",  # full-width "Ana" (NFKC)
        "ana@exa\u006d\u0070le.com",  # plain code points spelled out
    ],
)
def test_blind_index_normalises(variant):
    assert blind_index(variant, scope="platform", purpose="p") == blind_index(
        "ana@example.com", scope="platform", purpose="p"
    )


def test_blind_index_normalises_compatibility_and_case_folding():
    assert blind_index("\ufb01sh", scope="s", purpose="p") == blind_index(
        "FISH", scope="s", purpose="p"
    )  # ligature
    assert blind_index("Straße", scope="s", purpose="p") == blind_index("STRASSE", scope="s", purpose="p")
    assert blind_index("ana", scope="s", purpose="p") != blind_index("an a", scope="s", purpose="p")


def test_blind_index_differs_across_scopes_and_purposes():
    value = "ana@example.com"
    indexes = {
        blind_index(value, scope="platform", purpose="accounts_user.email"),
        blind_index(value, scope=str(uuid.uuid4()), purpose="accounts_user.email"),
        blind_index(value, scope=str(uuid.uuid4()), purpose="accounts_user.email"),
        blind_index(value, scope="platform", purpose="accounts_user.phone"),
    }
    assert len(indexes) == 4


def test_blind_index_is_keyed(temp_keysets):
    with_temp_key = blind_index("ana@example.com", scope="platform", purpose="p")
    crypto.reload_keys()
    assert with_temp_key == blind_index("ana@example.com", scope="platform", purpose="p")
    with override_settings(PII_BLIND_INDEX_KEYSET_FILE=str(temp_keysets.parent / "other.json")):
        generate_keyset_files(temp_keysets.parent / "unused.json", temp_keysets.parent / "other.json")
        crypto.reload_keys()
        assert blind_index("ana@example.com", scope="platform", purpose="p") != with_temp_key
    crypto.reload_keys()


# --- key rotation ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotate_then_reencrypt(temp_keysets):
    old_key = primary_key_id()
    user = make_user(phone=PHONE)
    assert ciphertext_key_id(raw_phone(user)) == old_key

    out = io.StringIO()
    call_command("pii_rotate_key", stdout=out)
    new_key = primary_key_id()
    assert new_key != old_key
    assert str(new_key) in out.getvalue()
    assert len(json.loads(temp_keysets.read_text())["key"]) == 2  # the old key stays to decrypt

    # Old rows still read, and are still under the old key until re-encrypted.
    assert User.objects.get(pk=user.pk).phone == PHONE
    assert ciphertext_key_id(raw_phone(user)) == old_key
    # New writes use the new primary.
    fresh = make_user(phone="+1 555 0100")
    assert ciphertext_key_id(raw_phone(fresh)) == new_key

    out = io.StringIO()
    call_command("pii_reencrypt", stdout=out)
    assert "Re-encrypted" in out.getvalue()
    assert ciphertext_key_id(raw_phone(user)) == new_key
    assert User.objects.get(pk=user.pk).phone == PHONE
    assert User.objects.get(pk=fresh.pk).phone == "+1 555 0100"

    out = io.StringIO()
    call_command("pii_reencrypt", stdout=out)  # nothing left under the old key
    assert "Re-encrypted 0 row(s)." in out.getvalue()


@pytest.mark.django_db
def test_data_under_an_unknown_key_does_not_decrypt(temp_keysets):
    """After the key is gone (e.g. the wrong keyset is deployed) reads fail loudly, not as empty values."""
    user = make_user(phone=PHONE)
    temp_keysets.unlink()
    generate_keyset_files(temp_keysets, temp_keysets.parent / "index.json")  # a brand-new AEAD keyset
    crypto.reload_keys()
    with pytest.raises(DecryptionError):
        _ = User.objects.get(pk=user.pk).phone


# --- no SQL comparisons on ciphertext ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        lambda: User.objects.filter(phone=PHONE),
        lambda: User.objects.exclude(phone=PHONE),
        lambda: User.objects.filter(phone__in=[PHONE]),
        lambda: User.objects.filter(phone__icontains="912"),
        lambda: User.objects.filter(phone__startswith="+351"),
    ],
    ids=["exact", "exclude", "in", "icontains", "startswith"],
)
def test_encrypted_field_refuses_sql_comparisons(query):
    make_user(phone=PHONE)
    with pytest.raises((FieldError, TypeError), match="EncryptedTextField|encrypted"):
        list(query())


@pytest.mark.django_db
def test_queryset_update_refuses_plaintext():
    user = make_user(phone=PHONE)
    before = raw_phone(user)
    with pytest.raises(TypeError, match="encrypted"), transaction.atomic():
        User.objects.filter(pk=user.pk).update(phone="+1 555 0199")
    assert raw_phone(user) == before


@pytest.mark.django_db
def test_sql_comparison_error_names_the_field_and_the_blind_index():
    with pytest.raises((FieldError, TypeError)) as error:
        list(User.objects.filter(phone=PHONE))
    assert "phone" in str(error.value) and "blind index" in str(error.value)


@pytest.mark.django_db
def test_deferred_encrypted_field_is_loaded_on_access():
    user = make_user(phone=PHONE)
    assert User.objects.defer("phone").get(pk=user.pk).phone == PHONE
