"""Python in a container without a registry pull: an empty local image, with this machine's interpreter,
its libraries and this package bind-mounted read-only, and the host's network (loopback only). The demo
runs its emulators this way; the tests and the benchmarks start their containers through it too."""

from __future__ import annotations

import contextlib
import io
import sys
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors

import watchdog

SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/etc/ssl")


def package_root() -> str:
    """The directory holding the `watchdog` package (the checkout, or site-packages)."""
    return str(Path(watchdog.__file__).resolve().parent.parent)


def import_empty_image(client: docker.DockerClient, reference: str) -> str:
    """`docker import` of an empty tar as `reference` (repository:tag), unless it exists already."""
    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w"):
            pass
        repository, _, tag = reference.partition(":")
        client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=tag or "latest")
    return reference


def host_mounts(scratch: Path | None = None, *extra: str) -> dict[str, dict[str, str]]:
    """Read-only: the interpreter, its libraries, this package and `extra`. Read-write: `scratch`."""
    paths = {*SYSTEM_DIRS, sys.prefix, sys.base_prefix, sys.exec_prefix, package_root(), *extra}
    mounts = {p: {"bind": p, "mode": "ro"} for p in sorted(paths) if Path(p).exists()}
    if scratch is not None:
        mounts[str(scratch)] = {"bind": str(scratch), "mode": "rw"}
    return mounts


def run_host_python(
    client: docker.DockerClient,
    image: str,
    name: str,
    args: list[str],
    *,
    labels: Mapping[str, str],
    workdir: str,
    mounts: dict[str, dict[str, str]],
    **options: Any,
) -> Any:
    """Start `python args...` (this interpreter) detached in a container named `name`, host network."""
    return client.containers.run(
        image,
        [sys.executable, *args],
        name=name,
        detach=True,
        network_mode="host",
        volumes=mounts,
        labels=dict(labels),
        working_dir=workdir,
        environment={"PYTHONUNBUFFERED": "1", "PYTHONPATH": package_root()},
        **options,
    )


def remove_container(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)
