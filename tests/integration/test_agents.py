"""Agents end to end on the real engines: a versioned registry, tasks that run as jobs on the
priority queues (high before low, within each agent's concurrency), a workflow walked step by
step with every step recorded, a person's review that pauses and resumes the task, a worker
SIGKILLed mid-step, workspaces kept apart, and bad input refused with nothing lost.

The model is a scripted OpenAI-compatible server (a remote provider, outside the system); the
queue, database, workers, embeddings and the citation verifier are the real ones."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from citeline.agents import AgentSpec
from citeline.agents.models import Agent, AgentTask
from citeline.auth import Access, Role
from citeline.errors import NotFound
from citeline.jobs.models import Job
from citeline.llm.registry import NewVersion
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, WorkerFactory, fast_settings, read_sse, wait_for
from tests.fake_llm_server import Fail, FakeLLMServer, Hang, Reply, Respond

DOCS = [
    (
        "lighthouse.md",
        b"""# The Varnholm lighthouse

The lighthouse of Varnholm was built in 1847 by the harbour guild. The tower is made of
granite quarried on the island of Skarv. Its first lamp burned whale oil.
""",
    )
]


class Script:
    """Answers from the first quoted passage (its first sentence, cited [1]), or echoes the
    prompt; hangs once on a prompt holding HANG; sleeps on one holding SLOW; refuses (400) one
    holding REFUSE."""

    def __init__(self) -> None:
        self.hung = False
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply | Hang | Fail:
        asked = str(body["messages"][-1]["content"])
        if "REFUSE" in asked:
            return Fail(400, "scripted refusal")
        with self.lock:
            self.calls += 1
            if "HANG" in asked and not self.hung:
                self.hung = True
                return Hang(seconds=30)
        if "SLOW" in asked:
            time.sleep(1.0)
        quoted = re.findall(r"<passage>\n(.*?)\n</passage>", asked, re.S)
        if quoted:
            first = re.split(r"(?<=\.)\s", " ".join(quoted[0].split()))[0]
            return Reply(f"{first.rstrip('.')} [1].", chunks=4)
        return Reply(f"Draft for: {asked.splitlines()[-1][:80]}", chunks=2)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        outbound_allowed_hosts=["127.0.0.1"],
        llm_retry_base_seconds=0.01,
        llm_max_retries=0,
        llm_timeout_seconds=60,
    )


@pytest.fixture
def llm() -> Iterator[tuple[FakeLLMServer, Script]]:
    script = Script()
    with FakeLLMServer(default=Respond(script)) as server:
        yield server, script


@pytest.fixture
def api(resources: Resources, llm: tuple[FakeLLMServer, Script]) -> Iterator[str]:
    server, _ = llm
    registry = resources.models().registry
    registry.ensure_defaults()
    registry.add_version(NewVersion("scripted", "openai", "m", base_url=server.openai_base_url))
    registry.set_routes("assistant", [("scripted", 1.0)])
    from citeline.api.app import create_app

    with LiveServer(create_app(resources)) as url:
        yield url


def flow(*middle: dict[str, Any]) -> dict[str, Any]:
    """A straight workflow: start, the given nodes in order, end."""
    nodes = [{"id": "start", "type": "start"}, *middle, {"id": "end", "type": "end"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"version": 1, "nodes": nodes, "edges": edges}


def register(api: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {"name": name, "system_prompt": "You are a careful harbour archivist.", **spec}
    response = httpx.post(f"{api}/v1/agents", json=body, timeout=30)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def submit(api: str, agent: str, text: str, priority: str = "normal") -> dict[str, Any]:
    response = httpx.post(
        f"{api}/v1/agents/{agent}/tasks", json={"input": text, "priority": priority}, timeout=30
    )
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


def task(api: str, task_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{api}/v1/agents/tasks/{task_id}", timeout=30).json()
    return found


def settled(api: str, task_id: str, statuses: tuple[str, ...], timeout: float = 90) -> Any:
    def check() -> dict[str, Any] | None:
        current = task(api, task_id)
        return current if current["status"] in statuses else None

    return wait_for(check, timeout=timeout, interval=0.2)


ENDED = ("finished", "failed", "stopped", "rejected")


def events(
    api: str, task_id: str, after: int = 0, until: str | None = None
) -> list[dict[str, str]]:
    """The task's events after `after`, up to its end (or the first `until` event)."""
    read: list[dict[str, str]] = []
    with httpx.stream(
        "GET",
        f"{api}/v1/agents/tasks/{task_id}/events",
        headers={"Last-Event-ID": str(after)},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        while batch := read_sse(lines, limit=1):
            read.extend(batch)
            if batch[0].get("event") == until:
                break
    return read


def ingest(api: str) -> str:
    kb: str = httpx.post(f"{api}/v1/knowledge-bases", json={"name": "harbour"}).json()["id"]
    httpx.post(f"{api}/v1/knowledge-bases/{kb}/documents", files=[("files", f) for f in DOCS])

    def ready() -> bool:
        docs = httpx.get(f"{api}/v1/knowledge-bases/{kb}/documents").json()["documents"]
        return bool(docs) and all(doc["status"] == "ready" for doc in docs)

    wait_for(ready, timeout=120)
    return kb


def test_agents_are_versioned_by_name_and_report_their_status(
    api: str, resources: Resources
) -> None:
    first = register(api, "archivist", concurrency=2)
    assert (first["version"], first["label"], first["status"]) == (1, "archivist@1", "idle")
    assert first["model"] == "assistant"  # the default alias on a fresh install
    assert first["tools"] == [] and first["workflow"]["nodes"][1]["type"] == "retrieve"
    second = register(api, "archivist", system_prompt="You answer briefly.")
    assert second["version"] == 2 and second["versions"] == 2
    assert httpx.get(f"{api}/v1/agents/archivist").json()["id"] == second["id"]
    assert httpx.get(f"{api}/v1/agents/archivist@1").json()["id"] == first["id"]
    assert httpx.get(f"{api}/v1/agents/{first['id']}").json()["concurrency"] == 2
    listed = httpx.get(f"{api}/v1/agents").json()
    assert [a["label"] for a in listed["agents"]] == ["archivist@2"]
    assert "search_knowledge_base" in listed["tools"]
    every = httpx.get(f"{api}/v1/agents", params={"all_versions": "true"}).json()["agents"]
    assert sorted(a["label"] for a in every) == ["archivist@1", "archivist@2"]
    mermaid = httpx.get(f"{api}/v1/agents/archivist/workflow.mmd").text
    assert mermaid.startswith("flowchart TD") and "find --> answer" in mermaid
    schema = httpx.get(f"{api}/v1/agents/workflow.schema.json").json()
    assert schema["$schema"].endswith("2020-12/schema")

    # Offline once its model alias resolves to nothing: runs are refused, not queued.
    models = resources.models()
    models.registry.set_routes("temporary", [("scripted", 1.0)])
    register(api, "fleeting", model="temporary")
    models.registry.delete_alias("temporary")
    fleeting = httpx.get(f"{api}/v1/agents/fleeting").json()
    assert fleeting["status"] == "offline" and "temporary" in fleeting["status_reason"]
    refused = httpx.post(f"{api}/v1/agents/fleeting/tasks", json={"input": "hello"})
    assert refused.status_code == 409 and "offline" in refused.json()["detail"]

    # Disabled by a person: offline, refusing tasks, until enabled again.
    disabled = httpx.post(f"{api}/v1/agents/archivist/disable").json()
    assert (disabled["status"], disabled["status_reason"]) == ("offline", "disabled")
    assert not disabled["enabled"]
    refused = httpx.post(f"{api}/v1/agents/archivist/tasks", json={"input": "hello"})
    assert refused.status_code == 409 and "disabled" in refused.json()["detail"]
    assert httpx.post(f"{api}/v1/agents/archivist/enable").json()["status"] == "idle"
    assert httpx.post(f"{api}/v1/agents/nobody/disable").status_code == 404

    assert httpx.delete(f"{api}/v1/agents/archivist@1").status_code == 204
    assert httpx.get(f"{api}/v1/agents/archivist@1").status_code == 404
    assert httpx.get(f"{api}/v1/agents/archivist").json()["version"] == 2
    assert httpx.delete(f"{api}/v1/agents/archivist").status_code == 204
    assert httpx.get(f"{api}/v1/agents/archivist").status_code == 404
    with resources.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_bad_input_is_refused_clearly_and_nothing_is_lost(api: str, resources: Resources) -> None:
    kept = register(api, "keeper", workflow=flow({"id": "say", "type": "llm", "prompt": "hi"}))

    def refused(response: httpx.Response, status: int, *words: str) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        for word in words:
            assert word in response.text, response.text

    missing = str(uuid.uuid4())
    refused(httpx.get(f"{api}/v1/agents/{missing}"), 404, "not found")
    refused(httpx.get(f"{api}/v1/agents/nobody"), 404, "nobody")
    refused(httpx.get(f"{api}/v1/agents/keeper@9"), 404)
    refused(httpx.get(f"{api}/v1/agents/tasks/{missing}"), 404)
    refused(httpx.post(f"{api}/v1/agents/nobody/tasks", json={"input": "x"}), 404)
    refused(httpx.post(f"{api}/agents/{missing}/execute", json={"input": "x"}), 404)
    refused(httpx.post(f"{api}/v1/agents/tasks/{missing}/approve"), 404)
    refused(
        httpx.post(f"{api}/v1/agents/keeper/tasks", json={"input": "x", "priority": "urgent"}),
        422,
        "priority",
    )
    refused(
        httpx.post(f"{api}/v1/agents/keeper/tasks", json={"input": "x" * 100_000}), 422, "input"
    )
    refused(httpx.post(f"{api}/v1/agents/keeper/tasks", json={"input": ""}), 422, "input")

    def post(**spec: Any) -> httpx.Response:
        body = {"name": "broken", "system_prompt": "You help.", **spec}
        return httpx.post(f"{api}/v1/agents", json=body)

    cycle = flow(
        {"id": "a", "type": "llm", "prompt": "x"}, {"id": "b", "type": "llm", "prompt": "y"}
    )
    cycle["edges"] = [
        {"from": "start", "to": "a"},
        {"from": "a", "to": "b"},
        {"from": "b", "to": "a"},
    ]
    refused(post(workflow=cycle), 422, "cycle", "a -> b -> a")
    no_end = flow({"id": "a", "type": "llm", "prompt": "x"})
    no_end["nodes"] = no_end["nodes"][:-1]
    no_end["edges"] = no_end["edges"][:-1]
    refused(post(workflow=no_end), 422, "no end node")
    tool = flow({"id": "mail", "type": "tool", "tool": "send_email"})
    refused(post(workflow=tool), 422, "send_email", "does not exist")
    refused(post(tools=["send_email"]), 422, "send_email")
    refused(post(knowledge_bases=["nowhere"]), 422, "nowhere")
    refused(post(model="no-such-model"), 422, "no-such-model")
    refused(post(name="Bad Name"), 422, "name")
    refused(post(name="tasks"), 422, "name")
    refused(post(concurrency=0), 422, "concurrency")
    refused(
        httpx.post(f"{api}/v1/agents", json={"name": "built", "builder_session_id": "s1"}),
        404,
        "builder session s1 not found",
    )
    refused(httpx.post(f"{api}/v1/agents", json={"name": "bare"}), 422, "system_prompt")

    # Nothing was stored by the refusals, and what was stored is intact.
    with resources.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Agent)) == 1
        assert session.scalar(select(func.count()).select_from(AgentTask)) == 0
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    again = httpx.get(f"{api}/v1/agents/keeper").json()
    assert again["id"] == kept["id"] and again["workflow"] == kept["workflow"]


def test_a_high_priority_task_overtakes_queued_low_ones(
    api: str, resources: Resources, start_worker: WorkerFactory
) -> None:
    register(
        api,
        "sorter",
        concurrency=8,
        workflow=flow({"id": "look", "type": "tool", "tool": "search_knowledge_base",
                       "arguments": {"query": "{{input}}"}}),
    )  # fmt: skip
    lows = [submit(api, "sorter", f"low {i}", "low")["id"] for i in range(4)]
    normal = submit(api, "sorter", "normal", "normal")["id"]
    high = submit(api, "sorter", "urgent", "high")["id"]
    assert task(api, high)["status"] == "queued"
    start_worker(mode="inprocess")
    done = [settled(api, t, ENDED) for t in [*lows, normal, high]]
    assert {t["status"] for t in done} == {"finished"}, [t["error"] for t in done]
    started = {t["id"]: t["started_at"] for t in done}
    assert started[high] < started[normal] < min(started[t] for t in lows)
    look = done[-1]["steps"][0]
    assert look["node"] == "look" and look["tool_calls"][0]["tool"] == "search_knowledge_base"
    assert look["tool_calls"][0]["ok"] is True
    assert httpx.get(f"{api}/v1/agents/sorter").json()["status"] == "idle"


def test_a_task_beyond_the_agents_concurrency_waits_its_turn(
    api: str, start_worker: WorkerFactory
) -> None:
    register(
        api, "single", concurrency=1,
        workflow=flow({"id": "say", "type": "llm", "prompt": "SLOW {{input}}"}),
    )  # fmt: skip
    start_worker(mode="inprocess")
    start_worker(mode="inprocess")
    ids = [submit(api, "single", f"question {i}")["id"] for i in range(2)]
    done = [settled(api, t, ENDED) for t in ids]
    assert [t["status"] for t in done] == ["finished", "finished"]
    spans = sorted((t["steps"][0]["started_at"], t["steps"][0]["finished_at"]) for t in done)
    assert spans[0][1] <= spans[1][0], spans  # never both at the model at once
    kinds = [e.get("event") for t in ids for e in events(api, t)]
    assert "deferred" in kinds  # one of them waited, none failed


def test_a_human_review_pauses_the_task_until_approved_and_the_output_is_cited(
    api: str, start_worker: WorkerFactory
) -> None:
    start_worker(mode="inprocess")
    kb = ingest(api)
    workflow = {
        "version": 1,
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "find", "type": "retrieve", "query": "{{input}}", "top_k": 3},
            {"id": "check", "type": "condition", "check": "has_passages", "source": "find"},
            {"id": "draft", "type": "llm", "prompt": "Answer: {{input}}", "cite": True},
            {"id": "review", "type": "human_review", "instructions": "Check the year."},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "find"},
            {"from": "find", "to": "check"},
            {"from": "check", "to": "draft", "when": "true"},
            {"from": "check", "to": "end", "when": "false"},
            {"from": "draft", "to": "review"},
            {"from": "review", "to": "end"},
        ],
    }
    register(api, "reviewed", knowledge_bases=["harbour"], workflow=workflow)
    created = submit(api, "reviewed", "When was the Varnholm lighthouse built?", "high")
    waiting = settled(api, created["id"], ("waiting_review", *ENDED))
    assert waiting["status"] == "waiting_review", waiting["error"]
    assert waiting["cursor"] == "review" and waiting["output"] is None
    assert [(s["node"], s["status"]) for s in waiting["steps"]] == [
        ("find", "done"), ("check", "done"), ("draft", "done"), ("review", "waiting"),
    ]  # fmt: skip
    assert waiting["steps"][0]["inputs"]["knowledge_bases"] == [kb]
    draft = waiting["steps"][2]
    assert draft["model_calls"][0]["input_tokens"] > 0 and draft["model_calls"][0]["latency_ms"]
    assert draft["citations"] and "1847" in draft["outputs"]["text"]
    agent = httpx.get(f"{api}/v1/agents/reviewed").json()
    assert (agent["status"], agent["waiting_review"]) == ("idle", 1)  # a pause holds no worker
    before = events(api, created["id"], until="suspended")
    assert before[-1]["event"] == "suspended" and "Check the year" in before[-1]["data"]
    again = httpx.post(f"{api}/v1/agents/tasks/{created['id']}/retry")
    assert again.status_code == 409

    approved = httpx.post(
        f"{api}/v1/agents/tasks/{created['id']}/approve", json={"note": "The year is right."}
    )
    assert approved.status_code == 200, approved.text
    done = settled(api, created["id"], ENDED)
    assert done["status"] == "finished", done["error"]
    assert "1847" in done["output"] and "[1]" in done["output"]
    citation = done["citations"][0]
    assert "1847" in citation["text"] and citation["chunk_id"]
    assert done["review"]["decision"] == "approved" and done["review"]["node"] == "review"
    assert [s["status"] for s in done["steps"]] == ["done", "done", "done", "approved"]
    # The stream, resumed after what was already read, brings the rest and ends.
    rest = events(api, created["id"], after=int(before[-1]["id"]))
    assert [e["event"] for e in rest] == ["resumed", "started", "task.output", "finished"]
    assert httpx.post(f"{api}/v1/agents/tasks/{created['id']}/approve").status_code == 409

    rejected = submit(api, "reviewed", "What is the tower made of?")
    settled(api, rejected["id"], ("waiting_review",))
    response = httpx.post(f"{api}/v1/agents/tasks/{rejected['id']}/reject", json={"note": "no"})
    assert response.status_code == 200
    assert settled(api, rejected["id"], ENDED)["status"] == "rejected"
    retried = httpx.post(f"{api}/v1/agents/tasks/{rejected['id']}/retry")
    assert retried.status_code == 202 and retried.json()["retry_of"] == rejected["id"]


def test_a_worker_killed_mid_step_leaves_the_task_retried_not_stuck(
    api: str, start_worker: WorkerFactory, llm: tuple[FakeLLMServer, Script]
) -> None:
    server, script = llm
    register(
        api, "fragile",
        workflow=flow(
            {"id": "first", "type": "llm", "prompt": "plan {{input}}"},
            {"id": "second", "type": "llm", "prompt": "HANG {{first}}"},
        ),
    )  # fmt: skip
    doomed = start_worker(mode="inprocess")
    created = submit(api, "fragile", "the harbour")
    wait_for(lambda: script.hung, timeout=60)
    assert httpx.get(f"{api}/v1/agents/fragile").json()["status"] == "busy"
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    start_worker(mode="inprocess")
    done = settled(api, created["id"], ENDED, timeout=90)
    assert done["status"] == "finished", done["error"]
    assert done["attempt"] == 2
    # The first step was kept; only the step the worker died in ran again.
    assert [(s["node"], s["attempt"]) for s in done["steps"]] == [("first", 1), ("second", 2)]
    kinds = [e["event"] for e in events(api, created["id"])]
    assert "retrying" in kinds and kinds[-1] == "finished"
    assert httpx.get(f"{api}/v1/agents/fragile").json()["status"] == "idle"
    assert len(server.requests) == 3  # first, second (hung), second again


def test_another_workspace_sees_nothing(api: str, resources: Resources) -> None:
    alpha = resources.agents(Access("user:alpha", "default", Role.owner))
    view = alpha.create(AgentSpec(name="private", system_prompt="You help."))
    created = alpha.submit("private", "hello", "low")
    beta = resources.agents(Access("user:beta", "beta", Role.owner))
    for ref in (str(view.agent.id), "private", "private@1"):
        with pytest.raises(NotFound):
            beta.get(ref)
        with pytest.raises(NotFound):
            beta.submit(ref, "hello")
    with pytest.raises(NotFound):
        beta.task(created.task.id)
    with pytest.raises(NotFound):
        beta.decide(created.task.id, approve=True)
    with pytest.raises(NotFound):
        beta.cancel(created.task.id)
    with pytest.raises(NotFound):
        beta.delete("private")
    assert beta.list() == [] and beta.tasks() == []
    assert alpha.task(created.task.id).status.value == "queued"


def test_the_cli_lists_runs_reviews_and_shows_a_task(
    api: str, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    register(
        api, "helper",
        workflow=flow({"id": "draft", "type": "llm", "prompt": "Say hello to {{input}}"},
                      {"id": "check", "type": "human_review", "instructions": "Be polite?"}),
    )  # fmt: skip
    start_worker(mode="inprocess")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CITELINE_")},
        "CITELINE_URL": api,
        "HOME": str(tmp_path),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }

    def citeline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "citeline", "agents", *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    listed = citeline("list")
    assert listed.returncode == 0 and "helper@1" in listed.stdout and "idle" in listed.stdout
    shown = citeline("show", "helper")
    assert shown.returncode == 0 and "draft -> check" in shown.stdout
    ran = citeline("run", "helper", "the harbour", "--priority", "high")
    assert ran.returncode == 0, ran.stderr
    assert "waiting for review" in ran.stderr and "Be polite?" in ran.stderr
    task_id = re.search(r"task ([0-9a-f-]{36})", ran.stderr)
    assert task_id is not None
    approved = citeline("approve", task_id.group(1), "--note", "fine")
    assert approved.returncode == 0
    assert re.search(r": (queued|running|finished)$", approved.stdout.strip())
    settled(api, task_id.group(1), ENDED)
    shown_task = citeline("task", task_id.group(1))
    assert shown_task.returncode == 0
    assert "Draft for: Say hello to the harbour" in shown_task.stdout
    assert "check (human_review): approved" in shown_task.stdout
    missing = citeline("show", "nobody")
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_a_failed_task_puts_its_agent_in_error_until_one_succeeds(
    api: str, start_worker: WorkerFactory
) -> None:
    register(api, "moody", workflow=flow({"id": "say", "type": "llm", "prompt": "{{input}}"}))
    start_worker(mode="inprocess")
    failed = settled(api, submit(api, "moody", "REFUSE this")["id"], ENDED)
    assert failed["status"] == "failed" and "scripted refusal" in failed["error"]
    agent = httpx.get(f"{api}/v1/agents/moody").json()
    assert agent["status"] == "error" and "scripted refusal" in agent["status_reason"]
    retried = httpx.post(f"{api}/v1/agents/tasks/{failed['id']}/retry")
    assert retried.status_code == 202 and retried.json()["input"] == "REFUSE this"
    assert settled(api, retried.json()["id"], ENDED)["status"] == "failed"
    finished = settled(api, submit(api, "moody", "hello")["id"], ENDED)
    assert finished["status"] == "finished" and finished["output"].startswith("Draft for:")
    assert httpx.get(f"{api}/v1/agents/moody").json()["status"] == "idle"
