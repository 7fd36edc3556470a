"""Hosts on one machine: Linux network namespaces joined by veth links to one bridge.

Each host has one address, on its link only; the test process reaches every host through the
bridge's address. Nothing routes beyond the bridge, so no traffic leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def can_make_hosts() -> str | None:
    """Why namespaces cannot be made here, or None if they can."""
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    probe = f"clprobe{uuid.uuid4().hex[:6]}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    network: Network
    name: str
    address: str
    link: str  # the veth end on the bridge
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def netns(self) -> str:
        return f"{self.network.prefix}-{self.name}"

    def run(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `command` on this host, in a session of its own, its output into `log`."""
        prefix = ["ip", "netns", "exec", self.netns]
        if user is not None:
            prefix += [shutil.which("runuser") or "/usr/sbin/runuser", "-u", user, "--"]
        with log.open("ab") as out:
            process = subprocess.Popen(
                [*prefix, *command],
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        listed = ip("netns", "pids", self.netns, check=False)
        return [int(pid) for pid in listed.stdout.split()]

    def kill(self) -> int:
        """SIGKILL every process on this host, as if it lost power; how many there were."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        self.processes = [p for p in self.processes if p.poll() is None]
        return len(pids)

    def cut(self) -> None:
        """Unplug this host's link: its connections hang, nothing reaches it or leaves it."""
        ip("link", "set", self.link, "down")

    def restore(self) -> None:
        ip("link", "set", self.link, "up")


class Network:
    """A bridge and the hosts on it, all removed by `close`."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:4]
        self.prefix = f"cl{tag}"
        self.bridge = f"clbr{tag}"
        # 10.213.X.0/24 with X from the tag: concurrent runs on one machine do not clash.
        self.subnet = f"10.213.{int(tag, 16) % 250 + 1}"
        self.gateway = f"{self.subnet}.1"
        self.hosts: dict[str, Host] = {}
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add(self, name: str, number: int) -> Host:
        netns = f"{self.prefix}-{name}"
        link = f"{self.prefix}{number:02d}"
        address = f"{self.subnet}.{number}"
        ip("netns", "add", netns)
        ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("link", "set", link, "master", self.bridge)
        ip("link", "set", link, "up")
        ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "link", "set", "lo", "up")
        host = Host(self, name, address, link)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            host.kill()
            ip("netns", "del", host.netns, check=False)
            ip("link", "del", host.link, check=False)
        ip("link", "del", self.bridge, check=False)
