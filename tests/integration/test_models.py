"""The model service against the real database, Redis and local models: the registry, A/B
routing, recording, fallback, and Citeline's own OpenAI-compatible endpoint."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import select

from citeline.api.app import create_app
from citeline.auth.access import Access, Role
from citeline.errors import Conflict, InvalidInput, NotFound, ProviderError, QuotaExceeded
from citeline.jobs.presence import presence_key
from citeline.llm.chat_job import CHAT_KIND, chat_args
from citeline.llm.messages import ChatRequest, Message
from citeline.llm.models import Generation, TokenUsage
from citeline.llm.providers.factory import loaded_name
from citeline.llm.registry import ModelRegistry, NewVersion
from citeline.llm.service import ModelService
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import (
    ROOT,
    LiveServer,
    WorkerFactory,
    fast_settings,
    settings_env,
    wait_for,
)
from tests.fake_llm_server import Fail, FakeLLMServer, Reply

pytestmark = pytest.mark.slow

SMOL = "smollm2-135m"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        llm_model=SMOL,
        llm_retry_base_seconds=0.01,
        llm_timeout_seconds=30.0,
        # The fake providers listen on loopback, which is refused unless listed.
        outbound_allowed_hosts=["127.0.0.1"],
    )


@pytest.fixture
def models(resources: Resources) -> ModelService:
    return resources.models()


def hello(max_tokens: int = 12) -> ChatRequest:
    return ChatRequest(
        messages=[Message.system("You are brief."), Message.user("Say hello to Ada.")],
        max_tokens=max_tokens,
        temperature=0,
    )


def test_defaults_route_standard_aliases_to_the_builtin_local_model(models: ModelService) -> None:
    registry = models.registry
    registry.ensure_defaults()
    registry.ensure_defaults()  # idempotent
    aliases = {alias.name: routes for alias, routes in registry.aliases()}
    assert set(aliases) == {"default", "answer", "report", "assistant"}
    assert [(v.label, v.model, w) for v, w in aliases["answer"]] == [("local@1", "default", 1.0)]


def test_bad_registrations_are_refused_and_change_nothing(models: ModelService) -> None:
    registry = models.registry
    first = registry.add_version(NewVersion("smol", "local", SMOL))
    second = registry.add_version(
        NewVersion("smol", "local", SMOL, parameters={"temperature": 0.0, "max_tokens": 8})
    )
    assert (first.version, second.version) == (1, 2)
    bad = [
        (NewVersion("Bad Name", "local", SMOL), "name"),
        (NewVersion("x", "mystery", "m"), "provider"),
        (NewVersion("x", "local", "no-such-model"), "model"),
        (NewVersion("x", "openai", "gpt", base_url="ftp://host"), "base_url"),
        (NewVersion("x", "local", SMOL, parameters={"temperature": 9}), "parameters"),
        (NewVersion("x", "local", SMOL, parameters={"colour": "red"}), "parameters"),
    ]
    for new, field in bad:
        with pytest.raises(InvalidInput) as caught:
            registry.add_version(new)
        assert caught.value.field == field, new
    with pytest.raises(NotFound, match="nope@1"):
        registry.set_routes("answer", [("nope@1", 1.0)])
    with pytest.raises(InvalidInput, match="weights"):
        registry.set_routes("answer", [("smol@1", 0.0)])
    with pytest.raises(Conflict, match="model name"):
        registry.set_routes("smol", [("smol@1", 1.0)])
    registry.set_routes("answer", [("smol@1", 1.0)], fallback="smol@2")
    with pytest.raises(Conflict, match="routed by alias answer"):
        registry.delete_version("smol@2")
    with pytest.raises(Conflict, match="is an alias"):
        registry.add_version(NewVersion("answer", "local", SMOL))
    assert [v.label for v in registry.versions("smol")] == ["smol@1", "smol@2"]
    assert models.registry.resolve("answer").version.label == "smol@1"


def test_weighted_split_is_sticky_and_follows_the_weights(models: ModelService) -> None:
    registry = models.registry
    registry.add_version(NewVersion("a", "local", SMOL))
    registry.add_version(NewVersion("b", "local", SMOL))
    registry.set_routes("answer", [("a", 0.8), ("b", 0.2)])
    users = [f"user-{i}" for i in range(2000)]
    first = {u: registry.resolve("answer", u).version.label for u in users[:50]}
    assert all(registry.resolve("answer", u).version.label == first[u] for u in users[:50])
    counts = Counter(registry.resolve("answer", u).version.label for u in users)
    share = counts["b@1"] / len(users)
    sigma = math.sqrt(0.2 * 0.8 / len(users))
    assert abs(share - 0.2) < 4 * sigma, counts
    # Without a key each request is drawn afresh, still by weight.
    unkeyed = Counter(registry.resolve("answer").version.label for _ in range(1000))
    assert abs(unkeyed["b@1"] / 1000 - 0.2) < 4 * math.sqrt(0.16 / 1000), unkeyed


def test_local_generation_is_real_and_recorded(resources: Resources, models: ModelService) -> None:
    models.registry.add_version(
        NewVersion("smol", "local", SMOL, parameters={"max_tokens": 6}, prompt_template="Be kind.")
    )
    reply = models.start("smol", hello(), subject="ada", conversation="c1")
    events = list(reply)
    text = "".join(getattr(e, "text", "") for e in events)
    assert text.strip()
    assert reply.served_by.label == "smol@1"
    # The request set max_tokens, so the version's default does not apply.
    short = models.complete(
        "smol", ChatRequest(messages=[Message.user("Count from one to twenty.")]), subject="ada"
    )
    assert short.usage.output_tokens <= 6
    with resources.sessions() as session:
        rows = session.scalars(select(Generation).order_by(Generation.created_at)).all()
        assert [(r.version_label, r.outcome, r.subject) for r in rows] == [
            ("smol@1", "ok", "ada"),
            ("smol@1", "ok", "ada"),
        ]
        assert rows[0].input_tokens > 0 and rows[0].output_tokens > 0
        assert rows[0].first_token_ms is not None and rows[0].latency_ms >= rows[0].first_token_ms
        usage = session.scalars(select(TokenUsage)).one()
        assert (usage.subject, usage.model_name, usage.requests) == ("ada", "smol", 2)
        assert usage.output_tokens == sum(r.output_tokens for r in rows)


def test_an_unreachable_provider_falls_back_and_both_attempts_are_recorded(
    resources: Resources, models: ModelService
) -> None:
    registry = models.registry
    registry.add_version(
        NewVersion("down", "openai", "any", base_url="http://127.0.0.1:9/v1", credential=None)
    )
    registry.add_version(NewVersion("smol", "local", SMOL))
    registry.set_routes("answer", [("down", 1.0)], fallback="smol")
    reply = models.start("answer", hello(), subject="ada")
    assert "".join(getattr(e, "text", "") for e in reply).strip()
    assert reply.served_by.label == "smol@1"
    with resources.sessions() as session:
        rows = session.scalars(select(Generation).order_by(Generation.created_at)).all()
        assert [(r.version_label, r.outcome, r.fallback) for r in rows] == [
            ("down@1", "error", False),
            ("smol@1", "ok", True),
        ]
        assert "127.0.0.1:9" in (rows[0].error or "")
    registry.set_routes("answer", [("down", 1.0)])
    with pytest.raises(ProviderError) as caught:
        models.complete("answer", hello())
    assert caught.value.retryable and "openai:" in caught.value.provider


@pytest.fixture
def live_api(resources: Resources, start_worker: WorkerFactory) -> Iterator[str]:
    start_worker(mode="inprocess")
    with LiveServer(create_app(resources)) as url:
        yield url


def test_openai_client_against_citelines_own_endpoint(
    live_api: str, resources: Resources, models: ModelService
) -> None:
    client = openai.OpenAI(base_url=f"{live_api}/v1", api_key="unused", max_retries=0)
    listed = {model.id for model in client.models.list()}
    assert {"default", "answer", "local"} <= listed
    completion = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Say hello to Ada."}],
        max_tokens=12,
        temperature=0,
        user="ada",
    )
    assert completion.choices[0].message.content
    assert completion.model == "local@1"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    pieces = []
    usage = None
    for chunk in client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Name three colours."}],
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces).strip()
    assert usage is not None and usage.completion_tokens > 0

    # Citeline's OpenAI-compatible provider, pointed at Citeline itself.
    models.registry.add_version(
        NewVersion("loopback", "openai", "default", base_url=f"{live_api}/v1")
    )
    result = models.complete("loopback", hello(), subject="bob")
    assert result.text.strip() and result.usage.output_tokens > 0

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="default", messages=[])

    stats = httpx.get(f"{live_api}/v1/models/default/stats").json()
    assert [v["version"] for v in stats["variants"]] == ["local@1"]
    assert stats["variants"][0]["requests"] >= 3
    # Usage is the signed-in caller's (here the local user's), whatever `user` the body names.
    usage_rows = httpx.get(f"{live_api}/v1/usage").json()["usage"]
    assert usage_rows[0]["subject"].startswith("user:")
    assert usage_rows[0]["model"] == "local" and usage_rows[0]["requests"] == 3


def test_registry_over_http(live_api: str) -> None:
    created = httpx.post(
        f"{live_api}/v1/models",
        json={"name": "smol", "provider": "local", "model": SMOL, "parameters": {"threads": 1}},
    )
    assert created.status_code == 201, created.text
    assert created.json()["ref"] == "smol@1"
    bad = httpx.post(f"{live_api}/v1/models", json={"name": "x", "provider": "z", "model": "m"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "provider"
    routed = httpx.put(
        f"{live_api}/v1/models/answer/routes",
        json={"routes": [{"model": "smol@1", "weight": 3}, {"model": "local", "weight": 1}]},
    )
    assert routed.status_code == 200, routed.text
    assert routed.json()["routes"] == [
        {"model": "smol@1", "weight": 3.0, "loaded": False, "loaded_on": 0, "load_seconds": None},
        {"model": "local@1", "weight": 1.0, "loaded": False, "loaded_on": 0, "load_seconds": None},
    ]
    assert httpx.delete(f"{live_api}/v1/models/smol/versions/1").status_code == 409
    assert httpx.get(f"{live_api}/v1/models/smol/versions").json()["versions"][0]["version"] == 1


def test_a_client_that_disconnects_stops_the_generation(
    live_api: str, resources: Resources
) -> None:
    body = {
        "model": "default",
        "messages": [
            {"role": "user", "content": "List the numbers from 1 to 1000 separated by commas."}
        ],
        "max_tokens": 1500,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream("POST", f"{live_api}/v1/chat/completions", json=body, timeout=30) as reply:
        seen = 0
        for line in reply.iter_lines():
            if line.startswith("data: ") and '"content": "' in line:
                seen += 1
            if seen >= 3:
                break
    jobs = resources.jobs()

    def stopped() -> bool:
        listed = jobs.list(kind="llm.chat")
        return bool(listed) and listed[0].state == "stopped"

    wait_for(stopped, timeout=30)

    def recorded() -> list[Generation]:
        with resources.sessions() as session:
            return list(session.scalars(select(Generation)))

    rows = wait_for(recorded, timeout=30)
    assert isinstance(rows, list)
    assert rows[0].outcome == "cancelled"
    assert rows[0].output_tokens < 1500


def test_models_pull_from_the_command_line(resources: Resources) -> None:
    """`models pull` works on this machine's models directory; the other `models` commands
    and `chat` talk to a server (tests/e2e/test_cli.py)."""
    pulled = subprocess.run(
        [sys.executable, "-m", "citeline", "models", "pull", SMOL],
        env={**settings_env(resources.settings), "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip().endswith(".gguf")
    assert "using data directory" in pulled.stderr


def test_retries_then_the_circuit_breaker_against_a_failing_server(
    resources: Resources, settings: Settings
) -> None:
    models = ModelService(
        resources.sessions,
        resources.redis,
        settings.model_copy(
            update={
                "llm_retry_attempts": 3,
                "llm_breaker_failures": 3,
                "llm_breaker_cool_down_seconds": 0.5,
            }
        ),
    )
    with FakeLLMServer() as server:
        # Each server has a port of its own, so this breaker starts closed.
        models.registry.add_version(
            NewVersion("flaky", "openai", "m", base_url=server.openai_base_url)
        )
        server.plan(Fail(503), Fail(503), Reply("Hello Ada", chunks=2))
        result = models.complete("flaky", hello(), subject="ada")
        assert result.text == "Hello Ada"
        assert len(server.requests) == 3

        server.plan(Fail(401))
        with pytest.raises(ProviderError, match="credentials were refused") as refused:
            models.complete("flaky", hello())
        assert not refused.value.retryable
        assert len(server.requests) == 4  # not retried

        server.plan(Fail(500), Fail(500))
        with pytest.raises(ProviderError, match="circuit open"):
            models.complete("flaky", hello())
        # The 401 and two 500s in a row opened the breaker before the third try.
        assert len(server.requests) == 6
        with pytest.raises(ProviderError, match="circuit open") as opened:
            models.complete("flaky", hello())
        assert opened.value.retryable
        assert len(server.requests) == 6  # refused without calling the server

        time.sleep(0.6)  # cool-down over: one trial goes through and closes the breaker
        server.plan(Reply("back", chunks=1))
        assert server.pending == 1
        assert models.complete("flaky", hello()).text == "back"
    with resources.sessions() as session:
        outcomes = Counter(session.scalars(select(Generation.outcome)))
    assert outcomes == {"ok": 2, "error": 3}  # retries inside one call are one generation


def test_a_daily_token_quota_refuses_once_used_up(resources: Resources, settings: Settings) -> None:
    models = ModelService(
        resources.sessions,
        resources.redis,
        settings.model_copy(update={"llm_daily_token_quota": 30}),
    )
    models.registry.add_version(NewVersion("smol", "local", SMOL))
    used = models.complete("smol", hello(max_tokens=8), subject="ada")
    assert used.usage.input_tokens + used.usage.output_tokens >= 30
    with pytest.raises(QuotaExceeded, match="ada has used its 30 tokens"):
        models.complete("smol", hello(), subject="ada")
    assert models.complete("smol", hello(max_tokens=2), subject="bob").text is not None
    assert models.tokens_today("ada") == used.usage.input_tokens + used.usage.output_tokens


def test_a_model_job_over_its_timeout_is_stopped_in_the_non_forking_worker(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    request = ChatRequest(
        messages=[Message.user("List the numbers from 1 to 1000 separated by commas.")],
        max_tokens=1500,
        temperature=0,
    )
    jobs = resources.jobs()
    job = jobs.enqueue(CHAT_KIND, chat_args("default", request, None), timeout_seconds=3)
    start_worker(mode="inprocess")
    wait_for(lambda: jobs.get(job.id).state == "failed", timeout=60)
    assert "timed out" in (jobs.get(job.id).error or "")

    def recorded() -> list[Generation]:
        with resources.sessions() as session:
            return list(session.scalars(select(Generation)))

    rows = wait_for(recorded)
    assert isinstance(rows, list) and rows[0].outcome == "cancelled"
    # The same worker, model still loaded, serves the next job.
    quick = jobs.enqueue(CHAT_KIND, chat_args("default", hello(), None))
    wait_for(lambda: jobs.get(quick.id).state == "finished", timeout=60)


def test_a_worker_reports_the_model_it_keeps_loaded_until_it_dies(
    resources: Resources, models: ModelService, start_worker: WorkerFactory
) -> None:
    version = models.registry.resolve("default").version
    name = loaded_name(version, resources.settings)
    assert name is not None and models.loaded_on(version) == 0
    jobs = resources.jobs()
    job = jobs.enqueue(CHAT_KIND, chat_args("default", hello(max_tokens=2), None))
    worker = start_worker(mode="inprocess", loaded_model_ttl_seconds=1.5)
    wait_for(lambda: jobs.get(job.id).state == "finished", timeout=60)
    assert models.loaded_on(version) == 1
    took = models.load_seconds(version)
    assert took is not None and 0 < took < 60
    reports = resources.redis.zrange(presence_key(name), 0, -1, withscores=True)
    assert isinstance(reports, list) and len(reports) == 1
    first_expiry = float(reports[0][1])
    # Past the first report's expiry the worker still counts: it renewed the report.
    wait_for(lambda: time.time() * 1000 > first_expiry + 200, timeout=5)
    assert models.loaded_on(version) == 1
    with LiveServer(create_app(resources)) as url:
        listed = {m["id"]: m for m in httpx.get(f"{url}/v1/models").json()["data"]}
    (route,) = listed["default"]["routes"]
    assert route["loaded"] is True and route["loaded_on"] == 1 and route["load_seconds"] > 0
    # A killed worker cannot say goodbye; its report lapses with its TTL.
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    wait_for(lambda: models.loaded_on(version) == 0, timeout=10)
    assert models.load_seconds(version) == took  # how long a load takes is kept


def test_loading_a_model_that_holds_the_gil_longer_than_the_lease_does_not_lose_the_job(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    # The 1.5B model takes seconds to load, with the GIL held; jobs here count as lost after
    # 1.5 s without a heartbeat.
    assert resources.settings.job_lost_after_seconds < 2
    models = resources.models()
    models.registry.add_version(NewVersion("qwen", "local", "qwen2.5-coder-1.5b"))
    jobs = resources.jobs()
    job = jobs.enqueue(CHAT_KIND, chat_args("qwen", hello(max_tokens=4), None))
    start_worker(mode="inprocess", models_dir=ROOT / ".cache" / "models")
    wait_for(lambda: jobs.get(job.id).state in ("finished", "failed"), timeout=120)
    assert jobs.get(job.id).state == "finished", jobs.get(job.id).error


def test_a_chat_job_routes_through_its_workspaces_own_alias(
    live_api: str, resources: Resources
) -> None:
    with FakeLLMServer(Reply("from the workspace's model", chunks=2)) as server:
        system = resources.models()
        system.registry.add_version(
            NewVersion("remote", "openai", "m", base_url=server.openai_base_url)
        )
        alpha = ModelRegistry(resources.sessions, Access("system", "default", Role.owner))
        alpha.set_routes("default", [("remote@1", 1.0)])
        client = openai.OpenAI(base_url=f"{live_api}/v1", api_key="unused", max_retries=0)
        completion = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "Hi"}], max_tokens=8
        )
        assert completion.choices[0].message.content == "from the workspace's model"
        assert completion.model == "remote@1"
    assert system.registry.resolve("default").version.label == "local@1"  # no workspace
    with resources.sessions() as session:
        rows = session.execute(select(Generation.version_label, Generation.workspace_id)).all()
    assert rows == [("remote@1", "default")]
    stats = httpx.get(f"{live_api}/v1/models/default/stats").json()["variants"]
    assert [(v["version"], v["requests"]) for v in stats] == [("remote@1", 1)]
