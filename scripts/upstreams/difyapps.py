"""Dify's first-time setup through the console API, then the apps imported, published and keyed
(the README's sequence: controllers/console/setup.py, auth/login.py, app/app_import.py, libs/token.py)."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .common import HarnessError

FAULT_PLACEHOLDER = "http://127.0.0.1:18083"  # midstream-fail.yml's HTTP Request node target


@dataclass(frozen=True)
class App:
    app_id: str
    key: str


class Console:
    """A logged-in console session: cookies plus the X-CSRF-Token header (its csrf_token cookie)."""

    def __init__(self, base_url: str, log: Path) -> None:
        self.client = httpx.Client(base_url=f"{base_url}/console/api", timeout=120)
        self.log = log
        self.email = "watchdog@example.com"
        self.password = f"Wd{secrets.token_hex(8)}9x"

    def _call(
        self, step: str, method: str, path: str, expect: tuple[int, ...], json: object = None
    ) -> dict[str, Any]:
        headers = {}
        csrf = self.client.cookies.get("csrf_token")
        if csrf:
            headers["X-CSRF-Token"] = csrf
        answer = self.client.request(method, path, headers=headers, json=json)
        with self.log.open("a") as out:
            out.write(f"{method} {path} -> {answer.status_code} {answer.text[:400]}\n")
        if answer.status_code not in expect:
            raise HarnessError(
                step, f"{method} {path} answered {answer.status_code}: {answer.text[:200]}", self.log
            )
        body: dict[str, Any] = answer.json() if answer.content else {}
        return body

    def setup_and_login(self) -> None:
        status = self._call("Dify setup", "GET", "/setup", (200,))
        if status.get("step") != "finished":
            body = {"email": self.email, "name": "watchdog", "password": self.password}
            self._call("Dify setup", "POST", "/setup", (201,), json=body)
        encoded = base64.b64encode(self.password.encode()).decode()
        login = {"email": self.email, "password": encoded, "remember_me": True}
        self._call("Dify login", "POST", "/login", (200,), json=login)
        if not self.client.cookies.get("csrf_token"):
            raise HarnessError("Dify login", "no csrf_token cookie in the login answer", self.log)

    def install(self, dsl: str, name: str) -> App:
        """Import (confirming a pending import), publish, and create a service API key."""
        step = f"Dify import {name}"
        result = self._call(
            step, "POST", "/apps/imports", (200, 202), json={"mode": "yaml-content", "yaml_content": dsl}
        )
        if result.get("status") == "pending":
            result = self._call(step, "POST", f"/apps/imports/{result['id']}/confirm", (200,))
        if result.get("status") not in ("completed", "completed-with-warnings") or not result.get("app_id"):
            raise HarnessError(step, f"import answered {result}", self.log)
        app_id = str(result["app_id"])
        self._call(f"Dify publish {name}", "POST", f"/apps/{app_id}/workflows/publish", (200, 201), json={})
        key = self._call(f"Dify API key {name}", "POST", f"/apps/{app_id}/api-keys", (200, 201))
        return App(app_id, str(key["token"]))


def fault_dsl(text: str, fault_url: str) -> str:
    """midstream-fail's HTTP Request node pointed at the harness's fault server."""
    if FAULT_PLACEHOLDER not in text:
        raise HarnessError("Dify import midstream-fail", f"{FAULT_PLACEHOLDER} not found in the DSL")
    return re.sub(re.escape(FAULT_PLACEHOLDER) + r"(?=/)", fault_url, text)


def install_apps(base_url: str, apps_dir: Path, fault_url: str, log: Path) -> tuple[Console, dict[str, App]]:
    console = Console(base_url, log)
    console.setup_and_login()
    installed: dict[str, App] = {}
    for name in ("echo-chat", "midstream-fail"):
        dsl = (apps_dir / f"{name}.yml").read_text()
        if name == "midstream-fail":
            dsl = fault_dsl(dsl, fault_url)
        installed[name] = console.install(dsl, name)
    return console, installed
