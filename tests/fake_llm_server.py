"""A scriptable HTTP server that speaks OpenAI's and Anthropic's chat APIs, for tests.

It is a real server on 127.0.0.1 (the SDKs talk to it over TCP), so tests exercise the real
clients, their timeouts and their error handling. Plan what each request gets, in order:

    with FakeLLMServer() as server:
        server.plan(Fail(503), Reply("Hello there", chunks=3))
        provider = OpenAICompatibleProvider(server.openai_base_url, "key", timeout_seconds=2)
        ...
        assert server.requests[1].body["model"] == "m"

`POST /v1/chat/completions` answers in OpenAI's format (SSE `data:` lines ending with
`data: [DONE]` when the request says `"stream": true`, else one JSON object);
`POST /v1/messages` answers in Anthropic's (SSE `event:` and `data:` lines, or one JSON object).
A request with nothing planned for it gets `default`; without one, a 500 that says so.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from citeline.llm.messages import ToolCall

Vendor = Literal["openai", "anthropic"]
NeutralFinish = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True)
class Reply:
    """Answer 200 with `text` (streamed in `chunks` pieces), then `tool_calls`, then usage.

    `drop_after` closes the connection without ending the response once that many text pieces
    are sent; `fail_after` sends the vendor's in-stream error event (an overload) instead.
    Both only apply to streamed replies.
    """

    text: str = ""
    chunks: int = 3
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 11
    output_tokens: int = 7
    cached_tokens: int = 0
    finish: NeutralFinish | None = None  # default: "tool_calls" when there are any, else "stop"
    drop_after: int | None = None
    fail_after: int | None = None

    def pieces(self) -> list[str]:
        count = max(1, self.chunks)
        size = len(self.text)
        cuts = [self.text[i * size // count : (i + 1) * size // count] for i in range(count)]
        return [piece for piece in cuts if piece]

    def finish_reason(self) -> NeutralFinish:
        return self.finish or ("tool_calls" if self.tool_calls else "stop")


@dataclass(frozen=True)
class Fail:
    """Answer with HTTP `status` and a JSON error body in the vendor's format."""

    status: int
    message: str | None = None  # default: a message like the vendor's for that status
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"retry-after": "1"}


@dataclass(frozen=True)
class Hang:
    """Read the request, then send nothing for `seconds` (or until the server closes), then
    close the connection: what a client sees as a read timeout."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Respond:
    """Decide from the request: `answer(body)` gives the behaviour for it (a scripted model
    that answers each prompt in its own way)."""

    answer: Callable[[dict[str, Any]], Reply | Fail | Hang]


Behaviour = Reply | Fail | Hang | Respond


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]


class FakeLLMServer:
    """Serves planned behaviours on a free port; use it as a context manager."""

    def __init__(self, default: Behaviour | None = None) -> None:
        self.default = default
        self._planned: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # how long close() waits for the loop to notice
            name="fake-llm-server",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        """The server root, for Anthropic's client (it adds `/v1/messages` itself)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """The root plus `/v1`, as OpenAI's client expects."""
        return f"{self.base_url}/v1"

    def plan(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, one each, in order."""
        with self._lock:
            self._planned.extend(behaviours)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until `count` requests have arrived (at most `timeout` seconds); return them."""
        with self._received:
            if not self._received.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} of {count} requests in {timeout} s")
            return list(self._requests)

    @property
    def pending(self) -> int:
        """How many planned behaviours no request has taken yet."""
        with self._lock:
            return len(self._planned)

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # releases hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the handler threads
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _take(self, request: RecordedRequest) -> Reply | Fail | Hang:
        with self._received:
            self._requests.append(request)
            self._received.notify_all()
            chosen = self._planned.popleft() if self._planned else self.default
        if chosen is None:
            return Fail(500, "fake server: no behaviour planned for this request")
        return chosen.answer(request.body) if isinstance(chosen, Respond) else chosen


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for handlers, so no test leaks a thread
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], fake: FakeLLMServer
    ) -> None:
        super().__init__(address, handler)
        self.fake = fake


_ROUTES: dict[str, Vendor] = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked transfer encoding, so a dropped stream is visible
    timeout = 10  # bounds every socket read and write
    server: _Server

    def do_POST(self) -> None:
        vendor = _ROUTES.get(self.path.split("?")[0])
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        body = json.loads(raw)
        headers = {name.lower(): value for name, value in self.headers.items()}
        if vendor is None:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        behaviour = self.server.fake._take(RecordedRequest(self.path, headers, body))
        # The client may go away first: it timed out, or stopped reading.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._perform(vendor, body, behaviour)

    def _perform(
        self, vendor: Vendor, body: dict[str, Any], behaviour: Reply | Fail | Hang
    ) -> None:
        if isinstance(behaviour, Hang):
            self.server.fake._closing.wait(behaviour.seconds)
            self._drop()
        elif isinstance(behaviour, Fail):
            message = behaviour.message or _DEFAULT_MESSAGES.get(behaviour.status, "error")
            payload = (
                _openai_error(behaviour.status, message)
                if vendor == "openai"
                else _anthropic_error(behaviour.status, message)
            )
            self._send_json(behaviour.status, payload, behaviour.headers)
        elif not body.get("stream"):
            model = str(body.get("model", ""))
            payload = (
                _openai_completion(model, behaviour)
                if vendor == "openai"
                else _anthropic_message(model, behaviour)
            )
            self._send_json(200, payload)
        else:
            self._stream(vendor, body, behaviour)

    def _stream(self, vendor: Vendor, body: dict[str, Any], reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        events = (
            _openai_events(body, reply) if vendor == "openai" else _anthropic_events(body, reply)
        )
        for event in events:
            if isinstance(event, _Cut):
                if event.drop:
                    self._drop()
                else:
                    self._write_chunk(event.error_event)
                    self._write_chunk("")
                return
            self._write_chunk(event)
        self._write_chunk("")

    def _write_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client closed first
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass(frozen=True)
class _Cut:
    """Where a planned reply stops short: a dropped connection or an in-stream error event."""

    drop: bool
    error_event: str = ""


def _cut_at(reply: Reply, sent: int, error_event: str) -> _Cut | None:
    if reply.drop_after is not None and sent >= reply.drop_after:
        return _Cut(drop=True)
    if reply.fail_after is not None and sent >= reply.fail_after:
        return _Cut(drop=False, error_event=error_event)
    return None


_DEFAULT_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided.",
    403: "You are not allowed to use this model.",
    404: "The model `m` does not exist or you do not have access to it.",
    429: "Rate limit reached for requests.",
    500: "The server had an error while processing your request.",
    503: "The server is overloaded or not ready yet.",
    529: "Overloaded",
}


# OpenAI


def _openai_error(status: int, message: str) -> dict[str, Any]:
    kind = {
        401: "invalid_request_error",
        429: "requests",
        500: "server_error",
        503: "server_error",
    }.get(status, "invalid_request_error")
    code = "context_length_exceeded" if "context length" in message else None
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _openai_usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
    }


def _openai_call(index: int, call: ToolCall) -> dict[str, Any]:
    return {
        "index": index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


def _openai_completion(model: str, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {k: v for k, v in _openai_call(i, c).items() if k != "index"}
            for i, c in enumerate(reply.tool_calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason()}],
        "usage": _openai_usage(reply),
    }


def _openai_events(body: dict[str, Any], reply: Reply) -> list[str | _Cut]:
    model = str(body.get("model", ""))

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [choice],
        }
        return f"data: {json.dumps(payload)}\n\n"

    error = {"error": {"message": "The server is overloaded.", "type": "server_error"}}
    events: list[str | _Cut] = []
    pieces = reply.pieces()
    for sent in range(len(pieces) + 1):
        if cut := _cut_at(reply, sent, f"data: {json.dumps(error)}\n\n"):
            return [*events, cut]
        if sent < len(pieces):
            events.append(chunk({"role": "assistant", "content": pieces[sent]}))
    for index, call in enumerate(reply.tool_calls):
        header = _openai_call(index, call)
        arguments = header["function"]["arguments"]
        header["function"]["arguments"] = ""
        events.append(chunk({"tool_calls": [header]}))
        half = len(arguments) // 2
        for part in (arguments[:half], arguments[half:]):
            events.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
            )
    events.append(chunk({}, reply.finish_reason()))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0}
        usage |= {"model": model, "choices": [], "usage": _openai_usage(reply)}
        events.append(f"data: {json.dumps(usage)}\n\n")
    events.append("data: [DONE]\n\n")
    return events


# Anthropic

_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _anthropic_message(model: str, reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    content += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
        for c in reply.tool_calls
    ]
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _ANTHROPIC_STOP[reply.finish_reason()],
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cache_read_input_tokens": reply.cached_tokens,
            "cache_creation_input_tokens": 0,
        },
    }


def _anthropic_events(body: dict[str, Any], reply: Reply) -> list[str | _Cut]:
    def event(payload: dict[str, Any]) -> str:
        return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n"

    start = _anthropic_message(str(body.get("model", "")), reply)
    start |= {"content": [], "stop_reason": None}
    start["usage"] = start["usage"] | {"output_tokens": 1}
    events: list[str | _Cut] = [event({"type": "message_start", "message": start})]
    events.append(event({"type": "ping"}))
    pieces = reply.pieces()
    if pieces:
        text_block = {"type": "text", "text": ""}
        start_text = {"type": "content_block_start", "index": 0, "content_block": text_block}
        events.append(event(start_text))
    error = event(_anthropic_error(529, "Overloaded"))
    for sent in range(len(pieces) + 1):
        if cut := _cut_at(reply, sent, error):
            return [*events, cut]
        if sent < len(pieces):
            delta = {"type": "text_delta", "text": pieces[sent]}
            events.append(event({"type": "content_block_delta", "index": 0, "delta": delta}))
    if pieces:
        events.append(event({"type": "content_block_stop", "index": 0}))
    for offset, call in enumerate(reply.tool_calls):
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        at = offset + (1 if pieces else 0)
        events.append(event({"type": "content_block_start", "index": at, "content_block": block}))
        arguments = json.dumps(call.arguments)
        half = len(arguments) // 2
        for part in (arguments[:half], arguments[half:]):
            delta = {"type": "input_json_delta", "partial_json": part}
            events.append(event({"type": "content_block_delta", "index": at, "delta": delta}))
        events.append(event({"type": "content_block_stop", "index": at}))
    stop = {"stop_reason": _ANTHROPIC_STOP[reply.finish_reason()], "stop_sequence": None}
    usage = {"output_tokens": reply.output_tokens}
    events.append(event({"type": "message_delta", "delta": stop, "usage": usage}))
    events.append(event({"type": "message_stop"}))
    return events
