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
