"""Hybrid search over 100k synthetic chunks in the embedded PostgreSQL: latency, index build,
memory and disk; and HNSW recall@10 against exact search on real MiniLM embeddings.

    .venv/bin/python -m benchmarks.search_scale [--chunks 100000] [--queries 200]

Synthetic chunks have Zipf-distributed words from a 20k vocabulary (so BM25 has realistic
posting lists) and random unit vectors (latency does not depend on what vectors mean). Recall
uses real embeddings: the development corpus split into sentences, queried by its questions.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import uuid

import numpy as np
import psutil
from sqlalchemy import text

from benchmarks.common import ROOT, bench_engines, percentile, summary
from citeline.db.engine import unit_of_work
from citeline.knowledge import index
from citeline.knowledge.chunking import ChunkSpan
from citeline.knowledge.models import Document, KnowledgeBase
from citeline.knowledge.parsing import parse
from citeline.knowledge.retrieval import dense_search
from citeline.llm.embedders import embedder_for
from citeline.resources import Resources

EVAL = ROOT.parent / "shared" / "eval" / "debian-faq"
BATCH = 5000


def synthetic_corpus(count: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    vocabulary = [f"w{index}x{chr(97 + index % 26)}" for index in range(20000)]
    ranks = np.arange(1, len(vocabulary) + 1)
    weights = 1.0 / ranks**1.07
    weights /= weights.sum()
    lengths = rng.integers(40, 120, size=count)
    words = rng.choice(len(vocabulary), size=int(lengths.sum()), p=weights)
    texts, position = [], 0
    for length in lengths:
        texts.append(" ".join(vocabulary[i] for i in words[position : position + length]))
        position += length
    return texts, vocabulary


def add_document(
    resources: Resources, kb: KnowledgeBase, name: str, texts: list[str], vectors: np.ndarray
) -> None:
    body = "\n\n".join(texts)
    spans, position = [], 0
    for ordinal, chunk in enumerate(texts):
        spans.append(
            ChunkSpan(ordinal, position, position + len(chunk), (), None, len(chunk.split()))
        )
        position += len(chunk) + 2
    with unit_of_work(resources.sessions) as session:
        document_id = uuid.uuid4()
        session.add(
            Document(
                id=document_id, knowledge_base_id=kb.id, source=name, filename=name,
                media_type="text/plain", metadata_={}, status="ready", text=body, chunk_count=len(texts),
            )
        )  # fmt: skip
        session.flush()
        index.lock_knowledge_base(session, kb.id)
        index.insert_document_chunks(session, kb.id, document_id, body, spans, vectors)


def sizes(resources: Resources, kb: KnowledgeBase) -> dict[str, int]:
    with resources.sessions() as session:
        row = session.execute(
            text(
                "SELECT pg_total_relation_size('chunks'), pg_relation_size(:hnsw), "
                "pg_total_relation_size('chunk_terms'), pg_total_relation_size('term_stats'), "
                "pg_database_size(current_database())"
            ),
            {"hnsw": index.hnsw_index_name(kb.id)},
        ).one()
    return dict(
        zip(
            ["chunks (with indexes)", "hnsw index", "chunk_terms", "term_stats", "database"],
            row,
            strict=True,
        )
    )


def postgres_rss() -> int:
    total = 0
    for process in psutil.process_iter(["name", "memory_info"]):
        if process.info["name"] == "postgres":
            total += process.info["memory_info"].rss
    return total


def recall(resources: Resources, queries: int) -> tuple[float, int]:
    embedder = embedder_for(resources.settings)
    sentences: list[str] = []
    for path in sorted((EVAL / "corpus").glob("*.html")):
        document = parse(path.name, path.read_bytes())
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", document.text) if len(s.split()) >= 4]
    vectors = embedder.embed(sentences)
    knowledge = resources.knowledge()
    kb = knowledge.create("recall")
    add_document(resources, kb, "sentences", sentences, vectors)
    kb = knowledge.get(kb.id)
    questions = [
        json.loads(line)["question"] for line in (EVAL / "questions.jsonl").read_text().splitlines()
    ]
    query_vectors = embedder.embed(questions[:queries])
    found = 0
    with unit_of_work(resources.sessions) as session:
        ids = [
            row[0]
            for row in session.execute(
                text("SELECT id FROM chunks WHERE knowledge_base_id = :kb ORDER BY ordinal"),
                {"kb": kb.id},
            )
        ]
        for query in query_vectors:
            exact = {ids[i] for i in np.argsort(-(vectors @ query))[:10]}
            approximate = {chunk_id for chunk_id, _ in dense_search(session, kb, query, 10)}
            found += len(exact & approximate)
    return found / (10 * len(query_vectors)), len(sentences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    with bench_engines() as (settings, endpoints):
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            hnsw_recall, sentences = recall(resources, 100)
            print(
                f"HNSW recall@10 vs exact, real embeddings ({sentences} corpus sentences, 100 questions, ef_search 100): {hnsw_recall:.3f}"
            )

            knowledge = resources.knowledge()
            kb = knowledge.create("scale")
            texts, vocabulary = synthetic_corpus(args.chunks, rng)
            vectors = rng.normal(size=(args.chunks, kb.embedding_dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            with unit_of_work(resources.sessions) as session:
                index.drop_vector_index(session, kb.id)
            began = time.perf_counter()
            for start in range(0, args.chunks, BATCH):
                add_document(
                    resources,
                    kb,
                    f"part-{start}",
                    texts[start : start + BATCH],
                    vectors[start : start + BATCH],
                )
            load_seconds = time.perf_counter() - began
            began = time.perf_counter()
            with unit_of_work(resources.sessions) as session:
                session.execute(text("SET maintenance_work_mem = '512MB'"))
                index.create_vector_index(session, kb.id, kb.embedding_dim)
            build_seconds = time.perf_counter() - began
            with resources.engine.begin() as connection:
                connection.execute(text("ANALYZE chunks, chunk_terms, term_stats"))
            kb = knowledge.get(kb.id)
            print(
                f"loaded {kb.chunk_count} chunks with BM25 statistics in {load_seconds:.0f}s; HNSW build {build_seconds:.0f}s"
            )

            queries = [
                " ".join(rng.choice(vocabulary[:3000], size=int(rng.integers(2, 6))))
                for _ in range(args.queries)
            ]
            for mode in ("keyword", "dense", "hybrid"):
                latencies = []
                for query in queries:
                    started = time.perf_counter()
                    hits = knowledge.search(kb.id, query, k=10, mode=mode)
                    latencies.append(time.perf_counter() - started)
                    assert hits, f"no hits for {query!r}"
                print(
                    f"{mode:8} search (query embedding included where used): {summary(latencies)}"
                )
            p95 = percentile(latencies, 95) * 1000
            print(f"hybrid p95 {p95:.1f} ms against the 100 ms goal")
            for name, size in sizes(resources, kb).items():
                print(f"disk: {name:22} {size / 2**20:8.1f} MiB")
            print(
                f"memory: PostgreSQL processes RSS {postgres_rss() / 2**20:.0f} MiB (shared buffers counted once per process that touched them)"
            )
        finally:
            resources.close()


if __name__ == "__main__":
    main()
