"""Personal data encrypted at rest: AES-256-GCM through Google Tink, with blind indexes for equality lookups.

- ``keys``: keysets (load, generate, rotate).
- ``crypto``: encrypt/decrypt with associated data = tenant + table + column, and the keyed blind index.
- ``fields``: ``EncryptedTextField`` and ``BlindIndexField`` for models.
"""
