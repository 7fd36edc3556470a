"""Objects in a bucket of any S3-compatible service (AWS S3, MinIO, Ceph, R2, ...), over
httpx with path-style URLs and hand-made SigV4 signatures.

Uploads are one PUT with a declared length and a signed SHA-256 of the body: the file is
read once to hash it and once to send it, so memory stays at one chunk. Multipart upload is
not used: every object Citeline stores is far below the 5 GiB a single PUT allows (uploads
are capped by CITELINE_MAX_UPLOAD_BYTES), and a single PUT leaves no half-finished uploads
behind to be billed until aborted. Downloads stream.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NoReturn
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import httpx

from citeline.errors import (
    ConfigurationError,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
)
from citeline.storage.base import CHUNK_BYTES, DEFAULT_CONTENT_TYPE, ObjectStream, check_key
from citeline.storage.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    canonical_query,
    sign,
    uri_encode,
)

MAX_PUT_BYTES = 5 * 2**30  # S3's limit for one PUT
MAX_ERROR_BODY = 64 * 1024
LIST_PAGE = 1000  # also the most keys one DeleteObjects request takes
SAFE_METHODS = frozenset({"GET", "HEAD", "DELETE"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_PAUSES = (0.2, 0.6)


class S3Store:
    """The objects under `prefix/` in `bucket` at `endpoint_url`."""

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        credentials: Credentials,
        *,
        region: str = "us-east-1",
        prefix: str = "",
        timeout_seconds: float = 30.0,
        list_page_size: int = LIST_PAGE,
        client: httpx.Client | None = None,
    ) -> None:
        url = httpx.URL(endpoint_url)
        if url.scheme not in ("http", "https") or not url.host or url.userinfo:
            raise ConfigurationError(
                "the S3 endpoint must be an http(s) URL without credentials in it, "
                f"such as https://s3.us-east-1.amazonaws.com (got {url.scheme}://{url.host}...)"
            )
        if not bucket or "/" in bucket:
            raise ConfigurationError(f"{bucket!r} is not an S3 bucket name")
        self._origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        self._host = url.netloc.decode("ascii")
        self._bucket_path = url.raw_path.decode("ascii").rstrip("/") + "/" + uri_encode(bucket)
        self.bucket = bucket
        self.region = region
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix, what="prefix")
        self.location = f"{self._origin}{self._bucket_path}"  # for messages: no secrets
        self._credentials = credentials
        self._timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0))
        self._list_page_size = list_page_size
        self._own_client = client is None
        self._client = client or self._new_client()
        self._client_pid = os.getpid()

    def __repr__(self) -> str:
        return f"S3Store({self.location!r}, prefix={self.prefix!r})"

    # the ObjectStore operations

    def put_file(self, key: str, path: Path, *, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        object_path = self._object_path(key)
        with path.open("rb") as source:
            digest, size = _sha256_and_size(source)
            if size > MAX_PUT_BYTES:
                raise InvalidInput(
                    f"{path.name} is {size / 2**30:.1f} GiB; one object may be at most 5 GiB"
                )
            source.seek(0)
            headers = {"content-type": content_type, "content-length": str(size)}
            response = self._send(
                "PUT", object_path, headers=headers, content=_read(source, size), sha256=digest
            )
        self._check(response, key)

    def put_bytes(self, key: str, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        digest = hashlib.sha256(data).hexdigest()
        response = self._send(
            "PUT",
            self._object_path(key),
            headers={"content-type": content_type},
            content=data,
            sha256=digest,
        )
        self._check(response, key)

    def open(self, key: str) -> ObjectStream:
        response = self._send("GET", self._object_path(key), stream=True)
        if response.status_code != 200:
            self._fail(response, key)
        length = response.headers.get("content-length")
        if length is None or not length.isdigit():
            response.close()
            raise UpstreamError(
                f"object storage at {self.location} sent {key!r} without a Content-Length"
            )
        return ObjectStream(int(length), self._body(response, key), response.close)

    def size(self, key: str) -> int:
        response = self._send("HEAD", self._object_path(key))
        if response.status_code == 404:
            self._check_bucket()
        self._check(response, key)
        return int(response.headers.get("content-length", "0"))

    def exists(self, key: str) -> bool:
        response = self._send("HEAD", self._object_path(key))
        if response.status_code == 404:
            self._check_bucket()
            return False
        self._check(response, key)
        return True

    def delete(self, key: str) -> None:
        response = self._send("DELETE", self._object_path(key))
        if response.status_code == 404 and _error_code(response) != "NoSuchBucket":
            return  # S3 answers 204 for a missing key; some compatible servers 404
        self._check(response, key)

    def delete_prefix(self, prefix: str) -> int:
        check_key(prefix, what="prefix")
        full = self._full_key(prefix) + "/"
        deleted = 0
        previous: list[str] = []
        # Each round lists from the start: what the last round deleted is gone, and no
        # continuation token has to survive the deletions.
        while keys := self._list(full):
            if keys == previous:
                raise UpstreamError(
                    f"object storage at {self.location} still lists objects under {prefix!r} "
                    "after deleting them"
                )
            self._delete_many(keys)
            deleted += len(keys)
            previous = keys
        return deleted

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    # requests

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _object_path(self, key: str) -> str:
        check_key(key)
        return f"{self._bucket_path}/{uri_encode(self._full_key(key), keep_slash=True)}"

    def _new_client(self) -> httpx.Client:
        transport = httpx.HTTPTransport(retries=2)  # retries connection attempts only
        return httpx.Client(timeout=self._timeout, transport=transport)

    def _http(self) -> httpx.Client:
        # A forked child (an RQ work-horse) must not share its parent's connections.
        if self._own_client and self._client_pid != os.getpid():
            self._client = self._new_client()
            self._client_pid = os.getpid()
        return self._client

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Iterable[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        sha256: str = EMPTY_SHA256,
        stream: bool = False,
        idempotent: bool = False,
    ) -> httpx.Response:
        query_string = canonical_query(query)
        signed = sign(
            method,
            self._host,
            path,
            query_string,
            {**(headers or {}), "x-amz-content-sha256": sha256},
            sha256,
            self._credentials,
            self.region,
            datetime.now(UTC),
        )
        url = self._origin + path + (f"?{query_string}" if query_string else "")
        client = self._http()
        request = client.build_request(method, url, headers=signed, content=content)
        try:
            response = client.send(request, stream=stream)
            # S3 asks clients to retry an InternalError or SlowDown; only requests that can
            # be sent again unchanged and do the same thing twice are.
            for pause in RETRY_PAUSES if idempotent or method in SAFE_METHODS else ():
                if response.status_code not in RETRY_STATUSES:
                    break
                response.close()
                time.sleep(pause)
                response = client.send(request, stream=stream)
            return response
        except httpx.TimeoutException as exc:
            raise ServiceUnavailable(
                f"object storage at {self.location} did not answer in time ({method})"
            ) from exc
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"object storage at {self.location} is unreachable: {_describe(exc)}"
            ) from exc

    def _body(self, response: httpx.Response, key: str) -> Iterator[bytes]:
        try:
            yield from response.iter_raw(CHUNK_BYTES)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"reading {key!r} from object storage at {self.location} failed: {_describe(exc)}"
            ) from exc
        finally:
            response.close()

    def _list(self, full_prefix: str) -> list[str]:
        query = [
            ("list-type", "2"),
            ("prefix", full_prefix),
            ("max-keys", str(self._list_page_size)),
        ]
        response = self._send("GET", self._bucket_path, query=query)
        self._check(response, None)
        root = _parse(response, self.location)
        return [
            element.text or ""
            for contents in _children(root, "Contents")
            for element in _children(contents, "Key")
        ]

    def _delete_many(self, full_keys: list[str]) -> None:
        objects = "".join(f"<Object><Key>{escape(key)}</Key></Object>" for key in full_keys)
        body = f"<Delete><Quiet>true</Quiet>{objects}</Delete>".encode()
        headers = {
            "content-type": "application/xml",
            "content-md5": base64.b64encode(
                hashlib.md5(body, usedforsecurity=False).digest()
            ).decode(),
        }
        response = self._send(
            "POST",
            self._bucket_path,
            query=[("delete", "")],
            headers=headers,
            content=body,
            sha256=hashlib.sha256(body).hexdigest(),
            idempotent=True,
        )
        self._check(response, None)
        errors = list(_children(_parse(response, self.location), "Error"))
        if errors:
            first = {_local(child.tag): child.text or "" for child in errors[0]}
            raise UpstreamError(
                f"object storage at {self.location} did not delete {len(errors)} objects; "
                f"the first, {first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
            )

    def _check_bucket(self) -> None:
        """After a 404 without a body (HEAD): tell a missing bucket from a missing object."""
        response = self._send("HEAD", self._bucket_path)
        if response.status_code == 404:
            raise self._no_bucket()
        self._check(response, None)

    # errors

    def _check(self, response: httpx.Response, key: str | None) -> None:
        if response.status_code >= 300:
            self._fail(response, key)

    def _fail(self, response: httpx.Response, key: str | None) -> NoReturn:
        status = response.status_code
        code = _error_code(response)
        detail = f"{status} {code}".strip()
        if code == "NoSuchBucket":
            raise self._no_bucket()
        if status == 404 and key is not None:
            raise NotFound(f"no stored object {key!r}")
        if status in (401, 403):
            error = ServiceUnavailable(
                f"object storage at {self.location} refused the request ({detail}): "
                "check CITELINE_S3_ACCESS_KEY_ID, CITELINE_S3_SECRET_ACCESS_KEY and the "
                "bucket's permissions"
            )
            error.retryable = False
            raise error
        if status >= 500 or status == 429:
            raise ServiceUnavailable(f"object storage at {self.location} answered {detail}")
        raise UpstreamError(f"object storage at {self.location} answered {detail}")

    def _no_bucket(self) -> ServiceUnavailable:
        error = ServiceUnavailable(
            f"the bucket {self.bucket!r} does not exist at {self._origin}: create it, or "
            "set CITELINE_S3_BUCKET to one that does"
        )
        error.retryable = False
        return error


def _sha256_and_size(source: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _read(source: BinaryIO, size: int) -> Iterator[bytes]:
    """Exactly `size` bytes of `source`, in chunks (the declared, signed length)."""
    left = size
    while left > 0 and (chunk := source.read(min(CHUNK_BYTES, left))):
        left -= len(chunk)
        yield chunk


def _error_code(response: httpx.Response) -> str:
    """The `<Code>` of an S3 error body, or "" when there is none (HEAD, a proxy's page)."""
    if response.request.method == "HEAD":
        return ""
    if response.is_closed:
        body = response.content[:MAX_ERROR_BODY]
    else:  # a streamed response: read no more than an error body needs
        try:
            body = b"".join(_bounded(response))
        except httpx.TransportError:
            body = b""
        finally:
            response.close()
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return ""
    code = next(_children(root, "Code"), None)
    return (code.text or "").strip()[:100] if code is not None else ""


def _bounded(response: httpx.Response) -> Iterator[bytes]:
    read = 0
    for chunk in response.iter_raw():
        yield chunk[: MAX_ERROR_BODY - read]
        read += len(chunk)
        if read >= MAX_ERROR_BODY:
            return


def _parse(response: httpx.Response, location: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(response.content)
    except ElementTree.ParseError as exc:
        raise UpstreamError(f"object storage at {location} sent XML that does not parse") from exc


def _children(element: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    return (child for child in element if _local(child.tag) == name)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
