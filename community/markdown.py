"""Markdown to safe HTML: the only place user text becomes markup.

markdown-it-py's CommonMark preset with raw HTML disabled renders; nh3 (ammonia) then keeps only
an allow-list of tags and attributes, links only to http, https and mailto, and marks every
link rel="nofollow noopener". Script, style, event handlers and javascript: URLs never survive.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "img", "del",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False})


def markdown_render(text: str) -> str:
    """Sanitized HTML for Markdown `text`."""
    html = _renderer.render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener",
        strip_comments=True,
    )
