"""The demo's emulators as real Docker containers, restarted by the watchdog's own Docker executor.

No registry pull and no network: the image is empty (`docker import` of an empty tar, created for this
run and removed after it); each container gets this machine's interpreter and this package bind-mounted
read-only, the demo's scratch directory read-write, and the host's network (loopback ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from watchdog.demo.emulators import SERVICES, TIME_SCALE, EmulatorSet
from watchdog.demo.hostimage import host_mounts, import_empty_image, run_host_python

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
LABEL = "evo-watchdog-demo"
_DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def reachable_engine(url: str = DEFAULT_DOCKER_URL) -> docker.DockerClient | None:
    """The engine at `url` when it answers a ping, else None (the demo then uses child processes)."""
    try:
        client = docker.DockerClient(base_url=url, timeout=30)
    except _DOCKER_ERRORS:
        return None
    try:
        client.ping()
    except _DOCKER_ERRORS:
        client.close()
        return None
    return client


class ContainerEmulators(EmulatorSet):
    backend = "docker"

    def __init__(
        self,
        workdir: Path,
        client: docker.DockerClient,
        *,
        docker_url: str,
        traffic_interval: float = 0.5,
        time_scale: float = TIME_SCALE,
        run_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(workdir, traffic_interval=traffic_interval, time_scale=time_scale)
        self.run_options = dict(run_options or {})  # per service: more `containers.run` options
        self.client = client
        self.docker_url = docker_url
        run = uuid.uuid4().hex[:8]
        self.image = f"evo-watchdog-demo-base:{run}"
        self.names = {service: f"evo-watchdog-demo-{run}-{service}" for service in SERVICES}
        self._started_at: dict[str, str] = {}

    def describe(self) -> str:
        return (
            f"Backend: Docker containers {', '.join(self.names.values())} (empty local image, this\n"
            "interpreter bind-mounted, host network); an L3 restart goes through the Docker API\n"
            "(EVOLUTION_CONTAINER / DIFY_CONTAINERS), and the watchdog follows their logs."
        )

    def watchdog_env(self) -> dict[str, str]:
        return {
            "EVOLUTION_CONTAINER": self.names["evolution"],
            "DIFY_CONTAINERS": self.names["dify"],
            "WATCHDOG_DOCKER_URL": self.docker_url,
        }

    def log_hint(self, service: str) -> str:
        return f"docker logs {self.names[service]}"

    def alive(self, service: str) -> bool:
        return self._state(service).get("Running") is True

    def _state(self, service: str) -> dict[str, Any]:
        try:
            state: dict[str, Any] = self.client.containers.get(self.names[service]).attrs["State"]
        except _DOCKER_ERRORS:
            return {}
        return state

    def start(self) -> None:
        import_empty_image(self.client, self.image)
        for service in SERVICES:
            run_host_python(
                self.client,
                self.image,
                self.names[service],
                self.command(service)[1:],  # without the interpreter: the container runs this one
                labels={LABEL: "1"},
                workdir=str(self.workdir),
                mounts=host_mounts(self.workdir),
                user=f"{os.getuid()}:{os.getgid()}",
                **self.run_options.get(service, {}),
            )
            self.wait_up(service)
            self._started_at[service] = self._state(service).get("StartedAt", "")

    async def supervise(self) -> None:
        """Docker restarts them (asked by the watchdog); this only counts the restarts it sees."""
        while True:
            for service in SERVICES:
                started = (await asyncio.to_thread(self._state, service)).get("StartedAt", "")
                if started and started != self._started_at.get(service):
                    self._started_at[service] = started
                    self.restarts[service] += 1
            await asyncio.sleep(0.25)

    def stop(self) -> None:
        for name in self.names.values():
            with contextlib.suppress(docker.errors.NotFound):
                self.client.containers.get(name).remove(force=True)
        with contextlib.suppress(docker.errors.ImageNotFound):
            self.client.images.remove(self.image, force=True)
        self.client.close()
