"""Containers for the benchmarks on the real Docker engine: no registry pulls, no bridge networks.

The image is empty (`docker import` of an empty tar); containers get the host's interpreter and this
checkout bind-mounted read-only and use host networking, as the integration tests do."""

from __future__ import annotations

import contextlib
import io
import sys
import tarfile
from pathlib import Path
from typing import Any

import docker
import docker.errors

from benchmarks.procs import ROOT

DOCKER_URL = "unix:///var/run/docker.sock"
BASE_IMAGE = "evo-watchdog-bench-base:latest"
LABEL = "evo-watchdog-bench"


def connect() -> docker.DockerClient:
    client = docker.DockerClient(base_url=DOCKER_URL, timeout=30)
    client.ping()
    return client


def base_image(client: docker.DockerClient) -> str:
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w"):
            pass
        client.api.import_image_from_data(
            buffer.getvalue(), repository=BASE_IMAGE.split(":")[0], tag="latest"
        )
    return BASE_IMAGE


def run_python(client: docker.DockerClient, name: str, args: list[str], **options: Any) -> Any:
    """`python args...` in a container named `name` (host network, read-only host mounts)."""
    remove(client, name)
    paths = {"/usr", "/lib", "/lib64", "/bin", "/etc/ssl", sys.base_prefix, str(ROOT)}
    return client.containers.run(
        base_image(client),
        [str(Path(sys.executable)), *args],
        name=name,
        detach=True,
        network_mode="host",
        volumes={p: {"bind": p, "mode": "ro"} for p in paths if Path(p).exists()},
        labels={LABEL: "1"},
        working_dir=str(ROOT),
        environment={"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
        **options,
    )


def remove(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)


def remove_all(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
