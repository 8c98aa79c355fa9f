"""Dify contract: the same assertions against the emulator and the real Dify 1.12.1 api, for every call the
watchdog makes and every shape it reads (facts: ../shared/upstream/README.md, "Dify")."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.contract.dify_target import DIFY_VERSION, DifyTarget

pytestmark = pytest.mark.integration

USER = "evo-watchdog-contract"
FAIL_QUERY = "500"  # the fault server answers 500: midstream-fail's HTTP node fails after Answer 1 streamed
UNKNOWN = "0b6e2b4c-0000-4000-8000-000000000000"
HINT = re.compile(
    r"^Conversation Not Exists\. You have requested this URI \[/v1/chat-messages\] but did you mean .+ \?$"
)


@pytest.fixture
def client(dify_target: DifyTarget) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dify_target.url, timeout=60, trust_env=False) as http:
        yield http


def chat(
    client: httpx.Client, target: DifyTarget, query: str, *, key: str = "", **extra: Any
) -> httpx.Response:
    body = {"inputs": {}, "query": query, "user": USER, "response_mode": "blocking", **extra}
    return client.post("/chat-messages", json=body, headers=target.auth(key))


def stream(
    client: httpx.Client, target: DifyTarget, query: str, *, key: str = "", **extra: Any
) -> httpx.Response:
    return chat(client, target, query, key=key, response_mode="streaming", **extra)


def blocks(response: httpx.Response) -> list[str]:
    return [block for block in response.text.split("\n\n") if block.strip()]


def payloads(response: httpx.Response) -> list[dict[str, Any]]:
    """Every SSE block is `event: ping` or one compact `data:` line (orjson: no spaces, UTF-8 as is)."""
    found = []
    for block in blocks(response):
        if block == "event: ping":
            continue
        assert block.startswith("data: ") and "\n" not in block, block
        raw = block[len("data: ") :]
        payload = json.loads(raw)
        assert raw == json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        found.append(payload)
    return found


def assert_envelope(response: httpx.Response, status: int, code: str) -> str:
    """Dify's error envelope in spaced JSON (`json.dumps`), keys in upstream's order; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["code", "message", "status"] and body["code"] == code and body["status"] == status
    assert response.text.rstrip("\n") == json.dumps(body)
    return str(body["message"])


def test_health_is_spaced_json_with_pid_status_and_version(dify_target: DifyTarget) -> None:
    response = httpx.get(dify_target.health_url, timeout=10, trust_env=False)
    body = response.json()
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert list(body) == ["pid", "status", "version"] and isinstance(body["pid"], int)
    assert body["status"] == "ok" and body["version"] == DIFY_VERSION
    assert response.text == json.dumps(body)  # `{"pid": 21310, "status": "ok", ...}`, spaces and all
    assert response.headers["X-Version"] == DIFY_VERSION


def test_v1_root_is_a_404_page_and_v1_redirects_to_it(dify_target: DifyTarget) -> None:
    with httpx.Client(base_url=dify_target.root, timeout=10, trust_env=False) as http:
        root = http.get("/v1/")
        bare = http.get("/v1")
        site = http.get("/")
        unknown = http.get("/v1/evo-watchdog-no-such-route", headers=dify_target.auth())
    for page in (root, site, unknown):
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "<title>404 Not Found</title>" in page.text
    assert bare.status_code == 308 and bare.headers["location"].endswith("/v1/")


def test_info_names_each_app_and_its_mode(client: httpx.Client, dify_target: DifyTarget) -> None:
    echo = client.get("/info", headers=dify_target.auth()).json()
    fail = client.get("/info", headers=dify_target.auth(dify_target.fail_api_key)).json()
    assert {"name", "description", "tags", "mode", "author_name"} <= set(echo)
    assert (echo["name"], echo["mode"]) == ("echo-chat", "advanced-chat")
    assert (fail["name"], fail["mode"]) == ("midstream-fail", "advanced-chat")


def test_a_wrong_key_is_401_access_token_is_invalid(client: httpx.Client) -> None:
    response = client.get("/info", headers={"Authorization": "Bearer app-evo-watchdog-not-a-key"})
    assert assert_envelope(response, 401, "unauthorized") == "Access token is invalid"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_blocking_echo_and_a_second_turn(client: httpx.Client, dify_target: DifyTarget) -> None:
    first = chat(client, dify_target, "ação")
    body = first.json()
    again = chat(client, dify_target, "de novo", conversation_id=body["conversation_id"]).json()
    assert first.status_code == 200 and "\\u00e7\\u00e3o" in first.text  # json.dumps escapes non-ASCII
    assert body["event"] == "message" and body["mode"] == "advanced-chat" and body["answer"] == "echo: ação"
    assert uuid.UUID(body["conversation_id"]) and body["id"] == body["message_id"] and body["task_id"]
    assert "usage" in body["metadata"] and isinstance(body["created_at"], int)
    assert again["conversation_id"] == body["conversation_id"] and again["answer"] == "echo: de novo"


def test_streaming_echo_in_chatflow_order(client: httpx.Client, dify_target: DifyTarget) -> None:
    response = stream(client, dify_target, "olá mundo")
    events = payloads(response)
    names = [e["event"] for e in events]
    messages = [e for e in events if e["event"] == "message"]
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert names[0] == "workflow_started" and names[-2:] == ["workflow_finished", "message_end"]
    assert names.index("node_started") < names.index("message")
    assert max(i for i, n in enumerate(names) if n == "message") < max(
        i for i, n in enumerate(names) if n == "node_finished"
    )
    assert len(messages) >= 2 and "".join(m["answer"] for m in messages) == "echo: olá mundo"
    assert "olá mundo" in response.text  # UTF-8 as is in the stream
    assert {(e["conversation_id"], e["message_id"]) for e in events} == {
        (events[0]["conversation_id"], events[0]["message_id"])
    }
    assert all(e["task_id"] for e in events) and events[-2]["data"]["status"] == "succeeded"


def test_a_failure_after_streaming_began_keeps_http_200_and_ends_with_an_error(
    client: httpx.Client, dify_target: DifyTarget
) -> None:
    response = stream(client, dify_target, FAIL_QUERY, key=dify_target.fail_api_key)
    events = payloads(response)
    names = [e["event"] for e in events]
    error = events[-1]
    failed_nodes = [e for e in events if e["event"] == "node_finished" and e["data"]["status"] == "failed"]
    assert response.status_code == 200
    assert "".join(e["answer"] for e in events if e["event"] == "message").startswith(
        f"partial: {FAIL_QUERY}"
    )
    assert names[-2:] == ["workflow_finished", "error"] and events[-2]["data"]["status"] == "failed"
    assert failed_nodes and names.index("node_finished", names.index("message")) < len(names) - 2
    assert "message_end" not in names and "task_id" not in error
    assert (error["code"], error["status"]) == ("invalid_param", 400)
    assert error["message"].startswith("Run failed: ")


def test_the_same_failure_in_blocking_mode_is_that_envelope_as_http_400(
    client: httpx.Client, dify_target: DifyTarget
) -> None:
    response = chat(client, dify_target, FAIL_QUERY, key=dify_target.fail_api_key)
    assert assert_envelope(response, 400, "invalid_param").startswith("Run failed: ")


def test_pings_carry_no_data_and_come_every_interval_of_elapsed_time(
    client: httpx.Client, dify_target: DifyTarget
) -> None:
    wait = round(dify_target.ping_seconds * 1.25, 2)  # the fault server answers /slow/<N> after N seconds
    body = {"inputs": {}, "query": f"slow/{wait}", "user": USER, "response_mode": "streaming"}
    started, pings, names = time.monotonic(), [], []
    with client.stream(
        "POST", "/chat-messages", json=body, headers=dify_target.auth(dify_target.fail_api_key)
    ) as r:
        for line in r.iter_lines():
            if line.startswith("event:"):
                assert line == "event: ping"
                pings.append(time.monotonic() - started)
            elif line.startswith("data: "):
                names.append(json.loads(line[6:])["event"])
            else:
                assert line == "", line  # no `id:`, no comments, no data line after a ping
    assert pings and pings[0] >= dify_target.ping_seconds * 0.9
    assert names[0] == "workflow_started" and names[-1] == "message_end"


@pytest.mark.parametrize("mode", ["blocking", "streaming"])
def test_an_unknown_conversation_is_a_plain_404_with_the_hint(
    client: httpx.Client, dify_target: DifyTarget, mode: str
) -> None:
    response = chat(client, dify_target, "Oi", conversation_id=UNKNOWN, response_mode=mode)
    assert HINT.match(assert_envelope(response, 404, "not_found"))


def test_a_conversation_id_that_is_no_uuid_is_400_invalid_param(
    client: httpx.Client, dify_target: DifyTarget
) -> None:
    message = assert_envelope(chat(client, dify_target, "Oi", conversation_id="nope"), 400, "invalid_param")
    assert "conversation_id must be a valid UUID" in message


def test_a_missing_user_is_400(client: httpx.Client, dify_target: DifyTarget) -> None:
    response = client.post("/chat-messages", json={"inputs": {}, "query": "Oi"}, headers=dify_target.auth())
    assert assert_envelope(response, 400, "invalid_param") == "Arg user must be provided."


def test_bodies_flask_cannot_read_as_json(client: httpx.Client, dify_target: DifyTarget) -> None:
    empty = client.post(
        "/chat-messages", content=b"", headers={**dify_target.auth(), "Content-Type": "application/json"}
    )
    untyped = client.post("/chat-messages", content=b"{}", headers=dify_target.auth())
    assert assert_envelope(empty, 400, "bad_request").startswith("The browser (or proxy) sent a request")
    assert assert_envelope(untyped, 415, "unsupported_media_type").startswith(
        "Did not attempt to load JSON data"
    )


def test_the_completion_endpoint_refuses_a_chat_key(client: httpx.Client, dify_target: DifyTarget) -> None:
    body = {"inputs": {}, "query": "Oi", "user": USER, "response_mode": "blocking"}
    response = client.post("/completion-messages", json=body, headers=dify_target.auth())
    assert (
        assert_envelope(response, 400, "app_unavailable")
        == "App unavailable, please check your app configurations."
    )


def test_stop_answers_success_even_for_a_made_up_task(client: httpx.Client, dify_target: DifyTarget) -> None:
    response = client.post(
        f"/chat-messages/{uuid.uuid4()}/stop", json={"user": USER}, headers=dify_target.auth()
    )
    assert response.status_code == 200 and response.json() == {"result": "success"}


def test_conversations_are_listed_per_user_and_deleted_with_204(
    client: httpx.Client, dify_target: DifyTarget
) -> None:
    user = f"{USER}-{uuid.uuid4().hex[:8]}"
    created = chat(client, dify_target, "Oi", user=user).json()["conversation_id"]
    listed = client.get(
        "/conversations", params={"user": user, "limit": 20}, headers=dify_target.auth()
    ).json()
    nobody = client.get(
        "/conversations", params={"user": f"{user}-nobody"}, headers=dify_target.auth()
    ).json()
    deleted = client.request(
        "DELETE", f"/conversations/{created}", json={"user": user}, headers=dify_target.auth()
    )
    unknown = client.request(
        "DELETE", f"/conversations/{UNKNOWN}", json={"user": user}, headers=dify_target.auth()
    )
    after = client.get("/conversations", params={"user": user}, headers=dify_target.auth()).json()
    assert [c["id"] for c in listed["data"]] == [created] and listed["has_more"] is False
    assert {"id", "name", "inputs", "status", "created_at", "updated_at"} <= set(listed["data"][0])
    assert listed["data"][0]["name"] == "Oi"  # a new conversation is named after its first query
    assert nobody == {"limit": 20, "has_more": False, "data": []}
    assert (deleted.status_code, deleted.content, unknown.status_code, unknown.content) == (
        204,
        b"",
        204,
        b"",
    )
    assert after["data"] == []
