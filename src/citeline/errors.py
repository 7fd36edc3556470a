"""Citeline's domain errors, split by who must act.

    CitelineError
    ├── ClientError              the caller's mistake; retrying the same request cannot help
    │   ├── Unauthorized         401  no valid credentials; sign in (again)
    │   ├── Forbidden            403  signed in, but the role does not allow this
    │   ├── NotFound             404  no such resource (or not visible to the caller)
    │   ├── InvalidInput         422  a value is wrong; `field` names it
    │   ├── Conflict             409  the resource is in a state that forbids the request
    │   ├── PayloadTooLarge      413  the request body is over the configured limit
    │   └── QuotaExceeded        429  the caller has used up an allowance; it resets later
    │       └── RateLimited      429  too many requests; `retry_after` says when to come back
    ├── UpstreamError            502  a dependency answered wrongly
    │   ├── ServiceUnavailable   503  a dependency is down or overloaded; retrying later can help
    │   └── ProviderError        502  a model provider failed; names it and whether a retry helps
    └── ConfigurationError            the operator must change the configuration; raised at start

Adapters translate vendor exceptions into these with `raise ... from exc`; one handler in
`citeline.api.errors` maps them to problem-details JSON.
"""

from __future__ import annotations

from typing import ClassVar


class CitelineError(Exception):
    """Base of every error Citeline raises on purpose."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    retryable: bool = False  # may the same request succeed later? (instances may refine it)

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def type_slug(self) -> str:
        return "-".join(_split_camel(type(self).__name__))


class ClientError(CitelineError):
    status = 400
    title = "Bad request"


class Unauthorized(ClientError):
    status = 401
    title = "Unauthorized"


class Forbidden(ClientError):
    status = 403
    title = "Forbidden"


class NotFound(ClientError):
    status = 404
    title = "Not found"


class InvalidInput(ClientError):
    status = 422
    title = "Invalid input"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class Conflict(ClientError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(ClientError):
    status = 413
    title = "Payload too large"


class QuotaExceeded(ClientError):
    status = 429
    title = "Quota exceeded"


class RateLimited(QuotaExceeded):
    title = "Too many requests"
    retryable = True

    def __init__(self, detail: str, *, retry_after: int, limit: int, reset: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.limit = limit
        self.reset = reset  # seconds until the window frees a request


class UpstreamError(CitelineError):
    status = 502
    title = "Upstream error"


class ServiceUnavailable(UpstreamError):
    status = 503
    title = "Service unavailable"
    retryable = True


class ProviderError(UpstreamError):
    """A model provider failed. `provider` names the endpoint; `retryable` says whether the
    same request may succeed later (timeouts, rate limits, overload) or cannot (bad key)."""

    def __init__(
        self, detail: str, *, provider: str, retryable: bool = False, status: int | None = None
    ) -> None:
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.retryable = retryable
        self.upstream_status = status  # the provider's HTTP status, when it gave one

    @property
    def http_status(self) -> int:
        return 503 if self.retryable else self.status


class ConfigurationError(CitelineError):
    title = "Configuration error"


def _split_camel(name: str) -> list[str]:
    words: list[str] = []
    for char in name:
        if char.isupper() and words:
            words.append(char.lower())
        elif words:
            words[-1] += char
        else:
            words.append(char.lower())
    return words


__all__ = [
    "CitelineError",
    "ClientError",
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "ProviderError",
    "QuotaExceeded",
    "RateLimited",
    "ServiceUnavailable",
    "Unauthorized",
    "UpstreamError",
]
