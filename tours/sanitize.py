"""The tour description is shown as HTML on the retail and trade sites, so it is cleaned when staff save it: only
a few formatting tags survive, links only to http(s)/mailto, and script/style contents go entirely."""

from __future__ import annotations

import nh3

ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "ul", "ol", "li", "a", "h3", "h4"})
ALLOWED_ATTRIBUTES = {"a": {"href"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def sanitize_description(html: str) -> str:
    """Clean staff-written HTML; the result is safe to mark safe in templates."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(URL_SCHEMES),
        clean_content_tags={"script", "style"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    ).strip()
