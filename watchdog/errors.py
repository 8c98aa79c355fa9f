"""The one error hierarchy. Library exceptions (httpx, docker) are translated at the edge into these."""

from __future__ import annotations

from watchdog.errortext import one_line


class WatchdogError(Exception):
    """Base of every error the watchdog raises on purpose."""


class ConfigError(WatchdogError):
    """A setting is missing or malformed; the message is one line and never contains a secret."""


class UpstreamError(WatchdogError):
    """Talking to Evolution API, Dify or Docker failed. The message is one bounded line without markup
    (errortext.one_line): it ends up in findings, log lines and tables."""

    kind = "error"  # short stable name used in probe results and metrics

    def __init__(self, target: str, message: str) -> None:
        message = one_line(message)
        super().__init__(f"{target}: {message}")
        self.target = target
        self.message = message


class UpstreamUnreachable(UpstreamError):
    """Connection refused, DNS failure, reset before any response."""

    kind = "unreachable"


class UpstreamTimeout(UpstreamError):
    """No complete answer within the probe's deadline."""

    kind = "timeout"


class UpstreamHTTPError(UpstreamError):
    """The service answered with an error status or an error body."""

    kind = "http"

    def __init__(self, target: str, status: int, message: str, *, code: str = "") -> None:
        super().__init__(target, f"HTTP {status}: {message}")
        self.status = status
        self.code = code  # the error envelope's `code` (Dify: "not_found", "invalid_param", ...); "" if none


class UpstreamAuthError(UpstreamHTTPError):
    """401/403: the configured key is wrong or lacks rights."""

    kind = "auth"


class UpstreamMisconfigured(UpstreamHTTPError):
    """The service answered, and the answer says the request cannot work as configured: a 404 page for
    a URL that is not an API endpoint, or an app that refuses the request. Not an outage: no restart
    fixes it."""

    kind = "config"


class UpstreamProtocolError(UpstreamError):
    """The answer arrived but is not what the upstream contract says (bad JSON, missing fields)."""

    kind = "protocol"


class CoordinationError(WatchdogError):
    """The lease store (Redis) shared by replicas did not answer or refused; the message holds no secret."""


class NotLeader(WatchdogError):
    """A state change (maintenance, ack) sent to a replica that does not lead: only the leader acts, so
    it would be kept where nothing reads it."""
