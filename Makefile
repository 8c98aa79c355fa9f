# The benchmark suite (issue 9). `make bench`: about 45 minutes on a 2-core machine (the faults section runs
# in real time, with a 30-minute soak); writes
# benchmarks/results/latest.md and latest.json. `make bench-smoke`: the seconds-long version CI runs.
.PHONY: bench bench-smoke

bench:
	./scripts/install-system-deps.sh
	./scripts/setup.sh
	.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	.venv/bin/python -m benchmarks

bench-smoke:
	.venv/bin/python -m benchmarks --smoke --out "$${TMPDIR:-/tmp}/evo-watchdog-bench-smoke"
