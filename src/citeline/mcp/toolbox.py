"""The MCP tools a caller may use, and calling them: what the assistant's tool loop is given.

`McpToolbox` lists the tools of its workspace's servers that the caller's role may use (deny
tools are not listed), and calls one by its qualified name. Every call is checked in the same
order - the policy (`citeline.mcp.policy.decide`, failing closed), the arguments against the
tool's input schema, the per-tool rate limit - then made with the adapter's timeouts, and
recorded in the audit log. A failure of any kind is an `is_error` result whose text tells the
model what went wrong; only a misuse of the toolbox itself raises.

Connections live on one event-loop thread per toolbox (an anyio blocking portal) and are kept
open between calls; `close()` ends them (a stdio server's whole process group).

What a call costs beyond the server's own time (`benchmarks/mcp_overhead.py`, goal at most 1.2x
the SDK alone): the policies are trusted for `POLICY_FRESH_SECONDS` between Redis checks, the
rate limit is counted in Redis beside the call, not before it, while it is far from full
(`citeline.auth.CallLimit`), the schema validator is built once per tool, the timeout is
one deadline, and the audit row is queued for a writer thread that inserts rows in batches
(`citeline.mcp.auditing`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jsonschema
import redis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import Access, CallLimit, audit
from citeline.db.engine import Statements
from citeline.errors import CitelineError
from citeline.llm import ToolSpec
from citeline.mcp import credentials
from citeline.mcp.adapter import (
    CallOutcome,
    Connection,
    Endpoint,
    Limits,
    McpFailure,
    ToolInfo,
    connect,
    failure_from,
)
from citeline.mcp.auditing import AuditWriter
from citeline.mcp.models import McpServer, McpToolPolicy
from citeline.mcp.policy import Policy, decide
from citeline.mcp.secrets import SecretBox
from citeline.mcp.validation import check_http_url, check_stdio_command
from citeline.observability.logs import request_id_var
from citeline.settings import Settings

log = logging.getLogger(__name__)

MAX_NAME = 64  # what OpenAI-compatible providers accept for a function name
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
CACHE_KEY = "citeline:mcp:tools:{server_id}"
# A server whose users bring their own credentials may show each of them different tools.
USER_CACHE_KEY = CACHE_KEY + ":user:{user}"
USERS_KEY = CACHE_KEY + ":users"  # the per-user keys written, to drop them all at a change
# Changed (to a new random value) whenever a server's policies change or it is removed, so a
# toolbox re-reads them from the database only then.
POLICY_KEY = "citeline:mcp:policies:{server_id}"
POLICY_VERSION_TTL = 7 * 86400
# How long a toolbox trusts the policies it checked without asking Redis again: a change made
# in another process takes effect within this (one made in this process, at once). Calls in a
# burst then cost no Redis round trip for their policy.
POLICY_FRESH_SECONDS = 0.5
# Even when Redis missed a change (it was down when the admin saved), none lives longer.
POLICY_RECHECK_SECONDS = 30.0
Progress = Callable[[float, float | None, str | None], None]


@dataclass(frozen=True)
class McpTool:
    """A tool the caller may use: `name` is the model-safe qualified name."""

    name: str
    server_id: uuid.UUID
    server_name: str
    tool_name: str
    description: str
    input_schema: dict[str, Any]
    policy: Literal["allow", "ask"]

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.input_schema)


@dataclass(frozen=True)
class McpCallResult:
    text: str
    is_error: bool
    duration_ms: float
    truncated: bool = False
    notice: str | None = None  # what the person must do (their credentials), beside the text


def qualified_name(server_name: str, tool_name: str) -> str:
    """`<server>__<tool>`, letters, digits, `_` and `-` only, at most 64 characters."""
    name = f"{_UNSAFE.sub('_', server_name)}__{_UNSAFE.sub('_', tool_name)}"
    if len(name) <= MAX_NAME and _UNSAFE.sub("_", tool_name) == tool_name:
        return name
    digest = hashlib.sha256(f"{server_name}/{tool_name}".encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def argument_digest(arguments: Any) -> str:
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def limits_for(settings: Settings) -> Limits:
    return Limits(
        init_seconds=settings.mcp_init_timeout_seconds,
        call_seconds=settings.mcp_call_timeout_seconds,
        max_result_chars=settings.mcp_result_max_chars,
        cpu_seconds=settings.mcp_stdio_cpu_seconds,
        memory_mib=settings.mcp_stdio_memory_mib,
    )


@dataclass
class _Live:
    context: AbstractContextManager[Connection]
    connection: Connection
    opened: float


@dataclass(frozen=True)
class _Entry:
    tool: McpTool
    info: ToolInfo
    server: McpServer


class McpToolbox:
    """The MCP tools of `access`'s workspace, for one caller; close it when done."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        settings: Settings,
        access: Access,
        box: SecretBox,
        statements: Statements,
    ) -> None:
        self.sessions = sessions
        self.statements = statements  # autocommitted single statements: the audit rows
        self.redis = connection
        self.settings = settings
        self.access = access
        self.box = box
        self.limits = limits_for(settings)
        self._portal_context: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._live: dict[uuid.UUID, _Live] = {}
        self._entries: dict[str, _Entry] | None = None
        self._lock = threading.RLock()
        self._policies: dict[uuid.UUID, _Policies] = {}
        self._validators: dict[int, tuple[dict[str, Any], Any]] = {}
        # Audit rows are written beside the calls, off their path, in batches; `flush` and
        # `close` write what is left.
        self._auditor = AuditWriter(statements)
        self._limit = CallLimit.shared(connection, settings.mcp_tool_calls_per_minute)

    # The interface of the assistant's tool loop.

    def tools(self) -> list[McpTool]:
        """Every tool the caller may use (allow or ask), by qualified name. A server that cannot
        be reached is left out (and logged) rather than failing the whole list."""
        with self._lock:
            self._entries = self._load()
            return [entry.tool for entry in self._entries.values()]

    def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        run_id: str | uuid.UUID | None = None,
        approved: bool = False,
        progress: Progress | None = None,
    ) -> McpCallResult:
        """Call the tool `name` with `arguments`. An "ask" tool runs only with `approved`
        (a person said yes); everything that goes wrong is an `is_error` result. `progress`
        hears the server's progress notifications (on the toolbox's event-loop thread)."""
        started = time.perf_counter()
        with self._lock:
            if self._entries is None or name not in self._entries:
                self._entries = self._load()
            entry = self._entries.get(name)
            if entry is None:
                known = ", ".join(sorted(self._entries)) or "none"
                return self._refuse(
                    None,
                    name,
                    arguments,
                    run_id,
                    started,
                    "denied",
                    f"There is no tool named {name!r} that you may use. Tools: {known}.",
                )
            refusal = self._check(entry, arguments, approved)
            if refusal is not None:
                outcome, text = refusal
                return self._refuse(entry, name, arguments, run_id, started, outcome, text)
            assert isinstance(arguments, dict)
            return self._call(entry, arguments, run_id, started, progress)

    def flush(self) -> None:
        """Wait until every call so far is in the audit log."""
        self._auditor.flush()

    def close(self) -> None:
        with self._lock:
            for server_id in list(self._live):
                self._drop(server_id)
            if self._portal_context is not None:
                self._portal_context.__exit__(None, None, None)
            self._portal_context = self._portal = None
            self._auditor.close()
            self._limit.flush()

    def __enter__(self) -> McpToolbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Used by the service for the servers page.

    def server_tools(self, server: McpServer, *, refresh: bool = False) -> list[ToolInfo]:
        """The tools `server` offers, from the cache unless `refresh`; raises McpFailure."""
        with self._lock:
            return self._discover(server, refresh=refresh)

    # Checks, in order.

    def _check(
        self, entry: _Entry, arguments: dict[str, Any] | None, approved: bool
    ) -> tuple[str, str] | None:
        overrides = self._current_policies(entry.server.id)
        if overrides is None:
            return "denied", f"The tool {entry.tool.name!r} is gone: its server was removed."
        policy = decide(entry.info, self.access.role, overrides)
        if policy is Policy.deny:
            return "denied", f"The tool {entry.tool.name!r} is not allowed for your role."
        if policy is Policy.ask and not approved:
            return (
                "denied",
                f"The tool {entry.tool.name!r} needs a person's approval before each call.",
            )
        if not isinstance(arguments, dict):
            return "failed", "The arguments must be a JSON object."
        problem = self._schema_problem(entry.info.input_schema, arguments)
        if problem is not None:
            return "failed", (
                f"The arguments for {entry.tool.name!r} do not match its input schema: "
                f"{problem}. Call it again with arguments that match."
            )
        wait = self._limit.hit("mcp-tool", self.access.subject, entry.tool.name)
        if wait is not None:
            return "denied", (
                f"The tool {entry.tool.name!r} was called too often: the limit is "
                f"{self._limit.per_minute} calls per minute; try again in {wait} s."
            )
        return None

    def _call(
        self,
        entry: _Entry,
        arguments: dict[str, Any],
        run_id: Any,
        started: float,
        progress: Progress | None,
    ) -> McpCallResult:
        server = entry.server
        error: str | None = None
        notice: str | None = None

        async def heard(done: float, total: float | None, message: str | None) -> None:
            if progress is not None:
                progress(done, total, message)

        try:
            connection = self._connection(server)
            outcome = self._run(
                connection.call_tool, entry.info.name, arguments, heard if progress else None
            )
        except McpFailure as failure:
            self._drop(server.id)
            error = failure.message
            outcome = CallOutcome(f"The tool call failed: {failure.message}.", True, False)
            # The person, not the model, must act on this: say it to them too.
            notice = error if isinstance(failure, credentials.CredentialsNeeded) else None
        duration = (time.perf_counter() - started) * 1000
        self._audit(
            entry.tool.name,
            server,
            entry.info.name,
            arguments,
            run_id,
            duration,
            ("denied" if notice else "failed") if error is not None else "ok",
            error,
            is_error=outcome.is_error,
        )
        return McpCallResult(
            outcome.text, outcome.is_error, round(duration, 2), outcome.truncated, notice
        )

    def _refuse(
        self,
        entry: _Entry | None,
        name: str,
        arguments: Any,
        run_id: Any,
        started: float,
        outcome: str,
        text: str,
    ) -> McpCallResult:
        duration = (time.perf_counter() - started) * 1000
        self._audit(
            name,
            entry.server if entry else None,
            entry.info.name if entry else None,
            arguments,
            run_id,
            duration,
            outcome,
            text,
        )
        return McpCallResult(text, True, round(duration, 2))

    def _audit(
        self,
        name: str,
        server: McpServer | None,
        tool_name: str | None,
        arguments: Any,
        run_id: Any,
        duration_ms: float,
        outcome: str,
        error: str | None,
        *,
        is_error: bool = True,
    ) -> None:
        detail: dict[str, Any] = {
            "server_id": str(server.id) if server else None,
            "server": server.name if server else None,
            "tool": tool_name,
            "arguments_sha256": argument_digest(arguments),
            "duration_ms": round(duration_ms, 2),
            "run_id": str(run_id) if run_id is not None else None,
            "is_error": is_error,
        }
        if error is not None:
            detail["error"] = error[:500]
        self._auditor.add(
            audit.Entry(
                "mcp.tool_call",
                self.access.subject,
                server.workspace_id if server else self.access.workspace_id,
                target=name,
                outcome=outcome,
                detail=detail,
                at=datetime.now(UTC),
                request_id=request_id_var.get() or None,
            )
        )

    # Servers, tools and connections.

    def _load(self) -> dict[str, _Entry]:
        statement = select(McpServer).order_by(McpServer.name)
        if not self.access.is_system:
            statement = statement.where(McpServer.workspace_id == self.access.workspace_id)
        with self.sessions() as session:
            servers = list(session.scalars(statement))
            session.expunge_all()
        overrides = self._overrides([server.id for server in servers])
        entries: dict[str, _Entry] = {}
        for server in servers:
            try:
                infos = self._discover(server)
            except McpFailure as failure:
                log.warning(
                    "mcp server left out", extra={"server": server.name, "error": str(failure)}
                )
                continue
            for info in infos:
                policy = decide(info, self.access.role, overrides.get(server.id, {}))
                if policy is Policy.deny:
                    continue
                tool = McpTool(
                    name=qualified_name(server.name, info.name),
                    server_id=server.id,
                    server_name=server.name,
                    tool_name=info.name,
                    description=info.description,
                    input_schema=info.input_schema,
                    policy="allow" if policy is Policy.allow else "ask",
                )
                entries[tool.name] = _Entry(tool, info, server)
        return entries

    def _overrides(
        self, server_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, dict[tuple[str, str], str]]:
        """Per server, the admins' policies by (tool name, role)."""
        return overrides_for(self.sessions, server_ids)

    def _current_policies(self, server_id: uuid.UUID) -> dict[tuple[str, str], str] | None:
        """The server's overrides as they are now; None when the server is gone. Trusted for
        `POLICY_FRESH_SECONDS` after a check (unless this process changed them since); then
        read from the database unless Redis says nothing changed since the last read."""
        cached = self._policies.get(server_id)
        now = time.monotonic()
        if (
            cached is not None
            and now - cached.checked < POLICY_FRESH_SECONDS
            and cached.local == _local_changes.get(server_id, 0)
        ):
            return cached.overrides
        local = _local_changes.get(server_id, 0)
        key = POLICY_KEY.format(server_id=server_id)
        try:
            version = self.redis.get(key)
            if version is None:
                self.redis.set(key, uuid.uuid4().hex, nx=True, ex=POLICY_VERSION_TTL)
                version = self.redis.get(key)
        except redis.RedisError:
            version = None
        if (
            version is not None
            and cached is not None
            and cached.version == version
            and cached.local == local
            and now - cached.read < POLICY_RECHECK_SECONDS
        ):
            cached.checked = now
            return cached.overrides
        overrides: dict[tuple[str, str], str] | None = None
        with self.sessions() as session:
            if session.get(McpServer, server_id) is not None:
                overrides = self._overrides([server_id]).get(server_id, {})
        if isinstance(version, bytes):
            self._policies[server_id] = _Policies(version, local, now, now, overrides)
        else:  # Redis is down: nothing to tell a change by, so no trusting a cached read
            self._policies.pop(server_id, None)
        return overrides

    def _schema_problem(self, schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
        """What is wrong with `arguments` for `schema`, if anything; each tool's validator is
        built once (per schema object: a reloaded tool list brings new ones)."""
        cached = self._validators.get(id(schema))
        if cached is None or cached[0] is not schema:
            try:
                validator = _validator(schema)
            except jsonschema.exceptions.SchemaError:
                return INVALID_SCHEMA
            if len(self._validators) > 1000:
                self._validators.clear()
            cached = self._validators[id(schema)] = (schema, validator)
        return _first_problem(cached[1], arguments)

    def _cache_key(self, server: McpServer) -> str:
        if not server.per_user:
            return CACHE_KEY.format(server_id=server.id)
        return user_tools_key(server.id, self.access.subject)

    def _discover(self, server: McpServer, *, refresh: bool = False) -> list[ToolInfo]:
        key = self._cache_key(server)
        shared_key = CACHE_KEY.format(server_id=server.id)
        live = self._live.get(server.id)
        stale = live is not None and live.connection.tools_changed.is_set()
        if not refresh and not stale:
            cached = self._cached(key)
            if cached is not None:
                return cached
        try:
            connection = self._connection(server)
        except credentials.CredentialsNeeded:
            # Listed as another user saw it, so that calling it tells this person what to set.
            fallback = None if refresh or key == shared_key else self._cached(shared_key)
            if fallback is None:
                raise
            return fallback
        try:
            infos: list[ToolInfo] = self._run(connection.list_tools)
        except McpFailure:
            self._drop(server.id)
            raise
        seconds = self.settings.mcp_tools_cache_seconds
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(key, json.dumps([info.as_json() for info in infos]), ex=seconds)
                if server.per_user:
                    # For those without credentials yet: names and annotations only, never
                    # what another user's account showed (descriptions, schemas).
                    blank = [_unseen(info, server.name).as_json() for info in infos]
                    pipe.set(shared_key, json.dumps(blank), ex=seconds)
                    pipe.sadd(USERS_KEY.format(server_id=server.id), key)
                    pipe.expire(USERS_KEY.format(server_id=server.id), seconds)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("mcp tool list not cached", extra={"error": str(exc)})
        return infos

    def _cached(self, key: str) -> list[ToolInfo] | None:
        try:
            cached = self.redis.get(key)
        except redis.RedisError:
            return None
        return [ToolInfo.from_json(item) for item in json.loads(cached)] if cached else None

    def _connection(self, server: McpServer) -> Connection:
        live = self._live.get(server.id)
        if live is not None:
            too_old = time.monotonic() - live.opened > self.settings.mcp_stdio_max_seconds
            if live.connection.broken is None and not too_old:
                return live.connection
            self._drop(server.id)
        endpoint = self._endpoint(server)
        portal = self._portal_now()
        context = portal.wrap_async_context_manager(connect(endpoint, self.limits))
        try:
            connection = context.__enter__()
        except McpFailure:
            raise
        except Exception as exc:  # an SDK or transport error the adapter did not name
            failure = failure_from(exc, server.name) or McpFailure(
                "unreachable", f"MCP server {server.name!r} could not be started: {exc!r}"
            )
            raise failure from exc
        connection.on_tools_changed = lambda: forget_tools(self.redis, server.id)
        self._live[server.id] = _Live(context, connection, time.monotonic())
        return connection

    def _endpoint(self, server: McpServer) -> Endpoint:
        """Checked again at each connection: the allowlist or DNS may have changed. A server
        with per-user keys gets this toolbox's caller's own values (or CredentialsNeeded)."""
        env, headers = credentials.resolve(self.sessions, self.box, server, self.access)
        try:
            if server.transport == "stdio":
                assert server.command is not None
                command = check_stdio_command(server.command, self.settings)
                return Endpoint(
                    server.name,
                    "stdio",
                    command=command,
                    args=tuple(server.args),
                    env=env,
                )
            assert server.url is not None
            check_http_url(server.url, self.settings)
            return Endpoint(server.name, "http", url=server.url, headers=headers)
        except CitelineError as exc:
            raise McpFailure(
                "refused", f"MCP server {server.name!r} may not be used: {exc.detail}"
            ) from exc

    def _drop(self, server_id: uuid.UUID) -> None:
        live = self._live.pop(server_id, None)
        if live is None:
            return
        try:
            live.context.__exit__(None, None, None)
        except Exception as exc:  # noqa: BLE001 - closing a broken connection; nothing to save
            log.warning("mcp connection closed with an error", extra={"error": repr(exc)})

    def _portal_now(self) -> BlockingPortal:
        if self._portal is None:
            self._portal_context = start_blocking_portal()
            self._portal = self._portal_context.__enter__()
        return self._portal

    def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        return self._portal_now().call(function, *args)


def user_tools_key(server_id: uuid.UUID, subject: str) -> str:
    """Where `subject`'s own tool list of a server with per-user credentials is cached."""
    user = hashlib.sha256(subject.encode()).hexdigest()[:16]
    return USER_CACHE_KEY.format(server_id=server_id, user=user)


def forget_tools(connection: redis.Redis, server_id: uuid.UUID) -> None:
    """Drop every cached tool list of the server (its tools changed): each user's too."""
    users = USERS_KEY.format(server_id=server_id)
    try:
        keys = [key.decode() for key in connection.smembers(users)]  # type: ignore[union-attr]
        connection.delete(CACHE_KEY.format(server_id=server_id), users, *keys)
    except redis.RedisError as exc:
        log.warning("mcp tool cache not cleared", extra={"error": str(exc)})


def _unseen(info: ToolInfo, server: str) -> ToolInfo:
    return ToolInfo(
        info.name,
        f"A tool of {server}; set your own credentials for it to use it.",
        {"type": "object"},
        info.read_only,
        info.destructive,
        info.open_world,
    )


# Per server, how many times this process changed its policies (or removed it): a toolbox here
# sees its own process's changes at once, without waiting out POLICY_FRESH_SECONDS.
_local_changes: dict[uuid.UUID, int] = {}


@dataclass
class _Policies:
    version: bytes  # the Redis version they were read at
    local: int  # `_local_changes` then
    read: float  # when read from the database (monotonic)
    checked: float  # when last found current
    overrides: dict[tuple[str, str], str] | None  # None: the server is gone


def policies_changed(connection: redis.Redis, server_id: uuid.UUID) -> None:
    """Tell every toolbox to re-read the server's policies (or find it gone): those of this
    process at once, the others within POLICY_FRESH_SECONDS."""
    _local_changes[server_id] = _local_changes.get(server_id, 0) + 1
    connection.set(POLICY_KEY.format(server_id=server_id), uuid.uuid4().hex, ex=POLICY_VERSION_TTL)


def overrides_for(
    sessions: sessionmaker[Session], server_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[tuple[str, str], str]]:
    found: dict[uuid.UUID, dict[tuple[str, str], str]] = {}
    if not server_ids:
        return found
    with sessions() as session:
        rows = session.scalars(select(McpToolPolicy).where(McpToolPolicy.server_id.in_(server_ids)))
        for row in rows:
            found.setdefault(row.server_id, {})[(row.tool_name, row.role)] = row.policy
    return found


INVALID_SCHEMA = "the tool's own schema is invalid, so no arguments can be checked"


def _validator(schema: dict[str, Any]) -> Any:
    """A validator for `schema` (its own draft, else 2020-12)."""
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    return validator_class(schema)


def _first_problem(validator: Any, arguments: dict[str, Any]) -> str | None:
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    except jsonschema.exceptions.SchemaError:
        return INVALID_SCHEMA
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


class ApprovingToolbox:
    """An `McpToolbox` for a caller that asks a person before every call of an "ask" tool
    (the assistant's run, which pauses for approval): a call of a tool it was shown as "ask"
    counts as approved, while one shown as "allow" must still be allowed when it is made.
    The policy itself is still decided, and enforced, by the toolbox."""

    def __init__(self, toolbox: McpToolbox) -> None:
        self.toolbox = toolbox
        self._asked: set[str] = set()

    def tools(self) -> list[McpTool]:
        listed = self.toolbox.tools()
        self._asked = {tool.name for tool in listed if tool.policy == "ask"}
        return listed

    def call(
        self, name: str, arguments: dict[str, Any], *, run_id: str | None = None
    ) -> McpCallResult:
        return self.toolbox.call(name, arguments, run_id=run_id, approved=name in self._asked)

    def close(self) -> None:
        self.toolbox.close()
