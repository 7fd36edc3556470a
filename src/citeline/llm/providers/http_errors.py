"""Translating a remote provider's failure into a domain error, the same for every vendor."""

from __future__ import annotations

from citeline.errors import CitelineError, InvalidInput, ProviderError

CONTEXT_HINTS = (
    "prompt is too long",
    "context window",
    "context length",
    "context_length",
    "too many tokens",
)


def timed_out(endpoint: str, seconds: float) -> ProviderError:
    return ProviderError(f"no answer within {seconds:g} s", provider=endpoint, retryable=True)


def connection_failed(endpoint: str, cause: BaseException) -> ProviderError:
    return ProviderError(f"connection failed: {cause}", provider=endpoint, retryable=True)


def status_error(
    endpoint: str, status: int, detail: str, *, context_overflow: bool = False
) -> CitelineError:
    """An HTTP error status: a prompt over the context is the caller's; 408, 429 and 5xx
    (529 is Anthropic's "overloaded") may pass if retried; other 4xx will not."""
    if context_overflow or (
        status in (400, 413) and any(hint in detail.lower() for hint in CONTEXT_HINTS)
    ):
        return InvalidInput(
            f"the messages do not fit the model's context ({endpoint}): {detail}",
            field="messages",
        )
    if status in (401, 403):
        detail = f"the credentials were refused: {detail}"
    elif status == 404:
        detail = f"the model name or the URL is wrong: {detail}"
    retryable = status in (408, 429) or status >= 500
    return ProviderError(detail, provider=endpoint, retryable=retryable, status=status)
