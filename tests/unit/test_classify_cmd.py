"""`evo-watchdog classify`: records from stdin or files, one result each, then a summary."""

from __future__ import annotations

import io
import json
from pathlib import Path

from watchdog.classify_cmd import run_classify

LINES = (
    "[Evolution API] [loja]  1  -  Tue Oct 21 2025 11:41:02   WARN     [X]  [string] "
    'Instance "loja" - LOGOUT\n'
    "[Evolution API] [loja]  1  -  Tue Oct 21 2025 11:48:00   ERROR    [ErrorMiddleware]  [object]\n"
    "{\n"
    '  "status": 500\n'
    "}\n"
    "[Evolution API]  1  -  Tue Oct 21 2025 11:40:39   INFO     [ServerUP]  [string] HTTP - ON: 8080\n"
)


def test_json_output_from_stdin() -> None:
    out = io.StringIO()
    assert run_classify([], as_json=True, out=out, stdin=io.StringIO(LINES)) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r.get("rule") for r in rows[:3]] == ["whatsapp_logged_out", "http_500", None]
    assert rows[0]["instance"] == "loja" and rows[1]["line"].endswith("}")
    assert rows[-1] == {"summary": {"http_500": 1, "whatsapp_logged_out": 1}, "records": 3}


def test_text_output_from_files(tmp_path: Path) -> None:
    log = tmp_path / "evolution.log"
    log.write_text(LINES)
    out = io.StringIO()
    run_classify([log, log], as_json=False, out=out, stdin=io.StringIO(""))
    text = out.getvalue()
    assert text.count("whatsapp_logged_out") == 3  # twice in rows, once in the summary
    assert text.rstrip().endswith("6 records; http_500: 2, whatsapp_logged_out: 2")
