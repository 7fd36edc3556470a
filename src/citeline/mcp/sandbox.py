"""Starts a stdio MCP server under resource limits: `python -I -S sandbox.py CPU MEM -- CMD ARGS`.

Run by path, importing nothing of Citeline: it sets the CPU-time and memory limits, then
replaces itself with the server (`execv`), which inherits them. The MCP SDK has already put the
process in a session and process group of its own, and given it only the environment it was
handed. The `preexec_fn` of `subprocess` would do the same but the SDK's transport takes none.
"""

from __future__ import annotations

import os
import resource
import sys


def main(argv: list[str]) -> None:
    cpu_seconds, memory_mib, separator, *command = argv
    if separator != "--" or not command:
        sys.exit("usage: sandbox.py CPU_SECONDS MEMORY_MIB -- COMMAND [ARGS...]")
    cpu = int(cpu_seconds)
    memory = int(memory_mib) * 2**20
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    # RLIMIT_DATA, not RLIMIT_AS: runtimes such as V8 reserve large address ranges they never
    # use, which an address-space limit would refuse.
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
