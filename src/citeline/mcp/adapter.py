"""The one module that speaks the `mcp` SDK (2.x): connecting to a server over stdio or
streamable HTTP, listing its tools and calling them, with every wait bounded.

Everything the SDK raises or returns is turned here into `McpFailure` (a server that hangs,
crashes, returns garbage or refuses) or a `CallOutcome` (what a tool said, as text for a model).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

import anyio
import httpx2
import mcp_types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.dispatcher import ProgressFnT
from pydantic import ValidationError

from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client

T = TypeVar("T")
SANDBOX = Path(__file__).with_name("sandbox.py")
ProgressFn = ProgressFnT
FailureKind = Literal["timeout", "crashed", "garbage", "refused", "unreachable"]


@dataclass(frozen=True)
class Endpoint:
    """What to start or reach: a stdio command (an argument list, never a shell string) or a
    streamable HTTP URL, with the secrets the server may see."""

    label: str  # the server's name, for messages
    transport: Literal["stdio", "http"]
    command: str | None = None  # an absolute path
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    init_seconds: float = 10.0
    call_seconds: float = 60.0
    max_result_chars: int = 20000
    cpu_seconds: int = 120
    memory_mib: int = 2048


@dataclass(frozen=True)
class ToolInfo:
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool | None = None
    destructive: bool | None = None
    open_world: bool | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "read_only": self.read_only,
            "destructive": self.destructive,
            "open_world": self.open_world,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolInfo:
        return cls(
            name=str(data["name"]),
            description=str(data.get("description") or ""),
            input_schema=dict(data.get("input_schema") or {"type": "object"}),
            read_only=data.get("read_only"),
            destructive=data.get("destructive"),
            open_world=data.get("open_world"),
        )


@dataclass(frozen=True)
class CallOutcome:
    text: str
    is_error: bool
    truncated: bool


class McpFailure(Exception):
    """A server that could not be reached or started, hung, died, or answered garbage."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Connection:
    """One initialised session with one server."""

    def __init__(self, endpoint: Endpoint, limits: Limits, stderr: TextIO | None) -> None:
        self.endpoint = endpoint
        self.limits = limits
        self.session: ClientSession | None = None
        self.broken: McpFailure | None = None  # once set, every later call fails with it
        self.tools_changed = anyio.Event()
        self._stderr = stderr
        self._calls: set[anyio.CancelScope] = set()
        self.on_tools_changed: Callable[[], None] | None = None

    async def handle(self, message: mcp_types.ServerNotification | Exception) -> None:
        """The session's message handler: list changes and transport faults."""
        if isinstance(message, Exception):
            self._break(
                McpFailure("garbage", f"MCP server {self.endpoint.label!r} sent garbage: {message}")
            )
        elif isinstance(message, mcp_types.ToolListChangedNotification):
            self.tools_changed.set()
            if self.on_tools_changed is not None:
                self.on_tools_changed()

    def _break(self, failure: McpFailure) -> None:
        if self.broken is None:
            self.broken = failure
        for scope in self._calls:
            scope.cancel()

    async def list_tools(self) -> list[ToolInfo]:
        tools: list[ToolInfo] = []
        cursor: str | None = None
        for _page in range(100):
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None

            async def page(
                params: mcp_types.PaginatedRequestParams | None = params,
            ) -> mcp_types.ListToolsResult:
                return await self._live().list_tools(params=params)

            result = await self._request("tools/list", page, self.limits.init_seconds)
            tools.extend(_tool_info(tool) for tool in result.tools)
            cursor = result.next_cursor
            if not cursor:
                break
        self.tools_changed = anyio.Event()
        return tools

    async def call_tool(
        self, name: str, arguments: dict[str, Any], progress: ProgressFn | None = None
    ) -> CallOutcome:
        # One deadline per call, ours, around the write and the wait for the answer: not the
        # SDK's `read_timeout_seconds` too, a second timer per call. When it fires, the SDK
        # still sends the server a courtesy cancel for the abandoned request.
        result = await self._request(
            f"the tool {name!r}",
            lambda: self._live().call_tool(name, arguments, progress_callback=progress),
            self.limits.call_seconds,
        )
        return _outcome(result, self.limits.max_result_chars)

    def _live(self) -> ClientSession:
        assert self.session is not None
        return self.session

    async def _request(self, what: str, send: Callable[[], Awaitable[T]], seconds: float) -> T:
        if self.broken is not None:
            raise self.broken
        label = self.endpoint.label
        scope = anyio.CancelScope(deadline=anyio.current_time() + seconds)
        self._calls.add(scope)
        try:
            with scope:
                return await send()
        except MCPError as exc:
            raise self._translate(exc, what, seconds) from exc
        except ValidationError as exc:
            failure = McpFailure("garbage", f"MCP server {label!r} answered {what} with garbage")
            self._break(failure)
            raise failure from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            failure = self._crashed(what)
            self._break(failure)
            raise failure from exc
        finally:
            self._calls.discard(scope)
        if self.broken is not None:
            raise self.broken
        failure = McpFailure(
            "timeout", f"MCP server {label!r} did not answer {what} within {seconds:g} s"
        )
        self._break(failure)
        raise failure

    def _translate(self, exc: MCPError, what: str, seconds: float) -> McpFailure:
        label = self.endpoint.label
        if exc.code == mcp_types.REQUEST_TIMEOUT:
            failure = McpFailure(
                "timeout", f"MCP server {label!r} did not answer {what} within {seconds:g} s"
            )
        elif exc.code == mcp_types.CONNECTION_CLOSED:
            failure = self._crashed(what)
        else:
            return McpFailure("refused", f"MCP server {label!r} refused {what}: {exc.message}")
        self._break(failure)
        return failure

    def _crashed(self, what: str) -> McpFailure:
        tail = self._stderr_tail()
        return McpFailure(
            "crashed",
            f"MCP server {self.endpoint.label!r} closed the connection during {what}"
            + (f"; its last output: {tail}" if tail else ""),
        )

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            text = self._stderr.read()[-4000:]
        except (OSError, ValueError):
            return ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return " | ".join(lines[-3:])[-500:]


@asynccontextmanager
async def connect(endpoint: Endpoint, limits: Limits) -> AsyncIterator[Connection]:
    """A connection, initialised within `limits.init_seconds`; closed (the stdio server's
    process group ended) on exit, which is bounded too."""
    stack = AsyncExitStack()
    try:
        try:
            stderr: TextIO | None = None
            if _is_stdio(endpoint):
                stderr = stack.enter_context(tempfile.TemporaryFile("w+"))  # noqa: SIM115
            connection = Connection(endpoint, limits, stderr)
            await _initialise(stack, connection)
            yield connection
        finally:
            # The SDK bounds a stdio server's shutdown (stdin closed, then the process group
            # killed); an HTTP session's DELETE is bounded by the client's timeouts. A scope of
            # our own around this would break the nesting of the transports' task groups.
            await stack.aclose()
    except Exception as exc:
        failure = failure_from(exc, endpoint.label)
        if failure is None or failure is exc:
            raise
        raise failure from exc


def failure_from(exc: BaseException, label: str) -> McpFailure | None:
    """The failure inside `exc` (the transports' task groups wrap what went wrong)."""
    leaves = list(_leaves(exc))
    for leaf in leaves:
        if isinstance(leaf, McpFailure):
            return leaf
    for leaf in leaves:
        if isinstance(leaf, OSError | httpx2.HTTPError):
            return McpFailure("unreachable", f"MCP server {label!r} is unreachable: {leaf}")
    return None


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


async def _initialise(stack: AsyncExitStack, connection: Connection) -> None:
    endpoint, limits = connection.endpoint, connection.limits
    try:
        # Entering opens task groups that outlive this function, so the deadline may only
        # surround the handshake itself.
        read, write = await stack.enter_async_context(
            _transport(endpoint, limits, connection._stderr)
        )
        session = await stack.enter_async_context(
            ClientSession(read, write, message_handler=connection.handle)
        )
        with anyio.fail_after(limits.init_seconds):
            await session.initialize()
    except TimeoutError as exc:
        raise McpFailure(
            "timeout",
            f"MCP server {endpoint.label!r} did not initialise within "
            f"{limits.init_seconds:g} s" + _tail_note(connection),
        ) from exc
    except MCPError as exc:
        if exc.code == mcp_types.CONNECTION_CLOSED:
            raise McpFailure(
                "crashed",
                f"MCP server {endpoint.label!r} exited before initialising"
                + _tail_note(connection),
            ) from exc
        raise McpFailure(
            "refused", f"MCP server {endpoint.label!r} refused to initialise: {exc.message}"
        ) from exc
    except (OSError, httpx2.HTTPError) as exc:
        raise McpFailure(
            "unreachable", f"MCP server {endpoint.label!r} is unreachable: {exc}"
        ) from exc
    except ValidationError as exc:
        raise McpFailure(
            "garbage", f"MCP server {endpoint.label!r} answered initialize with garbage"
        ) from exc
    connection.session = session


def _tail_note(connection: Connection) -> str:
    tail = connection._stderr_tail()
    return f"; its last output: {tail}" if tail else ""


def _is_stdio(endpoint: Endpoint) -> bool:
    return endpoint.transport == "stdio"


@asynccontextmanager
async def _transport(
    endpoint: Endpoint, limits: Limits, stderr: TextIO | None
) -> AsyncIterator[tuple[Any, Any]]:
    if endpoint.transport == "stdio":
        assert endpoint.command is not None and stderr is not None
        parameters = StdioServerParameters(
            command=sys.executable,
            args=[
                "-I",
                "-S",
                str(SANDBOX),
                str(limits.cpu_seconds),
                str(limits.memory_mib),
                "--",
                endpoint.command,
                *endpoint.args,
            ],
            env=dict(endpoint.env),
            cwd=tempfile.gettempdir(),
        )
        async with stdio_client(parameters, errlog=stderr) as streams:
            yield streams
        return
    assert endpoint.url is not None
    client = create_mcp_http_client(
        headers=dict(endpoint.headers),
        timeout=httpx2.Timeout(limits.init_seconds, read=limits.call_seconds + 5),
    )
    async with client, streamable_http_client(endpoint.url, http_client=client) as streams:
        yield streams


def _tool_info(tool: mcp_types.Tool) -> ToolInfo:
    annotations = tool.annotations
    return ToolInfo(
        name=tool.name,
        description=(tool.description or tool.title or "").strip(),
        input_schema=dict(tool.input_schema),
        read_only=annotations.read_only_hint if annotations else None,
        destructive=annotations.destructive_hint if annotations else None,
        open_world=annotations.open_world_hint if annotations else None,
    )


def _outcome(result: Any, max_chars: int) -> CallOutcome:
    if not isinstance(result, mcp_types.CallToolResult):
        raise McpFailure("garbage", "the server answered a tool call with something else")
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}, {len(block.data) * 3 // 4} bytes]")
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[resource {resource.uri}: {resource.mime_type or 'binary'}]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource link: {block.uri}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts)
    truncated = len(text) > max_chars
    if truncated:
        dropped = len(text) - max_chars
        text = text[:max_chars] + f"\n[... {dropped} more characters cut]"
    return CallOutcome(text, bool(result.is_error), truncated)
