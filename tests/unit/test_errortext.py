"""errortext: every error text shown to people is one bounded line without markup."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watchdog.errortext import MAX_CHARS, exception_text, one_line, without_route_hint
from watchdog.sim.dify_wire import WERKZEUG_404

# Express's default 404 page (finalhandler), as an Express app without its own handler answers (Evolution
# 2.3.6 has one: it answers JSON `Cannot GET /path`). A proxy in front can answer such pages too.
EXPRESS_404 = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n'
    "<body>\n<pre>Cannot GET /v2/nowhere</pre>\n</body>\n</html>\n"
)


def test_werkzeug_404_page_becomes_its_words() -> None:
    assert one_line(WERKZEUG_404) == (
        "Not Found The requested URL was not found on the server. If you entered the URL manually please "
        "check your spelling and try again."
    )
    assert one_line(WERKZEUG_404.encode()) == one_line(WERKZEUG_404)


def test_express_404_page_loses_its_head() -> None:
    assert one_line(EXPRESS_404) == "Cannot GET /v2/nowhere"


def test_a_page_with_only_a_title_keeps_the_title() -> None:
    assert one_line("<html><head><title>502 Bad Gateway</title></head><body></body></html>") == (
        "502 Bad Gateway"
    )


def test_scripts_styles_comments_and_entities() -> None:
    page = "<style>p{color:red}</style><!-- x --><p>a &amp; b&nbsp;&lt;c&gt;</p><script>alert(1)</script>"
    assert one_line(page) == "a & b <c>"


def test_long_text_is_cut_with_an_ellipsis() -> None:
    cut = one_line("word " * 100, limit=40)
    assert len(cut) == 40 and cut.endswith("…") and "\n" not in cut
    assert one_line("short", limit=40) == "short"


def test_control_characters_and_newlines_collapse() -> None:
    assert one_line("Traceback:\r\n  line 1\x00\x1b[31m\tboom  ") == "Traceback: line 1 [31m boom"


def test_text_that_only_looks_like_markup_is_kept() -> None:
    assert one_line("a < b and c > d") == "a < b and c > d"


def test_difys_route_hint_is_dropped() -> None:
    message = (
        "Conversation Not Exists. You have requested this URI [/v1/chat-messages] but did you mean "
        "/v1/chat-messages/<string:task_id>/stop or /v1/chat-messages ?"
    )
    assert without_route_hint(message) == "Conversation Not Exists."
    assert without_route_hint("Conversation Not Exists.") == "Conversation Not Exists."


def test_exception_text_falls_back_to_the_class_name() -> None:
    assert exception_text(ConnectionResetError()) == "ConnectionResetError"
    assert exception_text(ValueError("<b>bad</b>\nvalue")) == "bad value"


@given(st.one_of(st.text(), st.binary()), st.integers(min_value=1, max_value=300))
def test_any_input_gives_one_bounded_line(raw: str | bytes, limit: int) -> None:
    out = one_line(raw, limit)
    assert len(out) <= limit
    assert not any(c in out for c in "\r\n\t\x00\x0b\x0c\x1b")
    assert out == out.strip()


def test_the_default_bound() -> None:
    assert MAX_CHARS == 200 and len(one_line("x" * 1000)) == MAX_CHARS
