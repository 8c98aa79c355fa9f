"""Where an upstream's source comes from (the shipped archive, or EVOLUTION_SRC / DIFY_SRC), its cache
key, and how it is laid into a fresh build directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .common import HarnessError, sha256_file, shared_dir

SKIP_DIRS = {".git", "node_modules", "dist", ".venv", "__pycache__", "instances", "store"}


@dataclass(frozen=True)
class Source:
    """An archive (.tar.gz) or an extracted checkout, and the marker file that finds its root."""

    name: str
    path: Path
    marker: str

    def key(self) -> str:
        """sha256 of the archive, or of the checkout's git HEAD tree plus uncommitted changes."""
        if self.path.is_file():
            return sha256_file(self.path)
        if not self.path.is_dir():
            raise HarnessError(f"{self.name} source", f"{self.path} is neither an archive nor a directory")
        return _dir_key(self.root_of(self.path))

    def root_of(self, top: Path) -> Path:
        """The directory holding `marker` (the top, its only child, or an `api/` folder for Dify)."""
        for candidate in (top, *sorted(p for p in top.iterdir() if p.is_dir()), top / "api"):
            if (candidate / self.marker).is_file():
                return candidate
        raise HarnessError(f"{self.name} source", f"no {self.marker} in {top}")

    def lay_into(self, dest: Path) -> Path:
        """Extract or copy the source into `dest`; returns the source root inside it."""
        dest.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():
            try:
                with tarfile.open(self.path) as archive:
                    archive.extractall(dest, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise HarnessError(f"{self.name} extract", f"{self.path}: {exc}") from None
            return self.root_of(dest)
        root = self.root_of(self.path)
        target = dest / root.name
        shutil.copytree(root, target, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_DIRS))
        return target


def _dir_key(root: Path) -> str:
    digest = hashlib.sha256()
    git = ["git", "-C", str(root)]
    try:
        tree = subprocess.run([*git, "rev-parse", "HEAD^{tree}"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        tree = None
    if tree is not None and tree.returncode == 0:
        digest.update(b"git:" + tree.stdout.strip().encode())
        diff = subprocess.run([*git, "diff", "HEAD", "--", "."], capture_output=True, timeout=120)
        digest.update(diff.stdout)
        untracked = subprocess.run(
            [*git, "ls-files", "--others", "--exclude-standard", "--", "."], capture_output=True, timeout=60
        )
        for name in sorted(untracked.stdout.decode().splitlines()):
            file = root / name
            if file.is_file():
                digest.update(name.encode() + b"\0" + sha256_file(file).encode())
        return digest.hexdigest()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            file = Path(dirpath) / name
            if file.is_file():
                digest.update(str(file.relative_to(root)).encode() + b"\0" + sha256_file(file).encode())
    return digest.hexdigest()


def evolution_source() -> Source:
    given = os.environ.get("EVOLUTION_SRC")
    path = Path(given) if given else shared_dir() / "evolution-api-2.3.6-offline.tar.gz"
    return Source("Evolution", path.resolve(), "package.json")


def dify_source() -> Source:
    given = os.environ.get("DIFY_SRC")
    path = Path(given) if given else shared_dir() / "dify-api-1.12.1.tar.gz"
    return Source("Dify", path.resolve(), "gunicorn.conf.py")
