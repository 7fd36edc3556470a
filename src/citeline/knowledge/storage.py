"""Original files, kept under `<data_dir>/files` by key (S3-compatible storage comes later)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from citeline.errors import NotFound


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise NotFound(f"no stored file {key!r}")
        return path

    def put(self, key: str, source: Path) -> None:
        """Move `source` into the store under `key` (atomically, within one file system)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)

    def read(self, key: str) -> bytes:
        path = self.path(key)
        if not path.is_file():
            raise NotFound(f"the stored file {key!r} is missing")
        return path.read_bytes()

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        for parent in path.parents:
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)


def scratch_dir(root: Path) -> Path:
    path = root / ".incoming"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
