.PHONY: run test check setup bench deploy-check test-cluster

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

# Lints the Dockerfile (hadolint), validates deploy/compose.yaml against the Compose
# Specification and the kustomize renderings of deploy/k8s against the Kubernetes schemas.
deploy-check: setup
	.venv/bin/hadolint Dockerfile
	.venv/bin/pytest tests/unit/test_deploy.py -q -p no:cacheprovider

# The multi-host cluster on network namespaces (needs root): faults under load, no job lost.
# Figures land in test-artifacts/cluster/figures.json.
test-cluster: setup
	CITELINE_CLUSTER_TESTS=1 .venv/bin/pytest tests/cluster -q -p no:cacheprovider -s

# Every benchmark at full size (about an hour on 2 cores); CI runs each at a smoke size
# (tests/benchmarks/test_smoke.py).
bench: setup
	.venv/bin/python -m benchmarks.jobs_throughput
	.venv/bin/python -m benchmarks.sse_fanout
	.venv/bin/python -m benchmarks.auth_overhead
	.venv/bin/python -m benchmarks.mcp_overhead
	.venv/bin/python -m benchmarks.cli_startup
	.venv/bin/python -m benchmarks.tracing_overhead
	.venv/bin/python -m benchmarks.ingestion_throughput
	.venv/bin/python -m benchmarks.retrieval_quality
	.venv/bin/python -m benchmarks.search_scale
	.venv/bin/python -m benchmarks.llm_local
	.venv/bin/python -m benchmarks.llm_threads
	.venv/bin/python -m benchmarks.shared_model
	.venv/bin/python -m benchmarks.agent_tasks
	.venv/bin/python -m benchmarks.passage_choice
	.venv/bin/python -m benchmarks.answer_quality
	.venv/bin/python -m benchmarks.judge_calibration --results benchmarks/results/answers-debian.json
	.venv/bin/python -m benchmarks.report_exports
	.venv/bin/python -m benchmarks.report_quality
	.venv/bin/python -m benchmarks.cluster_scaling
	.venv/bin/python -m benchmarks.agent_builder
	.venv/bin/python -m benchmarks.mcp_server
	.venv/bin/python -m benchmarks.assistant_latency
	.venv/bin/python -m benchmarks.tool_choice
