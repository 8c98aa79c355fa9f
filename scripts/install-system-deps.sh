#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real, when they are missing, and make sure a
# Docker engine runs (dockerd --bridge=none --iptables=false: loopback and host networking only).
#   docker.io                       the engine for log following, L3 restarts and image builds
#   docker-compose                  `docker-compose config`: the compose overlay merged with upstream's file
#   prometheus, prometheus-alertmanager   promtool/amtool checks and the end-to-end alert test
#   haproxy                         the least-privilege Docker socket proxy, tested for real
#   chromium                        the status page, rendered headless
#   redis-server                    the leader lease between two replicas; Dify's redis (scripts/upstreams.sh)
#   postgresql                      the real Evolution API's and Dify's database (scripts/upstreams.sh)
#   nodejs, npm                     only when no `node` is on PATH: the real Evolution API's runtime
#                                   (machines of this kind ship Node 20; Evolution needs Node 20 or newer)
#   busybox-static                  a tiny local base image (no registry pulls)
#   wrk                             the load generator of the webhook-ingest benchmark (make bench)
#   faketime                        libfaketime: steps a running daemon's real wall clock (clock-step chaos test)
set -euo pipefail
PACKAGES=(docker.io docker-compose prometheus prometheus-alertmanager haproxy chromium redis-server busybox-static wrk postgresql faketime)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-system-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
exec "$(dirname "$0")/start-dockerd.sh"
