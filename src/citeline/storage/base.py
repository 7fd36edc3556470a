"""What every object store offers, the stream a read returns, and the rules keys follow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol

from citeline.errors import InvalidInput

CHUNK_BYTES = 256 * 1024
MAX_KEY_BYTES = 1024  # S3's limit; the local store keeps the same one
MAX_SEGMENT_BYTES = 255  # a file name on common file systems
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class ObjectStream:
    """A stored object opened for reading: its size, and its bytes in chunks. Close it, or
    use it in a `with` block, when done."""

    def __init__(self, size: int, chunks: Iterator[bytes], close: Callable[[], None]) -> None:
        self.size = size
        self._chunks = chunks
        self._close = close
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def read(self) -> bytes:
        """The rest of the object, whole (for objects known to be small enough)."""
        return b"".join(self._chunks)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> ObjectStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class ObjectStore(Protocol):
    """Bytes by key. Keys are `/`-separated paths (see `check_key`); a write replaces the
    object whole, so a reader sees the old bytes or the new ones, never a mix.

    Errors: `NotFound` for a missing object, `InvalidInput` for a key that breaks the rules,
    `ServiceUnavailable` (or another `UpstreamError`) when the storage behind fails."""

    def put_file(self, key: str, path: Path, *, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        """Store a copy of the local file at `path`, streamed; `path` itself is left alone."""
        ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        """Store `data`."""
        ...

    def open(self, key: str) -> ObjectStream:
        """Open the object for reading; a missing one raises NotFound here, not while read."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes; NotFound if there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Delete the object; deleting a missing one is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix/`; return how many there were."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


def check_key(key: str, *, what: str = "key") -> str:
    """`key` if it is a valid object key, else InvalidInput saying what is wrong with it.

    A key is `/`-separated segments, each non-empty, none `.` or `..` or starting with a dot
    (kept for the store's own temporary files), with no backslash or control character, at
    most 1024 bytes in all and 255 in one segment. So no key can leave the store's root."""
    problem = _key_problem(key)
    if problem is not None:
        raise InvalidInput(f"invalid storage {what} {key!r}: {problem}", field=what)
    return key


def _key_problem(key: str) -> str | None:
    if not key:
        return "it is empty"
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode"
    if len(encoded) > MAX_KEY_BYTES:
        return f"it is over {MAX_KEY_BYTES} bytes"
    if "\\" in key:
        return "it contains a backslash"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        return "it contains a control character"
    for segment in key.split("/"):
        if not segment:
            return "it has an empty segment (a leading, trailing or doubled '/')"
        if segment in (".", ".."):
            return "it has a '.' or '..' segment"
        if segment.startswith("."):
            return "a segment starts with '.', which is kept for the store's own files"
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"a segment is over {MAX_SEGMENT_BYTES} bytes"
    return None
