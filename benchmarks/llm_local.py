"""The local llama.cpp provider against `xllamacpp` called directly, in one process, with the
same model file, the same request body and the same thread count.

1. Throughput: prompt processing and generation tokens/s through `LocalProvider.stream(...)`
   (a thread, the chunk callback relayed through a queue, `ChunkReader` turning chunks into
   events) versus `Server.handle_chat_completions(body, callback)` on the calling thread with a
   callback that only notes times (the floor). Both paths use the **same `xllamacpp.Server`
   object**, the one Citeline loaded (`load_model(config).server`): one load, the same weights
   and the same KV cache, so the ratio isolates what Citeline adds on top of llama.cpp. The
   body is the one Citeline builds (`request_body(None, request, stream=True)`). Rates come
   from the caller's clock and usage's token counts: prompt tokens/s = uncached input tokens /
   time to first token; generation tokens/s = (output tokens - 1) / (end - first token).
   llama.cpp's own `timings` are reported for both paths (on Citeline's path they are read by a
   pass-through wrapper around the server, one dict lookup per chunk). Every measured request
   starts its system message with a fresh random nonce, so no request reuses another's prompt
   cache beyond the chat template's first tokens (`cached` shows it). Temperature 0, a fixed
   `max_tokens` and a request to count to 200 in words, so both paths generate the same number of
   tokens (checked; the rates are per token anyway). The paths alternate (A B, B A, ...) and
   medians are reported.
2. Time to first token through Citeline for a prompt of passages (~700 tokens by default):
   cold (unique prefix), then a follow-up with the same system message and passages and a
   different question, with the prompt cache warm.
3. Resident memory of each model: RSS before and after loading, and after a first short
   request, each in a fresh subprocess (`--rss-only MODEL`) for a clean number.

    .venv/bin/python -m benchmarks.llm_local [--model qwen2.5-coder-0.5b] [--threads 1]
        [--repeats 3] [--context-tokens 4096] [--rss-models MODEL ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from citeline.llm.bundled import gguf_path
from citeline.llm.messages import ChatRequest, Finish, Message, TextDelta, Usage
from citeline.llm.providers.local import LocalModelConfig, LocalProvider, load_model
from citeline.llm.providers.openai_wire import request_body, usage_from

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / ".cache" / "models"
MIB = 1 << 20

SYSTEM = """You are Citeline. You answer a question using only the numbered passages given.
Rules:
- State only what the passages say. Do not add outside knowledge.
- End every sentence with the number of the passage it relies on, like [1] or [2][3].
- If the passages do not contain the answer, reply exactly: NOT FOUND"""

PASSAGES = [
    "APT is the front end most Debian users meet first. It reads the package lists named in "
    "/etc/apt/sources.list and the files under /etc/apt/sources.list.d, downloads the index of "
    "every configured repository with `apt update`, and resolves the dependencies of the "
    "packages a user asks for before handing the actual installation to dpkg.",
    "dpkg is the low-level tool that unpacks a .deb archive, runs its maintainer scripts and "
    "records the installed files in /var/lib/dpkg. It does not download anything and does not "
    "resolve dependencies: installing a package whose dependencies are missing leaves it "
    "unconfigured until they are installed, for example with `apt --fix-broken install`.",
    "A Debian release moves through three suites. Unstable (always called sid) receives new "
    "uploads; packages migrate to testing after a delay without release-critical bugs; at "
    "release time testing is frozen and becomes the new stable, which from then on only "
    "receives security updates and carefully reviewed fixes through point releases.",
    "Security updates for stable are published on security.debian.org by the security team. "
    "The line for the security archive must be present in the sources list; unattended "
    "upgrades can install these updates automatically every day, and the debsecan tool lists "
    "the vulnerabilities that affect the packages installed on a machine.",
    "Configuration files listed as conffiles are never overwritten silently. When an upgrade "
    "ships a new version of a file the administrator has changed, dpkg asks whether to keep "
    "the local version, install the maintainer's, or show the differences; a non-interactive "
    "upgrade can choose with the --force-confold or --force-confnew options.",
    "Packages are built from source packages, each made of an upstream tarball, a debian "
    "directory with the packaging, and a .dsc file that describes them. `apt source` fetches "
    "one, `apt build-dep` installs what building it needs, and dpkg-buildpackage produces the "
    "binary .deb files, normally inside a clean chroot made with sbuild or pbuilder.",
    "Pinning lets a machine take some packages from another suite without upgrading "
    "everything. Preferences in /etc/apt/preferences.d give each origin a priority; a package "
    "from a suite with priority 100 is installed only when asked for explicitly, while one "
    "above 1000 is installed even if that means a downgrade.",
    "The Debian Free Software Guidelines decide what enters the main archive. Software that "
    "is free but depends on non-free software goes to contrib; firmware and programs whose "
    "licences restrict use or modification go to non-free or non-free-firmware, which are "
    "not part of Debian proper but are built and distributed by the same infrastructure.",
]

LIST_SYSTEM = "You are a helpful assistant. Follow the user's instructions exactly."
LIST_QUESTION = (
    "Ignore the passages for this one. Count from one to two hundred in English words, one "
    "number per line: one, two, three, and so on. Do not stop early."
)
COLD_QUESTION = "How does a package move from unstable to stable?"
WARM_QUESTION = "What does dpkg do when an upgrade changes a configuration file I edited?"


def build_request(
    nonce: str, passages: list[str], question: str, max_tokens: int, system: str = SYSTEM
) -> ChatRequest:
    quoted = "\n\n".join(f"[{i}]\n<passage>\n{p}\n</passage>" for i, p in enumerate(passages, 1))
    return ChatRequest(
        messages=[
            Message.system(f"{nonce} {system}"),
            Message.user(f"Passages:\n\n{quoted}\n\nQuestion: {question}"),
        ],
        max_tokens=max_tokens,
        temperature=0.0,
        seed=1,
    )


def passages_for(count: int) -> list[str]:
    return [PASSAGES[i % len(PASSAGES)] for i in range(count)]


def nonce() -> str:
    return secrets.token_hex(4)


def chars(request: ChatRequest) -> int:
    return sum(len(m.content) for m in request.messages)


@dataclass
class Sample:
    path: str
    usage: Usage
    ttft: float  # request start -> first token with text
    gen_seconds: float  # first token -> reply complete
    finish: str
    timings: dict[str, Any] = field(default_factory=dict)  # llama.cpp's own

    @property
    def prompt_rate(self) -> float:
        return (self.usage.input_tokens - self.usage.cached_tokens) / self.ttft

    @property
    def gen_rate(self) -> float:
        return (self.usage.output_tokens - 1) / self.gen_seconds


class TimingsTap:
    """Stands in for the `xllamacpp.Server` inside Citeline's `LocalModel` and passes every call
    through, keeping the `timings` of the last chunk (one dict lookup per chunk)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.timings: dict[str, Any] = {}

    def handle_chat_completions(
        self, body: dict[str, Any], callback: Callable[[dict[str, Any]], bool]
    ) -> Any:
        def relay(chunk: dict[str, Any]) -> bool:
            if "timings" in chunk:
                self.timings = chunk["timings"]
            return callback(chunk)

        return self.server.handle_chat_completions(body, relay)


def via_citeline(provider: LocalProvider, tap: TimingsTap, request: ChatRequest) -> Sample:
    tap.timings = {}
    first: float | None = None
    finish: Finish | None = None
    began = time.perf_counter()
    for event in provider.stream("local", request):
        if isinstance(event, TextDelta):
            if first is None:
                first = time.perf_counter()
        elif isinstance(event, Finish):
            finish = event
    end = time.perf_counter()
    assert first is not None and finish is not None
    return Sample(
        "citeline", finish.usage, first - began, end - first, finish.reason.value, tap.timings
    )


def direct(server: Any, request: ChatRequest) -> Sample:
    body = request_body(None, request, stream=True)
    first: float | None = None
    last: dict[str, Any] = {}
    finish = ""

    def on_chunk(chunk: dict[str, Any]) -> bool:
        nonlocal first, last, finish
        for choice in chunk.get("choices") or ():
            if first is None and (choice.get("delta") or {}).get("content"):
                first = time.perf_counter()
            finish = choice.get("finish_reason") or finish
        if chunk.get("usage"):
            last = chunk
        return False

    began = time.perf_counter()
    outcome = server.handle_chat_completions(body, on_chunk)
    end = time.perf_counter()
    if isinstance(outcome, dict) and "error" in outcome:
        raise RuntimeError(outcome["error"])
    assert first is not None and last
    return Sample(
        "direct",
        usage_from(last["usage"]),
        first - began,
        end - first,
        finish,
        last.get("timings") or {},
    )


def _busy(times: Any) -> float:
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _own() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


@dataclass
class Noise:
    """Load average and how many cores other processes kept busy over a stretch of the run."""

    began: float = field(default_factory=time.perf_counter)
    busy: float = field(default_factory=lambda: _busy(psutil.cpu_times()))
    own: float = field(default_factory=_own)
    load_before: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def report(self) -> str:
        wall = time.perf_counter() - self.began
        other = (_busy(psutil.cpu_times()) - self.busy - (_own() - self.own)) / wall
        before = ", ".join(f"{x:.2f}" for x in self.load_before)
        after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        return (
            f"load average before {before}, after {after}; other processes kept "
            f"{max(other, 0.0):.2f} of {psutil.cpu_count()} cores busy over {wall:.0f} s"
        )


def own(sample: Sample, key: str) -> float:
    return float(sample.timings.get(key, "nan"))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def throughput(
    provider: LocalProvider, tap: TimingsTap, server: Any, args: argparse.Namespace
) -> float:
    """Part 1; returns the characters per prompt token seen, to size part 2's prompt."""
    passages = passages_for(args.passages)
    runners: dict[str, Callable[[ChatRequest], Sample]] = {
        "citeline": lambda r: via_citeline(provider, tap, r),
        "direct": lambda r: direct(server, r),
    }
    for run in runners.values():  # warm-up: first-request allocations, not measured
        run(build_request(nonce(), passages[:1], LIST_QUESTION, 8, LIST_SYSTEM))
    noise = Noise()
    samples: dict[str, list[Sample]] = {"citeline": [], "direct": []}
    order = ["citeline", "direct"]
    ratio = float("nan")
    for rep in range(args.repeats):
        for name in order if rep % 2 == 0 else order[::-1]:
            request = build_request(nonce(), passages, LIST_QUESTION, args.max_tokens, LIST_SYSTEM)
            sample = runners[name](request)
            samples[name].append(sample)
            ratio = chars(request) / sample.usage.input_tokens
            print(
                f"  rep {rep + 1} {name:8}: in {sample.usage.input_tokens} (cached "
                f"{sample.usage.cached_tokens}) out {sample.usage.output_tokens} "
                f"{sample.finish}; ttft {sample.ttft:.3f} s, prompt {sample.prompt_rate:.1f} "
                f"tok/s, gen {sample.gen_rate:.2f} tok/s; llama.cpp prompt "
                f"{sample.timings.get('prompt_per_second', float('nan')):.1f}, gen "
                f"{sample.timings.get('predicted_per_second', float('nan')):.2f}",
                file=sys.stderr,
            )
    print()
    print(
        f"### Throughput: {args.repeats} interleaved repetitions, medians "
        f"({args.passages} passages + a request to count to 200 in words, max_tokens {args.max_tokens}, "
        "temperature 0)"
    )
    print()
    print(
        "| path | input tok (cached) | output tok | time to first token | prompt tok/s "
        "| gen tok/s | llama.cpp prompt tok/s | llama.cpp gen tok/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows: dict[str, dict[str, float]] = {}
    for name, group in samples.items():
        rows[name] = {
            "prompt": median([s.prompt_rate for s in group]),
            "gen": median([s.gen_rate for s in group]),
            "lprompt": median([own(s, "prompt_per_second") for s in group]),
            "lgen": median([own(s, "predicted_per_second") for s in group]),
        }
        print(
            f"| {'Citeline `LocalProvider.stream`' if name == 'citeline' else 'xllamacpp direct'} "
            f"| {median([s.usage.input_tokens for s in group]):.0f} "
            f"({median([s.usage.cached_tokens for s in group]):.0f}) "
            f"| {'/'.join(str(s.usage.output_tokens) for s in group)} "
            f"| {median([s.ttft for s in group]):.3f} s | {rows[name]['prompt']:.1f} "
            f"| {rows[name]['gen']:.2f} | {rows[name]['lprompt']:.1f} | {rows[name]['lgen']:.2f} |"
        )
    c, d = rows["citeline"], rows["direct"]
    print(
        f"| **ratio Citeline / direct** | | | | **{c['prompt'] / d['prompt']:.3f}** "
        f"| **{c['gen'] / d['gen']:.3f}** | {c['lprompt'] / d['lprompt']:.3f} "
        f"| {c['lgen'] / d['lgen']:.3f} |"
    )
    per_rep = [
        f"{a.prompt_rate / b.prompt_rate:.3f}/{a.gen_rate / b.gen_rate:.3f}"
        for a, b in zip(samples["citeline"], samples["direct"], strict=True)
    ]
    print()
    print(f"Per-repetition ratios (prompt/gen): {', '.join(per_rep)}.")
    # The caller's clock against llama.cpp's own, request by request: what the path adds on
    # top of the engine, whatever speed the (shared) machine gave the engine at that moment.
    print()
    print(
        "Caller's rate / llama.cpp's own rate, median per request (1.000 = the path adds "
        "nothing): "
        + "; ".join(
            f"{name} prompt {median([s.prompt_rate / own(s, 'prompt_per_second') for s in group]):.4f}, "
            f"gen {median([s.gen_rate / own(s, 'predicted_per_second') for s in group]):.4f}"
            for name, group in samples.items()
        )
        + "."
    )
    outputs = {s.usage.output_tokens for group in samples.values() for s in group}
    if len(outputs) > 1:
        print(f"Output lengths differ between requests ({sorted(outputs)}); rates are per token.")
    print(f"Noise: {noise.report()}.")
    return ratio


def time_to_first_token(provider: LocalProvider, tap: TimingsTap, args: argparse.Namespace) -> None:
    """Part 2: a cold prompt of passages, then the same prefix with another question."""
    per_token = args.chars_per_token
    count = 1
    while (
        chars(build_request(nonce(), passages_for(count), COLD_QUESTION, 1)) / per_token
        < args.ttft_prompt_tokens
    ):
        count += 1
    noise = Noise()
    cold: list[Sample] = []
    warm: list[Sample] = []
    for rep in range(args.repeats):
        prefix = nonce()
        cold.append(
            via_citeline(
                provider, tap, build_request(prefix, passages_for(count), COLD_QUESTION, 16)
            )
        )
        warm.append(
            via_citeline(
                provider, tap, build_request(prefix, passages_for(count), WARM_QUESTION, 16)
            )
        )
        print(
            f"  rep {rep + 1}: cold ttft {cold[-1].ttft:.3f} s ({cold[-1].usage.input_tokens} "
            f"in, {cold[-1].usage.cached_tokens} cached), warm ttft {warm[-1].ttft:.3f} s "
            f"({warm[-1].usage.input_tokens} in, {warm[-1].usage.cached_tokens} cached)",
            file=sys.stderr,
        )
    print()
    print(
        f"### Time to first token through Citeline, {count} passages "
        f"(target ~{args.ttft_prompt_tokens} tokens), medians of {args.repeats}"
    )
    print()
    print(
        "| request | input tokens | cached tokens | time to first token "
        "| llama.cpp prompt_ms (prompt_n) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for label, group in (("cold (unique prefix)", cold), ("same prefix, new question", warm)):
        print(
            f"| {label} | {median([s.usage.input_tokens for s in group]):.0f} "
            f"| {median([s.usage.cached_tokens for s in group]):.0f} "
            f"| {median([s.ttft for s in group]):.3f} s "
            f"| {median([float(s.timings.get('prompt_ms', 'nan')) for s in group]):.0f} "
            f"({median([float(s.timings.get('prompt_n', 'nan')) for s in group]):.0f}) |"
        )
    print()
    print(f"Noise: {noise.report()}.")


def rss_only(model: str, args: argparse.Namespace) -> None:
    """Run in a fresh process: RSS before and after loading one model, and after a first short
    request; prints one JSON object."""
    import xllamacpp  # noqa: F401 - its import counts in the baseline, not in the model

    process = psutil.Process()
    config = config_for(model, args)
    before = process.memory_info().rss
    began = time.perf_counter()
    load_model(config)
    load_seconds = time.perf_counter() - began
    loaded_info = process.memory_info()
    provider = LocalProvider(config)
    for _ in provider.stream("local", build_request(nonce(), passages_for(2), COLD_QUESTION, 8)):
        pass
    after_request = process.memory_info().rss
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "model": model,
                "file_bytes": config.path.stat().st_size,
                "n_ctx": config.context_tokens,
                "before": before,
                "loaded": loaded_info.rss,
                "loaded_file": loaded_info.shared,  # file-backed and shared pages: the mmapped GGUF
                "after_request": after_request,
                "peak": peak,
                "load_seconds": load_seconds,
            }
        )
    )


def memory(models: list[str], args: argparse.Namespace) -> None:
    results = []
    for model in models:
        command = [
            sys.executable,
            "-m",
            "benchmarks.llm_local",
            "--rss-only",
            model,
            "--threads",
            str(args.threads),
            "--context-tokens",
            str(args.context_tokens),
            "--models-dir",
            str(args.models_dir),
        ]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print()
    print("### Resident memory, one fresh process per model (psutil RSS)")
    print()
    print(
        "| model | GGUF file | n_ctx | RSS before load | after load (of it file-backed) "
        "| after a first request | added by the model | peak (ru_maxrss) | load s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['model']} | {r['file_bytes'] / MIB:.0f} MiB | {r['n_ctx']} "
            f"| {r['before'] / MIB:.0f} MiB "
            f"| {r['loaded'] / MIB:.0f} MiB ({r['loaded_file'] / MIB:.0f} MiB) "
            f"| {r['after_request'] / MIB:.0f} MiB "
            f"| {(r['after_request'] - r['before']) / MIB:.0f} MiB | {r['peak'] / MIB:.0f} MiB "
            f"| {r['load_seconds']:.2f} |"
        )


def config_for(model: str, args: argparse.Namespace) -> LocalModelConfig:
    return LocalModelConfig(
        path=gguf_path(model, args.models_dir),
        context_tokens=args.context_tokens,
        threads=args.threads,
        cache_ram_mib=args.cache_ram_mib,
    )


@contextmanager
def tapped(config: LocalModelConfig) -> Iterator[tuple[TimingsTap, Any]]:
    """Citeline's loaded model with its server behind a `TimingsTap`; yields the tap and the
    raw server for the direct path."""
    loaded = load_model(config)
    server = loaded.server
    tap = TimingsTap(server)
    loaded.server = tap
    try:
        yield tap, server
    finally:
        loaded.server = server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="bundled name or .gguf")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--context-tokens", type=int, default=4096)
    parser.add_argument("--cache-ram-mib", type=int, default=256, help="as Citeline's default")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--passages", type=int, default=2, help="in the throughput prompt")
    parser.add_argument("--ttft-prompt-tokens", type=int, default=700)
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument(
        "--rss-models", nargs="*", help="models to measure RSS of (default: --model; none: skip)"
    )
    parser.add_argument("--rss-only", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_only:
        rss_only(args.rss_only, args)
        return

    config = config_for(args.model, args)  # assembles a split model into --models-dir once
    rss_models = [args.model] if args.rss_models is None else args.rss_models
    print(
        f"## {args.model}: {config.path.name}, n_ctx {args.context_tokens}, "
        f"{args.threads} thread(s), cache_ram_mib {args.cache_ram_mib}, "
        f"{psutil.cpu_count()} cores; load average at start "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if rss_models:
        memory(rss_models, args)
    began = time.perf_counter()
    load_model(config)
    print()
    print(f"Loaded in {time.perf_counter() - began:.2f} s (file in the page cache).")
    provider = LocalProvider(config)
    with tapped(config) as (tap, server):
        args.chars_per_token = throughput(provider, tap, server, args)
        time_to_first_token(provider, tap, args)


if __name__ == "__main__":
    main()
