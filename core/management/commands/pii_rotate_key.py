from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.pii.crypto import reload_keys
from core.pii.keys import rotate_keyset_file


class Command(BaseCommand):
    help = (
        "Add a new AES-256-GCM key to the PII keyset file and make it the primary. Old keys stay, so existing "
        "data still decrypts; run pii_reencrypt afterwards to move old rows to the new key."
    )

    def handle(self, *args, **options):
        if settings.PII_AEAD_KEYSET:
            raise CommandError(
                "The PII keyset comes from the PII_AEAD_KEYSET variable: rotate it in your secret manager."
            )
        path = Path(settings.PII_AEAD_KEYSET_FILE or "")
        if not path.is_file():
            raise CommandError(f"PII keyset file not found: {path}")
        key_id = rotate_keyset_file(path)
        reload_keys()
        self.stdout.write(self.style.SUCCESS(f"New primary key {key_id} added to {path}."))
