from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from rest_framework import serializers

        from core import locking
        from core.pii.fields import EncryptedTextField

        connection_created.connect(locking.create_probe_table)

        # On the API an encrypted field is the text it holds (ModelSerializer would not know the column type).
        serializers.ModelSerializer.serializer_field_mapping[EncryptedTextField] = serializers.CharField
