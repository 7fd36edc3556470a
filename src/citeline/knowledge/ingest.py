"""The ingestion job: parse, chunk, embed and index one document, replacing its previous
version in one transaction, so searches see the old version or the new one, never a mix."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import ConfigurationError, NotFound, UpstreamError
from citeline.jobs.context import JobCancelled, JobContext
from citeline.jobs.registry import JobKind
from citeline.knowledge import index
from citeline.knowledge.chunking import chunk_document
from citeline.knowledge.models import Document, DocumentStatus, KnowledgeBase
from citeline.knowledge.parsing import InvalidDocument, parse
from citeline.knowledge.service import INGEST_KIND, KnowledgeDeps
from citeline.llm import count_tokens, embedder_for
from citeline.settings import Settings

log = logging.getLogger(__name__)

EMBED_BATCH = 32


def embedding_input(title: str | None, heading_path: tuple[str, ...], text: str) -> str:
    """What the embedder sees: the chunk with the headings above it, which the chunk itself
    may not repeat. The stored chunk text stays exactly the document's span."""
    context = [part for part in (title, *heading_path) if part]
    deduped = [
        part for i, part in enumerate(context) if part not in context[:i] and part not in text
    ]
    return " > ".join(deduped) + "\n" + text if deduped else text


def ingest(context: JobContext[KnowledgeDeps]) -> dict[str, Any]:
    document_id = uuid.UUID(str(context.args["document_id"]))
    sessions = context.sessions
    try:
        return _ingest(context, sessions, context.settings, document_id)
    except InvalidDocument as exc:
        _mark_failed(sessions, document_id, exc.detail)
        raise
    except JobCancelled:
        _mark_failed(sessions, document_id, "ingestion was cancelled")
        raise
    except Exception as exc:
        if context.last_attempt:
            _mark_failed(sessions, document_id, f"ingestion failed: {exc}")
        raise


INGEST = JobKind(INGEST_KIND, ingest, queue="default", max_attempts=3)


def _ingest(
    context: JobContext[KnowledgeDeps],
    sessions: sessionmaker[Session],
    settings: Settings,
    document_id: uuid.UUID,
) -> dict[str, Any]:
    store = context.services.store
    with unit_of_work(sessions) as session:
        document = session.get(Document, document_id)
        if document is None:
            raise NotFound(f"document {document_id} no longer exists")
        if document.upload_key is None or document.upload_hash is None:
            return {"document_id": str(document_id), "status": "nothing to ingest"}
        kb = session.get_one(KnowledgeBase, document.knowledge_base_id)
        document.status = DocumentStatus.processing.value
        key, digest, size, source = (
            document.upload_key,
            document.upload_hash,
            document.upload_size,
            document.source,
        )
        old_key = document.storage_key

    context.progress(0.02, f"parsing {source}")
    with store.open(key) as original:
        parsed = parse(source, original.read())
    spans = chunk_document(
        parsed, max_tokens=kb.chunk_tokens, overlap=kb.chunk_overlap, count=count_tokens
    )
    context.progress(0.1, f"embedding {len(spans)} chunks")

    embedder = embedder_for(settings)
    if embedder.name != kb.embedding_model:
        raise ConfigurationError(
            f"knowledge base {kb.name!r} uses {kb.embedding_model}; this worker has {embedder.name}"
        )
    inputs = [
        embedding_input(parsed.title, span.heading_path, parsed.text[span.start : span.end])
        for span in spans
    ]
    batches = []
    for begin in range(0, len(inputs), EMBED_BATCH):
        batches.append(embedder.embed(inputs[begin : begin + EMBED_BATCH]))
        done = min(len(inputs), begin + EMBED_BATCH)
        context.progress(
            0.1 + 0.8 * done / max(1, len(inputs)), f"embedded {done} of {len(inputs)} chunks"
        )
    vectors = np.vstack(batches) if batches else np.zeros((0, embedder.dim), dtype=np.float32)

    context.check_cancelled()
    with unit_of_work(sessions) as session:
        index.lock_knowledge_base(session, kb.id)
        document = session.get(Document, document_id, with_for_update=True)
        if document is None:
            raise NotFound(f"document {document_id} was deleted during ingestion")
        if document.upload_hash != digest:
            return {"document_id": str(document_id), "status": "superseded by a newer upload"}
        index.remove_document_chunks(session, kb.id, document_id)
        index.insert_document_chunks(session, kb.id, document_id, parsed.text, spans, vectors)
        document.content_hash = digest
        document.storage_key = key
        document.size_bytes = size
        document.text = parsed.text
        document.title = parsed.title or document.filename
        document.page_starts = parsed.page_starts
        document.chunk_count = len(spans)
        document.status = DocumentStatus.ready.value
        document.error = None
        document.indexed_at = utcnow()
        document.upload_key = document.upload_hash = document.upload_size = None
    if old_key and old_key != key:
        try:
            store.delete(old_key)
        except UpstreamError as exc:  # the new version is in; the old file is only clutter
            log.warning(
                "the previous version's file was left behind",
                extra={"key": old_key, "error": exc.detail},
            )
    return {"document_id": str(document_id), "chunks": len(spans), "characters": len(parsed.text)}


def _mark_failed(sessions: sessionmaker[Session], document_id: uuid.UUID, reason: str) -> None:
    """Record the failure; the previously indexed version, if any, stays searchable."""
    with unit_of_work(sessions) as session:
        document = session.get(Document, document_id, with_for_update=True)
        if document is None:
            return
        document.status = DocumentStatus.failed.value
        if document.content_hash is not None:
            reason += " (the previously indexed version is still searchable)"
        document.error = reason
