#!/usr/bin/env bash
# The sharding's cost on one machine (benches/RESULTS.md, "A period in shards"):
# the single close of a month, the same month as N shards run one after another plus
# the commit, and the Spark job end to end with N = 2 on a local Spark of two cores.
#   benches/shards.sh BILLRUN LAKE [N]        (BILLRUN_SPARK_VENV: PySpark's venv)
set -euo pipefail
BIN=$(realpath "$1"); LAKE=$(realpath "$2"); N=${3:-8}
WORK=${WORK:-/tmp/billrun-shards-bench}
V=${BILLRUN_SPARK_VENV:-$HOME/.cache/billrun-spark-venv}
rm -rf "$WORK"; mkdir -p "$WORK"
m() { local label=$1; shift; /usr/bin/time -f "$label %e s wall, %U+%S s CPU, %M KB peak" "$@" > "$WORK/$label.out" 2>> "$WORK/times.txt"; }
m single "$BIN" run --period 2026-01 --input "$LAKE" --output "$WORK/single" || true
for k in $(seq 0 $((N - 1))); do
  m "shard-$k-of-$N" "$BIN" run --period 2026-01 --shard "$k/$N" --input "$LAKE" --output "$WORK/sharded" || true
done
m "commit-$N" "$BIN" commit --period 2026-01 --shards "$N" --input "$LAKE" --output "$WORK/sharded" || true
for t in $(cd "$WORK/single" && find bills cost state -name '*.parquet' | sort); do
  cmp -s "$WORK/single/$t" "$WORK/sharded/$t" || echo "DIFFERS: $t" >> "$WORK/times.txt"
done
SPARK_HOME=$(echo "$V"/lib/python3*/site-packages/pyspark)
export SPARK_HOME PYSPARK_PYTHON="$V/bin/python" PATH="$V/bin:$PATH" SPARK_LOCAL_IP=127.0.0.1
m spark-2 spark-submit --master 'local[2]' --driver-memory 2g --conf spark.driver.host=127.0.0.1 --conf spark.ui.enabled=false \
  jobs/spark/bill_run.py --period 2026-01 --shards 2 --input "$LAKE" --output "$WORK/spark" --billrun "$BIN" || true
grep -E "staged|shards run|commit \(" "$WORK/spark-2.out" >> "$WORK/times.txt" || true
for t in $(cd "$WORK/single" && find bills cost state -name '*.parquet' | sort); do
  cmp -s "$WORK/single/$t" "$WORK/spark/$t" || echo "SPARK DIFFERS: $t" >> "$WORK/times.txt"
done
cat "$WORK/times.txt"
