from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        # Bookings ask the money side through interfaces they own; the payments app answers them.
        from bookings import money
        from payments import emails
        from payments.services.for_bookings import PaymentsKeepTheMoney

        money.register(PaymentsKeepTheMoney())
        emails.register()
