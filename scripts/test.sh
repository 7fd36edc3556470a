#!/usr/bin/env bash
# Installs everything (dev group included), then lints, type-checks and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --all-groups

# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
if [ ! -x /usr/bin/chromium ]; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo")
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends chromium \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends chromium; }
fi

# The OIDC tests run the oidc-provider package (tests/oidc) under Node.
if [ ! -d tests/oidc/node_modules ] || [ tests/oidc/node_modules -ot tests/oidc/package-lock.json ]; then
  npm ci --prefix tests/oidc --no-audit --no-fund
fi

# The storage tests run the s3rver package (tests/s3), an S3-compatible server, under Node.
if [ ! -d tests/s3/node_modules ] || [ tests/s3/node_modules -ot tests/s3/package-lock.json ]; then
  npm ci --prefix tests/s3 --no-audit --no-fund
fi

# The MCP client tests run the reference server-everything (tests/mcp) under Node.
if command -v npm >/dev/null && { [ ! -d tests/mcp/node_modules ] || [ tests/mcp/node_modules -ot tests/mcp/package-lock.json ]; }; then
  npm ci --prefix tests/mcp --no-audit --no-fund
fi

if [ -z "${CITELINE_TEST_REDIS_URL:-}" ] && .venv/bin/python - <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
except OSError:
    sys.exit(1)
PY
then
  export CITELINE_TEST_REDIS_URL=redis://127.0.0.1:6379/15
fi

.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
PYTHONPATH=src .venv/bin/lint-imports --no-cache
# Branch coverage of the whole run, worker and server processes included; below 80% fails.
rm -f .coverage .coverage.*
# Two processes (pytest-xdist), whole files to each: most tests wait on servers and workers
# they started, so on a 2-core VM the suite took 37 minutes instead of 62. Each process
# starts its own embedded PostgreSQL and Valkey and uses its own external Redis databases.
.venv/bin/pytest -n "${CITELINE_TEST_PROCESSES:-2}" --dist loadfile \
  --cov --cov-report=term --durations=25 "$@"
