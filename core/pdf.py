"""HTML templates to PDF (WeasyPrint). Templates live under templates/pdf/ and may load only ``data:`` URLs and
files inside the project's static directory (``<link href="pdf/documents.css">``): a document never fetches from the
network and never reads a file elsewhere, whatever text a tenant puts in it."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string

STATIC_ROOT_FOR_PDF = Path(settings.BASE_DIR) / "static"


def _fetcher():
    from weasyprint.urls import URLFetcher

    class LocalOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if url.startswith("file:"):
                path = Path(url.removeprefix("file://")).resolve()
                if not path.is_relative_to(STATIC_ROOT_FOR_PDF.resolve()):
                    raise ValueError(f"PDF templates may not read {url!r}")
            return super().fetch(url, headers)

    return LocalOnlyFetcher(allowed_protocols={"data", "file"}, timeout=2)


def render_pdf(template: str, context: dict) -> bytes:
    """Render ``template`` with ``context`` and return the PDF bytes."""
    import weasyprint  # imported on first use: it loads Pango, which most web requests never need

    html = render_to_string(template, context)
    document = weasyprint.HTML(string=html, url_fetcher=_fetcher(), base_url=f"{STATIC_ROOT_FOR_PDF}/")
    return document.write_pdf()


def warm_up() -> None:
    import weasyprint

    html = '<link rel="stylesheet" href="pdf/documents.css"><p>tourops <b>warm</b></p>'
    weasyprint.HTML(string=html, url_fetcher=_fetcher(), base_url=f"{STATIC_ROOT_FOR_PDF}/").write_pdf()
