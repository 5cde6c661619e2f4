"""Reads a bill run's outputs with DuckDB, an engine independent of billrun, runs the
analyst queries of sql/ and prints a JSON summary for the Rust test to compare."""
import json
import sys
from decimal import Decimal

import duckdb

lake, sql_dir = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET VARIABLE lake = ?", [lake])


def query(name):
    with open(f"{sql_dir}/{name}.sql") as f:
        cur = con.execute(f.read())
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]


def s(v):
    return str(v) if isinstance(v, Decimal) else v


g = lambda q: con.execute(q.replace("@LAKE@", lake)).fetchone()
out = {
    "reconciliation_mismatches": len(query("invoice_reconciliation")),
    "truncation_mismatches": len(query("settlement_truncation")),
    "composition_mismatches": len(query("cost_composition")),
    "composition_totals_mismatches": len(query("cost_composition_totals")),
    "composition_view_mismatches": len(query("cost_composition_views")),
    "composition_dimensions": g("SELECT count(DISTINCT dimension) FROM read_parquet('@LAKE@/cost/analysis/*/*.parquet', hive_partitioning=true) WHERE view = 'composition'")[0],
    "daily_trend_mismatches": len(query("daily_trend")),
    "monthly_mismatches": len(query("cost_monthly")),
    "forecast_mismatches": len(query("cost_forecast")),
    "top_resources_mismatches": len(query("top_resources")),
    "trend_rows": dict(con.execute(
        "SELECT view, count(*) FROM read_parquet(getvariable('lake') || '/cost/analysis/*/*.parquet', hive_partitioning=true) "
        "WHERE view IN ('forecast', 'top_resources') OR (view = 'period_over_period' AND change_pct IS NOT NULL) GROUP BY 1"
    ).fetchall()),
    "daily_trend_days": g("SELECT count(*) FROM read_parquet('@LAKE@/cost/analysis/*/*.parquet', hive_partitioning=true) WHERE view = 'daily'")[0],
}
out["invoices"], out["total_due"] = g(
    "SELECT count(*), sum(total_due)::VARCHAR FROM read_parquet('@LAKE@/bills/invoices/*/*.parquet', hive_partitioning=true)"
)
out["rated_rows"] = g(
    "SELECT count(DISTINCT x_UsageRecordId) FROM read_parquet('@LAKE@/bills/line_items/*/*.parquet') WHERE x_UsageRecordId IS NOT NULL"
)[0]
out["rejected_rows"] = g(
    "SELECT count(*) FROM read_parquet('@LAKE@/bills/rejected/*/*.parquet') WHERE source_file LIKE 'usage/%'"
)[0]
out["periods"] = [r[0] for r in con.execute(
    f"SELECT DISTINCT billing_period FROM read_parquet('{lake}/bills/invoices/*/*.parquet', hive_partitioning=true) ORDER BY 1"
).fetchall()]
out["top_spenders"] = [[r["billing_period"], r["account_id"], s(r["total_due"])] for r in query("top_spenders")]
util = query("package_utilization")
out["packages"] = len(util)
out["utilization_mismatches"] = sum(
    1 for r in util if abs(r["used_quota"] - r["drawn_in_deductions"]) > Decimal(r["draws"]) * Decimal("0.00000000005")
)
out["arrears"] = [[r["billing_period"], r["account_id"], r["status_at_close"], s(r["arrears_amount"])] for r in query("arrears_list")]
by_project = query("allocation_by_project")
out["allocated_by_period"] = {}
for r in by_project:
    p = r["billing_period"]
    out["allocated_by_period"][p] = str(Decimal(out["allocated_by_period"].get(p, "0")) + r["effective_cost"])
out["effective_by_period"] = {r[0]: str(r[1]) for r in con.execute(
    f"SELECT billing_period, sum(EffectiveCost) FROM read_parquet('{lake}/bills/line_items/*/*.parquet', hive_partitioning=true) GROUP BY 1"
).fetchall()}
# For every tag key, the values (with '(untagged)') add up to the account's total.
tags = query("allocation_by_tag")
per_key = {}
for r in tags:
    k = (r["billing_period"], r["account_id"], r["tag_key"])
    per_key[k] = per_key.get(k, Decimal(0)) + r["effective_cost"]
totals = {(r[0], r[1]): r[2] for r in con.execute(
    f"SELECT billing_period, account_id, sum(EffectiveCost) FROM read_parquet('{lake}/cost/allocation/*/*.parquet', hive_partitioning=true) GROUP BY 1, 2"
).fetchall()}
out["tag_keys"] = len(per_key)
out["allocation_view_mismatches"] = len(query("allocation_rollup_views"))
out["allocation_view_rows"] = g(
    "SELECT count(*) FROM read_parquet('@LAKE@/cost/analysis/*/*.parquet', hive_partitioning=true) WHERE view = 'allocation' AND dimension LIKE 'tag:%'"
)[0]
out["tag_mismatches"] = sum(1 for (p, a, _), v in per_key.items() if v != totals[(p, a)])
print(json.dumps(out))
