"""Runs the SQL peer of the bill run (sql/peer_bill_run.sql) in DuckDB on a lake and
writes its line items, settlements and invoices as Parquet.

usage: duckdb_peer.py LAKE PERIOD OUT_DIR [THREADS]"""
import calendar
import json
import os
import sys
import time

import duckdb

lake, period, out = sys.argv[1], sys.argv[2], sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else os.cpu_count()
year, month = map(int, period.split("-"))
nxt = (year + (month == 12), month % 12 + 1)
os.makedirs(out, exist_ok=True)
sql_path = os.path.join(os.path.dirname(__file__), "..", "sql", "peer_bill_run.sql")
started = time.time()
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
# Spill files (tens of GB at 100M rows) go beside the outputs, not into the working
# directory.
spill = os.path.join(out, ".spill").replace("'", "''")
con.execute(f"SET temp_directory = '{spill}'")
con.execute("SET TimeZone = 'UTC'")
con.execute("SET VARIABLE lake = ?", [lake])
con.execute("SET VARIABLE period = ?", [period])
con.execute(f"SET VARIABLE period_start = TIMESTAMPTZ '{year:04d}-{month:02d}-01 00:00:00+00'")
con.execute(f"SET VARIABLE period_end = TIMESTAMPTZ '{nxt[0]:04d}-{nxt[1]:02d}-01 00:00:00+00'")
with open(sql_path) as f:
    con.execute(f.read())
for table in ["lines", "settlements", "invoices"]:
    target = os.path.join(out, f"{table}.parquet").replace("'", "''")
    con.execute(f"COPY peer_{table} TO '{target}' (FORMAT parquet)")
rows = con.execute("SELECT count(*) FROM peer_usage").fetchone()[0]
print(json.dumps({"rows": rows, "seconds": time.time() - started, "threads": threads}))
