"""Evolution API contract: every call the watchdog makes, the same assertions on the emulator and on the
real Evolution API 2.3.6 (`evolution_target`).

What needs WhatsApp (a QR scan, `open`, messages, replies) cannot happen on the real server here; those
tests run on the emulator alone (`emulator_target`) and cite the upstream source the emulator follows
(paths under the 2.3.6 tree, src/...). docs/upstreams.md lists them.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.conftest import Receiver
from tests.contract.conftest import EvolutionTarget, wait_for
from tests.contract.test_integrations_contract import DEFAULTS
from watchdog.sim.webhooks import ALL_EVENTS

pytestmark = pytest.mark.integration

JID = "5511987600001@s.whatsapp.net"
ENVELOPE_KEYS = {"event", "instance", "data", "destination", "date_time", "server_url", "apikey"}


def _name(created: dict[str, Any]) -> str:
    return str(created["instance"]["instanceName"])


def _events(receiver: Receiver, instance: str, event: str) -> list[dict[str, Any]]:
    return [
        body
        for _, _, body in receiver.posts
        if isinstance(body, dict) and body.get("instance") == instance and body.get("event") == event
    ]


def _hook(target: EvolutionTarget, instance: str, url: str, events: list[str], **extra: Any) -> Any:
    body = {"webhook": {"enabled": True, "url": url, "byEvents": False, "events": events, **extra}}
    return target.api("POST", f"/webhook/set/{instance}", json=body)


# ---- liveness, instances, state ---------------------------------------------------------------------


def test_root_names_the_version_without_a_key(evolution_target: EvolutionTarget) -> None:
    answer = evolution_target.api("GET", "/", key="")
    body = answer.json()
    assert answer.status_code == 200
    assert body["status"] == 200 and body["message"] == "Welcome to the Evolution API, it is working!"
    assert body["version"] == "2.3.6" and body["clientName"]
    assert re.fullmatch(r"2\.3000\.\d+", body["whatsappWebVersion"])


def test_create_with_qrcode_false_is_close_and_listed(evolution_target: EvolutionTarget) -> None:
    created = evolution_target.create_instance()
    name = _name(created)
    rows = evolution_target.api("GET", "/instance/fetchInstances").json()
    one = evolution_target.api("GET", "/instance/fetchInstances", params={"instanceName": name}).json()
    state = evolution_target.api("GET", f"/instance/connectionState/{name}").json()
    assert created["instance"]["status"] == "close" and isinstance(created["hash"], str)
    assert "qrcode" not in created  # Baileys was not started
    row = next(r for r in rows if r["name"] == name)
    assert {"id", "connectionStatus", "ownerJid", "integration", "token", "clientName", "_count"} <= set(row)
    assert (row["connectionStatus"], row["ownerJid"], row["token"]) == ("close", None, created["hash"])
    assert [r["name"] for r in one] == [name]
    assert state == {"instance": {"instanceName": name, "state": "close"}}


def test_instance_token_opens_only_its_own_instance(evolution_target: EvolutionTarget) -> None:
    mine, other = evolution_target.create_instance(), evolution_target.create_instance()
    token = str(mine["hash"])
    listed = evolution_target.api("GET", "/instance/fetchInstances", key=token)
    own_state = evolution_target.api("GET", f"/instance/connectionState/{_name(mine)}", key=token)
    foreign = evolution_target.api("GET", f"/instance/connectionState/{_name(other)}", key=token)
    assert listed.status_code == 200 and [r["name"] for r in listed.json()] == [_name(mine)]
    assert own_state.status_code == 200
    assert foreign.status_code == 401


def test_unknown_instance_is_404_even_with_a_bad_key(evolution_target: EvolutionTarget) -> None:
    name = f"wdct-none-{uuid.uuid4().hex[:6]}"
    for key in (None, "wrong-key"):
        answer = evolution_target.api("GET", f"/instance/connectionState/{name}", key=key)
        assert answer.status_code == 404
        assert answer.json() == {
            "status": 404,
            "error": "Not Found",
            "response": {"message": [f'The "{name}" instance does not exist']},
        }
    listed = evolution_target.api("GET", "/instance/fetchInstances", params={"instanceName": name})
    assert listed.status_code == 404  # monitor.service.ts:64-72
    assert listed.json()["response"]["message"] == [f'Instance "{name}" not found']


def test_auth_failures_and_their_envelopes(evolution_target: EvolutionTarget) -> None:
    taken = _name(evolution_target.create_instance())
    unauthorized = {"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}}
    for key in ("wrong-key", ""):
        answer = evolution_target.api("GET", "/instance/fetchInstances", key=key)
        assert (answer.status_code, answer.json()) == (401, unauthorized)
    in_use = evolution_target.api(
        "POST", "/instance/create", json={"instanceName": taken, "integration": "WHATSAPP-BAILEYS"}
    )
    assert in_use.status_code == 403  # checked before the key
    assert in_use.json()["response"]["message"] == [f'This name "{taken}" is already in use.']
    bad = evolution_target.api("POST", f"/dify/changeStatus/{taken}", json={"remoteJid": JID})
    assert bad.status_code == 400 and bad.json()["error"] == "Bad Request"
    assert isinstance(bad.json()["response"]["message"], list)


def test_unknown_routes_and_methods_are_404_cannot_method_path(evolution_target: EvolutionTarget) -> None:
    name = _name(evolution_target.create_instance())
    for key in (None, ""):
        answer = evolution_target.api("GET", "/nope/at/all", key=key)
        assert answer.status_code == 404
        assert answer.json()["response"]["message"] == ["Cannot GET /nope/at/all"]
    put = evolution_target.api("PUT", f"/instance/restart/{name}")  # only POST restart exists
    assert put.status_code == 404
    assert put.json()["response"]["message"] == [f"Cannot PUT /instance/restart/{name}"]


def test_restart_of_a_closed_instance_is_http_200_with_an_error_body(
    evolution_target: EvolutionTarget,
) -> None:
    name = _name(evolution_target.create_instance())
    answer = evolution_target.api("POST", f"/instance/restart/{name}")
    assert answer.status_code == 200
    assert answer.json() == {"error": True, "message": "[object Object]"}


def test_connect_sends_connecting_while_the_stored_status_stays_close(
    evolution_target: EvolutionTarget, receiver: Receiver
) -> None:
    created = evolution_target.create_instance()
    name = _name(created)
    assert _hook(evolution_target, name, receiver.url + "/hook", ["CONNECTION_UPDATE"]).status_code == 201
    assert evolution_target.api("GET", f"/instance/connect/{name}").status_code == 200
    receiver.wait_for(lambda posts: _events(receiver, name, "connection.update") != [], timeout=20)
    envelope = _events(receiver, name, "connection.update")[0]
    assert set(envelope) == ENVELOPE_KEYS  # no `sender` while the instance never connected
    assert envelope["data"] == {"instance": name, "state": "connecting", "statusReason": 200}
    assert envelope["destination"] == receiver.url + "/hook"
    # the token, or null unless AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES=true (channel.service.ts:452)
    assert envelope["apikey"] in (created["hash"], None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", envelope["date_time"])

    def live_state() -> str:
        answer = evolution_target.api("GET", f"/instance/connectionState/{name}").json()
        return str(answer["instance"].get("state"))

    # Between two retries the real state reads `close` for an instant (a restart landing then answers
    # the error body): `connecting` is what it says nearly all the time.
    wait_for(lambda: live_state() == "connecting")
    row = evolution_target.api("GET", "/instance/fetchInstances", params={"instanceName": name}).json()[0]
    assert row["connectionStatus"] == "close"


def test_delete_posts_remove_instance_with_null_data(
    evolution_target: EvolutionTarget, receiver: Receiver
) -> None:
    name = _name(evolution_target.create_instance())
    events = ["INSTANCE_DELETE", "REMOVE_INSTANCE"]
    assert _hook(evolution_target, name, receiver.url + "/hook", events).status_code == 201
    answer = evolution_target.api("DELETE", f"/instance/delete/{name}")
    assert answer.json() == {"status": "SUCCESS", "error": False, "response": {"message": "Instance deleted"}}
    receiver.wait_for(  # two deliveries in flight at once: either may land first
        lambda posts: all(_events(receiver, name, e) for e in ("remove.instance", "instance.delete")),
        timeout=20,
    )
    removed = _events(receiver, name, "remove.instance")[0]
    assert removed["data"] is None and set(removed) == ENVELOPE_KEYS
    deleted = _events(receiver, name, "instance.delete")[0]["data"]
    assert deleted["instanceName"] == name
    # monitor.service.ts:359-373: the rows go after the webhook, unawaited: gone a moment later
    wait_for(lambda: evolution_target.api("GET", f"/instance/connectionState/{name}").status_code == 404)


# ---- webhooks ------------------------------------------------------------------------------------------


def test_webhook_set_and_find_store_events_in_full(evolution_target: EvolutionTarget) -> None:
    name = _name(evolution_target.create_instance())
    assert evolution_target.api("GET", f"/webhook/find/{name}").json() is None
    chosen = _hook(evolution_target, name, "http://127.0.0.1:9/hook", ["MESSAGES_UPSERT", "SEND_MESSAGE"])
    found = evolution_target.api("GET", f"/webhook/find/{name}").json()
    every = _hook(evolution_target, name, "http://127.0.0.1:9/hook", [])
    found_every = evolution_target.api("GET", f"/webhook/find/{name}").json()
    off = evolution_target.api(
        "POST",
        f"/webhook/set/{name}",
        json={"webhook": {"enabled": False, "url": "http://127.0.0.1:9/hook", "events": ["SEND_MESSAGE"]}},
    )
    lower = _hook(evolution_target, name, "http://127.0.0.1:9/hook", ["messages.upsert"])
    assert chosen.status_code == 201
    assert {"id", "url", "enabled", "events", "webhookByEvents", "webhookBase64", "instanceId"} <= set(found)
    assert found["events"] == ["MESSAGES_UPSERT", "SEND_MESSAGE"] and found["enabled"] is True
    assert every.status_code == 201 and found_every["events"] == list(ALL_EVENTS)
    assert off.status_code == 201 and off.json()["events"] == []
    assert lower.status_code == 400  # names are the upper-case config names


# ---- the Dify integration --------------------------------------------------------------------------------


def _bot(target: EvolutionTarget, name: str, **extra: Any) -> Any:
    body = {
        "enabled": True,
        "botType": "chatBot",
        "triggerType": "all",
        "apiUrl": "http://127.0.0.1:9/v1",
        "apiKey": f"app-{uuid.uuid4().hex[:8]}",
        **extra,
    }
    return target.api("POST", f"/dify/create/{name}", json=body)


def test_dify_settings_before_and_after_a_bot(evolution_target: EvolutionTarget) -> None:
    name = _name(evolution_target.create_instance())
    none_yet = evolution_target.api("GET", f"/dify/fetchSettings/{name}").json()
    created = _bot(evolution_target, name)
    row = evolution_target.api("GET", f"/dify/fetchSettings/{name}").json()
    assert none_yet == DEFAULTS  # no settings row yet: the defaults every integration answers
    assert created.status_code == 201
    bot = created.json()
    assert (bot["botType"], bot["triggerType"], bot["enabled"]) == ("chatBot", "all", True)
    # dify/create made the settings row from what it was given: column defaults for the rest
    assert {"id", "instanceId", "difyIdFallback", "fallbackId", "fallback"} <= set(row)
    assert (row["expire"], row["stopBotFromMe"], row["listeningFromMe"], row["keepOpen"]) == (
        0,
        False,
        False,
        False,
    )
    assert (row["keywordFinish"], row["debounceTime"], row["fallbackId"], row["fallback"]) == (
        None,
        None,
        None,
        None,
    )
    assert row["instanceId"] == bot["instanceId"]


def test_dify_find_sessions_and_change_status_shapes(evolution_target: EvolutionTarget) -> None:
    name = _name(evolution_target.create_instance())
    bot = _bot(evolution_target, name).json()
    duplicate = _bot(evolution_target, name, apiKey=bot["apiKey"], triggerType="none")
    found = evolution_target.api("GET", f"/dify/find/{name}").json()
    sessions = evolution_target.api("GET", f"/dify/fetchSessions/{bot['id']}/{name}")
    closed = evolution_target.api(
        "POST", f"/dify/changeStatus/{name}", json={"remoteJid": JID, "status": "closed"}
    )
    deleted = evolution_target.api(
        "POST", f"/dify/changeStatus/{name}", json={"remoteJid": JID, "status": "delete"}
    )
    assert [b["id"] for b in found] == [bot["id"]]
    assert duplicate.status_code == 500 and duplicate.json()["response"]["message"] == "Dify already exists"
    assert (sessions.status_code, sessions.json()) == (200, [])
    assert closed.status_code == 200
    assert closed.json() == {"bot": {"instanceName": name, "bot": {"remoteJid": JID, "status": "closed"}}}
    assert deleted.status_code == 200
    assert deleted.json() == {"bot": {"remoteJid": JID, "status": "delete"}}


# ---- emulator only: these need WhatsApp ----------------------------------------------------------------


def test_restart_of_an_open_instance_answers_before_it_drops(emulator_target: EvolutionTarget) -> None:
    """instance.controller.ts:343-349: `restartInstance` ends the socket and calls connectToWhatsapp, which
    sees the state still `open` and answers connectionState: `open` right after the call (the race)."""
    assert emulator_target.sim is not None
    name = f"wdct-open-{uuid.uuid4().hex[:6]}"
    emulator_target.sim.add_instance(name)
    emulator_target.created.append(name)
    answer = emulator_target.api("POST", f"/instance/restart/{name}").json()
    right_after = emulator_target.api("GET", f"/instance/connectionState/{name}").json()
    assert answer == {"instance": {"instanceName": name, "state": "open"}}
    assert right_after["instance"]["state"] == "open"
    seen: list[str] = []

    def saw(state: str) -> bool:
        seen.append(
            emulator_target.api("GET", f"/instance/connectionState/{name}").json()["instance"]["state"]
        )
        return seen[-1] == state

    wait_for(lambda: saw("connecting"))
    wait_for(lambda: saw("open"))


def test_connected_instance_envelopes_carry_sender(
    emulator_target: EvolutionTarget, receiver: Receiver
) -> None:
    """channel.service.ts:451 `sender: this.wuid`, set on `open` (whatsapp.baileys.service.ts:443)."""
    assert emulator_target.sim is not None
    name = f"wdct-open-{uuid.uuid4().hex[:6]}"
    inst = emulator_target.sim.add_instance(name)
    emulator_target.created.append(name)
    assert _hook(emulator_target, name, receiver.url, ["MESSAGES_UPSERT"]).status_code == 201
    inbound = {"instance": name, "remoteJid": JID, "text": "Oi"}
    assert emulator_target.http.post(emulator_target.url + "/_sim/inbound", json=inbound).json() == {
        "outcome": "delivered"
    }
    receiver.wait_for(lambda posts: _events(receiver, name, "messages.upsert") != [])
    envelope = _events(receiver, name, "messages.upsert")[0]
    assert set(envelope) == ENVELOPE_KEYS | {"sender"} and envelope["sender"] == inst.owner_jid


def test_logout_posts_logout_instance_with_null_data(
    emulator_target: EvolutionTarget, receiver: Receiver
) -> None:
    """monitor.service.ts:376-386: `logout.instance` is sent with data null (the watchdog never logs out:
    this is what a user's logout or WhatsApp's 401 looks like), and the processor dies with it
    (whatsapp.baileys.service.ts:264 `messageProcessor.onDestroy()`): inbound is then lost silently."""
    assert emulator_target.sim is not None
    name = f"wdct-open-{uuid.uuid4().hex[:6]}"
    emulator_target.sim.add_instance(name)
    emulator_target.created.append(name)
    assert (
        _hook(emulator_target, name, receiver.url, ["LOGOUT_INSTANCE", "CONNECTION_UPDATE"]).status_code
        == 201
    )
    assert emulator_target.api("DELETE", f"/instance/logout/{name}").json()["status"] == "SUCCESS"
    receiver.wait_for(lambda posts: _events(receiver, name, "logout.instance") != [])
    assert _events(receiver, name, "logout.instance")[0]["data"] is None
    receiver.wait_for(lambda posts: _events(receiver, name, "connection.update") != [])
    close = _events(receiver, name, "connection.update")[-1]["data"]
    assert (close["state"], close["statusReason"]) == ("close", 401)
    again = emulator_target.api("DELETE", f"/instance/logout/{name}")
    assert again.status_code == 400


def test_instance_in_the_database_but_not_in_memory(emulator_target: EvolutionTarget) -> None:
    """instance.guard.ts:19 lets a name found only in the database through; instance.controller.ts:361-367
    then reads `waInstances[name]?.connectionStatus?.state`: undefined, so JSON has no `state` key, and
    restart (:335-338) answers the HTTP 200 error body. (The real server shows this for an instance of
    another DATABASE_CONNECTION_CLIENT_NAME, which these tests cannot create through the API.)"""
    assert emulator_target.sim is not None
    name = f"wdct-open-{uuid.uuid4().hex[:6]}"
    emulator_target.sim.add_instance(name)
    emulator_target.created.append(name)
    fault = {"name": "instance_unloaded", "params": {"instance": name}}
    emulator_target.http.post(emulator_target.url + "/_sim/faults", json=fault).raise_for_status()
    state = emulator_target.api("GET", f"/instance/connectionState/{name}")
    restart = emulator_target.api("POST", f"/instance/restart/{name}")
    one = emulator_target.api("GET", "/instance/fetchInstances", params={"instanceName": name})
    assert (state.status_code, state.json()) == (200, {"instance": {"instanceName": name}})
    assert (restart.status_code, restart.json()) == (200, {"error": True, "message": "[object Object]"})
    assert one.status_code == 404  # monitor.service.ts:64-72 `Instance "x" not found`
