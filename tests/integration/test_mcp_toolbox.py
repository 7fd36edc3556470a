"""The MCP toolbox against real servers: `mcp-server-time` over stdio and a streamable HTTP
server started here, whose tools ask for approval, hang, die mid-call, flood, and change."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from citeline.auth import Access, Role
from citeline.auth.models import AuditEvent
from citeline.mcp import McpToolbox
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import fast_settings, wait_for
from tests.mcp.support import TIME_SERVER, HttpServer, http_mcp, stdio_commands

__all__ = ["http_mcp"]

ROOT = Access("system", "default", Role.owner, instance_admin=True)
MEMBER = Access("user:member", "default", Role.member)
VIEWER = Access("user:viewer", "default", Role.viewer)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        redis_url,
        mcp_stdio_commands=stdio_commands(),
        outbound_allowed_hosts=["127.0.0.1"],
        mcp_call_timeout_seconds=3.0,
        mcp_result_max_chars=1000,
        mcp_tool_calls_per_minute=1000,
    )


@pytest.fixture
def toolboxes(resources: Resources) -> Iterator[list[McpToolbox]]:
    opened: list[McpToolbox] = []
    yield opened
    for toolbox in opened:
        toolbox.close()


def open_toolbox(resources: Resources, access: Access, opened: list[McpToolbox]) -> McpToolbox:
    toolbox = resources.mcp_toolbox(access)
    opened.append(toolbox)
    return toolbox


def add_time(resources: Resources) -> uuid.UUID:
    return resources.mcp_servers(ROOT).register("time", "stdio", command=TIME_SERVER).id


def add_http(resources: Resources, server: HttpServer, name: str = "lab") -> uuid.UUID:
    return resources.mcp_servers(ROOT).register(name, "http", url=server.url).id


def tool_calls(resources: Resources, toolboxes: list[McpToolbox]) -> list[AuditEvent]:
    for toolbox in toolboxes:
        toolbox.flush()
    with resources.sessions() as session:
        statement = select(AuditEvent).where(AuditEvent.action == "mcp.tool_call")
        return list(session.scalars(statement.order_by(AuditEvent.id)))


def test_a_stdio_tool_is_listed_and_called(
    resources: Resources, toolboxes: list[McpToolbox]
) -> None:
    add_time(resources)
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    tools = {tool.name: tool for tool in toolbox.tools()}
    assert set(tools) == {"time__get_current_time", "time__convert_time"}
    current = tools["time__get_current_time"]
    assert current.policy == "allow" and current.tool_name == "get_current_time"
    spec = current.spec()
    assert spec.name == "time__get_current_time" and "timezone" in spec.parameters["properties"]

    result = toolbox.call("time__get_current_time", {"timezone": "Europe/Paris"}, run_id="r1")
    assert not result.is_error and '"timezone": "Europe/Paris"' in result.text
    assert result.duration_ms > 0 and not result.truncated

    # The tool's own error is the model's to read, not an exception.
    wrong = toolbox.call("time__get_current_time", {"timezone": "Mars/Olympus"})
    assert wrong.is_error and "Mars/Olympus" in wrong.text

    [ok, failed] = tool_calls(resources, toolboxes)
    assert ok.actor == "user:member" and ok.target == "time__get_current_time"
    assert ok.outcome == "ok" and ok.detail["server"] == "time" and ok.detail["run_id"] == "r1"
    assert len(ok.detail["arguments_sha256"]) == 64 and ok.detail["duration_ms"] > 0
    assert failed.outcome == "ok" and failed.detail["is_error"] is True


def test_arguments_that_do_not_match_the_schema_tell_the_model_what_is_wrong(
    resources: Resources, toolboxes: list[McpToolbox]
) -> None:
    add_time(resources)
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    missing = toolbox.call("time__get_current_time", {})
    assert missing.is_error and "'timezone' is a required property" in missing.text
    typed = toolbox.call("time__get_current_time", {"timezone": 7})
    assert typed.is_error and "timezone: 7 is not of type 'string'" in typed.text
    unknown = toolbox.call("time__no_such_tool", {})
    assert unknown.is_error and "time__get_current_time" in unknown.text
    assert [e.outcome for e in tool_calls(resources, toolboxes)] == ["failed", "failed", "denied"]
    # Nothing reached the server: the connection was only opened to list the tools.
    assert toolbox.call("time__get_current_time", {"timezone": "UTC"}).is_error is False


def test_policies_follow_annotations_and_roles_and_overrides(
    resources: Resources, toolboxes: list[McpToolbox], http_mcp: HttpServer
) -> None:
    server_id = add_http(resources, http_mcp)
    member = {t.name: t for t in open_toolbox(resources, MEMBER, toolboxes).tools()}
    assert member["lab__echo"].policy == "allow"
    assert member["lab__erase"].policy == "ask"  # destructive
    viewer_box = open_toolbox(resources, VIEWER, toolboxes)
    viewer = {t.name for t in viewer_box.tools()}
    assert "lab__echo" in viewer and "lab__erase" not in viewer  # viewers change nothing

    # A viewer calling the destructive tool anyway is refused, approved or not.
    denied = viewer_box.call("lab__erase", {"path": "/a"}, approved=True)
    assert denied.is_error and "lab__erase" in denied.text
    # A member's ask tool runs only once a person approved it.
    member_box = open_toolbox(resources, MEMBER, toolboxes)
    pending = member_box.call("lab__erase", {"path": "/a"})
    assert pending.is_error and "approval" in pending.text
    done = member_box.call("lab__erase", {"path": "/a"}, approved=True)
    assert done.text == "erased /a (1 so far)"

    # An admin denies echo to members and lets viewers erase.
    resources.mcp_servers(ROOT).set_policies(
        server_id, [("echo", "member", "deny"), ("erase", "viewer", "allow")]
    )
    member_after = {t.name for t in open_toolbox(resources, MEMBER, toolboxes).tools()}
    assert "lab__echo" not in member_after
    assert member_box.call("lab__echo", {"text": "hi"}).is_error  # its stale list changes nothing
    viewer_after = open_toolbox(resources, VIEWER, toolboxes)
    assert viewer_after.call("lab__erase", {"path": "/b"}).text == "erased /b (2 so far)"
    outcomes = [(e.actor, e.target, e.outcome) for e in tool_calls(resources, toolboxes)]
    assert ("user:viewer", "lab__erase", "denied") in outcomes
    assert ("user:member", "lab__echo", "denied") in outcomes


def test_a_hanging_tool_times_out_and_the_toolbox_goes_on(
    resources: Resources, toolboxes: list[McpToolbox], http_mcp: HttpServer
) -> None:
    add_http(resources, http_mcp)
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    toolbox.tools()
    result = toolbox.call("lab__hang", {})
    assert result.is_error and "did not answer the tool 'hang' within 3 s" in result.text
    assert 2900 < result.duration_ms < 10000
    assert toolbox.call("lab__echo", {"text": "still here"}).text == "still here"
    assert tool_calls(resources, toolboxes)[0].outcome == "failed"


def test_a_server_that_dies_mid_call_gives_a_clear_error(
    resources: Resources, toolboxes: list[McpToolbox], http_mcp: HttpServer
) -> None:
    add_http(resources, http_mcp)
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    toolbox.tools()
    result = toolbox.call("lab__die", {})
    assert result.is_error and "closed the connection during the tool 'die'" in result.text
    assert not http_mcp.alive
    gone = toolbox.call("lab__echo", {"text": "anyone?"})
    assert gone.is_error and "unreachable" in gone.text


def test_a_stdio_server_that_dies_mid_call_shows_its_last_words(
    resources: Resources, toolboxes: list[McpToolbox]
) -> None:
    import sys

    script = Path(__file__).parents[1] / "mcp" / "dying_server.py"
    settings = resources.settings.model_copy(update={"mcp_stdio_commands": [sys.executable]})
    resources.settings = settings
    resources.mcp_servers(ROOT).register(
        "dying", "stdio", command=sys.executable, args=[str(script)]
    )
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    assert [t.name for t in toolbox.tools()] == ["dying__die"]
    result = toolbox.call("dying__die", {})
    assert result.is_error and "closed the connection" in result.text
    assert "about to die on purpose" in result.text


def test_the_tool_list_is_cached_and_refreshed_when_the_server_says_it_changed(
    resources: Resources, toolboxes: list[McpToolbox], http_mcp: HttpServer
) -> None:
    server_id = add_http(resources, http_mcp)
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    assert "lab__extra" not in {t.name for t in toolbox.tools()}
    assert resources.redis.exists(f"citeline:mcp:tools:{server_id}")
    assert toolbox.call("lab__grow", {}).text == "grown"
    wait_for(lambda: not resources.redis.exists(f"citeline:mcp:tools:{server_id}"), timeout=5)
    assert "lab__extra" in {t.name for t in toolbox.tools()}
    assert toolbox.call("lab__extra", {"text": "new"}).text == "extra: new"


def test_results_over_the_cap_are_cut_and_say_so(
    resources: Resources, toolboxes: list[McpToolbox], http_mcp: HttpServer
) -> None:
    add_http(resources, http_mcp)
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    result = toolbox.call("lab__flood", {"size": 50000})
    assert result.truncated and not result.is_error
    assert result.text.startswith("x" * 1000) and "49000 more characters cut" in result.text


@pytest.mark.each_redis
def test_calls_per_tool_are_rate_limited(
    resources: Resources, toolboxes: list[McpToolbox], http_mcp: HttpServer
) -> None:
    resources.settings = resources.settings.model_copy(update={"mcp_tool_calls_per_minute": 2})
    add_http(resources, http_mcp)
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    assert [toolbox.call("lab__echo", {"text": "a"}).is_error for _ in range(2)] == [False] * 2
    third = toolbox.call("lab__echo", {"text": "a"})
    assert third.is_error and "limit is 2 calls per minute" in third.text
    # Another tool has its own count.
    assert not toolbox.call("lab__flood", {"size": 1}).is_error


def test_another_workspace_sees_none_of_these_tools(
    resources: Resources, toolboxes: list[McpToolbox], http_mcp: HttpServer
) -> None:
    add_http(resources, http_mcp)
    system = resources.accounts()
    root = system.create_user("root@example.com", "correct horse battery", is_admin=True)
    system.create_workspace("Beta", "beta", owner_id=root.id)
    beta = open_toolbox(resources, Access("user:b", "beta", Role.owner), toolboxes)
    assert beta.tools() == []
    result = beta.call("lab__echo", {"text": "steal"})
    assert result.is_error and "no tool named 'lab__echo'" in result.text


@pytest.mark.slow
def test_the_cli_adds_lists_shows_tools_and_removes(
    api_url: str, tmp_path: Path, http_mcp: HttpServer
) -> None:
    from tests.e2e.test_cli import Cli

    cli = Cli(tmp_path / "home", CITELINE_URL=api_url)
    added = cli.ok("mcp", "add", "lab", "--url", http_mcp.url, "--header", "X-Token: abc")
    assert added.startswith("added lab (")
    listed = cli.ok("mcp", "list")
    assert "lab" in listed and http_mcp.url in listed and "abc" not in listed
    tools = cli.ok("mcp", "tools", "lab")
    assert "lab__echo" in tools and "allow/allow/allow" in tools
    assert "lab__erase" in tools and "deny/ask/ask" in tools
    bad = cli("mcp", "add", "x", "--url", "ftp://example.com/mcp")
    assert bad.returncode == 2 and "http(s) URL" in bad.stderr and "Traceback" not in bad.stderr
    both = cli("mcp", "add", "x")
    assert both.returncode == 2 and "either --url" in both.stderr
    assert cli.ok("mcp", "remove", "lab").strip() == "removed lab"
    gone = cli("mcp", "tools", "lab")
    assert gone.returncode == 2 and "not found" in gone.stderr


def test_a_server_that_answers_garbage_fails_the_call_at_once(
    resources: Resources, toolboxes: list[McpToolbox]
) -> None:
    import sys

    script = Path(__file__).parents[1] / "mcp" / "garbage_server.py"
    resources.settings = resources.settings.model_copy(
        update={"mcp_stdio_commands": [sys.executable], "mcp_call_timeout_seconds": 20.0}
    )
    resources.mcp_servers(ROOT).register(
        "junk", "stdio", command=sys.executable, args=[str(script)]
    )
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    assert [t.name for t in toolbox.tools()] == ["junk__mumble"]
    result = toolbox.call("junk__mumble", {})
    assert result.is_error and "MCP server 'junk' sent garbage" in result.text
    assert result.duration_ms < 15000  # not the 20 s call timeout


def test_a_policy_changed_by_another_process_takes_effect_within_a_second(
    resources: Resources, toolboxes: list[McpToolbox], http_mcp: HttpServer
) -> None:
    """A toolbox trusts the policies it checked for POLICY_FRESH_SECONDS without asking Redis;
    another process's change (its row, then the version key it sets) must still reach it
    within a second, and so must the server's removal."""
    from citeline.mcp import toolbox as toolbox_module
    from citeline.mcp.models import McpServer, McpToolPolicy

    assert toolbox_module.POLICY_FRESH_SECONDS <= 0.5
    server_id = add_http(resources, http_mcp)
    toolbox = open_toolbox(resources, MEMBER, toolboxes)
    toolbox.tools()
    assert toolbox.call("lab__echo", {"text": "a"}).text == "a"  # the policies are now cached

    def told_elsewhere() -> float:
        # What `policies_changed` does in the other process; this process is not told.
        resources.redis.set(toolbox_module.POLICY_KEY.format(server_id=server_id), uuid.uuid4().hex)
        return time.monotonic()

    with resources.sessions() as session:
        session.add(
            McpToolPolicy(
                server_id=server_id, tool_name="echo", role="member", policy="deny", set_by="x"
            )
        )
        session.commit()
    changed = told_elsewhere()
    denied = wait_for(lambda: toolbox.call("lab__echo", {"text": "b"}).is_error, timeout=1.0)
    assert denied and time.monotonic() - changed < 1.0
    assert "not allowed for your role" in toolbox.call("lab__echo", {"text": "c"}).text

    assert toolbox.call("lab__flood", {"size": 1}).text == "x"
    with resources.sessions() as session:
        session.execute(delete(McpServer).where(McpServer.id == server_id))
        session.commit()
    removed = told_elsewhere()
    wait_for(lambda: "was removed" in toolbox.call("lab__flood", {"size": 1}).text, timeout=1.0)
    assert time.monotonic() - removed < 1.0


def test_audit_rows_are_written_in_batches_and_all_of_them_at_flush_and_close(
    resources: Resources,
) -> None:
    from citeline.auth import audit
    from citeline.mcp.auditing import AuditWriter

    def rows() -> list[AuditEvent]:
        with resources.sessions() as session:
            statement = select(AuditEvent).where(AuditEvent.action == "test.batched")
            return list(session.scalars(statement.order_by(AuditEvent.id)))

    writer = AuditWriter(resources.events.statements, delay=60.0, max_batch=5)
    at = [datetime(2026, 1, 1, 12, 0, second, tzinfo=UTC) for second in range(8)]
    for index, when in enumerate(at):
        writer.add(audit.Entry("test.batched", "user:a", "default", target=str(index), at=when))
    # Five made a batch and went at once; the rest wait for the delay, or a flush.
    wait_for(lambda: len(rows()) == 5, timeout=10)
    assert writer.flush()
    found = rows()
    assert [row.target for row in found] == [str(i) for i in range(8)]
    assert [row.at for row in found] == at  # the time of the call, not of the write

    writer.add(audit.Entry("test.batched", "user:a", "default", target="last"))
    writer.close()
    assert rows()[-1].target == "last" and writer.failed == 0
    assert not any(t.name.startswith("mcp-audit") for t in threading.enumerate())


def test_a_failed_audit_write_is_counted_and_logged_and_the_writer_goes_on(
    resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    from citeline.auth import audit
    from citeline.mcp.auditing import AuditWriter

    writer = AuditWriter(resources.events.statements, delay=0.01)
    # A detail PostgreSQL cannot store (a NUL character in JSON text) fails the whole batch.
    writer.add(audit.Entry("test.batched", "user:a", "default", detail={"x": "\x00"}))
    assert writer.flush()
    assert writer.failed == 1
    assert "mcp tool calls not audited" in caplog.text
    writer.add(audit.Entry("test.batched", "user:a", "default", target="fine"))
    writer.close()
    assert writer.failed == 1
    with resources.sessions() as session:
        targets = session.scalars(
            select(AuditEvent.target).where(AuditEvent.action == "test.batched")
        )
        assert list(targets) == ["fine"]


def test_audit_rows_still_queued_when_the_process_exits_are_written(
    resources: Resources, settings: Settings
) -> None:
    """A toolbox nobody closed: the interpreter's exit joins the writer, which writes them."""
    import subprocess
    import sys

    from tests.conftest import ROOT as REPO

    script = (
        "from citeline.auth import audit\n"
        "from citeline.db.engine import Statements, make_engine\n"
        "from citeline.mcp.auditing import AuditWriter\n"
        "import sys\n"
        "writer = AuditWriter(Statements(make_engine(sys.argv[1])), delay=0.5)\n"
        "for i in range(3):\n"
        "    writer.add(audit.Entry('test.at_exit', 'user:a', 'default', target=str(i)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(settings.database_url)],
        env={"PYTHONPATH": f"{REPO / 'src'}:{REPO}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with resources.sessions() as session:
        statement = select(AuditEvent.target).where(AuditEvent.action == "test.at_exit")
        assert sorted(str(target) for target in session.scalars(statement)) == ["0", "1", "2"]
