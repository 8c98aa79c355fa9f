"""The real Evolution API and Dify, built from their archives and run on loopback (scripts/upstreams.sh).

Build and run steps follow ../shared/upstream/README.md; the modules are run with the project's
.venv Python (stdlib, httpx and python-dotenv).
"""
