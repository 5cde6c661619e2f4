"""The shard function's test vectors, computed again by Spark SQL.

    spark-submit --master local[1] tests/shards/check_vectors.py tests/shards/vectors.csv

Exits 1 naming the first value Spark computes otherwise (billrun's side of the same
file is tests/it/shards.rs).
"""

import csv
import sys

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("billrun shard vectors").getOrCreate()
with open(sys.argv[1], newline="") as f:
    rows = list(csv.DictReader(f))
ids = [(None if r["account_id"] == "\\N" else r["account_id"],) for r in rows]
got = spark.createDataFrame(ids, "account_id string").selectExpr(
    "account_id",
    "xxhash64(account_id) AS xxhash64",
    *[f"pmod(xxhash64(account_id), {n}) AS n{n}" for n in (2, 3, 7, 8)],
).collect()
failed = 0
for want, row in zip(rows, got):
    for col in ("xxhash64", "n2", "n3", "n7", "n8"):
        if str(row[col]) != want[col]:
            print(f"{want['account_id']!r}: Spark gives {col} = {row[col]}, the vectors say {want[col]}")
            failed += 1
print(f"{len(rows)} vectors, {failed} mismatches")
spark.stop()
sys.exit(1 if failed or len(got) != len(rows) else 0)
