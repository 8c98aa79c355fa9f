#!/usr/bin/env bash
# Audit every package installed in .venv for known vulnerabilities with pip-audit (--strict: a package
# that cannot be audited fails the run, as does any known vulnerability).
# Where api.osv.dev answers, pip-audit asks it directly. Where only PyPI is reachable (as on the build
# machines here), scripts/pip_audit_pypi.py serves PyPI's own advisories to pip-audit on loopback; those
# cover each project's latest release only, and any older release installed fails the audit.
# A vulnerability judged not to apply goes in ARGS as --ignore-vuln ID, with the reason beside it.
# A package kept below its latest release on purpose (a cap in pyproject.toml or in a dependency, once
# that release is out) goes in HELD_BACK with the reason: the PyPI fallback then reports it as NOT
# AUDITED on every run instead of failing; api.osv.dev audits it as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS=(--strict --progress-spinner off)
HELD_BACK=()
if .venv/bin/python -c 'import socket; socket.create_connection(("api.osv.dev", 443), timeout=5).close()' 2>/dev/null; then
  echo "audit-deps: pip-audit against api.osv.dev" >&2
  exec .venv/bin/pip-audit --vulnerability-service osv "${ARGS[@]}"
fi
echo "audit-deps: api.osv.dev unreachable; pip-audit against PyPI's advisories for the latest releases" >&2
exec .venv/bin/python scripts/pip_audit_pypi.py "${HELD_BACK[@]/#/--held-back=}" "${ARGS[@]}"
