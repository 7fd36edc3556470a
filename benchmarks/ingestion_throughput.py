"""Ingestion throughput end to end (upload, job, parse, chunk, embed, index) versus the raw
embedding throughput of the same model on the same chunk texts, in the same run.

    .venv/bin/python -m benchmarks.ingestion_throughput [--corpus DIR] [--copies 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sqlalchemy import select

from benchmarks.common import ROOT, bench_engines, ingest_files
from citeline.jobs.models import Job
from citeline.knowledge.chunking import chunk_document
from citeline.knowledge.ingest import EMBED_BATCH, embedding_input
from citeline.knowledge.parsing import parse
from citeline.llm.embedders import embedder_for
from citeline.llm.embedding import count_tokens
from citeline.resources import Resources

CORPUS = ROOT.parent / "shared" / "eval" / "debian-faq" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--copies", type=int, default=2, help="ingest the corpus this many times")
    args = parser.parse_args()
    files = sorted(args.corpus.glob("*.html"))
    with bench_engines() as (settings, endpoints):
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            knowledge = resources.knowledge()
            embedder = embedder_for(settings)
            kb = knowledge.create("ingest-bench")

            # Raw embedding of exactly the texts ingestion embeds, same batch size.
            texts = []
            for path in files:
                document = parse(path.name, path.read_bytes())
                spans = chunk_document(
                    document,
                    max_tokens=kb.chunk_tokens,
                    overlap=kb.chunk_overlap,
                    count=count_tokens,
                )
                texts += [
                    embedding_input(document.title, s.heading_path, document.text[s.start : s.end])
                    for s in spans
                ]
            texts *= args.copies
            embedder.embed(texts[:EMBED_BATCH])  # warm-up, as the worker's first job is
            began = time.perf_counter()
            for start in range(0, len(texts), EMBED_BATCH):
                embedder.embed(texts[start : start + EMBED_BATCH])
            raw_rate = len(texts) / (time.perf_counter() - began)

            files_in = [
                (path, f"{copy}/{path.name}") for copy in range(args.copies) for path in files
            ]
            began = time.perf_counter()
            outcomes = ingest_files(settings, endpoints, kb.id, files_in)
            wall = time.perf_counter() - began
            with resources.sessions() as session:
                jobs = session.scalars(
                    select(Job).where(Job.id.in_([o.job_id for o in outcomes]))
                ).all()
            assert all(j.state == "finished" for j in jobs), [
                j.error for j in jobs if j.state != "finished"
            ]
            chunks = knowledge.get(kb.id).chunk_count
            first = min(j.started_at for j in jobs if j.started_at)
            last = max(j.finished_at for j in jobs if j.finished_at)
            job_rate = chunks / (last - first).total_seconds()
        finally:
            resources.close()
    print(f"{len(files_in)} HTML pages, {chunks} chunks ({len(texts)} embedded raw)")
    print(
        f"raw embedding ({embedder.name}, batch {EMBED_BATCH}, 1 thread): {raw_rate:.1f} chunks/s"
    )
    print(
        f"ingestion, first job start to last job end: {job_rate:.1f} chunks/s  (with upload and queue: {chunks / wall:.1f})"
    )
    print(f"ratio ingestion/raw embedding: {job_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
