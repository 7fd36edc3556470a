"""Objects as files under one directory (by default `<data dir>/files`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from citeline.errors import Conflict, InvalidInput, NotFound
from citeline.storage.base import CHUNK_BYTES, DEFAULT_CONTENT_TYPE, ObjectStream, check_key


class LocalStore:
    """Files under `root`, one per key. A write goes to a temporary file beside the target,
    synced, then renamed over it, so readers never see half an object."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def put_file(self, key: str, path: Path, *, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        target = self._path(key)
        with path.open("rb") as source:
            self._write(key, target, lambda out: shutil.copyfileobj(source, out, CHUNK_BYTES))

    def put_bytes(self, key: str, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        self._write(key, self._path(key), lambda out: out.write(data))

    def open(self, key: str) -> ObjectStream:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no stored object {key!r}") from None
        return ObjectStream(os.fstat(handle.fileno()).st_size, _chunks(handle), handle.close)

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"no stored object {key!r}")
        return path.stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except (IsADirectoryError, NotADirectoryError):  # objects below `key`, or one above
            return
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        path = self._path(prefix, what="prefix")
        if not path.is_dir():
            return 0
        count = sum(
            1 for entry in path.rglob("*") if entry.is_file() and not entry.name.startswith(".")
        )
        shutil.rmtree(path)
        self._prune(path.parent)
        return count

    def close(self) -> None:
        pass

    def _path(self, key: str, *, what: str = "key") -> Path:
        check_key(key, what=what)
        path = self.root.joinpath(*key.split("/")).resolve()
        if not path.is_relative_to(self.root):  # through a symbolic link
            raise InvalidInput(
                f"invalid storage {what} {key!r}: it leads outside the store", field=what
            )
        return path

    def _write(self, key: str, target: Path, fill: Callable[[BinaryIO], object]) -> None:
        if target.is_dir():
            raise Conflict(
                f"cannot store {key!r}: other objects are stored under it (the local store "
                "cannot keep both `a` and `a/b`)"
            )
        try:
            descriptor, temporary = self._temporary_beside(target)
        except (FileExistsError, NotADirectoryError):
            raise Conflict(
                f"cannot store {key!r}: a part of its path is an object (the local store "
                "cannot keep both `a` and `a/b`)"
            ) from None
        try:
            with os.fdopen(descriptor, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _sync_directory(target.parent)

    def _temporary_beside(self, target: Path) -> tuple[int, str]:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            return tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        except FileNotFoundError:
            # A concurrent delete pruned the directory, empty for a moment: make it again.
            target.parent.mkdir(parents=True, exist_ok=True)
            return tempfile.mkstemp(dir=target.parent, prefix=".tmp-")

    def _prune(self, directory: Path) -> None:
        """Remove the directories left empty above a deleted object, up to the root."""
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:  # not empty (or already gone)
                return
            directory = directory.parent


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
