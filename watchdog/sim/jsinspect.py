"""Node's `util.inspect` for JSON-like values, as Evolution's `console.log` prints objects (not JSON):
`{ code: 'not_found', status: 404 }`, one entry a line past 80 columns, `[Object]` below depth 2.

Follows Node 20's lib/internal/util/inspect.js (formatValue, strEscape, reduceToSingleString with
`compact: 3`, `breakLength: 80`); arrays of more than six entries are not grouped into columns here.
"""

from __future__ import annotations

import re
from typing import Any

BREAK_LENGTH = 80
COMPACT = 3
DEPTH = 2
MIN_LINE_WIDTH = 16
MAX_STRING_LENGTH = 10_000
_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z_0-9]*$")
_META = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\\": "\\\\"}


def inspect(value: Any) -> str:
    return _Inspector().value(value, 0)


def quote(text: str) -> str:
    """strEscape: single quotes, unless the text holds one (then double quotes, then backticks)."""
    mark = "'"
    if "'" in text:
        if '"' not in text:
            mark = '"'
        elif "`" not in text and "${" not in text:
            mark = "`"
    out = "".join(
        _META.get(c) or (f"\\x{ord(c):02X}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text
    )
    if mark == "'":
        out = out.replace("'", "\\'")
    return f"{mark}{out}{mark}"


class _Inspector:
    def __init__(self) -> None:
        self.indentation = 0
        self.current_depth = 0

    def value(self, value: Any, depth: int) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() else repr(value)
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, dict | list | tuple):
            return self.container(value, depth)
        return self.string(str(value))

    def string(self, text: str) -> str:
        trailer = ""
        if len(text) > MAX_STRING_LENGTH:
            trailer = f"... {len(text) - MAX_STRING_LENGTH} more character{'s' if len(text) > 10_001 else ''}"
            text = text[:MAX_STRING_LENGTH]
        if len(text) > MIN_LINE_WIDTH and len(text) > BREAK_LENGTH - self.indentation - 4:
            pieces = re.split(r"(?<=\n)", text)
            joiner = " +\n" + " " * (self.indentation + 2)
            return joiner.join(quote(p) for p in pieces if p) + trailer
        return quote(text) + trailer

    def container(self, value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> str:
        is_dict = isinstance(value, dict)
        if depth > DEPTH:
            return "[Object]" if is_dict else "[Array]"
        braces = ("{", "}") if is_dict else ("[", "]")
        if not value:
            return braces[0] + braces[1]
        self.current_depth = depth
        output = []
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            self.indentation += 2
            text = self.value(item, depth + 1)
            self.indentation -= 2
            output.append(f"{self.key(str(key))}: {text}" if is_dict else text)
        return self.reduce(output, braces, depth)

    @staticmethod
    def key(name: str) -> str:
        return name if _KEY.match(name) else quote(name)

    def reduce(self, output: list[str], braces: tuple[str, str], depth: int) -> str:
        """reduceToSingleString: on one line when the innermost levels fit in the break length."""
        if self.current_depth - depth < COMPACT:
            start = len(output) + self.indentation + len(braces[0]) + 10
            total = len(output) + start
            fits = total + len(output) <= BREAK_LENGTH
            for entry in output:
                total += len(entry)
                fits = fits and total <= BREAK_LENGTH
            joined = ", ".join(output)
            if fits and "\n" not in joined:
                return f"{braces[0]} {joined} {braces[1]}"
        indentation = "\n" + " " * self.indentation
        return f"{braces[0]}{indentation}  {(',' + indentation + '  ').join(output)}{indentation}{braces[1]}"
