"""Secrets that travel in URLs stay out of the logs.

A traveller's manage-booking link (``/booking/<token>/…``) is the only key to the booking, and a voucher's check-in
code (``/check-in/<code>/``, ``?token=`` on the API) names it; Django logs the path of every 4xx/5xx response,
and a log line is read by more people, and kept longer, than the booking. ``RedactSecretUrls`` goes on the
handlers (a filter on a logger would miss the records its children propagate) and rewrites each record before
it is written: message, arguments, traceback and stack.

Only this module's standard-library names are imported here: it is loaded while settings configure logging."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

REDACTED = "…redacted…"

# A path segment after /booking/ or /check-in/ (the pages "find my booking" and "type a code" have none).
_SECRET_SEGMENT = re.compile(r"(/(?:booking|check-in)/)(?!" + re.escape(REDACTED) + r")[^/?#\s\"'<>]+")
# A code or token sent as a query parameter (GET /api/v1/check-in/?token=…).
_SECRET_PARAMETER = re.compile(
    r"([?&;](?:token|code|payment_intent_client_secret)=)(?!" + re.escape(REDACTED) + r")[^&;#\s\"'<>]+"
)


def redact(text: str) -> str:
    """``text`` with every manage token and check-in code in a URL replaced by ``…redacted…``."""
    if "/" not in text and "=" not in text:
        return text
    return _SECRET_PARAMETER.sub(rf"\g<1>{REDACTED}", _SECRET_SEGMENT.sub(rf"\g<1>{REDACTED}", text))


def _redact_argument(value):
    # Only strings are rewritten: formatting other objects here could run queries or change "%d" formatting.
    return redact(value) if isinstance(value, str) else value


class RedactSecretUrls(logging.Filter):
    """A logging filter (never drops a record) that redacts secret URL parts in what the record will print."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: the handler reports it; redact what it shows
            if isinstance(record.msg, str):
                record.msg = redact(record.msg)
            if isinstance(record.args, Mapping):
                record.args = {key: _redact_argument(value) for key, value in record.args.items()}
            elif isinstance(record.args, tuple):
                record.args = tuple(_redact_argument(value) for value in record.args)
        else:
            redacted = redact(message)
            if redacted != message:
                # The message is fixed once formatted: an argument's str() (a request's repr…) is covered too.
                record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
