"""Time from pressing Ask on the page to its first visible change, to the first server news
shown (the passages found) and to the first verified sentence shown, in Debian's Chromium
against a real `citeline serve` whose `answer` alias routes to a scripted model (the model's
own speed is llm_local's concern). The baseline is the same question over the API in the same
run: `POST /v1/answers?stream=true` to its `retrieval` and first `sentence` events; the ratios
say what the page adds.

    .venv/bin/python -m benchmarks.page_latency [--questions 5]
"""

from __future__ import annotations

import argparse
import json
import time

import httpx
from playwright.sync_api import Page, sync_playwright
from tests.fake_llm_server import FakeLLMServer, Reply

from benchmarks.common import bench_engines, serving, summary

LIGHTHOUSE = (
    "# The Lighthouse of Varnholm\n\nThe lighthouse of Varnholm was built in 1847 by the "
    "engineer Maren Tolvik.\nIts lamp burned whale oil until 1902.\n"
)
QUESTION = "When was the lighthouse of Varnholm built?"
ANSWER = "The lighthouse of Varnholm was built in 1847 by the engineer Maren Tolvik [1]."

# Watches the page from the click on: milliseconds to each change a person would notice.
WATCH = """() => {
  const start = performance.now();
  const seen = {};
  const turns = document.querySelectorAll('[data-testid="turn"]').length;
  const look = () => {
    const now = performance.now() - start;
    if (!seen.shown && document.querySelectorAll('[data-testid="turn"]').length > turns) seen.shown = now;
    const stage = document.querySelector('[data-testid="stage"]');
    if (!seen.news && stage && /Reading|Writing|Checking/.test(stage.textContent)) seen.news = now;
    const checked = document.querySelector('[data-testid="checked"]');
    const answer = document.querySelector('[data-testid="answer"]');
    if (!seen.sentence && ((checked && checked.textContent) || answer)) seen.sentence = now;
  };
  new MutationObserver(look).observe(document.body, { subtree: true, childList: true, characterData: true });
  window.__seen = seen;
}"""


def on_page(page: Page, base: str) -> dict[str, float]:
    page.goto(f"{base}/#/ask")
    page.get_by_role("button", name="New conversation").click()
    page.get_by_label("Question").fill(QUESTION)
    button = page.get_by_role("button", name="Ask", exact=True)
    page.wait_for_function("() => !document.querySelector('#ask-kb').disabled")
    page.evaluate(WATCH)
    button.click()
    page.wait_for_function("() => window.__seen.sentence !== undefined", timeout=60_000)
    seen: dict[str, float] = page.evaluate("window.__seen")
    page.get_by_test_id("answer").wait_for(timeout=60_000)
    return {key: value / 1000 for key, value in seen.items()}


def over_api(base: str, kb: str) -> dict[str, float]:
    seen: dict[str, float] = {}
    start = time.perf_counter()
    body = {"query": QUESTION, "knowledge_base": kb}
    with httpx.stream("POST", f"{base}/v1/answers?stream=true", json=body, timeout=60) as response:
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            kind = json.loads(line[6:])["type"]
            now = time.perf_counter() - start
            if kind == "retrieval":
                seen.setdefault("news", now)
            if kind == "sentence":
                seen.setdefault("sentence", now)
            if kind in {"finished", "failed", "stopped"}:
                break
    return seen


def prepare(base: str, model: FakeLLMServer) -> str:
    added = httpx.post(f"{base}/v1/models", json={"name": "scripted", "provider": "openai",
                       "model": "m", "base_url": model.openai_base_url})  # fmt: skip
    added.raise_for_status()
    httpx.put(
        f"{base}/v1/models/answer/routes", json={"routes": [{"model": "scripted@1"}]}
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
    return kb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=5)
    args = parser.parse_args()
    page_times: dict[str, list[float]] = {"shown": [], "news": [], "sentence": []}
    api_times: dict[str, list[float]] = {"news": [], "sentence": []}
    env = {"CITELINE_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1"}
    with (
        FakeLLMServer(default=Reply(ANSWER, chunks=6)) as model,
        bench_engines() as (settings, _),
        serving(settings, workers=1, env=env) as (base, _pid),
        sync_playwright() as playwright,
    ):
        kb = prepare(base, model)
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        on_page(page, base)  # warm: the model's first request, the page's modules
        over_api(base, kb)
        for _ in range(args.questions):
            for key, value in on_page(page, base).items():
                page_times[key].append(value)
            for key, value in over_api(base, kb).items():
                api_times[key].append(value)
        browser.close()
    print(f"page, first visible change (the question shown): {summary(page_times['shown'])}")
    for key, label in (("news", "passages found"), ("sentence", "first verified sentence")):
        print(f"page, {label}: {summary(page_times[key])}")
        print(f"API,  {label}: {summary(api_times[key])}")
        ratio = sum(page_times[key]) / max(1e-9, sum(api_times[key]))
        print(f"ratio page / API, {label}: {ratio:.2f}")


if __name__ == "__main__":
    main()
