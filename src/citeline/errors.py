"""Citeline's domain errors, split by who must act.

    CitelineError
    ├── ClientError              the caller's mistake; retrying the same request cannot help
    │   ├── NotFound             404  no such resource (or not visible to the caller)
    │   ├── InvalidInput         422  a value is wrong; `field` names it
    │   ├── Conflict             409  the resource is in a state that forbids the request
    │   └── PayloadTooLarge      413  the request body is over the configured limit
    ├── UpstreamError            502  a dependency answered wrongly
    │   └── ServiceUnavailable   503  a dependency is down or overloaded; retrying later can help
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
    retryable: ClassVar[bool] = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def type_slug(self) -> str:
        return "-".join(_split_camel(type(self).__name__))


class ClientError(CitelineError):
    status = 400
    title = "Bad request"


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


class UpstreamError(CitelineError):
    status = 502
    title = "Upstream error"


class ServiceUnavailable(UpstreamError):
    status = 503
    title = "Service unavailable"
    retryable = True


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
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "UpstreamError",
]
