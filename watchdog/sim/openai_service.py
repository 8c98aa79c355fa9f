"""Evolution 2.3.6's OpenAI integration at work, chat completion bots (assistant bots are not emulated).

Source: src/api/integrations/chatbot/openai/services/openai.service.ts `process` (:45-183: a paused session
is reopened by the next message, which is dropped, :162-175), `sendMessageToBot` (:188-262) and
`processChatCompletionMessage` (:396-583: the history lives in the session's `context`; a failed call
answers the contact "Sorry, there was an error: ..." instead of failing). The calls go through the openai
SDK 4.104 (node_modules/openai/core.js): base URL from OPENAI_BASE_URL (here `base_url`), 600 s timeout,
2 retries on a connection error, 408, 409, 429 or 5xx, waiting min(0.5 * 2^n, 8) s times a jitter.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx

from watchdog.sim.bot_services import BotService
from watchdog.sim.bot_turn import Turn
from watchdog.sim.bots import Bot, Session

SDK_TIMEOUT_SECONDS = 600.0
SDK_RETRIES = 2
RETRIED = (408, 409, 429)


class OpenaiService(BotService):
    base_url = "https://api.openai.com/v1"  # OPENAI_BASE_URL in Evolution's environment

    async def process_bot(self, turn: Turn, session: Session | None) -> None:
        bot, settings, content = turn.bot, turn.settings, turn.content
        creds = next(
            (
                c
                for i in self.sim.instances.values()
                for c in i.openai_creds
                if c["id"] == bot.extra.get("openaiCredsId")
            ),
            None,
        )
        if creds is None:
            self.log("ERROR", f"OpenAI credentials not found. CredsId: {bot.extra.get('openaiCredsId')}")
            return
        finish = str(settings.get("keywordFinish") or "")
        if content is not None and finish and content.lower().strip() == finish.lower():
            if session is None:
                self.log("ERROR", "Error in process: Cannot read properties of null (reading 'id')")
            else:
                self.end_session(turn, session)
            return
        if session is None:
            session = self.new_session(turn)  # createNewSession + initNewSession (awaitUser false)
        elif session.status == "paused":
            session.status, session.await_user = "opened", True  # and this message is dropped
            self.sim.touch(session)
            return
        if str(bot.extra.get("botType")) != "chatCompletion":
            self.log("ERROR", "Error in sendMessageToBot: assistant bots are not emulated")
            return
        answer = await self._completion(bot, session, str(creds.get("apiKey") or ""), content or "")
        if answer and not await self.reply(turn, answer):
            return
        self.answered(turn, session)  # openai.service.ts:246-254

    async def _completion(self, bot: Bot, session: Session, key: str, content: str) -> str:
        history = _history(session.context) if session.status == "opened" else []
        system = [{"role": "system", "content": m} for m in bot.extra.get("systemMessages") or []]
        asked = {"role": "user", "content": [{"type": "text", "text": content}]}
        body = {
            "model": bot.extra.get("model"),
            "messages": [*system, *history, asked],
            "max_tokens": bot.extra.get("maxTokens") or 500,
        }
        try:
            data = await self._sdk_post("/chat/completions", body, key)
            answer = str(data["choices"][0]["message"]["content"])
        except _SdkError as exc:
            self.log("ERROR", f"Error calling OpenAI: {exc}")
            return f"Sorry, there was an error: {exc}"
        history = [*history, asked, {"role": "assistant", "content": answer}][-10:]
        session.context = json.dumps({"history": history})
        return answer

    async def _sdk_post(self, path: str, body: Any, key: str) -> Any:
        """The SDK's request loop: a timeout per attempt, retries with backoff, its error messages."""
        headers = {"Authorization": f"Bearer {key}"}
        for attempt in range(SDK_RETRIES + 1):
            self.calls += 1
            last = attempt == SDK_RETRIES
            try:
                async with asyncio.timeout(SDK_TIMEOUT_SECONDS * self.sim.time_scale):
                    response = await self.sim.http.post(
                        self.base_url + path, json=body, headers=headers, timeout=None
                    )
            except TimeoutError:
                if last:
                    raise _SdkError("Request timed out.") from None
            except httpx.HTTPError:
                if last:
                    raise _SdkError("Connection error.") from None
            else:
                if response.status_code < 300:
                    return response.json()
                if last or not (response.status_code in RETRIED or response.status_code >= 500):
                    raise _SdkError(_status_message(response))
            wait = min(0.5 * 2**attempt, 8.0) * (1 - random.random() * 0.25)
            await asyncio.sleep(wait * self.sim.time_scale)
        raise _SdkError("Connection error.")


class _SdkError(Exception):
    pass


def _status_message(response: httpx.Response) -> str:
    """APIError.makeMessage: `<status> <error.message>` (or the body, or `status code (no body)`)."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} status code (no body)"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return f"{response.status_code} {message or json.dumps(body)}"


def _history(context: Any) -> list[Any]:
    try:
        data = json.loads(context) if isinstance(context, str) else context
    except ValueError:
        return []
    history = data.get("history") if isinstance(data, dict) else None
    return list(history) if isinstance(history, list) else []
