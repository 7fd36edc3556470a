"""One section's research: retrieve for each of its questions across the report's knowledge
bases, pack the best passages, let the model write, and keep only the sentences the citation
verifier finds a retrieved span for."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from citeline.answers import Passage, from_hits, pack, strip_markers, verify
from citeline.knowledge import Hit, KnowledgeService
from citeline.llm import ChatRequest, ChatResult, ModelService, Reply, TextDelta
from citeline.reports.prompts import section_request


@dataclass
class ModelCall:
    purpose: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "latency_ms": round(self.latency_ms, 1),
        }


@dataclass(frozen=True)
class Found:
    """Passages retrieved for a section, best first, and the knowledge base of each."""

    passages: list[Passage]
    bases: dict[uuid.UUID, uuid.UUID]  # chunk id -> knowledge base id

    def as_json(self, passage: Passage) -> dict[str, Any]:
        return {**passage.as_json(), "knowledge_base_id": _str(self.bases.get(passage.chunk_id))}

    def cited(self, citation: dict[str, Any]) -> dict[str, Any]:
        kb = self.bases.get(uuid.UUID(str(citation["chunk_id"])))
        return {**citation, "knowledge_base_id": _str(kb)}


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value else None


@dataclass
class Written:
    """A section as the verifier left it: its sentences with local citation markers, the
    citations as data, what the model drafted, and what it was written from."""

    sentences: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    draft: str | None
    passages: list[dict[str, Any]]  # what the model read (or, if nothing, the closest found)
    dropped: list[str]
    calls: list[ModelCall] = field(default_factory=list)

    @property
    def grounded(self) -> bool:
        return bool(self.sentences)


@dataclass(frozen=True)
class Caller:
    """Whom a model call is for: usage, quotas and the workspace's aliases follow it."""

    subject: str | None
    workspace_id: str
    job_id: uuid.UUID | None


@dataclass(frozen=True)
class Budget:
    candidates: int  # passages per question and knowledge base
    context_tokens: int  # passages the model reads, in tokens
    max_tokens: int  # of the section's text
    min_relevance: float
    support_threshold: float


def retrieve(
    knowledge: KnowledgeService,
    knowledge_bases: Sequence[uuid.UUID],
    questions: Sequence[str],
    k: int,
    checkpoint: Callable[[float], None] = lambda _: None,
) -> Found:
    """The passages found for the questions, best first, each chunk once."""
    hits: dict[uuid.UUID, Hit] = {}
    steps = max(1, len(questions) * len(knowledge_bases))
    done = 0
    for question in questions:
        for kb in knowledge_bases:
            for hit in knowledge.search(kb, question, k=k):
                best = hits.get(hit.chunk_id)
                if best is None or hit.score > best.score:
                    hits[hit.chunk_id] = hit
            done += 1
            checkpoint(done / steps)
    ordered = sorted(hits.values(), key=lambda hit: hit.score, reverse=True)
    bases = {
        hit.chunk_id: uuid.UUID(str(hit.details["knowledge_base_id"]))
        for hit in ordered
        if hit.details.get("knowledge_base_id")
    }
    return Found(from_hits(ordered), bases)


def relevant(passages: Sequence[Passage], threshold: float) -> list[Passage]:
    return [p for p in passages if p.relevance is None or p.relevance >= threshold]


def write(
    models: ModelService,
    model: str,
    knowledge: KnowledgeService,
    *,
    topic: str,
    title: str,
    questions: Sequence[str],
    instructions: str,
    found: Found,
    budget: Budget,
    caller: Caller,
    checkpoint: Callable[[], None] = lambda: None,
) -> Written:
    """Write the section from the passages found and verify it."""
    usable = relevant(found.passages, budget.min_relevance)
    if not usable:
        return Written([], [], None, [found.as_json(p) for p in found.passages[:3]], [])
    embedder = knowledge.embedder
    packed = pack(usable, budget.context_tokens, lambda text: embedder.count_tokens([text])[0])
    request = section_request(topic, title, questions, instructions, packed, budget.max_tokens)
    draft, call = _generate(models, model, request, caller, checkpoint)
    verified = verify(draft, packed, embedder.embed, budget.support_threshold)
    kept: list[dict[str, Any]] = []
    dropped: list[str] = []
    for sentence in verified.sentences:
        if sentence.markers:
            kept.append({"text": strip_markers(sentence.text).strip(), "markers": sentence.markers})
        elif sentence.claim:
            dropped.append(sentence.text)
    dropped.extend(s.text for s in verified.dropped if s.dropped == "unsupported")
    used = {marker for sentence in kept for marker in sentence["markers"]}
    citations = [found.cited(c.as_json()) for c in verified.citations if c.marker in used]
    read = [found.as_json(p) for p in packed]
    return Written(kept, citations, draft, read, dropped, [call])


def _generate(
    models: ModelService,
    model: str,
    request: ChatRequest,
    caller: Caller,
    checkpoint: Callable[[], None],
) -> tuple[str, ModelCall]:
    began = time.perf_counter()
    reply = _start(models, model, request, caller)
    events = []
    try:
        for index, event in enumerate(reply):
            events.append(event)
            if isinstance(event, TextDelta) and index % 16 == 0:
                checkpoint()  # a cancel stops the section within a few tokens
    finally:
        reply.close()
    result = ChatResult.collect(events)
    call = ModelCall(
        "write section",
        reply.served_by.label,
        result.usage.input_tokens,
        result.usage.output_tokens,
        (time.perf_counter() - began) * 1000,
    )
    return result.text, call


def complete_json(
    models: ModelService, model: str, request: ChatRequest, purpose: str, caller: Caller
) -> tuple[str, ModelCall]:
    """A schema-constrained completion (a plan, questions) and its record."""
    began = time.perf_counter()
    reply = _start(models, model, request, caller)
    try:
        result = ChatResult.collect(list(reply))
    finally:
        reply.close()
    call = ModelCall(
        purpose,
        reply.served_by.label,
        result.usage.input_tokens,
        result.usage.output_tokens,
        (time.perf_counter() - began) * 1000,
    )
    return result.text, call


def _start(models: ModelService, model: str, request: ChatRequest, caller: Caller) -> Reply:
    return models.start(
        model,
        request,
        subject=caller.subject,
        job_id=caller.job_id,
        workspace_id=caller.workspace_id,
    )
