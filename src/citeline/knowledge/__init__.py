"""Knowledge bases: documents, parsing, chunking, embedding, the BM25 and vector index."""
