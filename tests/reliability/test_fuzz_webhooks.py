"""Generated webhook deliveries over real HTTP: never a 5xx, every delivery counted once, every refusal
counted as rejected_<reason>, no secret echoed, and memory bounded (labels, tables) however many arrive.

The default run sends 200 generated payloads; the `fuzz` run (CI too) sends 5,000.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tests.reliability.harness import total
from watchdog.app import Watchdog
from watchdog.clock import SystemClock
from watchdog.config import Settings
from watchdog.probes.suite import http_client
from watchdog.serving import ThreadedServer
from watchdog.signals.webhook import KNOWN_EVENTS, normalise_event

TOKEN = "FUZZ-WEBHOOK-TOKEN-5c1d"
APIKEY = "FUZZ-APIKEY-MARKER-77aa"
WATCHED = ("loja", "suporte")
BATCH = 10
EVENT_NAMES = [*sorted(KNOWN_EVENTS), "MESSAGES_UPSERT", "SEND_MESSAGE", "messages-upsert"]
KNOWN_LABELS = {normalise_event(e) for e in KNOWN_EVENTS} | {"unknown"}
OUTCOMES = {"accepted", "ignored", "ignored_unwatched"}
REFUSALS = {400, 401, 413, 422}

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_any = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
jids = st.sampled_from(
    [
        "5511987600001@s.whatsapp.net",
        "120363025246125486@g.us",
        "status@broadcast",
        "123456789012345@lid",
        "1@newsletter",
    ]
) | st.text(max_size=40)
message_keys = st.fixed_dictionaries(
    {"remoteJid": jids | json_any, "fromMe": st.booleans() | json_any, "id": st.text(max_size=16) | json_any}
)
message_data = st.fixed_dictionaries(
    {},
    optional={
        "key": message_keys | json_any,
        "messageType": st.sampled_from(["conversation", "imageMessage", "reactionMessage"])
        | st.text(max_size=20),
        "source": st.sampled_from(["android", "ios", "web", "unknown"]) | json_any,
        "state": st.sampled_from(["open", "connecting", "close"]) | json_any,
        "message": json_any,
    },
)
envelopes = st.fixed_dictionaries(
    {
        "event": st.sampled_from(EVENT_NAMES) | st.text(max_size=30) | json_any,
        "instance": st.sampled_from(WATCHED) | st.text(max_size=30) | json_any,
        "data": message_data | json_any,
        "apikey": st.just(APIKEY),
    },
    optional={"date_time": st.text(max_size=30), "sender": jids, "server_url": st.text(max_size=30)},
)
bodies = (
    envelopes.map(lambda e: json.dumps(e).encode())
    | json_any.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=300)
    | st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
path_events = (
    st.none()
    | st.sampled_from(["messages-upsert", "send-message", "connection-update"])
    # "." and ".." are dot segments: the client resolves them before sending (RFC 3986 5.2.4), so the
    # request would go to another path, not to the webhook with an odd event name
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_.ABCXYZ0123456789", min_size=1, max_size=40).filter(
        lambda event: event not in (".", "..")
    )
)
auths = st.sampled_from(["header", "query", "bearer", "none", "wrong"])
deliveries = st.tuples(bodies, path_events, auths)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Watchdog, httpx.Client]]:
    """A real watchdog HTTP app on a loopback port (its probes never run: only the webhook path is fuzzed)."""
    state = Path(tmp_path_factory.mktemp("fuzz")) / "journal.db"
    cfg = Settings.from_env(
        {
            "EVOLUTION_INSTANCES": ",".join(WATCHED),
            "WATCHDOG_WEBHOOK_TOKEN": TOKEN,
            "WATCHDOG_MAX_PENDING": "100",
            "WATCHDOG_STATE_PATH": str(state),
        }
    )
    watchdog = Watchdog(cfg, clock=SystemClock(), registry=CollectorRegistry(), http=http_client(cfg))
    with ThreadedServer(watchdog.http_app()) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield watchdog, http
    watchdog.recovery.journal.close()


def deliver(client: httpx.Client, body: bytes, path_event: str | None, auth: str) -> httpx.Response:
    path = "/webhook/evolution" + (f"/{path_event}" if path_event else "")
    headers = {"content-type": "application/json"}
    params = {}
    if auth == "header":
        headers["x-watchdog-token"] = TOKEN
    elif auth == "query":
        params["token"] = TOKEN
    elif auth == "bearer":
        headers["authorization"] = f"Bearer {TOKEN}"
    elif auth == "wrong":
        headers["x-watchdog-token"] = TOKEN[:-1]
    return client.post(path, content=body, headers=headers, params=params)


def check_batch(watchdog: Watchdog, client: httpx.Client, batch: list[tuple[bytes, str | None, str]]) -> None:
    seen_before = total(watchdog, "watchdog_webhook_events_total")
    refused_before = total(watchdog, "watchdog_webhook_events_total", outcome="rejected_*")
    refused = 0
    for body, path_event, auth in batch:
        response = deliver(client, body, path_event, auth)
        assert response.status_code in {200} | REFUSALS, (response.status_code, response.text)
        assert APIKEY not in response.text and TOKEN not in response.text
        if auth in ("none", "wrong"):
            assert response.status_code == 401
        if response.status_code == 200:
            assert response.json()["status"] in OUTCOMES
        refused += response.status_code != 200
    assert total(watchdog, "watchdog_webhook_events_total") - seen_before == len(batch)
    refused_now = total(watchdog, "watchdog_webhook_events_total", outcome="rejected_*")
    assert refused_now - refused_before == refused


def check_bounded(watchdog: Watchdog) -> None:
    """Whatever arrived, only known label values and the watched instances were kept."""
    labels = [
        s.labels
        for family in watchdog.registry.collect()
        for s in family.samples
        if s.name == "watchdog_webhook_events_total"
    ]
    assert {lab["event"] for lab in labels} <= KNOWN_LABELS
    outcomes = {lab["outcome"] for lab in labels}
    assert all(o in OUTCOMES or o.startswith("rejected_") for o in outcomes) and len(outcomes) < 30
    conversations = watchdog.conversations
    assert len(conversations.tracker.pending()) <= 100
    assert set(conversations.activity) <= set(WATCHED)
    assert set(conversations.states) <= set(WATCHED)
    assert set(conversations.recent) <= set(WATCHED)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(deliveries, min_size=BATCH, max_size=BATCH))
def test_generated_deliveries_are_answered_counted_and_bounded(
    target: tuple[Watchdog, httpx.Client], batch: list[tuple[bytes, str | None, str]]
) -> None:
    """200 payloads: 2xx or a counted 4xx each, never a 5xx, never an echoed secret."""
    check_batch(*target, batch)
    check_bounded(target[0])


@pytest.mark.fuzz
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(deliveries, min_size=BATCH, max_size=BATCH))
def test_five_thousand_generated_deliveries(
    target: tuple[Watchdog, httpx.Client], batch: list[tuple[bytes, str | None, str]]
) -> None:
    """5,000 payloads (500 batches of 10): the same properties under a long run."""
    check_batch(*target, batch)
    check_bounded(target[0])


def test_oversized_bodies_are_refused_with_413_declared_or_streamed(
    target: tuple[Watchdog, httpx.Client],
) -> None:
    """A declared Content-Length over 8 MiB is refused before the body is read (the client sends none);
    a chunked body with no length is cut off past 8 MiB; both count as rejected_too_large."""
    watchdog, client = target
    before = total(watchdog, "watchdog_webhook_events_total", outcome="rejected_too_large")

    def chunks() -> Iterator[bytes]:
        for _ in range(9):
            yield b"x" * (1024 * 1024)

    streamed = client.post("/webhook/evolution", content=chunks(), headers={"x-watchdog-token": TOKEN})
    assert streamed.status_code == 413
    assert streamed.request.headers.get("transfer-encoding") == "chunked"

    port = int(str(client.base_url).rsplit(":", 1)[1].rstrip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        raw.sendall(
            b"POST /webhook/evolution HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"x-watchdog-token: {TOKEN}\r\nContent-Length: {8 * 1024 * 1024 + 1}\r\n\r\n".encode()
        )
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")
    after = total(watchdog, "watchdog_webhook_events_total", outcome="rejected_too_large")
    assert after - before == 2
    assert client.get("/metrics").status_code == 200
