from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from rest_framework import serializers

        from core.pii.fields import EncryptedTextField

        # On the API an encrypted field is the text it holds (ModelSerializer would not know the column type).
        serializers.ModelSerializer.serializer_field_mapping[EncryptedTextField] = serializers.CharField
