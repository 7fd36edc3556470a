"""A whole builder conversation read by the bundled local model (the `assistant` alias on a
fresh install), on a real worker: it reaches `completed` with a schema-valid workflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from citeline.agents import validate_workflow
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, WorkerFactory, fast_settings

pytestmark = pytest.mark.slow

SAYS = {
    "initial": "I want a formal question answering agent that answers employee questions "
    "about our HR handbook.",
    "agent_type": "a question answering agent",
    "goals": "answer employee questions about the HR handbook",
    "tone": "formal",
    "tools": "yes, use the suggested tools",
    "workflow": "yes, a person should review each answer",
    "review": "looks good, confirm",
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        llm_threads=1,
        agent_builder_model_timeout_seconds=600,
    )


@pytest.fixture
def api(resources: Resources) -> Iterator[str]:
    from citeline.api.app import create_app

    resources.models().registry.ensure_defaults()
    with LiveServer(create_app(resources)) as url:
        yield url


def test_a_conversation_with_the_local_model_reaches_completed(
    api: str, start_worker: WorkerFactory
) -> None:
    start_worker(mode="inprocess")
    session: dict[str, Any] = httpx.post(f"{api}/sessions/create").json()
    sid = session["id"]
    turns = 0
    while session["status"] == "active" and turns < 10:
        response = httpx.post(
            f"{api}/sessions/{sid}/message", json={"text": SAYS[session["stage"]]}, timeout=900
        )
        assert response.status_code == 200, response.text
        session = response.json()
        turns += 1
    assert session["status"] == "completed", session["history"]
    fields = session["fields"]
    assert fields["agent_type"] == "question_answering"
    assert fields["tone"] == "formal"
    assert fields["human_review"] == "yes"
    assert any("handbook" in goal.lower() for goal in fields["goals"])
    workflow = session["outputs"]["workflow"]
    checked = validate_workflow(workflow, tools=["search_knowledge_base"])
    assert checked.tools == fields["tools"]
    assert "human_review" in [node["type"] for node in workflow["nodes"]]
    assert turns <= 6
