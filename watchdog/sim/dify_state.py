"""The Dify emulator's state: its apps by API key, conversations per app and end user, running tasks,
faults, and the log lines those faults leave (facts in ../shared/upstream/README.md, "Dify")."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from watchdog.sim.dify_apps import DifyApp, is_media
from watchdog.sim.dify_wire import DifyError, not_found, validation_error
from watchdog.sim.faults import FaultSet, FaultType
from watchdog.sim.logfmt import SimLog

DIFY_FAULTS = [
    FaultType(
        "hang",
        "requests never answer (scope chat: chat/completion only; all: every route)",
        {"scope": "chat"},
    ),
    FaultType(
        "forget_after",
        "a conversation is forgotten after this many answers (404 afterwards)",
        {"messages": 3},
    ),
    FaultType(
        "error_500", "answers 500 internal_server_error (scope chat or all; /health never)", {"scope": "chat"}
    ),
    FaultType("truncate_stream", "streams stop after the first message event, without message_end"),
    FaultType(
        "error_event",
        "the model fails: chat apps stream an error event (blocking: 400 completion_request_error); "
        "chatflows fail the run (error invalid_param 'Run failed: ...')",
    ),
    FaultType("slow", "answers late (kind all|text|media)", {"seconds": 2.0, "kind": "all"}),
    FaultType("worker_timeout", "gunicorn worker wedged: every route hangs, WORKER TIMEOUT logged"),
]
MODEL_ERROR = "[openai] Error: simulated provider failure"


@dataclass
class Conversation:
    id: str
    user: str
    created_at: int
    updated_at: int
    answers: int = 0
    forgotten: bool = False
    app: str = ""  # the API key's app; a conversation is not visible from another app
    touched: float = 0.0  # updated_at to the microsecond, as Postgres keeps it (the listing's order)
    name: str = "New conversation"
    inputs: dict[str, Any] = field(default_factory=dict)


def restarted() -> DifyError:
    """What a request that hung sees when Dify is restarted under it (nginx answers for the dead upstream)."""
    return DifyError(502, "bad_gateway", "upstream connection closed: the api worker restarted")


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class DifySim:
    def __init__(
        self,
        *,
        api_keys: Sequence[str] = (),
        version: str = "1.12.1",
        mode: str = "chat",
        apps: Mapping[str, DifyApp] | None = None,
        faults: FaultSet | None = None,
        log: SimLog | None = None,
        ping_seconds: float = 10.0,
        state_file: Path | None = None,
        new_conversation_seconds: float = 0.05,
        turn_seconds: float = 0.005,
    ) -> None:
        """`api_keys` all open one app of `mode`; `apps` maps further keys to apps of their own.

        First-event latency keeps upstream's order (a new conversation ~1 s, a later turn ~0.1 s), 20x faster.
        """
        self.apps: dict[str, DifyApp] = {key: DifyApp(mode=mode) for key in api_keys}
        self.apps.update(apps or {})
        self.version = version
        self.mode = mode
        self.faults = faults or FaultSet(DIFY_FAULTS)
        self.log = log or SimLog()
        self.ping_seconds = ping_seconds
        self.state_file = state_file
        self.new_conversation_seconds = new_conversation_seconds
        self.turn_seconds = turn_seconds
        self.conversations: dict[str, Conversation] = {}
        self.stops: dict[str, tuple[str, asyncio.Event]] = {}  # task id -> (end user, stop flag)
        self.requests = 0
        self._worker_timeout_logged = False

    @property
    def api_keys(self) -> tuple[str, ...]:
        return tuple(self.apps)

    # ---- checks shared by routes -------------------------------------------------------------

    def authorize(self, header: str) -> tuple[str, DifyApp]:
        """The three 401s of `validate_and_get_api_token` (controllers/service_api/wraps.py), in order."""
        if " " not in header:
            message = "Authorization header must be provided and start with 'Bearer'"
            raise DifyError(401, "unauthorized", message)
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer":
            raise DifyError(401, "unauthorized", "Authorization scheme must be 'Bearer'")
        app = self.apps.get(token)
        if app is None:
            raise DifyError(401, "unauthorized", "Access token is invalid")
        return token, app

    async def before(self, *, chat: bool, can_fail: bool = True) -> None:
        """Faults that act before any work: hangs, wedged workers, 500s (never on /health)."""
        if "worker_timeout" in self.faults:
            if not self._worker_timeout_logged:
                self._worker_timeout_logged = True
                self.log.gunicorn("CRITICAL", "WORKER TIMEOUT (pid:35)")
                self.log.gunicorn("ERROR", "Worker (pid:35) was sent SIGKILL! Perhaps out of memory?")
                self.log.gunicorn("INFO", "Booting worker with pid: 39")
            await self.faults.hold_while("worker_timeout")
            raise restarted()
        hang = self.faults.get("hang")
        if hang and (chat or hang["scope"] == "all"):
            await self.faults.hold_while("hang")
            raise restarted()
        failing = self.faults.get("error_500")
        if failing and can_fail and (chat or failing["scope"] == "all"):
            # controllers/service_api/app/completion.py:241 `logger.exception("internal server error.")`
            self.log.dify(
                "ERROR", "internal server error.", where="completion.py:241", trace_id=secrets.token_hex(16)
            )
            self.log.raw("Traceback (most recent call last):")
            self.log.raw('  File "/app/api/controllers/service_api/app/completion.py", line 210, in post')
            self.log.raw("RuntimeError: simulated failure")
            raise DifyError(500, "internal_server_error", "Internal Server Error, please contact support.")

    async def delay(self, query: str, files: Any, *, fresh: bool) -> None:
        """Time to the first event: upstream's (scaled) latency, plus the `slow` fault when it applies."""
        await asyncio.sleep(self.new_conversation_seconds if fresh else self.turn_seconds)
        slow = self.faults.get("slow")
        if not slow:
            return
        if slow["kind"] == "all" or (slow["kind"] == "media") == is_media(query, files):
            await asyncio.sleep(float(slow["seconds"]))

    # ---- conversations -------------------------------------------------------------------------

    def conversation_for(self, body: dict[str, Any], user: str, key: str) -> tuple[Conversation, bool]:
        """The conversation to continue, or a new one (then True): `ConversationService.get_conversation`;
        a new one is named after its first query (message_based_app_generator.py:156)."""
        now = int(time.time())
        conversation_id = body.get("conversation_id")
        if isinstance(conversation_id, str):
            conversation_id = conversation_id.strip()
        if conversation_id in (None, ""):
            query = body.get("query") or "New conversation"
            name = query[:20] + "…" if len(query) > 20 else query
            fresh = Conversation(str(uuid.uuid4()), user, now, now, app=key, touched=time.time(), name=name)
            fresh.inputs = dict(body.get("inputs") or {})
            self.conversations[fresh.id] = fresh
            self.persist()
            return fresh, True
        if not isinstance(conversation_id, str) or not is_uuid(conversation_id):
            message = "Value error, conversation_id must be a valid UUID"
            raise validation_error(
                "ChatRequestPayload", "conversation_id", "value_error", message, conversation_id
            )
        conv = self.conversations.get(conversation_id)
        if conv is None or conv.forgotten or conv.user != user or conv.app not in ("", key):
            raise not_found("Conversation Not Exists.", "/v1/chat-messages")
        return conv, False

    def answered(self, conv: Conversation, *, model: bool = True) -> None:
        """A turn answered; a model app's call to the plugin daemon leaves a line (chatflows call none)."""
        conv.answers += 1
        conv.touched = time.time()
        conv.updated_at = int(conv.touched)
        limit = self.faults.get("forget_after")
        if limit and conv.answers >= int(limit["messages"]):
            conv.forgotten = True
        self.persist()
        if not model:
            return
        self.log.dify(
            "INFO",
            'HTTP Request: POST http://plugin_daemon:5002/plugin/9a1b/dispatch/llm/invoke "HTTP/1.1 200 OK"',
            thread="Dummy-2",
            where="_client.py:1025",
            trace_id=secrets.token_hex(16),
        )

    def delete(self, conversation_id: str, app_name: str) -> None:
        """`ConversationService.delete` filters on the id alone: any app's or user's, or none (still 204)."""
        message = (
            f"Initiating conversation deletion for app_name {app_name}, conversation_id: {conversation_id}"
        )
        self.log.dify("INFO", message, where="conversation_service.py:184", trace_id=secrets.token_hex(16))
        if self.conversations.pop(conversation_id, None) is not None:
            self.persist()

    def persist(self) -> None:
        """Conversations live in Dify's Postgres: with a state file they survive a restart, as upstream."""
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(c) for c in self.conversations.values()]))
        os.replace(tmp, self.state_file)

    def load(self) -> None:
        if self.state_file is not None and self.state_file.exists():
            for row in json.loads(self.state_file.read_text()):
                self.conversations[row["id"]] = Conversation(**row)

    def visible(self, user: str, key: str) -> list[Conversation]:
        rows = [
            c
            for c in self.conversations.values()
            if c.user == user and not c.forgotten and c.app in ("", key)
        ]
        return sorted(rows, key=lambda c: (c.updated_at, c.touched), reverse=True)  # sort_by -updated_at
