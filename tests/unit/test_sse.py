"""SseDecoder on the stream shapes Dify 1.12.1 was observed to send (shared/upstream/README.md)."""

from __future__ import annotations

from watchdog.probes.sse import SseDecoder, SseEvent

STREAM = (
    'data: {"event":"workflow_started","conversation_id":"c-1","workflow_run_id":"w-1"}\n'
    "\n"
    "event: ping\n"
    "\n"
    'data: {"event":"message","conversation_id":"c-1","answer":"echo: "}\n'
    "\n"
    'data: {"event":"error","conversation_id":"c-1","message_id":"m-1","code":"invalid_param","status":400,'
    '"message":"Run failed: Reached maximum retries (0) for URL http://127.0.0.1:18083/x"}\n'
    "\n"
)


def decode(lines: list[str]) -> list[SseEvent]:
    decoder = SseDecoder()
    events = [e for e in (decoder.feed(line) for line in lines) if e is not None]
    last = decoder.close()
    return events + ([last] if last is not None else [])


def test_difys_stream_with_a_ping_and_a_midstream_error() -> None:
    events = decode(STREAM.split("\n"))
    assert [e.name for e in events] == ["workflow_started", "ping", "message", "error"]
    assert events[1].data == {}  # a ping carries no data
    assert events[3].data["code"] == "invalid_param" and events[3].data["message"].startswith("Run failed:")
    assert "task_id" not in events[3].data


def test_crlf_lines_comments_and_a_last_event_without_its_blank_line() -> None:
    lines = [": keep-alive\r\n", "event: ping\r\n", "\r\n", 'data: {"event":"message_end","id":"m-1"}']
    assert [e.name for e in decode(lines)] == ["ping", "message_end"]


def test_data_that_is_not_an_object_is_malformed_not_an_answer() -> None:
    events = decode(["data: [1, 2]", "", "data: {not json", ""])
    assert [(e.name, e.data["raw"]) for e in events] == [("malformed", "[1, 2]"), ("malformed", "{not json")]


def test_an_event_line_names_data_without_its_own_event_field() -> None:
    (event,) = decode(["event: message", 'data: {"answer": "hi"}', ""])
    assert (event.name, event.data) == ("message", {"answer": "hi"})
