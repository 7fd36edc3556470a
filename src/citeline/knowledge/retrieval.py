"""Hybrid retrieval inside PostgreSQL: BM25 over the term statistics ingestion keeps, dense
search on the knowledge base's HNSW index, fused by scores (see `fuse`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from citeline.knowledge.index import TEXT_SEARCH_CONFIG
from citeline.knowledge.models import KnowledgeBase
from citeline.llm import Embedder

K1 = 1.2
B = 0.75
CANDIDATES = 50
EF_SEARCH = 100
# Fusion (see `fuse`); chosen on the Debian FAQ development sets, docs/benchmarks.md.
KEYWORD_WEIGHT = 0.1
SHARPNESS_RANK = 5
SHARPNESS_POWER = 1
RRF_K = 60  # only for `reciprocal_rank_fusion`, the previous default, kept for comparison


@dataclass(frozen=True)
class Filters:
    document_ids: Sequence[uuid.UUID] | None = None
    metadata: Mapping[str, Any] | None = None

    @property
    def active(self) -> bool:
        return bool(self.document_ids) or bool(self.metadata)


@dataclass
class Hit:
    chunk_id: uuid.UUID
    score: float
    ranks: dict[str, int | None] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def _filter_sql(filters: Filters, params: dict[str, Any], chunk_column: str) -> str:
    clauses = []
    if filters.document_ids:
        params["filter_docs"] = list(filters.document_ids)
        clauses.append(
            f"{chunk_column} IN (SELECT id FROM chunks WHERE document_id = ANY(:filter_docs))"
        )
    if filters.metadata:
        params["filter_meta"] = json.dumps(dict(filters.metadata))
        clauses.append(
            f"{chunk_column} IN (SELECT c.id FROM chunks c "
            "JOIN documents d ON d.id = c.document_id "
            "WHERE d.metadata @> CAST(:filter_meta AS jsonb))"
        )
    return "".join(f" AND {clause}" for clause in clauses)


def keyword_search(
    session: Session, kb: KnowledgeBase, query: str, limit: int, filters: Filters | None = None
) -> list[tuple[uuid.UUID, float]]:
    """Okapi BM25 (k1=1.2, b=0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5)))."""
    if kb.chunk_count == 0:
        return []
    params: dict[str, Any] = {
        "kb": kb.id,
        "query": query,
        "n": float(kb.chunk_count),
        "avgdl": max(1.0, kb.total_terms / kb.chunk_count),
        "k1": K1,
        "b": B,
        "limit": limit,
    }
    extra = _filter_sql(filters or Filters(), params, "ct.chunk_id")
    rows = session.execute(
        text(
            f"""
            WITH q AS (
                SELECT DISTINCT lexeme AS term
                FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', :query))
            ), s AS (
                SELECT ts.term, ln(1 + (:n - ts.df + 0.5) / (ts.df + 0.5)) AS idf
                FROM term_stats ts JOIN q ON q.term = ts.term
                WHERE ts.knowledge_base_id = :kb
            )
            SELECT ct.chunk_id, sum(
                s.idf * ct.tf * (:k1 + 1) / (ct.tf + :k1 * (1 - :b + :b * ct.chunk_terms / :avgdl))
            ) AS score
            FROM chunk_terms ct JOIN s ON s.term = ct.term
            WHERE ct.knowledge_base_id = :kb{extra}
            GROUP BY ct.chunk_id
            ORDER BY score DESC, ct.chunk_id
            LIMIT :limit
            """
        ),
        params,
    ).all()
    return [(row[0], float(row[1])) for row in rows]


def dense_search(
    session: Session,
    kb: KnowledgeBase,
    vector: np.ndarray[Any, Any],
    limit: int,
    filters: Filters | None = None,
    *,
    ef_search: int = EF_SEARCH,
) -> list[tuple[uuid.UUID, float]]:
    """Cosine similarity on the knowledge base's own HNSW index (`ef_search` candidates kept
    while searching the graph, at least `limit`)."""
    if kb.chunk_count == 0:
        return []
    params: dict[str, Any] = {
        "vector": "[" + ",".join(f"{x:.7f}" for x in vector) + "]",
        "limit": limit,
    }
    filters = filters or Filters()
    extra = _filter_sql(filters, params, "id")
    session.execute(text(f"SET LOCAL hnsw.ef_search = {max(int(ef_search), limit)}"))
    if filters.active:
        session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
    dim = int(kb.embedding_dim)
    # The knowledge base id is inlined (a UUID, not user text) so the planner can match the
    # partial index's predicate even for prepared statements.
    rows = session.execute(
        text(
            f"""
            SELECT id, 1 - (embedding::vector({dim}) <=> CAST(:vector AS vector({dim}))) AS score
            FROM chunks
            WHERE knowledge_base_id = '{uuid.UUID(str(kb.id))}'{extra}
            ORDER BY embedding::vector({dim}) <=> CAST(:vector AS vector({dim}))
            LIMIT :limit
            """
        ),
        params,
    ).all()
    return [(row[0], float(row[1])) for row in rows]


def keyword_sharpness(ranking: Sequence[tuple[uuid.UUID, float]], rank: int) -> float:
    """How far BM25's best match stands out: 1 - score at `rank` / best score, in [0, 1].
    Near 1 when a rare term (a command, a file name) matches a few chunks; near 0 when common
    words match many chunks about equally. Fewer than `rank` matches count as 1."""
    if not ranking or ranking[0][1] <= 0:
        return 0.0
    if len(ranking) < rank:
        return 1.0
    return max(0.0, 1.0 - ranking[rank - 1][1] / ranking[0][1])


def fuse(
    rankings: Mapping[str, Sequence[tuple[uuid.UUID, float]]],
    limit: int,
    *,
    keyword_weight: float = KEYWORD_WEIGHT,
    sharpness_rank: int = SHARPNESS_RANK,
    sharpness_power: int = SHARPNESS_POWER,
) -> list[Hit]:
    """Dense-led score fusion of the "dense" (cosine) and "keyword" (BM25) rankings:

        score = cosine + keyword_weight * sharpness ** sharpness_power * bm25 / best bm25

    with `sharpness` from `keyword_sharpness`. A chunk missing from the dense list gets that
    list's lowest cosine (its own is no higher), one missing from the keyword list BM25 0. So
    BM25 re-orders near-ties among dense candidates, and moves a chunk further up only when its
    lexical match is both the best and distinctive; questions in other words than the text
    (where equal-weight RRF pulled hybrid far below dense) stay led by dense. With one ranking
    alone, its own order and scores. Each hit keeps every method's rank and score (None where
    the method did not return it)."""
    unknown = set(rankings) - {"keyword", "dense"}
    if unknown:
        raise ValueError(f"unknown retrieval methods: {sorted(unknown)}")
    hits: dict[uuid.UUID, Hit] = {}
    for method, ranking in rankings.items():
        for rank, (chunk_id, score) in enumerate(ranking, start=1):
            hit = hits.setdefault(
                chunk_id,
                Hit(chunk_id, 0.0, {m: None for m in rankings}, {m: None for m in rankings}),
            )
            hit.ranks[method] = rank
            hit.scores[method] = score
    keyword = rankings.get("keyword") or []
    dense = rankings.get("dense")
    if dense is None:
        for hit in hits.values():
            hit.score = hit.scores["keyword"] or 0.0
    else:
        floor = min((score for _, score in dense), default=0.0)
        best = keyword[0][1] if keyword else 0.0
        sharpness = keyword_sharpness(keyword, sharpness_rank) ** sharpness_power
        weight = keyword_weight * sharpness / best if best > 0 else 0.0
        for hit in hits.values():
            cosine = hit.scores["dense"]
            bm25 = hit.scores.get("keyword")
            hit.score = (floor if cosine is None else cosine) + weight * (bm25 or 0.0)
    ordered = sorted(hits.values(), key=lambda h: (-h.score, str(h.chunk_id)))
    return ordered[:limit]


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[tuple[uuid.UUID, float]]], limit: int, k: int = RRF_K
) -> list[Hit]:
    """Reciprocal rank fusion, score = sum over methods of 1 / (k + rank): the previous default,
    kept so the benchmark can compare (on paraphrased questions it fell far below dense)."""
    hits: dict[uuid.UUID, Hit] = {}
    for method, ranking in rankings.items():
        for rank, (chunk_id, score) in enumerate(ranking, start=1):
            hit = hits.setdefault(
                chunk_id,
                Hit(chunk_id, 0.0, {m: None for m in rankings}, {m: None for m in rankings}),
            )
            hit.score += 1.0 / (k + rank)
            hit.ranks[method] = rank
            hit.scores[method] = score
    ordered = sorted(hits.values(), key=lambda h: (-h.score, str(h.chunk_id)))
    return ordered[:limit]


def search(
    session: Session,
    kb: KnowledgeBase,
    embedder: Embedder,
    query: str,
    *,
    k: int = 10,
    mode: str = "hybrid",
    filters: Filters | None = None,
) -> list[Hit]:
    filters = filters or Filters()
    candidates = max(CANDIDATES, k)
    rankings: dict[str, list[tuple[uuid.UUID, float]]] = {}
    if mode in ("hybrid", "keyword"):
        rankings["keyword"] = keyword_search(session, kb, query, candidates, filters)
    if mode in ("hybrid", "dense"):
        vector = embedder.embed([query])[0]
        rankings["dense"] = dense_search(session, kb, vector, candidates, filters)
    hits = fuse(rankings, k)
    _attach_details(session, hits)
    return hits


def _attach_details(session: Session, hits: list[Hit]) -> None:
    if not hits:
        return
    rows = session.execute(
        text(
            """
            SELECT c.id, c.document_id, c.knowledge_base_id, d.title, d.source,
                   c.heading_path, c.page,
                   c.start, c."end", c.text
            FROM chunks c JOIN documents d ON d.id = c.document_id
            WHERE c.id = ANY(:ids)
            """
        ),
        {"ids": [h.chunk_id for h in hits]},
    ).mappings()
    by_id = {row["id"]: dict(row) for row in rows}
    for hit in hits:
        hit.details = by_id.get(hit.chunk_id, {})
