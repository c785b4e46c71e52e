"""The staff's pages beyond the model admin (bookings' actions, manifests, the capacity calendar, an agency's
statement, payments panels and imports), hooked onto the admin by ``portals.backoffice.admin``."""
