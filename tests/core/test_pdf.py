"""PDF templates may load only data: URLs and files inside the static directory, however the URL is spelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import pdf

SMALL_PAGE = "@page { size: 100mm 100mm; margin: 0 }"


@pytest.fixture
def static_dir(tmp_path, monkeypatch) -> Path:
    """A static directory of its own with an allowed stylesheet inside and a secret one next to it."""
    static = tmp_path / "static"
    (static / "pdf").mkdir(parents=True)
    (static / "pdf" / "allowed.css").write_text(SMALL_PAGE)
    (tmp_path / "secret.css").write_text(SMALL_PAGE)
    (static / "pdf" / "link.css").symlink_to(tmp_path / "secret.css")
    monkeypatch.setattr(pdf, "STATIC_ROOT_FOR_PDF", static)
    return static


def _escapes(static: Path) -> list[str]:
    secret = static.parent / "secret.css"
    return [
        f"file://{secret}",
        f"FILE://{secret}",
        f"File://{secret}",
        f"file://{static}/%2e%2e/secret.css",
        f"file://{static}/pdf/%2E%2E/%2e%2e/secret.css",
        f"file://{static}/pdf/..%2F..%2Fsecret.css",
        f"file://{static}/pdf/link.css",  # a symbolic link out of static/
        f"file://localhost{secret}",
        f"file://evil.example{static}/pdf/allowed.css",
        "file:pdf/allowed.css",  # relative: depends on the working directory
        "ftp://example.com/x.css",
        "HTTP://example.com/x.css",
    ]


def test_the_fetcher_refuses_every_spelling_of_a_file_outside_static(static_dir):
    fetcher = pdf._fetcher()
    read = []
    for url in _escapes(static_dir) + ["FILE:///etc/hostname", "file:///etc/hostname"]:
        try:
            fetcher.fetch(url).close()
        except ValueError:
            continue
        read.append(url)
    assert read == []


def test_the_fetcher_reads_files_inside_static_and_data_urls(static_dir):
    fetcher = pdf._fetcher()
    for url in (
        f"file://{static_dir}/pdf/allowed.css",
        f"FILE://{static_dir}/pdf/allowed.css",
        f"file://{static_dir}/pdf/%61llowed.css",  # percent-encoded, but still inside
        f"file://{static_dir}/pdf/../pdf/allowed.css",
    ):
        response = fetcher.fetch(url)
        try:
            assert response.read() == SMALL_PAGE.encode(), url
        finally:
            response.close()
    assert fetcher.fetch("data:text/css,p%7Bcolor:red%7D").read() == b"p{color:red}"


def _page_width_mm(html: str, static: Path) -> float:
    import weasyprint

    document = weasyprint.HTML(string=html, url_fetcher=pdf._fetcher(), base_url=f"{static}/").render()
    return round(document.pages[0].width * 25.4 / 96)


def test_a_rendered_document_uses_the_static_stylesheet_and_ignores_the_escapes(static_dir):
    assert _page_width_mm('<link rel="stylesheet" href="pdf/allowed.css"><p>x</p>', static_dir) == 100
    for url in _escapes(static_dir):
        if url.startswith(("ftp:", "HTTP:")):
            continue  # no network in tests
        html = f'<link rel="stylesheet" href="{url}"><p>x</p>'
        assert _page_width_mm(html, static_dir) == 210, url  # A4: the stylesheet was not read


def test_the_project_stylesheet_still_loads():
    pdf.warm_up()
    assert pdf.local_static_path(f"file://{pdf.STATIC_ROOT_FOR_PDF}/pdf/documents.css").is_file()
