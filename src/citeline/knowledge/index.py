"""Writing and removing a document's chunks, their vectors and the BM25 term statistics.

Terms are PostgreSQL's English stems (`to_tsvector('english', ...)`): PostgreSQL parses and
stems, Citeline counts. Each knowledge base keeps its chunk count and total term count; each
term its document frequency; each posting its term frequency and the chunk's length."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from citeline.knowledge.chunking import ChunkSpan
from citeline.knowledge.models import Chunk, KnowledgeBase
from citeline.llm import Vectors

TEXT_SEARCH_CONFIG = "english"


def hnsw_index_name(knowledge_base_id: uuid.UUID) -> str:
    return f"ix_chunks_hnsw_{knowledge_base_id.hex}"


def create_vector_index(session: Session, knowledge_base_id: uuid.UUID, dim: int) -> None:
    """A partial HNSW index per knowledge base: its own graph, so filtering by knowledge base
    never starves the scan, and each base may use a model of another dimension."""
    session.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {hnsw_index_name(knowledge_base_id)} ON chunks "
            f"USING hnsw ((embedding::vector({int(dim)})) vector_cosine_ops) "
            f"WITH (m = 16, ef_construction = 64) "
            f"WHERE knowledge_base_id = '{knowledge_base_id}'"
        )
    )


def drop_vector_index(session: Session, knowledge_base_id: uuid.UUID) -> None:
    session.execute(text(f"DROP INDEX IF EXISTS {hnsw_index_name(knowledge_base_id)}"))


def lock_knowledge_base(session: Session, knowledge_base_id: uuid.UUID) -> KnowledgeBase:
    """Serialise index writes per knowledge base (term statistics are shared rows)."""
    return session.execute(
        select(KnowledgeBase).where(KnowledgeBase.id == knowledge_base_id).with_for_update()
    ).scalar_one()


def remove_document_chunks(
    session: Session, knowledge_base_id: uuid.UUID, document_id: uuid.UUID
) -> int:
    """Delete a document's chunks and take them out of the statistics; returns how many."""
    params = {"kb": knowledge_base_id, "doc": document_id}
    session.execute(
        text(
            """
            UPDATE term_stats ts SET df = ts.df - d.n
            FROM (
                SELECT ct.term, count(*) AS n FROM chunk_terms ct
                JOIN chunks c ON c.id = ct.chunk_id
                WHERE c.document_id = :doc AND ct.knowledge_base_id = :kb
                GROUP BY ct.term
            ) d
            WHERE ts.knowledge_base_id = :kb AND ts.term = d.term
            """
        ),
        params,
    )
    session.execute(
        text("DELETE FROM term_stats WHERE knowledge_base_id = :kb AND df <= 0"), params
    )
    removed, terms = session.execute(
        text("SELECT count(*), coalesce(sum(term_count), 0) FROM chunks WHERE document_id = :doc"),
        params,
    ).one()
    session.execute(
        text(
            "UPDATE knowledge_bases SET chunk_count = chunk_count - :n, "
            "total_terms = total_terms - :t WHERE id = :kb"
        ),
        {**params, "n": removed, "t": terms},
    )
    session.execute(
        text(
            "DELETE FROM chunk_terms WHERE knowledge_base_id = :kb AND chunk_id IN "
            "(SELECT id FROM chunks WHERE document_id = :doc)"
        ),
        params,
    )
    session.execute(text("DELETE FROM chunks WHERE document_id = :doc"), params)
    return int(removed)


def remove_knowledge_base_postings(session: Session, knowledge_base_id: uuid.UUID) -> None:
    session.execute(
        text("DELETE FROM chunk_terms WHERE knowledge_base_id = :kb"), {"kb": knowledge_base_id}
    )


def insert_document_chunks(
    session: Session,
    knowledge_base_id: uuid.UUID,
    document_id: uuid.UUID,
    document_text: str,
    spans: Sequence[ChunkSpan],
    vectors: Vectors,
) -> None:
    if not spans:
        return
    rows = [
        {
            "id": uuid.uuid4(),
            "knowledge_base_id": knowledge_base_id,
            "document_id": document_id,
            "ordinal": span.ordinal,
            "text": document_text[span.start : span.end],
            "heading_path": list(span.heading_path),
            "page": span.page,
            "start": span.start,
            "end": span.end,
            "token_count": span.token_count,
            "term_count": 0,
            "embedding": np.asarray(vector, dtype=np.float32),
        }
        for span, vector in zip(spans, vectors, strict=True)
    ]
    session.execute(insert(Chunk), rows)
    params = {"kb": knowledge_base_id, "doc": document_id}
    session.execute(
        text(
            f"""
            UPDATE chunks c SET term_count = coalesce((
                SELECT sum(array_length(t.positions, 1))
                FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', c.text)) t
            ), 0)
            WHERE c.document_id = :doc
            """
        ),
        params,
    )
    session.execute(
        text(
            f"""
            INSERT INTO chunk_terms (knowledge_base_id, term, chunk_id, tf, chunk_terms)
            SELECT c.knowledge_base_id, t.lexeme, c.id, array_length(t.positions, 1), c.term_count
            FROM chunks c, unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', c.text)) t
            WHERE c.document_id = :doc
            """
        ),
        params,
    )
    session.execute(
        text(
            """
            INSERT INTO term_stats (knowledge_base_id, term, df)
            SELECT :kb, ct.term, count(*) FROM chunk_terms ct
            JOIN chunks c ON c.id = ct.chunk_id
            WHERE c.document_id = :doc AND ct.knowledge_base_id = :kb
            GROUP BY ct.term ORDER BY ct.term
            ON CONFLICT (knowledge_base_id, term) DO UPDATE SET df = term_stats.df + EXCLUDED.df
            """
        ),
        params,
    )
    session.execute(
        text(
            """
            UPDATE knowledge_bases kb SET chunk_count = kb.chunk_count + d.n,
                total_terms = kb.total_terms + d.t
            FROM (SELECT count(*) AS n, coalesce(sum(term_count), 0) AS t
                  FROM chunks WHERE document_id = :doc) d
            WHERE kb.id = :kb
            """
        ),
        params,
    )
