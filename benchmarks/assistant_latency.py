"""Time to the first token of an assistant reply, without a tool step (the model answers at
once) and with one (the model calls `search_knowledge_base`, Citeline searches, then the model
answers), against a real `citeline serve` with one worker: from `POST .../messages` to the
run's first `token` event on its SSE stream, and to its `complete` event. The ratio says what
one tool step adds to the wait. The model is a scripted OpenAI-compatible server by default
(so the figure is Citeline's own cost, with `--model-delay` seconds per model call), or the
bundled local model with `--local`.

    .venv/bin/python -m benchmarks.assistant_latency [--replies 5] [--local]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx
from tests.fake_llm_server import FakeLLMServer, Reply, Respond

from benchmarks.common import bench_engines, serving, summary
from citeline.llm.messages import ToolCall

LIGHTHOUSE = (
    "# The Lighthouse of Varnholm\n\nThe lighthouse of Varnholm was built in 1847 by the "
    "engineer Maren Tolvik.\nIts lamp burned whale oil until 1902.\n"
)
QUESTION = "When was the lighthouse of Varnholm built?"
ANSWER = "The lighthouse of Varnholm was built in 1847 by the engineer Maren Tolvik [1]."


class Script:
    """Calls the search tool first when tools are offered; answers otherwise."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __call__(self, body: dict[str, Any]) -> Reply:
        time.sleep(self.delay)
        messages = body["messages"]
        if body.get("tools") and not any(m["role"] == "tool" for m in messages):
            call = ToolCall(
                id="call_1", name="search_knowledge_base", arguments={"query": QUESTION}
            )
            return Reply(tool_calls=(call,))
        return Reply(ANSWER, chunks=6)


def prepare(base: str, model: FakeLLMServer | None) -> None:
    if model is not None:
        added = httpx.post(f"{base}/v1/models", json={"name": "scripted", "provider": "openai",
                           "model": "m", "base_url": model.openai_base_url})  # fmt: skip
        added.raise_for_status()
        httpx.put(
            f"{base}/v1/models/assistant/routes", json={"routes": [{"model": "scripted@1"}]}
        ).raise_for_status()
    kb: str = httpx.post(f"{base}/v1/knowledge-bases", json={"name": "harbour"}).json()["id"]
    httpx.post(
        f"{base}/v1/knowledge-bases/{kb}/documents",
        files=[("files", ("lighthouse.md", LIGHTHOUSE.encode()))],
    ).raise_for_status()
    deadline = time.monotonic() + 120
    while httpx.get(f"{base}/v1/knowledge-bases/{kb}").json()["chunk_count"] == 0:
        if time.monotonic() > deadline:
            raise SystemExit("the document was not indexed within 120 s")
        time.sleep(0.2)


def reply(base: str, *, tool: bool) -> dict[str, float]:
    """One reply in a new conversation: seconds to its first token and to its end."""
    body: dict[str, Any] = {"knowledge_bases": ["harbour"]} if tool else {"tools": []}
    made = httpx.post(f"{base}/v1/assistant/conversations", json=body)
    made.raise_for_status()
    conversation = made.json()["id"]
    seen: dict[str, float] = {}
    start = time.perf_counter()
    sent = httpx.post(
        f"{base}/v1/assistant/conversations/{conversation}/messages", json={"content": QUESTION}
    )
    sent.raise_for_status()
    events = sent.json()["events_url"]
    with httpx.stream("GET", f"{base}{events}", timeout=600) as response:
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            kind = json.loads(line[6:])["type"]
            now = time.perf_counter() - start
            if kind == "token":
                seen.setdefault("first_token", now)
            if kind in ("tool_request", "tool_result"):
                seen.setdefault(kind, now)
            if kind in ("complete", "error"):
                seen["end"] = now
                if kind == "error":
                    raise SystemExit(f"the run failed: {line[:300]}")
            if kind in {"finished", "failed", "stopped"}:
                break
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=5, help="of each kind")
    parser.add_argument("--model-delay", type=float, default=0.0, help="scripted model's wait")
    parser.add_argument("--local", action="store_true", help="the bundled local model")
    args = parser.parse_args()
    env = {"CITELINE_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1"}
    plain: dict[str, list[float]] = {"first_token": [], "end": []}
    tooled: dict[str, list[float]] = {"first_token": [], "end": [], "tool_result": []}
    with (
        FakeLLMServer(default=Respond(Script(args.model_delay))) as model,
        bench_engines() as (settings, _),
        serving(settings, workers=1, env=env) as (base, _pid),
    ):
        prepare(base, None if args.local else model)
        reply(base, tool=False)  # warm: the worker's first model call, the embedder
        reply(base, tool=True)
        for _ in range(args.replies):  # alternate, so drift in load hits both alike
            for key, value in reply(base, tool=False).items():
                plain.setdefault(key, []).append(value)
            for key, value in reply(base, tool=True).items():
                tooled.setdefault(key, []).append(value)
    print(
        f"## assistant reply latency, {'bundled local model' if args.local else 'scripted model'}"
    )
    print(f"no tool step,  first token: {summary(plain['first_token'])}")
    print(f"one tool step, first token: {summary(tooled['first_token'])}")
    print(f"one tool step, tool result: {summary(tooled['tool_result'])}")
    print(f"no tool step,  complete:    {summary(plain['end'])}")
    print(f"one tool step, complete:    {summary(tooled['end'])}")
    ratio = sum(tooled["first_token"]) / max(1e-9, sum(plain["first_token"]))
    print(f"ratio first token with / without a tool step: {ratio:.2f}")


if __name__ == "__main__":
    main()
