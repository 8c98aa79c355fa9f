"""The apps behind the Dify emulator's API keys.

Modes as in Dify 1.12.1: `chat` (a model app), `agent-chat` (streaming only, `agent_message` events),
`advanced-chat` (a chatflow: workflow and node events around its `message` chunks), `completion`.
Behaviours mirror ../shared/upstream/dify-apps/: `echo` (echo-chat: Start -> Answer `echo: {{sys.query}}`)
and `midstream_fail` (midstream-fail: Answer 1 `partial: {{sys.query}}`, an HTTP Request node, Answer 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHAT_MODES = ("chat", "agent-chat", "advanced-chat")
# How Evolution hands media to a bot: `<type>|<mediaId>[|caption]` (src/utils/getConversationMessage.ts:29-51;
# stickers and video notes have no entry: no content, no call). An image also goes as `files`, its query being
# only the caption when it has one (dify.service.ts:81-110), so the query alone does not tell.
MEDIA_PREFIXES = (
    "imageMessage|",
    "audioMessage|",
    "videoMessage|",
    "documentMessage|",
    "documentWithCaptionMessage|",
)


def is_media(query: str, files: Any) -> bool:
    """A media turn: files attached (a captioned image sends only its caption as the query), or a query in
    Evolution's media shape."""
    return bool(files) or query.startswith(MEDIA_PREFIXES)


@dataclass(frozen=True)
class DifyApp:
    name: str = "Atendimento"
    mode: str = "chat"
    behaviour: str = "echo"  # echo | midstream_fail (chatflows only)
    required_inputs: tuple[str, ...] = ()  # start-form variables: "<name> is required in input form"
    description: str = ""


ECHO_CHAT = DifyApp(
    "echo-chat", "advanced-chat", description='Start -> Answer "echo: {{#sys.query#}}" (no model needed)'
)
MIDSTREAM_FAIL = DifyApp(
    "midstream-fail",
    "advanced-chat",
    "midstream_fail",
    description="Start -> Answer1 (streams) -> HTTP Request GET http://127.0.0.1:18083/<query> (read timeout "
    "30 s) -> Answer2 (body). Used to provoke failures after output started.",
)


def answer_for(query: str) -> str:
    """What a model app answers (the emulator's stand-in for an LLM)."""
    if query.startswith(MEDIA_PREFIXES):
        return f"Recebi seu {query.split('Message|', 1)[0]}. Como posso ajudar?"
    return f"echo: {query}"


def usage(*, model: bool, first_token: float = 0.0) -> dict[str, Any]:
    """`LLMUsage` (prices as strings): a model's, or a chatflow's without one (zeros, as observed)."""
    if not model:
        return {
            "prompt_tokens": 0,
            "prompt_unit_price": "0.0",
            "prompt_price_unit": "0.0",
            "prompt_price": "0.0",
            "completion_tokens": 0,
            "completion_unit_price": "0.0",
            "completion_price_unit": "0.0",
            "completion_price": "0.0",
            "total_tokens": 0,
            "total_price": "0.0",
            "currency": "USD",
            "latency": 0.0,
            "time_to_first_token": round(first_token, 3),
            "time_to_generate": 0.001,
        }
    return {
        "prompt_tokens": 12,
        "prompt_unit_price": "0.001",
        "prompt_price_unit": "0.001",
        "prompt_price": "0.000012",
        "completion_tokens": 8,
        "completion_unit_price": "0.002",
        "completion_price_unit": "0.001",
        "completion_price": "0.000016",
        "total_tokens": 20,
        "total_price": "0.000028",
        "currency": "USD",
        "latency": 0.42,
        "time_to_first_token": None,
        "time_to_generate": None,
    }


def parameters(app: DifyApp) -> dict[str, Any]:
    """`GET /v1/parameters` as a chatflow without features answers it (observed on 1.12.1)."""
    upload = {"enabled": False, "number_limits": 3, "transfer_methods": ["local_file", "remote_url"]}
    limits = {"image_file_size_limit": 10, "video_file_size_limit": 100, "audio_file_size_limit": 50}
    return {
        "opening_statement": "",
        "suggested_questions": [],
        "suggested_questions_after_answer": {"enabled": False},
        "speech_to_text": {"enabled": False},
        "text_to_speech": {"enabled": False, "language": "", "voice": ""},
        "retriever_resource": {"enabled": False},
        "annotation_reply": {"enabled": False},
        "more_like_this": {"enabled": False},
        "user_input_form": [{"text-input": {"variable": v, "required": True}} for v in app.required_inputs],
        "sensitive_word_avoidance": {"enabled": False},
        "file_upload": {"enabled": False, "image": upload},
        "system_parameters": {**limits, "file_size_limit": 15, "workflow_file_upload_limit": 10},
    }
