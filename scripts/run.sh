#!/usr/bin/env bash
# Installs everything, then runs Citeline on embedded defaults at http://127.0.0.1:8000,
# signed in as the local user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Local mode: the one local user is signed in automatically (loopback only; see docs/auth.md).
CITELINE_AUTH="${CITELINE_AUTH:-local}" exec .venv/bin/citeline serve "$@"
