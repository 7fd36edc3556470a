"""llama.cpp is imported with passive OpenMP waiting, unless the environment chose a policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from citeline.llm.llama import WAIT_POLICY, cores
from tests.conftest import ROOT

PROBE = (
    "import os, sys\n"
    "from citeline.llm.llama import import_llama\n"
    "import_llama()\n"
    "assert 'xllamacpp' in sys.modules\n"
    f"print(os.environ[{WAIT_POLICY!r}])\n"
)


@pytest.mark.parametrize(("given", "expected"), [(None, "passive"), ("active", "active")])
def test_wait_policy(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != WAIT_POLICY}
    env["PYTHONPATH"] = str(ROOT / "src")
    if given is not None:
        env[WAIT_POLICY] = given
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == expected


def test_cores_is_this_process_cpu_set() -> None:
    assert cores() == len(os.sched_getaffinity(0))
