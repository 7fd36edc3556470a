"""Knowledge bases: documents, parsing, chunking, embedding, the BM25 and vector index."""

from citeline.knowledge.ingest import INGEST
from citeline.knowledge.models import KnowledgeBase
from citeline.knowledge.retrieval import Hit
from citeline.knowledge.service import KnowledgeDeps, KnowledgeService, check_query

JOB_KINDS = (INGEST,)

__all__ = [
    "JOB_KINDS",
    "Hit",
    "KnowledgeBase",
    "KnowledgeDeps",
    "KnowledgeService",
    "check_query",
]
