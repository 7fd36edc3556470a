"""Knowledge bases: documents, parsing, chunking, embedding, the BM25 and vector index."""

from citeline.knowledge.ingest import INGEST

JOB_KINDS = (INGEST,)

__all__ = ["JOB_KINDS"]
