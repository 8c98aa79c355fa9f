"""Typed values passed between probes, health and the outputs. No I/O here."""

from __future__ import annotations

import hashlib
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


def contact_id(remote_jid: str) -> str:
    """A stable short hash standing in for a phone number or JID in every output."""
    return "c-" + hashlib.sha256(remote_jid.encode()).hexdigest()[:10]


def instance_target(instance: str) -> str:
    return f"evolution:{instance}"
