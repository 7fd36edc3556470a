#!/usr/bin/env bash
# Installs everything, then runs Citeline on embedded defaults at http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/citeline serve "$@"
