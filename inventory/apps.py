from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Departures and capacity"

    def ready(self) -> None:
        from inventory.search import connect_catalogue_signals

        connect_catalogue_signals()  # a change to a tour or a departure makes the cached listings stale
