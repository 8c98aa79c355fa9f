"""Evolution webhook envelopes -> typed signals; anything else is refused with a stable reason."""

from __future__ import annotations

from typing import Any

import pytest

from watchdog.signals.webhook import (
    WebhookRejected,
    connection_seen,
    message_seen,
    normalise_event,
    parse_envelope,
)

ANA = "5511987600001@s.whatsapp.net"


def upsert(
    jid: str = ANA, *, from_me: bool = False, mtype: str = "conversation", source: str = "android"
) -> dict[str, Any]:
    return {
        "event": "messages.upsert",
        "instance": "loja",
        "data": {
            "key": {"remoteJid": jid, "fromMe": from_me, "id": "3EB0AA"},
            "pushName": "Ana",
            "message": {"conversation": "Oi"},
            "messageType": mtype,
            "messageTimestamp": 1729512039,
            "source": source,
        },
        "destination": "http://watchdog/webhook/evolution",
        "date_time": "2025-10-21T08:40:39.123Z",
        "sender": "5511900000001@s.whatsapp.net",
        "server_url": "http://evolution:8080",
        "apikey": "SECRET-INSTANCE-TOKEN",
    }


def test_inbound_text_and_media() -> None:
    text = message_seen(parse_envelope(upsert()))
    media = message_seen(parse_envelope(upsert(mtype="imageMessage")))
    assert text is not None and (text.direction, text.kind, text.remote_jid) == ("inbound", "text", ANA)
    assert media is not None and media.kind == "media"


@pytest.mark.parametrize(
    ("mtype", "kind", "awaits_reply"),
    [
        ("conversation", "text", True),
        ("extendedTextMessage", "text", True),
        ("imageMessage", "media", True),
        ("audioMessage", "media", True),
        ("videoMessage", "media", True),
        ("documentWithCaptionMessage", "media", True),
        ("stickerMessage", "media", False),  # the bot's content is undefined: it never answers
        ("ptvMessage", "media", False),  # a video note: the same
    ],
)
def test_message_kinds_and_which_inbound_the_bot_answers(mtype: str, kind: str, awaits_reply: bool) -> None:
    seen = message_seen(parse_envelope(upsert(mtype=mtype)))
    assert seen is not None and (seen.direction, seen.kind, seen.awaits_reply) == (
        "inbound",
        kind,
        awaits_reply,
    )


def test_envelope_never_carries_the_apikey() -> None:
    envelope = parse_envelope(upsert())
    assert "SECRET-INSTANCE-TOKEN" not in repr(envelope)


@pytest.mark.parametrize(
    ("jid", "tracked"),
    [
        ("120363025246125486@g.us", False),
        ("status@broadcast", False),
        ("120363164823311045@newsletter", False),
        ("123456789012345@lid", True),
        (ANA, True),
    ],
)
def test_groups_broadcasts_newsletters_and_status_are_ignored_by_default(jid: str, tracked: bool) -> None:
    assert (message_seen(parse_envelope(upsert(jid))) is not None) is tracked


def test_groups_can_be_tracked_but_status_never() -> None:
    assert message_seen(parse_envelope(upsert("120363025246125486@g.us")), include_groups=True) is not None
    assert message_seen(parse_envelope(upsert("status@broadcast")), include_groups=True) is None


def test_replies_bot_and_human() -> None:
    sent = upsert(from_me=True)
    sent["event"] = "send.message"
    bot = message_seen(parse_envelope(sent))
    human = message_seen(parse_envelope(upsert(from_me=True, source="ios")))
    echo = message_seen(parse_envelope(upsert(from_me=True, source="unknown")))
    assert bot is not None and bot.direction == "bot"
    assert human is not None and human.direction == "human"
    assert echo is not None and echo.direction == "bot"


def test_reactions_are_not_inbound() -> None:
    assert message_seen(parse_envelope(upsert(mtype="reactionMessage"))) is None


def test_connection_update() -> None:
    body = {"event": "connection.update", "instance": "loja", "data": {"instance": "loja", "state": "close"}}
    seen = connection_seen(parse_envelope(body))
    assert seen is not None and seen.state == "close"


def test_event_names_in_every_spelling() -> None:
    assert normalise_event("MESSAGES_UPSERT") == normalise_event("messages-upsert") == "messages.upsert"
    body = upsert()
    body["event"] = "MESSAGES_UPSERT"
    assert parse_envelope(body, path_event="messages-upsert").event == "messages.upsert"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "not_an_object"),
        ({"instance": "loja", "data": {}}, "no_event"),
        ({"event": "pizza.delivered", "instance": "loja", "data": {}}, "unknown_event"),
        ({"event": "messages.upsert", "data": {}}, "no_instance"),
        ({"event": "messages.upsert", "instance": "loja", "data": "x"}, "no_data"),
    ],
)
def test_malformed_envelopes_are_refused_with_a_reason(body: Any, reason: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse_envelope(body)
    assert caught.value.reason == reason


def test_path_event_must_match() -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse_envelope(upsert(), path_event="send-message")
    assert caught.value.reason == "event_mismatch"


def test_message_without_key_is_refused() -> None:
    body = upsert()
    del body["data"]["key"]
    with pytest.raises(WebhookRejected) as caught:
        message_seen(parse_envelope(body))
    assert caught.value.reason == "no_message_key"
