"""`evo-watchdog classify`: records from stdin or files, one result each, then a summary; over the corpus of
real upstream output it names every error record's rule and no rule for a routine one."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from tests.unit.test_logrules import corpus
from watchdog.commands.classify import run_classify

ROOT = Path(__file__).resolve().parents[2]
LINES = (
    "[Evolution API]  1 - Tue Dec 01 2026 00:22:26   WARN  [WAMonitoringService] [string] "
    'Instance "loja" - LOGOUT\n'
    "[Evolution API]  1 - Tue Dec 01 2026 00:22:27   ERROR  [DifyService] [object] {\n"
    "  code: 'internal_server_error',\n"
    "  message: 'Internal Server Error, please contact support.',\n"
    "  status: 500\n"
    "}\n"
    "[Evolution API]  1 - Tue Dec 01 2026 00:22:28   LOG  [SERVER] [string] HTTP - ON: 8080\n"
)


def test_json_output_from_stdin() -> None:
    out = io.StringIO()
    assert run_classify([], as_json=True, out=out, stdin=io.StringIO(LINES)) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r.get("rule"), r.get("about")) for r in rows[:3]] == [
        ("whatsapp_logged_out", "whatsapp"),
        ("dify_error", "dify"),  # Dify's 500 as Evolution printed it: Dify's, not Evolution's http_500
        (None, None),
    ]
    assert rows[0]["instance"] == "loja" and rows[1]["line"].endswith("}")
    assert rows[-1] == {"summary": {"dify_error": 1, "whatsapp_logged_out": 1}, "records": 3}


def test_text_output_from_files(tmp_path: Path) -> None:
    log = tmp_path / "evolution.log"
    log.write_text(LINES)
    out = io.StringIO()
    run_classify([log, log], as_json=False, out=out, stdin=io.StringIO(""))
    text = out.getvalue()
    assert text.count("whatsapp_logged_out") == 3  # twice in rows, once in the summary
    assert text.rstrip().endswith("6 records; dify_error: 2, whatsapp_logged_out: 2")


def test_the_cli_names_every_corpus_records_rule(tmp_path: Path) -> None:
    """The acceptance run: `python -m watchdog classify --json` over the corpus as the servers wrote it
    (annotations removed) gives each record the rule the corpus names, and routine records none."""
    blocks = corpus()
    raw = tmp_path / "upstreams.log"
    raw.write_text("\n".join(line for _, lines in blocks for line in lines) + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "watchdog", "classify", "--json", str(raw)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    got = [(row["rule"] or "none", row["line"].split("\n", 1)[0]) for row in rows[:-1]]
    wrong = [
        (want, got_rule, head)
        for (want, _), (got_rule, head) in zip(blocks, got, strict=True)
        if want != got_rule
    ]
    assert not wrong, wrong
    assert rows[-1]["records"] == len(blocks)
