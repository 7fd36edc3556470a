"""Object storage: the same behaviour from LocalStore and from S3Store on a real S3 server
(s3rver), failures that say what is wrong, and documents uploaded through the API, ingested
by a real worker and downloaded again with the S3 backend."""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import re
import socket
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from citeline.api.app import create_app
from citeline.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from citeline.resources import Resources
from citeline.settings import Settings
from citeline.storage import Credentials, LocalStore, ObjectStore, S3Store
from citeline.storage.base import CHUNK_BYTES
from tests.conftest import LiveServer, WorkerFactory, wait_for
from tests.fixtures_docs import pdf_bytes
from tests.s3_server import S3Server, run_s3rver

ODD_KEY = "exports/2026/报告 Αναφορά #1 (v2)+%&=?'!*.pdf"
TRAVERSALS = ["../outside", "a/../../outside", "/etc/passwd", "a//b", "a/./b", "a\\..\\b", ""]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with run_s3rver() as server:
        yield server


class SignedAsSent:
    """An httpx request hook that re-derives each request's SigV4 signature from what goes on
    the wire (s3rver accepts any), independently of citeline.storage.sigv4."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.checked = 0

    def __call__(self, request: httpx.Request) -> None:
        found = re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=[^/]+/(\d{8})/([^/]+)/s3/aws4_request, "
            r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
            request.headers["authorization"],
        )
        assert found, request.headers["authorization"]
        day, region, names, signature = found.groups()
        path, _, query = request.url.raw_path.decode().partition("?")
        assert path == "/".join(quote(unquote(part), safe="~") for part in path.split("/"))
        pairs = sorted(
            (quote(unquote(name), safe="~"), quote(unquote(value), safe="~"))
            for name, _, value in (item.partition("=") for item in query.split("&") if item)
        )
        assert query == "&".join(f"{name}={value}" for name, value in pairs)
        assert request.headers["host"] == request.url.netloc.decode()
        assert {"host", "x-amz-date", "x-amz-content-sha256"} <= set(names.split(";"))
        payload = request.headers["x-amz-content-sha256"]
        if isinstance(request.stream, httpx.ByteStream):  # not a streamed file
            assert payload == hashlib.sha256(request.read()).hexdigest()
        header_lines = "".join(
            f"{name}:{' '.join(request.headers[name].split())}\n" for name in names.split(";")
        )
        canonical = "\n".join([request.method, path, query, header_lines, names, payload])
        scope = f"{day}/{region}/s3/aws4_request"
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                request.headers["x-amz-date"],
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        key = f"AWS4{self.secret}".encode()
        for part in (day, region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        assert hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() == signature
        self.checked += 1


def s3_store(server: S3Server, prefix: str, **options: Any) -> S3Store:
    return S3Store(
        server.endpoint_url,
        options.pop("bucket", server.bucket),
        Credentials(server.access_key_id, server.secret_access_key),
        prefix=prefix,
        **options,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "files")
        return
    server: S3Server = request.getfixturevalue("s3")
    signed = SignedAsSent(server.secret_access_key)
    client = httpx.Client(event_hooks={"request": [signed]})
    # A page of two keys makes delete_prefix go round several times.
    opened = s3_store(server, f"t-{uuid.uuid4().hex}", client=client, list_page_size=2)
    yield opened
    client.close()


def test_every_request_is_signed_as_it_is_sent(s3: S3Server, tmp_path: Path) -> None:
    signed = SignedAsSent(s3.secret_access_key)
    with httpx.Client(event_hooks={"request": [signed]}) as client:
        store = s3_store(s3, f"signed/{uuid.uuid4().hex}", client=client, list_page_size=1)
        source = tmp_path / "x"
        source.write_bytes(b"streamed")
        store.put_file(ODD_KEY, source, content_type="application/pdf")
        store.put_bytes("a b/c", b"bytes")
        assert store.open(ODD_KEY).read() == b"streamed"
        assert store.size("a b/c") == 5
        assert not store.exists("missing")  # HEAD of the object, then of the bucket
        store.delete("a b/c")
        assert store.delete_prefix("exports") == 1
    assert signed.checked == 10


def test_round_trip_of_bytes_and_files(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes(ODD_KEY, b"%PDF-1.7 first", content_type="application/pdf")
    assert store.exists(ODD_KEY)
    assert store.size(ODD_KEY) == 14
    with store.open(ODD_KEY) as stream:
        assert stream.size == 14
        assert stream.read() == b"%PDF-1.7 first"

    source = tmp_path / "source.bin"
    source.write_bytes(b"second version")
    store.put_file(ODD_KEY, source)
    assert source.read_bytes() == b"second version"  # a copy: the source stays
    with store.open(ODD_KEY) as stream:
        assert stream.read() == b"second version"

    store.put_bytes("kb/empty.txt", b"")
    assert store.size("kb/empty.txt") == 0
    assert store.open("kb/empty.txt").read() == b""


def test_a_20_mb_object_streams_both_ways(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(20 * 2**20 + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    tracemalloc.start()
    try:
        store.put_file("big/object.bin", source)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest, chunks = hashlib.sha256(), 0
        with store.open("big/object.bin") as stream:
            assert stream.size == len(data)
            for chunk in stream:
                assert len(chunk) <= CHUNK_BYTES
                digest.update(chunk)
                chunks += 1
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert chunks >= len(data) // CHUNK_BYTES
    # The object is 20 MB; neither direction holds more than a few chunks of it.
    assert upload_peak < 4 * 2**20, upload_peak
    assert download_peak < 4 * 2**20, download_peak


def test_delete_is_idempotent_and_leaves_other_keys(store: ObjectStore) -> None:
    store.put_bytes("kb/doc/a.md", b"a")
    store.put_bytes("kb/doc/b.md", b"b")
    store.delete("kb/doc/a.md")
    store.delete("kb/doc/a.md")
    store.delete("kb/doc")  # a prefix, not an object: nothing to delete
    assert not store.exists("kb/doc/a.md")
    assert store.open("kb/doc/b.md").read() == b"b"
    with pytest.raises(NotFound, match=re.escape("no stored object 'kb/doc/a.md'")):
        store.open("kb/doc/a.md")


def test_delete_prefix_removes_what_is_under_it_only(store: ObjectStore) -> None:
    for key in ("kb1/a", "kb1/doc/b", "kb1/doc/c", "kb1/doc/deep/d", "kb1/e"):
        store.put_bytes(key, key.encode())
    store.put_bytes("kb10/a", b"a sibling whose name starts the same")
    store.put_bytes("other/kb1/a", b"same name deeper down")
    assert store.delete_prefix("kb1") == 5
    assert not any(store.exists(key) for key in ("kb1/a", "kb1/doc/b", "kb1/doc/deep/d"))
    assert store.exists("kb10/a") and store.exists("other/kb1/a")
    assert store.delete_prefix("kb1") == 0
    assert store.delete_prefix("never-used") == 0


def test_missing_objects_are_not_found(store: ObjectStore) -> None:
    assert not store.exists("nothing/here.pdf")
    with pytest.raises(NotFound, match=re.escape("no stored object 'nothing/here.pdf'")):
        store.open("nothing/here.pdf")
    with pytest.raises(NotFound):
        store.size("nothing/here.pdf")


@pytest.mark.parametrize("key", TRAVERSALS)
def test_keys_that_would_leave_the_store_are_refused(
    store: ObjectStore, key: str, tmp_path: Path
) -> None:
    source = tmp_path / "x"
    source.write_bytes(b"x")
    operations: list[Callable[[], object]] = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_file(key, source),
        lambda: store.open(key),
        lambda: store.size(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.delete_prefix(key),
    ]
    for operation in operations:
        with pytest.raises(InvalidInput, match=r"invalid storage (key|prefix)"):
            operation()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["x"]  # nothing written


def test_a_symbolic_link_out_of_the_local_store_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    store = LocalStore(tmp_path / "files")
    store.put_bytes("kb/a.txt", b"a")
    (tmp_path / "files" / "kb" / "link").symlink_to(outside)
    with pytest.raises(InvalidInput, match="leads outside the store"):
        store.open("kb/link/secret.txt")
    with pytest.raises(InvalidInput, match="leads outside the store"):
        store.put_bytes("kb/link/new.txt", b"x")
    with pytest.raises(InvalidInput, match="leads outside the store"):
        store.delete_prefix("kb/link")
    assert sorted(path.name for path in outside.iterdir()) == ["secret.txt"]


def test_a_failed_local_write_keeps_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "files")
    store.put_bytes("kb/doc.pdf", b"version one")

    def disk_full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.put_bytes("kb/doc.pdf", b"version two, never complete")
    monkeypatch.undo()
    assert store.open("kb/doc.pdf").read() == b"version one"
    assert [path.name for path in (tmp_path / "files" / "kb").iterdir()] == ["doc.pdf"]
    with pytest.raises(FileNotFoundError):
        store.put_file("kb/doc.pdf", tmp_path / "no-such-upload")
    assert store.open("kb/doc.pdf").read() == b"version one"


def test_the_local_store_says_when_a_key_is_also_a_prefix(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "files")
    store.put_bytes("a/b", b"b")
    with pytest.raises(Conflict, match="other objects are stored under it"):
        store.put_bytes("a", b"a")
    with pytest.raises(Conflict, match="a part of its path is an object"):
        store.put_bytes("a/b/c", b"c")
    assert store.open("a/b").read() == b"b"


@pytest.fixture
def dead_endpoint() -> Iterator[str]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.slow  # the client retries each connection twice
def test_an_unreachable_server_is_service_unavailable(dead_endpoint: str, tmp_path: Path) -> None:
    store = S3Store(dead_endpoint, "citeline", Credentials("AKIDEXAMPLE", "hunter2-secret"))
    source = tmp_path / "x"
    source.write_bytes(b"x")
    for operation in (
        lambda: store.put_bytes("a/b", b"x"),
        lambda: store.put_file("a/b", source),
        lambda: store.open("a/b"),
        lambda: store.exists("a/b"),
        lambda: store.delete("a/b"),
        lambda: store.delete_prefix("a"),
    ):
        with pytest.raises(ServiceUnavailable) as failed:
            operation()
        message = failed.value.detail
        assert f"object storage at {dead_endpoint}/citeline is unreachable" in message
        assert "Connection refused" in message
        assert "hunter2" not in message and "AKIDEXAMPLE" not in message
        assert failed.value.retryable
    store.close()


def test_a_missing_bucket_is_named(s3: S3Server, tmp_path: Path) -> None:
    store = s3_store(s3, "", bucket="no-such-bucket")
    source = tmp_path / "x"
    source.write_bytes(b"x" * 100_000)
    for operation in (
        lambda: store.put_bytes("a/b", b"x"),
        lambda: store.put_file("a/b", source),
        lambda: store.open("a/b"),
        lambda: store.size("a/b"),
        lambda: store.exists("a/b"),
        lambda: store.delete("a/b"),
        lambda: store.delete_prefix("a"),
    ):
        with pytest.raises(ServiceUnavailable) as failed:
            operation()
        assert "the bucket 'no-such-bucket' does not exist" in failed.value.detail
        assert "CITELINE_S3_BUCKET" in failed.value.detail
        assert not failed.value.retryable
    store.close()


def test_an_unknown_access_key_is_refused_without_echoing_secrets(s3: S3Server) -> None:
    store = S3Store(
        s3.endpoint_url, s3.bucket, Credentials("AKIAUNKNOWN", "hunter2-secret"), prefix="p"
    )
    for operation in (lambda: store.put_bytes("a", b"x"), lambda: store.exists("a")):
        with pytest.raises(ServiceUnavailable) as failed:
            operation()
        message = failed.value.detail
        assert "refused the request (403" in message
        assert "CITELINE_S3_ACCESS_KEY_ID" in message
        assert "hunter2" not in message
        assert not failed.value.retryable
    store.close()


def test_prefixes_keep_stores_apart_in_one_bucket(s3: S3Server) -> None:
    run = uuid.uuid4().hex
    first, second = s3_store(s3, f"{run}/a"), s3_store(s3, f"{run}/b")
    whole_bucket = s3_store(s3, "")
    first.put_bytes("doc.txt", b"first")
    second.put_bytes("doc.txt", b"second")
    assert whole_bucket.open(f"{run}/a/doc.txt").read() == b"first"
    assert first.delete_prefix("doc.txt") == 0  # a key, not a prefix
    first.delete("doc.txt")
    assert second.open("doc.txt").read() == b"second"
    assert whole_bucket.delete_prefix(run) == 1
    for store in (first, second, whole_bucket):
        store.close()


# Through the API, with a worker, on the S3 backend.


@pytest.fixture
def settings(settings: Settings, s3: S3Server) -> Settings:
    """The usual test settings, with originals in s3rver under a prefix of this test's own."""
    return settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_endpoint_url": s3.endpoint_url,
            "s3_bucket": s3.bucket,
            "s3_access_key_id": s3.access_key_id,
            "s3_secret_access_key": SecretStr(s3.secret_access_key),
            "s3_prefix": f"api-{uuid.uuid4().hex}",
        }
    )


def documents(api: str, kb_id: str) -> dict[str, dict[str, Any]]:
    listed = httpx.get(f"{api}/v1/knowledge-bases/{kb_id}/documents").json()["documents"]
    return {d["source"]: d for d in listed}


def settled(api: str, kb_id: str) -> dict[str, dict[str, Any]] | None:
    docs = documents(api, kb_id)
    return docs if all(d["status"] in ("ready", "failed") for d in docs.values()) else None


def stored_keys(resources: Resources) -> dict[str, str]:
    with resources.sessions() as session:
        rows = session.execute(text("SELECT source, storage_key FROM documents")).all()
    return {source: key for source, key in rows}


@pytest.mark.slow
def test_uploads_are_ingested_from_s3_and_downloaded_again(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    store = resources.store
    assert isinstance(store, S3Store)
    created = httpx.post(f"{api_url}/v1/knowledge-bases", json={"name": "s3-docs"})
    kb = created.json()["id"]
    files = {
        "guide.md": b"# Guide\n\nInstall packages with apt.\n",
        "manual.pdf": pdf_bytes(["The kernel page.", "Networking is on page two."]),
        "Αναφορά 报告.txt": "Σημειώσεις για το dpkg. 关于 dpkg 的笔记。".encode(),  # noqa: RUF001
    }
    uploaded = httpx.post(
        f"{api_url}/v1/knowledge-bases/{kb}/documents",
        files=[("files", (name, data)) for name, data in files.items()],
        timeout=60,
    )
    assert uploaded.status_code == 202, uploaded.text
    start_worker("fork")  # a forked work-horse opens its own connections to the store
    docs = wait_for(lambda: settled(api_url, kb), timeout=120)
    assert isinstance(docs, dict)
    assert {name: doc["status"] for name, doc in docs.items()} == dict.fromkeys(files, "ready")

    keys = stored_keys(resources)
    for name, data in files.items():
        assert keys[name].startswith(f"{kb}/{docs[name]['id']}/")
        assert store.size(keys[name]) == len(data)
        url = f"{api_url}/v1/knowledge-bases/{kb}/documents/{docs[name]['id']}/file"
        assert httpx.get(url).content == data  # gzipped when over 1 KiB, as every response
        response = httpx.get(url, headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert response.headers["content-disposition"] == (
        "attachment; filename*=utf-8''" + quote("Αναφορά 报告.txt")
    )
    pdf = httpx.get(f"{api_url}/v1/knowledge-bases/{kb}/documents/{docs['manual.pdf']['id']}/file")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="manual.pdf"'
    # Nothing but the (empty) upload scratch space is left in the data dir.
    local = resources.settings.data_path / "files"
    assert [path.relative_to(local).as_posix() for path in local.rglob("*")] == [".incoming"]

    replaced = httpx.post(
        f"{api_url}/v1/knowledge-bases/{kb}/documents",
        files=[("files", ("guide.md", b"# Guide\n\nUpgrade with apt full-upgrade.\n"))],
    )
    assert replaced.status_code == 202
    wait_for(lambda: stored_keys(resources)["guide.md"] != keys["guide.md"], timeout=60)
    assert not store.exists(keys["guide.md"])  # the old version's file went with it
    assert store.exists(stored_keys(resources)["guide.md"])

    deleted = httpx.delete(
        f"{api_url}/v1/knowledge-bases/{kb}/documents/{docs['manual.pdf']['id']}"
    )
    assert deleted.status_code == 204
    assert not store.exists(keys["manual.pdf"])
    remaining = stored_keys(resources)
    assert httpx.delete(f"{api_url}/v1/knowledge-bases/{kb}").status_code == 204
    assert not any(store.exists(key) for key in remaining.values())


@pytest.mark.slow
def test_storage_down_gives_503_and_changes_nothing(
    resources: Resources, api_url: str, dead_endpoint: str, start_worker: WorkerFactory
) -> None:
    kb = httpx.post(f"{api_url}/v1/knowledge-bases", json={"name": "docs"}).json()["id"]
    stored = httpx.post(
        f"{api_url}/v1/knowledge-bases/{kb}/documents",
        files=[("files", ("kept.md", b"# Kept\n\nStored while the store was up.\n"))],
    )
    assert stored.status_code == 202
    kept = stored.json()["documents"][0]["document_id"]

    down = S3Store(dead_endpoint, "citeline", Credentials("AKIDEXAMPLE", "hunter2-secret"))
    broken = Resources(**{**resources.__dict__, "store": down})
    with LiveServer(create_app(broken)) as url:
        refused = httpx.post(
            f"{url}/v1/knowledge-bases/{kb}/documents",
            files=[("files", ("new.md", b"# New\n\ntext")), ("files", ("kept.md", b"# v2"))],
            timeout=30,
        )
        assert refused.status_code == 503, refused.text
        assert "is unreachable" in refused.json()["detail"]
        assert "hunter2" not in refused.text
        download = httpx.get(f"{url}/v1/knowledge-bases/{kb}/documents/{kept}/file", timeout=30)
        assert download.status_code == 503
        assert f"object storage at {dead_endpoint}/citeline" in download.json()["detail"]
    down.close()
    assert list(documents(api_url, kb)) == ["kept.md"]  # the failed upload left no row
    scratch = resources.settings.data_path / "files" / ".incoming"
    assert list(scratch.iterdir()) == []  # nor scratch files

    # A worker that cannot reach the store fails the job, saying why, after its attempts.
    start_worker("inprocess", s3_endpoint_url=dead_endpoint)
    docs = wait_for(lambda: settled(api_url, kb), timeout=120)
    assert isinstance(docs, dict)
    assert docs["kept.md"]["status"] == "failed"
    assert f"object storage at {dead_endpoint}/citeline is unreachable" in docs["kept.md"]["error"]
