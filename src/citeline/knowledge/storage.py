"""Scratch space for uploads on their way into the object store (`citeline.storage`)."""

from __future__ import annotations

import os
from pathlib import Path


def scratch_dir(root: Path) -> Path:
    """`<root>/.incoming`, private to this user; uploads land here before they are stored."""
    path = root / ".incoming"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
