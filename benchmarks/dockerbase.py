"""Containers for the benchmarks on the real Docker engine: no registry pulls, no bridge networks.

The image is empty (`docker import` of an empty tar); containers get the host's interpreter and this
checkout bind-mounted read-only and use host networking, as the integration tests do."""

from __future__ import annotations

import contextlib
from typing import Any

import docker
import docker.errors

from benchmarks.procs import ROOT
from watchdog.demo.hostimage import host_mounts, import_empty_image, remove_container, run_host_python

DOCKER_URL = "unix:///var/run/docker.sock"
BASE_IMAGE = "evo-watchdog-bench-base:latest"
LABEL = "evo-watchdog-bench"


def connect() -> docker.DockerClient:
    client = docker.DockerClient(base_url=DOCKER_URL, timeout=30)
    client.ping()
    return client


def base_image(client: docker.DockerClient) -> str:
    return import_empty_image(client, BASE_IMAGE)


def run_python(client: docker.DockerClient, name: str, args: list[str], **options: Any) -> Any:
    """`python args...` in a container named `name` (host network, read-only host mounts)."""
    remove(client, name)
    mounts = host_mounts(None, str(ROOT))
    return run_host_python(
        client,
        base_image(client),
        name,
        args,
        labels={LABEL: "1"},
        workdir=str(ROOT),
        mounts=mounts,
        **options,
    )


def remove(client: docker.DockerClient, name: str) -> None:
    remove_container(client, name)


def remove_all(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
