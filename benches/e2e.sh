#!/usr/bin/env bash
# End-to-end benchmark: for each size, a pay-per-use month closed by billrun and by the
# DuckDB SQL peer (sql/peer_bill_run.sql), alternating, and the floor: reading every
# usage column and writing one Parquet copy of the usage (DuckDB). Reports wall time,
# CPU time, peak RSS and rows/s of each.
#
# usage: benches/e2e.sh [ACCOUNTS...]      (default: 130 1300 → about 1M and 10M rows;
#        13000 → about 94M rows). Sizes up to ONE_THREAD_MAX accounts (default 1300) are
#        also closed by billrun with one worker thread, and on one core (taskset), for
#        the second thread's gain.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/billrun-target}"
cargo build --release -q
BIN="$CARGO_TARGET_DIR/release/billrun"
WORK="${BENCH_DIR:-/tmp/billrun-bench}"
THREADS="${THREADS:-2}"
ONE_THREAD_MAX="${ONE_THREAD_MAX:-1300}"
# billrun's allocator settings are built in (.cargo/config.toml); BILLRUN_MALLOC_CONF
# overrides them for a comparison (jemalloc's syntax, e.g. thp:default for no huge pages).
BILLRUN=(env ${BILLRUN_MALLOC_CONF:+_RJEM_MALLOC_CONF="$BILLRUN_MALLOC_CONF"} "$BIN")
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(130 1300)
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "$label %e %U %S %M" "$@" > /dev/null 2>> "$WORK/times.txt"
}
mkdir -p "$WORK"; : > "$WORK/times.txt"
for accounts in "${sizes[@]}"; do
  lake="$WORK/lake-$accounts"
  [ -f "$lake/catalog/prices.parquet" ] || measure "generate $accounts 0 0" "$BIN" generate --ppu-only --no-anomalies --accounts "$accounts" --out "$lake"
  rows=$(python3 -c "import duckdb; print(duckdb.connect().execute(\"select count(*) from read_parquet('$lake/usage/*/*/*.parquet')\").fetchone()[0])")
  bytes=$(du -sb "$lake/usage" | cut -f1)
  for round in 1 2; do
    rm -rf "$WORK/out-$accounts"
    measure "billrun $accounts $rows $bytes" "${BILLRUN[@]}" --threads "$THREADS" run --period 2026-01 --input "$lake" --output "$WORK/out-$accounts" || true
    measure "duckdb $accounts $rows $bytes" python3 benches/duckdb_peer.py "$lake" 2026-01 "$WORK/peer-$accounts" "$THREADS"
    if [ "$round" = 1 ] && [ "$accounts" -le "$ONE_THREAD_MAX" ]; then
      rm -rf "$WORK/out-$accounts"
      measure "billrun-1-thread $accounts $rows $bytes" "${BILLRUN[@]}" --threads 1 run --period 2026-01 --input "$lake" --output "$WORK/out-$accounts" || true
      # One core: the pipeline's own threads (decoder, writers) share it too.
      if command -v taskset > /dev/null; then
        rm -rf "$WORK/out-$accounts"
        measure "billrun-1-core $accounts $rows $bytes" taskset -c 0 "${BILLRUN[@]}" --threads 1 run --period 2026-01 --input "$lake" --output "$WORK/out-$accounts" || true
      fi
    fi
    measure "floor $accounts $rows $bytes" python3 -c "import duckdb; c=duckdb.connect(); c.execute('SET threads=$THREADS'); c.execute(\"COPY (SELECT * FROM read_parquet('$lake/usage/*/*/*.parquet')) TO '$WORK/floor-$accounts.parquet' (FORMAT parquet)\")"
  done
done
# The CPU, with the figures: runs on different CPUs do not compare.
echo "CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; allocator settings: ${BILLRUN_MALLOC_CONF:-built in}"
python3 - "$WORK/times.txt" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) != 8 or not p[1].isdigit() or p[0] == "generate":
        continue
    who, acc, n, b, wall, user, sys_, rss = p
    rows.setdefault((int(n), who), []).append((float(wall), float(user) + float(sys_), int(rss)))
print("| usage rows | engine | wall s (best of 2) | CPU s | peak RSS MB | rows/s |")
print("|---|---|---|---|---|---|")
for (n, who), runs in sorted(rows.items()):
    wall, cpu, rss = min(runs)
    print(f"| {n:,} | {who} | {wall:.1f} | {cpu:.1f} | {rss // 1024:,} | {n / wall:,.0f} |")
PY
