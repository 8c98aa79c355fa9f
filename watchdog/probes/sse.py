"""A small incremental parser for Dify's server-sent events: `data: <json>` events and `event: ping`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SseEvent:
    name: str  # Dify's "event" field, or "ping"
    data: dict[str, Any]


class SseDecoder:
    """Feed lines as they arrive; get an event at each blank line that ends one."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""

    def feed(self, line: str) -> SseEvent | None:
        line = line.rstrip("\r\n")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None

    def close(self) -> SseEvent | None:
        """End of stream: a final event without its blank line still counts."""
        return self._dispatch()

    def _dispatch(self) -> SseEvent | None:
        data, name = "\n".join(self._data), self._event
        self._data, self._event = [], ""
        if not data:
            return SseEvent(name, {}) if name else None
        try:
            payload = json.loads(data)
        except ValueError:
            return SseEvent("malformed", {"raw": data[:200]})
        if not isinstance(payload, dict):
            return SseEvent("malformed", {"raw": data[:200]})
        return SseEvent(str(payload.get("event") or name or "message"), payload)
