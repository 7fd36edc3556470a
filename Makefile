.PHONY: run test check setup bench

setup:
	scripts/setup.sh --all-groups

run:
	scripts/run.sh

test:
	scripts/test.sh

check: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/mypy
	PYTHONPATH=src .venv/bin/lint-imports --no-cache

bench: setup
	.venv/bin/python -m benchmarks.jobs_throughput
	.venv/bin/python -m benchmarks.sse_fanout
