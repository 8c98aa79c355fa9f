"""Evolution emulator talking to Dify (emulated or a recording endpoint) the way upstream does."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Receiver
from tests.integration.stack import DIFY_KEY, running_stack, wait_until
from watchdog.serving import ThreadedServer
from watchdog.sim.runner import DifyOptions, EvolutionOptions, build_evolution

pytestmark = pytest.mark.integration

ANA = "5511987600001@s.whatsapp.net"
BIA = "5511987600002@s.whatsapp.net"


def replies(receiver: Receiver, jid: str) -> list[str]:
    return [
        body["data"]["message"]["conversation"]
        for _, _, body in receiver.posts
        if body.get("event") == "send.message" and body["data"]["key"]["remoteJid"] == jid
    ]


def test_dify_is_called_as_upstream_does(receiver: Receiver) -> None:
    """Bearer key, inputs, user = remoteJid, no conversation_id at first, image as base64 remote_url."""
    opts = EvolutionOptions(
        instances=("loja",), dify_url=receiver.url + "/v1", dify_api_key=DIFY_KEY, debounce_seconds=0
    )
    _, app = build_evolution(opts)
    with ThreadedServer(app) as evolution:
        httpx.post(evolution.url + "/_sim/inbound", json={"instance": "loja", "remoteJid": ANA, "text": "Oi"})
        httpx.post(
            evolution.url + "/_sim/inbound",
            json={"instance": "loja", "remoteJid": BIA, "kind": "image", "text": "foto"},
        )
        posts = receiver.wait_for(lambda posts: len(posts) >= 2)
    by_user = {body["user"]: (path, headers, body) for path, headers, body in posts}
    path, headers, text = by_user[ANA]
    assert path == "/v1/chat-messages"
    assert headers["authorization"] == f"Bearer {DIFY_KEY}"
    assert text["query"] == "Oi" and text["response_mode"] == "blocking"
    assert "conversation_id" not in text and "files" not in text
    assert set(text["inputs"]) == {"remoteJid", "pushName", "instanceName", "serverUrl", "apiKey"}
    assert text["inputs"]["remoteJid"] == ANA and text["inputs"]["instanceName"] == "loja"
    image = by_user[BIA][2]
    assert image["query"].startswith("imageMessage|3EB0") and image["query"].endswith("|foto")
    assert image["files"][0]["transfer_method"] == "remote_url"
    assert not image["files"][0]["url"].startswith("http")  # base64, not a URL: upstream's defect


def test_bot_reply_arrives_as_send_message_and_conversation_is_kept(receiver: Receiver) -> None:
    with running_stack(
        EvolutionOptions(instances=("loja",), debounce_seconds=0, webhook_url=receiver.url)
    ) as stack:
        stack.inbound(ANA, "Oi")
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 1)
        first = stack.session(ANA).session_id
        stack.inbound(ANA, "Tudo bem?")
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 2)
        assert stack.session(ANA).session_id == first != ANA  # the Dify conversation_id, kept
        assert stack.session(ANA).await_user is True
    assert all("Tudo bem?" in r or "Oi" in r for r in replies(receiver, ANA))
    upserts = [b for _, _, b in receiver.posts if b["event"] == "messages.upsert"]
    assert len(upserts) == 2 and all(b["data"]["key"]["fromMe"] is False for b in upserts)
    sent = [b for _, _, b in receiver.posts if b["event"] == "send.message"]
    assert all(b["data"]["key"]["fromMe"] is True and b["data"]["pushName"] == "Você" for b in sent)


def test_forgotten_conversation_fails_every_later_message_until_the_session_is_deleted(
    receiver: Receiver,
) -> None:
    opts = EvolutionOptions(instances=("loja",), debounce_seconds=0, webhook_url=receiver.url)
    with running_stack(opts, DifyOptions(faults=("forget_after:messages=1",))) as stack:
        stack.inbound(ANA, "Oi")
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 1)
        stack.inbound(ANA, "Alô?")
        stack.inbound(ANA, "Alguém?")
        wait_until(
            lambda: stack.log.getvalue().count("Conversation Not Exists.") >= 2, what="two 404s logged"
        )
        assert len(replies(receiver, ANA)) == 1
        stack.http.post(
            f"{stack.evolution_url}/dify/changeStatus/loja",
            json={"remoteJid": ANA, "status": "delete"},
            headers={"apikey": "stack-evolution-key"},
        ).raise_for_status()
        stack.inbound(ANA, "E agora?")
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 2)
    assert "[DifyService]" in stack.log.getvalue()


def test_media_wedge_silences_only_that_contact_until_deleted(receiver: Receiver) -> None:
    opts = EvolutionOptions(
        instances=("loja",), debounce_seconds=0, webhook_url=receiver.url, faults=("media_wedge",)
    )
    with running_stack(opts) as stack:
        stack.inbound(ANA, "foto", kind="image")
        stack.inbound(ANA, "Oi?")
        stack.inbound(BIA, "Oi")
        receiver.wait_for(lambda posts: len(replies(receiver, BIA)) == 1)
        session = stack.session(ANA)
        assert session.status == "opened" and session.await_user is False
        assert replies(receiver, ANA) == []
        stack.http.post(
            f"{stack.evolution_url}/dify/changeStatus/loja",
            json={"remoteJid": ANA, "status": "delete"},
            headers={"apikey": "stack-evolution-key"},
        ).raise_for_status()
        stack.inbound(ANA, "Oi de novo")
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 1)


def test_debounce_joins_a_burst_into_one_dify_call(receiver: Receiver) -> None:
    opts = EvolutionOptions(instances=("loja",), debounce_seconds=0.3, webhook_url=receiver.url)
    with running_stack(opts) as stack:
        for text in ("Oi", "tudo", "bem?"):
            stack.inbound(ANA, text)
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 1)
        assert stack.evolution.dify_calls == 1
    assert "Oi\ntudo\nbem?" in replies(receiver, ANA)[0]


def test_agent_bot_streams_and_workflow_bot_is_silently_ignored(receiver: Receiver) -> None:
    opts = EvolutionOptions(
        instances=("loja",), debounce_seconds=0, webhook_url=receiver.url, bot_type="agent"
    )
    with running_stack(opts, DifyOptions(mode="agent-chat")) as stack:
        stack.inbound(ANA, "Oi")
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 1)
        assert stack.session(ANA).session_id != ANA
    opts = EvolutionOptions(
        instances=("loja",), debounce_seconds=0, webhook_url=receiver.url, bot_type="workflow"
    )
    with running_stack(opts) as stack:
        stack.inbound(BIA, "Oi")
        receiver.wait_for(lambda posts: any(b["data"]["key"]["remoteJid"] == BIA for _, _, b in posts))
        wait_until(lambda: stack.session(BIA) is not None, what="session created")
        assert stack.evolution.dify_calls == 0 and replies(receiver, BIA) == []


def test_phone_reply_pauses_the_session_and_the_bot_stays_quiet(receiver: Receiver) -> None:
    with running_stack(
        EvolutionOptions(instances=("loja",), debounce_seconds=0, webhook_url=receiver.url)
    ) as stack:
        stack.inbound(ANA, "Oi")
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 1)
        stack.http.post(
            f"{stack.evolution_url}/_sim/phone-reply",
            json={"instance": "loja", "remoteJid": ANA, "text": "Sou eu"},
        ).raise_for_status()
        assert stack.session(ANA).status == "paused"
        calls = stack.evolution.dify_calls
        stack.inbound(ANA, "Oi?")
        receiver.wait_for(lambda posts: receiver.events().count("messages.upsert") == 3)
        assert stack.evolution.dify_calls == calls
    from_me = [
        b for _, _, b in receiver.posts if b["event"] == "messages.upsert" and b["data"]["key"]["fromMe"]
    ]
    assert len(from_me) == 1
