"""What `doctor` read from Evolution (and Dify), as plain values: the checks are pure functions of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from watchdog.clients.chatbots import BotSettings
from watchdog.clients.evolution import InstanceWebhook
from watchdog.model import Finding

# SessionView.conversation
NO_CONVERSATION = "none"  # sessionId is still the remoteJid: Dify never answered this session
KNOWN = "known"
UNKNOWN = "unknown"  # Dify no longer has it: 404 Conversation Not Exists. on every message
UNVERIFIED = "unverified"  # not looked up (another app's key, Dify not configured or not answering)


@dataclass(frozen=True)
class BotView:
    """A bot with its options as Evolution applies them (bot value, else its integration's settings)."""

    id: str
    enabled: bool
    bot_type: str
    expire: int | None
    keyword_finish: str | None
    stop_bot_from_me: bool | None
    key_held: bool  # the watchdog holds this bot's Dify key, so its conversations can be verified
    integration: str = "dify"  # watchdog/integrations.py
    keep_open: bool | None = None


@dataclass(frozen=True)
class SessionView:
    bot_id: str
    contact: str  # short hash (model.contact_id): the only name shown
    status: str  # opened | paused | closed
    conversation: str
    remote_jid: str = field(default="", repr=False)  # for the repair only; never shown
    integration: str = "dify"
    await_user: bool = True
    updated_at: float | None = None  # epoch seconds
    shared_with: tuple[str, ...] = ()  # other integrations holding this contact on the instance


@dataclass(frozen=True)
class InstanceView:
    name: str
    stored_status: str  # fetchInstances connectionStatus (persisted)
    live_state: str | None  # connectionState: open | connecting | close; None = in the DB, not loaded
    live_read: bool = True  # False: connectionState itself failed (see unread), live_state means nothing
    bots: tuple[BotView, ...] = ()
    sessions: tuple[SessionView, ...] = ()
    webhook: InstanceWebhook | None = None
    unread: tuple[str, ...] = ()  # what could not be read, and why ("dify bots: HTTP 500: ...")
    settings: Mapping[str, BotSettings] = field(default_factory=dict)  # integration -> its settings row
    off: tuple[str, ...] = ()  # integrations disabled (or not in this release) on this Evolution

    def bot(self, bot_id: str) -> BotView | None:
        return next((b for b in self.bots if b.id == bot_id), None)


@dataclass(frozen=True)
class Snapshot:
    version: str = ""
    whatsapp_web_version: str = ""
    instances: tuple[InstanceView, ...] = ()
    missing: tuple[str, ...] = ()  # in EVOLUTION_INSTANCES but not in Evolution
    # WATCHDOG_WEBHOOK_URL, where the webhook should point ("" = any */webhook/evolution); may carry ?token=
    webhook_url: str = field(default="", repr=False)
    dify_configured: bool = False  # DIFY_URL and DIFY_API_KEY are set
    unread: tuple[str, ...] = ()  # service-wide reads that failed (GET /)
    unreachable: Finding | None = None  # Evolution could not be read at all: nothing else is known
    taken_at: float | None = None  # epoch seconds, for session ages
    stall_seconds: float | None = None  # WATCHDOG_STALL_SECONDS: a busy turn older than this is stuck
