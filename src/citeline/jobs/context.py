"""What a running job function sees: its arguments, the process's connections and services,
and ways to report progress and events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import redis
from sqlalchemy.orm import Session, sessionmaker

from citeline.db.base import utcnow
from citeline.jobs.events import Event, EventLog
from citeline.jobs.heartbeat import Heartbeat
from citeline.jobs.models import JobState
from citeline.jobs.queue import cancel_key
from citeline.settings import Settings

if TYPE_CHECKING:
    from citeline.jobs.fanout import Child, FailureRule, FollowUp

ServicesT_co = TypeVar("ServicesT_co", covariant=True)
FanOutHook = Callable[["JobContext[Any]", "Sequence[Child]", "FollowUp", "FailureRule"], uuid.UUID]
ResumeHook = Callable[[uuid.UUID, Mapping[str, Any] | None], Event | None]


class JobCancelled(Exception):
    """Raised inside a job whose cancellation was requested; the runtime stops it cleanly."""


class JobContext(Generic[ServicesT_co]):
    """Handed to every job function; all writes are guarded by the job's attempt and state.

    `services` is whatever the process's composition root built for its jobs; a job function
    names the part it needs as a Protocol of its own domain (`JobContext[AnswerDeps]`)."""

    def __init__(
        self,
        *,
        job_id: uuid.UUID,
        kind: str,
        attempt: int,
        max_attempts: int = 1,
        args: Mapping[str, Any],
        owner: str | None,
        events: EventLog,
        workspace_id: str | None = None,
        connection: redis.Redis,
        sessions: sessionmaker[Session],
        settings: Settings,
        services: ServicesT_co,
        heartbeat: Heartbeat | None = None,
        parent_id: uuid.UUID | None = None,
        fan_out: FanOutHook | None = None,
        resume: ResumeHook | None = None,
    ) -> None:
        self.job_id = job_id
        self.kind = kind
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.args = dict(args)
        self.owner = owner
        self.workspace_id = workspace_id
        self.events = events
        self.connection = connection
        self.sessions = sessions
        self.settings = settings
        self.services = services
        self.parent_id = parent_id  # the job waiting for this one, if any
        self._heartbeat = heartbeat
        self._fan_out = fan_out
        self._resume = resume
        self.waiting_on: uuid.UUID | None = None  # the group this job fanned out
        self.paused: str | None = None  # "suspended" or "deferred" once the function paused

    def fan_out(
        self,
        children: Sequence[Child],
        *,
        then: FollowUp,
        on_failure: FailureRule = "continue",
    ) -> uuid.UUID:
        """Start `children` and wait: this job ends as `then` does, which runs once when the
        last child has ended. Return right after calling this; the group's id."""
        if self._fan_out is None:
            raise RuntimeError("this job cannot fan out: it runs outside a worker")
        self.check_cancelled()
        self.waiting_on = self._fan_out(self, children, then, on_failure)
        return self.waiting_on

    def suspend(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        until: datetime | None = None,
        still_waiting: Callable[[], bool] | None = None,
    ) -> Event:
        """Pause this job until `Lifecycle.resume` queues it again (a person's decision, say):
        it holds no worker meanwhile, and its next attempt runs the function from the top.
        With `until`, the reaper resumes it itself once that time has passed. `still_waiting`
        is asked once the pause is recorded: a decision that came while the job was pausing
        found nothing to resume, so when it answers False the job is queued again at once.
        Return right after calling this."""
        self.check_cancelled()
        event = self.events.append(
            self.job_id,
            "suspended",
            data,
            changes={"state": JobState.suspended.value, "run_at": until},
            if_states=[JobState.started],
            if_attempt=self.attempt,
        )
        if event is None:
            raise JobCancelled(f"job {self.job_id} is no longer running this attempt")
        self.paused = "suspended"
        if still_waiting is not None and not still_waiting():
            if self._resume is None:
                raise RuntimeError("this job cannot resume itself: it runs outside a worker")
            self._resume(self.job_id, {"reason": "decided while the job was pausing"})
        return event

    def defer(self, seconds: float, reason: str) -> Event:
        """Run this job again in about `seconds` (its turn has not come: a limit on how many
        may run at once, say), without using up an attempt. Return right after calling this."""
        self.check_cancelled()
        now = utcnow()
        event = self.events.append(
            self.job_id,
            "deferred",
            {"attempt": self.attempt, "delay_seconds": seconds, "reason": reason},
            changes={
                "state": JobState.scheduled.value,
                "attempt": self.attempt + 1,
                "max_attempts": self.max_attempts + 1,
                "run_at": now + timedelta(seconds=seconds),
            },
            if_states=[JobState.started],
            if_attempt=self.attempt,
        )
        if event is None:
            raise JobCancelled(f"job {self.job_id} is no longer running this attempt")
        self.paused = "deferred"
        return event

    def emit_parent(self, type_: str, data: Mapping[str, Any] | None = None) -> Event | None:
        """Append an event to the stream of the job waiting for this one (a report's stream,
        for one of its sections), while that job still waits; None when it no longer does."""
        if self.parent_id is None:
            return None
        self.check_cancelled()
        return self.events.append(
            self.parent_id, type_, data, if_states=[JobState.started, JobState.waiting]
        )

    @contextmanager
    def lease(self, seconds: float) -> Iterator[None]:
        """Around a call that keeps the GIL for long (llama.cpp loading a model holds it for
        seconds), during which the heartbeat cannot beat: the job stays alive for `seconds`
        instead of being taken for dead by the reaper."""
        beat = self._heartbeat
        if beat is None:
            yield
            return
        beat.hold(seconds)
        try:
            yield
        finally:
            beat.release()

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    def emit(self, type_: str, data: Mapping[str, Any] | None = None) -> Event:
        """Append a typed event to this job's stream."""
        self.check_cancelled()
        event = self.events.append(
            self.job_id,
            type_,
            data,
            if_states=[JobState.started],
            if_attempt=self.attempt,
        )
        if event is None:
            raise JobCancelled(f"job {self.job_id} is no longer running this attempt")
        return event

    def progress(self, fraction: float, message: str | None = None) -> Event:
        """Report progress in [0, 1], stored on the job and sent as a `progress` event."""
        self.check_cancelled()
        fraction = min(1.0, max(0.0, float(fraction)))
        event = self.events.append(
            self.job_id,
            "progress",
            {"progress": fraction, "message": message},
            changes={"progress": fraction, "progress_message": message},
            if_states=[JobState.started],
            if_attempt=self.attempt,
        )
        if event is None:
            raise JobCancelled(f"job {self.job_id} is no longer running this attempt")
        return event

    @property
    def cancel_requested(self) -> bool:
        return bool(self.connection.exists(cancel_key(self.job_id)))

    def check_cancelled(self) -> None:
        """Raise JobCancelled if someone asked to stop this job; call it between units of work."""
        if self.cancel_requested:
            raise JobCancelled(f"job {self.job_id} was cancelled")
