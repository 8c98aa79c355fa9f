"""The benchmark suite: `make bench` (or `python -m benchmarks`) runs every section and writes
benchmarks/results/latest.md and latest.json; `python -m benchmarks --smoke` is the seconds-long
version the test suite runs so the suite cannot rot. Load only ever goes to loopback."""
