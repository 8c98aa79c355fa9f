"""The probes read the shapes observed on the real Dify 1.12.1 and Evolution API 2.3.6 right: liveness
never reads `/v1/`, a 404 page is a configuration finding and never `dify_down`, error text is one short
line, the canary sends Evolution's inputs and tells a refused request from an app failing mid-stream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.integration.upstream_replay import (
    COMPLETION_KEY,
    ECHO_KEY,
    EVOLUTION_INPUTS,
    FAIL_KEY,
    PINGS_KEY,
    STRICT_KEY,
    WEB_UI_PATH,
    DifyReplay,
    EvolutionReplay,
)
from watchdog.clients.dify import DifyClient
from watchdog.clients.evolution import EvolutionClient
from watchdog.clients.http import JsonClient
from watchdog.clock import SystemClock
from watchdog.errors import UpstreamHTTPError, UpstreamMisconfigured
from watchdog.health import assess
from watchdog.model import Finding, ProbeResult, Severity
from watchdog.probes.base import ProbeRunner
from watchdog.probes.canary import CANARY_INPUTS, DifyCanary
from watchdog.probes.dify import DifyProbes
from watchdog.probes.evolution import EvolutionProbes
from watchdog.recovery.problems import Level, problems_from
from watchdog.serving import ThreadedServer

pytestmark = pytest.mark.integration
CONTACT_KEY = b"test-contact-key-0123"


@pytest.fixture
def dify() -> Iterator[tuple[DifyReplay, str]]:
    replay = DifyReplay(ping_seconds=0.1)
    with ThreadedServer(replay.app()) as server:
        yield replay, server.url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def runner(deadline: float = 2.0) -> ProbeRunner:
    return ProbeRunner(SystemClock(), concurrency=4, deadline=deadline)


def findings_of(results: list[ProbeResult]) -> list[Finding]:
    return assess(results, now=time.time(), stall_seconds=60)


def assert_one_short_line(text: str) -> None:
    assert len(text) <= 200 and "\n" not in text and "<" not in text, text


async def test_health_url_gives_liveness_and_version(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient
) -> None:
    replay, url = dify
    client = DifyClient(http, url + "/v1", ECHO_KEY, health_url=url + "/health", timeout=2)
    results = await DifyProbes(client, runner()).run_all()
    assert [(r.probe, r.ok) for r in results] == [("liveness", True), ("app_info", True)]
    assert results[0].data["version"] == "1.12.1" and results[0].detail == "Dify 1.12.1"
    assert "GET /v1/" not in replay.paths and findings_of(results) == []


async def test_without_health_url_one_info_request_is_liveness_and_app_info(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient
) -> None:
    replay, url = dify
    results = await DifyProbes(DifyClient(http, url + "/v1", ECHO_KEY, timeout=2), runner()).run_all()
    assert [(r.probe, r.ok) for r in results] == [("liveness", True), ("app_info", True)]
    assert results[1].detail == "app echo-chat (advanced-chat)"
    assert replay.paths == ["GET /v1/info"]  # never GET /v1/ (a 404 page on 1.12.1)


async def test_a_refused_key_is_dify_auth_and_dify_answering(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient
) -> None:
    _, url = dify
    results = await DifyProbes(DifyClient(http, url + "/v1", "app-revoked", timeout=2), runner()).run_all()
    liveness, app_info = results
    assert liveness.ok and "key refused: HTTP 401 unauthorized" in liveness.detail
    assert not app_info.ok and app_info.detail == "HTTP 401: Access token is invalid"
    findings = findings_of(results)
    assert [(f.kind, f.summary) for f in findings] == [
        ("dify_auth", "DIFY_API_KEY was refused: HTTP 401: Access token is invalid")
    ]


async def test_without_a_key_difys_refusal_proves_it_answers(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient
) -> None:
    replay, url = dify
    client = DifyClient(http, url + "/v1", "", timeout=2)
    results = await DifyProbes(client, runner()).run_all()
    assert [(r.probe, r.ok) for r in results] == [("liveness", True)] and findings_of(results) == []
    assert replay.paths == ["GET /v1/info"]
    assert (await client.liveness()).detail == "answers GET /v1/info (key refused: HTTP 401 unauthorized)"


@pytest.mark.parametrize(
    ("dify_path", "health_path", "setting", "said"),
    [
        ("/v1", "/", "DIFY_HEALTH_URL", "GET / is not an API endpoint"),
        ("", "", "DIFY_URL", "GET /info is not an API endpoint"),
        ("/v1", "/v1", "DIFY_HEALTH_URL", "GET /v1 redirects to http://127.0.0.1:"),
        ("/v1", WEB_UI_PATH, "DIFY_HEALTH_URL", "GET /apps answers a web page, not the API"),
    ],
    ids=[
        "health-url-on-the-root",
        "dify-url-without-v1",
        "health-url-redirected",
        "health-url-on-a-web-page",
    ],
)
async def test_a_page_where_the_api_was_due_is_a_configuration_finding_never_dify_down(
    dify: tuple[DifyReplay, str],
    http: httpx.AsyncClient,
    dify_path: str,
    health_path: str,
    setting: str,
    said: str,
) -> None:
    _, url = dify
    client = DifyClient(
        http, url + dify_path, ECHO_KEY, health_url=url + health_path if health_path else "", timeout=2
    )
    results = await DifyProbes(client, runner()).run_all()
    liveness = results[0]
    assert not liveness.ok and liveness.data["error"] == "config", liveness.detail
    assert_one_short_line(liveness.detail)
    assert said in liveness.detail and f"check {setting}" in liveness.detail
    findings = findings_of(results)
    assert {f.kind for f in findings} == {"dify_misconfigured"}
    assert all(f.severity is Severity.WARNING for f in findings)
    assert [p.start for p in problems_from(findings)] == [Level.HUMAN]  # a setting to fix: no restart


async def test_unknown_conversation_keeps_its_message_without_the_route_hint(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient
) -> None:
    _, url = dify
    api = JsonClient(http, "dify", url + "/v1", timeout=2, setting="DIFY_URL")
    body = {
        "inputs": {},
        "query": "x",
        "response_mode": "streaming",
        "user": "u",
        "conversation_id": "c-gone",
    }
    with pytest.raises(UpstreamHTTPError) as gone:
        await api.json(
            "POST", "/chat-messages", json_body=body, headers={"Authorization": f"Bearer {ECHO_KEY}"}
        )
    assert not isinstance(gone.value, UpstreamMisconfigured)  # a JSON 404 is an answer, not a wrong URL
    assert (gone.value.status, gone.value.code) == (404, "not_found")
    assert gone.value.message == "HTTP 404: Conversation Not Exists."


def canary(http: httpx.AsyncClient, url: str, key: str, threshold: float = 1.0) -> DifyCanary:
    return DifyCanary(
        http,
        runner(),
        SystemClock(),
        base_url=url + "/v1",
        api_key=key,
        threshold=threshold,
        connect_timeout=2,
    )


async def test_canary_sends_evolutions_inputs_and_passes_through_pings(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient
) -> None:
    replay, url = dify
    result = await canary(http, url, ECHO_KEY).run()
    assert result.ok, result.detail
    sent = replay.chats[0]
    assert tuple(sent["inputs"]) == EVOLUTION_INPUTS and sent["inputs"] == CANARY_INPUTS
    assert sent["response_mode"] == "streaming" and ECHO_KEY not in str(sent)
    assert result.data["events"] == 5  # the ping is not an event
    assert replay.deleted == ["7c3b3a4e-0f6e-4b0e-9a53-1f7d2b8e9c10"]


async def test_canary_midstream_failure_is_an_app_failure(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient
) -> None:
    replay, url = dify
    result = await canary(http, url, FAIL_KEY).run()
    assert not result.ok and result.data["failure"] == "app" and result.data["code"] == "invalid_param"
    assert result.detail.startswith("app failed after 4 events (error event invalid_param): Run failed:")
    assert_one_short_line(result.detail)
    (finding,) = findings_of([result])
    assert (finding.kind, finding.severity, dict(finding.evidence)) == (
        "dify_canary_failed",
        Severity.CRITICAL,
        {"failure": "app"},
    )
    assert replay.deleted  # its conversation is cleaned up too


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (STRICT_KEY, "(invalid_param): customer_id is required in input form"),
        (COMPLETION_KEY, "(not_chat_app): Please check if your app mode matches the right API route."),
    ],
    ids=["missing-input", "wrong-app-mode"],
)
async def test_canary_refused_before_streaming_is_a_configuration_finding(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient, key: str, said: str
) -> None:
    _, url = dify
    result = await canary(http, url, key).run()
    assert not result.ok and result.data["error"] == "config" and result.data["status"] == 400
    assert result.detail == f"HTTP 400: the app refused the canary {said}"
    findings = findings_of([result])
    assert [(f.kind, f.severity) for f in findings] == [("dify_misconfigured", Severity.WARNING)]
    assert [p.start for p in problems_from(findings)] == [Level.HUMAN]  # a setting to fix: no restart


async def test_canary_stalled_with_only_pings_fails(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient
) -> None:
    _, url = dify
    started = time.monotonic()
    result = await canary(http, url, PINGS_KEY, threshold=0.5).run()
    assert not result.ok and result.data["failure"] == "stalled" and "pings only" in result.detail
    assert time.monotonic() - started < 1.5  # the pings (every 0.1 s) did not keep it waiting


async def test_canary_with_a_refused_key_is_dify_auth(
    dify: tuple[DifyReplay, str], http: httpx.AsyncClient
) -> None:
    _, url = dify
    result = await canary(http, url, "app-revoked").run()
    assert [f.kind for f in findings_of([result])] == ["dify_auth"]


@pytest.fixture
def evolution() -> Iterator[tuple[EvolutionReplay, str]]:
    replay = EvolutionReplay()
    with ThreadedServer(replay.app()) as server:
        yield replay, server.url


async def test_evolution_root_slow_leaves_the_version_unknown_not_evolution_down(
    evolution: tuple[EvolutionReplay, str], http: httpx.AsyncClient
) -> None:
    replay, url = evolution
    client = EvolutionClient(http, url, replay.api_key, timeout=5)
    probes = EvolutionProbes(client, runner(deadline=5), contact_key=CONTACT_KEY)
    first = await probes.version()
    assert first.ok and first.detail == "Evolution API 2.3.6, WhatsApp Web 2.3000.1023204200"
    replay.root_delay = 30  # web.whatsapp.com unreachable: upstream waits with no timeout
    started = time.monotonic()
    version, listing = await probes.version(), await probes.instances()
    assert time.monotonic() - started < 4  # GET / has a short deadline of its own (2 s)
    assert version.ok and version.data == {
        "version": "2.3.6",
        "whatsapp_web_version": "2.3000.1023204200",
        "version_error": "timeout",
    }
    assert version.detail.startswith("version unknown (last read 2.3.6): GET / timed out after 2s")
    assert listing.ok and findings_of([version, listing]) == []


async def test_evolution_url_off_the_api_is_evolution_misconfigured(
    evolution: tuple[EvolutionReplay, str], http: httpx.AsyncClient
) -> None:
    replay, url = evolution
    client = EvolutionClient(http, url + "/manager", replay.api_key, timeout=2)
    probes = EvolutionProbes(client, runner(), contact_key=CONTACT_KEY)
    version, listing = await probes.version(), await probes.instances()
    assert version.ok and version.data["version_error"] == "config"
    assert listing.detail == (
        "HTTP 404: GET /manager/instance/fetchInstances is not an API endpoint; check EVOLUTION_URL: "
        "Cannot GET /manager/instance/fetchInstances"
    )
    findings = findings_of([version, listing])
    assert [(f.kind, f.severity) for f in findings] == [("evolution_misconfigured", Severity.WARNING)]
    assert [p.start for p in problems_from(findings)] == [Level.HUMAN]  # a setting to fix: no restart
