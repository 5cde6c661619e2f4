//! The Spark job (`jobs/spark/bill_run.py`) on a local cluster the test starts
//! (`local-cluster[2,1,1024]`: a master and two workers, each an executor of one core),
//! talking to loopback only: it stages the usage by shard, runs three shard closes as
//! Spark tasks — one made to fail once and retried by Spark — and commits. The
//! published tables are a single close's, byte for byte. And Spark SQL computes the
//! shard function's test vectors.
//!
//! PySpark (pinned) comes from PyPI and Java 17 from Debian: `scripts/test.sh`
//! installs both and sets `BILLRUN_SPARK_VENV`.

use crate::lakes::billrun;
use std::path::{Path, PathBuf};
use std::process::Command;

fn venv() -> PathBuf {
    let v = std::env::var("BILLRUN_SPARK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/billrun-spark-venv"));
    assert!(v.join("bin/spark-submit").exists(), "no PySpark at {} (scripts/test.sh installs it and sets BILLRUN_SPARK_VENV)", v.display());
    v
}

/// `spark-submit` of the test's PySpark, on loopback, without the web UI.
fn spark_submit(master: &str) -> Command {
    let v = venv();
    let home = std::fs::read_dir(v.join("lib"))
        .unwrap()
        .map(|e| e.unwrap().path().join("site-packages/pyspark"))
        .find(|p| p.join("bin/spark-class").exists())
        .expect("pyspark's SPARK_HOME in the venv");
    let mut cmd = Command::new(v.join("bin/spark-submit"));
    cmd.env("SPARK_HOME", home)
        .env("PYSPARK_PYTHON", v.join("bin/python"))
        .env("PATH", format!("{}:{}", v.join("bin").display(), std::env::var("PATH").unwrap_or_default()))
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .args([
            "--master",
            master,
            "--conf",
            "spark.driver.host=127.0.0.1",
            "--conf",
            "spark.driver.bindAddress=127.0.0.1",
            "--conf",
            "spark.ui.enabled=false",
        ]);
    cmd
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn the_spark_job_publishes_a_single_close_and_retries_a_failed_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, single, out, markers) = (tmp.path().join("in"), tmp.path().join("single"), tmp.path().join("spark"), tmp.path().join("markers"));
    std::fs::create_dir_all(&markers).unwrap();
    let gen = billrun().args(["generate", "--accounts", "12", "--resources", "2", "--days", "4", "--out"]).arg(&input).output().unwrap();
    assert!(gen.status.success());
    let closed = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&input).arg("--output").arg(&single).output().unwrap();
    assert!(matches!(closed.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&closed.stderr));

    let run = spark_submit("local-cluster[2,1,1024]")
        .args(["--conf", "spark.task.maxFailures=4"])
        .arg(repo("jobs/spark/bill_run.py"))
        .args(["--period", "2026-01", "--shards", "3", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .arg("--billrun")
        .arg(env!("CARGO_BIN_EXE_billrun"))
        .arg("--fail-once")
        .arg(format!("1:{}", markers.display()))
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(matches!(run.status.code(), Some(0 | 1)), "spark job: {stdout}\n{stderr}");
    assert!(markers.join("shard-1-failed-once").exists(), "the fault was injected");
    assert!(stderr.contains("injected fault: shard 1/3 fails once"), "Spark saw the task fail:\n{stderr}");
    assert!(stdout.contains("billing period 2026-01 shard 1/3"), "and ran it again:\n{stdout}");
    crate::shards::same_tables(&single, &out, "spark");
    assert!(!out.join("_staged/billing_period=2026-01/n=3").exists(), "the staged usage is removed once committed");
}

#[test]
fn spark_sql_computes_the_shard_vectors() {
    let run = spark_submit("local[1]").arg(repo("tests/shards/check_vectors.py")).arg(repo("tests/shards/vectors.csv")).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("0 mismatches"), "{stdout}");
}
