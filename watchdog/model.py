"""Typed values passed between probes, health and the outputs. No I/O here."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class ProbeResult:
    """One probe's outcome. Failures are results, not exceptions."""

    target: str  # "evolution", "dify", or "evolution:<instance>"
    probe: str  # "version", "instances", "connection_state", "sessions", "liveness", "app_info"
    ok: bool
    duration: float
    checked_at: float  # epoch seconds, for display
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)
    # contact id -> remoteJid, for repairs only; never rendered, logged or exported.
    subjects: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Finding:
    """Something wrong, named by a stable kind (used in metrics, alerts and the recovery ladder)."""

    kind: str
    target: str
    severity: Severity
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    subject: str = field(default="", repr=False)  # the remoteJid a contact-level repair acts on; never shown

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "severity": str(self.severity),
            "summary": self.summary,
            "evidence": dict(self.evidence),
        }


MIN_CONTACT_KEY_BYTES = 16


def contact_id(remote_jid: str, *, key: bytes) -> str:
    """The short id standing in for a phone number or JID in every output: HMAC-SHA256 keyed with the
    installation's contact key (WATCHDOG_CONTACT_KEY or the state directory's contact.key), so nobody
    without the key can recover a number by hashing candidates; the same key gives the same id."""
    if len(key) < MIN_CONTACT_KEY_BYTES:
        raise ValueError(f"a contact key has at least {MIN_CONTACT_KEY_BYTES} bytes")
    return "c-" + hmac.digest(key, remote_jid.encode(), "sha256").hex()[:10]


def instance_target(instance: str) -> str:
    return f"evolution:{instance}"
