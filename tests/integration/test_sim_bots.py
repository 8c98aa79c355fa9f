"""The Evolution emulator's other integrations against their emulated backends: behaviours a stuck contact
depends on, as the cited Evolution 2.3.6 source has them (they need WhatsApp: the real server cannot)."""

from __future__ import annotations

import time

import pytest

from tests.integration.bot_stack import bot_stack
from tests.integration.stack import wait_until

pytestmark = pytest.mark.integration
ANA = "5511987600001@s.whatsapp.net"


def test_a_typebot_session_the_backend_lost_fails_every_message_until_expire_replaces_it() -> None:
    """typebot.service.ts: continueChat (:1000) has no try/catch, so a lost Typebot session leaves the row
    opened and awaitUser false (:905-914) with no reply; once idle more than `expire` whole minutes
    (`Math.floor(diff / 60000) > expire`, so 2 for expire 1) the next message starts a new session
    (:595-760)."""
    with bot_stack() as stack:
        stack.evolution.time_scale = 0.01  # a minute is 0.6 s here
        stack.backends.session_ttl = 0.2
        stack.add_bot("typebot", expire=1)
        stack.inbound(ANA, "Oi")
        wait_until(lambda: stack.replies[ANA] == 1, what="startChat's greeting")
        first = stack.session(ANA)
        wait_until(lambda: first.await_user, what="the input awaited")
        time.sleep(0.4)  # the backend forgot the session (ttl), Evolution's expire has not passed
        stack.inbound(ANA, "Alô?")
        wait_until(lambda: not first.await_user, what="the turn started")
        time.sleep(0.3)
        unanswered = stack.replies[ANA]
        time.sleep(1.3)  # two minutes idle, past expire: the next message replaces the session
        stack.inbound(ANA, "Tem alguém?")
        wait_until(lambda: stack.replies[ANA] == 2, what="a new session's greeting")
        second = stack.session(ANA)
    assert unanswered == 1 and first.status == "opened" and first.await_user is False
    assert second is not first and second.session_id != first.session_id and second.type == "typebot"
    assert stack.backends.calls["typebot"] == 3  # startChat, continueChat (404), startChat
    assert "404" in stack.log.getvalue()


def test_openai_answers_the_contact_with_its_error_after_the_sdk_retries() -> None:
    """openai.service.ts:574-581: a failed completion becomes the reply text; the SDK (core.js) tries 3
    times on a 500."""
    with bot_stack() as stack:
        stack.add_bot("openai")
        stack.fault("error_500", backend="openai")
        stack.inbound(ANA, "Oi")
        wait_until(lambda: stack.replies[ANA] == 1, timeout=15, what="the error reply")
        session = stack.session(ANA)
    assert stack.texts == [
        (ANA, "Sorry, there was an error: 500 The server had an error while processing your request.")
    ]
    assert stack.backends.calls["openai"] == 3
    assert session.status == "opened" and session.await_user is True  # answered, as far as Evolution knows


def test_openai_reopens_a_paused_session_and_drops_that_message() -> None:
    """openai.service.ts:162-175, where every other integration returns on paused."""
    with bot_stack() as stack:
        stack.add_bot("openai")
        stack.inbound(ANA, "Oi")
        wait_until(lambda: stack.replies[ANA] == 1, what="the first answer")
        stack.api("POST", "/openai/changeStatus/loja", remoteJid=ANA, status="paused")
        stack.inbound(ANA, "primeira")
        wait_until(lambda: stack.session(ANA).status == "opened", what="the session reopened")
        stack.inbound(ANA, "segunda")
        wait_until(lambda: stack.replies[ANA] == 2, what="the next answer")
    assert [text for _, text in stack.texts] == ["openai: Oi", "openai: segunda"]


def test_webhook_bots_send_what_their_services_send_and_forget_their_memory() -> None:
    """n8n sends its session id (the remoteJid, never replaced); the bot's memory loss restarts its count."""
    with bot_stack() as stack:
        stack.add_bot("n8n")
        stack.inbound(ANA, "um")
        wait_until(lambda: stack.replies[ANA] == 1, what="turn 1")
        stack.inbound(ANA, "dois")
        wait_until(lambda: stack.replies[ANA] == 2, what="turn 2")
        stack.fault("forget_sessions", backend="webhook")
        stack.inbound(ANA, "três")
        wait_until(lambda: stack.replies[ANA] == 3, what="turn 3")
    assert [text for _, text in stack.texts] == ["n8n (1): um", "n8n (2): dois", "n8n (1): três"]
    assert stack.session(ANA).session_id == ANA
