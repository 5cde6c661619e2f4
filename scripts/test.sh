#!/usr/bin/env bash
# Runs the whole test suite: installs the Python tools the tests use (DuckDB reads the
# outputs back as an independent engine), then the Rust tests in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet --disable-pip-version-check 'duckdb>=1.1,<3'
export PYTHON
exec cargo test --release "$@"
