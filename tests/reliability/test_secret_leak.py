"""Secrets never leak: a full fault scenario with marker secrets, then every output is searched.

The real daemon (`python -m watchdog run`, DEBUG logs, json format) runs in auto mode against the
emulators, whose keys are markers too; Evolution's own webhooks reach it with the token; faults drive an
L1 session reset, an L2 instance restart and an L4 page through a notify URL carrying credentials.
Searched: the process's whole stdout and stderr, /metrics, /api/status, /healthz, the status page, the
SQLite journal's bytes (with any -journal/-wal files) and every notification body and path received.
The contact's phone number is in none of them, and the contact ids they carry (HMAC-SHA256 with the
WATCHDOG_CONTACT_KEY marker) give no number to a brute-force search without the key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import Receiver
from tests.integration.stack import wait_until
from watchdog.model import contact_id
from watchdog.serving import ThreadedServer, free_port
from watchdog.sim.logfmt import SimLog
from watchdog.sim.runner import DifyOptions, EvolutionOptions, build_dify, build_evolution

pytestmark = pytest.mark.integration

EVOLUTION_KEY = "MARKER-EVOLUTION-KEY-3f9a1c"
DIFY_KEY = "app-MARKER-DIFY-KEY-8b2e"
WEBHOOK_TOKEN = "MARKER-WEBHOOK-TOKEN-51d0"
ADMIN_TOKEN = "MARKER-ADMIN-TOKEN-c7e4"
APIKEY_FIELD = "MARKER-APIKEY-FIELD-9a3b"
NOTIFY_PASSWORD = "MARKER-NOTIFY-PASSWORD-2d6f"
CONTACT_KEY = "MARKER-CONTACT-KEY-e83a0b51"
MARKERS = (EVOLUTION_KEY, DIFY_KEY, WEBHOOK_TOKEN, ADMIN_TOKEN, APIKEY_FIELD, NOTIFY_PASSWORD, CONTACT_KEY)
ANA = "5511987600001@s.whatsapp.net"
CONTACT_ID = re.compile(r"c-[0-9a-f]{10}")


@contextmanager
def emulators() -> Iterator[tuple[str, str, httpx.Client]]:
    """Dify and Evolution (instances loja and suporte, a Dify bot each) keyed with the markers."""
    log = io.StringIO()
    with ExitStack() as stack:
        _, dify_app = build_dify(DifyOptions(api_keys=(DIFY_KEY,)), log=SimLog(log))
        dify = stack.enter_context(ThreadedServer(dify_app))
        opts = EvolutionOptions(
            api_key=EVOLUTION_KEY,
            instances=("loja", "suporte"),
            debounce_seconds=0,
            dify_url=dify.url + "/v1",
            dify_api_key=DIFY_KEY,
            reconnect_seconds=0.05,
        )
        _, evolution_app = build_evolution(opts, log=SimLog(log))
        evolution = stack.enter_context(ThreadedServer(evolution_app))
        yield evolution.url, dify.url, stack.enter_context(httpx.Client(timeout=10))


def test_no_secret_in_logs_metrics_status_journal_or_notifications(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Expected: none of the seven marker secrets (the contact key among them) appears in any output, while
    the outputs are full of the scenario (incidents, actions, pages): the search is over real content, not
    empty files."""
    port = free_port()
    daemon = f"http://127.0.0.1:{port}"
    state = tmp_path / "journal.db"
    notify = receiver.url.replace("http://", f"json://alice:{NOTIFY_PASSWORD}@") + "/alerts"
    with emulators() as (evolution, dify, http):
        env = {
            **os.environ,
            "EVOLUTION_URL": evolution,
            "EVOLUTION_API_KEY": EVOLUTION_KEY,
            "DIFY_URL": dify + "/v1",
            "DIFY_API_KEY": DIFY_KEY,
            "WATCHDOG_PROBE_INTERVAL_SECONDS": "1",
            "WATCHDOG_PROBE_TIMEOUT_SECONDS": "0.5",
            "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS": "0.5",
            "WATCHDOG_STALL_SECONDS": "1",
            "WATCHDOG_CANARY_INTERVAL_SECONDS": "1",
            "WATCHDOG_LISTEN": f"127.0.0.1:{port}",
            "WATCHDOG_STATE_PATH": str(state),
            "WATCHDOG_RECOVERY_MODE": "auto",
            "WATCHDOG_RECOVERY_HOLD_SECONDS": "1",
            "WATCHDOG_FALLBACK_MESSAGE": "Desculpe a demora!",
            "WATCHDOG_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "WATCHDOG_ADMIN_TOKEN": ADMIN_TOKEN,
            "WATCHDOG_WEBHOOK_URL": f"{daemon}/webhook/evolution?token={WEBHOOK_TOKEN}",
            "WATCHDOG_NOTIFY_URLS": notify,
            "WATCHDOG_CONTACT_KEY": CONTACT_KEY,
            "WATCHDOG_LOG_LEVEL": "DEBUG",
            "WATCHDOG_LOG_FORMAT": "json",
        }
        # files, not pipes: DEBUG output would fill a pipe nobody reads until the end and block the daemon
        with (tmp_path / "stdout").open("wb") as out, (tmp_path / "stderr").open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "watchdog", "run"], env=env, stdout=out, stderr=err, cwd=tmp_path
            )
            try:
                outputs = drive_scenario(daemon, evolution, dify, http, receiver)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    outputs["stdout"] = (tmp_path / "stdout").read_text(errors="replace")
    outputs["stderr"] = (tmp_path / "stderr").read_text(errors="replace")
    outputs["journal"] = b"".join(p.read_bytes() for p in tmp_path.glob("journal.db*")).decode("latin-1")
    outputs["notifications"] = json.dumps([(path, body) for path, _, body in receiver.posts])

    assert process.returncode == 0, outputs["stderr"][-2000:]
    assert "incident opened" in outputs["stderr"] and '"name": "DEBUG"' in outputs["stderr"]
    assert "restart_instance" in outputs["journal"] and "reset_session" in outputs["journal"]
    assert "PAGE:" in outputs["notifications"]
    auth = next(headers["authorization"] for _, headers, _ in receiver.posts)
    assert NOTIFY_PASSWORD in base64.b64decode(auth.split()[1]).decode()  # delivered only where it belongs
    leaks = [(marker, where) for marker in MARKERS for where, text in outputs.items() if marker in text]
    assert leaks == []
    assert_no_number_recoverable(outputs)


def assert_no_number_recoverable(outputs: dict[str, str]) -> None:
    """Ana's number is in no output, and no contact id found in them maps back to any number of a block
    around hers without the key: neither by plain hashing nor with another key. With the key the same
    search finds her, so the search works and the ids are really hers."""
    digits = ANA.split("@")[0]
    assert [where for where, text in outputs.items() if digits in text] == []
    seen = {found for text in outputs.values() for found in CONTACT_ID.findall(text)}
    assert contact_id(ANA, key=CONTACT_KEY.encode()) in seen  # the stalled contact, in status and journal
    candidates = [f"55{n:011d}@s.whatsapp.net" for n in range(int(digits[2:]) - 5000, int(digits[2:]) + 5000)]
    guesses = {
        "sha256 of the JID": lambda jid: "c-" + hashlib.sha256(jid.encode()).hexdigest()[:10],
        "sha256 of the number": lambda jid: (
            "c-" + hashlib.sha256(jid.split("@")[0].encode()).hexdigest()[:10]
        ),
        "another key": lambda jid: contact_id(jid, key=b"MARKER-CONTACT-KEY-e83a0b52"),
    }
    found = {how: [jid for jid in candidates if guess(jid) in seen] for how, guess in guesses.items()}
    assert found == {how: [] for how in guesses}
    assert [jid for jid in candidates if contact_id(jid, key=CONTACT_KEY.encode()) in seen] == [ANA]


def drive_scenario(
    daemon: str, evolution: str, dify: str, http: httpx.Client, receiver: Receiver
) -> dict[str, str]:
    """Faults that take the ladder through L1, L2 and L4, plus every request path that carries a secret."""
    wait_until(lambda: _answers(http, f"{daemon}/healthz"), 30, "the daemon to listen")
    for instance in ("loja", "suporte"):
        hook = {
            "enabled": True,
            "url": f"{daemon}/webhook/evolution",
            "headers": {"x-watchdog-token": WEBHOOK_TOKEN},
            "events": ["MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE"],
        }
        http.post(
            f"{evolution}/webhook/set/{instance}", json={"webhook": hook}, headers={"apikey": EVOLUTION_KEY}
        ).raise_for_status()

    def fault(base: str, name: str, **params: object) -> None:
        http.post(f"{base}/_sim/faults", json={"name": name, "params": params}).raise_for_status()

    fault(dify, "forget_after", messages=1)
    for text in ("Oi", "Alô?"):
        inbound = {"instance": "loja", "remoteJid": ANA, "kind": "text", "text": text, "pushName": "Ana"}
        http.post(f"{evolution}/_sim/inbound", json=inbound).raise_for_status()
    fault(evolution, "socket_closed", instance="suporte")
    envelope = {
        "event": "messages.upsert",
        "instance": "loja",
        "data": {"key": {"remoteJid": ANA, "fromMe": True, "id": "X1"}, "messageType": "conversation"},
        "apikey": APIKEY_FIELD,
    }
    hook_url = f"{daemon}/webhook/evolution"
    http.post(f"{hook_url}?token={WEBHOOK_TOKEN}", json=envelope).raise_for_status()
    http.post(hook_url, json=envelope, headers={"x-watchdog-token": ADMIN_TOKEN})  # wrong token: 401
    http.post(hook_url, json={**envelope, "event": APIKEY_FIELD}, headers={"x-watchdog-token": WEBHOOK_TOKEN})
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    http.post(f"{daemon}/api/maintenance", json={"minutes": 1}, headers=admin).raise_for_status()
    http.delete(f"{daemon}/api/maintenance", headers=admin).raise_for_status()
    http.post(f"{daemon}/api/maintenance", json={"minutes": 1}, headers={"authorization": "Bearer x"})

    def journaled(*kinds: str) -> bool:
        status = http.get(f"{daemon}/api/status").json()
        done = {a["kind"] for i in status["incidents"] for a in i["actions"] if a["result"] == "ok"}
        return set(kinds) <= done

    wait_until(lambda: journaled("reset_session", "restart_instance"), 60, "the L1 and L2 repairs")
    fault(evolution, "instance_unloaded", instance="suporte")  # restart refused: pages on-call
    wait_until(lambda: "PAGE:" in json.dumps(receiver.posts), 60, "the page")
    return {path: http.get(f"{daemon}{path}").text for path in ("/metrics", "/api/status", "/healthz", "/")}


def _answers(http: httpx.Client, url: str) -> bool:
    try:
        http.get(url)
    except httpx.HTTPError:
        time.sleep(0.1)
        return False
    return True
