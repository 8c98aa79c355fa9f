"""The documentation: the mkdocs site builds with --strict (every page in the nav, no broken link or
anchor), the settings page and .env.example are what the generator makes of watchdog/config/table.py, and the
README stays short, starts with the two commands and has no link that leads nowhere."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path
from types import ModuleType

from prometheus_client import CollectorRegistry

from tests.infra import missing
from watchdog.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_LIMIT = 15_000  # bytes: "under 15 KB"
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
CODE = re.compile(r"`[^`\n]*`")
FENCE = re.compile(r"^\s*(```|~~~)")


def mkdocs() -> str:
    """The mkdocs of .venv/docs (scripts/setup.sh), kept apart from .venv: mkdocs needs PyPI's `watchdog`
    package, which would shadow this project's."""
    path = ROOT / ".venv" / "docs" / "bin" / "mkdocs"
    if not path.exists():
        missing(f"{path} not found: run scripts/setup.sh")
    return str(path)


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [mkdocs(), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def settings_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_docs", ROOT / "scripts" / "settings_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prose(text: str) -> str:
    """Markdown without its fenced code blocks."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def github_anchors(text: str) -> set[str]:
    """The heading anchors GitHub makes: lower case, punctuation dropped, spaces as hyphens, -1, -2... on
    repeats."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose(text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


def broken_links(doc: Path, root: Path = ROOT) -> tuple[int, list[str]]:
    """How many relative links (images included) `doc` has, and those whose file (in `root`) or anchor
    does not exist."""
    targets = [m["target"] for m in LINK.finditer(CODE.sub("", prose(doc.read_text())))]
    relative = [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]
    broken = []
    for target in relative:
        path_part, _, anchor = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        if not path.exists() or not path.is_relative_to(root):
            broken.append(target)
            continue
        if anchor and (path.suffix != ".md" or anchor not in github_anchors(path.read_text())):
            broken.append(target)
    return len(relative), broken


def test_the_site_builds_with_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    completed = build(ROOT / "mkdocs.yml", site)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "WARNING" not in completed.stderr
    settings = (site / "settings" / "index.html").read_text()
    assert "WATCHDOG_STALL_SECONDS" in settings and "(true|false)" in settings  # the escaped pipe
    status_page = (site / "status-page" / "index.html").read_text()
    assert 'src="../img/status-incident.png"' in status_page
    assert (site / "img" / "status-recovered.png").read_bytes().startswith(b"\x89PNG")
    reliability = (site / "reliability" / "index.html").read_text()
    assert "https://github.com/evolution-watchdog/evolution-watchdog/blob/main/tests/" in reliability


def test_a_link_to_a_missing_repository_file_fails_the_strict_build(tmp_path: Path) -> None:
    """The hook turns links out of docs/ into repository links, and a missing target into a warning."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "present.py").write_text("")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nrepo_url: https://example.org/r\ntheme:\n  name: material\n"
        f"hooks:\n  - {ROOT / 'scripts' / 'mkdocs_hooks.py'}\n"
    )
    index = tmp_path / "docs" / "index.md"
    index.write_text("# T\n\n[present](../present.py#L1)\n\n```\n[in code](../absent.py)\n```\n")
    good = build(tmp_path / "mkdocs.yml", tmp_path / "good")
    assert good.returncode == 0, good.stderr[-2000:]
    assert (
        'href="https://example.org/r/blob/main/present.py#L1"'
        in (tmp_path / "good" / "index.html").read_text()
    )

    index.write_text(index.read_text() + "\n[absent](../absent.py)\n")
    bad = build(tmp_path / "mkdocs.yml", tmp_path / "bad")
    assert bad.returncode != 0
    assert "links ../absent.py, which is not a file of this repository" in bad.stderr


def test_the_settings_page_and_env_example_are_generated_from_the_code() -> None:
    outputs = settings_docs().outputs()
    assert set(outputs) == {ROOT / "docs" / "settings.md", ROOT / ".env.example"}
    stale = [str(path.relative_to(ROOT)) for path, text in outputs.items() if path.read_text() != text]
    assert stale == [], "out of date: run .venv/bin/python scripts/settings_docs.py"


def test_every_metric_the_watchdog_defines_is_in_the_metrics_page() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    defined = {m.name + ("_total" if m.type == "counter" else "") for m in registry.collect()}
    page = (ROOT / "docs" / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(watchdog_[a-z0-9_]+)`", page, re.M))
    assert len(defined) >= 20
    assert sorted(defined - documented) == []


def test_the_readme_is_short_and_starts_with_the_demo_then_the_test_command() -> None:
    text = README.read_text()
    assert len(text.encode()) <= README_LIMIT
    first_block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block[1].splitlines()]
    assert commands[:2] == ["./scripts/demo.sh", "./scripts/test.sh"]  # .ci/run and the demo test rely on it


def test_every_readme_link_resolves() -> None:
    count, broken = broken_links(README)
    assert count >= 20
    assert broken == []


def test_the_link_check_catches_a_missing_file_or_anchor(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# R\n\n## Safety defaults\n\n## Safety defaults\n")
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "page.md"
    doc.write_text(
        "# A `code` heading: here\n\n[ok](#a-code-heading-here) [ok](../README.md#safety-defaults-1) "
        "[bad](#nowhere) [bad](../README.md#nowhere) [bad](../no-such-file.md) `[not](a-link.md)`\n"
        "![bad](img/none.png)\n\n```\n[not](in-a-block.md)\n```\n"
    )
    assert broken_links(doc, tmp_path) == (
        6,
        ["#nowhere", "../README.md#nowhere", "../no-such-file.md", "img/none.png"],
    )
