"""A real S3-compatible server for the tests: `s3rver` from npm (pinned in tests/s3), run with
Node on a loopback port, with one bucket. It accepts any well-formed SigV4 signature (it does
not compute them), so the signer is checked separately: against AWS's published examples
(tests/unit/test_storage_parts.py) and, in test_storage, against each request as sent."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for

S3_DIR = Path(__file__).resolve().parent / "s3"
BUCKET = "citeline"
ACCESS_KEY_ID = "S3RVER"  # the one account s3rver knows
SECRET_ACCESS_KEY = "S3RVER"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str


@contextmanager
def run_s3rver() -> Iterator[S3Server]:
    """Start s3rver (installing its node_modules when missing); stop it on exit."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("the S3 server needs Node.js, which is not installed")
    _install()
    workdir = Path(tempfile.mkdtemp(prefix="cl-s3-"))
    log = workdir / "s3rver.log"
    command = [
        node,
        # s3rver makes continuation tokens with DES, which Node 17+ keeps in OpenSSL's legacy
        # provider: without it a truncated listing answers 500.
        "--openssl-legacy-provider",
        str(S3_DIR / "node_modules" / "s3rver" / "bin" / "s3rver.js"),
        *("-d", str(workdir / "data"), "-a", "127.0.0.1", "-p", "0", "-s"),
        *("--configure-bucket", BUCKET),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        found = wait_for(
            lambda: process.poll() is not None or _listening(log.read_text()), timeout=30
        )
        if process.poll() is not None or not isinstance(found, str):
            raise RuntimeError(f"s3rver exited:\n{log.read_text()}")
        wait_for(lambda: _answers(found), timeout=30)
        yield S3Server(found, BUCKET, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _listening(text: str) -> str | None:
    match = re.search(r"listening on ([\d.]+):(\d+)", text)
    return f"http://{match[1]}:{match[2]}" if match else None


def _install() -> None:
    if (S3_DIR / "node_modules" / "s3rver" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("tests/s3/node_modules is missing and npm is not installed to run npm ci")
    command = [npm, "ci", "--prefix", str(S3_DIR), "--no-audit", "--no-fund"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.skip(f"tests/s3/node_modules is missing and npm ci failed: {result.stderr[-800:]}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.TransportError:
        return False
