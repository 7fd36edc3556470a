"""One grounded answer: rewrite a follow-up, retrieve, decide whether anything is relevant,
pack the context, generate, verify the citations, and keep the turn.

Progress goes out through `emit` as typed events (`retrieval`, `preview`, `token`, `sentence`,
`verifying`, `citation`, `error`, `complete`): a job passes its event stream, the CLI a
printer. `token` carries the unchecked draft, `sentence` each verified sentence the answer
keeps, `verifying` marks the end of the draft.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from citeline.answers.citations import SpanIndex, Verifier
from citeline.answers.models import Conversation, Turn
from citeline.answers.passages import Passage, from_hits, pack
from citeline.answers.prompt import answer_request, is_not_found, rewrite_request
from citeline.answers.relevance import closest, on_question
from citeline.answers.streaming import SentenceStream, preview
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import CitelineError
from citeline.llm import ChatRequest, ChatResult, Lease, ModelService, TextDelta, TokenBatches
from citeline.settings import Settings

if TYPE_CHECKING:
    from citeline.auth import Access
    from citeline.knowledge import KnowledgeService

Emit = Callable[[str, Mapping[str, Any]], object]


class AnswerDeps(Protocol):
    """What answering needs of the process it runs in (the composition root provides it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    def knowledge(self, access: Access | None = None) -> KnowledgeService: ...

    def models(
        self, access: Access | None = None, *, lease: Lease | None = None
    ) -> ModelService: ...


HISTORY_TURNS = 3
CLOSEST = 3


@dataclass(frozen=True)
class AnswerOptions:
    k: int | None = None
    model: str | None = None
    context_tokens: int | None = None
    max_tokens: int | None = None
    min_relevance: float | None = None
    relevance_margin: float | None = None

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> AnswerOptions:
        raw = raw or {}
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if raw.get(k) is not None})


@dataclass
class Clock:
    marks: dict[str, float]

    @classmethod
    def start(cls) -> Clock:
        return cls({"start": time.perf_counter()})

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()

    def between(self, first: str, second: str) -> float | None:
        if first not in self.marks or second not in self.marks:
            return None
        return round((self.marks[second] - self.marks[first]) * 1000, 1)


@dataclass(frozen=True)
class _Caller:
    subject: str | None
    workspace_id: str | None


def answer(
    deps: AnswerDeps,
    question: str,
    knowledge_base_id: uuid.UUID,
    *,
    emit: Emit,
    conversation_id: uuid.UUID | None = None,
    options: AnswerOptions | None = None,
    owner: str | None = None,
    job_id: uuid.UUID | None = None,
    queue_ms: float | None = None,
    lease: Lease | None = None,
) -> dict[str, Any]:
    settings = deps.settings
    sessions = deps.sessions
    options = options or AnswerOptions()
    knowledge = deps.knowledge()
    models = deps.models(lease=lease)
    alias = options.model or settings.answer_model
    clock = Clock.start()
    kb = knowledge.get(knowledge_base_id)

    # The knowledge base's workspace decides which of its aliases apply.
    owner_of = _Caller(owner, kb.workspace_id)
    search_query = _rewrite(models, sessions, alias, question, conversation_id, owner_of)
    clock.mark("rewritten")

    hits = knowledge.search(kb.id, search_query, k=options.k or settings.answer_candidates)
    found = from_hits(hits)
    clock.mark("retrieved")
    emit("retrieval", {"query": search_query, "passages": [p.as_json() for p in found]})

    base: dict[str, Any] = {
        "question": question,
        "search_query": search_query,
        "knowledge_base_id": str(kb.id),
        "conversation_id": str(conversation_id) if conversation_id else None,
    }
    relevance = max((p.relevance for p in found if p.relevance is not None), default=None)
    threshold = (
        settings.answer_min_relevance if options.min_relevance is None else (options.min_relevance)
    )
    if relevance is None or relevance < threshold:
        result = _not_found(base, kb.name, found, "nothing in it is relevant enough", clock)
        return _finish(sessions, emit, result, conversation_id, job_id, queue_ms)

    budget = options.context_tokens or settings.answer_context_tokens
    embedder = knowledge.embedder
    # From the stored vectors' ranking, before the candidates are embedded again below.
    emit("preview", {"sentences": preview(search_query, [closest(found)], embedder.embed)})
    clock.mark("preview")
    margin = (
        settings.answer_relevance_margin
        if options.relevance_margin is None
        else options.relevance_margin
    )
    chosen = on_question(
        search_query,
        found,
        embedder.embed,
        margin,
        settings.answer_max_passages,
        settings.answer_min_passages,
    )
    base["set_aside"] = [p.number for p in chosen.set_aside]
    packed = pack(chosen.passages, budget, lambda text: embedder.count_tokens([text])[0])
    # Embedded while the model reads its prompt; the first drafted sentence waits for it.
    index = SpanIndex(packed, embedder.embed, in_background=True)
    request = answer_request(search_query, packed, options.max_tokens or settings.answer_max_tokens)
    stream = SentenceStream(
        Verifier(index, settings.answer_support_threshold, search_query),
        emit,
        lambda: clock.mark("sentence"),
    )
    clock.mark("prompt_start")
    generated, served_by = _generate(
        models, alias, request, emit, clock, owner_of, conversation_id, job_id, stream
    )
    clock.mark("generated")
    base["model"] = served_by
    base["usage"] = generated.usage.model_dump()
    base["draft"] = generated.text

    if is_not_found(generated.text):
        result = _not_found(base, kb.name, packed, "the passages found do not answer it", clock)
        return _finish(sessions, emit, result, conversation_id, job_id, queue_ms)
    emit("verifying", {"passages": len(packed)})
    verified = stream.finish()
    clock.mark("verified")
    if not verified.citations:
        # Nothing checkable was said (no claim, or no claim a passage supports).
        result = _not_found(
            base, kb.name, packed, "no passage found supports a drafted answer", clock
        )
        return _finish(sessions, emit, result, conversation_id, job_id, queue_ms)
    citations = [c.as_json() for c in verified.citations]
    for citation in citations:
        emit("citation", citation)
    result = {
        **base,
        "status": "answered",
        "answer": verified.answer,
        "citations": citations,
        "sentences": [s.as_json() for s in verified.sentences],
        "dropped": [s.as_json() for s in verified.dropped],
        "coverage": verified.coverage,
        "passages": [p.as_json() for p in packed],
        "timings": _timings(clock),
    }
    return _finish(sessions, emit, result, conversation_id, job_id, queue_ms)


def _rewrite(
    models: ModelService,
    sessions: sessionmaker[Session],
    alias: str,
    question: str,
    conversation_id: uuid.UUID | None,
    caller: _Caller,
) -> str:
    """A follow-up made standalone for retrieval, using the conversation's last turns."""
    history = _history(sessions, conversation_id)
    if not history:
        return question
    rewritten = models.complete(
        alias,
        rewrite_request(history, question),
        subject=caller.subject,
        conversation=str(conversation_id),
        workspace_id=caller.workspace_id,
    )
    lines = [line.strip() for line in rewritten.text.strip().splitlines() if line.strip()]
    return lines[0] if lines else question


def _generate(
    models: ModelService,
    alias: str,
    request: ChatRequest,
    emit: Emit,
    clock: Clock,
    caller: _Caller,
    conversation_id: uuid.UUID | None,
    job_id: uuid.UUID | None,
    stream: SentenceStream,
) -> tuple[ChatResult, str]:
    """Stream the draft to listeners in small batches, and each verified sentence as soon as
    it is checked; the version that served it."""
    reply = models.start(
        alias,
        request,
        subject=caller.subject,
        conversation=str(conversation_id) if conversation_id else None,
        job_id=job_id,
        workspace_id=caller.workspace_id,
    )
    events = []
    batches = TokenBatches(lambda text: emit("token", {"text": text}))
    stream.before_send = batches.flush  # the draft a checked sentence came from goes first
    try:
        for event in reply:
            events.append(event)
            if isinstance(event, TextDelta):
                if "first_token" not in clock.marks:
                    clock.mark("first_token")
                batches.add(event.text)
                stream.add(event.text)
        batches.flush()
    except CitelineError as exc:
        emit("error", {"message": exc.detail, "type": exc.type_slug, "retryable": exc.retryable})
        raise
    finally:
        reply.close()
    return ChatResult.collect(events), reply.served_by.label


def _not_found(
    base: dict[str, Any], kb_name: str, nearest: list[Passage], why: str, clock: Clock
) -> dict[str, Any]:
    return {
        **base,
        "status": "not_found",
        "answer": f"I could not find an answer in the knowledge base {kb_name!r}: {why}.",
        "reason": why,
        "citations": [],
        "sentences": [],
        "coverage": None,
        "passages": [p.as_json() for p in nearest[:CLOSEST]],
        "timings": _timings(clock),
    }


def _timings(clock: Clock) -> dict[str, float | None]:
    clock.mark("end")
    first = "first_token" if "first_token" in clock.marks else "generated"
    return {
        "rewrite_ms": clock.between("start", "rewritten"),
        "retrieval_ms": clock.between("rewritten", "retrieved"),
        "preview_ms": clock.between("start", "preview"),
        "first_token_ms": clock.between("start", "first_token"),
        "first_sentence_ms": clock.between("start", "sentence"),
        "prompt_ms": clock.between("prompt_start", first),
        "generation_ms": clock.between(first, "generated"),
        "verification_ms": clock.between("generated", "verified"),
        "total_ms": clock.between("start", "end"),
    }


def _finish(
    sessions: sessionmaker[Session],
    emit: Emit,
    result: dict[str, Any],
    conversation_id: uuid.UUID | None,
    job_id: uuid.UUID | None,
    queue_ms: float | None,
) -> dict[str, Any]:
    result["timings"]["queue_ms"] = queue_ms
    if conversation_id is not None:
        turn = _save_turn(sessions, conversation_id, result, job_id)
        if turn is not None:
            result["turn"] = turn
    emit("complete", result)
    return result


def _history(
    sessions: sessionmaker[Session], conversation_id: uuid.UUID | None
) -> list[tuple[str, str]]:
    if conversation_id is None:
        return []
    with sessions() as session:
        turns = session.scalars(
            select(Turn)
            .where(Turn.conversation_id == conversation_id)
            .order_by(Turn.ordinal.desc())
            .limit(HISTORY_TURNS)
        ).all()
    return [(t.question, t.answer) for t in reversed(turns)]


def _save_turn(
    sessions: sessionmaker[Session],
    conversation_id: uuid.UUID,
    result: dict[str, Any],
    job_id: uuid.UUID | None,
) -> int | None:
    """The new turn's number; None when the conversation was deleted while answering."""
    with unit_of_work(sessions) as session:
        # Lock the conversation so two answers to it number their turns one after the other.
        conversation = session.get(Conversation, conversation_id, with_for_update=True)
        if conversation is None:
            return None
        ordinal = (
            session.scalar(
                select(func.max(Turn.ordinal)).where(Turn.conversation_id == conversation_id)
            )
            or 0
        ) + 1
        session.add(
            Turn(
                conversation_id=conversation_id,
                ordinal=ordinal,
                question=result["question"],
                search_query=result["search_query"],
                status=result["status"],
                answer=result["answer"],
                citations=result["citations"],
                job_id=job_id,
            )
        )
        conversation.updated_at = utcnow()
        if not conversation.title:
            conversation.title = result["question"][:200]
        return ordinal
