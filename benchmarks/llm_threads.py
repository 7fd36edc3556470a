"""llama.cpp's thread count and OpenMP wait policy, on an idle machine and on one where other
processes keep cores busy: prompt and generation rates from llama.cpp's own timings, each as a
ratio to one thread on the idle machine (the old default) in the same run.

    .venv/bin/python -m benchmarks.llm_threads [--model qwen2.5-coder-1.5b] [--requests 2]
        [--prompt-words 300] [--max-tokens 20] [--busy N]

Each configuration runs in a fresh process (libgomp reads its wait policy once, at load).
"default" is libgomp's own policy (spin a while, then sleep), which Citeline used before it chose
"passive" (`citeline.llm.llama`). The busy processes are plain Python loops, `--busy` of them (default: one per core), started
before and stopped after each busy configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT
from citeline.llm.llama import WAIT_POLICY, cores

BUSY_LOOP = "import time\nend = time.monotonic() + 900\nwhile time.monotonic() < end: pass\n"
TEXT = (
    "the package manager installs removes and upgrades software while keeping track of "
    "which files belong to which package and which versions depend on each other "
)


def child(model: str, threads: int, requests: int, words: int, max_tokens: int) -> None:
    if WAIT_POLICY not in os.environ:
        # libgomp's own default (spin a while, then sleep), as before Citeline chose passive:
        # loaded now, before `import_llama` would set the policy.
        import xllamacpp  # noqa: F401

    from citeline.llm.bundled import gguf_path
    from citeline.llm.providers.local import LocalModel, LocalModelConfig

    path = gguf_path(model, ROOT / ".cache" / "models")
    llama = LocalModel(LocalModelConfig(path=path, threads=threads, name=model))
    vocabulary = TEXT.split()
    text = " ".join(vocabulary[i % len(vocabulary)] for i in range(words))
    rows = []
    for number in range(requests + 1):  # the first warms the weights into the caches
        timings: dict[str, Any] = {}

        def on_chunk(chunk: Any, into: dict[str, Any] = timings) -> None:
            if isinstance(chunk, dict) and chunk.get("timings"):
                into.update(chunk["timings"])

        body = {
            # A new first line each time: nothing is reused from the prompt cache.
            "messages": [{"role": "user", "content": f"{time.time_ns()} {number}\n{text}"}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
        }
        llama.chat(body, on_chunk)
        if number:
            rows.append(timings)
    print(
        json.dumps(
            {
                "prompt_tps": statistics.median(r["prompt_per_second"] for r in rows),
                "gen_tps": statistics.median(r["predicted_per_second"] for r in rows),
                "prompt_tokens": statistics.median(r["prompt_n"] for r in rows),
            }
        )
    )


def run_config(args: argparse.Namespace, threads: int, policy: str, busy: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != WAIT_POLICY}
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{ROOT}"
    if policy != "default":
        env[WAIT_POLICY] = policy
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.llm_threads",
                "--child",
                str(threads),
                "--model",
                args.model,
                "--requests",
                str(args.requests),
                "--prompt-words",
                str(args.prompt_words),
                "--max-tokens",
                str(args.max_tokens),
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
            check=True,
        )
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"threads": threads, "policy": policy, "busy": busy, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument("--prompt-words", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=20)
    parser.add_argument("--busy", type=int, default=cores(), help="busy processes")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.child is not None:
        child(args.model, args.child, args.requests, args.prompt_words, args.max_tokens)
        return
    every = cores()
    configs = [(1, "default", 0), (every, "default", 0), (every, "passive", 0)]
    if args.busy:
        configs += [(1, "default", args.busy), (every, "default", args.busy)]
        configs += [(every, "passive", args.busy)]
    rows = [run_config(args, *config) for config in configs]
    base = rows[0]
    print(f"{'threads':>7} {'policy':>8} {'busy':>4} {'prompt tok/s':>12} {'gen tok/s':>9}"
          "  ratio prompt / gen (to 1 thread, idle)")  # fmt: skip
    for row in rows:
        row["prompt_ratio"] = round(row["prompt_tps"] / base["prompt_tps"], 2)
        row["gen_ratio"] = round(row["gen_tps"] / base["gen_tps"], 2)
        print(
            f"{row['threads']:>7} {row['policy']:>8} {row['busy']:>4} "
            f"{row['prompt_tps']:>12.1f} {row['gen_tps']:>9.1f}  "
            f"{row['prompt_ratio']:.2f} / {row['gen_ratio']:.2f}"
        )
    out = args.out or ROOT / "benchmarks" / "results" / "llm_threads.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "cores": every, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
