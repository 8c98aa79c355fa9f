#!/usr/bin/env bash
# Create .venv and install the project with its test tools. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools >/dev/null
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
# The docs site's tools (the `docs` extra) in .venv/docs: mkdocs needs PyPI's `watchdog` package, which
# would shadow this project's `watchdog` package inside .venv.
if [ ! -x .venv/docs/bin/python ]; then
  "$PYTHON" -m venv .venv/docs
fi
mapfile -t DOCS_REQUIREMENTS < <(.venv/bin/python -c 'import tomllib
print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["docs"], sep="\n")')
.venv/docs/bin/python -m pip install --quiet --disable-pip-version-check "${DOCS_REQUIREMENTS[@]}"
