"""The shared model server against a model per worker, in one run on the same engines.

For each design, `citeline serve` with N workers (default 2) on the default bundled model:
a warm-up round of N concurrent chat completions (every worker, or the one server, loads the
model), then a measured round of `--concurrent` (default 4) chat completions sent at once
through the OpenAI-compatible API, each a passage-sized prompt and `--max-tokens` of reply.
Reported per design: wall time of the measured round, answers per minute and output tokens per
second, and the proportional set size (PSS) summed over `serve` and all its children (workers,
and the model server) after answering. Ratios: shared / per-worker.

    .venv/bin/python -m benchmarks.shared_model [--workers 2] [--concurrent 4] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import time

import httpx
import psutil

from benchmarks.common import bench_engines, serving
from benchmarks.llm_local import PASSAGES, SYSTEM

GIB = 1 << 30
QUESTIONS = [
    "Which tool downloads the package indexes?",
    "What does dpkg record, and where?",
    "How does a package reach testing?",
    "Where are security updates for stable published?",
]


def tree_pss(pid: int) -> int:
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
    return total


def ask(base: str, question: str, max_tokens: int) -> int:
    passages = "\n\n".join(f"[{n}] {text}" for n, text in enumerate(PASSAGES, 1))
    response = httpx.post(
        f"{base}/v1/chat/completions",
        json={
            "model": "default",
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"{passages}\n\nQuestion: {question}"},
            ],
            "max_tokens": max_tokens,
            "temperature": 0,
        },
        timeout=900,
    )
    response.raise_for_status()
    return int(response.json()["usage"]["completion_tokens"])


def round_of(base: str, count: int, max_tokens: int) -> tuple[float, int]:
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        tokens = list(
            pool.map(lambda n: ask(base, QUESTIONS[n % len(QUESTIONS)], max_tokens), range(count))
        )
    return time.monotonic() - started, sum(tokens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=48)
    arguments = parser.parse_args()

    figures: dict[str, tuple[float, int, int]] = {}
    with bench_engines() as (settings, _endpoints):
        for design, flag in (("per-worker", "false"), ("shared", "true")):
            env = {"CITELINE_LLM_SHARED_SERVER": flag}
            with serving(settings, workers=arguments.workers, env=env) as (base, pid):
                round_of(base, arguments.workers, 4)  # every copy of the model loads
                seconds, tokens = round_of(base, arguments.concurrent, arguments.max_tokens)
                figures[design] = (seconds, tokens, tree_pss(pid))
            print(
                f"{design:>10}: {arguments.concurrent} answers in {seconds:.1f} s "
                f"({arguments.concurrent * 60 / seconds:.1f}/min, {tokens / seconds:.1f} output "
                f"tokens/s); PSS of serve and its {arguments.workers} workers "
                f"{figures[design][2] / GIB:.2f} GiB",
                flush=True,
            )
    own, shared = figures["per-worker"], figures["shared"]
    print(
        f"shared / per-worker: throughput {own[0] / shared[0]:.2f}x, "
        f"memory {shared[2] / own[2]:.2f}x"
    )


if __name__ == "__main__":
    main()
