"""Which passages answer the question asked, not a neighbouring one.

Retrieval ranks passages that share words with the question; an FAQ's next entry often does.
Each candidate is compared with the question by embedding similarity, of its text or of its
heading, whichever is closer, and only those within a margin of the best one are given to the
model, best first: a passage about a different question cannot be cited, and the model reads
less. The heading is the passage's section heading, or its first line when the document had no
markup (a plain-text FAQ's entry starts with its question): a question is closer to the
heading it was asked as than to the answer's words. Chosen on the Debian FAQ set (the gold
passage read first for 116 -> 121 of 140 questions), checked on the tools set (71 -> 79 of
102; `benchmarks/passage_choice.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from citeline.answers.citations import Embed
from citeline.answers.passages import Passage


@dataclass(frozen=True)
class Chosen:
    passages: list[Passage]  # best first
    set_aside: list[Passage]  # retrieved, but about something else
    similarity: list[float]  # of each chosen passage to the question


def on_question(
    question: str,
    passages: Sequence[Passage],
    embed: Embed,
    margin: float,
    most: int,
    least: int = 1,
) -> Chosen:
    """The passages whose similarity to the question is within `margin` of the best one's,
    at most `most` and (when there are) at least `least` of them."""
    if not passages:
        return Chosen([], [], [])
    texts = [question, *(p.text for p in passages), *(heading(p) for p in passages)]
    vectors = embed(texts).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    scores = vectors[1:] @ vectors[0]
    count = len(passages)
    similarity = [float(s) for s in np.maximum(scores[:count], scores[count:])]
    order = sorted(range(len(passages)), key=lambda i: -similarity[i])
    best = similarity[order[0]]
    close = sum(similarity[i] >= best - margin for i in order)
    keep = order[: min(most, max(least, close))]
    return Chosen(
        [passages[i] for i in keep],
        [p for i, p in enumerate(passages) if i not in keep],
        [round(similarity[i], 4) for i in keep],
    )


def heading(passage: Passage) -> str:
    """The passage's own section heading, else its first line."""
    if passage.heading_path:
        return passage.heading_path[-1]
    return next((line.strip() for line in passage.text.splitlines() if line.strip()), "")[:300]


def closest(passages: Sequence[Passage]) -> Passage:
    """The passage whose stored vector is closest to the question's (the search's own cosine,
    nothing embedded again); the best-ranked one when dense search did not run."""
    return max(passages, key=lambda p: -2.0 if p.relevance is None else p.relevance)
