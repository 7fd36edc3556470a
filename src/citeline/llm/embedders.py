"""The embedder a process uses, built once per process from the settings."""

from __future__ import annotations

from functools import lru_cache

from citeline.errors import ConfigurationError
from citeline.llm.embedding import Embedder, LocalEmbedder, RemoteEmbedder
from citeline.settings import Settings


@lru_cache(maxsize=4)
def _local(threads: int) -> LocalEmbedder:
    return LocalEmbedder(threads=threads)


def embedder_for(settings: Settings) -> Embedder:
    if settings.embedding_provider == "local":
        return _local(settings.embedding_threads)
    if not (settings.embedding_url and settings.embedding_model and settings.embedding_dim):
        raise ConfigurationError(
            "CITELINE_EMBEDDING_PROVIDER=openai needs CITELINE_EMBEDDING_URL, "
            "CITELINE_EMBEDDING_MODEL and CITELINE_EMBEDDING_DIM"
        )
    return RemoteEmbedder(
        settings.embedding_url,
        settings.embedding_model,
        settings.embedding_dim,
        settings.embedding_api_key,
    )
