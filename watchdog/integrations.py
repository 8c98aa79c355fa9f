"""Evolution API's bot integrations as data: one frozen description each drives the probes, `doctor`, the L1
executor and the emulator. Adding an eighth is one entry in INTEGRATIONS.

Every fact is read from Evolution 2.3.6 (tag 2.3.6, src/api/integrations/chatbot/):
* chatbot.router.ts:233-240 mounts each router under `/{name}` (Chatwoot is another kind, not here).
* Each `{name}/routes/{name}.router.ts` has the same routes, answered by base-chatbot.controller.ts:
  `create` (201, createBot :88), `find` (findBot :247, the instance's bots), `fetchSettings` (:375; with no
  settings row it answers defaults, :399-413), `changeStatus` (:429, body {remoteJid, status} with status
  opened|closed|paused|delete, `{name}/validate/{name}.schema.ts` *StatusSchema), `fetchSessions/:botId`
  (:519, rows of IntegrationSession whose `type` is the controller's getIntegrationType(), :549-550).
* `delete` runs `deleteMany({remoteJid, botId: {not: null}})` (:461-470): every instance, every integration.
* A disabled integration answers 400 `{name} is disabled` (BadRequestException) on each of those routes.
* IntegrationSession (prisma/postgresql-schema.prisma:459): status is the SessionStatus enum
  (opened | closed | paused, :31-35); `type` names the integration; `botId` the bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from watchdog.errors import UpstreamError, UpstreamHTTPError, UpstreamMisconfigured

STATUSES = ("opened", "paused", "closed")  # SessionStatus, prisma/postgresql-schema.prisma:31-35
CHANGE_STATUSES = ("opened", "closed", "paused", "delete")  # every *StatusSchema's enum


@dataclass(frozen=True)
class Integration:
    name: str  # route prefix without the slash, and the key used everywhere (metrics label, evidence)
    label: str  # the controller's integrationName: its errors say "<label> is disabled"
    session_type: str  # IntegrationSession.type its sessions carry (getIntegrationType / getBotType)
    enabled_by: str  # Evolution's setting that turns it on ("" = always on)
    settings_fallback: str  # the settings row's fallback bot column (getFallbackFieldName)
    create_required: tuple[str, ...]  # `{name}Schema.required`: what `create` refuses without
    bot_columns: tuple[str, ...]  # its own bot columns (the controller's getAdditionalBotData)
    backend: tuple[str, ...]  # bot columns naming the backend it calls (URL first), never shown whole
    backend_call: str  # what one turn sends, for people
    source: str  # the files these facts come from
    # awaitUser true is written once a turn's reply is sent, also on a session's first turn. Where it is
    # not (the first turn goes through initNewSession, base-chatbot.service.ts:385-396, and the service
    # never sets it), an answered first turn still reads awaitUser false: "busy" cannot be told apart.
    marks_answered: bool = True
    # Typebot alone enforces `expire`: processTypebot replaces a session idle longer than expire minutes
    # when the next message arrives (typebot.service.ts:595-619); the others store it and never read it.
    enforces_expire: bool = False
    # OpenAI alone reopens a paused session: the next message sets it opened and is dropped
    # (openai.service.ts:162-175); the others return on paused (base-chatbot.service.ts:135-137).
    reopens_paused: bool = False
    unwedge_status: str = "delete"  # the changeStatus status that frees a contact: a fresh session next

    @property
    def prefix(self) -> str:
        return f"/{self.name}"

    def create_path(self, instance: str) -> str:
        return f"/{self.name}/create/{_seg(instance)}"

    def find_path(self, instance: str) -> str:
        return f"/{self.name}/find/{_seg(instance)}"

    def settings_path(self, instance: str) -> str:
        return f"/{self.name}/fetchSettings/{_seg(instance)}"

    def sessions_path(self, bot_id: str, instance: str) -> str:
        return f"/{self.name}/fetchSessions/{_seg(bot_id)}/{_seg(instance)}"

    def change_status_path(self, instance: str) -> str:
        return f"/{self.name}/changeStatus/{_seg(instance)}"

    def disabled_message(self) -> str:
        return f"{self.label} is disabled"


_BASE = "base-chatbot.controller.ts, base-chatbot.service.ts"
INTEGRATIONS: tuple[Integration, ...] = (
    Integration(
        name="dify",
        label="Dify",
        session_type="dify",
        enabled_by="DIFY_ENABLED",
        settings_fallback="difyIdFallback",
        create_required=("enabled", "botType", "triggerType"),
        bot_columns=("botType", "apiUrl", "apiKey"),
        backend=("apiUrl", "apiKey"),
        backend_call="POST {apiUrl}/chat-messages (agent: streaming) with its conversation_id, no timeout",
        source=f"dify/ (services/dify.service.ts:134-143 sets awaitUser), {_BASE}",
    ),
    Integration(
        name="typebot",
        label="Typebot",
        session_type="typebot",
        enabled_by="TYPEBOT_ENABLED",
        settings_fallback="typebotIdFallback",
        create_required=("enabled", "url", "typebot", "triggerType"),
        bot_columns=("url", "typebot"),
        backend=("url", "typebot"),
        backend_call="POST {url}/api/v1/typebots/{typebot}/startChat, then .../sessions/{id}/continueChat",
        source="typebot/ (services/typebot.service.ts:85-168 createNewSession, :566-1021 processTypebot)",
        enforces_expire=True,
    ),
    Integration(
        name="openai",
        label="Openai",
        session_type="openai",
        enabled_by="OPENAI_ENABLED",
        settings_fallback="openaiIdFallback",
        create_required=("enabled", "openaiCredsId", "botType", "triggerType"),
        bot_columns=(
            "openaiCredsId",
            "botType",
            "assistantId",
            "functionUrl",
            "model",
            "systemMessages",
            "assistantMessages",
            "userMessages",
            "maxTokens",
        ),
        backend=("model", "assistantId"),
        backend_call="openai SDK 4.104 (OPENAI_BASE_URL): chat/completions or a thread; 10 min, 2 retries",
        source="openai/ (services/openai.service.ts:45-183 process, :396-583 chat completion)",
        reopens_paused=True,
    ),
    Integration(
        name="flowise",
        label="Flowise",
        session_type="flowise",
        enabled_by="FLOWISE_ENABLED",
        settings_fallback="flowiseIdFallback",
        create_required=("enabled", "apiUrl", "triggerType"),
        bot_columns=("apiUrl", "apiKey"),
        backend=("apiUrl", "apiKey"),
        backend_call="POST {apiUrl} {question, overrideConfig: {sessionId: remoteJid}} -> {text}, no timeout",
        source=f"flowise/ (services/flowise.service.ts:46-147, no try/catch), {_BASE}",
        marks_answered=False,
    ),
    Integration(
        name="n8n",
        label="N8n",
        session_type="n8n",
        enabled_by="N8N_ENABLED",
        settings_fallback="n8nIdFallback",
        create_required=("enabled", "webhookUrl", "triggerType"),
        bot_columns=("webhookUrl", "basicAuthUser", "basicAuthPass"),
        backend=("webhookUrl",),
        backend_call="POST {webhookUrl} {chatInput, sessionId, remoteJid, ...} -> {output} or {answer}",
        source=f"n8n/ (services/n8n.service.ts:30-96, awaitUser true at :83-91), {_BASE}",
    ),
    Integration(
        name="evolutionBot",
        label="EvolutionBot",
        session_type="evolution",
        enabled_by="",
        settings_fallback="botIdFallback",
        create_required=("enabled", "apiUrl", "triggerType"),
        bot_columns=("apiUrl", "apiKey"),
        backend=("apiUrl", "apiKey"),
        backend_call="POST {apiUrl} {inputs, query, conversation_id, user} -> {message}, no timeout",
        source=f"evolutionBot/ (services/evolutionBot.service.ts:37-163, type 'evolution' :30-32), {_BASE}",
        marks_answered=False,
    ),
    Integration(
        name="evoai",
        label="Evoai",
        session_type="evoai",
        enabled_by="EVOAI_ENABLED",
        settings_fallback="evoaiIdFallback",
        create_required=("enabled", "agentUrl", "triggerType"),
        bot_columns=("agentUrl", "apiKey"),
        backend=("agentUrl", "apiKey"),
        backend_call="POST {agentUrl} JSON-RPC message/send {contextId} -> result.artifacts[0].parts",
        source=f"evoai/ (services/evoai.service.ts:37-206), {_BASE}",
        marks_answered=False,
    ),
)
BY_NAME = {i.name: i for i in INTEGRATIONS}
BY_SESSION_TYPE = {i.session_type: i for i in INTEGRATIONS}
DIFY = BY_NAME["dify"]


def integration(name: str) -> Integration:
    """The integration named `name` (its route prefix); KeyError for an unknown one."""
    return BY_NAME[name]


def is_absent(exc: UpstreamError) -> bool:
    """The integration is off on this Evolution, not failing: 400 `<label> is disabled`, or a route that
    this release does not have (404 `Cannot GET /evoai/find/...` on a release before it)."""
    if isinstance(exc, UpstreamMisconfigured):
        return exc.status == 404
    return isinstance(exc, UpstreamHTTPError) and exc.status == 400 and exc.message.endswith(" is disabled")


def _seg(value: str) -> str:
    return quote(value, safe="")
