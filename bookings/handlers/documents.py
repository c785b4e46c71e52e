"""Consumers that generate the booking's PDFs (invoice, credit note, voucher)."""
