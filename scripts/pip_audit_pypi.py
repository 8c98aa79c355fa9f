#!/usr/bin/env python3
"""Run pip-audit against PyPI's own advisories, for machines that reach PyPI but not api.osv.dev.

PyPI's JSON API (`/pypi/NAME/json`) lists the advisories of a project's *latest* release, taken from
the same PyPA/OSV database pip-audit reads. This serves OSV's `/v1/query` on loopback from that data
and runs pip-audit with `--osv-url` pointing at it, so the collection, matching, `--ignore-vuln`,
output and exit code are pip-audit's own. The bridge knows nothing about older releases, so it refuses
them (HTTP 409 and one line on stderr): an audit it cannot do fails, it never passes silently, unless
the package is named with --held-back (kept below its latest release on purpose), which is reported as
NOT AUDITED on every run.

    pip_audit_pypi.py [--pypi-url URL] [--held-back NAME]... PIP_AUDIT_ARGS...
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

FETCH_TIMEOUT_SECONDS = 30.0


class Refusal(Exception):
    """A query this bridge cannot answer truthfully; `status` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def osv_vuln(name: str, advisory: dict[str, Any]) -> dict[str, Any]:
    """One entry of PyPI's `vulnerabilities` list in OSV's schema (the fields pip-audit reads)."""
    events: list[dict[str, str]] = [{"introduced": "0"}]
    events += [{"fixed": version} for version in advisory.get("fixed_in") or []]
    vuln: dict[str, Any] = {
        "schema_version": "1.0.0",
        "id": advisory["id"],
        "aliases": advisory.get("aliases") or [],
        "details": advisory.get("details") or "",
        "affected": [
            {
                "package": {"name": name, "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
    }
    if advisory.get("summary"):
        vuln["summary"] = advisory["summary"]
    if advisory.get("withdrawn"):
        vuln["withdrawn"] = advisory["withdrawn"]
    if advisory.get("link"):
        vuln["references"] = [{"type": "ADVISORY", "url": advisory["link"]}]
    return vuln


class PyPIAdvisories:
    """Answers OSV queries from PyPI's project JSON, for the latest release only."""

    def __init__(self, pypi_url: str, *, held_back: frozenset[str] = frozenset()) -> None:
        self.pypi_url = pypi_url.rstrip("/")
        self.held_back = frozenset(canonicalize_name(name) for name in held_back)

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        package = body.get("package") or {}
        raw_name, raw_version = package.get("name"), body.get("version")
        if (
            package.get("ecosystem") != "PyPI"
            or not isinstance(raw_name, str)
            or not isinstance(raw_version, str)
        ):
            raise Refusal(400, f"expected a PyPI package name and version, got {json.dumps(body)[:200]}")
        name = canonicalize_name(raw_name)
        project = fetch_json(f"{self.pypi_url}/pypi/{urllib.parse.quote(name)}/json")
        if project is None:  # as OSV answers for a package it has no record of (this project itself)
            print(f"pip-audit-pypi: {name} is not on PyPI: no advisories", file=sys.stderr, flush=True)
            return {}
        latest = str(project.get("info", {}).get("version", ""))
        try:
            is_latest = Version(raw_version) == Version(latest)
        except InvalidVersion:
            is_latest = raw_version == latest
        if not is_latest:
            if name in self.held_back:
                print(
                    f"pip-audit-pypi: NOT AUDITED: {name} {raw_version} (latest {latest}),"
                    " held back on purpose",
                    file=sys.stderr,
                    flush=True,
                )
                return {}
            raise Refusal(
                409,
                f"cannot audit {name} {raw_version}: PyPI lists advisories only for its latest release"
                f" ({latest or 'unknown'}); upgrade it, or run pip-audit where api.osv.dev is reachable",
            )
        vulns = [osv_vuln(name, advisory) for advisory in project.get("vulnerabilities") or []]
        return {"vulns": vulns} if vulns else {}


def fetch_json(url: str) -> dict[str, Any] | None:
    """The JSON object at `url`, or None when PyPI has no such project."""
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            document = json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise Refusal(502, f"{url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Refusal(502, f"{url}: {exc}") from exc
    if not isinstance(document, dict):
        raise Refusal(502, f"{url}: not a JSON object")
    return document


def serve(advisories: PyPIAdvisories) -> ThreadingHTTPServer:
    """Start the OSV endpoint on a free loopback port, in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                if self.path != "/v1/query":
                    raise Refusal(404, f"no such endpoint: {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                answer, status = advisories.query(body if isinstance(body, dict) else {}), 200
            except Refusal as refusal:
                print(f"pip-audit-pypi: {refusal}", file=sys.stderr, flush=True)
                answer, status = {"error": str(refusal)}, refusal.status
            except ValueError as exc:
                answer, status = {"error": f"bad query: {exc}"}, 400
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="pip-audit-pypi", daemon=True).start()
    return server


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--pypi-url", default="https://pypi.org", help="where /pypi/NAME/json is served")
    parser.add_argument(
        "--held-back",
        action="append",
        default=[],
        metavar="NAME",
        help="a package kept below its latest release on purpose: reported as not audited, not failed",
    )
    options, pip_audit_args = parser.parse_known_args(argv)
    server = serve(PyPIAdvisories(options.pypi_url, held_back=frozenset(options.held_back)))
    try:
        osv_url = f"http://127.0.0.1:{server.server_address[1]}/v1/query"
        command = [sys.executable, "-m", "pip_audit", *pip_audit_args, "--vulnerability-service", "osv"]
        return subprocess.call([*command, "--osv-url", osv_url])
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
