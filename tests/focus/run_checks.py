"""Runs the FOCUS checks of a .sql file on one period's line items and invoices with
DuckDB and prints {"<check id>": violations, ...} as JSON.

usage: run_checks.py LINE_ITEMS.parquet INVOICES.parquet CHECKS.sql
"""
import json
import sys

import duckdb

line_items, invoices, checks = sys.argv[1:4]
con = duckdb.connect()
con.execute(f"CREATE VIEW f AS SELECT * FROM read_parquet('{line_items}', hive_partitioning = false)")
con.execute(f"CREATE VIEW inv AS SELECT * FROM read_parquet('{invoices}', hive_partitioning = false)")
results = {}
check_id, query = None, []
for line in open(checks, encoding="utf-8").read().splitlines() + ["-- check: end"]:
    if line.startswith("-- check:"):
        if check_id is not None:
            results[check_id] = con.execute("\n".join(query)).fetchone()[0]
        check_id, query = line[len("-- check:"):].split("|")[0].strip(), []
    elif check_id is not None and not line.startswith("--"):
        query.append(line)
results.pop("end", None)
print(json.dumps(results))
