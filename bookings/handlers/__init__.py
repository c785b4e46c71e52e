"""Consumers of booking events (see events.registry), one module per concern. They run once per event in a worker
and check the booking's current state: events are not ordered. (The payments app has its own: payments.handlers.)"""

from bookings.handlers import documents, emails, invoices  # noqa: F401  (importing registers them)
