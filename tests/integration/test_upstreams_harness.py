"""The harness's values reach the real Evolution API and Dify: what the contract tests build on."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.upstreams import HARNESS, RealUpstreams, parse_values

pytestmark = [pytest.mark.integration, pytest.mark.upstream]

DIFY_VERSION = os.environ.get("WATCHDOG_CONTRACT_DIFY_VERSION", "1.12.1")


def chat(up: RealUpstreams, key: str, query: str, mode: str, **client: Any) -> httpx.Response:
    body = {"inputs": {}, "query": query, "user": f"harness-{uuid.uuid4().hex[:8]}", "response_mode": mode}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{up.dify_url}/chat-messages", json=body, headers=headers, timeout=90, **client)


def stream_events(up: RealUpstreams, key: str, query: str) -> tuple[int, list[dict[str, Any]]]:
    """The status and the `data:` events of a streamed chat (pings have no data)."""
    body = {
        "inputs": {},
        "query": query,
        "user": f"harness-{uuid.uuid4().hex[:8]}",
        "response_mode": "streaming",
    }
    headers = {"Authorization": f"Bearer {key}"}
    events = []
    with httpx.stream(
        "POST", f"{up.dify_url}/chat-messages", json=body, headers=headers, timeout=90
    ) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    return answer.status_code, events


def test_evolution_fetch_instances_answers_with_the_key(real_upstreams: RealUpstreams) -> None:
    url = f"{real_upstreams.evolution_url}/instance/fetchInstances"
    answer = httpx.get(url, headers={"apikey": real_upstreams.evolution_api_key}, timeout=30)
    assert answer.status_code == 200
    assert isinstance(answer.json(), list)
    refused = httpx.get(url, headers={"apikey": "not-the-key"}, timeout=30)
    assert refused.status_code == 401


def test_dify_health_says_ok_and_its_version(real_upstreams: RealUpstreams) -> None:
    health = httpx.get(real_upstreams.dify_health_url, timeout=30).json()
    assert health["status"] == "ok"
    assert health["version"] == DIFY_VERSION


def test_echo_app_answers_a_blocking_chat(real_upstreams: RealUpstreams) -> None:
    query = f"hello {uuid.uuid4().hex[:6]}"
    answer = chat(real_upstreams, real_upstreams.dify_api_key, query, "blocking")
    assert answer.status_code == 200, answer.text
    assert answer.json()["answer"] == f"echo: {query}"


def test_fail_app_streams_to_the_end_when_its_upstream_answers(real_upstreams: RealUpstreams) -> None:
    status, events = stream_events(real_upstreams, real_upstreams.dify_fail_api_key, "fine")
    kinds = [event["event"] for event in events]
    assert status == 200
    assert kinds[-1] == "message_end", kinds
    answer = "".join(event.get("answer", "") for event in events if event["event"] == "message")
    assert answer.startswith("partial: fine")
    assert "upstream said: ok" in answer


@pytest.mark.parametrize("fault", ["500", "close", "truncate"])
def test_fail_app_streams_then_ends_with_an_error_event(real_upstreams: RealUpstreams, fault: str) -> None:
    status, events = stream_events(real_upstreams, real_upstreams.dify_fail_api_key, fault)
    kinds = [event["event"] for event in events]
    assert status == 200  # the failure comes after streaming began (README: "keeps HTTP 200")
    assert "message" in kinds and kinds.index("message") < kinds.index("error"), kinds
    assert kinds[-1] == "error", kinds
    assert "message_end" not in kinds
    first = next(event for event in events if event["event"] == "message")
    assert first["answer"].startswith("partial:")
    assert events[-1]["message"].startswith("Run failed:")
    if real_upstreams.dify_log is not None:  # the harness knows where Dify logs
        deadline = time.monotonic() + 10
        while "Unknown Error when workflow entry running" not in real_upstreams.dify_log.read_text():
            assert time.monotonic() < deadline, "Dify logged no workflow failure"
            time.sleep(0.2)


def test_blocking_chat_on_a_failing_upstream_is_a_400(real_upstreams: RealUpstreams) -> None:
    answer = chat(real_upstreams, real_upstreams.dify_fail_api_key, "502", "blocking")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_param"


def test_up_again_prints_the_same_values_quickly(real_upstreams: RealUpstreams) -> None:
    if not real_upstreams.from_harness:
        pytest.skip("staging upstreams (WATCHDOG_CONTRACT_*): no harness to ask")
    started = time.monotonic()
    result = subprocess.run([str(HARNESS), "up"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    values = parse_values(result.stdout)
    assert values["EVOLUTION_URL"] == real_upstreams.evolution_url
    assert values["DIFY_API_KEY"] == real_upstreams.dify_api_key
