"""The circuit breaker, the retry policy and `guarded_stream`, with a fake clock and a scripted
provider (the Redis concurrency limit is tested in tests/integration)."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Generator, Iterator

import pytest

from citeline.errors import InvalidInput, ProviderError
from citeline.llm.messages import ChatEvent, Finish, FinishReason, TextDelta, Usage
from citeline.llm.resilience import (
    BreakerState,
    CircuitBreaker,
    RetryPolicy,
    breaker_for,
    guarded_stream,
)

ENDPOINT = "test:endpoint"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_breaker(clock: FakeClock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(ENDPOINT, failure_threshold=threshold, cool_down_seconds=30, clock=clock)


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state (a call, so mypy does not narrow it across transitions)."""
    return breaker.state


def open_breaker(clock: FakeClock) -> CircuitBreaker:
    breaker = make_breaker(clock)
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    return breaker


def test_breaker_opens_at_the_threshold_and_refuses_with_a_retryable_error() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert state(breaker) is BreakerState.closed
    breaker.before_call()
    breaker.record_failure()
    assert state(breaker) is BreakerState.open

    clock.now += 10
    with pytest.raises(ProviderError) as refused:
        breaker.before_call()
    assert refused.value.retryable
    assert refused.value.provider == ENDPOINT
    assert "circuit open after 3 failures; retry in 20.0 s" in str(refused.value)


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = make_breaker(FakeClock())
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert state(breaker) is BreakerState.closed
    assert breaker.failures == 2


def test_half_open_lets_one_trial_through_and_its_success_closes() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.now += 30
    assert state(breaker) is BreakerState.half_open

    breaker.before_call()  # the trial
    with pytest.raises(ProviderError, match="trial call is running"):
        breaker.before_call()
    breaker.record_success()

    assert state(breaker) is BreakerState.closed
    assert breaker.failures == 0
    breaker.before_call()
    breaker.before_call()


def test_a_failed_trial_reopens_for_another_cool_down() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.now += 30
    breaker.before_call()
    breaker.record_failure()

    assert state(breaker) is BreakerState.open
    clock.now += 29
    with pytest.raises(ProviderError, match="circuit open"):
        breaker.before_call()
    clock.now += 1
    breaker.before_call()
    assert state(breaker) is BreakerState.half_open


def test_an_abandoned_trial_lets_the_next_caller_try() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.now += 30
    breaker.before_call()
    breaker.record_abandoned()
    breaker.before_call()
    assert state(breaker) is BreakerState.half_open


def test_half_open_admits_exactly_one_of_many_concurrent_callers() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.now += 30
    start = threading.Barrier(8)
    admitted: list[bool] = []

    def call() -> None:
        start.wait(timeout=5)
        try:
            breaker.before_call()
        except ProviderError:
            admitted.append(False)
        else:
            admitted.append(True)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(admitted) == [False] * 7 + [True]


def test_breaker_for_returns_one_breaker_per_endpoint() -> None:
    first = breaker_for("test:registry-a", 5, 30.0)
    assert breaker_for("test:registry-a", 5, 30.0) is first
    assert breaker_for("test:registry-b", 5, 30.0) is not first


def test_retry_delays_are_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(attempts=5, base_seconds=0.5, max_seconds=3.0, rng=random.Random(7))
    for index, cap in enumerate([0.5, 1.0, 2.0, 3.0, 3.0, 3.0]):
        delays = [policy.delay(index) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # jitter spreads over the whole range
        assert min(delays) < cap * 0.2
    with pytest.raises(ValueError, match="at least one attempt"):
        RetryPolicy(attempts=0, base_seconds=0.5)


# guarded_stream, against a provider that plays one script per attempt


HELLO = TextDelta(text="Hello")
DONE = Finish(reason=FinishReason.stop, usage=Usage())
Script = list[ChatEvent | BaseException]


class ScriptedProvider:
    """Each call to `open` plays the next script: its events, then raises its exception."""

    def __init__(self, *scripts: Script) -> None:
        self.scripts = list(scripts)
        self.calls = 0
        self.closed = 0

    def open(self) -> Iterator[ChatEvent]:
        script = self.scripts[self.calls]
        self.calls += 1
        return self._play(script)

    def _play(self, script: Script) -> Iterator[ChatEvent]:
        try:
            for item in script:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closed += 1


def overloaded() -> ProviderError:
    return ProviderError("overloaded", provider=ENDPOINT, retryable=True, status=503)


def run(
    provider: ScriptedProvider, breaker: CircuitBreaker, attempts: int = 3
) -> tuple[Iterator[ChatEvent], list[float]]:
    delays: list[float] = []
    policy = RetryPolicy(attempts=attempts, base_seconds=0.5, rng=random.Random(1))
    events = guarded_stream(
        ENDPOINT, provider.open, breaker=breaker, retry=policy, limit=None, sleep=delays.append
    )
    return events, delays


def test_retries_retryable_errors_before_the_first_event_then_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = ScriptedProvider([overloaded()], [overloaded()], [HELLO, DONE])
    breaker = make_breaker(FakeClock(), threshold=5)
    events, delays = run(provider, breaker)

    with caplog.at_level(logging.WARNING, logger="citeline.llm.resilience"):
        assert list(events) == [HELLO, DONE]

    assert provider.calls == 3
    assert len(delays) == 2
    assert 0 <= delays[0] <= 0.5 and 0 <= delays[1] <= 1.0
    assert state(breaker) is BreakerState.closed and breaker.failures == 0
    retries = [r for r in caplog.records if r.getMessage() == "retrying a failed model call"]
    assert [(r.__dict__["endpoint"], r.__dict__["attempt"]) for r in retries] == [
        (ENDPOINT, 1),
        (ENDPOINT, 2),
    ]
    assert [r.__dict__["delay"] for r in retries] == delays


def test_never_retries_once_an_event_was_yielded() -> None:
    provider = ScriptedProvider([HELLO, overloaded()], [HELLO, DONE])
    breaker = make_breaker(FakeClock(), threshold=5)
    events, delays = run(provider, breaker)

    assert next(events) == HELLO
    with pytest.raises(ProviderError, match="overloaded"):
        next(events)
    assert provider.calls == 1
    assert delays == []
    assert breaker.failures == 1


def test_a_non_retryable_provider_error_counts_but_is_not_retried() -> None:
    bad_key = ProviderError("invalid API key", provider=ENDPOINT, status=401)
    provider = ScriptedProvider([bad_key], [DONE])
    breaker = make_breaker(FakeClock(), threshold=5)
    events, delays = run(provider, breaker)

    with pytest.raises(ProviderError, match="invalid API key"):
        list(events)
    assert provider.calls == 1
    assert delays == []
    assert breaker.failures == 1


def test_invalid_input_is_the_callers_fault_neither_retried_nor_counted() -> None:
    provider = ScriptedProvider([InvalidInput("too many tokens", field="messages")], [DONE])
    breaker = make_breaker(FakeClock(), threshold=1)
    events, delays = run(provider, breaker)

    with pytest.raises(InvalidInput):
        list(events)
    assert provider.calls == 1
    assert delays == []
    assert breaker.failures == 0
    assert state(breaker) is BreakerState.closed


def test_gives_up_after_the_last_attempt_with_the_last_error() -> None:
    errors = [ProviderError(f"overloaded {i}", provider=ENDPOINT, retryable=True) for i in range(3)]
    scripts: list[Script] = [[error] for error in errors]
    provider = ScriptedProvider(*scripts)
    breaker = make_breaker(FakeClock(), threshold=10)
    events, delays = run(provider, breaker, attempts=3)

    with pytest.raises(ProviderError) as raised:
        list(events)
    assert raised.value is errors[-1]
    assert provider.calls == 3
    assert len(delays) == 2
    assert breaker.failures == 3


def test_stops_retrying_when_the_breaker_opens() -> None:
    provider = ScriptedProvider([overloaded()], [overloaded()], [DONE])
    breaker = make_breaker(FakeClock(), threshold=2)
    events, _ = run(provider, breaker, attempts=3)

    with pytest.raises(ProviderError, match="circuit open after 2 failures"):
        list(events)
    assert provider.calls == 2


def test_an_early_close_is_not_a_failure_and_closes_the_provider_stream() -> None:
    clock = FakeClock()
    breaker = open_breaker(clock)
    clock.now += 30  # half-open: this stream is the trial
    provider = ScriptedProvider([HELLO, HELLO, DONE])
    events, _ = run(provider, breaker)

    assert next(events) == HELLO
    assert isinstance(events, Generator)
    events.close()

    assert provider.closed == 1
    assert breaker.failures == 3
    assert state(breaker) is BreakerState.half_open
    breaker.before_call()  # the trial slot is free again


def test_an_error_raised_when_opening_the_stream_is_retried() -> None:
    attempts = 0

    def open_stream() -> Iterator[ChatEvent]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise overloaded()
        return iter([DONE])

    breaker = make_breaker(FakeClock())
    policy = RetryPolicy(attempts=2, base_seconds=0)
    events = guarded_stream(
        ENDPOINT, open_stream, breaker=breaker, retry=policy, limit=None, sleep=lambda _: None
    )
    assert list(events) == [DONE]
    assert attempts == 2
