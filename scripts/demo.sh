#!/usr/bin/env bash
# Set up, then run the watchdog against the built-in Evolution API and Dify emulators with faults injected.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/evo-watchdog demo "$@"
