"""deploy/Dockerfile built for real with no registry pull and no network.

The base image is made here: `docker import` of a small root filesystem holding this machine's
interpreter (laid out like the official python images, under /usr/local), the Debian libraries it
links against, and busybox-static for /bin/sh. It is cached by tag. The build context is the
repository filtered by its own .dockerignore, plus a wheelhouse made on the host by `pip wheel`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pip
from docker.utils.build import exclude_paths

from tests.infra import free_port, require_binary
from tests.integration import dockerkit

ROOT = Path(__file__).resolve().parents[2]
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
BASE_TAG = (
    f"evo-watchdog-deploy-base:py{sys.version.split()[0]}-r2"  # bump the suffix when the rootfs changes
)
LABEL = "evo-watchdog-deploy-test"
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "site-packages"}
APPLETS = ("sh", "mkdir", "chown", "chmod", "cat", "ls", "rm", "id", "env", "echo", "test", "[")
LIBDIR = "usr/lib/x86_64-linux-gnu"
PROXY_CONFIG = ROOT / "deploy" / "socket-proxy" / "haproxy.cfg"
DOCKER_SOCKET = "/var/run/docker.sock"
PRINTER = str(ROOT / "tests" / "containers" / "printer.py")


def _shared_libs(binaries: Iterable[Path]) -> set[str]:
    """Every library `ldd` resolves for these binaries (absolute paths as the loader names them)."""
    found: set[str] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        found.update(re.findall(r"(/\S+) \(0x", out))
    return found


def _reset_owner(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if "__pycache__" in info.name and ".opt-" in info.name:
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


class _Rootfs:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar

    def dir(self, name: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, mode
        self.tar.addfile(info)

    def link(self, name: str, target: str) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.SYMTYPE, target
        self.tar.addfile(info)

    def text(self, name: str, content: str) -> None:
        data = content.encode()
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        self.tar.addfile(info, io.BytesIO(data))

    def add(self, source: Path, name: str, skip: set[str] | None = None) -> None:
        def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            top = info.name[len(name) :].lstrip("/").split("/")[0]
            if skip and (top in skip or top.startswith("config-") or "_tkinter" in info.name):
                return None
            return _reset_owner(info)

        self.tar.add(str(source), arcname=name, filter=keep)


def write_rootfs(out: Path) -> None:
    """A merged-/usr root filesystem with the interpreter under /usr/local, as python:*-slim has it."""
    busybox = require_binary("busybox", "busybox-static")
    prefix = Path(sys.base_prefix)
    stdlib = prefix / "lib" / PY
    binaries = [prefix / "bin" / PY, *sorted((stdlib / "lib-dynload").glob("*.so"))]
    binaries = [b for b in binaries if not b.name.startswith("_tkinter")]
    with tarfile.open(out, "w") as tar:
        fs = _Rootfs(tar)
        for d in ("usr", "usr/bin", "usr/sbin", "usr/lib", LIBDIR, "usr/lib64", "usr/local", "usr/local/bin"):
            fs.dir(d)
        for d in ("usr/local/lib", "etc", "root", "var", "run"):
            fs.dir(d)
        fs.dir("tmp", 0o1777)
        for name in ("bin", "sbin", "lib", "lib64"):
            fs.link(name, f"usr/{name}")
        fs.text("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        fs.text("etc/group", "root:x:0:\nnogroup:x:65534:\n")
        fs.add(Path(busybox).resolve(), "usr/bin/busybox")
        for applet in APPLETS:
            fs.link(f"usr/bin/{applet}", "busybox")
        for lib in sorted(_shared_libs(binaries)):
            real = Path(lib).resolve()
            if real.is_relative_to(prefix):  # libpython: onto the default search path (RUNPATH is gone)
                fs.add(real, f"{LIBDIR}/{Path(lib).name}")
                continue
            fs.add(real, str(real).lstrip("/"))
            alias = Path(lib).parent.resolve() / Path(lib).name
            if alias != real:
                fs.link(str(alias).lstrip("/"), str(real))
        fs.add(prefix / "bin" / PY, f"usr/local/bin/{PY}")
        fs.link("usr/local/bin/python3", PY)
        fs.link("usr/local/bin/python", PY)
        fs.add(stdlib, f"usr/local/lib/{PY}", skip=STDLIB_SKIP)
        fs.dir(f"usr/local/lib/{PY}/site-packages")
        site = Path(pip.__file__).parent.parent  # the pip running these tests, and its dist-info only
        for part in [site / "pip", *site.glob("pip-*.dist-info")]:
            fs.add(part, f"usr/local/lib/{PY}/site-packages/{part.name}")


def python_base_image(client: docker.DockerClient) -> str:
    """The local base image, imported once and then reused by tag."""
    try:
        client.images.get(BASE_TAG)
    except docker.errors.ImageNotFound:
        with tempfile.TemporaryDirectory(prefix="evo-deploy-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            write_rootfs(rootfs)
            repository, tag = BASE_TAG.split(":")
            changes = ["ENV PATH=/usr/local/bin:/usr/bin", "ENV LANG=C.UTF-8", 'CMD ["python3"]']
            client.api.import_image_from_file(str(rootfs), repository=repository, tag=tag, changes=changes)
    return BASE_TAG


def context_files(root: Path = ROOT) -> list[str]:
    """The files `docker build .` would send from `root`, by the repository's own .dockerignore."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return sorted(p for p in exclude_paths(str(root), patterns) if (root / p).is_file())


def make_wheelhouse(dest: Path) -> Path:
    """Wheels of the project and its dependencies, made on the host (as the README tells users)."""
    with tempfile.TemporaryDirectory(prefix="evo-deploy-src-") as tmp:
        for rel in context_files():  # a copy: building must not write into the shared checkout
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, Path(tmp) / rel)
        made = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(dest), tmp],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert made.returncode == 0, f"pip wheel failed (it needs a package index):\n{made.stderr[-3000:]}"
    return dest


def build_context(wheelhouse: Path | None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in [*context_files(), "deploy/Dockerfile"]:
            tar.add(str(ROOT / rel), arcname=rel, filter=_reset_owner)
        if wheelhouse is not None:
            for wheel in sorted(wheelhouse.glob("*.whl")):
                tar.add(str(wheel), arcname=f"wheelhouse/{wheel.name}", filter=_reset_owner)
    return buffer.getvalue()


class BuildFailed(AssertionError):
    pass


def build_image(
    client: docker.DockerClient, tag: str, context: bytes, buildargs: dict[str, str]
) -> list[str]:
    """Build deploy/Dockerfile with no network (the classic builder, as docker-py drives it).

    Returns the ids of every image the build made (stages included), for `remove_images`."""
    made: list[str] = []
    log: list[str] = []
    stream = client.api.build(
        fileobj=io.BytesIO(context),
        custom_context=True,
        dockerfile="deploy/Dockerfile",
        tag=tag,
        buildargs=buildargs,
        network_mode="none",
        rm=True,
        forcerm=True,
        labels={LABEL: "1"},
        decode=True,
    )
    for item in stream:
        text = str(item.get("stream", ""))
        log.append(text)
        made += re.findall(r"^\s*---> ([0-9a-f]{12})\s*$", text, flags=re.M)
        if "error" in item:
            raise BuildFailed(f"build failed: {item['error']}\n{''.join(log)[-3000:]}")
    return made


def remove_images(client: docker.DockerClient, tag: str, made: Iterable[str]) -> None:
    """The built tag, then the untagged intermediate images of its build (the base keeps its tag)."""
    with contextlib.suppress(docker.errors.NotFound):
        client.images.remove(tag)
    for ref in reversed(list(made)):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):  # in use elsewhere: kept
            if not client.images.get(ref).tags:
                client.images.remove(ref)


def container_uid(container: Any) -> int:
    """The real uid of the container's main process, read from the host's /proc."""
    container.reload()
    status = Path(f"/proc/{container.attrs['State']['Pid']}/status").read_text()
    match = re.search(r"^Uid:\s+(\d+)", status, flags=re.M)
    assert match, status
    return int(match[1])


@contextlib.contextmanager
def socket_proxy(workdir: Path, timeout: float = 60.0) -> Iterator[str]:
    """A real haproxy with deploy/socket-proxy/haproxy.cfg on a free loopback port; yields its Docker URL."""
    haproxy = require_binary("haproxy", "haproxy")
    port = free_port()
    env = {**os.environ, "DOCKER_PROXY_BIND": f"127.0.0.1:{port}", "DOCKER_SOCKET": DOCKER_SOCKET}
    subprocess.run([haproxy, "-c", "-q", "-f", str(PROXY_CONFIG)], env=env, check=True, timeout=30)
    log = workdir / "haproxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen([haproxy, "-db", "-f", str(PROXY_CONFIG)], env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"haproxy exited: {log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"haproxy not listening: {log.read_text()}"
                time.sleep(0.1)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def log_printer(client: docker.DockerClient, scratch: Path) -> Iterator[str]:
    """A running container printing upstream-format log lines (tests/containers/printer.py); its name."""
    name = f"evo-watchdog-deploy-printer-{uuid.uuid4().hex[:8]}"
    dockerkit.run_python(client, name, [PRINTER, "--state", str(scratch / "seq")], scratch)
    try:
        yield name
    finally:
        dockerkit.remove(client, name)
