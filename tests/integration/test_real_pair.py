"""The watchdog as a user runs it against the real Evolution API 2.3.6 and Dify 1.12.1 (scripts/upstreams.sh).

No WhatsApp is reachable here, so a started instance never opens: Baileys retries and `connectionState`
reads `connecting` or `close` depending on the moment (in stretches of a few seconds each). That instance,
and nothing else, is what `check` and `doctor` must report, with Dify healthy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.conftest import wait_for
from tests.infra import free_port
from tests.upstreams import RealUpstreams

pytestmark = [pytest.mark.integration, pytest.mark.upstream]

RETRYING = ("connecting", "close")  # what connectionState reads while Baileys retries
HEALTHY_WATCH_SECONDS = 120.0


def watchdog_env(real: RealUpstreams, state_dir: Path, **overrides: str) -> dict[str, str]:
    """The shipped defaults, pointed at the real pair (DIFY_HEALTH_URL left unset, as most users do)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVOLUTION_", "DIFY_", "WATCHDOG_"))}
    return {
        **env,
        "EVOLUTION_URL": real.evolution_url,
        "EVOLUTION_API_KEY": real.evolution_api_key,
        "DIFY_URL": real.dify_url,
        "DIFY_API_KEY": real.dify_api_key,
        "WATCHDOG_LISTEN": "127.0.0.1:0",
        "WATCHDOG_STATE_PATH": str(state_dir / "journal.db"),
        **overrides,
    }


def run_cli(env: dict[str, str], *args: str, timeout: float = 90) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "watchdog", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def evolution(real_upstreams: RealUpstreams) -> Iterator[httpx.Client]:
    headers = {"apikey": real_upstreams.evolution_api_key}
    with httpx.Client(base_url=real_upstreams.evolution_url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def connecting_instance(evolution: httpx.Client) -> Iterator[str]:
    """An instance whose Baileys is started: with no WhatsApp reachable it never opens.

    It reads `connecting` or `close` by the moment; how soon Baileys first reads `connecting` depends on
    the machine (a CI run saw it take over 15 s), so the fixture waits only for the instance to answer.
    """
    name = f"wdpair-{uuid.uuid4().hex[:8]}"
    created = evolution.post(
        "/instance/create", json={"instanceName": name, "integration": "WHATSAPP-BAILEYS", "qrcode": False}
    )
    assert created.status_code == 201, created.text
    try:
        evolution.get(f"/instance/connect/{name}")
        wait_for(
            lambda: (
                evolution.get(f"/instance/connectionState/{name}").json()["instance"].get("state") in RETRYING
            ),
            timeout=30,
        )
        yield name
    finally:
        evolution.delete(f"/instance/delete/{name}")  # never logout


def test_check_reports_dify_healthy_and_only_the_connecting_instance(
    real_upstreams: RealUpstreams, connecting_instance: str, tmp_path: Path
) -> None:
    env = watchdog_env(real_upstreams, tmp_path, EVOLUTION_INSTANCES=connecting_instance)
    code, out, err = run_cli(env, "check", "--json", "--canary")
    report = json.loads(out)
    assert code == 1, (report["findings"], err)
    findings = [(f["kind"], f["target"]) for f in report["findings"]]
    assert findings == [("instance_disconnected", f"evolution:{connecting_instance}")]
    assert report["findings"][0]["evidence"]["state"] in RETRYING
    dify = {p["probe"]: p for p in report["probes"] if p["target"] == "dify"}
    assert {name: p["ok"] for name, p in dify.items()} == {"liveness": True, "app_info": True, "canary": True}
    assert "1.12.1" in dify["liveness"]["detail"] or "echo-chat" in dify["app_info"]["detail"]
    version = next(p for p in report["probes"] if p["probe"] == "version")
    # GET / waits on web.whatsapp.com (unreachable here): it may answer 2.3.6 or time out; never a failure
    assert version["ok"] and ("2.3.6" in version["detail"] or "version unknown" in version["detail"])


def test_check_with_the_health_url_reads_dify_version(real_upstreams: RealUpstreams, tmp_path: Path) -> None:
    env = watchdog_env(
        real_upstreams, tmp_path, DIFY_HEALTH_URL=real_upstreams.dify_health_url, EVOLUTION_INSTANCES=""
    )
    code, out, err = run_cli(env, "check", "--json")
    report = json.loads(out)
    dify = {p["probe"]: p for p in report["probes"] if p["target"] == "dify"}
    assert dify["liveness"]["ok"] and "1.12.1" in dify["liveness"]["detail"], dify
    assert code == 0 and report["findings"] == [], (report["findings"], err)


def test_doctor_reports_the_connecting_instance_and_nothing_else(
    real_upstreams: RealUpstreams, connecting_instance: str, tmp_path: Path
) -> None:
    env = watchdog_env(real_upstreams, tmp_path, EVOLUTION_INSTANCES=connecting_instance)
    code, out, err = run_cli(env, "doctor", "--json")
    report: dict[str, Any] = json.loads(out)
    kinds = [(d["kind"], d["target"]) for d in report["findings"]]
    assert kinds == [("instance_disconnected", f"evolution:{connecting_instance}")], (report, err)
    assert code == 3  # worst finding critical
    assert any(f"is {state}" in report["findings"][0]["summary"] for state in RETRYING), report


@pytest.fixture
def fault_default(real_upstreams: RealUpstreams) -> Iterator[httpx.Client]:
    """The harness's fault server, which the midstream-fail app calls after its first answer."""
    if real_upstreams.dify_fault_url is None:
        pytest.skip("a staging Dify has no fault server: the mid-stream failure needs the harness")
    with httpx.Client(base_url=real_upstreams.dify_fault_url, timeout=10) as client:
        yield client
        client.put("/_default/ok").raise_for_status()


def test_canary_passes_on_the_echo_app_and_fails_on_a_mid_stream_failure(
    real_upstreams: RealUpstreams, fault_default: httpx.Client, tmp_path: Path
) -> None:
    env = watchdog_env(real_upstreams, tmp_path, EVOLUTION_INSTANCES="")
    code, out, _ = run_cli(env, "check", "--json", "--canary")
    canary = next(p for p in json.loads(out)["probes"] if p["probe"] == "canary")
    assert canary["ok"], canary

    fault_default.put("/_default/500").raise_for_status()
    env["DIFY_API_KEY"] = real_upstreams.dify_fail_api_key
    code, out, err = run_cli(env, "check", "--json", "--canary")
    report = json.loads(out)
    assert code == 1, (report, err)
    canary = next(p for p in report["probes"] if p["probe"] == "canary")
    assert not canary["ok"] and "Run failed" in canary["detail"], canary
    findings = [(f["kind"], f["evidence"].get("failure")) for f in report["findings"]]
    assert findings == [("dify_canary_failed", "app")], report["findings"]


@contextmanager
def daemon(env: dict[str, str], tmp_path: Path) -> Iterator[httpx.Client]:
    """`evo-watchdog run` as a user starts it; SIGTERM on the way out, and it must exit 0."""
    port = free_port()
    env = {**env, "WATCHDOG_LISTEN": f"127.0.0.1:{port}"}
    log = (tmp_path / "watchdog.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "watchdog", "run"], env=env, stdout=log, stderr=log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_for(lambda: _answers(client), timeout=30)
            yield client
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        log.close()
        assert code == 0, (tmp_path / "watchdog.log").read_text()[-2000:]


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code in (200, 503)
    except httpx.TransportError:
        return False


def restart_commands(tmp_path: Path) -> dict[str, str]:
    """L3 made possible (a command backend that leaves a mark), so 'no restart' means none was chosen."""
    return {
        "WATCHDOG_RESTART_COMMAND_EVOLUTION": f"touch {tmp_path / 'restarted-evolution'}",
        "WATCHDOG_RESTART_COMMAND_DIFY": f"touch {tmp_path / 'restarted-dify'}",
    }


def journaled(env: dict[str, str]) -> list[dict[str, Any]]:
    code, out, err = run_cli(env, "incidents", "--json", "--limit", "100")
    assert code == 0, err
    incidents: list[dict[str, Any]] = json.loads(out)
    return incidents


def test_two_minutes_of_auto_mode_on_the_healthy_pair_journal_no_repair(
    real_upstreams: RealUpstreams, evolution: httpx.Client, tmp_path: Path
) -> None:
    leftovers = [row["name"] for row in evolution.get("/instance/fetchInstances").json()]
    assert leftovers == [], f"another test left instances behind: {leftovers}"
    env = watchdog_env(
        real_upstreams,
        tmp_path,
        WATCHDOG_RECOVERY_MODE="auto",
        WATCHDOG_CANARY_INTERVAL_SECONDS="30",  # the canary too: a healthy app must not look failed
        **restart_commands(tmp_path),
    )
    with daemon(env, tmp_path) as client:
        time.sleep(HEALTHY_WATCH_SECONDS)
        status = client.get("/api/status").json()
    interval = 15.0  # WATCHDOG_PROBE_INTERVAL_SECONDS' shipped default
    assert status["cycles"] >= HEALTHY_WATCH_SECONDS / interval - 1, status["cycles"]
    assert status["findings"] == [], status["findings"]
    assert journaled(env) == []
    assert not (tmp_path / "restarted-evolution").exists() and not (tmp_path / "restarted-dify").exists()


def test_a_repair_that_never_ends_delays_no_probe_cycle(
    real_upstreams: RealUpstreams, connecting_instance: str, tmp_path: Path
) -> None:
    """The instance cannot open (no WhatsApp). Its L2 restart either runs to its deadline (accepted while
    the instance reads `connecting`) or is refused (while it reads `close`: the state alternates in
    stretches of a few seconds) and the ladder goes on to L3, whose restart command here never ends.
    Either way a repair stays in flight, and probing goes on."""
    interval = 2.0
    env = watchdog_env(
        real_upstreams,
        tmp_path,
        EVOLUTION_INSTANCES=connecting_instance,
        WATCHDOG_RECOVERY_MODE="auto",
        WATCHDOG_PROBE_INTERVAL_SECONDS=str(interval),
        WATCHDOG_PROBE_TIMEOUT_SECONDS="1",
        WATCHDOG_RESTART_COMMAND_EVOLUTION="sleep 600",
    )
    repairs = {
        ("restart_instance", f"instance:{connecting_instance}"),
        ("restart_container", "service:evolution"),
    }
    with daemon(env, tmp_path) as client:

        def in_flight(longer_than: float = 0.0) -> set[tuple[str, str]]:
            flying = client.get("/api/status").json()["recovery"]["in_flight"]
            return {(f["kind"], f["target"]) for f in flying if f["running_for"] >= longer_than}

        # a refused L2 is in flight for the couple of seconds it reads the state: wait for a long one
        wait_for(lambda: bool(in_flight(longer_than=4 * interval)), timeout=120)
        running = in_flight(longer_than=4 * interval)
        before = client.get("/api/status").json()["cycles"]
        time.sleep(10 * interval)
        after = client.get("/api/status").json()
        assert running <= repairs and running & in_flight(), (running, after["recovery"], journaled(env))
    assert after["cycles"] - before >= 5, (before, after["cycles"])  # ~10 expected; none held up
    actions = [a for incident in journaled(env) for a in incident["actions"]]
    assert {a["kind"] for a in actions} <= {kind for kind, _ in repairs}, actions
