"""Domain errors: raised by services, turned into the API error format (and form messages) at the edge."""


class DomainError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class ConflictError(DomainError):
    status = 409
    code = "conflict"
