"""Grafana dashboards: portable JSON, and every panel query answered by a real Prometheus.

Grafana cannot run here, so the proof is the next best thing: a real Prometheus scrapes a real watchdog
that watches the emulators through traffic, faults, recoveries and a container's logs, and then every
panel and annotation query of every dashboard (variables filled in as Grafana would) must return data.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from tests.e2e.promkit import Prometheus, run_watchdog
from tests.infra import free_port
from tests.integration import dockerkit
from tests.integration.stack import Stack, running_stack
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
PROVISIONING = ROOT / "grafana" / "provisioning"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
INSTANCE = "loja"  # a real instance, so a filter on a misspelt label cannot pass the way `.*` would
# Grafana's own variables, at values a dashboard over the last few minutes would use.
GRAFANA_VARIABLES = {"__rate_interval": "2m", "__interval": "15s", "__range": "5m", "instance": INSTANCE}
# Series that exist only during an event. Each is checked over the scenario's window instead of now,
# or, when the scenario cannot cause the event, only for being exported and a query Prometheus accepts.
EVENT_ONLY = {
    "watchdog_pending_messages": "a gauge per instance with a customer waiting; gone once the bot replies",
    "watchdog_stalled_conversations": "exported beside pending_messages, so only while someone waits",
    "watchdog_job_failures_total": "born at the first scheduled job that raises; a healthy run has none",
}
NOT_CAUSED_HERE = {"watchdog_job_failures_total"}

ANA, BIA, CAIO, DUDA, EDU, WILL = (f"55119876000{n:02d}@s.whatsapp.net" for n in range(1, 7))
LOGGER = "evo-watchdog-test-dashboards-logs"
# Dify-format lines: a routine one twice a second, and a rule match every 3 s (dify_error, then a plain
# ERROR), too few for an error_burst, so nothing restarts this container.
LOGGER_SCRIPT = """
import time, datetime
lines = ["Exception on /v1/chat-messages [POST]", "worker noticed something odd"]
n = 0
while True:
    now = datetime.datetime.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (now.microsecond // 1000)
    if n % 6 == 5:
        print(stamp, "ERROR [Dummy-1] [app.py:10] -", lines[(n // 6) % 2], flush=True)
    else:
        print(stamp, "INFO [Dummy-1] [app.py:10] - request served n=%d" % n, flush=True)
    n += 1
    time.sleep(0.5)
"""


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those folded inside rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) for every panel target and annotation query."""
    for panel in panels(board):
        for t in panel.get("targets", []):
            yield f"{board['uid']} / {panel['title']} / {t.get('refId')}", t.get("expr", "")
    for annotation in board["annotations"]["list"]:
        yield f"{board['uid']} / annotation {annotation['name']}", annotation.get("expr", "")


def datasource_refs(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            else:
                yield from datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item)


def variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board["templating"]["list"]}


def concrete(expr: str) -> str:
    """The query Grafana would send: `$name` and `${name}` replaced; an unknown variable fails here."""

    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        assert name in GRAFANA_VARIABLES, f"unknown variable ${name} in {expr}"
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))", value, expr)


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bwatchdog_[a-z_]+\b", expr))


def event_only(expr: str) -> set[str]:
    return metric_names(expr) & EVENT_ONLY.keys()


# ---- structure -----------------------------------------------------------------------------------------


def test_the_five_dashboards_exist_with_unique_uids_and_titles() -> None:
    boards = [load(p) for p in DASHBOARDS]
    uids = [b["uid"] for b in boards]
    titles = [b["title"] for b in boards]
    assert len(boards) == 5, [p.name for p in DASHBOARDS]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    assert all(len(uid) <= 40 for uid in uids)  # Grafana's uid limit
    assert len({variables(b)["instance"]["definition"] for b in boards}) == 1  # one meaning everywhere


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_portable_grafana_json(path: Path) -> None:
    board = load(path)
    assert board.get("id") is None, "a provisioned dashboard must not carry a database id"
    assert 36 <= board["schemaVersion"] <= 41
    found = variables(board)
    assert found["datasource"]["type"] == "datasource" and found["datasource"]["query"] == "prometheus"
    instance = found["instance"]
    assert instance["type"] == "query" and instance["datasource"] == DATASOURCE
    assert instance["definition"].startswith("label_values(")
    refs = list(datasource_refs(board))
    assert refs and all(ref == DATASOURCE for ref in refs), [r for r in refs if r != DATASOURCE]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        exprs = [t.get("expr", "").strip() for t in panel.get("targets", [])]
        assert exprs and all(exprs), f"{panel['title']} has a target without a query"
        refids = [t["refId"] for t in panel["targets"]]
        assert len(refids) == len(set(refids)), f"{panel['title']}: duplicate refIds"
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys() and panel["gridPos"]["x"] + panel["gridPos"][
            "w"
        ] <= 24
    for where, expr in queries(board):
        concrete(expr)  # every variable used is one Grafana or the dashboard defines
        assert metric_names(expr), f"{where} reads no watchdog metric"


def test_provisioning_files_parse_and_point_at_the_dashboards() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    dashboards = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    assert datasources["apiVersion"] == 1 and dashboards["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http")
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")


# ---- real data -----------------------------------------------------------------------------------------


def wait_metric(url: str, needle: str, timeout: float = 20.0) -> None:
    """Poll the watchdog's own /metrics for a sample line starting with `needle`."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as http:
        while not any(line.startswith(needle) for line in http.get(f"{url}/metrics").text.splitlines()):
            assert time.monotonic() < deadline, f"{needle} never appeared on {url}/metrics"
            time.sleep(0.05)


def drive(stack: Stack, url: str, prom: Prometheus) -> None:
    """Traffic, a slow Dify, a human reply, a wedged contact, an unloadable instance, a bad webhook."""
    prom.wait_for(f'watchdog_instance_connection_state{{exported_instance="{INSTANCE}",state="open"}} == 1')
    stack.fault("dify", "slow", seconds=1.5, kind="all")  # over the 0.5 s threshold, under the 3 s stall
    assert stack.inbound(CAIO, instance=INSTANCE) == "delivered"
    wait_metric(url, "watchdog_pending_messages{")  # CAIO waits, so the owner's reply ends a wait
    body = {"instance": INSTANCE, "remoteJid": CAIO, "text": "Oi, sou eu"}
    stack.http.post(f"{stack.evolution_url}/_sim/phone-reply", json=body).raise_for_status()
    for jid, kind in ((ANA, "text"), (BIA, "image")):
        assert stack.inbound(jid, kind=kind, instance=INSTANCE) == "delivered"
    prom.wait_for("count(count by (kind) (watchdog_turnaround_breaches_total)) == 2")
    stack.http.delete(f"{stack.dify_root}/_sim/faults/slow").raise_for_status()
    stack.inbound(DUDA, kind="text", instance=INSTANCE)
    stack.inbound(EDU, kind="audio", instance=INSTANCE)
    stack.fault("evolution", "media_wedge", remoteJid=WILL)
    stack.inbound(WILL, kind="image", instance=INSTANCE)  # never answered: stalls, then L1 resets it
    stack.fault("evolution", "instance_unloaded", instance="suporte")  # L2 refused, then a page
    with httpx.Client(timeout=5) as http:
        assert http.post(f"{url}/webhook/evolution", content=b"not json").status_code == 400
    for expr in (
        'watchdog_recovery_actions_total{action="reset_session",result="ok"}',
        'watchdog_recovery_actions_total{action="restart_instance",result="failed"}',
        'watchdog_recovery_actions_total{action="page",result="undelivered"}',  # no notify URL set
        "watchdog_human_replies_total",
        'watchdog_webhook_events_total{outcome="rejected_not_json"}',
        'watchdog_log_events_total{rule="dify_error"}',
        'watchdog_log_events_total{rule="error"}',
        'rate(watchdog_turnaround_seconds_count{kind="media"}[1m]) > 0',
    ):
        prom.wait_for(expr, timeout=45)


def start_logger(client: Any, scratch: Path) -> None:
    """The logger container, labelled as this test's own: other tests' sweeps of the shared label
    (dockerkit.remove_all) running at the same time must not take it away mid-test."""
    dockerkit.remove(client, LOGGER)
    client.containers.run(
        dockerkit.base_image(client),
        [str(ROOT / ".venv" / "bin" / "python"), "-c", LOGGER_SCRIPT],
        name=LOGGER,
        detach=True,
        network_mode="host",
        volumes=dockerkit.host_mounts(scratch),
        labels={"evo-watchdog-test-dashboards": "1"},
    )


def has_numbers(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(sample["value"][1])) for sample in result)


def test_every_panel_query_returns_data_from_a_real_watchdog(docker_engine: Any, tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    hook = f"http://{listen}/webhook/evolution"
    start_logger(docker_engine, tmp_path)
    options = EvolutionOptions(instances=(INSTANCE, "suporte"), debounce_seconds=0, webhook_url=hook)
    try:
        with running_stack(options) as stack:
            env = stack.env(
                WATCHDOG_LISTEN=listen,
                WATCHDOG_STALL_SECONDS="3",
                WATCHDOG_RECOVERY_MODE="auto",
                WATCHDOG_RECOVERY_HOLD_SECONDS="1",
                DIFY_CONTAINERS=LOGGER,
                WATCHDOG_DOCKER_URL=dockerkit.DOCKER_URL,
            )
            with run_watchdog(env) as url, Prometheus(tmp_path, targets=[listen]) as prom:
                started = time.monotonic()
                drive(stack, url, prom)
                exported = httpx.get(f"{url}/metrics", timeout=5).text
                window = f"{math.ceil(time.monotonic() - started) + 5}s"
                results = {
                    where: evaluate(prom, expr, window, exported)
                    for board in map(load, DASHBOARDS)
                    for where, expr in queries(board)
                }
                instances = variable_values(prom, variables(load(DASHBOARDS[0]))["instance"])
    finally:
        dockerkit.remove(docker_engine, LOGGER)
    empty = sorted(where for where, ok in results.items() if not ok)
    assert not empty, f"panel queries without data: {empty}"
    assert {INSTANCE, "suporte"} <= set(instances)  # the `instance` variable's values


def variable_values(prom: Prometheus, variable: dict[str, Any]) -> list[str]:
    """What Grafana offers for a `label_values(metric, label)` variable."""
    match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
    assert match, variable["definition"]
    values: list[str] = prom.get(f"/api/v1/label/{match[2]}/values", **{"match[]": match[1]})["data"]
    return values


def evaluate(prom: Prometheus, expr: str, window: str, exported: str) -> bool:
    """True when the panel would show data: now, or for an event-only query during the scenario."""
    query = concrete(expr)
    special = event_only(expr)
    if not special:
        return has_numbers(prom.query(query))
    for name in special:
        assert f"# TYPE {name} " in exported or f"# TYPE {name.removesuffix('_total')} " in exported, name
    if special <= NOT_CAUSED_HERE:
        prom.query(query)  # accepted by Prometheus (a syntax error raises); no event to show
        return True
    return has_numbers(prom.query(f"last_over_time(({query})[{window}:1s])"))
