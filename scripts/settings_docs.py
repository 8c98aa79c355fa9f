"""Regenerate the settings table in README.md and .env.example from watchdog.config.SETTINGS."""

from __future__ import annotations

from pathlib import Path

from watchdog.config import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| Variable | Default | Meaning |\n|---|---|---|\n"


def main() -> None:
    rows = []
    for spec in SETTINGS:
        default = f"`{spec.default}`" if spec.default else "*(empty)*"
        secret = " Secret: never logged." if spec.secret else ""
        rows.append(f"| `{spec.env}` | {default} | {spec.doc}{secret} |")
    readme = (ROOT / "README.md").read_text()
    start = readme.index(HEADER) + len(HEADER)
    end = readme.index("\n\n", start)
    (ROOT / "README.md").write_text(readme[:start] + "\n".join(rows) + readme[end:])
    lines = [
        "# evolution-watchdog settings. Copy to .env and edit; the process environment wins over this file.",
        "",
    ]
    for spec in SETTINGS:
        lines += [f"# {spec.doc}", f"{spec.env}={spec.default}", ""]
    (ROOT / ".env.example").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
