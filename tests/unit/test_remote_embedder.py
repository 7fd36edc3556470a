"""The OpenAI-compatible embeddings adapter against a local HTTP server (a stand-in for a
remote provider, which is outside the system)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from citeline.errors import ServiceUnavailable, UpstreamError
from citeline.llm.embedding import RemoteEmbedder


class Provider(BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Provider.status != 200:
            self.send_response(Provider.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "boom"}}')
            return
        data = [
            {"object": "embedding", "index": i, "embedding": [3.0, 4.0, float(i)]}
            for i, _ in enumerate(body["input"])
        ]
        payload = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(payload).encode())

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def provider_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    Provider.status = 200


def test_vectors_are_normalised(provider_url: str) -> None:
    embedder = RemoteEmbedder(provider_url, "m", 3, None)
    vectors = embedder.embed(["a", "b"])
    embedder.close()
    assert vectors.shape == (2, 3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[0], [0.6, 0.8, 0.0])


def test_wrong_dimension_and_server_errors_are_upstream_errors(provider_url: str) -> None:
    wrong = RemoteEmbedder(provider_url, "m", 5, None)
    with pytest.raises(UpstreamError, match="shape"):
        wrong.embed(["a"])
    wrong.close()
    Provider.status = 400
    failing = RemoteEmbedder(provider_url, "m", 3, None)
    with pytest.raises(UpstreamError, match="failed"):
        failing.embed(["a"])
    failing.close()


def test_unreachable_endpoint_is_unavailable() -> None:
    embedder = RemoteEmbedder("http://127.0.0.1:1/v1", "m", 3, None, timeout=2)
    with pytest.raises(ServiceUnavailable, match="unavailable"):
        embedder.embed(["a"])
    embedder.close()
