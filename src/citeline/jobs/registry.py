"""Job kinds: the named functions a job may run, registered by the domain packages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from citeline.errors import InvalidInput

if TYPE_CHECKING:
    from citeline.jobs.context import JobContext

JobFunction = Callable[["JobContext"], Any]


@dataclass(frozen=True)
class JobKind:
    name: str
    target: str  # "module:function", imported by the worker that runs it
    queue: str = "default"
    timeout_seconds: int | None = None
    max_attempts: int | None = None


_KINDS: dict[str, JobKind] = {}

# Modules whose import registers the domain packages' job kinds.
DOMAIN_JOB_MODULES = (
    "citeline.knowledge.ingest",
    "citeline.llm.chat_job",
    "citeline.answers.job",
)


def register_domain_kinds() -> None:
    for module in DOMAIN_JOB_MODULES:
        import_module(module)


def job_kind(
    name: str,
    *,
    queue: str = "default",
    timeout_seconds: int | None = None,
    max_attempts: int | None = None,
) -> Callable[[JobFunction], JobFunction]:
    """Register a module-level function as the job kind `name`; it receives a JobContext."""

    def register(func: JobFunction) -> JobFunction:
        target = f"{func.__module__}:{func.__qualname__}"
        existing = _KINDS.get(name)
        if existing is not None and existing.target != target:
            raise ValueError(f"job kind {name!r} is already registered to {existing.target}")
        _KINDS[name] = JobKind(name, target, queue, timeout_seconds, max_attempts)
        return func

    return register


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise InvalidInput(f"unknown job kind {name!r}", field="kind") from None


def kinds() -> list[JobKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.name)


def resolve(target: str) -> JobFunction:
    module_name, _, attribute = target.partition(":")
    func: JobFunction = getattr(import_module(module_name), attribute)
    return func
