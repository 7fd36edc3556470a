"""The pure parts of storage: the SigV4 signer against AWS's published examples, the key
rules, and the storage settings."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from citeline.errors import InvalidInput, ServiceUnavailable
from citeline.settings import Settings
from citeline.storage import LocalStore, S3Store, check_key, store_for
from citeline.storage.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    canonical_query,
    canonical_request,
    sign,
    uri_encode,
)

# AWS's Signature Version 4 test suite (aws-sig-v4-test-suite: get-vanilla, ...).
SUITE = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
# The S3 API Reference's examples ("Signature Calculations for the Authorization Header:
# Transferring Payload in a Single Chunk").
S3_DOCS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
S3_DOCS_TIME = datetime(2013, 5, 24, tzinfo=UTC)
S3_DOCS_HOST = "examplebucket.s3.amazonaws.com"


def signature(headers: dict[str, str]) -> str:
    return headers["authorization"].rpartition("Signature=")[2]


@pytest.mark.parametrize(
    ("method", "query", "expected"),
    [
        ("GET", "", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        (
            "GET",
            canonical_query([("Param2", "value2"), ("Param1", "value1")]),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        ("POST", "", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ],
    ids=["get-vanilla", "get-vanilla-query-order-key-case", "post-vanilla"],
)
def test_the_aws_sigv4_test_suite(method: str, query: str, expected: str) -> None:
    headers = sign(
        method,
        "example.amazonaws.com",
        "/",
        query,
        {},
        EMPTY_SHA256,
        SUITE,
        "us-east-1",
        SUITE_TIME,
        service="service",
    )
    assert headers["x-amz-date"] == "20150830T123600Z"
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={expected}"
    )


def test_the_suite_canonical_request_of_get_vanilla() -> None:
    canonical, signed = canonical_request(
        "GET",
        "/",
        "",
        {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
        EMPTY_SHA256,
    )
    assert signed == "host;x-amz-date"
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    )


def test_s3_get_object_example() -> None:
    headers = {"range": "bytes=0-9", "x-amz-content-sha256": EMPTY_SHA256}
    canonical, _ = canonical_request(
        "GET",
        "/test.txt",
        "",
        {**headers, "host": S3_DOCS_HOST, "x-amz-date": "20130524T000000Z"},
        EMPTY_SHA256,
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    )
    signed = sign(
        "GET",
        S3_DOCS_HOST,
        "/test.txt",
        "",
        headers,
        EMPTY_SHA256,
        S3_DOCS,
        "us-east-1",
        S3_DOCS_TIME,
    )
    assert signed["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_s3_put_object_example_with_a_key_that_needs_encoding() -> None:
    body = b"Welcome to Amazon S3."
    digest = hashlib.sha256(body).hexdigest()
    assert digest == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    path = "/" + uri_encode("test$file.text", keep_slash=True)
    assert path == "/test%24file.text"
    headers = {
        "date": "Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": digest,
    }
    signed = sign(
        "PUT", S3_DOCS_HOST, path, "", headers, digest, S3_DOCS, "us-east-1", S3_DOCS_TIME
    )
    assert (
        "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
        in (signed["authorization"])
    )
    assert signature(signed) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ([("lifecycle", "")], "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        (
            [("prefix", "J"), ("max-keys", "2")],
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ],
    ids=["get-bucket-lifecycle", "list-objects"],
)
def test_s3_bucket_examples(query: list[tuple[str, str]], expected: str) -> None:
    headers = {"x-amz-content-sha256": EMPTY_SHA256}
    query_string = canonical_query(query)
    signed = sign(
        "GET",
        S3_DOCS_HOST,
        "/",
        query_string,
        headers,
        EMPTY_SHA256,
        S3_DOCS,
        "us-east-1",
        S3_DOCS_TIME,
    )
    assert signature(signed) == expected


def test_encoding_follows_aws_uri_encode() -> None:
    assert uri_encode("a b/ü+~_-.!*'()", keep_slash=True) == "a%20b/%C3%BC%2B~_-.%21%2A%27%28%29"
    assert uri_encode("a/b") == "a%2Fb"
    assert canonical_query([("prefix", "t1/p/"), ("delete", "")]) == "delete=&prefix=t1%2Fp%2F"


def test_credentials_never_show_the_secret() -> None:
    assert "wJalr" not in repr(S3_DOCS)
    store = S3Store("http://127.0.0.1:9", "bucket", S3_DOCS, prefix="/a/")
    assert "wJalr" not in repr(store) and "AKIA" not in repr(store)
    assert store.prefix == "a"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "empty"),
        ("../etc/passwd", "'..'"),
        ("a/../../b", "'..'"),
        ("a/./b", "'.'"),
        ("/etc/passwd", "empty segment"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\\..\\b", "backslash"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        (".incoming/x", "starts with '.'"),
        ("a/.tmp-123", "starts with '.'"),
        ("x" * 256, "over 255 bytes"),
        ("a/" * 512 + "b", "over 1024 bytes"),
        ("\ud800", "not valid Unicode"),
    ],
)
def test_keys_that_could_leave_the_store_are_refused(key: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match="invalid storage key") as refused:
        check_key(key)
    assert problem in refused.value.detail


def test_keys_may_be_any_other_text() -> None:
    for key in ("a", "kb/doc/abc.pdf", "报告 Αναφορά #1 (v2)+%&=?'!*.pdf", "a.b/c..d/e."):
        assert check_key(key) == key


def s3_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "storage_backend": "s3",
        "s3_endpoint_url": "https://s3.example.test/",
        "s3_bucket": "citeline",
        "s3_access_key_id": "AKIDEXAMPLE",
        "s3_secret_access_key": "very-secret",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_the_s3_backend_needs_endpoint_bucket_and_credentials() -> None:
    with pytest.raises(ValidationError) as refused:
        s3_settings(s3_bucket=None, s3_secret_access_key="")
    message = str(refused.value)
    assert (
        "CITELINE_STORAGE_BACKEND=s3 needs CITELINE_S3_BUCKET, CITELINE_S3_SECRET_ACCESS_KEY"
        in (message)
    )
    assert "very-secret" not in message


def test_a_refused_setting_never_echoes_the_secret() -> None:
    with pytest.raises(ValidationError) as refused:
        s3_settings(s3_endpoint_url=None, s3_secret_access_key="hunter2")
    assert "hunter2" not in str(refused.value)
    assert "hunter2" not in repr(s3_settings(s3_secret_access_key="hunter2"))


@pytest.mark.parametrize("endpoint", ["s3.example.test", "ftp://s3.example.test"])
def test_the_endpoint_must_be_an_http_url(endpoint: str) -> None:
    with pytest.raises(ValidationError, match=r"must be an http\(s\) URL"):
        s3_settings(s3_endpoint_url=endpoint)


def test_the_endpoint_may_not_carry_credentials() -> None:
    with pytest.raises(ValidationError, match="takes no credentials") as refused:
        s3_settings(s3_endpoint_url="https://key:hunter2@s3.example.test")
    assert "hunter2" not in str(refused.value)


def test_the_prefix_is_normalised_and_checked() -> None:
    assert s3_settings(s3_prefix="/tenant-a/exports/").s3_prefix == "tenant-a/exports"
    with pytest.raises(ValidationError, match="CITELINE_S3_PREFIX"):
        s3_settings(s3_prefix="a/../b")


def test_store_for_builds_the_configured_store(tmp_path: Path) -> None:
    local = store_for(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalStore) and local.root == tmp_path.resolve() / "files"
    remote = store_for(s3_settings(s3_prefix="t", s3_region="eu-west-1"))
    assert isinstance(remote, S3Store)
    assert remote.location == "https://s3.example.test/citeline"
    assert (remote.prefix, remote.region) == ("t", "eu-west-1")
    remote.close()


def _flaky_s3(failures: int, status: int = 500) -> tuple[S3Store, list[str]]:
    """An S3 endpoint (outside the system: a test double is fair) that fails `failures`
    times with `status`, then answers; and the methods it was sent."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) <= failures:
            return httpx.Response(status, content=b"<Error><Code>InternalError</Code></Error>")
        if request.method == "POST":
            return httpx.Response(200, content=b"<DeleteResult/>")
        return httpx.Response(200, content=b"body")

    client = httpx.Client(transport=httpx.MockTransport(answer))
    return S3Store("http://s3.test", "bucket", SUITE, client=client), seen


def test_s3_retries_an_internal_error_on_requests_that_can_be_repeated() -> None:
    store, seen = _flaky_s3(failures=2)
    store._delete_many(["a", "b"])
    assert seen == ["POST", "POST", "POST"]


def test_s3_gives_up_after_its_retries_with_a_clear_error() -> None:
    store, seen = _flaky_s3(failures=5, status=503)
    with pytest.raises(ServiceUnavailable, match="answered 503"):
        store._delete_many(["a"])
    assert len(seen) == 3


def test_s3_does_not_repeat_a_put() -> None:
    store, seen = _flaky_s3(failures=1)
    with pytest.raises(ServiceUnavailable, match="answered 500"):
        store.put_bytes("a", b"x")
    assert seen == ["PUT"]
