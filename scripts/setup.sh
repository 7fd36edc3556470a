#!/usr/bin/env bash
# Creates or updates .venv/ from uv.lock. Safe to run again; extra args go to `uv sync`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
UV_VERSION=0.13.9

if [ ! -x .cache/bootstrap/bin/uv ] || ! .cache/bootstrap/bin/uv --version | grep -q "$UV_VERSION"; then
  "$PYTHON" -m venv .cache/bootstrap
  .cache/bootstrap/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

export UV_CACHE_DIR=${UV_CACHE_DIR:-$PWD/.cache/uv}
.cache/bootstrap/bin/uv sync --frozen --python "$PYTHON" "$@"
