#!/usr/bin/env bash
# Set up (Debian packages when missing, a Docker engine, .venv), then every check CI runs:
# a dependency audit, lint, format, strict types, the full test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-system-deps.sh
./scripts/setup.sh
./scripts/audit-deps.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
