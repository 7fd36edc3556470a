"""A run that waits for a person's approval holds no worker: its job suspends at the `ask`
tool call and the decision (REST or WebSocket) queues it again, and the next attempt goes on
from the run's checkpoint, on a real worker, with a real streamable HTTP MCP server. The
approval timeout is the reaper's: it queues the run again once the time has passed, and the
run denies the call and tells the model. A suspended run can be cancelled."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.sync.client import connect as ws_connect

from citeline.api.app import create_app
from citeline.auth import Access, Role
from citeline.auth.models import AuditEvent
from citeline.llm.messages import ToolCall
from citeline.llm.registry import NewVersion
from citeline.resources import Resources
from citeline.settings import Settings
from tests.assistant_model import FOUNDED
from tests.conftest import LiveServer, WorkerFactory, fast_settings, read_sse, wait_for
from tests.fake_llm_server import FakeLLMServer, Reply, Respond
from tests.mcp.support import HttpServer, http_mcp
from tests.report_model import DOCUMENTS

__all__ = ["http_mcp"]
ROOT = Access("system", "default", Role.owner, instance_admin=True)
TYPED = ("token", "tool_request", "tool_result", "thinking", "error", "complete")
_ERASE = re.compile(r"\berase (\S+)", re.IGNORECASE)
_MARKER = re.compile(r"^\[(\d+)\]")


class EraseModel:
    """Scripted (a remote provider, outside the system): "erase PATH" calls `lab__erase` once,
    then says what the tool said; anything else is answered at once."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        # When set: the calls of each turn, then the sentence of the passage on 1847.
        self.turns: list[list[tuple[str, dict[str, Any]]]] | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        results = [m for m in messages[last_user:] if m["role"] == "tool"]
        with self._lock:
            self.requests.append(messages)
            call_id = f"call_{next(self._ids)}"
        if self.turns is not None:
            return self._planned(messages[last_user:], results)
        wanted = _ERASE.search(messages[last_user]["content"])
        if wanted and not results:
            call = ToolCall(id=call_id, name="lab__erase", arguments={"path": wanted.group(1)})
            return Reply(tool_calls=(call,))
        if results:
            first = str(results[-1]["content"]).splitlines()[0]
            if first.startswith("erased "):
                path = first.split()[1]
                return Reply(text=f"I erased the notes at {path} for you.", chunks=2)
            return Reply(text=f"I could not do it: {first}", chunks=2)
        return Reply(text="Hello there.", chunks=2)

    def _planned(self, since: list[dict[str, Any]], results: list[dict[str, Any]]) -> Reply:
        assert self.turns is not None
        turn = sum(1 for m in since if m["role"] == "assistant")
        if turn < len(self.turns):
            with self._lock:
                calls = tuple(
                    ToolCall(id=f"call_{next(self._ids)}", name=name, arguments=arguments)
                    for name, arguments in self.turns[turn]
                )
            return Reply(tool_calls=calls)
        for result in results:
            for line in str(result["content"]).splitlines():
                marker = _MARKER.match(line)
                if marker and "1847" in line:
                    return Reply(text=f"{FOUNDED} [{marker.group(1)}].", chunks=3)
        return Reply(text="I could not find that.", chunks=2)

    def told(self, text: str) -> bool:
        """Whether a tool message the model read holds `text`."""
        return any(
            m["role"] == "tool" and text in str(m["content"]) for r in self.requests for m in r
        )


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        outbound_allowed_hosts=["127.0.0.1"],
        llm_retry_base_seconds=0.01,
    )


@pytest.fixture
def api(resources: Resources, http_mcp: HttpServer) -> Iterator[tuple[str, EraseModel]]:
    script = EraseModel()
    with FakeLLMServer(default=Respond(script)) as fake:
        registry = resources.models().registry
        registry.ensure_defaults()
        registry.add_version(NewVersion("scripted", "openai", "m", base_url=fake.openai_base_url))
        registry.set_routes("assistant", [("scripted", 1.0)])
        resources.mcp_servers(ROOT).register("lab", "http", url=http_mcp.url)
        with LiveServer(create_app(resources)) as url:
            yield url, script


def send(url: str, content: str, **conversation_body: Any) -> dict[str, Any]:
    made = httpx.post(f"{url}/v1/assistant/conversations", json=conversation_body)
    assert made.status_code == 201, made.text
    conversation = made.json()["id"]
    sent = httpx.post(
        f"{url}/v1/assistant/conversations/{conversation}/messages", json={"content": content}
    )
    assert sent.status_code == 202, sent.text
    run: dict[str, Any] = sent.json()
    run["conversation_id"] = conversation
    return run


def status(url: str, run: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/v1/assistant/runs/{run['run_id']}").json()
    return answer


def job_state(resources: Resources, run: dict[str, Any]) -> str:
    return resources.jobs().get(uuid.UUID(run["job_id"])).state


def completes(url: str, run: dict[str, Any]) -> None:
    wait_for(lambda: status(url, run)["state"] == "complete", timeout=30)


def suspended(url: str, resources: Resources, run: dict[str, Any]) -> None:
    """Wait until the run waits for approval with its job suspended (on no worker)."""
    wait_for(lambda: job_state(resources, run) == "suspended", timeout=30)
    waiting = status(url, run)
    assert waiting["state"] == "awaiting_approval"
    assert [p["name"] for p in waiting["pending"]] == ["lab__erase"]


def sse(url: str, run: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.stream("GET", f"{url}/v1/assistant/runs/{run['run_id']}/events", timeout=60) as s:
        return [json.loads(event["data"]) for event in read_sse(s.iter_lines())]


def erased(resources: Resources) -> list[str]:
    """The erase calls the MCP server was sent, from the audit log."""
    with resources.sessions() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "mcp.tool_call").order_by(AuditEvent.id)
        )
        return [row.outcome for row in rows if row.target == "lab__erase"]


def decisions(resources: Resources) -> list[tuple[str, str, str | None, str]]:
    """Who approved or denied which call, from the audit log: (action, actor, target, run)."""
    with resources.sessions() as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.like("assistant.tool_call.%"))
            .order_by(AuditEvent.id)
        )
        return [(r.action, r.actor, r.target, (r.detail or {})["run_id"]) for r in rows]


def continuous(events: list[dict[str, Any]]) -> None:
    """One stream across the pause: increasing ids, the pause and the resumption in it."""
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    types = [e["type"] for e in events]
    assert types.index("tool_request") < types.index("suspended") < types.index("resumed")
    assert types.count("started") == 2  # one per attempt
    assert types[-1] == "finished" and "complete" in types


def test_runs_waiting_for_approval_leave_the_only_worker_free_then_finish_when_approved(
    api: tuple[str, EraseModel], resources: Resources, start_worker: WorkerFactory
) -> None:
    url, _ = api
    start_worker(mode="inprocess")  # one worker for everything
    oslo = send(url, "Please erase /notes/oslo")
    suspended(url, resources, oslo)
    bergen = send(url, "Please erase /notes/bergen")
    suspended(url, resources, bergen)

    # Both wait; a run that needs no tool still gets the worker and completes.
    plain = send(url, "Hello?")
    completes(url, plain)
    reply = next(e for e in sse(url, plain) if e["type"] == "complete")
    assert reply["data"]["content"] == "Hello there."
    assert status(url, oslo)["state"] == status(url, bergen)["state"] == "awaiting_approval"
    assert erased(resources) == []  # nothing ran before a person agreed

    for run in (bergen, oslo):
        approved = httpx.post(f"{url}/v1/assistant/runs/{run['run_id']}/approve")
        assert approved.status_code == 200, approved.text
    assert [(a, t, r) for a, _, t, r in decisions(resources)] == [
        ("assistant.tool_call.approve", "lab__erase", run["run_id"]) for run in (bergen, oslo)
    ]
    for run, path in ((oslo, "/notes/oslo"), (bergen, "/notes/bergen")):
        completes(url, run)
        events = sse(url, run)
        continuous(events)
        (result,) = [e for e in events if e["type"] == "tool_result"]
        assert result["data"]["content"].startswith(f"erased {path} (")
        assert result["data"]["metadata"]["is_error"] is False
        states = [e["data"]["metadata"]["state"] for e in events if e["type"] in TYPED]
        assert states.index("awaiting_approval") < states.index("tool_execution")
        complete = next(e for e in events if e["type"] == "complete")
        assert complete["data"]["content"] == f"I erased the notes at {path} for you."
        (cited,) = complete["data"]["metadata"]["citations"]
        assert cited["kind"] == "tool" and cited["tool"] == "lab__erase"
        assert cited["tool_call_id"] == result["data"]["metadata"]["tool_call_id"]
        assert [(c["name"], c["status"]) for c in status(url, run)["tool_calls"]] == [
            ("lab__erase", "done")
        ]
        job = resources.jobs().get(uuid.UUID(run["job_id"]))
        assert (job.state, job.attempt) == ("finished", 2)
    wait_for(lambda: erased(resources) == ["ok", "ok"], timeout=10)  # written in batches
    # The run moved on: a late decision is refused and changes nothing.
    late = httpx.post(f"{url}/v1/assistant/runs/{oslo['run_id']}/deny")
    assert late.status_code == 409, late.text
    assert status(url, oslo)["tool_calls"][0]["status"] == "done"


def test_a_denial_over_the_websocket_resumes_the_run_and_the_model_is_told(
    api: tuple[str, EraseModel], resources: Resources, start_worker: WorkerFactory
) -> None:
    url, script = api
    start_worker(mode="inprocess")
    conversation = httpx.post(f"{url}/v1/assistant/conversations", json={}).json()["id"]
    socket_url = url.replace("http://", "ws://") + f"/v1/assistant/conversations/{conversation}/ws"
    seen: list[dict[str, Any]] = []
    with ws_connect(socket_url, open_timeout=10) as socket:

        def until(done: Any) -> dict[str, Any]:
            while True:
                message: dict[str, Any] = json.loads(socket.recv(timeout=60))
                seen.append(message)
                if done(message):
                    return message

        socket.send(json.dumps({"type": "message", "content": "erase /notes/tromso"}))
        started = until(lambda m: m["type"] == "run")["data"]
        run = {"run_id": started["run_id"], "job_id": started["job_id"]}
        until(lambda m: m["type"] == "suspended")
        assert job_state(resources, run) == "suspended"
        socket.send(json.dumps({"type": "deny"}))
        until(lambda m: m["type"] == "run_state")
        until(lambda m: m["type"] in ("finished", "failed", "stopped"))
    received = [m for m in seen if m["type"] not in ("run", "run_state")]
    assert received == sse(url, run)
    continuous(received)
    (result,) = [e for e in received if e["type"] == "tool_result"]
    assert result["data"]["metadata"]["is_error"] is True
    assert "did not allow" in result["data"]["content"]
    assert script.told("The user did not allow the call to lab__erase")
    complete = next(e for e in received if e["type"] == "complete")
    assert "did not allow" in complete["data"]["content"]
    assert [(c["name"], c["status"]) for c in status(url, run)["tool_calls"]] == [
        ("lab__erase", "denied")
    ]
    assert erased(resources) == []
    ((action, actor, target, run_id),) = decisions(resources)
    assert (action, target, run_id) == ("assistant.tool_call.deny", "lab__erase", run["run_id"])
    assert actor != "system"  # the person who denied it


def test_a_run_nobody_approves_in_time_is_resumed_by_the_reaper_and_the_call_denied(
    api: tuple[str, EraseModel], resources: Resources, start_worker: WorkerFactory
) -> None:
    url, script = api
    start_worker(mode="inprocess", assistant_approval_timeout_seconds=1.0)
    run = send(url, "erase /notes/narvik")
    suspended(url, resources, run)
    completes(url, run)
    events = sse(url, run)
    continuous(events)
    resumed = next(e for e in events if e["type"] == "resumed")
    assert resumed["data"]["reason"] == "its time to wait ran out"  # the reaper's doing
    (error,) = [e for e in events if e["type"] == "error"]
    assert error["data"]["content"] == "the call to lab__erase was not approved within 1 s: denied"
    (result,) = [e for e in events if e["type"] == "tool_result"]
    meta = result["data"]["metadata"]
    assert meta["is_error"] is True and meta["timed_out"] is True
    assert script.told("Nobody approved the call to lab__erase within 1 s")
    assert [(c["name"], c["status"]) for c in status(url, run)["tool_calls"]] == [
        ("lab__erase", "denied")
    ]
    late = httpx.post(f"{url}/v1/assistant/runs/{run['run_id']}/approve")
    assert late.status_code == 409, late.text
    assert erased(resources) == []
    assert decisions(resources) == [
        ("assistant.tool_call.deny", "system", "lab__erase", run["run_id"])
    ]


def test_a_suspended_run_can_be_cancelled_and_its_conversation_goes_on(
    api: tuple[str, EraseModel], resources: Resources, start_worker: WorkerFactory
) -> None:
    url, _ = api
    start_worker(mode="inprocess")
    run = send(url, "erase /notes/bodo")
    suspended(url, resources, run)
    cancelled = httpx.post(f"{url}/v1/assistant/runs/{run['run_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert job_state(resources, run) == "stopped"
    events = sse(url, run)  # the stream ends
    assert events[-1]["type"] == "stopped"
    assert "resumed" not in [e["type"] for e in events]
    late = httpx.post(f"{url}/v1/assistant/runs/{run['run_id']}/approve")
    assert late.status_code == 409, late.text
    again = httpx.post(f"{url}/v1/assistant/runs/{run['run_id']}/cancel")
    assert again.status_code == 409, again.text
    view = status(url, run)
    assert view["state"] == "cancelled" and view["pending"] == []
    assert [(c["name"], c["status"]) for c in view["tool_calls"]] == [("lab__erase", "cancelled")]
    # The conversation takes the next message, and the cancelled call never ran.
    following = httpx.post(
        f"{url}/v1/assistant/conversations/{run['conversation_id']}/messages",
        json={"content": "Hello?"},
    )
    assert following.status_code == 202, following.text
    completes(url, following.json())
    assert job_state(resources, run) == "stopped"
    assert erased(resources) == []


def test_a_run_paused_mid_turn_goes_on_on_another_worker_with_its_passages_and_usage(
    api: tuple[str, EraseModel], resources: Resources, start_worker: WorkerFactory
) -> None:
    """Nothing of a paused run lives in its worker: the run pauses at the second of three
    calls of its second turn, its worker stops, and another one finishes it, citing the
    passage its first turn found."""
    url, script = api
    first = start_worker(mode="inprocess")
    kb = httpx.post(f"{url}/v1/knowledge-bases", json={"name": "harbour"}).json()["id"]
    files = [("files", document) for document in DOCUMENTS]
    httpx.post(f"{url}/v1/knowledge-bases/{kb}/documents", files=files)

    def ready() -> bool:
        docs = httpx.get(f"{url}/v1/knowledge-bases/{kb}/documents").json()["documents"]
        return bool(docs) and all(doc["status"] == "ready" for doc in docs)

    wait_for(ready, timeout=120)
    script.turns = [
        [("search_knowledge_base", {"query": "When was the Varnholm lighthouse built?"})],
        [
            ("lab__echo", {"text": "before"}),
            ("lab__erase", {"path": "/notes/varnholm"}),
            ("lab__echo", {"text": "after"}),
        ],
    ]
    run = send(url, "When was the lighthouse built? Then tidy up.", knowledge_bases=[kb])
    suspended(url, resources, run)
    os.killpg(first.pid, signal.SIGTERM)
    first.wait(30)
    start_worker(mode="inprocess")
    assert httpx.post(f"{url}/v1/assistant/runs/{run['run_id']}/approve").status_code == 200
    completes(url, run)

    events = sse(url, run)
    continuous(events)
    results = [e["data"] for e in events if e["type"] == "tool_result"]
    assert [r["metadata"]["name"] for r in results] == [
        "search_knowledge_base", "lab__echo", "lab__erase", "lab__echo"
    ]  # fmt: skip
    assert [r["content"] for r in results[1:]] == ["before", "erased /notes/varnholm (1 so far)",
                                                   "after"]  # fmt: skip
    # The model read the whole story on its last call: each turn's calls and their results.
    last = script.requests[-1]
    since = last[max(i for i, m in enumerate(last) if m["role"] == "user") + 1 :]
    asked = [m for m in since if m["role"] == "assistant"]
    assert [len(m["tool_calls"]) for m in asked] == [1, 3]
    ids = [c["id"] for m in asked for c in m["tool_calls"]]
    assert [m["tool_call_id"] for m in since if m["role"] == "tool"] == ids
    assert [m["role"] for m in since] == ["assistant", "tool", "assistant", *["tool"] * 3]
    complete = next(e for e in events if e["type"] == "complete")
    assert complete["data"]["content"] == f"{FOUNDED} [1]."
    (cited,) = complete["data"]["metadata"]["citations"]
    assert cited["kind"] == "document" and "1847" in cited["text"]
    assert cited["knowledge_base_id"] == kb and cited["document_id"] and cited["end"] > 0
    view = status(url, run)
    assert view["steps"] == 3
    # Three model calls, each 11 tokens in and 7 out, across the two attempts.
    assert (view["input_tokens"], view["output_tokens"]) == (33, 21)
