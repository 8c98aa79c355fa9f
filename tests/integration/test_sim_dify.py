"""The Dify emulator over real loopback HTTP: shapes, envelopes, SSE, conversations, faults, logs."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from watchdog.serving import ThreadedServer
from watchdog.sim.logfmt import SimLog
from watchdog.sim.runner import DifyOptions, build_dify

pytestmark = pytest.mark.integration

KEY = "app-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
DIFY_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \[[^\]]+\] "
    r"\[[^:\]]+:\d+\] (?:[0-9a-f]{32} )?- .*$"
)


@contextmanager
def dify(**options: Any) -> Iterator[tuple[httpx.Client, io.StringIO]]:
    log = io.StringIO()
    _, app = build_dify(DifyOptions(api_keys=(KEY,), **options), log=SimLog(log))
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        yield client, log


def chat(client: httpx.Client, query: str = "Oi", user: str = "ana", **extra: Any) -> httpx.Response:
    body = {"inputs": {}, "query": query, "user": user, "response_mode": "blocking", **extra}
    return client.post("/v1/chat-messages", json=body, headers=AUTH)


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]


def test_health_and_welcome_need_no_key_and_every_answer_carries_version_headers() -> None:
    with dify() as (client, _):
        health = client.get("/health")
        welcome = client.get("/v1/")
        denied = client.get("/v1/info")
    assert health.json()["status"] == "ok" and '"status": "ok"' in health.text  # json.dumps spacing
    assert welcome.json() == {"welcome": "Dify OpenAPI", "api_version": "v1", "server_version": "1.13.3"}
    assert {r.headers["X-Version"] for r in (health, welcome, denied)} == {"1.13.3"}
    assert denied.headers["X-Env"] == "PRODUCTION"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "Authorization header must be provided and start with 'Bearer'"),
        ("Basic abc", "Authorization scheme must be 'Bearer'"),
        ("Bearer app-wrong", "Access token is invalid"),
    ],
)
def test_the_three_401s(header: str, message: str) -> None:
    with dify() as (client, _):
        response = client.get("/v1/info", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json() == {"code": "unauthorized", "message": message, "status": 401}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_validation_errors() -> None:
    with dify() as (client, _):
        empty = client.post("/v1/chat-messages", content=b"", headers=AUTH)
        no_user = client.post("/v1/chat-messages", json={"inputs": {}, "query": "Oi"}, headers=AUTH)
        bad_id = chat(client, conversation_id="nope")
        unknown = chat(client, conversation_id="0b6e2b4c-0000-4000-8000-000000000000")
    assert empty.json()["message"] == "Invalid JSON payload received or JSON payload is empty."
    assert no_user.json() == {"code": "invalid_param", "message": "Arg user must be provided.", "status": 400}
    assert bad_id.json()["message"] == "conversation_id must be a valid UUID"
    assert unknown.status_code == 404
    assert unknown.json() == {"code": "not_found", "message": "Conversation Not Exists.", "status": 404}


def test_blocking_chat_creates_and_continues_a_conversation_per_user() -> None:
    with dify() as (client, log):
        first = chat(client, "Olá").json()
        again = chat(client, "De novo", conversation_id=first["conversation_id"]).json()
        other_user = chat(client, "x", user="bia", conversation_id=first["conversation_id"])
    assert first["event"] == "message" and first["answer"] == "Echo: Olá" and first["mode"] == "chat"
    assert again["conversation_id"] == first["conversation_id"]
    assert {"total_tokens", "total_price", "currency", "latency"} <= set(first["metadata"]["usage"])
    assert isinstance(first["metadata"]["usage"]["total_price"], str)
    assert other_user.status_code == 404  # a conversation belongs to its end user
    assert all(DIFY_LINE.match(line) for line in log.getvalue().splitlines())
    assert "HTTP Request: POST http://plugin_daemon:5002" in log.getvalue()


def test_non_ascii_is_escaped_in_blocking_answers() -> None:
    with dify() as (client, _):
        raw = chat(client, "ação").text
    assert "\\u00e7\\u00e3o" in raw


def test_streaming_event_order_and_pings_while_slow() -> None:
    with dify(ping_seconds=0.1) as (client, _):
        client.post("/_sim/faults", json={"name": "slow", "params": {"seconds": 0.35}})
        body = {
            "inputs": {},
            "query": "uma frase com várias palavras aqui",
            "user": "ana",
            "response_mode": "streaming",
        }
        response = client.post("/v1/chat-messages", json=body, headers=AUTH)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("event: ping\n\n")
    got = events(response)
    names = [e["event"] for e in got]
    assert names[-1] == "message_end" and set(names[:-1]) == {"message"} and len(names) >= 3
    assert "".join(e["answer"] for e in got[:-1]) == "Echo: uma frase com várias palavras aqui"
    assert all(e["conversation_id"] == got[0]["conversation_id"] and "task_id" in e for e in got)


def test_agent_mode_streams_agent_messages() -> None:
    with dify(mode="agent-chat") as (client, _):
        body = {"inputs": {}, "query": "Oi", "user": "ana", "response_mode": "streaming"}
        names = [e["event"] for e in events(client.post("/v1/chat-messages", json=body, headers=AUTH))]
    assert names[0] == "agent_thought" and "agent_message" in names and names[-1] == "message_end"


def test_conversations_list_and_delete() -> None:
    with dify() as (client, _):
        ids = [chat(client, f"m{i}").json()["conversation_id"] for i in range(3)]
        chat(client, "other", user="bia")
        listed = client.get("/v1/conversations", params={"user": "ana", "limit": 2}, headers=AUTH).json()
        rest = client.get(
            "/v1/conversations", params={"user": "ana", "last_id": listed["data"][-1]["id"]}, headers=AUTH
        )
        wrong_user = client.request(
            "DELETE", f"/v1/conversations/{ids[0]}", json={"user": "bia"}, headers=AUTH
        )
        deleted = client.request("DELETE", f"/v1/conversations/{ids[0]}", json={"user": "ana"}, headers=AUTH)
        after = client.get("/v1/conversations", params={"user": "ana"}, headers=AUTH).json()
        bad_last = client.get("/v1/conversations", params={"user": "ana", "last_id": "nope"}, headers=AUTH)
    assert listed["limit"] == 2 and listed["has_more"] is True and len(listed["data"]) == 2
    assert len(rest.json()["data"]) == 1
    assert wrong_user.status_code == 404 and deleted.status_code == 204 and deleted.content == b""
    assert {c["id"] for c in after["data"]} == set(ids[1:])
    assert bad_last.json()["message"] == "Last Conversation Not Exists."


def test_forget_after_404s_the_old_conversation_and_a_new_one_works() -> None:
    with dify(faults=("forget_after:messages=2",)) as (client, _):
        conv = chat(client, "1").json()["conversation_id"]
        assert chat(client, "2", conversation_id=conv).status_code == 200
        gone = chat(client, "3", conversation_id=conv)
        fresh = chat(client, "4")
        listed = client.get("/v1/conversations", params={"user": "ana"}, headers=AUTH).json()
    assert gone.status_code == 404 and gone.json()["message"] == "Conversation Not Exists."
    assert fresh.status_code == 200 and [c["id"] for c in listed["data"]] == [fresh.json()["conversation_id"]]


def test_hang_chat_only_or_everything() -> None:
    with dify() as (client, _):
        client.post("/_sim/faults", json={"name": "hang", "params": {"scope": "chat"}})
        with pytest.raises(httpx.ReadTimeout):
            client.post(
                "/v1/chat-messages", json={"inputs": {}, "query": "x", "user": "a"}, headers=AUTH, timeout=0.3
            )
        assert client.get("/health").status_code == 200
        assert client.get("/v1/info", headers=AUTH).status_code == 200
        client.post("/_sim/faults", json={"name": "hang", "params": {"scope": "all"}})
        with pytest.raises(httpx.ReadTimeout):
            client.get("/health", timeout=0.3)
        client.delete("/_sim/faults/hang")
        assert client.get("/health").status_code == 200


def test_error_500_error_event_and_truncated_stream() -> None:
    streaming = {"inputs": {}, "query": "a b c d e f g", "user": "ana", "response_mode": "streaming"}
    with dify() as (client, log):
        client.post("/_sim/faults", json={"name": "error_500"})
        failed = chat(client)
        assert client.get("/v1/info", headers=AUTH).status_code == 200  # scope chat
        client.delete("/_sim/faults")
        client.post("/_sim/faults", json={"name": "error_event"})
        errored = events(client.post("/v1/chat-messages", json=streaming, headers=AUTH))
        blocking_error = chat(client)
        client.delete("/_sim/faults")
        client.post("/_sim/faults", json={"name": "truncate_stream"})
        cut = events(client.post("/v1/chat-messages", json=streaming, headers=AUTH))
    assert failed.status_code == 500 and failed.json()["code"] == "internal_server_error"
    assert (
        "internal server error." in log.getvalue() and "Traceback (most recent call last):" in log.getvalue()
    )
    assert [e["event"] for e in errored] == ["error"] and errored[0]["code"] == "completion_request_error"
    assert "task_id" not in errored[0]
    assert blocking_error.status_code == 400 and blocking_error.json()["code"] == "completion_request_error"
    assert [e["event"] for e in cut] == ["message"]


def test_worker_timeout_logs_gunicorn_lines_and_hangs_everything() -> None:
    with dify() as (client, log):
        client.post("/_sim/faults", json={"name": "worker_timeout"})
        with pytest.raises(httpx.ReadTimeout):
            client.get("/health", timeout=0.3)
    text = log.getvalue()
    assert "[CRITICAL] WORKER TIMEOUT (pid:35)" in text and "was sent SIGKILL! Perhaps out of memory?" in text


def test_control_route_validates_faults() -> None:
    with dify() as (client, _):
        unknown = client.post("/_sim/faults", json={"name": "meteor"})
        bad = client.post("/_sim/faults", json={"name": "slow", "params": {"kind": "all", "minutes": 1}})
        state = client.get("/_sim/state").json()
    assert unknown.status_code == 400 and bad.status_code == 400
    assert state["faults"] == {} and state["requests"] == 0


def test_conversations_survive_a_restart_with_a_state_file(tmp_path: Any) -> None:
    state = tmp_path / "dify.json"
    with dify(state_file=state) as (client, _):
        conv = chat(client, "Oi").json()["conversation_id"]
    with dify(state_file=state) as (client, _):
        again = chat(client, "De novo", conversation_id=conv)
    assert again.status_code == 200 and again.json()["conversation_id"] == conv
