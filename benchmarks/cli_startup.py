"""CLI start-up: the wall time of `citeline` commands from launch to exit, as a person runs
them, against the CLI as it was before its user commands talked to the server (commit
25d0143, the parent of the change), measured in the same run.

The baseline is that commit's `src/citeline`, taken with `git archive` into a temporary
directory and run by the same interpreter and virtual environment with `PYTHONPATH` pointing
at it: only Citeline's own code differs. That CLI imported the engines, the composition root
and the domains before any command ran, and its `kb list` opened PostgreSQL and Redis itself
and brought the schema up to date. To keep the comparison fair to it, the old `kb list` is
given engines that already run (`CITELINE_DATABASE_URL`, `CITELINE_REDIS_URL`), so no embedded
PostgreSQL or Valkey starts (which cost about 5 s more in the issue's report); it reads a
database of its own, migrated by its own tree, holding the same knowledge bases as the server
the new CLI asks. The new `kb list` talks over HTTP to a `citeline serve` that the benchmark
starts on the same engines.

Each command runs as a fresh process (`python -m citeline ...`), old and new alternating,
after one unmeasured warm-up each; medians are reported with new/old ratios. Goal: every
ratio at most 0.2.

    .venv/bin/python -m benchmarks.cli_startup [--repeats 7] [--baseline 25d0143]
        [--knowledge-bases 3] [--commands version "kb list --help" "kb list"]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy

from benchmarks.common import PYTHON, ROOT, bench_engines, child_env, serving
from citeline.settings import Settings

BASELINE = "25d0143"
GOAL = 0.2
COMMANDS = {
    "version": ["version"],
    "kb list --help": ["kb", "list", "--help"],
    "kb list": ["kb", "list"],
}


@contextmanager
def old_tree(commit: str) -> Iterator[Path]:
    """The `src` directory of `commit`, extracted into a temporary directory."""
    folder = Path(tempfile.mkdtemp(prefix="cl-old-cli-"))
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "src/citeline"],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise SystemExit(
                f"cannot read commit {commit} from {ROOT} (a shallow clone?): "
                f"{archive.stderr.decode().strip()}"
            )
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        yield folder / "src"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def own_database(database_url: str, name: str) -> str:
    """A new, empty database beside `database_url`'s, on the same server."""
    url = sqlalchemy.make_url(database_url)
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def run(command: list[str], env: dict[str, str], cwd: Path, expect: list[str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "citeline", *command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"citeline {' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    if command == ["kb", "list"] and not all(name in done.stdout for name in expect):
        raise SystemExit(f"citeline kb list did not list the knowledge bases:\n{done.stdout}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", default=BASELINE, help="The commit of the old CLI.")
    parser.add_argument("--knowledge-bases", type=int, default=3, help="How many to list.")
    parser.add_argument("--commands", nargs="+", choices=sorted(COMMANDS), default=list(COMMANDS))
    options = parser.parse_args()
    with (
        old_tree(options.baseline) as old_src,
        bench_engines() as (settings, endpoints),
        serving(settings) as (url, _),
    ):
        home = Path(tempfile.mkdtemp(prefix="cl-cli-home-"))
        try:
            names = [f"kb-{index}" for index in range(options.knowledge_bases)]
            for name in names:
                httpx.post(f"{url}/v1/knowledge-bases", json={"name": name}).raise_for_status()
            old_settings: Settings = settings.model_copy(
                update={
                    "database_url": own_database(endpoints.database_url, "cli_old"),
                    "data_dir": home / "old-data",
                }
            )
            old_env = child_env(old_settings, PYTHONPATH=str(old_src))
            # A person's shell: their own config directory, the server in CITELINE_URL.
            new_env = {
                k: v for k, v in os.environ.items() if not k.startswith(("CITELINE_", "OTEL_"))
            }
            new_env.update(
                PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME=str(home / "config"), CITELINE_URL=url
            )
            for name in names:
                run(["kb", "create", name], old_env, home, names)
            samples: dict[str, dict[str, list[float]]] = {}
            for label in options.commands:
                command = COMMANDS[label]
                run(command, old_env, home, names)
                run(command, new_env, home, names)
                times = samples.setdefault(label, {"old": [], "new": []})
                for index in range(options.repeats):
                    order = [("old", old_env), ("new", new_env)]
                    for side, env in order if index % 2 == 0 else reversed(order):
                        times[side].append(run(command, env, home, names))
        finally:
            shutil.rmtree(home, ignore_errors=True)
    print(f"baseline: the CLI at commit {options.baseline}; {options.repeats} runs each")
    print(f"{'command':18} {'old p50 ms':>11} {'new p50 ms':>11} {'ratio':>7}  goal <= {GOAL}")
    for label, times in samples.items():
        old, new = statistics.median(times["old"]), statistics.median(times["new"])
        verdict = "met" if new / old <= GOAL else "MISSED"
        print(f"{label:18} {old * 1000:11.0f} {new * 1000:11.0f} {new / old:7.3f}  {verdict}")


if __name__ == "__main__":
    main()
