"""The Dify emulator over real loopback HTTP: what only the emulator shows (faults, app modes the real pair
has no app for, stop, logs). Shapes both share are in tests/contract/test_dify_contract.py."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from watchdog.serving import ThreadedServer
from watchdog.sim.dify import DifySim, create_dify_app
from watchdog.sim.dify_apps import ECHO_CHAT, MIDSTREAM_FAIL, DifyApp
from watchdog.sim.logfmt import SimLog
from watchdog.sim.runner import DifyOptions, build_dify

pytestmark = pytest.mark.integration

KEY = "app-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


@contextmanager
def dify(**options: Any) -> Iterator[tuple[httpx.Client, io.StringIO]]:
    log = io.StringIO()
    _, app = build_dify(DifyOptions(api_keys=(KEY,), **options), log=SimLog(log))
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        yield client, log


@contextmanager
def served(**apps: DifyApp) -> Iterator[tuple[httpx.Client, io.StringIO]]:
    """A DifySim whose keys are `app-<name>` for each app given."""
    log = io.StringIO()
    sim = DifySim(apps={f"app-{k}": v for k, v in apps.items()}, log=SimLog(log), ping_seconds=0.2)
    with (
        ThreadedServer(create_dify_app(sim)) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        yield client, log


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer app-{name}"}


def chat(
    client: httpx.Client, query: str = "Oi", user: str = "ana", headers: dict[str, str] = AUTH, **extra: Any
) -> httpx.Response:
    body = {"inputs": {}, "query": query, "user": user, "response_mode": "blocking", **extra}
    return client.post("/v1/chat-messages", json=body, headers=headers)


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]


def test_every_answer_carries_the_version_headers_html_pages_included() -> None:
    with dify(version="1.12.1") as (client, _):
        answers = [client.get("/health"), client.get("/v1/"), client.get("/v1/info"), chat(client)]
        wrong_method = client.get("/v1/chat-messages", headers=AUTH)
    assert {r.headers["X-Version"] for r in answers} == {"1.12.1"}
    assert {r.headers["X-Env"] for r in answers} == {"PRODUCTION"}
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"


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


def test_body_checks_come_in_upstream_order_with_pydantic_texts() -> None:
    with dify() as (client, _):
        no_user = client.post("/v1/chat-messages", json={"inputs": {}, "query": "Oi"}, headers=AUTH)
        no_inputs = client.post("/v1/chat-messages", json={"query": "Oi", "user": "ana"}, headers=AUTH)
        empty_query = chat(client, "")
    assert no_user.json() == {"code": "invalid_param", "message": "Arg user must be provided.", "status": 400}
    assert no_inputs.json()["message"].startswith("1 validation error for ChatRequestPayload\ninputs\n")
    assert "Field required [type=missing" in no_inputs.json()["message"]
    assert empty_query.json()["message"] == "query is required"


def test_a_model_app_keeps_a_conversation_per_user_and_app() -> None:
    with served(chat=DifyApp(mode="chat"), other=DifyApp(mode="chat")) as (client, log):
        first = chat(client, "Olá", headers=auth("chat")).json()
        again = chat(client, "De novo", conversation_id=first["conversation_id"], headers=auth("chat")).json()
        other_user = chat(
            client, "x", user="bia", conversation_id=first["conversation_id"], headers=auth("chat")
        )
        other_app = chat(client, "x", conversation_id=first["conversation_id"], headers=auth("other"))
    assert first["answer"] == "echo: Olá" and first["mode"] == "chat"
    assert again["conversation_id"] == first["conversation_id"]
    assert isinstance(first["metadata"]["usage"]["total_price"], str)
    assert other_user.status_code == 404 and other_app.status_code == 404
    assert "HTTP Request: POST http://plugin_daemon:5002" in log.getvalue()


def test_a_model_stream_ends_with_an_empty_chunk_and_pings_while_slow() -> None:
    with dify(ping_seconds=0.1) as (client, _):
        client.post("/_sim/faults", json={"name": "slow", "params": {"seconds": 0.35}})
        body = {
            "inputs": {},
            "query": "uma frase com várias palavras",
            "user": "ana",
            "response_mode": "streaming",
        }
        response = client.post("/v1/chat-messages", json=body, headers=AUTH)
    got = events(response)
    names = [e["event"] for e in got]
    assert response.text.startswith("event: ping\n\n") and "várias" in response.text
    assert names[-1] == "message_end" and set(names[:-1]) == {"message"} and got[-2]["answer"] == ""
    assert "".join(e["answer"] for e in got[:-1]) == "echo: uma frase com várias palavras"


def test_agent_apps_refuse_blocking_and_stream_agent_messages_only() -> None:
    with served(agent=DifyApp(mode="agent-chat")) as (client, _):
        blocking = chat(client, headers=auth("agent"))
        streamed = events(chat(client, "Oi", headers=auth("agent"), response_mode="streaming"))
    # core/app/apps/agent_chat/app_generator.py:87
    assert blocking.status_code == 400
    assert blocking.json()["message"] == "Agent Chat App does not support blocking mode"
    names = [e["event"] for e in streamed]
    assert names[0] == "agent_thought" and names[-2:] == ["agent_thought", "message_end"]
    assert "message" not in names and {"agent_message"} == set(names[1:-2])
    assert "".join(e["answer"] for e in streamed if e["event"] == "agent_message") == "echo: Oi"


def test_completion_apps_answer_only_the_completion_route() -> None:
    with served(text=DifyApp(mode="completion")) as (client, _):
        body = {"inputs": {}, "query": "Oi", "user": "ana"}
        done = client.post("/v1/completion-messages", json=body, headers=auth("text")).json()
        as_chat = chat(client, headers=auth("text"))
        listed = client.get("/v1/conversations", params={"user": "ana"}, headers=auth("text"))
    assert done["mode"] == "completion" and "conversation_id" not in done and done["answer"] == "echo: Oi"
    assert as_chat.json()["code"] == "not_chat_app" and listed.json()["code"] == "not_chat_app"


def test_required_inputs_are_a_400_naming_the_variable() -> None:
    with served(form=DifyApp(mode="advanced-chat", required_inputs=("remoteJid",))) as (client, _):
        missing = chat(client, headers=auth("form"))
        given = chat(client, headers=auth("form"), inputs={"remoteJid": "5511@s.whatsapp.net"})
    assert missing.json() == {
        "code": "invalid_param",
        "message": "remoteJid is required in input form",
        "status": 400,
    }
    assert given.status_code == 200


def test_the_midstream_failure_logs_what_real_dify_logs() -> None:
    with served(fail=MIDSTREAM_FAIL) as (client, log):
        chat(client, "500", headers=auth("fail"), response_mode="streaming")
        chat(client, "500", headers=auth("fail"))
        closed = events(chat(client, "close", headers=auth("fail"), response_mode="streaming"))
        passed = events(chat(client, "404", headers=auth("fail"), response_mode="streaming"))
    text = log.getvalue()
    for line in (
        'HTTP Request: GET http://127.0.0.1:18083/500 "HTTP/1.1 500 Internal Server Error"',
        "Received status code 500 for URL http://127.0.0.1:18083/500 which is in the force list",
        "http request node http failed to run: Reached maximum retries (0)",
        "Node http failed with ABORT strategy:",
        "Unknown Error when workflow entry running",
        "RuntimeError: Reached maximum retries (0) for URL http://127.0.0.1:18083/500",
        "Failed to process generate task pipeline, conversation_id: ",  # blocking only
        "ValueError: Run failed: Reached maximum retries (0)",
    ):
        assert line in text
    assert closed[-1]["message"] == "Run failed: Server disconnected without sending a response."
    assert passed[-1]["event"] == "message_end"  # a 404 passes: the node has no error strategy
    assert "".join(e["answer"] for e in passed if e["event"] == "message").endswith(
        "upstream said: fault 404"
    )


def test_stop_ends_a_running_chatflow_stopped_for_its_own_user_only() -> None:
    body = {"inputs": {}, "query": "slow/2", "user": "ana", "response_mode": "streaming"}
    started = time.monotonic()
    with served(fail=MIDSTREAM_FAIL) as (client, _):
        tail: list[dict[str, Any]] = []
        with client.stream("POST", "/v1/chat-messages", json=body, headers=auth("fail")) as response:
            lines = response.iter_lines()
            first = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
            stop = f"/v1/chat-messages/{first['task_id']}/stop"
            other = client.post(stop, json={"user": "bia"}, headers=auth("fail"))
            own = client.post(stop, json={"user": "ana"}, headers=auth("fail"))
            tail = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert other.json() == own.json() == {"result": "success"}
    assert [e["event"] for e in tail[-2:]] == ["workflow_finished", "message_end"]
    assert tail[-2]["data"]["status"] == "stopped" and time.monotonic() - started < 1.5


def test_delete_filters_on_the_id_alone() -> None:
    with served(echo=ECHO_CHAT) as (client, _):
        conv = chat(client, headers=auth("echo")).json()["conversation_id"]
        deleted = client.request(
            "DELETE", f"/v1/conversations/{conv}", json={"user": "bia"}, headers=auth("echo")
        )
        gone = chat(client, conversation_id=conv, headers=auth("echo"))
        not_uuid = client.request(
            "DELETE", "/v1/conversations/nope", json={"user": "ana"}, headers=auth("echo")
        )
    assert (
        deleted.status_code == 204 and gone.status_code == 404
    )  # ConversationService.delete: no user filter
    assert not_uuid.status_code == 404 and not_uuid.headers["content-type"].startswith("text/html")


def test_conversation_paging_and_its_validation() -> None:
    with dify() as (client, _):
        ids = [chat(client, f"m{i}").json()["conversation_id"] for i in range(3)]
        listed = client.get("/v1/conversations", params={"user": "ana", "limit": 2}, headers=AUTH).json()
        rest = client.get(
            "/v1/conversations", params={"user": "ana", "last_id": listed["data"][-1]["id"]}, headers=AUTH
        ).json()
        unknown = client.get(
            "/v1/conversations",
            params={"user": "ana", "last_id": "0b6e2b4c-0000-4000-8000-000000000000"},
            headers=AUTH,
        )
        bad = [
            client.get("/v1/conversations", params={"user": "ana", **p}, headers=AUTH)
            for p in ({"limit": "101"}, {"limit": "x"}, {"last_id": "nope"})
        ]
    assert (
        listed["limit"] == 2
        and listed["has_more"] is True
        and [c["id"] for c in listed["data"]] == ids[:0:-1]
    )
    assert [c["id"] for c in rest["data"]] == ids[:1]
    assert unknown.status_code == 404 and unknown.json()["message"].startswith(
        "Last Conversation Not Exists. You have requested this URI [/v1/conversations] but did you mean"
    )
    assert [r.json()["code"] for r in bad] == ["invalid_param"] * 3


def test_forget_after_404s_the_old_conversation_and_a_new_one_works() -> None:
    with dify(faults=("forget_after:messages=2",)) as (client, _):
        conv = chat(client, "1").json()["conversation_id"]
        assert chat(client, "2", conversation_id=conv).status_code == 200
        gone = chat(client, "3", conversation_id=conv)
        fresh = chat(client, "4")
        listed = client.get("/v1/conversations", params={"user": "ana"}, headers=AUTH).json()
    assert gone.status_code == 404 and gone.json()["message"].startswith("Conversation Not Exists. You have")
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


def test_error_event_fails_a_chatflow_run_as_upstream_does() -> None:
    with served(echo=ECHO_CHAT) as (client, _):
        client.post("/_sim/faults", json={"name": "error_event"})
        streamed = events(chat(client, headers=auth("echo"), response_mode="streaming"))
        blocking = chat(client, headers=auth("echo"))
    assert [e["event"] for e in streamed[-2:]] == ["workflow_finished", "error"]
    assert streamed[-1]["code"] == "invalid_param" and streamed[-1]["message"].startswith("Run failed: ")
    assert blocking.status_code == 400 and blocking.json()["message"].startswith("Run failed: ")


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


def test_a_new_conversation_waits_longer_for_its_first_event_than_a_later_turn() -> None:
    sim = DifySim(api_keys=(KEY,), new_conversation_seconds=0.3, turn_seconds=0.0, log=SimLog(io.StringIO()))
    with (
        ThreadedServer(create_dify_app(sim)) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        started = time.monotonic()
        conv = chat(client).json()["conversation_id"]
        first = time.monotonic() - started
        started = time.monotonic()
        chat(client, conversation_id=conv)
        later = time.monotonic() - started
    assert first >= 0.3 > later


def test_conversations_survive_a_restart_with_a_state_file(tmp_path: Any) -> None:
    state = tmp_path / "dify.json"
    with dify(state_file=state) as (client, _):
        conv = chat(client, "Oi").json()["conversation_id"]
    with dify(state_file=state) as (client, _):
        again = chat(client, "De novo", conversation_id=conv)
    assert again.status_code == 200 and again.json()["conversation_id"] == conv
