"""Fault injection shared by both emulators: a catalogue of named faults with typed parameters.

Faults are set at start-up (`--fault slow:seconds=2,kind=media`) or over the control endpoint
(`POST /_sim/faults {"name": "slow", "params": {"seconds": 2}}`). They live in memory only, so a
restarted emulator process comes back healthy, as the real services do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ParamValue = str | float | int
HOLD_LIMIT_SECONDS = 3600.0


@dataclass(frozen=True)
class FaultType:
    name: str
    description: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)  # name -> default (its type is the type)


class FaultError(ValueError):
    """An unknown fault or a malformed parameter."""


class FaultSet:
    """The faults active right now in one emulator process."""

    def __init__(self, catalogue: list[FaultType]) -> None:
        self.catalogue = {f.name: f for f in catalogue}
        self._active: dict[str, dict[str, ParamValue]] = {}
        self._cleared: dict[str, asyncio.Event] = {}  # set when a fault is cleared; wakes hold_while

    def set(self, name: str, params: Mapping[str, Any] | None = None) -> dict[str, ParamValue]:
        kind = self.catalogue.get(name)
        if kind is None:
            raise FaultError(f"unknown fault {name!r}; known: {', '.join(sorted(self.catalogue))}")
        values = dict(kind.params)
        for key, raw in (params or {}).items():
            if key not in kind.params:
                accepted = ", ".join(kind.params) or "none"
                raise FaultError(f"fault {name!r} has no parameter {key!r}; accepted: {accepted}")
            values[key] = _coerce(name, key, raw, kind.params[key])
        self._active[name] = values
        return values

    def set_spec(self, spec: str) -> str:
        """Parse and set `name` or `name:key=value,key=value`; returns the name."""
        name, _, rest = spec.partition(":")
        params: dict[str, str] = {}
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise FaultError(f"fault parameter {item!r} must look like key=value")
            params[key.strip()] = value.strip()
        self.set(name.strip(), params)
        return name.strip()

    def clear(self, name: str | None = None) -> None:
        names = list(self._active) if name is None else [name]
        for cleared in names:
            self._active.pop(cleared, None)
            event = self._cleared.pop(cleared, None)
            if event is not None:
                event.set()

    def get(self, name: str) -> dict[str, ParamValue] | None:
        return self._active.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._active

    def active(self) -> dict[str, dict[str, ParamValue]]:
        return {k: dict(v) for k, v in self._active.items()}

    async def hold_while(self, name: str, *, limit: float = HOLD_LIMIT_SECONDS) -> None:
        """Hang while `name` is active, like a wedged process; return once it is cleared (the restart)."""
        if name not in self._active:
            return
        cleared = self._cleared.setdefault(name, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(cleared.wait(), limit)


def _coerce(fault: str, key: str, raw: Any, default: ParamValue) -> ParamValue:
    try:
        if isinstance(default, bool):
            raise TypeError
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise FaultError(
            f"fault {fault!r} parameter {key!r}={raw!r} is not a {type(default).__name__}"
        ) from None


def fault_routes(faults: FaultSet, on_set: Callable[[str], None] | None = None) -> list[Route]:
    """`GET/POST/DELETE /_sim/faults`: the control endpoint both emulators expose.

    `on_set` lets an emulator act when a fault is an event rather than a condition.
    """

    async def list_faults(request: Request) -> JSONResponse:
        catalogue = {
            f.name: {"description": f.description, "params": dict(f.params)}
            for f in faults.catalogue.values()
        }
        return JSONResponse({"active": faults.active(), "catalogue": catalogue})

    async def set_fault(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise FaultError('body must be {"name": str, "params": {...}}')
            params = body.get("params") or {}
            if not isinstance(params, dict):
                raise FaultError("params must be an object")
            values = faults.set(body["name"], params)
        except (FaultError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if on_set is not None:
            on_set(body["name"])
        return JSONResponse({"name": body["name"], "params": values, "active": faults.active()})

    async def clear_fault(request: Request) -> JSONResponse:
        faults.clear(request.path_params.get("name"))
        return JSONResponse({"active": faults.active()})

    return [
        Route("/_sim/faults", list_faults, methods=["GET"]),
        Route("/_sim/faults", set_fault, methods=["POST"]),
        Route("/_sim/faults", clear_fault, methods=["DELETE"]),
        Route("/_sim/faults/{name}", clear_fault, methods=["DELETE"]),
    ]
