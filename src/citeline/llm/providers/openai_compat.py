"""The OpenAI-compatible provider: OpenAI itself, or any server that speaks its chat API (vLLM,
llama.cpp's server, Ollama, LiteLLM), through the official `openai` SDK.

The SDK does not retry (`citeline.llm.resilience` does); its errors become Citeline's here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai

from citeline.errors import CitelineError, ProviderError
from citeline.llm.messages import ChatEvent, ChatRequest
from citeline.llm.providers.base import Lease
from citeline.llm.providers.http_errors import connection_failed, status_error, timed_out
from citeline.llm.providers.openai_wire import ChunkReader, request_body

OPENAI_URL = "https://api.openai.com/v1"
# Keyless self-hosted servers ignore the header; without a key the SDK would read
# OPENAI_API_KEY from the environment instead, or refuse to start.
_NO_KEY = "none"


class OpenAICompatibleProvider:
    def __init__(
        self, base_url: str | None, api_key: str | None, *, timeout_seconds: float
    ) -> None:
        url = base_url or OPENAI_URL
        self.endpoint = f"openai:{url}"
        self.timeout_seconds = timeout_seconds
        # `timeout` bounds connecting and each wait for the next bytes, not the whole reply.
        self.client = openai.OpenAI(
            base_url=url, api_key=api_key or _NO_KEY, timeout=timeout_seconds, max_retries=0
        )

    def stream(
        self, model: str, request: ChatRequest, *, lease: Lease | None = None
    ) -> Iterator[ChatEvent]:
        del lease  # nothing here stops the caller's heartbeat
        body = request_body(model, request, stream=True)
        del body["stream"]
        reader = ChunkReader(self.endpoint)
        try:
            with self.client.chat.completions.create(**body, stream=True) as chunks:
                for chunk in chunks:
                    yield from reader.feed(chunk.model_dump(exclude_none=True))
        except openai.APIError as exc:
            raise self._error(exc) from exc
        if reader.finish_reason is None:
            raise ProviderError(
                "the stream ended before the reply finished", provider=self.endpoint, retryable=True
            )
        yield from reader.finish()

    def close(self) -> None:
        self.client.close()

    def _error(self, exc: openai.APIError) -> CitelineError:
        if isinstance(exc, openai.APITimeoutError):
            return timed_out(self.endpoint, self.timeout_seconds)
        if isinstance(exc, openai.APIConnectionError):
            return connection_failed(self.endpoint, exc.__cause__ or exc)
        detail = _message(exc)
        if not isinstance(exc, openai.APIStatusError):
            # An error event inside a 200 stream: the request was accepted and the server
            # failed while generating.
            return ProviderError(detail, provider=self.endpoint, retryable=True)
        status = exc.status_code
        return status_error(
            self.endpoint,
            status,
            detail,
            context_overflow=status == 400 and exc.code == "context_length_exceeded",
        )


def _message(exc: openai.APIError) -> str:
    body: Any = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message
