from __future__ import annotations

from tours.sanitize import sanitize_description


def test_allowed_markup_survives():
    html = "<h3>Day one</h3><p>A <strong>long</strong> <em>walk</em>.<br></p><ul><li>Water</li></ul><ol><li>x</li></ol>"
    assert sanitize_description(html) == html


def test_scripts_handlers_and_unknown_tags_go():
    html = (
        '<p onclick="steal()">Hi<script>alert(1)</script></p><img src=x onerror=alert(1)>'
        '<iframe src="https://evil.example"></iframe><h2>Big</h2><style>p{}</style><!-- note -->'
    )
    cleaned = sanitize_description(html)
    assert cleaned == "<p>Hi</p>Big"


def test_links_keep_only_safe_hrefs():
    cleaned = sanitize_description(
        '<a href="https://example.com/x" target="_blank" style="x">ok</a> <a href="javascript:alert(1)">bad</a>'
    )
    assert 'href="https://example.com/x"' in cleaned
    assert "javascript" not in cleaned and "target" not in cleaned and "style" not in cleaned
    assert 'rel="noopener noreferrer nofollow"' in cleaned
    assert "<a" in cleaned.split("ok</a>")[1]  # the bad link keeps its text, loses its href


def test_empty_stays_empty():
    assert sanitize_description("") == ""
