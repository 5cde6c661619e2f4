"""Reads a bill run's outputs with DuckDB, an engine independent of billrun, runs the
analyst queries of sql/ and prints a JSON summary for the Rust test to compare."""
import json
import sys

import duckdb

lake, sql_dir = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET VARIABLE lake = ?", [lake])


def query(name):
    with open(f"{sql_dir}/{name}.sql") as f:
        return con.execute(f.read()).fetchall()


out = {
    "reconciliation_mismatches": len(query("invoice_reconciliation")),
    "truncation_mismatches": len(query("settlement_truncation")),
}
g = lambda q: con.execute(q.replace("LAKE", lake)).fetchone()
out["invoices"], out["total_due"] = g(
    "SELECT count(*), sum(total_due)::VARCHAR FROM read_parquet('LAKE/bills/invoices/*/*.parquet', hive_partitioning=true)"
)
out["rated_rows"] = g(
    "SELECT count(DISTINCT x_UsageRecordId) FROM read_parquet('LAKE/bills/line_items/*/*.parquet') WHERE x_UsageRecordId IS NOT NULL"
)[0]
out["rejected_rows"] = g(
    "SELECT count(*) FROM read_parquet('LAKE/bills/rejected/*/*.parquet') WHERE source_file LIKE 'usage/%'"
)[0]
out["periods"] = [r[0] for r in con.execute(
    f"SELECT DISTINCT billing_period FROM read_parquet('{lake}/bills/invoices/*/*.parquet', hive_partitioning=true) ORDER BY 1"
).fetchall()]
print(json.dumps(out))
