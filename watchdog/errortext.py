"""Error text for people: one line, bounded, no markup.

Upstream answers can be whole HTML pages (Dify 1.12.1 answers `GET /v1/` with werkzeug's 404 page,
Express answers unknown routes with `<pre>Cannot GET /x</pre>`); a finding, log line or table cell
shows a summary of them instead: tags and entities gone, whitespace collapsed, cut with an ellipsis.
"""

from __future__ import annotations

import html
import re

MAX_CHARS = 200
ELLIPSIS = "…"

_HIDDEN = re.compile(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TAG = re.compile(r"</?[A-Za-z!][^<>]*>")
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")
# Flask-RESTX appends this to every 404 message of Dify's service API (observed on 1.12.1).
_ROUTE_HINT = re.compile(r"\s*You have requested this URI \[[^\]]*\] but did you mean .*$", re.S)


def one_line(text: str | bytes, limit: int = MAX_CHARS) -> str:
    """`text` as a single line of at most `limit` characters, with any HTML reduced to its words."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if "<" in text:
        text = _without_markup(text)
    if "&" in text:
        text = html.unescape(text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: max(0, limit - len(ELLIPSIS))].rstrip() + ELLIPSIS
    return text


def without_route_hint(message: str) -> str:
    """Dify's 404 message without the "You have requested this URI [...] but did you mean ..." tail."""
    return _ROUTE_HINT.sub("", message)


def exception_text(exc: BaseException, limit: int = MAX_CHARS) -> str:
    """A library exception as one bounded line; its class name when it carries no message."""
    return one_line(str(exc) or type(exc).__name__, limit)


def _without_markup(text: str) -> str:
    title = _TITLE.search(text)
    body = _TAG.sub(" ", _HIDDEN.sub(" ", _COMMENT.sub(" ", text)))
    if not body.strip() and title is not None:  # a page that says nothing but its title
        return _TAG.sub(" ", title.group(1))
    return body
