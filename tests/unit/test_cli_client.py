"""The CLI's HTTP client without a Citeline: addresses, stored sign-ins, event parsing, and
what a person reads when the server is missing or answers with a problem."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from citeline.cli.client import Client, CliError, ServerError, normalise_server, read_events
from citeline.cli.credentials import CredentialStore, Login
from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("citeline.example:443", "http://citeline.example:443"),
        (" https://c.example/ ", "https://c.example"),
    ],
)
def test_server_addresses_are_normalised(given: str, expected: str) -> None:
    assert normalise_server(given) == expected


@pytest.mark.parametrize("given", ["ftp://x", "http://", "http://h:port", "nope://"])
def test_a_malformed_address_is_refused_in_words(given: str) -> None:
    with pytest.raises(CliError, match=r"not a server address|malformed port"):
        normalise_server(given)


def test_credentials_are_private_and_kept_per_server(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "citeline" / "credentials.json")
    assert store.default_server() is None and store.get("http://a") is None
    store.put(Login("http://a", kind="api_key", api_key="cl_secret"))
    store.put(Login("http://b", kind="password", access_token="t", refresh_token="r"))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert store.default_server() == "http://b"
    a = store.get("http://a")
    assert a is not None and a.secret == "cl_secret"
    b = store.get("http://b")
    assert b is not None and b.secret == "t"
    assert store.remove("http://b")
    assert store.default_server() == "http://b" and store.get("http://b") is None
    assert not store.remove("http://b")
    store.path.write_text("{not json")
    with pytest.raises(CliError, match="cannot read"):
        store.get("http://a")


def test_server_sent_events_are_parsed_in_order() -> None:
    stream = io.BytesIO(
        b"retry: 2000\n\n"
        b": keep-alive\n\n"
        b'id: 1\nevent: progress\ndata: {"seq": 1, "type": "progress", "data": {"n": 1}}\n\n'
        b"data: not json\n\n"
        b'id: 2\nevent: finished\ndata: {"seq": 2, "type": "finished", "data": {}}\n\n'
    )
    events = list(read_events(stream))
    assert [(e.seq, e.type, e.data) for e in events] == [
        (1, "progress", {"n": 1}),
        (2, "finished", {}),
    ]
    assert events[-1].terminal and not events[0].terminal


class _Scripted(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, str, Any]] = {}

    def do_GET(self) -> None:
        status, kind, body = self.answers[self.path.split("?")[0]]
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def scripted() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_problems_become_sentences(scripted: str) -> None:
    problem = "application/problem+json"
    _Scripted.answers = {
        "/invalid": (422, problem, {
            "status": 422, "detail": "body.name: Field required",
            "errors": [{"field": "body.name", "message": "Field required"}],
        }),
        "/forbidden": (403, problem, {"status": 403, "detail": "a viewer may not do that"}),
        "/broken": (503, problem, {"status": 503, "detail": "the database is unavailable"}),
        "/elsewhere": (404, "text/html", "<html>nothing here</html>"),
        "/ok": (200, "application/json", {"fine": True}),
        "/empty": (200, "application/json", ""),
    }  # fmt: skip
    client = Client(scripted)
    assert client.request("GET", "/ok") == {"fine": True}
    assert client.request("GET", "/empty") is None
    with pytest.raises(CliError, match=r"^name: Field required$"):
        client.request("GET", "/invalid")
    with pytest.raises(CliError, match=r"^a viewer may not do that$") as refused:
        client.request("GET", "/forbidden")
    assert refused.value.exit_code == 2
    with pytest.raises(ServerError, match="the database is unavailable") as failed:
        client.request("GET", "/broken")
    assert failed.value.exit_code == 1
    with pytest.raises(CliError, match="answered 404 to GET /elsewhere: is it a Citeline"):
        client.request("GET", "/elsewhere")


def test_no_server_is_said_plainly_and_nothing_is_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITELINE_")}
    env.update(PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(tmp_path / "config"))
    port = free_port()

    def citeline(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "citeline", *args],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    nothing = citeline("--server", f"http://127.0.0.1:{port}", "kb", "list")
    assert nothing.returncode == 1
    assert nothing.stderr.startswith(f"error: no Citeline at http://127.0.0.1:{port}")
    assert "CITELINE_URL" in nothing.stderr and "Traceback" not in nothing.stderr
    from_env = citeline("ask", "anything", CITELINE_URL=f"127.0.0.1:{port}")
    assert from_env.returncode == 1
    assert f"no Citeline at http://127.0.0.1:{port}" in from_env.stderr
    bad = citeline("--server", "ftp://example", "jobs", "list")
    assert bad.returncode == 2 and "is not a server address" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no data/, no config written
