"""The assistant end to end: conversations whose runs are jobs on real workers, stream typed
events over SSE and a WebSocket alike, call the built-in tools, cite document spans, keep
their history in PostgreSQL (so a conversation resumes on another API process after its
Redis state expired), and refuse bad input without losing anything.

The model is a scripted OpenAI-compatible server (a remote provider, outside the system);
the queue, database, workers, retrieval and verifier are the real ones."""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from citeline.assistant.loop import Hooks, Run
from citeline.assistant.models import AssistantMessage, AssistantToolCall
from citeline.assistant.state import LiveState, run_key, session_key
from citeline.errors import ServiceUnavailable
from citeline.llm import ToolSpec
from citeline.llm.registry import NewVersion
from citeline.resources import Resources
from citeline.settings import Settings
from tests.assistant_model import FOUNDED, AssistantModel
from tests.conftest import LiveServer, WorkerFactory, fast_settings, read_sse, wait_for
from tests.fake_llm_server import FakeLLMServer, Respond
from tests.report_model import DOCUMENTS


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        outbound_allowed_hosts=["127.0.0.1"],
        llm_retry_base_seconds=0.01,
        llm_max_retries=0,
    )


@pytest.fixture
def model() -> Iterator[tuple[FakeLLMServer, AssistantModel]]:
    script = AssistantModel()
    with FakeLLMServer(default=Respond(script)) as server:
        yield server, script


def _app(resources: Resources) -> Any:
    from citeline.api.app import create_app

    return create_app(resources)


@pytest.fixture
def api(resources: Resources, model: tuple[FakeLLMServer, AssistantModel]) -> Iterator[str]:
    server, _ = model
    registry = resources.models().registry
    registry.ensure_defaults()
    registry.add_version(NewVersion("scripted", "openai", "m", base_url=server.openai_base_url))
    registry.set_routes("assistant", [("scripted", 1.0)])
    with LiveServer(_app(resources)) as url:
        yield url


def ingest(api: str) -> str:
    kb: str = httpx.post(f"{api}/v1/knowledge-bases", json={"name": "harbour"}).json()["id"]
    httpx.post(f"{api}/v1/knowledge-bases/{kb}/documents", files=[("files", f) for f in DOCUMENTS])

    def ready() -> bool:
        docs = httpx.get(f"{api}/v1/knowledge-bases/{kb}/documents").json()["documents"]
        return bool(docs) and all(doc["status"] == "ready" for doc in docs)

    wait_for(ready, timeout=120)
    return kb


def converse(api: str, **body: Any) -> str:
    response = httpx.post(f"{api}/v1/assistant/conversations", json=body)
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


def send(api: str, conversation: str, content: str) -> dict[str, Any]:
    response = httpx.post(
        f"{api}/v1/assistant/conversations/{conversation}/messages", json={"content": content}
    )
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    return created


def events(api: str, run: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.stream("GET", f"{api}{run['events_url']}", timeout=120) as stream:
        raw = read_sse(stream.iter_lines())
    return [json.loads(event["data"]) for event in raw]


def typed(stream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = {"token", "tool_request", "tool_result", "thinking", "error", "complete"}
    return [e for e in stream if e["type"] in kinds]


def test_a_run_searches_the_knowledge_base_streams_and_cites_the_document(
    api: str, resources: Resources, start_worker: WorkerFactory
) -> None:
    start_worker(mode="inprocess")
    ingest(api)
    conversation = converse(api, knowledge_bases=["harbour"])
    run = send(api, conversation, "When was the Varnholm lighthouse built?")
    stream = typed(events(api, run))
    kinds = [e["type"] for e in stream]
    assert kinds.index("tool_request") < kinds.index("tool_result") < kinds.index("token")
    assert kinds[-1] == "complete", kinds
    for event in stream:
        meta = event["data"]["metadata"]
        assert meta["run_id"] == run["run_id"] and "timestamp" in meta and "token_count" in meta
    states = [e["data"]["metadata"]["state"] for e in stream]
    # Idle → Processing → ToolExecution → Processing → Streaming → Complete
    assert states[0] == "processing" and "tool_execution" in states and states[-1] == "complete"
    assert states.index("tool_execution") < states.index("streaming")
    request = next(e for e in stream if e["type"] == "tool_request")
    assert request["data"]["content"] == "search_knowledge_base"
    result = next(e for e in stream if e["type"] == "tool_result")
    assert "[1]" in result["data"]["content"] and "passage" in result["data"]["content"]
    assert result["data"]["metadata"]["duration_ms"] >= 0
    complete = stream[-1]["data"]
    assert complete["content"].startswith(FOUNDED)
    cited = complete["metadata"]["citations"]
    assert cited and cited[0]["kind"] == "document"
    assert "1847" in cited[0]["text"] and cited[0]["document_id"] and cited[0]["end"] > 0
    # The token stream is the reply.
    assert (
        "".join(e["data"]["content"] for e in stream if e["type"] == "token")
        == (complete["content"])
    )

    state = httpx.get(f"{api}{run['status_url']}").json()
    assert state["state"] == "complete" and state["steps"] == 2
    assert [c["name"] for c in state["tool_calls"]] == ["search_knowledge_base"]
    assert state["tool_calls"][0]["status"] == "done"
    got = httpx.get(f"{api}/v1/assistant/conversations/{conversation}").json()
    assert [m["role"] for m in got["messages"]] == ["user", "assistant"]
    assert got["messages"][1]["citations"] == cited
    assert got["title"].startswith("When was the Varnholm")
    listed = httpx.get(f"{api}/v1/assistant/conversations").json()["conversations"]
    assert [c["id"] for c in listed] == [conversation]


def test_the_websocket_and_sse_give_the_same_events(
    api: str, resources: Resources, start_worker: WorkerFactory
) -> None:
    start_worker(mode="inprocess")
    ingest(api)
    conversation = converse(api, knowledge_bases=["harbour"])
    url = api.replace("http://", "ws://") + f"/v1/assistant/conversations/{conversation}/ws"
    received: list[dict[str, Any]] = []
    with ws_connect(url, open_timeout=10) as socket:
        socket.send(json.dumps({"type": "message", "content": "When was it built?"}))
        started = json.loads(socket.recv(timeout=30))
        assert started["type"] == "run", started
        while True:
            event = json.loads(socket.recv(timeout=60))
            received.append(event)
            if event["type"] in ("finished", "failed", "stopped"):
                break
        socket.send("not json")
        assert json.loads(socket.recv(timeout=10))["type"] == "error"
    run_id = started["data"]["run_id"]
    over_sse = events(api, {"events_url": f"/v1/assistant/runs/{run_id}/events"})
    assert received == over_sse
    assert received[-2]["type"] == "complete"


def test_a_conversation_resumes_on_another_process_after_its_redis_state_expired(
    api: str,
    resources: Resources,
    settings: Settings,
    start_worker: WorkerFactory,
    model: tuple[FakeLLMServer, AssistantModel],
) -> None:
    server, script = model
    start_worker(mode="inprocess", assistant_state_ttl_seconds=2)
    ingest(api)
    conversation = converse(api, knowledge_bases=["harbour"])
    first = send(api, conversation, "When was the Varnholm lighthouse built?")
    stream = events(api, first)
    assert typed(stream)[-1]["type"] == "complete"
    live = httpx.get(f"{api}{first['status_url']}").json()
    assert live["live"] is True and live["state"] == "complete"
    # Reconnecting with Last-Event-ID gives only what came after.
    middle = stream[len(stream) // 2]["seq"]
    with httpx.stream(
        "GET", f"{api}{first['events_url']}", headers={"Last-Event-ID": str(middle)}, timeout=30
    ) as again:
        rest = [json.loads(e["data"]) for e in read_sse(again.iter_lines())]
    assert rest == [e for e in stream if e["seq"] > middle]
    keys = [run_key(uuid.UUID(first["run_id"])), session_key(uuid.UUID(conversation))]
    wait_for(lambda: resources.redis.exists(*keys) == 0, timeout=15)  # the TTL passed
    assert settings.database_url is not None and settings.redis_url is not None
    other = Resources.connect(settings, settings.database_url, settings.redis_url)
    try:
        with LiveServer(_app(other)) as elsewhere:
            state = httpx.get(f"{elsewhere}{first['status_url']}").json()
            assert state["state"] == "complete" and state["live"] is False
            script.plan = []
            script.answer = "It was built by the harbour guild, as I said."
            second = send(elsewhere, conversation, "Who built it?")
            assert typed(events(elsewhere, second))[-1]["type"] == "complete"
            got = httpx.get(f"{elsewhere}/v1/assistant/conversations/{conversation}").json()
    finally:
        other.close()
    assert [m["role"] for m in got["messages"]] == ["user", "assistant"] * 2
    last = server.requests[-1].body["messages"]
    contents = [m.get("content") for m in last]
    assert "When was the Varnholm lighthouse built?" in contents
    assert any(FOUNDED in str(c) for c in contents)  # the first reply, from PostgreSQL
    assert last[-1] == {"role": "user", "content": "Who built it?"}


def test_unknown_tools_and_bad_arguments_are_told_to_the_model_and_the_run_goes_on(
    api: str,
    resources: Resources,
    start_worker: WorkerFactory,
    model: tuple[FakeLLMServer, AssistantModel],
) -> None:
    server, script = model
    start_worker(mode="inprocess")
    ingest(api)
    script.plan = [
        ("weather_lookup", {"city": "Oslo"}),
        ("search_knowledge_base", {"q": 3}),
        ("search_knowledge_base", {}),
    ]
    conversation = converse(api, knowledge_bases=["harbour"])
    run = send(api, conversation, "When was the Varnholm lighthouse built?")
    stream = typed(events(api, run))
    results = [e["data"] for e in stream if e["type"] == "tool_result"]
    assert (
        results[0]["metadata"]["is_error"]
        and "no tool named 'weather_lookup'" in (results[0]["content"])
    )
    assert (
        results[1]["metadata"]["is_error"] and "do not match its schema" in (results[1]["content"])
    )
    assert not results[2]["metadata"]["is_error"]
    assert stream[-1]["type"] == "complete"
    told = [m for m in server.requests[-1].body["messages"] if m["role"] == "tool"]
    assert "no tool named" in told[0]["content"] and "query" in told[1]["content"]
    with resources.sessions() as session:
        statuses = list(
            session.scalars(select(AssistantToolCall.status).order_by(AssistantToolCall.step))
        )
    assert statuses == ["invalid", "invalid", "done"]


def test_a_run_stops_at_the_step_limit_with_a_clear_message(
    api: str, start_worker: WorkerFactory, model: tuple[FakeLLMServer, AssistantModel]
) -> None:
    _, script = model
    script.loop = True
    start_worker(mode="inprocess")
    ingest(api)
    conversation = converse(api, knowledge_bases=["harbour"])
    run = send(api, conversation, "Tell me everything")
    stream = typed(events(api, run))
    assert stream[-1]["type"] == "error"
    assert "step limit" in stream[-1]["data"]["content"]
    state = httpx.get(f"{api}{run['status_url']}").json()
    assert state["state"] == "error" and "step limit" in state["error"]
    # Error → Idle: the conversation takes the next message.
    script.loop = False
    script.plan = []
    script.answer = "Hello."
    again = send(api, conversation, "Hello?")
    assert typed(events(api, again))[-1]["type"] == "complete"


def test_bad_input_gets_problem_details_and_loses_nothing(api: str, resources: Resources) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    for path in (
        f"/v1/assistant/conversations/{missing}",
        f"/v1/assistant/runs/{missing}",
        f"/v1/assistant/runs/{missing}/events",
    ):
        response = httpx.get(f"{api}{path}")
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    gone = httpx.post(
        f"{api}/v1/assistant/conversations/{missing}/messages", json={"content": "hi"}
    )
    assert gone.status_code == 404
    assert httpx.post(f"{api}/v1/assistant/runs/{missing}/approve").status_code == 404
    unknown_kb = httpx.post(
        f"{api}/v1/assistant/conversations", json={"knowledge_bases": ["nowhere"]}
    )
    assert unknown_kb.status_code == 404
    conversation = converse(api)
    first = send(api, conversation, "Remember this.")
    huge = httpx.post(
        f"{api}/v1/assistant/conversations/{conversation}/messages",
        json={"content": "x" * 100_000},
    )
    assert huge.status_code == 413, huge.text
    assert "100000 characters" in huge.json()["detail"]
    empty = httpx.post(
        f"{api}/v1/assistant/conversations/{conversation}/messages", json={"content": ""}
    )
    assert empty.status_code == 422
    busy = httpx.post(
        f"{api}/v1/assistant/conversations/{conversation}/messages", json={"content": "more"}
    )
    assert busy.status_code == 409  # no worker: the first run is still queued
    denied = httpx.post(f"{api}/v1/assistant/runs/{first['run_id']}/approve")
    assert denied.status_code == 409
    with resources.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(AssistantMessage))
    assert stored == 1
    cancelled = httpx.post(f"{api}/v1/assistant/runs/{first['run_id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert httpx.post(f"{api}/v1/assistant/runs/{first['run_id']}/cancel").status_code == 409
    assert httpx.delete(f"{api}/v1/assistant/conversations/{conversation}").status_code == 204
    assert httpx.get(f"{api}/v1/assistant/conversations/{conversation}").status_code == 404

    # The same over a WebSocket: no worker runs, so the run waits on the queue until cancelled.
    other = converse(api)
    url = api.replace("http://", "ws://") + f"/v1/assistant/conversations/{other}/ws"
    with ws_connect(url, open_timeout=10) as socket:
        socket.send(json.dumps({"type": "approve"}))
        assert json.loads(socket.recv(timeout=10))["data"]["metadata"]["status"] == 409
        socket.send(json.dumps({"type": "message", "content": ""}))
        assert json.loads(socket.recv(timeout=10))["data"]["metadata"]["status"] == 422
        socket.send(json.dumps({"type": "message", "content": "hello"}))
        assert json.loads(socket.recv(timeout=10))["type"] == "run"
        socket.send(json.dumps({"type": "cancel"}))
        seen: list[dict[str, Any]] = []
        while not any(r["type"] == "run_state" for r in seen):
            seen.append(json.loads(socket.recv(timeout=10)))  # each recv is bounded
        assert seen[-1]["data"]["state"] == "cancelled"
        socket.send(json.dumps({"type": "dance"}))
        while (answer := json.loads(socket.recv(timeout=10)))["type"] != "error":
            pass  # the run's own events (queued, stopped) may come first
        assert "type must be" in answer["data"]["content"]
    missing_ws = api.replace("http://", "ws://") + f"/v1/assistant/conversations/{missing}/ws"
    with pytest.raises(InvalidStatus), ws_connect(missing_ws, open_timeout=10):
        pass


# External tools through a Toolbox, the protocol the MCP client plugs into; these are the
# tools of a remote server (outside the system), scripted. The run goes in this process.


@dataclass(frozen=True)
class Result:
    text: str
    is_error: bool = False
    duration_ms: float = 1.0
    truncated: bool = False
    notice: str | None = None


@dataclass(frozen=True)
class Described:
    name: str
    policy: str
    description: str
    parameters: dict[str, Any]

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)


CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


class Clock:
    """get_time (allowed), delete_file (asks first), flaky (its server is down)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []

    def tools(self) -> list[Described]:
        return [
            Described("get_time", "allow", "The time in a city", CITY),
            Described("delete_file", "ask", "Delete a file", CITY),
            Described("flaky", "allow", "Always fails", CITY),
        ]

    def call(self, name: str, arguments: dict[str, Any], *, run_id: str | None = None) -> Result:
        self.calls.append((name, arguments, run_id))
        if name == "flaky":
            raise ServiceUnavailable("the MCP server 'flaky' did not answer within 60 s")
        if name == "delete_file":
            return Result(f"Deleted the notes of {arguments['city']}.")
        return Result(f"The time in {arguments['city']} is 14:05 (CET).\nSource: worldclock")


class WithTools:
    """The composition root, with a toolbox."""

    def __init__(self, resources: Resources, toolbox: Clock) -> None:
        self.resources = resources
        self.toolbox = toolbox

    @property
    def settings(self) -> Settings:
        return self.resources.settings

    @property
    def sessions(self) -> Any:
        return self.resources.sessions

    def knowledge(self, access: Any = None) -> Any:
        return self.resources.knowledge(access)

    def models(self, access: Any = None, *, lease: Any = None) -> Any:
        return self.resources.models(access, lease=lease)

    def assistant_toolbox(self, workspace_id: str, owner: str | None) -> Clock:
        return self.toolbox


def decided(run: Run) -> bool:
    return not run.still_waiting()


def run_here(
    resources: Resources, conversation: str, content: str, toolbox: Clock
) -> tuple[threading.Thread, list[dict[str, Any]], str, dict[str, Any]]:
    service = resources.assistant()
    sent = service.send(uuid.UUID(conversation), content)
    seen: list[dict[str, Any]] = []
    outcome: dict[str, Any] = {}
    live = LiveState(resources.redis, resources.settings.assistant_state_ttl_seconds)
    hooks = Hooks(lambda t, d: seen.append({"type": t, **(d or {})}), lambda: None)

    def drive() -> None:
        """Run it; where it pauses for approval, run it again once decided (as the job's
        next attempt would)."""
        while True:
            run = Run(WithTools(resources, toolbox), live, sent.run.id, hooks, None)
            result = run.go()
            if run.paused is None:
                outcome.update(result)
                return
            wait_for(functools.partial(decided, run), timeout=60)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    return thread, seen, str(sent.run.id), outcome


def test_external_tools_ask_for_approval_and_their_results_are_cited(
    api: str, resources: Resources, model: tuple[FakeLLMServer, AssistantModel]
) -> None:
    _, script = model
    clock = Clock()
    script.plan = [("delete_file", {"city": "Oslo"}), ("get_time", {"city": "Paris"})]
    conversation = converse(api)
    thread, seen, run_id, outcome = run_here(resources, conversation, "Time in Paris?", clock)

    def waiting() -> dict[str, Any] | None:
        state: dict[str, Any] = httpx.get(f"{api}/v1/assistant/runs/{run_id}").json()
        return state if state["state"] == "awaiting_approval" else None

    state = wait_for(waiting, timeout=30)
    assert isinstance(state, dict) and state["pending"][0]["name"] == "delete_file"
    assert clock.calls == []  # nothing runs before a person agrees
    request = next(e for e in seen if e["type"] == "tool_request")
    assert request["metadata"]["needs_approval"] is True
    denied = httpx.post(f"{api}/v1/assistant/runs/{run_id}/deny")
    assert denied.status_code == 200
    thread.join(60)
    assert outcome["state"] == "complete", seen
    assert [c[0] for c in clock.calls] == ["get_time"]
    assert clock.calls[0][2] == run_id
    results = [e for e in seen if e["type"] == "tool_result"]
    assert results[0]["metadata"]["is_error"] and "did not allow" in results[0]["content"]
    assert results[1]["content"].startswith("The time in Paris is 14:05")
    complete = seen[-1]
    assert complete["type"] == "complete" and "14:05" in complete["content"]
    (cited,) = complete["metadata"]["citations"]
    assert cited["kind"] == "tool" and cited["tool"] == "get_time"
    assert cited["tool_call_id"] == results[1]["metadata"]["tool_call_id"]
    assert "14:05" in cited["quote"]
    state = httpx.get(f"{api}/v1/assistant/runs/{run_id}").json()
    assert [(c["name"], c["status"]) for c in state["tool_calls"]] == [
        ("delete_file", "denied"),
        ("get_time", "done"),
    ]


def test_an_approved_call_runs_and_a_failing_tool_is_an_error_event_not_the_end(
    api: str, resources: Resources, model: tuple[FakeLLMServer, AssistantModel]
) -> None:
    _, script = model
    clock = Clock()
    script.plan = [("flaky", {"city": "Oslo"}), ("delete_file", {"city": "Oslo"})]
    script.answer = "Done: the notes are deleted."
    conversation = converse(api, tools=["flaky", "delete_file"])
    thread, seen, run_id, outcome = run_here(resources, conversation, "Delete Oslo", clock)
    wait_for(
        lambda: (
            httpx.get(f"{api}/v1/assistant/runs/{run_id}").json()["state"] == "awaiting_approval"
        ),
        timeout=30,
    )
    assert httpx.post(f"{api}/v1/assistant/runs/{run_id}/approve").status_code == 200
    thread.join(60)
    assert outcome["state"] == "complete", seen
    errors = [e for e in seen if e["type"] == "error"]
    assert "did not answer within 60 s" in errors[0]["content"]
    assert [c[0] for c in clock.calls] == ["flaky", "delete_file"]
    # The conversation's tool list narrows what the model is offered.
    assert {t["function"]["name"] for t in script.offered[0]} == {"flaky", "delete_file"}


def test_a_conversation_has_a_message_rate_and_runs_count_against_the_token_quota(
    api: str, resources: Resources, settings: Settings, start_worker: WorkerFactory
) -> None:
    start_worker(mode="inprocess", llm_daily_token_quota=10)
    limited = settings.model_copy(update={"assistant_messages_per_minute": 3})
    assert settings.database_url is not None and settings.redis_url is not None
    other = Resources.connect(limited, settings.database_url, settings.redis_url)
    try:
        with LiveServer(_app(other)) as url:
            conversation = converse(url)
            first = send(url, conversation, "Hello")  # the script's reply costs 18 tokens
            typed(events(url, first))
            second = send(url, conversation, "Hello again")
            stream = typed(events(url, second))
            assert stream[-1]["type"] == "error"
            assert "tokens for today" in stream[-1]["data"]["content"]
            third = send(url, conversation, "Still there?")
            typed(events(url, third))
            refused = httpx.post(
                f"{url}/v1/assistant/conversations/{conversation}/messages",
                json={"content": "one too many"},
            )
            assert refused.status_code == 429, refused.text
            assert "per minute" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) >= 1
            # Another conversation has its own count.
            assert send(url, converse(url), "Hello")["run_id"]
    finally:
        other.close()
    with resources.sessions() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(AssistantMessage)
            .where(AssistantMessage.content == "one too many")
        )
    assert stored == 0


@pytest.mark.slow
def test_the_command_line_streams_the_reply_shows_tool_calls_and_chats(
    api: str, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    from tests.e2e.test_cli import Cli

    start_worker(mode="inprocess")
    ingest(api)
    cli = Cli(tmp_path / "alice", CITELINE_URL=api)
    once = cli("assistant", "When was the Varnholm lighthouse built?", "--kb", "harbour")
    assert once.returncode == 0, once.stderr + once.stdout
    assert once.stdout.startswith(FOUNDED)
    assert "[tool] search_knowledge_base" in once.stderr and " ms): [1]" in once.stderr
    assert "[1] construction.md" in once.stderr or "[1] Building" in once.stderr
    conversation = once.stderr.split("conversation ", 1)[1].split()[0]

    chatted = cli("assistant", "--conversation", conversation, stdin="And who built it?\n/quit\n")
    assert chatted.returncode == 0, chatted.stderr
    assert FOUNDED in chatted.stdout
    shown = json.loads(cli.ok("assistant", "show", conversation, "--json"))
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"] * 2
    listed = json.loads(cli.ok("assistant", "list", "--json"))
    assert [c["id"] for c in listed] == [conversation]
    missing = cli("assistant", "show", str(uuid.uuid4()))
    assert missing.returncode != 0 and "not found" in missing.stderr


@pytest.mark.slow
def test_the_bundled_local_model_calls_the_search_tool_and_answers_from_it(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    resources.models().registry.ensure_defaults()  # `assistant` on the bundled model
    start_worker(mode="inprocess", assistant_max_steps=2, llm_threads=2)
    with LiveServer(_app(resources)) as api:
        ingest(api)
        conversation = converse(api, knowledge_bases=["harbour"])
        run = send(api, conversation, "Search the knowledge base: when was the lighthouse built?")
        with httpx.stream("GET", f"{api}{run['events_url']}", timeout=900) as stream:
            raw = read_sse(stream.iter_lines())
    typed_ = typed([json.loads(event["data"]) for event in raw])
    kinds = [e["type"] for e in typed_]
    assert "tool_result" in kinds and kinds[-1] == "complete", kinds
    request = next(e for e in typed_ if e["type"] == "tool_request")
    assert request["data"]["content"] == "search_knowledge_base"
    assert not next(e for e in typed_ if e["type"] == "tool_result")["data"]["metadata"]["is_error"]
    assert "1847" in typed_[-1]["data"]["content"]  # read from the tool's result


def test_the_assistant_alias_resolves_on_a_fresh_install(resources: Resources) -> None:
    route = resources.models().registry.resolve("assistant", None, "default")
    assert route.version.name == "local"  # the bundled model, like `answer` and `report`


def test_an_external_tool_over_its_rate_limit_is_refused_and_the_run_goes_on(
    api: str, resources: Resources, model: tuple[FakeLLMServer, AssistantModel]
) -> None:
    _, script = model
    resources.settings = resources.settings.model_copy(
        update={"assistant_tool_calls_per_minute": 1}
    )
    clock = Clock()
    script.plan = [("get_time", {"city": "Oslo"}), ("get_time", {"city": "Paris"})]
    script.answer = "It is 14:05."
    conversation = converse(api)
    thread, seen, _, outcome = run_here(resources, conversation, "Times?", clock)
    thread.join(60)
    assert outcome["state"] == "complete", seen
    assert [c[1]["city"] for c in clock.calls] == ["Oslo"]  # the second was refused
    results = [e for e in seen if e["type"] == "tool_result"]
    assert results[1]["metadata"]["is_error"] and "over its limit" in results[1]["content"]
