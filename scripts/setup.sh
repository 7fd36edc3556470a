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

# PDF exports: WeasyPrint's C libraries (Pango; HarfBuzz's subsetter, without which fonts are
# subset 5-10x slower) and the fonts the report stylesheet names: DejaVu Sans (Latin, Greek)
# and WenQuanYi Micro Hei (Chinese). Exports refuse to render without them.
PDF_PACKAGES="libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-wqy-microhei"
if command -v dpkg-query >/dev/null 2>&1; then
  missing=""
  for package in $PDF_PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
      || missing="$missing $package"
  done
  if [ -n "$missing" ]; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo")
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086  # one word per package
    $SUDO apt-get install -y --no-install-recommends $missing \
      || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends $missing; }
  fi
else
  echo "setup.sh: no dpkg; install Pango, HarfBuzz (with hb-subset) and the fonts" \
    "DejaVu Sans and WenQuanYi Micro Hei for PDF exports" >&2
fi
