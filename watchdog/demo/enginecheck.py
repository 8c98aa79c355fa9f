"""Can the Docker engine that answers run the demo's containers? One throw-away container, with the
emulators' empty image, bind mounts, user and host network, runs this interpreter: it imports this
package, writes into the scratch directory and connects to a loopback port of this process. Docker
Desktop (host paths not shared, a VM's loopback) and remote engines (another machine's paths) fail it."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from watchdog.demo.hostimage import host_mounts, import_empty_image, package_root, run_host_python

PROBE_SECONDS = 30.0
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
PROBE = """\
import pathlib, socket, sys
try:
    import watchdog
except ImportError:
    sys.exit(3)
try:
    pathlib.Path(sys.argv[1]).write_text("ok")
except OSError:
    sys.exit(4)
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5).close()
except OSError:
    sys.exit(5)
"""


def one_line(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _exited(code: object, workdir: Path, logs: str) -> str:
    if code == 3:
        return f"this package, bind-mounted from {package_root()}, cannot be imported in a container"
    if code == 4:
        return f"the scratch directory {workdir}, bind-mounted, is not writable in a container"
    if code == 5:
        return "a container on the host network cannot reach this machine's loopback (a VM's network?)"
    last = logs.strip().splitlines()[-1:] or ["no output"]
    return f"a test container exited with status {code}: {one_line(last[0])}"


def engine_problem(
    client: docker.DockerClient, image: str, workdir: Path, labels: dict[str, str]
) -> str | None:
    """None when a probe container ran as the emulators will; else why not, in one line."""
    name = f"evo-watchdog-demo-probe-{uuid.uuid4().hex[:8]}"
    marker = workdir / f"{name}.ok"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(2.0)
        try:
            import_empty_image(client, image)
            container = run_host_python(
                client,
                image,
                name,
                ["-c", PROBE, str(marker), str(listener.getsockname()[1])],
                labels=labels,
                workdir=str(workdir),
                mounts=host_mounts(workdir),
                user=f"{os.getuid()}:{os.getgid()}",
            )
            code = container.wait(timeout=PROBE_SECONDS).get("StatusCode")
            if code != 0:
                return _exited(code, workdir, container.logs().decode(errors="replace"))
        except docker.errors.APIError as exc:
            return f"it refused a test container: {one_line(str(exc.explanation or exc))}"
        except ENGINE_ERRORS as exc:
            return f"a test container did not finish: {type(exc).__name__}: {one_line(str(exc), 160)}"
        finally:
            with contextlib.suppress(*ENGINE_ERRORS):
                client.api.remove_container(name, force=True)
        if not marker.is_file():
            return f"a test container's writes to {workdir} do not arrive here (the engine runs elsewhere)"
        marker.unlink()
        try:
            listener.accept()[0].close()
        except TimeoutError:
            return "a test container on the host network did not reach this machine's loopback"
    return None
