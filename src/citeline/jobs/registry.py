"""Job kinds: the named functions a job may run.

The job layer knows none of them. Each domain declares its kinds (`JobKind` values exported
from its package) and the composition root registers them in the process's `JobRegistry`;
a worker runs a job by the `module:function` target stored on its row, so it needs no
registration to run one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from citeline.errors import InvalidInput

if TYPE_CHECKING:
    from citeline.jobs.context import JobContext

JobFunction = Callable[["JobContext[Any]"], Any]


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its name, the module-level function that runs it, and its defaults."""

    name: str
    function: JobFunction
    queue: str = "default"
    timeout_seconds: int | None = None
    max_attempts: int | None = None

    @property
    def target(self) -> str:
        """Where a worker finds the function: `module:qualified name`."""
        return f"{self.function.__module__}:{self.function.__qualname__}"


class JobRegistry:
    def __init__(self, kinds: Iterable[JobKind] = ()) -> None:
        self._kinds: dict[str, JobKind] = {}
        self.register(*kinds)

    def register(self, *kinds: JobKind) -> None:
        for kind in kinds:
            existing = self._kinds.get(kind.name)
            if existing is not None and existing.target != kind.target:
                raise ValueError(
                    f"job kind {kind.name!r} is already registered to {existing.target}"
                )
            self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise InvalidInput(f"unknown job kind {name!r}", field="kind") from None

    def kinds(self) -> list[JobKind]:
        return sorted(self._kinds.values(), key=lambda kind: kind.name)


def resolve(target: str) -> JobFunction:
    module_name, _, attribute = target.partition(":")
    func: JobFunction = getattr(import_module(module_name), attribute)
    return func
