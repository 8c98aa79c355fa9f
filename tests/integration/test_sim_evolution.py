"""The Evolution emulator over real loopback HTTP: routes, envelopes, webhooks, faults, persistence."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.conftest import Receiver
from watchdog.commands.cli import main
from watchdog.serving import ThreadedServer
from watchdog.sim.evolution import EvolutionSim
from watchdog.sim.logfmt import SimLog
from watchdog.sim.runner import EvolutionOptions, build_evolution

pytestmark = pytest.mark.integration

KEY = "evolution-sim-key"
JID = "5511987600001@s.whatsapp.net"
# The reference regex for Evolution's text log lines (ANSI stripped).
EVOLUTION_LINE = re.compile(
    r"^\[Evolution API\]\s+(?:\[(?P<inst>[^\]]+)\]\s+)?(?:v(?P<ver>[\d.]+)\s+)?(?P<pid>\d+)\s+-\s+"
    r"(?P<ts>\w{3} \w{3} \d{2} \d{4} \d\d:\d\d:\d\d)\s+(?P<lvl>LOG|INFO|WARN|ERROR|DEBUG|VERBOSE|DARK)\s+"
    r"\[(?P<ctx>[^\]]+)\]\s+\[(?P<type>\w+)\]\s*(?P<msg>.*)$"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@contextmanager
def evolution(
    opts: EvolutionOptions | None = None, stream: io.StringIO | None = None
) -> Iterator[tuple[EvolutionSim, httpx.Client, io.StringIO]]:
    stream = stream or io.StringIO()
    opts = opts or EvolutionOptions(instances=("loja", "suporte"))
    sim, app = build_evolution(
        replace(opts, reconnect_seconds=0.05, time_scale=0.1), log=SimLog(stream, color=opts.log_color)
    )
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, headers={"apikey": KEY}) as client:
        yield sim, client, stream


def test_root_answers_without_a_key_with_version_and_web_version() -> None:
    with evolution() as (_, client, _log):
        body = httpx.get(str(client.base_url) + "/").json()
    assert body["status"] == 200
    assert body["message"] == "Welcome to the Evolution API, it is working!"
    assert body["version"] == "2.3.6"
    assert body["whatsappWebVersion"].startswith("2.3000.")


def test_version_2_2_has_no_whatsapp_web_version() -> None:
    with evolution(EvolutionOptions(version="2.2.3")) as (_, client, _log):
        assert "whatsappWebVersion" not in client.get("/").json()


def test_bad_key_gets_the_401_envelope_and_unknown_instance_404_even_with_a_bad_key() -> None:
    with evolution() as (_, client, _log):
        unauthorized = client.get("/instance/fetchInstances", headers={"apikey": "wrong"})
        missing = client.get("/instance/connectionState/nope", headers={"apikey": "wrong"})
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "status": 401,
        "error": "Unauthorized",
        "response": {"message": "Unauthorized"},
    }
    assert missing.status_code == 404
    assert missing.json() == {
        "status": 404,
        "error": "Not Found",
        "response": {"message": ['The "nope" instance does not exist']},
    }


def test_fetch_instances_rows_and_instance_token_sees_only_its_instance() -> None:
    with evolution() as (sim, client, _log):
        rows = client.get("/instance/fetchInstances").json()
        token = sim.instances["suporte"].token
        own = client.get("/instance/fetchInstances", headers={"apikey": token}).json()
        state = client.get("/instance/connectionState/loja", headers={"apikey": token})
    assert [r["name"] for r in rows] == ["loja", "suporte"]
    assert {"id", "connectionStatus", "ownerJid", "integration", "token", "_count"} <= set(rows[0])
    assert rows[0]["connectionStatus"] == "open"
    assert [r["name"] for r in own] == ["suporte"]
    assert state.status_code == 401  # an instance token does not open another instance


def test_socket_closed_then_restart_reconnects_and_posts_connection_updates(receiver: Receiver) -> None:
    opts = EvolutionOptions(instances=("loja",), webhook_url=receiver.url + "/hook")
    with evolution(opts) as (_, client, _log):
        client.post("/_sim/faults", json={"name": "socket_closed"}).raise_for_status()
        assert client.get("/instance/connectionState/loja").json() == {
            "instance": {"instanceName": "loja", "state": "connecting"}
        }
        restarted = client.post("/instance/restart/loja")
        assert restarted.status_code == 200 and "error" not in restarted.json()
        receiver.wait_for(lambda posts: [b["data"]["state"] for _, _, b in posts][-1:] == ["open"])
        assert client.get("/instance/connectionState/loja").json()["instance"]["state"] == "open"
    states = [body["data"]["state"] for _, _, body in receiver.posts if body["event"] == "connection.update"]
    assert states == ["connecting", "connecting", "open"]


def test_unloaded_instance_has_no_state_and_restart_fails_with_http_200_error_body() -> None:
    with evolution() as (_, client, _log):
        client.post("/_sim/faults", json={"name": "instance_unloaded", "params": {"instance": "loja"}})
        state = client.get("/instance/connectionState/loja").json()
        other = client.get("/instance/connectionState/suporte").json()
        restart = client.post("/instance/restart/loja")
    assert state == {"instance": {"instanceName": "loja"}}
    assert other["instance"]["state"] == "open"
    assert restart.status_code == 200
    assert restart.json() == {"error": True, "message": "[object Object]"}


def test_api_500_fails_authenticated_routes_but_not_the_root() -> None:
    with evolution() as (_, client, stream):
        client.post("/_sim/faults", json={"name": "api_500"})
        failed = client.get("/instance/fetchInstances")
        root = client.get("/")
    assert failed.status_code == 500
    assert failed.json()["status"] == 500 and "textMessage" in failed.json()["response"]["message"]
    assert root.status_code == 200
    assert "ERROR" in stream.getvalue()


def test_hang_never_answers_within_a_client_deadline() -> None:
    with evolution() as (_, client, _log):
        client.post("/_sim/faults", json={"name": "hang"})
        with pytest.raises(httpx.ReadTimeout):
            client.get("/", timeout=0.3)


def test_unknown_fault_or_parameter_is_refused_with_400() -> None:
    with evolution() as (_, client, _log):
        unknown = client.post("/_sim/faults", json={"name": "meteor"})
        bad_param = client.post("/_sim/faults", json={"name": "slow", "params": {"seconds": "soon"}})
        listed = client.get("/_sim/faults").json()
    assert unknown.status_code == 400 and "unknown fault 'meteor'" in unknown.json()["error"]
    assert bad_param.status_code == 400 and "not a float" in bad_param.json()["error"]
    assert "processor_dead" in listed["catalogue"] and listed["active"] == {}


def test_global_webhook_envelope_is_upstream_shaped(receiver: Receiver) -> None:
    opts = EvolutionOptions(instances=("loja",), webhook_url=receiver.url + "/webhook/evolution")
    with evolution(opts) as (sim, client, _log):
        client.post(
            "/_sim/inbound", json={"instance": "loja", "remoteJid": JID, "text": "Oi", "pushName": "Ana"}
        )
        path, _headers, body = receiver.wait_for(lambda posts: len(posts) >= 1)[0]
        token = sim.instances["loja"].token
    assert path == "/webhook/evolution"
    assert body["event"] == "messages.upsert" and body["instance"] == "loja"
    # the global copy names `<global URL>/<event>` as destination when the instance has no webhook of its
    # own, by-events on or off (webhook.controller.ts:101)
    assert body["destination"] == receiver.url + "/webhook/evolution/messages-upsert"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["date_time"])
    assert body["apikey"] == token and body["sender"].endswith("@s.whatsapp.net")
    data = body["data"]
    assert data["key"] == {"remoteJid": JID, "fromMe": False, "id": data["key"]["id"]}
    assert data["key"]["id"].startswith("3EB0")
    assert data["message"] == {"conversation": "Oi"} and data["messageType"] == "conversation"
    assert data["pushName"] == "Ana" and data["status"] == "DELIVERY_ACK"


def test_by_events_urls_and_instance_webhook_headers(receiver: Receiver) -> None:
    with evolution(EvolutionOptions(instances=("loja",))) as (_, client, _log):
        created = client.post(
            "/webhook/set/loja",
            json={
                "webhook": {
                    "enabled": True,
                    "url": receiver.url + "/wh",
                    "headers": {"x-token": "abc"},
                    "byEvents": True,
                    "events": ["MESSAGES_UPSERT", "SEND_MESSAGE"],
                }
            },
        )
        found = client.get("/webhook/find/loja").json()
        client.post(
            "/_sim/inbound", json={"instance": "loja", "remoteJid": JID, "kind": "image", "text": "foto"}
        )
        client.post("/message/sendText/loja", json={"number": "5511987600001", "text": "Olá"})
        posts = receiver.wait_for(lambda posts: len(posts) >= 2)
    assert created.status_code == 201
    assert found["url"] == receiver.url + "/wh" and found["webhookByEvents"] is True
    assert found["events"] == ["MESSAGES_UPSERT", "SEND_MESSAGE"]
    paths = sorted(path for path, _, _ in posts)
    assert paths == ["/wh/messages-upsert", "/wh/send-message"]
    assert all(headers.get("x-token") == "abc" for _, headers, _ in posts)
    image = next(body for path, _, body in posts if path.endswith("upsert"))["data"]
    assert image["messageType"] == "imageMessage" and image["message"]["imageMessage"]["caption"] == "foto"


def test_send_text_answers_201_and_refuses_when_not_connected(receiver: Receiver) -> None:
    with evolution(EvolutionOptions(instances=("loja",), webhook_url=receiver.url)) as (_, client, _log):
        sent = client.post("/message/sendText/loja", json={"number": "5511987600001", "text": "Olá"})
        client.post("/_sim/faults", json={"name": "socket_closed"})
        refused = client.post("/message/sendText/loja", json={"number": "5511987600001", "text": "Olá"})
        receiver.wait_for(lambda posts: "send.message" in [b["event"] for _, _, b in posts])
    assert sent.status_code == 201
    assert sent.json()["key"]["fromMe"] is True and sent.json()["status"] == "PENDING"
    assert refused.status_code == 500 and refused.json()["response"]["message"] == "Connection Closed"


def test_processor_dead_loses_inbound_silently(receiver: Receiver) -> None:
    """2.3.x never prints `Message stream error:` (the processor catches its own errors, and one destroyed by
    logout, whatsapp.baileys.service.ts:264, just stops): inbound vanishes while the state says open."""
    opts = EvolutionOptions(instances=("loja",), webhook_url=receiver.url, faults=("processor_dead",))
    with evolution(opts) as (_, client, stream):
        before = stream.getvalue()
        outcome = client.post(
            "/_sim/inbound", json={"instance": "loja", "remoteJid": JID, "text": "Oi"}
        ).json()
        state = client.get("/instance/connectionState/loja").json()
        client.post("/message/sendText/loja", json={"number": "5511987600001", "text": "ping"})
        receiver.wait_for(lambda posts: len(posts) >= 1)
        during = stream.getvalue()[len(before) :]
    assert outcome == {"outcome": "lost"}
    assert state["instance"]["state"] == "open"  # the API still says open
    assert receiver.events() == ["send.message"]  # no messages.upsert ever arrived
    assert "ERROR" not in during and "stream error" not in during  # and nothing was logged


def test_video_notes_are_messages_of_their_own_type(receiver: Receiver) -> None:
    opts = EvolutionOptions(instances=("loja",), webhook_url=receiver.url)
    with evolution(opts) as (_, client, _log):
        client.post("/_sim/inbound", json={"instance": "loja", "remoteJid": JID, "kind": "ptv"})
        body = receiver.wait_for(lambda posts: len(posts) >= 1)[0][2]
    assert body["data"]["messageType"] == "ptvMessage" and "ptvMessage" in body["data"]["message"]


def test_inbound_while_connecting_is_queued_and_delivered_after_restart(receiver: Receiver) -> None:
    opts = EvolutionOptions(instances=("loja",), webhook_url=receiver.url)
    with evolution(opts) as (_, client, _log):
        client.post("/_sim/faults", json={"name": "socket_closed"})
        queued = client.post(
            "/_sim/inbound", json={"instance": "loja", "remoteJid": JID, "text": "Oi"}
        ).json()
        client.post("/instance/restart/loja")
        receiver.wait_for(lambda posts: "messages.upsert" in [b["event"] for _, _, b in posts])
    assert queued == {"outcome": "queued"}


def test_log_lines_match_the_upstream_format_plain_and_coloured() -> None:
    for color in (False, True):
        with evolution(EvolutionOptions(instances=("loja",), faults=("api_500",), log_color=color)) as (
            _,
            client,
            stream,
        ):
            client.get("/instance/fetchInstances")
        heads = [
            ANSI.sub("", line) for line in stream.getvalue().splitlines() if line.startswith(("[", "\x1b"))
        ]
        parsed = [EVOLUTION_LINE.match(line) for line in heads]
        assert heads and all(parsed), heads
        assert {m["lvl"] for m in parsed if m} >= {"INFO", "ERROR"}
        assert any(m["inst"] == "loja" for m in parsed if m)
        assert all((m["ver"] == "2.3.6") is color for m in parsed if m)


def test_restarted_process_keeps_database_rows_and_loses_memory(tmp_path: Path) -> None:
    state_file = tmp_path / "evolution.json"
    opts = EvolutionOptions(instances=("loja",), state_file=state_file)
    with evolution(opts) as (sim, client, _log):
        token = sim.instances["loja"].token
        client.post("/_sim/faults", json={"name": "processor_dead"})
        client.post("/_sim/faults", json={"name": "instance_unloaded"})
    with evolution(opts) as (sim2, client2, _log):
        assert sim2.instances["loja"].token == token
        assert client2.get("/_sim/faults").json()["active"] == {}
        assert client2.get("/instance/connectionState/loja").json()["instance"]["state"] == "open"


def test_integrations_off_answer_disabled_on_every_route_and_the_cli_refuses_evolutionbot() -> None:
    with evolution(EvolutionOptions(instances=("loja",), integrations_off=("typebot",))) as (_, client, _log):
        off = client.get("/typebot/find/loja")
        on = client.get("/n8n/find/loja")
    assert (off.status_code, off.json()["response"]["message"]) == (400, ["Typebot is disabled"])
    assert (on.status_code, on.json()) == (200, [])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["sim", "evolution", "--port", "9", "--integrations-off", "typebot,evolutionBot"])
    assert code == 2 and "--integrations-off 'evolutionBot': expected some of dify, evoai" in err.getvalue()
