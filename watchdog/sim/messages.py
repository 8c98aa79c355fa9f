"""Message payloads shaped like Evolution 2.3's webhooks, and the query text it sends Dify for each kind."""

from __future__ import annotations

import secrets
import time
from typing import Any, Protocol

MEDIA_KINDS = ("image", "audio", "video", "document", "sticker", "ptv")  # ptv: a video note
KINDS = ("text", *MEDIA_KINDS)
# Kinds whose caption, when given, is part of the message (and of what the bot is sent).
CAPTIONED = ("image", "video", "document")

_MEDIA_FIELDS: dict[str, dict[str, Any]] = {
    "image": {"mimetype": "image/jpeg", "fileLength": "48213", "height": 1280, "width": 960},
    "audio": {"mimetype": "audio/ogg; codecs=opus", "seconds": 4, "ptt": True},
    "video": {"mimetype": "video/mp4", "seconds": 9},
    "document": {"mimetype": "application/pdf", "fileName": "pedido.pdf", "pageCount": 1},
    "sticker": {"mimetype": "image/webp", "isAnimated": False},
    "ptv": {"mimetype": "video/mp4", "seconds": 6},
}


class _InstanceLike(Protocol):
    id: str


def new_message_id() -> str:
    return "3EB0" + secrets.token_hex(8).upper()


def message_type(kind: str) -> str:
    return "conversation" if kind == "text" else f"{kind}Message"


def message_data(
    inst: _InstanceLike,
    remote_jid: str,
    msg_id: str,
    *,
    kind: str,
    text: str,
    push_name: str = "",
    from_me: bool = False,
) -> dict[str, Any]:
    """`messages.upsert` data for an inbound (or phone-typed, from_me) message."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}; known: {', '.join(KINDS)}")
    if kind == "text":
        message: dict[str, Any] = {"conversation": text}
    else:
        media = {"url": f"https://mmg.whatsapp.net/v/t62.7118-24/{msg_id}.enc", **_MEDIA_FIELDS[kind]}
        if text and kind in CAPTIONED:
            media["caption"] = text
        message = {message_type(kind): media}
    return {
        "key": {"remoteJid": remote_jid, "fromMe": from_me, "id": msg_id},
        "pushName": push_name or ("Você" if from_me else "Cliente"),
        "status": "DELIVERY_ACK" if not from_me else "SERVER_ACK",
        "message": message,
        "contextInfo": {},
        "messageType": message_type(kind),
        "messageTimestamp": int(time.time()),
        "instanceId": inst.id,
        "source": "android",
    }


def reply_data(inst: _InstanceLike, remote_jid: str, msg_id: str, text: str) -> dict[str, Any]:
    """`send.message` data: what a bot or API reply looks like (fromMe, pushName "Você", PENDING)."""
    return {
        "key": {"remoteJid": remote_jid, "fromMe": True, "id": msg_id},
        "pushName": "Você",
        "status": "PENDING",
        "message": {"conversation": text},
        "contextInfo": {},
        "messageType": "conversation",
        "messageTimestamp": int(time.time()),
        "instanceId": inst.id,
        "source": "unknown",
    }


def bot_content(kind: str, text: str, msg_id: str) -> str | None:
    """What a chatbot is handed for a message (upstream src/utils/getConversationMessage.ts).

    Media is never uploaded: `imageMessage|<mediaId>|<caption>` and the like, the media id being the message
    id without S3. Stickers and video notes (`ptvMessage`) have no entry there: the content is undefined.
    """
    if kind == "text":
        return text
    if kind in ("sticker", "ptv"):
        return None
    if kind == "audio":
        return f"audioMessage|{msg_id}"  # speechToText only with OpenAI settings: the literal marker
    caption = f"|{text}" if text and kind in CAPTIONED else ""
    return f"{message_type(kind)}|{msg_id}{caption}"
