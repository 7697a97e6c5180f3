"""Markdown to sanitized HTML: what may and may not survive."""

from __future__ import annotations

import re

import pytest

from community.markdown import markdown_render

ATTACKS = [
    "<script>alert(1)</script>",
    "<style>body{display:none}</style>",
    '<iframe src="https://evil.example"></iframe>',
    '<img src=x onerror="alert(1)">',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<a href="javascript:alert(1)">x</a>',
    '<div onmouseover="alert(1)">hover</div>',
    "![x](javascript:alert(1))",
    '[x](https://ok.example "title" onclick="alert(1)")',
]


@pytest.mark.parametrize("source", ATTACKS)
def test_nothing_executable_survives(source):
    html = markdown_render(source)
    tags = re.findall(r"<[a-zA-Z][^>]*>", html)
    assert not [tag for tag in tags if re.match(r"<(script|style|iframe|object|embed|div)\b", tag)]
    assert not [tag for tag in tags if re.search(r"\son\w+\s*=", tag)]
    assert not [tag for tag in tags if re.search(r"(javascript|vbscript|data):", tag, re.IGNORECASE)]


def test_ordinary_markdown_renders():
    html = markdown_render("# Title\n\nSome *emphasis*, `code` and a [link](https://example.com).\n\n- one\n- two")
    assert "<h1>Title</h1>" in html
    assert "<em>emphasis</em>" in html and "<code>code</code>" in html
    assert '<a href="https://example.com" rel="nofollow noopener">link</a>' in html
    assert "<li>one</li>" in html
    assert markdown_render("[mail](mailto:help@example.com)").count('href="mailto:help@example.com"') == 1
