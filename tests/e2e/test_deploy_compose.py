"""deploy/compose.watchdog.yaml, checked statically as an overlay on upstream Evolution's compose file.

No compose binary is installed here: the overlay is merged with a copy of upstream's service and
network names (reference/evolution-api.md) and every cross-reference is resolved by hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with apprise

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "deploy" / "compose.watchdog.yaml"
SOCKET = "/var/run/docker.sock"
# The parts of upstream's docker-compose.yaml the overlay builds on.
UPSTREAM: dict[str, Any] = {
    "services": {
        "api": {"container_name": "evolution_api", "env_file": ".env", "networks": ["evolution-net"]},
        "redis": {"container_name": "evolution_redis", "networks": ["evolution-net"]},
        "postgres": {"container_name": "evolution_postgres", "networks": ["evolution-net"]},
    },
    "networks": {"evolution-net": {"name": "evolution-net", "driver": "bridge"}},
}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def overlay() -> dict[str, Any]:
    loaded = yaml.safe_load(OVERLAY.read_text())
    assert isinstance(loaded, dict)
    return loaded


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with `env` as the project's .env."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match[1], match[2] or "", match[3] or ""
        if env.get(name):
            return env[name]
        if op.endswith("?"):
            raise AssertionError(f"{name} is required: {arg}")
        return arg

    return VARIABLE.sub(one, value)


def services(overlay: dict[str, Any]) -> dict[str, Any]:
    return dict(overlay["services"])


def mounts(service: dict[str, Any], env: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(host, container, mode) of each bind or volume mount (short syntax), variables resolved."""
    out = []
    for entry in service.get("volumes", []):
        host, container, *mode = interpolate(str(entry), env or {}).split(":")
        out.append((host, container, mode[0] if mode else "rw"))
    return out


def test_services_and_profiles(overlay: dict[str, Any]) -> None:
    found = services(overlay)
    assert set(found) == {"watchdog", "docker-socket-proxy", "prometheus", "alertmanager", "grafana"}
    for name in ("prometheus", "alertmanager", "grafana"):
        assert found[name]["profiles"] == ["monitoring"], name
    for name in ("watchdog", "docker-socket-proxy"):
        assert "profiles" not in found[name], f"{name} must start without a profile"


def test_only_the_proxy_sees_the_docker_socket(overlay: dict[str, Any]) -> None:
    holders = {
        name: [(h, c, m) for h, c, m in mounts(svc) if SOCKET in (h, c) or "docker.sock" in h]
        for name, svc in services(overlay).items()
    }
    assert holders.pop("docker-socket-proxy") == [(SOCKET, SOCKET, "ro")]
    assert not any(holders.values()), holders
    for name, svc in services(overlay).items():
        assert not svc.get("privileged"), name
        assert svc.get("network_mode") != "host", name
    proxy = services(overlay)["docker-socket-proxy"]
    assert "ports" not in proxy, "the proxy must not be published on the host"
    assert proxy["environment"]["DOCKER_SOCKET"] == SOCKET
    assert proxy["environment"]["DOCKER_PROXY_BIND"] == ":2375"
    config = [c for h, c, _ in mounts(proxy) if h.endswith("deploy/socket-proxy/haproxy.cfg")]
    assert config == ["/usr/local/etc/haproxy/haproxy.cfg"]


def test_watchdog_joins_evolution_through_the_proxy(overlay: dict[str, Any]) -> None:
    watchdog = services(overlay)["watchdog"]
    env = watchdog["environment"]
    assert watchdog["env_file"] == ".env"
    assert env["WATCHDOG_DOCKER_URL"] == "tcp://docker-socket-proxy:2375"
    assert env["EVOLUTION_CONTAINER"] == UPSTREAM["services"]["api"]["container_name"]
    assert env["EVOLUTION_URL"] == "http://evolution_api:8080"
    assert env["WATCHDOG_LISTEN"] == "0.0.0.0:8787"
    assert env["WATCHDOG_STATE_PATH"].startswith("/data/")
    assert ("watchdog-data", "/data", "rw") in mounts(watchdog)
    assert set(watchdog["depends_on"]) == {"api", "docker-socket-proxy"}
    assert watchdog["build"]["dockerfile"] == "deploy/Dockerfile"
    # The proxy is reachable from the watchdog alone, on an internal network.
    proxy_nets = set(services(overlay)["docker-socket-proxy"]["networks"])
    assert proxy_nets == {"watchdog-docker"} and overlay["networks"]["watchdog-docker"]["internal"] is True
    for name, svc in services(overlay).items():
        if name not in ("watchdog", "docker-socket-proxy"):
            assert "watchdog-docker" not in svc.get("networks", []), name
    # Required: listening beyond loopback without a token is refused at start (a restart loop).
    assert re.fullmatch(r"\$\{WATCHDOG_WEBHOOK_TOKEN:\?[^}]+\}", env["WATCHDOG_WEBHOOK_TOKEN"])


def test_merged_with_upstream_every_reference_resolves(overlay: dict[str, Any]) -> None:
    merged_services = {**UPSTREAM["services"], **services(overlay)}
    merged_networks = {**UPSTREAM["networks"], **overlay.get("networks", {})}
    volumes = set(overlay.get("volumes", {}))
    for name, svc in services(overlay).items():
        deps = svc.get("depends_on", [])
        assert set(deps) <= set(merged_services), (name, deps)
        assert set(svc.get("networks", [])) <= set(merged_networks), name
        for host, _, _ in mounts(svc):
            if not host.startswith(("/", "$", ".")):
                assert host in volumes, f"{name}: named volume {host} is not declared"


@pytest.mark.parametrize("src", ["", ".", str(ROOT)])
def test_host_paths_exist_from_the_project_directory(overlay: dict[str, Any], src: str) -> None:
    """The overlay is used from a directory holding this repository's files (or WATCHDOG_SRC)."""
    env = {"WATCHDOG_SRC": src} if src else {}
    missing = []
    for name, svc in services(overlay).items():
        for host, _, _ in mounts(svc, env):
            if host.startswith((".", "/")) and host != SOCKET:
                path = Path(host)
                if not (path if path.is_absolute() else ROOT / path).exists():
                    missing.append((name, host))
    assert (
        len([h for svc in services(overlay).values() for h, _, _ in mounts(svc, env) if "deploy/" in h]) >= 3
    )
    context = Path(interpolate(services(overlay)["watchdog"]["build"]["context"], env))
    assert ((context if context.is_absolute() else ROOT / context) / "deploy" / "Dockerfile").is_file()
    assert not missing, missing


def test_monitoring_matches_the_shipped_configs(overlay: dict[str, Any]) -> None:
    """Prometheus scrapes `watchdog:8787` and Grafana loads dashboards from where provisioning says."""
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = [
        t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    ]
    listen_port = services(overlay)["watchdog"]["environment"]["WATCHDOG_LISTEN"].rsplit(":", 1)[1]
    assert f"watchdog:{listen_port}" in targets
    managers = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert managers == ["alertmanager:9093"]
    provider = yaml.safe_load(
        (ROOT / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )
    dashboards_path = provider["providers"][0]["options"]["path"]
    grafana = mounts(services(overlay)["grafana"])
    assert (dashboards_path, "ro") in [(c, m) for h, c, m in grafana if h.endswith("grafana/dashboards")]
    assert ("/etc/grafana/provisioning", "ro") in [
        (c, m) for h, c, m in grafana if h.endswith("provisioning")
    ]
    prom_mounts = {c: h for h, c, _ in mounts(services(overlay)["prometheus"])}
    assert prom_mounts["/etc/prometheus"].endswith("deploy/prometheus")
    assert "--config.file=/etc/prometheus/prometheus.yml" in services(overlay)["prometheus"]["command"]
    am = services(overlay)["alertmanager"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    assert (ROOT / "deploy" / "alertmanager" / "alertmanager.yml").is_file()
