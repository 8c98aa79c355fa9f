"""Evolution emulator talking to Dify (emulated or a recording endpoint) the way upstream does."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import Receiver
from tests.integration.stack import DIFY_KEY, running_stack, wait_until
from watchdog.serving import ThreadedServer
from watchdog.sim.bots import Session
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
    # dify.service.ts:81-110: the caption is the query; without S3 or webhook base64 the "remote_url" is
    # the media id (the message id): not a URL, upstream's defect
    assert image["query"] == "foto"
    assert image["files"] == [
        {"type": "image", "transfer_method": "remote_url", "url": image["files"][0]["url"]}
    ]
    assert image["files"][0]["url"].startswith("3EB0")


def test_image_goes_to_dify_as_base64_when_the_webhook_has_base64_on(receiver: Receiver) -> None:
    """whatsapp.baileys.service.ts:1316-1343 adds `message.base64` when the instance's webhook has base64;
    dify.service.ts:84-99 then sends that data as the file's "remote_url"."""
    opts = EvolutionOptions(instances=("loja",), dify_url=receiver.url + "/v1", debounce_seconds=0)
    _, app = build_evolution(opts)
    with ThreadedServer(app) as evolution:
        hook = {"enabled": True, "url": receiver.url + "/hook", "base64": True, "events": ["MESSAGES_UPSERT"]}
        headers = {"apikey": opts.api_key}
        httpx.post(
            f"{evolution.url}/webhook/set/loja", json={"webhook": hook}, headers=headers
        ).raise_for_status()
        httpx.post(
            evolution.url + "/_sim/inbound", json={"instance": "loja", "remoteJid": ANA, "kind": "image"}
        )
        # the webhook and the Dify call leave side by side: wait for both
        posts = receiver.wait_for(lambda posts: {"/v1/chat-messages", "/hook"} <= {p for p, _, _ in posts})
    call = next(body for path, _, body in posts if path == "/v1/chat-messages")
    upsert = next(body for path, _, body in posts if path == "/hook")
    assert call["query"].startswith("imageMessage|3EB0")  # no caption: the whole content
    assert call["files"][0]["url"] == upsert["data"]["message"]["base64"]


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
        wait_until(lambda: stack.session(ANA).status == "paused", what="the session paused")
        calls = stack.evolution.dify_calls
        stack.inbound(ANA, "Oi?")
        receiver.wait_for(lambda posts: receiver.events().count("messages.upsert") == 3)
        assert stack.evolution.dify_calls == calls
    from_me = [
        b for _, _, b in receiver.posts if b["event"] == "messages.upsert" and b["data"]["key"]["fromMe"]
    ]
    assert len(from_me) == 1


def test_stickers_and_video_notes_get_no_reply(receiver: Receiver) -> None:
    """getConversationMessage.ts has no stickerMessage or ptvMessage: the content is undefined. A new contact
    gets a session and a TypeError from DifyService (dify.service.ts:52 `isAudioMessage(content)`); a known
    one a TypeError from `process` (base-chatbot.service.ts:141 `content.toLowerCase()`). No Dify call."""
    with running_stack(EvolutionOptions(instances=("loja",), webhook_url=receiver.url)) as stack:
        stack.inbound(ANA, kind="sticker")
        wait_until(lambda: "reading 'includes'" in stack.log.getvalue(), what="the TypeError logged")
        assert stack.session(ANA).await_user is False and stack.evolution.dify_calls == 0
        stack.inbound(BIA, "Oi")
        receiver.wait_for(lambda posts: len(replies(receiver, BIA)) == 1)
        stack.inbound(BIA, kind="ptv")
        wait_until(lambda: "Error in process: TypeError" in stack.log.getvalue(), what="process failing")
        assert stack.evolution.dify_calls == 1
    assert replies(receiver, ANA) == [] and len(replies(receiver, BIA)) == 1


def test_keyword_trigger_decides_who_starts_a_conversation(receiver: Receiver) -> None:
    """findBotByTrigger.ts: without a session only a matching trigger finds the bot; once a session exists
    (chatbot.controller.ts:205 `findBotTrigger`) every message goes to its bot."""
    with running_stack(EvolutionOptions(instances=("loja",), webhook_url=receiver.url)) as stack:
        bot = stack.evolution.instances["loja"].bots[0]
        bot.trigger_type, bot.trigger_operator, bot.trigger_value = "keyword", "startsWith", "menu"
        stack.inbound(ANA, "Oi")
        stack.inbound(BIA, "menu por favor")
        receiver.wait_for(lambda posts: len(replies(receiver, BIA)) == 1)
        assert stack.session(ANA) is None and replies(receiver, ANA) == []
        stack.inbound(BIA, "e o preço?")
        receiver.wait_for(lambda posts: len(replies(receiver, BIA)) == 2)


def test_ignored_jids_and_another_integrations_session_get_no_reply(receiver: Receiver) -> None:
    """checkIgnoreJids (chatbot.controller.ts:136) on the settings row; a session another integration opened
    with its own bot id finds no Dify bot (chatbot.controller.ts:206), whatever its status."""
    with running_stack(EvolutionOptions(instances=("loja",), webhook_url=receiver.url)) as stack:
        inst = stack.evolution.instances["loja"]
        assert inst.dify_settings is not None
        inst.dify_settings["ignoreJids"] = [ANA]
        inst.sessions[BIA] = Session(
            id="ctb1", remote_jid=BIA, session_id=BIA, bot_id="ctypebot", type="typebot"
        )
        stack.inbound(ANA, "Oi")
        stack.inbound(BIA, "Oi")
        receiver.wait_for(lambda posts: receiver.events().count("messages.upsert") == 2)
        wait_until(lambda: "Ignoring message from jid" in stack.log.getvalue(), what="ignored")
        assert stack.evolution.dify_calls == 0
        inst.dify_settings["ignoreJids"] = []
        stack.inbound(ANA, "Oi?")
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 1)
    assert replies(receiver, BIA) == []


def test_delete_removes_the_contacts_sessions_on_every_instance(receiver: Receiver) -> None:
    """`changeStatus` delete: `deleteMany({remoteJid, botId: {not: null}})` with no instance filter
    (base-chatbot.controller.ts:461); `paused` only touches the instance asked."""
    opts = EvolutionOptions(instances=("loja", "suporte"), debounce_seconds=0, webhook_url=receiver.url)
    with running_stack(opts) as stack:
        for instance in ("loja", "suporte"):
            stack.inbound(ANA, "Oi", instance=instance)
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 2)
        headers = {"apikey": "stack-evolution-key"}
        url = f"{stack.evolution_url}/dify/changeStatus/loja"
        paused = stack.http.post(url, json={"remoteJid": ANA, "status": "paused"}, headers=headers).json()
        assert paused["bot"]["bot"]["session"] == {"count": 1}
        assert stack.session(ANA, "suporte").status == "opened"
        stack.http.post(url, json={"remoteJid": ANA, "status": "delete"}, headers=headers).raise_for_status()
        assert stack.session(ANA, "loja") is None and stack.session(ANA, "suporte") is None


def test_reply_comes_no_sooner_than_upstreams_delays(receiver: Receiver) -> None:
    """debounceTime (chatbot.controller.ts:127), then sendSingleMessage's setTimeout of at least 1 s
    (base-chatbot.service.ts:278-301), then textMessage typing for `delayMessage || 1000` ms
    (whatsapp.baileys.service.ts:2146-2176): here 1 + 1 + 1 s at time scale 0.5."""
    opts = EvolutionOptions(instances=("loja",), debounce_seconds=1, webhook_url=receiver.url)
    with running_stack(opts) as stack:
        stack.evolution.time_scale = 0.5
        started = time.monotonic()
        stack.inbound(ANA, "Oi")
        receiver.wait_for(lambda posts: len(replies(receiver, ANA)) == 1)
        elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 5


def test_await_user_stays_false_after_a_first_failure_and_turns_true_after_a_later_one(
    receiver: Receiver,
) -> None:
    """base-chatbot.service.ts:385-396: a new session is opened with awaitUser false and a failed call
    leaves it so; for a known session `process` sets awaitUser true after the call, failed or not (:159)."""
    opts = EvolutionOptions(instances=("loja",), webhook_url=receiver.url)
    with running_stack(opts, DifyOptions(faults=("error_500",))) as stack:
        stack.inbound(ANA, "Oi")
        wait_until(lambda: stack.log.getvalue().count("[DifyService]") >= 1, what="the failed call logged")
        assert stack.session(ANA).await_user is False
        stack.inbound(ANA, "Alô?")
        wait_until(lambda: stack.log.getvalue().count("[DifyService]") >= 2, what="the second failure")
        wait_until(lambda: stack.session(ANA).await_user is True, what="awaitUser true")
    assert replies(receiver, ANA) == []
