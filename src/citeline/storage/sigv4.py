"""AWS Signature Version 4 for requests with the signature in the Authorization header.

Written out rather than taken from botocore (36 MB with boto3) because S3Store needs only
this; tests/unit/test_storage_parts.py checks it against AWS's published examples.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    """AWS's UriEncode: each UTF-8 byte other than A-Z a-z 0-9 - . _ ~ as %XX (and `/` kept
    when `keep_slash`, as in an S3 object key's path)."""
    return quote(value, safe="/" if keep_slash else "")


def canonical_query(parameters: Iterable[tuple[str, str]]) -> str:
    """The query string as signed, and as it must then be sent: encoded pairs, sorted."""
    pairs = sorted((uri_encode(name), uri_encode(value)) for name, value in parameters)
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], payload_sha256: str
) -> tuple[str, str]:
    """The canonical request and its signed-header list; `path` and `query` come encoded
    (see `uri_encode` and `canonical_query`), and every header in `headers` is signed."""
    values = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    names = sorted(values)
    signed = ";".join(names)
    lines = "".join(f"{name}:{values[name]}\n" for name in names)
    return "\n".join([method, path, query, lines, signed, payload_sha256]), signed


def signing_key(secret_access_key: str, day: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret_access_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def sign(
    method: str,
    host: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_sha256: str,
    credentials: Credentials,
    region: str,
    now: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """The headers to send: `headers` with `host`, `x-amz-date` and `authorization` added.
    S3 also wants `x-amz-content-sha256` among `headers` (the caller adds it)."""
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    sent = {name.lower(): value for name, value in headers.items()}
    sent.update({"host": host, "x-amz-date": amz_date})
    canonical, signed = canonical_request(method, path, query, sent, payload_sha256)
    scope = f"{day}/{region}/{service}/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    key = signing_key(credentials.secret_access_key, day, region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    sent["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return sent


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
