"""Agent builder sessions on the real engines: the stage machine driven by structured answers
and by words read through the queue (a scripted remote model), live state in Redis with its
TTL, the permanent row in PostgreSQL, resume, abandonment, refusals and bad input."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from citeline.agent_builder import Answer, ToolInfo
from citeline.agent_builder.models import BuilderSession
from citeline.agent_builder.state import session_key
from citeline.auth import Access, Role
from citeline.errors import NotFound
from citeline.llm.registry import NewVersion
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, WorkerFactory, fast_settings, wait_for
from tests.fake_llm_server import Fail, FakeLLMServer, Reply, Respond

V1 = "/v1/agent-builder/sessions"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        outbound_allowed_hosts=["127.0.0.1"],
        llm_max_retries=0,
        agent_builder_model_timeout_seconds=60,
    )


@pytest.fixture
def builder_resources(resources: Resources) -> Resources:
    with resources.engine.begin() as connection:
        connection.execute(text("DELETE FROM builder_sessions"))
    return resources


def _app(resources: Resources) -> Any:
    from citeline.api.app import create_app

    return create_app(resources)


@pytest.fixture
def api(builder_resources: Resources) -> Iterator[str]:
    with LiveServer(_app(builder_resources)) as url:
        yield url


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def answer(api: str, session_id: str, **values: Any) -> httpx.Response:
    return httpx.post(f"{api}/sessions/{session_id}/message", json={"answer": values}, timeout=60)


def row(resources: Resources, session_id: str) -> BuilderSession:
    with resources.sessions() as session:
        found = session.get(BuilderSession, uuid.UUID(session_id))
        assert found is not None
        session.expunge(found)
        return found


def to_review(api: str, session_id: str, tools: Sequence[str] | None = None) -> dict[str, Any]:
    ok(answer(api, session_id, agent_type="question_answering"))
    after_goals = ok(answer(api, session_id, goals=["answer questions about the handbook"]))
    assert after_goals["stage"] == "tone"
    ok(answer(api, session_id, tone="friendly"))
    chosen = after_goals["suggested_tools"] if tools is None else list(tools)
    ok(answer(api, session_id, tools=chosen))
    return ok(answer(api, session_id, human_review=True))


def test_a_conversation_of_structured_answers_reaches_completed(
    api: str, builder_resources: Resources
) -> None:
    created = ok(httpx.post(f"{api}/sessions/create"), 201)
    sid = created["id"]
    assert created["stage"] == "initial" and created["status"] == "active"
    assert set(created["missing"]) == {"agent_type", "goals", "tone", "tools", "human_review"}
    assert builder_resources.redis.ttl(session_key(uuid.UUID(sid))) > 3000

    first = ok(answer(api, sid, agent_type="question_answering"))
    assert first["stage"] == "goals" and first["fields"]["agent_type"] == "question_answering"
    assert first["outputs"]["workflow"] is not None  # a draft as soon as the type is known
    goals = ok(answer(api, sid, goals=["answer questions about the handbook with sources"]))
    # The knowledge-base search is closest to these goals: suggested, not yet chosen.
    assert goals["suggested_tools"] == ["search_knowledge_base"]
    assert goals["fields"]["tools"] == "unknown"
    ok(answer(api, sid, tone="friendly"))
    tools = ok(answer(api, sid, tools=["search_knowledge_base"]))
    assert tools["stage"] == "workflow"
    review = ok(answer(api, sid, human_review=True))
    assert review["stage"] == "review" and review["missing"] == []

    # Going back at the review stage: the tone changes, the drafts follow, the stage stays.
    changed = ok(answer(api, sid, tone="formal"))
    assert changed["stage"] == "review"
    assert "Write formally" in changed["outputs"]["final_prompt"]

    done = ok(answer(api, sid, confirm=True))
    assert done["status"] == "completed" and done["stage"] == "completed"
    outputs = done["outputs"]
    node_types = [n["type"] for n in outputs["workflow"]["nodes"]]
    assert "tool" in node_types and "human_review" in node_types
    assert outputs["tools_config"][0]["name"] == "search_knowledge_base"
    assert outputs["tools_config"][0]["parameters"]["required"] == ["query"]

    stored = row(builder_resources, sid)
    assert stored.status == "completed" and stored.completed_at is not None
    assert stored.workflow_json == outputs["workflow"]
    assert stored.final_prompt == outputs["final_prompt"]
    assert stored.tools_config == outputs["tools_config"]
    assert [h["role"] for h in stored.history[:3]] == ["assistant", "user", "assistant"]
    assert not builder_resources.redis.exists(session_key(uuid.UUID(sid)))

    mermaid = httpx.get(f"{api}{V1}/{sid}/workflow.mmd")
    assert mermaid.status_code == 200 and mermaid.text.startswith("flowchart TD")
    assert "search_knowledge_base" in mermaid.text

    # A completed session takes no more messages, and keeps what it has.
    refused = problem(answer(api, sid, tone="concise"), 409)
    assert "completed" in refused["detail"]
    assert ok(httpx.get(f"{api}/sessions/{sid}/status"))["outputs"] == outputs
    problem(httpx.post(f"{api}/sessions/{sid}/resume"), 409)

    listed = ok(httpx.get(f"{api}{V1}"))["sessions"]
    assert [s["id"] for s in listed] == [sid]
    assert httpx.delete(f"{api}{V1}/{sid}").status_code == 204
    problem(httpx.get(f"{api}{V1}/{sid}/status"), 404)
    with builder_resources.sessions() as session:
        assert session.scalars(select(BuilderSession)).all() == []


def test_a_session_whose_redis_key_was_deleted_is_resumed_from_the_database(
    api: str, builder_resources: Resources
) -> None:
    sid = ok(httpx.post(f"{api}{V1}"), 201)["id"]
    ok(answer(api, sid, agent_type="research"))
    before = ok(answer(api, sid, goals=["track new papers on retrieval"]))
    builder_resources.redis.delete(session_key(uuid.UUID(sid)))

    resumed = ok(httpx.post(f"{api}{V1}/{sid}/resume"))
    assert resumed["status"] == "active" and resumed["stage"] == "tone"
    assert resumed["fields"] == before["fields"]
    assert resumed["history"][: len(before["history"])] == before["history"]
    assert resumed["question"].startswith("Welcome back")
    assert builder_resources.redis.exists(session_key(uuid.UUID(sid)))
    live = json.loads(builder_resources.redis.get(session_key(uuid.UUID(sid))) or b"{}")
    assert live["fields"]["agent_type"] == "research" and live["stage"] == "tone"
    assert ok(answer(api, sid, tone="technical"))["stage"] == "tools"


def test_a_session_idle_past_the_ttl_is_abandoned_and_can_be_reopened(
    builder_resources: Resources,
) -> None:
    builder_resources.settings = builder_resources.settings.model_copy(
        update={"agent_builder_ttl_seconds": 1}
    )
    with LiveServer(_app(builder_resources)) as api:
        sid = ok(httpx.post(f"{api}/sessions/create"), 201)["id"]
        ok(answer(api, sid, agent_type="summarizer"))
        key = session_key(uuid.UUID(sid))
        wait_for(lambda: not builder_resources.redis.exists(key), timeout=5)

        def abandoned() -> bool:
            return bool(ok(httpx.get(f"{api}/sessions/{sid}/status"))["status"] == "abandoned")

        wait_for(abandoned, timeout=5, interval=0.2)
        assert row(builder_resources, sid).status == "abandoned"
        refused = problem(answer(api, sid, tone="concise"), 409)
        assert "resume" in refused["detail"]

        reopened = ok(httpx.post(f"{api}/sessions/{sid}/resume"))
        assert reopened["status"] == "active"
        assert reopened["fields"]["agent_type"] == "summarizer"
        assert ok(answer(api, sid, goals=["condense weekly reports"]))["stage"] == "tone"


def test_a_tool_that_does_not_exist_is_refused_with_the_reason(
    builder_resources: Resources,
) -> None:
    offered = [ToolInfo("time_now", "The current time in a time zone.", source="mcp")]

    def mcp_tools(workspace_id: str) -> list[ToolInfo]:
        return list(offered)

    builder_resources.builder_tool_sources = (mcp_tools,)
    with LiveServer(_app(builder_resources)) as api:
        sid = ok(httpx.post(f"{api}/sessions/create"), 201)["id"]
        ok(answer(api, sid, agent_type="question_answering"))
        ok(answer(api, sid, goals=["answer questions about opening hours"]))
        ok(answer(api, sid, tone="concise"))
        before = ok(httpx.get(f"{api}/sessions/{sid}/status"))

        refused = problem(answer(api, sid, tools=["web_browser"]), 422)
        assert "web_browser" in refused["detail"] and "time_now" in refused["detail"]
        assert ok(httpx.get(f"{api}/sessions/{sid}/status")) == before  # nothing changed

        ok(answer(api, sid, tools=["time_now"]))
        review = ok(answer(api, sid, human_review=False))
        assert review["outputs"]["tools_config"][0]["source"] == "mcp"
        # The tool server goes away before the person confirms: the workflow is refused.
        offered.clear()
        gone = problem(answer(api, sid, confirm=True), 422)
        assert "time_now" in gone["detail"]
        after = ok(httpx.get(f"{api}/sessions/{sid}/status"))
        assert after["status"] == "active" and after["stage"] == "review"
        assert after["history"] == review["history"]
        assert row(builder_resources, sid).status == "active"


def test_another_workspace_cannot_see_or_touch_a_session(builder_resources: Resources) -> None:
    system = builder_resources.accounts()
    root = system.create_user(
        "root@example.com", "correct horse battery", is_admin=True, workspace_id="default",
        role=Role.owner,
    )  # fmt: skip
    system.create_workspace("Alpha", "alpha", owner_id=root.id)
    system.create_workspace("Beta", "beta", owner_id=root.id)
    alpha = builder_resources.builder(Access("user:a", "alpha", Role.member))
    beta = builder_resources.builder(Access("user:b", "beta", Role.member))
    made = alpha.create()
    sid = uuid.UUID(made.state.id)
    for attempt in (
        lambda: beta.status(sid),
        lambda: beta.message(sid, None, Answer(tone="formal")),
        lambda: beta.resume(sid),
        lambda: beta.delete(sid),
        lambda: beta.mermaid(sid),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert beta.all() == []
    assert alpha.status(sid).state.status == "active"
    assert [s.id for s in alpha.all()] == [sid]


def test_bad_input_gets_problem_details_and_loses_nothing(
    api: str, builder_resources: Resources
) -> None:
    unknown = uuid.uuid4()
    problem(httpx.get(f"{api}/sessions/{unknown}/status"), 404)
    problem(answer(api, str(unknown), tone="formal"), 404)
    problem(httpx.post(f"{api}/sessions/{unknown}/resume"), 404)
    problem(httpx.delete(f"{api}/sessions/{unknown}"), 404)
    problem(httpx.get(f"{api}{V1}/{unknown}/workflow.mmd"), 404)
    problem(httpx.get(f"{api}/sessions/not-a-uuid/status"), 422)

    sid = ok(httpx.post(f"{api}/sessions/create"), 201)["id"]
    problem(httpx.get(f"{api}{V1}/{sid}/workflow.mmd"), 409)  # no type yet, no workflow
    ok(answer(api, sid, agent_type="writer"))
    before = ok(httpx.get(f"{api}/sessions/{sid}/status"))
    message = f"{api}/sessions/{sid}/message"
    huge = problem(httpx.post(message, json={"text": "x" * 100_000}, timeout=30), 422)
    assert "4000" in json.dumps(huge)
    problem(httpx.post(message, json={}), 422)
    problem(httpx.post(message, json={"text": "hi", "answer": {"tone": "formal"}}), 422)
    problem(httpx.post(message, json={"text": "   "}), 422)
    problem(httpx.post(message, json={"text": "\x00\x01 "}), 422)
    problem(httpx.post(message, json={"answer": {}}), 422)
    problem(httpx.post(message, json={"answer": {"tone": "sarcastic"}}), 422)
    problem(httpx.post(message, json={"answer": {"agent_type": "oracle"}}), 422)
    problem(httpx.post(message, json={"answer": {"goals": ["g"] * 6}}), 422)
    problem(httpx.post(message, json={"answer": {"confirm": True}}), 422)  # not at review
    problem(httpx.post(message, json={"answer": {"colour": "blue"}}), 422)
    assert ok(httpx.get(f"{api}/sessions/{sid}/status")) == before
    assert len(row(builder_resources, sid).history) == len(before["history"])


@pytest.fixture
def scripted_model(builder_resources: Resources) -> Iterator[FakeLLMServer]:
    """The `assistant` alias on a scripted remote model that invents a tone and a type."""

    def reply(body: dict[str, Any]) -> Reply:
        schema = body["response_format"]["json_schema"]["schema"]["properties"]
        values: dict[str, Any] = {}
        if "agent_type" in schema:
            values["agent_type"] = "customer_support"
        if "goals" in schema:
            values["goals"] = ["help customers with orders", "write poems"]
        if "tone" in schema:
            values["tone"] = "friendly"  # never said
        if "change" in schema:
            values["change"] = "none"
        return Reply(json.dumps(values), chunks=1)

    with FakeLLMServer(default=Respond(reply)) as server:
        registry = builder_resources.models().registry
        registry.ensure_defaults()
        registry.add_version(NewVersion("scripted", "openai", "m", base_url=server.openai_base_url))
        registry.set_routes("assistant", [("scripted", 1.0)])
        yield server


def test_words_are_read_by_the_model_on_the_queue_and_checked(
    api: str, start_worker: WorkerFactory, scripted_model: FakeLLMServer
) -> None:
    start_worker(mode="inprocess")
    sid = ok(httpx.post(f"{api}/sessions/create"), 201)["id"]
    message = f"{api}/sessions/{sid}/message"
    first = ok(
        httpx.post(message, json={"text": "A support bot for customers and orders"}, timeout=90)
    )
    # The type and the goal the person gave are taken; the tone and the poems they did not are not.
    assert first["fields"]["agent_type"] == "customer_support"
    assert first["fields"]["goals"] == ["help customers with orders"]
    assert first["fields"]["tone"] == "unknown"
    assert first["stage"] == "tone"
    again = ok(httpx.post(message, json={"text": "no preference"}, timeout=90))
    assert again["stage"] == "tone" and again["question"].startswith("I still need its tone")
    back = ok(httpx.post(message, json={"text": "change the type to research"}, timeout=90))
    assert back["fields"]["agent_type"] == "research" and back["stage"] == "tone"
    request = scripted_model.requests[0].body
    assert request["model"] == "m" and request["temperature"] == 0.0
    # The model fails: a problem naming it, and the session as it was.
    scripted_model.plan(Fail(400, "the scripted model refuses"))
    failed = httpx.post(message, json={"text": "formal"}, timeout=90)
    assert "scripted model refuses" in problem(failed, 502)["detail"]
    assert ok(httpx.get(f"{api}/sessions/{sid}/status")) == back


def test_a_completed_session_registers_an_agent(api: str) -> None:
    sid = ok(httpx.post(f"{api}/sessions/create"), 201)["id"]
    unfinished = httpx.post(f"{api}/v1/agents", json={"name": "early", "builder_session_id": sid})
    assert "finish it" in problem(unfinished, 409)["detail"]
    to_review(api, sid)
    done = ok(answer(api, sid, confirm=True))
    created = httpx.post(f"{api}/v1/agents", json={"name": "handbook", "builder_session_id": sid})
    agent = ok(created, 201)
    assert agent["workflow"] == done["outputs"]["workflow"]
    assert agent["system_prompt"] == done["outputs"]["final_prompt"]
    assert agent["builder_session_id"] == sid
