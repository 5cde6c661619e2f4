"""A billing period closed on Apache Spark, in N shards of accounts.

    spark-submit jobs/spark/bill_run.py --period YYYY-MM --shards N \
        --input LAKE --output LAKE [--billrun PATH]

1. Stage: one read of the period's usage. Each row gets its shard,
   pmod(xxhash64(account_id), N) -- the function billrun uses -- and, from Spark's
   file metadata, its source file (relative to the input lake) and row index. The
   rows are written by shard to <output>/_staged/billing_period=P/n=N/k=K/, and
   every row whose record_id occurs more than once in the period (any account, any
   shard) to .../n=N/repeats/, so that each shard judges duplicates as a single
   close does.
2. Shards: N Spark tasks, each running `billrun run --period P --shard K/N --usage
   <staged>` on an executor. A task that fails is retried by Spark
   (spark.task.maxFailures); speculation stays off, so no two attempts of a shard
   run at once.
3. Commit: `billrun commit --period P --shards N` on the driver checks the N results
   and publishes the period's tables at once, byte-identical to a single close.

The billrun binary must be on every executor: give its path (--billrun), or ship it
with `spark-submit --files /path/to/billrun` and pass `--billrun billrun` (found with
SparkFiles). Lakes are local paths, file://, s3:// (read by Spark as s3a://), gs:// or
abfss://; jobs/README.md says how to run this on a cluster.
"""

import argparse
import os
import stat
import subprocess
import sys
import time

from pyspark import SparkFiles
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--period", required=True, help="the billing period, YYYY-MM")
    p.add_argument("--shards", required=True, type=int, help="N, the number of shards")
    p.add_argument("--input", required=True, help="the input lake")
    p.add_argument("--output", required=True, help="the output lake")
    p.add_argument("--billrun", default="billrun", help="the billrun binary on the executors")
    p.add_argument(
        "--fail-once",
        metavar="K:DIR",
        help="(test hook) shard K's first attempt fails, once per marker directory DIR",
    )
    a = p.parse_args(argv)
    if a.shards < 1:
        p.error("--shards must be at least 1")
    if len(a.period) != 7 or a.period[4] != "-":
        p.error(f"--period '{a.period}' is not YYYY-MM")
    return a


def spark_path(lake):
    """The lake as Spark's Hadoop file systems name it."""
    if lake.startswith("s3://"):
        return "s3a://" + lake[len("s3://"):]
    if "://" in lake:
        return lake
    return "file://" + os.path.abspath(lake)


def billrun_lake(lake):
    """The lake as billrun names it (a local path made absolute: executors may run elsewhere)."""
    return lake if "://" in lake else os.path.abspath(lake)


def stage(spark, args, staged):
    """Shuffles the period's usage into the staged layout; returns the rows staged."""
    root = spark_path(args.input).rstrip("/")
    files = f"{root}/usage/date={args.period}-*/hour=*/*.parquet"
    # The schema of one file (the contract's columns): Spark then reads no other
    # file's footer to infer it.
    jvm = spark.sparkContext._jvm
    pattern = jvm.org.apache.hadoop.fs.Path(files)
    listed = pattern.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).globStatus(pattern)
    if not listed:
        raise SystemExit(f"no usage files for {args.period} under {root}/usage/")
    schema = spark.read.parquet(listed[0].getPath().toString()).schema
    usage = (
        spark.read.schema(schema)
        .parquet(files)
        .select("*", F.col("_metadata.file_path").alias("_path"), F.col("_metadata.row_index").alias("source_row"))
    )
    usage = usage.drop("date", "hour")
    # The object's path relative to the lake: from "usage/" on.
    usage = usage.withColumn("source_file", F.regexp_extract("_path", r"(usage/date=[^/]+/hour=[^/]+/[^/]+)$", 1)).drop("_path")
    usage = usage.withColumn("k", F.expr(f"pmod(xxhash64(account_id), {args.shards})"))
    # Not cached: the shuffle reads the month once; the repeats read its record ids again (one column).
    out = f"{spark_path(staged).rstrip('/')}/billing_period={args.period}/n={args.shards}"
    usage.repartition(args.shards, "k").write.mode("overwrite").partitionBy("k").parquet(out)
    # The record ids repeated in the period: few, so the rows are picked out without
    # shuffling the month again.
    repeated = usage.where(F.col("record_id").isNotNull()).groupBy("record_id").count().where("count > 1").select("record_id")
    copies = usage.join(F.broadcast(repeated), "record_id", "left_semi").drop("k")
    copies.select(*[c for c in usage.columns if c != "k"]).coalesce(1).write.mode("overwrite").parquet(f"{out}/repeats")
    rows = usage.count()

    return rows


def remove(spark, path):
    """Removes a folder of a lake through Spark's own file system (the staged usage, once committed)."""
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(p, True)


def binary(path):
    """The billrun binary on this executor."""
    if os.path.isabs(path) and os.path.exists(path):
        return path
    shipped = SparkFiles.get(os.path.basename(path))
    if os.path.exists(shipped):
        mode = os.stat(shipped).st_mode
        if not mode & stat.S_IXUSR:
            os.chmod(shipped, mode | stat.S_IXUSR)
        return shipped
    return path


def shard_task(args, staged):
    """The function each Spark task runs: billrun for one shard."""
    period, n, billrun, fail_once = args.period, args.shards, args.billrun, args.fail_once
    inp, out = billrun_lake(args.input), billrun_lake(args.output)

    def run(k):
        if fail_once:
            want, marker_dir = fail_once.split(":", 1)
            marker = os.path.join(marker_dir, f"shard-{k}-failed-once")
            if int(want) == k and not os.path.exists(marker):
                open(marker, "w").close()
                raise RuntimeError(f"injected fault: shard {k}/{n} fails once")
        cmd = [binary(billrun), "run", "--period", period, "--shard", f"{k}/{n}", "--input", inp, "--output", out, "--usage", staged]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"shard {k}/{n}: billrun exited {done.returncode}: {done.stderr.strip()}")
        return k, done.stdout.strip()

    return run


def main(argv):
    args = parse_args(argv)
    spark = (
        SparkSession.builder.appName(f"billrun {args.period} in {args.shards} shards")
        .config("spark.speculation", "false")
        .config("spark.task.maxFailures", "4")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    staged = billrun_lake(args.output).rstrip("/") + "/_staged"
    t0 = time.monotonic()
    rows = stage(spark, args, staged)
    t1 = time.monotonic()
    print(f"staged {rows} usage rows of {args.period} in {args.shards} shards under {staged} ({t1 - t0:.1f} s)", flush=True)
    sc = spark.sparkContext
    results = sc.parallelize(range(args.shards), args.shards).map(shard_task(args, staged)).collect()
    t2 = time.monotonic()
    for k, line in sorted(results):
        print(line, flush=True)
    print(f"{args.shards} shards run ({t2 - t1:.1f} s)", flush=True)
    commit = subprocess.run(
        [binary(args.billrun), "commit", "--period", args.period, "--shards", str(args.shards),
         "--input", billrun_lake(args.input), "--output", billrun_lake(args.output)],
        capture_output=True, text=True,
    )
    sys.stdout.write(commit.stdout)
    sys.stderr.write(commit.stderr)
    print(f"commit ({time.monotonic() - t2:.1f} s)", flush=True)
    if commit.returncode in (0, 1):
        remove(spark, f"{spark_path(staged).rstrip('/')}/billing_period={args.period}/n={args.shards}")
    spark.stop()
    # billrun's own exit status: 0 done, 1 done with rows worth a look, 2 not published.
    return commit.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
