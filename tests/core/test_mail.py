"""The development console backend shows each email readably, attachments by name and size only."""

from __future__ import annotations

import io

from django.core.mail import EmailMultiAlternatives

from core.mail import SummaryConsoleBackend


def test_the_console_shows_headers_text_and_attachment_names_not_their_bytes():
    stream = io.StringIO()
    message = EmailMultiAlternatives(
        "Your booking ABCD2345", "Hello Ana,\nsee you soon.", "Nordlys <no-reply@x>", ["ana@example.com"]
    )
    message.attach_alternative("<p>Hello Ana</p>", "text/html")
    message.attach("voucher-ABCD2345.pdf", b"%PDF-1.7" + b"\0" * 5000, "application/pdf")

    SummaryConsoleBackend(stream=stream).send_messages([message])

    shown = stream.getvalue()
    assert "Subject: Your booking ABCD2345" in shown and "see you soon." in shown
    assert "[attachment: voucher-ABCD2345.pdf (application/pdf, 5,008 bytes)]" in shown
    assert "JVBERi" not in shown  # no base64
