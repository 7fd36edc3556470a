"""Choosing a variant of an alias: by weight, and the same variant every time for the same
user or conversation while the weights stay the same."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def sticky_point(alias: str, key: str) -> float:
    """A point in [0, 1) fixed by alias and key, spread evenly over keys."""
    digest = hashlib.blake2b(f"{alias}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose(
    alias: str, routes: Sequence[tuple[T, float]], key: str | None, rng: random.Random | None = None
) -> T:
    """The route whose share of the cumulative weights holds the key's point (or a random
    point when there is no key)."""
    total = sum(weight for _, weight in routes)
    if not routes or total <= 0:
        raise ValueError(f"alias {alias!r} has no route with a positive weight")
    point = sticky_point(alias, key) if key is not None else (rng or random).random()
    threshold = point * total
    running = 0.0
    for target, weight in routes:
        running += weight
        if threshold < running:
            return target
    return routes[-1][0]
