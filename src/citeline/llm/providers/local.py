"""The local provider: a GGUF model on llama.cpp (the `xllamacpp` wheel), in this process.

A model is loaded once per process and kept (`load_model`), so a worker that does not fork
serves every job with the same weights and the same prompt cache. llama.cpp runs the request
on its own thread without the GIL; this side relays its chunks through a queue, and stops the
generation at the next token when the consumer goes away (a timeout, a cancel, a closed stream).
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from citeline.errors import InvalidInput, ProviderError
from citeline.llm.llama import import_llama
from citeline.llm.messages import ChatEvent, ChatRequest, Finish, TextDelta
from citeline.llm.model_server import SharedModel, wait_until_up
from citeline.llm.providers.base import Holdings, Lease
from citeline.llm.providers.local_tools import AnswerStream, constrained, read_reply
from citeline.llm.providers.openai_wire import ChunkReader, request_body

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalModelConfig:
    path: Path
    context_tokens: int = 4096
    threads: int = 1
    cache_ram_mib: int = 256
    name: str = ""  # the model as the registry names it (bundled name or path): `held_name`
    server: SharedModel | None = None  # the shared llama.cpp server holding this model


def held_name(model: str) -> str:
    """The name under which processes report a local model loaded (`report_loads`)."""
    return f"local:{model}"


class LocalModel:
    """One loaded GGUF: a llama.cpp server object whose HTTP side is locked with a random key
    (xllamacpp always opens one) and whose in-process calls Citeline uses."""

    def __init__(self, config: LocalModelConfig) -> None:
        xllamacpp = import_llama()
        params = xllamacpp.CommonParams()
        params.model.path = str(config.path)
        params.n_ctx = config.context_tokens
        params.n_parallel = 1
        params.cpuparams.n_threads = config.threads
        params.cpuparams_batch.n_threads = config.threads
        params.cache_ram_mib = config.cache_ram_mib
        params.warmup = False
        params.verbosity = 0
        params.ui = False
        params.api_keys = [secrets.token_hex(16)]
        self.config = config
        self.server: Any = xllamacpp.Server(params)

    def chat(self, body: dict[str, Any], on_chunk: Any) -> Any:
        return self.server.handle_chat_completions(body, on_chunk)


# Loading keeps the GIL; a job's heartbeat cannot beat meanwhile (see `Lease`).
LOAD_LEASE_SECONDS = 600.0
KEPT_MODELS = 2
# How long a request waits for the shared model server to listen (see model_server).
SERVER_WAIT_SECONDS = 120.0

_loaded: OrderedDict[LocalModelConfig, LocalModel] = OrderedDict()
_loading = threading.Lock()
_holdings: Holdings | None = None


def report_loads(holdings: Holdings | None) -> None:
    """Tell `holdings` which models this process loads and drops from now on."""
    global _holdings
    _holdings = holdings


def _held(config: LocalModelConfig) -> str:
    return held_name(config.name or str(config.path))


def load_model(config: LocalModelConfig, lease: Lease | None = None) -> LocalModel:
    """The model for `config`, loaded once per process (the last two stay loaded)."""
    with _loading:
        model = _loaded.get(config)
        if model is None:
            log.info("loading local model", extra={"path": str(config.path)})
            started = time.monotonic()
            with (lease or _no_lease)(LOAD_LEASE_SECONDS):
                model = _loaded[config] = LocalModel(config)
            took = time.monotonic() - started
            while len(_loaded) > KEPT_MODELS:
                dropped, _ = _loaded.popitem(last=False)
                if _holdings is not None and _held(dropped) not in map(_held, _loaded):
                    _holdings.release(_held(dropped))
            if _holdings is not None:
                _holdings.hold(_held(config), took)
        _loaded.move_to_end(config)
        return model


def _no_lease(_seconds: float) -> nullcontext[None]:
    return nullcontext()


# Free loaded models before the interpreter tears down: llama.cpp's server threads must be
# joined by its destructor, not killed mid-flight (which aborts the process at exit).
atexit.register(_loaded.clear)


@dataclass
class _Ended:
    outcome: Any = None
    error: BaseException | None = None


class LocalProvider:
    def __init__(self, config: LocalModelConfig, *, timeout_seconds: float = 120.0) -> None:
        self.config = config
        self.endpoint = f"local:{config.path.name}"
        self.timeout_seconds = timeout_seconds

    def stream(
        self, model: str, request: ChatRequest, *, lease: Lease | None = None
    ) -> Iterator[ChatEvent]:
        del model  # the loaded file is the model
        if request.tools and request.json_schema is None:
            yield from self._with_tools(request, lease)
            return
        yield from self._generate(request, lease)

    def _with_tools(self, request: ChatRequest, lease: Lease | None) -> Iterator[ChatEvent]:
        reply = AnswerStream()
        for event in self._generate(constrained(request), lease):
            if isinstance(event, TextDelta):
                streamed = reply.feed(event.text)
                if streamed:
                    yield TextDelta(text=streamed)
            elif isinstance(event, Finish):
                if reply.answering:
                    yield event  # the answer went out as it came
                else:
                    yield from read_reply(reply.raw, event)

    def _generate(self, request: ChatRequest, lease: Lease | None) -> Iterator[ChatEvent]:
        if self.config.server is not None:
            yield from self._generate_shared(request, self.config.server, lease)
            return
        loaded = load_model(self.config, lease)
        body = request_body(None, request, stream=True)
        items: queue.Queue[dict[str, Any] | _Ended] = queue.Queue()
        stop = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            items.put(chunk)
            return stop.is_set()  # True tells llama.cpp to stop generating

        def generate() -> None:
            try:
                items.put(_Ended(outcome=loaded.chat(body, on_chunk)))
            except Exception as exc:  # noqa: BLE001 - relayed to the consuming thread
                items.put(_Ended(error=exc))

        thread = threading.Thread(target=generate, name="citeline-llama", daemon=True)
        thread.start()
        reader = ChunkReader(self.endpoint)
        try:
            while True:
                item = items.get()
                if isinstance(item, _Ended):
                    self._raise_for(item)
                    break
                if "error" in item:
                    raise self._error(item["error"])
                yield from reader.feed(item)
            yield from reader.finish()
        finally:
            stop.set()

    def _generate_shared(
        self, request: ChatRequest, server: SharedModel, lease: Lease | None
    ) -> Iterator[ChatEvent]:
        """The same request and chunks as in-process, over the shared server's HTTP side;
        closing the stream early makes llama.cpp stop the generation. A server that refuses
        the connection (loading, or restarting) is waited for as long as a load may take,
        then asked once more; nothing was streamed before a refused connection."""
        body = request_body(None, request, stream=True)
        reader = ChunkReader(self.endpoint)
        try:
            try:
                yield from self._stream_shared(server, body, reader)
            except httpx.ConnectError:
                with (lease or _no_lease)(SERVER_WAIT_SECONDS):
                    up = wait_until_up(server, SERVER_WAIT_SECONDS)
                if not up:
                    raise ProviderError(
                        f"the shared model server at {server.url} is unreachable "
                        f"(not up after {SERVER_WAIT_SECONDS:g} s)",
                        provider=self.endpoint,
                        retryable=True,
                    ) from None
                yield from self._stream_shared(server, body, reader)
        except httpx.TimeoutException as exc:
            raise ProviderError(
                f"the shared model server gave no answer within {self.timeout_seconds:g} s",
                provider=self.endpoint,
                retryable=True,
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"the shared model server at {server.url} is unreachable: {exc}",
                provider=self.endpoint,
                retryable=True,
            ) from exc
        if reader.finish_reason is None:
            raise ProviderError(
                "the shared model server ended the stream before the reply finished",
                provider=self.endpoint,
                retryable=True,
            )
        yield from reader.finish()

    def _stream_shared(
        self, server: SharedModel, body: dict[str, Any], reader: ChunkReader
    ) -> Iterator[ChatEvent]:
        timeout = httpx.Timeout(self.timeout_seconds, connect=5.0)
        headers = {"Authorization": f"Bearer {server.key}"}
        url = f"{server.url}/v1/chat/completions"
        with httpx.stream("POST", url, json=body, headers=headers, timeout=timeout) as response:
            if response.status_code != 200:
                raise self._error(_error_body(response.read(), response.status_code))
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                item = json.loads(line[len("data: ") :])
                if "error" in item:
                    raise self._error(item["error"])
                yield from reader.feed(item)

    def close(self) -> None:
        """Models stay loaded for the process; nothing to release per provider."""

    def _raise_for(self, ended: _Ended) -> None:
        if ended.error is not None:
            raise ProviderError(
                f"llama.cpp rejected the request: {ended.error}", provider=self.endpoint
            ) from ended.error
        if isinstance(ended.outcome, dict) and "error" in ended.outcome:
            raise self._error(ended.outcome["error"])

    def _error(self, error: Any) -> Exception:
        if not isinstance(error, dict):
            return ProviderError(str(error), provider=self.endpoint)
        if error.get("type") == "exceed_context_size_error":
            return InvalidInput(
                f"the prompt has {error.get('n_prompt_tokens')} tokens; model "
                f"{self.config.path.name} takes at most {error.get('n_ctx')} "
                "(prompt and reply together)",
                field="messages",
            )
        code = int(error.get("code") or 500)
        return ProviderError(
            str(error.get("message") or error),
            provider=self.endpoint,
            retryable=code >= 500,
            status=code,
        )


def _error_body(raw: bytes, status: int) -> Any:
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        return {"code": status, "message": raw.decode(errors="replace")[:500]}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {"code": status, "message": str(body)[:500]}
