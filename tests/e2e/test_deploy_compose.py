"""deploy/compose.watchdog.yaml merged with upstream Evolution's own docker-compose.yaml (from the 2.3.6
archive in the shared upstream directory) by a real compose implementation, Debian's `docker-compose`.
Only `config` runs (it parses, interpolates and merges; nothing is created); the merged model it prints
is then checked for what the watchdog relies on, and for what `config` does not check (networks, ports).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with apprise

from scripts.upstreams.common import shared_dir
from tests.infra import missing, require_binary

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OVERLAY = "evolution-watchdog/deploy/compose.watchdog.yaml"  # as the README's clone beside the project
ARCHIVE = "evolution-api-2.3.6-offline.tar.gz"
SOCKET = "/var/run/docker.sock"
TOKEN = "5f1d0c7e9a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b"
# What a user appends to Evolution's own .env (README, "Deploy").
USER_ENV = {
    "WATCHDOG_SRC": "./evolution-watchdog",
    "EVOLUTION_API_KEY": "429683C4C977415CAAFCCE10F7D57E11",
    "WATCHDOG_WEBHOOK_TOKEN": TOKEN,
    "WATCHDOG_RECOVERY_MODE": "dry-run",
    "DIFY_URL": "https://dify.example.com/v1",
    "DIFY_API_KEY": "app-demo",
}
Project = Callable[..., Path]


@pytest.fixture(scope="module")
def compose() -> str:
    return require_binary("docker-compose", "docker-compose")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Upstream's docker-compose.yaml and .env.example, extracted from the archive (nothing else)."""
    archive = shared_dir() / ARCHIVE
    if not archive.is_file():
        missing(f"{archive} not found (set WATCHDOG_UPSTREAMS_SHARED to the directory holding it)")
    out = tmp_path_factory.mktemp("evolution-upstream")
    with tarfile.open(archive) as tar:
        for name in ("docker-compose.yaml", ".env.example"):
            member = tar.extractfile(f"evolution-api-2.3.6/{name}")
            assert member is not None, name
            (out / name).write_bytes(member.read())
    return out


@pytest.fixture
def project(upstream: Path, tmp_path: Path) -> Project:
    """An Evolution project directory as the README leaves it: upstream's files, its .env (upstream's
    example) with the watchdog's lines appended, and this repository cloned beside them."""

    def make(env: dict[str, str] = USER_ENV, compose_file: str | None = None) -> Path:
        text = compose_file or (upstream / "docker-compose.yaml").read_text()
        (tmp_path / "docker-compose.yaml").write_text(text)
        lines = "".join(f"{key}={value}\n" for key, value in env.items())
        (tmp_path / ".env").write_text((upstream / ".env.example").read_text() + "\n" + lines)
        (tmp_path / "evolution-watchdog").symlink_to(ROOT, target_is_directory=True)
        return tmp_path

    return make


def config(compose: str, directory: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f docker-compose.yaml -f <overlay> config`, with no variable from this shell."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory)}
    return subprocess.run(
        [compose, "-f", "docker-compose.yaml", "-f", OVERLAY, "config"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def merged(compose: str, project: Project) -> dict[str, Any]:
    result = config(compose, project())
    assert result.returncode == 0, result.stderr
    model = yaml.safe_load(result.stdout)
    assert isinstance(model, dict)
    return model


def mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each mount, as compose normalises them (host paths made absolute)."""
    out = []
    for entry in service.get("volumes", []):
        source, target, mode = str(entry).split(":")
        out.append((source, target, mode))
    return out


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, host port) of each published port; compose prints short or long syntax."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((str(port.get("host_ip", "0.0.0.0")), int(port["published"])))
        else:
            *host, _container = str(port).split("/")[0].split(":")
            out.append((host[0] if len(host) == 2 else "0.0.0.0", int(host[-1])))
    return out


def test_the_watchdog_service_as_compose_merges_it(merged: dict[str, Any], project: Project) -> None:
    services = merged["services"]
    assert {"api", "redis", "evolution-postgres", "frontend"} <= set(services)  # upstream's, kept
    watchdog = services["watchdog"]
    env = watchdog["environment"]
    assert env["EVOLUTION_URL"] == "http://evolution_api:8080"
    assert env["EVOLUTION_CONTAINER"] == services["api"]["container_name"] == "evolution_api"
    assert env["WATCHDOG_DOCKER_URL"] == "tcp://docker-socket-proxy:2375"
    assert env["WATCHDOG_LISTEN"] == "0.0.0.0:8787"
    assert env["WATCHDOG_STATE_PATH"].startswith("/data/")
    # From .env, through env_file and through the required ${WATCHDOG_WEBHOOK_TOKEN:?...}.
    assert env["WATCHDOG_WEBHOOK_TOKEN"] == TOKEN and env["DIFY_URL"] == USER_ENV["DIFY_URL"]
    assert env["WATCHDOG_RECOVERY_MODE"] == "dry-run"
    assert mounts(watchdog) == [("watchdog-data", "/data", "rw")]
    assert set(watchdog["networks"]) == {"evolution-net", "watchdog-docker"}
    assert set(watchdog["depends_on"]) == {"api", "docker-socket-proxy"}
    assert published(watchdog) == [("127.0.0.1", 8787)]
    assert watchdog["read_only"] is True and watchdog["cap_drop"] == ["ALL"]
    context = Path(watchdog["build"]["context"])
    assert context.is_absolute() and (context / watchdog["build"]["dockerfile"]).is_file()
    assert "profiles" not in watchdog and "profiles" not in services["docker-socket-proxy"]
    for name in ("prometheus", "alertmanager", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name


def test_only_the_proxy_sees_the_docker_socket(merged: dict[str, Any]) -> None:
    services = merged["services"]
    holders = {
        name: [m for m in mounts(svc) if "docker.sock" in m[0] or m[1] == SOCKET]
        for name, svc in services.items()
    }
    assert holders.pop("docker-socket-proxy") == [(SOCKET, SOCKET, "ro")]
    assert not any(holders.values()), holders
    for name, svc in services.items():
        assert not svc.get("privileged") and svc.get("network_mode") != "host", name
    proxy = services["docker-socket-proxy"]
    assert "ports" not in proxy, "the proxy must not be published on the host"
    assert proxy["environment"] == {"DOCKER_PROXY_BIND": ":2375", "DOCKER_SOCKET": SOCKET}
    assert set(proxy["networks"]) == {"watchdog-docker"}
    assert merged["networks"]["watchdog-docker"]["internal"] is True
    users = {name for name, svc in services.items() if "watchdog-docker" in svc.get("networks", {})}
    assert users == {"watchdog", "docker-socket-proxy"}
    config_file = [s for s, t, _ in mounts(proxy) if t == "/usr/local/etc/haproxy/haproxy.cfg"]
    assert len(config_file) == 1 and Path(config_file[0]).is_file()


def test_what_config_does_not_check(merged: dict[str, Any]) -> None:
    """`config` leaves undeclared networks, missing bind sources and host-port clashes to `up`."""
    networks, volumes = set(merged["networks"]), set(merged.get("volumes", {}))
    binds = []
    for name, svc in merged["services"].items():
        assert set(svc.get("networks", {})) <= networks, name
        for source, _, _ in mounts(svc):
            if source.startswith("/"):
                binds.append(source)
            else:
                assert source in volumes, f"{name}: named volume {source} is not declared"
    assert not [b for b in binds if b != SOCKET and not Path(b).exists()]
    assert sum("/evolution-watchdog/" in b for b in binds) >= 5  # WATCHDOG_SRC resolved, not "."
    taken: dict[int, list[tuple[str, str]]] = {}
    for name, svc in merged["services"].items():  # every profile: `--profile monitoring up` starts all
        for address, port in published(svc):
            for other, other_address in taken.get(port, []):
                wildcard = ipaddress.ip_address(address).is_unspecified
                clash = (
                    wildcard or ipaddress.ip_address(other_address).is_unspecified or address == other_address
                )
                assert not clash, f"{name} and {other} both publish host port {port}"
            taken.setdefault(port, []).append((name, address))


def test_monitoring_matches_the_shipped_configs(merged: dict[str, Any]) -> None:
    """Prometheus scrapes `watchdog:8787` and Grafana loads dashboards from where provisioning says."""
    services = merged["services"]
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = [
        t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    ]
    listen_port = services["watchdog"]["environment"]["WATCHDOG_LISTEN"].rsplit(":", 1)[1]
    assert f"watchdog:{listen_port}" in targets
    managers = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert managers == ["alertmanager:9093"]
    provider = yaml.safe_load(
        (ROOT / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )
    grafana = {target: (source, mode) for source, target, mode in mounts(services["grafana"])}
    source, mode = grafana[provider["providers"][0]["options"]["path"]]
    assert source.endswith("/grafana/dashboards") and mode == "ro"
    assert grafana["/etc/grafana/provisioning"][0].endswith("/grafana/provisioning")
    prom = {target: source for source, target, _ in mounts(services["prometheus"])}
    assert Path(prom["/etc/prometheus"], "prometheus.yml").is_file()
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    am = {target: source for source, target, _ in mounts(services["alertmanager"])}
    assert Path(am["/etc/alertmanager"], "alertmanager.yml").is_file()
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in services["alertmanager"]["command"]


def test_without_the_webhook_token_compose_refuses(compose: str, project: Project) -> None:
    env = {key: value for key, value in USER_ENV.items() if key != "WATCHDOG_WEBHOOK_TOKEN"}
    result = config(compose, project(env))
    assert result.returncode != 0 and "set WATCHDOG_WEBHOOK_TOKEN in .env" in result.stderr, result.stderr


def test_an_upstream_without_the_api_service_is_refused(
    compose: str, project: Project, upstream: Path
) -> None:
    """A project whose Evolution service is not `api` (an older or edited compose file): a clear error."""
    renamed = (upstream / "docker-compose.yaml").read_text().replace("\n  api:\n", "\n  evolution:\n")
    assert "\n  evolution:\n" in renamed
    result = config(compose, project(compose_file=renamed))
    assert result.returncode != 0
    assert "Service 'watchdog' depends on service 'api' which is undefined" in result.stderr, result.stderr
