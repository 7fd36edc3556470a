"""Asking the model: one `llm.chat` job on the queue (workers keep the local model loaded),
waited for here. The API process never loads a chat model itself."""

from __future__ import annotations

import time
import uuid
from typing import Any

import redis
from rq import Worker

from citeline.errors import ProviderError, ServiceUnavailable
from citeline.jobs.models import JobState
from citeline.jobs.queue import events_key
from citeline.jobs.service import JobService
from citeline.llm import ChatRequest

BLOCK_MS = 1000
NO_WORKER_GRACE = 30.0  # seconds a queued reading waits for some worker to appear
CHAT_KIND = "llm.chat"  # the model service's generation job


class JobAsk:
    """Sends each request to `model` (an alias) as a chat job and returns its text."""

    def __init__(
        self,
        jobs: JobService,
        connection: redis.Redis,
        model: str,
        timeout: float,
        conversation: str | None = None,
    ) -> None:
        self.jobs = jobs
        self.connection = connection
        self.model = model
        self.timeout = timeout
        self.conversation = conversation

    def __call__(self, request: ChatRequest) -> str:
        args: dict[str, Any] = {
            "model": self.model,
            "request": request.model_dump(mode="json", exclude_unset=True),
            "conversation": self.conversation,
        }
        job = self.jobs.enqueue(CHAT_KIND, args)
        state = self._wait(job.id)
        if state is not JobState.finished:
            error = self.jobs.get(job.id).error or state.value
            raise ProviderError(f"reading the message failed: {error}", provider=self.model)
        result = self.jobs.result(job.id)
        return str(result.get("text") or "") if isinstance(result, dict) else ""

    def _wait(self, job_id: uuid.UUID) -> JobState:
        """Block until the job ends, woken by its event stream; the row decides."""
        began = time.monotonic()
        key = events_key(job_id)
        last = "0-0"
        while True:
            state = JobState(self.jobs.get(job_id).state)
            if state.terminal:
                return state
            waited = time.monotonic() - began
            if waited > self.timeout:
                self.jobs.cancel(job_id, "the agent builder stopped waiting for the model")
                raise ServiceUnavailable(
                    f"the model did not read the message within {self.timeout:.0f}s"
                )
            if state is JobState.queued and waited > NO_WORKER_GRACE and not self._workers():
                self.jobs.cancel(job_id, "no worker is running")
                raise ServiceUnavailable(
                    "no worker is running to read the message; start `citeline worker`, or "
                    "send a structured answer"
                )
            try:
                found: Any = self.connection.xread({key: last}, count=100, block=BLOCK_MS)
            except redis.RedisError as exc:
                raise ServiceUnavailable(f"Redis unavailable: {exc}") from exc
            for _stream, entries in found or []:
                if entries:
                    last = entries[-1][0]

    def _workers(self) -> int:
        try:
            return int(Worker.count(connection=self.connection))
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"Redis unavailable: {exc}") from exc
