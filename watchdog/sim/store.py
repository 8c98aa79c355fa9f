"""The Evolution emulator's "database": its rows in a JSON file standing in for Postgres.

Instances, their bots, settings row, sessions and webhook survive a restart of the emulator process;
connection state, faults and the message processor are memory and do not, as upstream.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from watchdog.sim.bots import Bot, Session
from watchdog.sim.webhooks import WebhookConfig

ROW_FIELDS = (
    "name",
    "id",
    "token",
    "owner_jid",
    "profile_name",
    "created_at",
    "stored_status",
    "dify_settings",
    "bot_settings",
    "openai_creds",
)
T = TypeVar("T")


def save(path: Path | None, instances: Iterable[Any]) -> None:
    if path is None:
        return
    rows = [
        {
            **{key: getattr(i, key) for key in ROW_FIELDS},
            "bots": [asdict(b) for b in i.bots],
            "sessions": [asdict(s) for s in i.sessions.values()],
            "webhook": asdict(i.webhook) if i.webhook else None,
        }
        for i in instances
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, path)


def load(path: Path | None, make: Callable[..., T]) -> list[T]:
    """Rows read back with `make(**columns)` (the Instance class); nothing when there is no file yet."""
    if path is None or not path.exists():
        return []
    return [
        make(
            **{key: row[key] for key in ROW_FIELDS if key in row},
            bots=[Bot(**b) for b in row["bots"]],
            sessions={s["remote_jid"]: Session(**s) for s in row["sessions"]},
            webhook=WebhookConfig(**row["webhook"]) if row["webhook"] else None,
        )
        for row in json.loads(path.read_text())
    ]
