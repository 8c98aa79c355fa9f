"""Parse Evolution webhook envelopes into typed events. Pure; never keeps or returns the `apikey` field.

Inbound = `messages.upsert` with `fromMe=false` from a person (not a group, broadcast, newsletter or
status). A reply = `send.message`, or `messages.upsert` with `fromMe=true`: typed on a phone (source
android/ios/web/desktop) it is a human's; sent through the API (source unknown) it is the bot's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Every event name Evolution 2.x emits (reference: webhooks); anything else is not an Evolution envelope.
KNOWN_EVENTS = frozenset(
    {
        "application.startup",
        "instance.create",
        "instance.delete",
        "qrcode.updated",
        "connection.update",
        "status.instance",
        "messages.set",
        "messages.upsert",
        "messages.edited",
        "messages.update",
        "messages.delete",
        "send.message",
        "send.message.update",
        "contacts.set",
        "contacts.upsert",
        "contacts.update",
        "presence.update",
        "chats.set",
        "chats.upsert",
        "chats.update",
        "chats.delete",
        "groups.upsert",
        "groups.update",
        "group.update",
        "group-participants.update",
        "groups.participants.update",
        "call",
        "typebot.start",
        "typebot.change-status",
        "labels.edit",
        "labels.association",
        "remove.instance",
        "logout.instance",
        "errors",
    }
)
MEDIA_TYPES = frozenset(
    {
        "imageMessage",
        "audioMessage",
        "videoMessage",
        "documentMessage",
        "documentWithCaptionMessage",
        "stickerMessage",
        "ptvMessage",
    }
)
TEXT_TYPES = frozenset({"conversation", "extendedTextMessage"})
# Evolution's Dify bot never answers these: getConversationMessage (src/utils/getConversationMessage.ts) has
# no entry for them, so the content is undefined and the call throws before Dify is asked
# (base-chatbot.service.ts:141 `content.toLowerCase()`, dify.service.ts:52 `isAudioMessage(content)`).
# They are inbound (the processor delivered them), but no wait for a reply opens.
NO_BOT_REPLY_TYPES = frozenset({"stickerMessage", "ptvMessage"})
PHONE_SOURCES = frozenset({"android", "ios", "web", "desktop"})
NOT_A_PERSON = ("@g.us", "@broadcast", "@newsletter")


class WebhookRejected(ValueError):
    """The body is not an Evolution envelope; `reason` is a short stable label for the counter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Envelope:
    event: str  # dotted lower-case, e.g. messages.upsert
    instance: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class MessageSeen:
    """A message on one conversation: inbound from the customer, or a reply to them."""

    instance: str
    remote_jid: str
    message_id: str
    direction: str  # inbound | bot | human
    kind: str  # text | media
    awaits_reply: bool = True  # False for inbound the bot never answers (stickers, video notes)


@dataclass(frozen=True)
class ConnectionSeen:
    instance: str
    state: str


def normalise_event(name: str) -> str:
    """`MESSAGES_UPSERT`, `messages-upsert` and `messages.upsert` are the same event."""
    return name.strip().lower().replace("_", ".").replace("-", ".")


def parse_envelope(body: Any, *, path_event: str | None = None) -> Envelope:
    if not isinstance(body, dict):
        raise WebhookRejected("not_an_object", "the body must be a JSON object")
    raw_event = body.get("event")
    if not isinstance(raw_event, str) or not raw_event:
        raise WebhookRejected("no_event", "the envelope has no event name")
    event = normalise_event(raw_event)
    if event not in {normalise_event(e) for e in KNOWN_EVENTS}:
        raise WebhookRejected("unknown_event", f"{raw_event[:60]!r} is not an Evolution event")
    if path_event is not None and normalise_event(path_event) != event:
        raise WebhookRejected("event_mismatch", "the URL's event and the envelope's event differ")
    instance = body.get("instance")
    if not isinstance(instance, str) or not instance:
        raise WebhookRejected("no_instance", "the envelope has no instance name")
    data = body.get("data")
    if not isinstance(data, dict | list):
        raise WebhookRejected("no_data", "the envelope has no data object")
    return Envelope(event, instance, data if isinstance(data, dict) else {"items": data})


def message_seen(envelope: Envelope, *, include_groups: bool = False) -> MessageSeen | None:
    """The conversation signal in a messages.upsert / send.message envelope, or None if there is none."""
    if envelope.event not in ("messages.upsert", "send.message"):
        return None
    data = envelope.data
    key = data.get("key")
    if not isinstance(key, dict):
        raise WebhookRejected("no_message_key", f"{envelope.event} data has no key object")
    jid, message_id, from_me = key.get("remoteJid"), key.get("id"), key.get("fromMe")
    if not isinstance(jid, str) or not isinstance(message_id, str) or not isinstance(from_me, bool):
        raise WebhookRejected("bad_message_key", "key needs remoteJid, id and fromMe")
    if jid == "status@broadcast" or (not include_groups and jid.endswith(NOT_A_PERSON)):
        return None
    message_type = data.get("messageType")
    kind = "media" if message_type in MEDIA_TYPES else "text" if message_type in TEXT_TYPES else None
    if envelope.event == "send.message":
        direction = "bot"
    elif not from_me:
        if kind is None:  # reactions, edits, protocol messages: nothing for the bot to answer
            return None
        direction = "inbound"
    else:
        direction = "human" if data.get("source") in PHONE_SOURCES else "bot"
    awaits_reply = direction != "inbound" or message_type not in NO_BOT_REPLY_TYPES
    return MessageSeen(envelope.instance, jid, message_id, direction, kind or "text", awaits_reply)


def connection_seen(envelope: Envelope) -> ConnectionSeen | None:
    if envelope.event != "connection.update":
        return None
    state = envelope.data.get("state")
    return ConnectionSeen(envelope.instance, state) if isinstance(state, str) else None
