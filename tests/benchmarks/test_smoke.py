"""Every benchmark runs, at a smoke size: a benchmark nothing runs rots. The figures are not
checked here (timing goals are measured as ratios by running the benchmarks themselves)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow]

SMOKE = {
    "auth_overhead": ["--requests", "20", "--rounds", "1"],
    "mcp_overhead": ["--calls", "10", "--rounds", "1"],
    "cli_startup": ["--repeats", "1", "--knowledge-bases", "1", "--commands", "kb list"],
    "tracing_overhead": ["--requests", "20", "--rounds", "1"],
    "jobs_throughput": ["--jobs", "30", "--latency-jobs", "3"],
    "sse_fanout": ["--clients", "10", "--events", "5"],
    # A small corpus: the smoke proves the benchmark runs, not how fast ingestion is.
    "ingestion_throughput": ["--copies", "1", "--corpus", "benchmarks/data/tools-faq/corpus"],
    "retrieval_quality": ["--pages", "2"],
    "search_scale": ["--chunks", "2000", "--queries", "20", "--recall-texts", "0"],
    "llm_local": ["--model", "smollm2-135m", "--repeats", "1", "--max-tokens", "8",
                  "--ttft-prompt-tokens", "100", "--rss-models"],
    "llm_threads": ["--model", "smollm2-135m", "--requests", "1", "--prompt-words", "30",
                    "--max-tokens", "4", "--busy", "0"],
    "passage_choice": ["--sets", "tools", "--limit", "2", "--extra", "0"],
    "answer_quality": ["--set", "tools", "--limit", "1", "--extra", "0", "--judge", ""],
    "answer_quality:rescore": ["--set", "tools", "--rescore",
                               "tests/data/answer_results_sample.json"],
    "answer_quality:reverify": ["--set", "tools", "--reverify",
                                "tests/data/answer_results_sample.json"],
    "judge_calibration": ["--results", "tests/data/answer_results_sample.json", "--pairs", "1",
                          "--judge", "smollm2-135m"],
    "page_latency": ["--questions", "1"],
    "shared_model": ["--workers", "1", "--concurrent", "1", "--max-tokens", "4"],
    "report_exports": ["--sections", "1", "--repeats", "1"],
    "agent_tasks": ["--tasks", "4", "--priority-tasks", "12"],
    "report_quality": ["--topics", "1", "--sections", "1", "--no-speed-up",
                       "--model", "smollm2-135m", "--pages", "3", "--no-judge"],
    "assistant_latency": ["--replies", "1"],
    "tool_choice": ["--model", "smollm2-135m", "--limit", "1"],
    # Needs root (network namespaces), as tests/cluster does.
    "cluster_scaling": ["--work-jobs", "4", "--work-seconds", "0.2", "--documents", "2",
                        "--deaths", "1", "--hosts", "2"],
    "agent_builder": ["--conversations", "1"],
    "mcp_server": ["--queries", "5", "--rounds", "1", "--documents", "2"],
    "mcp_guard": ["--calls", "10", "--rounds", "1"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_benchmark_runs(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITELINE_", "OTEL_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["CITELINE_MODELS_DIR"] = str(ROOT / ".cache" / "models")
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name.partition(':')[0]}", *SMOKE[name]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{name} printed nothing"
