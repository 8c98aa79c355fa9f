"""Pure parts of the emulators: fault specs, webhook naming, upstream's local-time-with-Z stamp."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watchdog.sim.evolution import EVOLUTION_FAULTS
from watchdog.sim.faults import FaultError, FaultSet
from watchdog.sim.messages import bot_content, message_data
from watchdog.sim.webhooks import WebhookConfig, event_config_name, event_path, local_time_with_z


def test_fault_specs_parse_with_typed_parameters() -> None:
    faults = FaultSet(EVOLUTION_FAULTS)
    assert faults.set_spec("slow:seconds=2.5") == "slow"
    assert faults.get("slow") == {"seconds": 2.5}
    faults.set_spec("socket_closed")
    assert faults.get("socket_closed") == {"instance": "", "reconnect_after": 0.0}
    faults.clear("slow")
    assert "slow" not in faults and "socket_closed" in faults


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("meteor", "unknown fault 'meteor'"),
        ("slow:seconds=soon", "not a float"),
        ("slow:minutes=1", "has no parameter 'minutes'"),
        ("slow:seconds", "must look like key=value"),
    ],
)
def test_bad_fault_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(FaultError, match=message):
        FaultSet(EVOLUTION_FAULTS).set_spec(spec)


def test_event_names_for_config_and_by_events_paths() -> None:
    assert event_config_name("messages.upsert") == "MESSAGES_UPSERT"
    assert event_path("messages.upsert") == "messages-upsert"
    assert event_path("connection.update") == "connection-update"
    hook = WebhookConfig(url="http://x", events=["SEND_MESSAGE"])
    assert hook.wants("send.message") and not hook.wants("messages.upsert")
    assert not WebhookConfig(url="http://x", events=[]).wants("send.message")  # events are stored in full
    assert WebhookConfig(url="http://x").wants("send.message")  # the global hook: every event
    assert not WebhookConfig(url="http://x", enabled=False).wants("send.message")


def test_date_time_is_sao_paulo_local_time_with_a_wrong_z() -> None:
    utc_noon = datetime(2025, 10, 21, 12, 0, 0, 123000, tzinfo=UTC)
    assert local_time_with_z(utc_noon) == "2025-10-21T09:00:00.123Z"


class _Inst:
    id = "0b6e2b4c-0000-4000-8000-000000000000"


def test_media_is_encoded_for_dify_as_upstream_does() -> None:
    assert bot_content("text", "Oi", "3EB0AA") == "Oi"
    assert bot_content("image", "foto", "3EB0AA") == "imageMessage|3EB0AA|foto"
    assert bot_content("image", "", "3EB0AA") == "imageMessage|3EB0AA"
    assert bot_content("audio", "", "3EB0AA") == "audioMessage|3EB0AA"
    assert bot_content("sticker", "", "3EB0AA") is None and bot_content("ptv", "", "3EB0AA") is None
    data = message_data(_Inst(), "5511@s.whatsapp.net", "3EB0AA", kind="audio", text="")
    assert data["messageType"] == "audioMessage" and data["message"]["audioMessage"]["ptt"] is True
    with pytest.raises(ValueError, match="unknown message kind"):
        message_data(_Inst(), "x", "y", kind="hologram", text="")
