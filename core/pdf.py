"""HTML templates to PDF (WeasyPrint). Templates live under templates/pdf/ and may load only ``data:`` URLs and
files inside the project's static directory (``<link href="pdf/documents.css">``): a document never fetches from the
network and never reads a file elsewhere, whatever text a tenant puts in it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from django.conf import settings
from django.template.loader import render_to_string

STATIC_ROOT_FOR_PDF = Path(settings.BASE_DIR) / "static"


class PdfResourceRefused(ValueError):
    """A PDF template asked for something outside what it may load."""


def local_static_path(url: str) -> Path:
    """The file under the static directory that a ``file:`` URL names, or ``PdfResourceRefused``.

    The URL is read as urllib will open it (scheme in any case, percent-encoded segments decoded) and the path
    resolved (``..`` and symbolic links followed) before it is compared, so no spelling reaches another file."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise PdfResourceRefused(f"PDF templates may read only local files, not {url!r}")
    if parts.netloc not in ("", "localhost"):
        raise PdfResourceRefused(f"PDF templates may not read files on another host: {url!r}")
    raw = url2pathname(parts.path)
    if not raw.startswith("/"):
        raise PdfResourceRefused(f"PDF templates may read only absolute file URLs, not {url!r}")
    path = Path(raw).resolve()
    if not path.is_relative_to(STATIC_ROOT_FOR_PDF.resolve()):
        raise PdfResourceRefused(f"PDF templates may not read {url!r}")
    return path


def _fetcher():
    from weasyprint.urls import URLFetcher

    class LocalOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            scheme = urlsplit(url).scheme.lower()
            if scheme == "data":
                return super().fetch(url, headers)
            # What is opened is the URL of the path that was checked, never the text as written.
            checked = local_static_path(url).as_uri()
            self._request = None  # URLFetcher.open() parks a Request here, which fetch() would open instead
            return super().fetch(checked, headers)

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
