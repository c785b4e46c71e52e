from django.apps import AppConfig


class ToursConfig(AppConfig):
    name = "tours"
    verbose_name = "Tours and pricing"

    def ready(self) -> None:
        from tours.search import connect_catalogue_signals

        connect_catalogue_signals()
