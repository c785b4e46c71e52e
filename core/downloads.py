"""One way to hand a generated file to a browser or client."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.http import content_disposition_header


def private_download(content: bytes, filename: str, content_type: str) -> HttpResponse:
    """An attachment that names people (invoices, vouchers, manifests): never kept by a shared cache."""
    response = HttpResponse(bytes(content), content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Content-Length"] = str(len(response.content))
    response["Cache-Control"] = "private, no-store"
    return response
