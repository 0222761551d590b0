#!/usr/bin/env bash
# Installs everything Tessera needs into ./.venv and builds the frontend.
# Re-running is cheap: each step is skipped while its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi

stamp=".venv/.tessera-python-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "== Installing Python dependencies (torch takes about a minute)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  rm -f .venv/.tessera-python-* && touch "$stamp"
fi

# The Python SDK and `tessera` command (sdk/, its own package), editable in the same venv.
sdk_stamp=".venv/.tessera-sdk-$(sha256sum sdk/pyproject.toml | cut -c1-16)"
if [ ! -f "$sdk_stamp" ]; then
  echo "== Installing the Python SDK (sdk/)"
  .venv/bin/python -m pip install --quiet -e ./sdk
  rm -f .venv/.tessera-sdk-* && touch "$sdk_stamp"
fi

if [ -f frontend/package.json ]; then
  lock_stamp="frontend/node_modules/.tessera-$(sha256sum frontend/package-lock.json | cut -c1-16)"
  if [ ! -f "$lock_stamp" ]; then
    echo "== Installing frontend dependencies"
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    touch "$lock_stamp"
  fi
  echo "== Building the frontend"
  (cd frontend && npm run build --silent)
fi
