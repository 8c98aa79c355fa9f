"""The dependency audit's PyPI bridge: real pip-audit runs against a loopback stand-in for PyPI's JSON API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
BRIDGE = Path(__file__).resolve().parents[2] / "scripts" / "pip_audit_pypi.py"

PROJECTS: dict[str, dict[str, Any]] = {
    "clean-pkg": {"info": {"version": "2.0"}, "vulnerabilities": []},
    "vulnerable-pkg": {
        "info": {"version": "1.0"},
        "vulnerabilities": [
            {
                "id": "GHSA-test-0001",
                "aliases": ["CVE-2099-0001", "PYSEC-2099-1"],
                "details": "A made-up flaw\nover two lines.",
                "summary": None,
                "fixed_in": ["1.1"],
                "link": "https://osv.dev/vulnerability/GHSA-test-0001",
                "withdrawn": None,
            },
            {
                "id": "PYSEC-2099-2",
                "aliases": [],
                "details": "Withdrawn: never mind.",
                "fixed_in": [],
                "withdrawn": "2099-01-02T00:00:00Z",
            },
        ],
    },
}


class FakePyPI(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        name = self.path.removeprefix("/pypi/").removesuffix("/json")
        project = PROJECTS.get(name)
        body = json.dumps(project or {"message": "Not Found"}).encode()
        self.send_response(200 if project else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pypi_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePyPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def audit(
    pypi_url: str, tmp_path: Path, *requirements: str, extra: tuple[str, ...] = ()
) -> tuple[int, Any, str]:
    """pip-audit through the bridge on pinned requirements: (exit code, JSON report or None, stderr)."""
    (tmp_path / "requirements.txt").write_text("".join(f"{line}\n" for line in requirements))
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    args = ["-r", str(tmp_path / "requirements.txt"), "--no-deps", "--disable-pip", "--strict", "-f", "json"]
    args += ["--progress-spinner=off", f"--cache-dir={tmp_path / 'cache'}", f"--output={report}"]
    done = subprocess.run(
        [sys.executable, str(BRIDGE), "--pypi-url", pypi_url, *args, *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(report.read_text()) if report.exists() else None, done.stderr


def test_latest_releases_without_advisories_pass(pypi_url: str, tmp_path: Path) -> None:
    code, report, _ = audit(pypi_url, tmp_path, "clean-pkg==2.0")
    assert code == 0
    assert [(d["name"], d["vulns"]) for d in report["dependencies"]] == [("clean-pkg", [])]


def test_an_advisory_fails_the_audit_with_its_ids_and_fix_and_withdrawn_ones_are_left_out(
    pypi_url: str, tmp_path: Path
) -> None:
    code, report, _ = audit(pypi_url, tmp_path, "clean-pkg==2.0", "vulnerable-pkg==1.0")
    vulns = {d["name"]: d["vulns"] for d in report["dependencies"]}
    assert code == 1
    assert vulns["clean-pkg"] == []
    [found] = vulns["vulnerable-pkg"]
    assert found["id"] == "PYSEC-2099-1"  # pip-audit's own preference among the aliases
    assert set(found["aliases"]) == {"GHSA-test-0001", "CVE-2099-0001"}
    assert found["fix_versions"] == ["1.1"]
    assert found["description"] == "A made-up flaw over two lines."


def test_ignoring_a_vulnerability_by_an_alias_is_pip_audits_own(pypi_url: str, tmp_path: Path) -> None:
    code, _, _ = audit(pypi_url, tmp_path, "vulnerable-pkg==1.0", extra=("--ignore-vuln", "CVE-2099-0001"))
    assert code == 0


def test_an_older_release_cannot_be_audited_and_fails_saying_why(pypi_url: str, tmp_path: Path) -> None:
    code, _, stderr = audit(pypi_url, tmp_path, "clean-pkg==1.5")
    assert code != 0
    assert "cannot audit clean-pkg 1.5: PyPI lists advisories only for its latest release (2.0)" in stderr


def test_a_package_pypi_does_not_know_has_no_advisories_as_with_osv(pypi_url: str, tmp_path: Path) -> None:
    code, report, stderr = audit(pypi_url, tmp_path, "in-house-pkg==0.1")
    assert code == 0 and report["dependencies"][0]["vulns"] == []
    assert "in-house-pkg is not on PyPI" in stderr


def test_a_release_held_back_on_purpose_is_reported_as_not_audited(pypi_url: str, tmp_path: Path) -> None:
    code, report, stderr = audit(pypi_url, tmp_path, "clean-pkg==1.5", extra=("--held-back", "Clean_Pkg"))
    assert code == 0 and report["dependencies"][0]["vulns"] == []
    assert "NOT AUDITED: clean-pkg 1.5 (latest 2.0), held back on purpose" in stderr
