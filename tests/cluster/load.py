"""The cluster's clients: a bounded load generator and Server-Sent Events readers that fail
over to another API host with `Last-Event-ID`."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import redis

from citeline.errors import CitelineError
from tests.cluster.cluster import Cluster

DOCUMENT = (
    "Document {n} of the cluster test.\n\n"
    "Host {n} keeps its packages current with the release named in its sources list. "
    "An upgrade reads the new release's package lists, then installs the new versions. "
    "Passage {n} ends here, and the index must keep every word of it.\n"
)


@dataclass
class Load:
    """Answer-sized jobs (`test.work`) and document ingestions over HTTP, at a steady pace,
    at most `limit` of them, until stopped."""

    cluster: Cluster
    kb_id: str
    interval: float = 0.4
    limit: int = 400
    work_seconds: float = 0.5
    submitted: list[uuid.UUID] = field(default_factory=list)
    documents: dict[str, uuid.UUID | None] = field(default_factory=dict)  # accepted: its job
    refused: int = 0  # submissions refused while a fault lasted (the client would retry)
    refused_documents: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cluster-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        count = 0
        while not self._stop.wait(self.interval) and count < self.limit:
            count += 1
            if count % 4 == 0:
                self._ingest(count)
            else:
                self._work()

    def _work(self) -> None:
        try:
            job = self.cluster.root.jobs().enqueue(
                "test.work", {"seconds": self.work_seconds}, max_attempts=5
            )
        except (CitelineError, redis.RedisError):
            self.refused += 1
            return
        self.submitted.append(job.id)

    def _ingest(self, n: int) -> None:
        name = f"doc-{n:04d}.txt"
        for api in self.cluster.apis:
            try:
                with self.cluster.client(api) as client:
                    response = client.post(
                        f"/v1/knowledge-bases/{self.kb_id}/documents",
                        files=[("files", (name, DOCUMENT.format(n=n).encode(), "text/plain"))],
                    )
            except httpx.HTTPError:
                continue
            if response.status_code == 202:
                # No job: an earlier try that looked refused (an error after the upload was
                # stored) had it queued already, and this one found it unchanged.
                job_ids = [uuid.UUID(j) for j in response.json()["job_ids"]]
                self.documents[name] = job_ids[0] if job_ids else None
                self.submitted.extend(job_ids)
                return
        self.refused += 1
        self.refused_documents.add(name)


@dataclass
class Follower:
    """Follows one job's events, starting on `apis[0]`; when a stream breaks it reconnects
    to the next API host with the last id it saw."""

    cluster: Cluster
    job_id: uuid.UUID
    apis: list[str]
    seen: list[int] = field(default_factory=list)
    reconnects: int = 0
    ended: str | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout)

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        attempt = 0
        while self.ended is None and time.monotonic() < deadline:
            api = self.apis[min(attempt, len(self.apis) - 1)]
            headers = {"Last-Event-ID": str(self.seen[-1])} if self.seen else {}
            try:
                with self.cluster.client(api) as client, client.stream(
                    "GET", f"/v1/jobs/{self.job_id}/events", headers=headers,
                    timeout=httpx.Timeout(10.0, read=5.0),
                ) as response:  # fmt: skip
                    self._read(response.iter_lines())
            except httpx.HTTPError:
                pass
            if self.ended is None:
                attempt += 1
                self.reconnects += 1
                time.sleep(0.2)

    def _read(self, lines: object) -> None:
        event_id: int | None = None
        event_type = ""
        for line in lines:  # type: ignore[attr-defined]
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("event:"):
                event_type = line[6:].strip()
            elif line == "" and event_id is not None:
                self.seen.append(event_id)
                if event_type in ("finished", "failed", "stopped"):
                    self.ended = event_type
                    return
                event_id, event_type = None, ""
