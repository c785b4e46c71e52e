"""Domain errors: raised by services, turned into the API error format (and form messages) at the edge."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}

    @classmethod
    def for_field(cls, message: str, field_name: str, code: str = "invalid") -> DomainError:
        """Bad input in one field: the message is the error and the field's own message."""
        return cls(message, code=code, fields={field_name: [message]})


class ConflictError(DomainError):
    status = 409
    code = "conflict"
