"""Which bot integration answers a contact, from the sessions probe: the label of its turnaround and stalls.

Evolution hands a contact's message to the integration of the contact's newest session (2.3.6
`chatbot.controller.ts` getSession, :170-189, as `probes/evolution.py` notes), so that session names the
integration that answered. A contact with no session read yet (a new one, whose session opened after the
last sessions probe) is answered by the instance's only integration with an enabled bot, when there is one.
Anything else is `unknown`: the watchdog does not guess between integrations.
"""

from __future__ import annotations

from collections.abc import Iterable

from watchdog.model import ProbeResult

UNKNOWN = "unknown"


class AnsweringIntegrations:
    def __init__(self) -> None:
        self._by_contact: dict[str, dict[str, str]] = {}  # instance -> contact id -> integration
        self._only: dict[str, str] = {}  # instance -> its one integration with an enabled bot

    def learn(self, results: Iterable[ProbeResult]) -> None:
        """Fold in fresh sessions probes; an instance's last successful read replaces what was known."""
        for result in results:
            if result.probe == "sessions" and result.ok:
                self._learn(result)

    def _learn(self, result: ProbeResult) -> None:
        instance = result.target.partition(":")[2]
        newest: dict[str, tuple[float, str]] = {}
        for session in result.data.get("sessions", ()):
            contact, integration = session.get("contact"), session.get("integration")
            if not contact or not integration:
                continue
            at = session.get("updated_at") or 0.0
            if contact not in newest or at >= newest[contact][0]:
                newest[contact] = (at, integration)
        self._by_contact[instance] = {contact: integration for contact, (_, integration) in newest.items()}
        enabled = {bot.get("integration") for bot in result.data.get("bots", ()) if bot.get("enabled")}
        if len(enabled) == 1 and None not in enabled:
            self._only[instance] = str(enabled.pop())
        else:
            self._only.pop(instance, None)

    def of(self, instance: str, contact: str) -> str:
        """The integration answering `contact` (a contact id) on `instance`, or `unknown`."""
        known = self._by_contact.get(instance, {}).get(contact)
        return known or self._only.get(instance, UNKNOWN)
