#!/usr/bin/env bash
# The real Evolution API 2.3.6 and Dify 1.12.1 on loopback, for the contract tests.
#   scripts/upstreams.sh up     build (cached by source hash in $WATCHDOG_UPSTREAMS_CACHE, default
#                               /var/cache/evo-watchdog/upstreams), start PostgreSQL, redis, Evolution, Dify
#                               and a fault server, set Dify up with its apps, print KEY=VALUE lines, exit
#   scripts/upstreams.sh down   stop exactly what `up` started and remove its runtime data
#   scripts/upstreams.sh env    print the KEY=VALUE lines again (exit 1 when not up)
# EVOLUTION_SRC / DIFY_SRC: another archive (.tar.gz) or checkout to build instead of ../shared/upstream's.
# State (pids, logs, data): $WATCHDOG_UPSTREAMS_STATE, default /tmp/evo-watchdog-upstreams. Progress on stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${WATCHDOG_UPSTREAMS_RUNNER:-$here/../.venv/bin/python}"
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m upstreams "$@"
