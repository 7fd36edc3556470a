"""Hybrid search over 100k synthetic chunks in the embedded PostgreSQL: latency, index build,
memory and disk; and HNSW recall@10 against exact search on up to 100k real MiniLM embeddings.

    .venv/bin/python -m benchmarks.search_scale [--chunks 100000] [--queries 200]
        [--recall-texts 100000] [--vectors-cache FILE]

Synthetic chunks have Zipf-distributed words from a 20k vocabulary (so BM25 has realistic
posting lists) and random unit vectors (latency does not depend on what vectors mean). Recall
uses real embeddings of real text: the sentences of the development corpus and of this machine's
/usr/share/doc (READMEs, changelogs, copyright files, ...), deduplicated, queried by 200
held-out sentences and by the development set's 100 questions. Exact search is the same query
with index scans disabled. `--chunks 0` measures recall only; `--recall-texts 0` skips it.
Embedding 100k sentences takes about 20 minutes on one onnxruntime thread; `--vectors-cache`
keeps the vectors in a .npy file for the next run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from sqlalchemy import text
from sqlalchemy.orm import Session

from benchmarks.common import ROOT, bench_engines, percentile, summary
from citeline.db.engine import unit_of_work
from citeline.knowledge import index
from citeline.knowledge.chunking import ChunkSpan
from citeline.knowledge.models import Document, KnowledgeBase
from citeline.knowledge.parsing import parse
from citeline.knowledge.retrieval import EF_SEARCH, dense_search
from citeline.llm.embedders import embedder_for
from citeline.resources import Resources

EVAL = ROOT.parent / "shared" / "eval" / "debian-faq"
BATCH = 5000
DOCS = Path("/usr/share/doc")
HELD_OUT = 200
EF_VALUES = (EF_SEARCH, 200, 400)


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


def doc_files(root: Path) -> Iterator[str]:
    """The text of plain and gzipped text files under `root`, skipping binary and non-UTF-8."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.suffix in (".html", ".htm", ".pdf"):
            continue
        try:
            with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
                raw = handle.read(2_000_000)
        except OSError:
            continue
        if b"\x00" in raw[:4096]:
            continue
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            continue


def split_sentences(text: str) -> list[str]:
    out = []
    for piece in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
        sentence = " ".join(piece.split())
        letters = sum(c.isalpha() for c in sentence)
        if 6 <= len(sentence.split()) <= 40 and letters > 0.6 * len(sentence):
            out.append(sentence)
    return out


def real_texts(count: int, rng: np.random.Generator) -> tuple[list[str], list[str], list[str]]:
    """`count` distinct sentences (the development corpus's, then /usr/share/doc's), 200
    held-out sentences as queries, and the development set's questions."""
    faq: list[str] = []
    for path in sorted((EVAL / "corpus").glob("*.html")):
        faq += split_sentences(parse(path.name, path.read_bytes()).text)
    faq = list(dict.fromkeys(faq))
    docs = sorted({s for text in doc_files(DOCS) for s in split_sentences(text)} - set(faq))
    order = rng.permutation(len(docs))
    wanted = max(0, count - len(faq))
    if wanted + HELD_OUT > len(docs):
        raise SystemExit(f"only {len(docs) + len(faq)} distinct sentences; ask for fewer")
    corpus = faq + [docs[i] for i in order[:wanted]]
    held_out = [docs[i] for i in order[wanted : wanted + HELD_OUT]]
    questions = [
        json.loads(line)["question"] for line in (EVAL / "questions.jsonl").read_text().splitlines()
    ]
    return corpus[:count], held_out, questions


def embed_corpus(
    resources: Resources, corpus: list[str], cache: Path | None
) -> np.ndarray[Any, Any]:
    embedder = embedder_for(resources.settings)
    if cache is not None and cache.exists():
        vectors: np.ndarray[Any, Any] = np.load(cache)
        assert vectors.shape == (len(corpus), embedder.dim), "stale --vectors-cache"
        print(f"recall: {len(corpus)} real sentences, vectors from {cache}")
        return vectors
    began = time.perf_counter()
    parts = []
    for start in range(0, len(corpus), 10_000):
        parts.append(embedder.embed(corpus[start : start + 10_000]))
        print(f"recall: embedded {start + len(parts[-1])} sentences", flush=True)
    vectors = np.concatenate(parts)
    seconds = time.perf_counter() - began
    print(
        f"recall: embedded {len(corpus)} real sentences in {seconds:.0f}s "
        f"({len(corpus) / seconds:.0f}/s, one onnxruntime thread)"
    )
    if cache is not None:
        np.save(cache, vectors)
    return vectors


def load_real(
    resources: Resources, corpus: list[str], vectors: np.ndarray[Any, Any]
) -> KnowledgeBase:
    """Chunks with their BM25 statistics, then the HNSW index built over all of them."""
    knowledge = resources.knowledge()
    kb = knowledge.create("recall")
    with unit_of_work(resources.sessions) as session:
        index.drop_vector_index(session, kb.id)
    began = time.perf_counter()
    for start in range(0, len(corpus), BATCH):
        add_document(
            resources,
            kb,
            f"sentences-{start}",
            corpus[start : start + BATCH],
            vectors[start : start + BATCH],
        )
    load_seconds = time.perf_counter() - began
    began = time.perf_counter()
    with unit_of_work(resources.sessions) as session:
        session.execute(text("SET maintenance_work_mem = '512MB'"))
        index.create_vector_index(session, kb.id, kb.embedding_dim)
    build_seconds = time.perf_counter() - began
    with resources.engine.begin() as connection:
        connection.execute(text("ANALYZE chunks"))
    kb = knowledge.get(kb.id)
    print(
        f"recall: loaded {kb.chunk_count} chunks (with BM25 statistics) in {load_seconds:.0f}s; "
        f"HNSW build {build_seconds:.1f}s (m 16, ef_construction 64, maintenance_work_mem 512MB)"
    )
    with resources.sessions() as session:
        chunks, hnsw, heap = session.execute(
            text(
                "SELECT pg_total_relation_size('chunks'), pg_relation_size(:hnsw), "
                "pg_relation_size('chunks')"
            ),
            {"hnsw": index.hnsw_index_name(kb.id)},
        ).one()
    print(
        f"recall: disk chunks table with indexes {chunks / 2**20:.1f} MiB (heap {heap / 2**20:.1f} "
        f"MiB), HNSW index {hnsw / 2**20:.1f} MiB, {hnsw / kb.chunk_count:.0f} bytes/vector"
    )
    return kb


def recall(resources: Resources, count: int, rng: np.random.Generator, cache: Path | None) -> None:
    corpus, held_out, questions = real_texts(count, rng)
    vectors = embed_corpus(resources, corpus, cache)
    embedder = embedder_for(resources.settings)
    query_sets = {
        "held-out sentences": embedder.embed(held_out),
        "development questions": embedder.embed(questions),
    }
    kb = load_real(resources, corpus, vectors)
    for label, queries in query_sets.items():
        # The tenth exact similarity: an approximate hit at least this similar is a true one
        # (near-duplicate sentences can tie at the boundary).
        exact: list[float] = []
        with unit_of_work(resources.sessions) as session:
            session.execute(text("SET LOCAL enable_indexscan = off"))
            session.execute(text("SET LOCAL enable_bitmapscan = off"))
            plan = explain(session, kb, queries[0])
            assert index.hnsw_index_name(kb.id) not in plan, plan
            started = time.perf_counter()
            for query in queries:
                exact.append(dense_search(session, kb, query, 10)[-1][1])
            exact_ms = (time.perf_counter() - started) / len(queries) * 1000
        for ef in EF_VALUES:
            found, latencies = 0, []
            with unit_of_work(resources.sessions) as session:
                plan = explain(session, kb, queries[0])
                assert index.hnsw_index_name(kb.id) in plan, plan
                for query, tenth in zip(queries, exact, strict=True):
                    started = time.perf_counter()
                    hits = dense_search(session, kb, query, 10, ef_search=ef)
                    latencies.append(time.perf_counter() - started)
                    found += sum(score >= tenth - 1e-6 for _, score in hits)
            print(
                f"recall@10 {label} ({len(queries)}), ef_search {ef}: "
                f"{found / (10 * len(queries)):.4f}; HNSW query p50 "
                f"{percentile(latencies, 50) * 1000:.1f} ms, exact scan mean {exact_ms:.0f} ms"
            )


def explain(session: Session, kb: KnowledgeBase, vector: np.ndarray[Any, Any]) -> str:
    dim = int(kb.embedding_dim)
    literal = "[" + ",".join(f"{x:.7f}" for x in vector) + "]"
    rows = session.execute(
        text(
            f"EXPLAIN SELECT id FROM chunks WHERE knowledge_base_id = '{kb.id}' "
            f"ORDER BY embedding::vector({dim}) <=> CAST(:v AS vector({dim})) LIMIT 10"
        ),
        {"v": literal},
    ).all()
    return "\n".join(row[0] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--recall-texts", type=int, default=100_000, help="0: skip the recall measurement"
    )
    parser.add_argument("--vectors-cache", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    with bench_engines() as (settings, endpoints):
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            if args.recall_texts:
                recall(resources, args.recall_texts, np.random.default_rng(11), args.vectors_cache)
            if not args.chunks:
                return

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
