#!/usr/bin/env bash
# Start a Docker engine for the tests when none answers: no bridge, no iptables, nothing beyond loopback.
set -euo pipefail
if docker version >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v dockerd >/dev/null 2>&1; then
  echo "start-dockerd: no Docker engine answers and this user cannot start one" >&2
  exit 0  # the tests decide: a failure under WATCHDOG_REQUIRE_REAL_INFRA=1, a skip otherwise
fi
log=${DOCKERD_LOG:-/tmp/evo-watchdog-dockerd.log}
nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$log" 2>&1 &
for _ in $(seq 1 100); do
  docker version >/dev/null 2>&1 && exit 0
  sleep 0.2
done
echo "start-dockerd: dockerd did not answer within 20 s; see $log" >&2
exit 0
