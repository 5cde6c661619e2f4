//! The binary over real lakes: a sample month, its read-back by DuckDB, determinism
//! across thread counts and re-runs, S3 with faults, exit codes and bad input.

use crate::s3_server::{FaultKind, S3Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn billrun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_billrun"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("billrun runs");
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "billrun failed: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

fn generate(lake: &Path, extra: &[&str]) {
    let mut c = billrun();
    c.args(["generate", "--out", lake.to_str().unwrap(), "--accounts", "12", "--resources", "3"]).args(extra);
    run_ok(&mut c);
}

/// All files under `dir`, relative path → bytes (the manifest excluded: it has timings).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    crate::harness::files_under(dir, |rel| !rel.starts_with("_manifests"))
}

fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files(dir).into_iter().filter(|(p, _)| p.starts_with("bills") || p.starts_with("cost") || p.starts_with("state")).collect()
}

#[test]
fn parallel_equals_sequential_and_reruns_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    generate(&input, &["--months", "2"]);
    let mut results: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
    for (threads, name) in [("1", "seq"), ("2", "par"), ("2", "par")] {
        let out: PathBuf = tmp.path().join(name);
        run_ok(billrun().args(["--threads", threads, "backfill", "--from", "2026-01", "--to", "2026-02", "--input"]).arg(&input).arg("--output").arg(&out));
        results.push(outputs(&out));
    }
    assert!(results[0].len() >= 16, "{} files", results[0].len());
    assert_eq!(results[0].iter().map(|f| &f.0).collect::<Vec<_>>(), results[1].iter().map(|f| &f.0).collect::<Vec<_>>());
    for (a, b) in results[0].iter().zip(&results[1]) {
        assert!(a.1 == b.1, "{} differs between 1 and 2 threads", a.0);
    }
    assert_eq!(results[1], results[2], "a re-run changed bytes");
}

/// The generator writes hours in parallel: the same seed gives the same files at any
/// thread count.
#[test]
fn generated_lakes_do_not_depend_on_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let lakes: Vec<Vec<(String, Vec<u8>)>> = ["1", "3"]
        .iter()
        .map(|threads| {
            let lake = tmp.path().join(format!("lake-{threads}"));
            run_ok(billrun().args(["--threads", threads, "generate", "--accounts", "12", "--resources", "3", "--days", "3", "--out"]).arg(&lake));
            files(&lake)
        })
        .collect();
    assert!(lakes[0].iter().filter(|(p, _)| p.starts_with("usage/")).count() >= 72, "{} files", lakes[0].len());
    assert!(lakes[0] == lakes[1], "the generated lakes differ between 1 and 3 threads");
}

#[test]
fn duckdb_reads_back_what_billrun_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    generate(&lake, &["--months", "2"]);
    let mut reports = Vec::new();
    for p in ["2026-01", "2026-02"] {
        let out = run_ok(billrun().args(["run", "--json", "--period", p, "--input"]).arg(&lake));
        reports.push(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap());
    }
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out =
        Command::new(py).arg(root.join("tests/duckdb_check.py")).arg(&lake).arg(root.join("sql")).output().expect("python3 with duckdb (pip install duckdb)");
    assert!(out.status.success(), "duckdb check failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["reconciliation_mismatches"], 0, "{got}");
    assert_eq!(got["truncation_mismatches"], 0, "{got}");
    assert_eq!(got["periods"], serde_json::json!(["2026-01", "2026-02"]));
    let rated: u64 = reports.iter().map(|r| r["rows_rated"].as_u64().unwrap()).sum();
    let rejected: u64 = reports.iter().map(|r| r["rejected"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>()).sum();
    let in_rows: u64 = reports.iter().map(|r| r["rows_in"].as_u64().unwrap()).sum();
    assert_eq!(got["rated_rows"].as_u64().unwrap(), rated);
    assert_eq!(got["rejected_rows"].as_u64().unwrap(), rejected);
    assert_eq!(rated + rejected, in_rows);
    // Total due: billrun's per-currency totals, summed, equal DuckDB's sum of invoices.
    let mut ours = billrun::decimal::Dec::ZERO;
    for r in &reports {
        for v in r["total_due"].as_object().unwrap().values() {
            ours = ours.checked_add(billrun::decimal::Dec::parse(v.as_str().unwrap()).unwrap()).unwrap();
        }
    }
    let theirs = billrun::decimal::Dec::parse(got["total_due"].as_str().unwrap()).unwrap();
    assert_eq!(ours, theirs);

    // The analyst queries of sql/ agree with billrun's own figures.
    assert_eq!(got["composition_mismatches"], 0, "{got}");
    // Every composition view adds up to the bill, the SKU and region views included.
    assert_eq!(got["composition_totals_mismatches"], 0, "{got}");
    // Every key of every view, recomputed from the line items.
    assert_eq!(got["composition_view_mismatches"], 0, "{got}");
    assert_eq!(got["composition_dimensions"], 8, "{got}");
    assert_eq!(got["daily_trend_mismatches"], 0, "{got}");
    assert_eq!(got["monthly_mismatches"], 0, "{got}");
    assert!(got["daily_trend_days"].as_u64().unwrap() > 0, "{got}");
    // The forecast (each day's month to date and pace), the top resources, and the
    // change from January, each recomputed from the line items.
    assert_eq!(got["forecast_mismatches"], 0, "{got}");
    assert_eq!(got["top_resources_mismatches"], 0, "{got}");
    for view in ["forecast", "top_resources", "period_over_period"] {
        assert!(got["trend_rows"][view].as_u64().unwrap_or(0) > 0, "no {view} rows to compare: {got}");
    }
    assert_eq!(got["utilization_mismatches"], 0, "{got}");
    assert!(got["packages"].as_u64().unwrap() > 0);
    assert_eq!(got["allocated_by_period"], got["effective_by_period"]);
    assert!(got["tag_keys"].as_u64().unwrap() > 0);
    assert_eq!(got["tag_mismatches"], 0, "{got}");
    // The allocation roll-ups of cost/analysis, by project and by tag key and value.
    assert_eq!(got["allocation_view_mismatches"], 0, "{got}");
    assert!(got["allocation_view_rows"].as_u64().unwrap() > 0, "{got}");
    let mut top = Vec::new();
    let mut arrears = Vec::new();
    for p in ["2026-01", "2026-02"] {
        let mut inv = crate::harness::Outputs::rows(&crate::harness::read_table(&lake, "bills/invoices", p));
        inv.sort_by(|a, b| {
            let (x, y) = (crate::harness::d(&a["total_due"]), crate::harness::d(&b["total_due"]));
            y.cmp(&x).then(a["account_id"].cmp(&b["account_id"]))
        });
        for r in inv.iter().take(10) {
            top.push(serde_json::json!([p, r["account_id"], crate::harness::d(&r["total_due"]).0]));
        }
        for r in &inv {
            if r["status_at_close"] != "active" {
                arrears.push((p.to_string(), r["account_id"].clone(), r["status_at_close"].clone(), crate::harness::d(&r["arrears_amount"])));
            }
        }
    }
    let theirs_top: Vec<serde_json::Value> = got["top_spenders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!([r[0], r[1], billrun::decimal::Dec::parse(r[2].as_str().unwrap()).unwrap().0]))
        .collect();
    assert_eq!(theirs_top, top);
    let mut theirs_arrears: Vec<(String, String, String, billrun::decimal::Dec)> = got["arrears"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().into(),
                r[1].as_str().unwrap().into(),
                r[2].as_str().unwrap().into(),
                billrun::decimal::Dec::parse(r[3].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    theirs_arrears.sort();
    arrears.sort();
    assert_eq!(theirs_arrears, arrears);
    let in_arrears: u64 = reports.iter().map(|r| r["accounts_in_arrears"].as_u64().unwrap()).sum();
    assert_eq!(arrears.len() as u64, in_arrears);
}

#[test]
fn a_month_closes_on_s3_with_transient_faults_and_matches_local() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("lake");
    generate(&local, &[]);
    // Input on S3: generated there by the same seed.
    let mut c = billrun();
    s3.apply_env(&mut c).args(["generate", "--out", &s3.url("in"), "--accounts", "12", "--resources", "3"]);
    run_ok(&mut c);
    // Transient errors on reads and on the upload of parts are retried.
    s3.faults.fail_next_op("GetObject", 3, FaultKind::SlowDown);
    s3.faults.fail_next_op("UploadPart", 1, FaultKind::ServiceUnavailable);
    let mut c = billrun();
    s3.apply_env(&mut c).args(["run", "--period", "2026-01", "--input", &s3.url("in"), "--output", &s3.url("out")]);
    run_ok(&mut c);
    assert!(s3.faults.injected().len() >= 3, "faults were injected: {:?}", s3.faults.injected());
    run_ok(billrun().args(["run", "--period", "2026-01", "--input"]).arg(&local));
    // Nothing outside the lakes' own prefixes.
    let mut top: Vec<String> = std::fs::read_dir(s3.bucket_dir()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    top.sort();
    assert_eq!(top, vec!["in", "out"]);
    let remote = outputs(&s3.bucket_dir().join("out"));
    let here = outputs(&local);
    assert_eq!(remote.len(), here.len());
    for (a, b) in remote.iter().zip(&here) {
        assert_eq!(a.0, b.0);
        assert!(a.1 == b.1, "{} differs between S3 and local", a.0);
    }
}

/// A period in three shards and its commit with both lakes on S3, through transient
/// faults on the shards' reads (the commit's reads are ranged) and uploads: the
/// single close's bytes, and no shard results left on the store.
#[test]
fn a_period_in_shards_on_s3_matches_the_local_close() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("lake");
    generate(&local, &["--days", "4"]);
    let mut c = billrun();
    s3.apply_env(&mut c).args(["generate", "--out", &s3.url("in"), "--accounts", "12", "--resources", "3", "--days", "4"]);
    run_ok(&mut c);
    for k in 0..3 {
        s3.faults.fail_next_op("GetObject", 2, FaultKind::SlowDown);
        let mut c = billrun();
        s3.apply_env(&mut c).args(["run", "--period", "2026-01", "--shard", &format!("{k}/3"), "--input", &s3.url("in"), "--output", &s3.url("out")]);
        run_ok(&mut c);
    }
    s3.faults.fail_next_op("GetObject", 2, FaultKind::SlowDown);
    s3.faults.fail_next_op("UploadPart", 1, FaultKind::ServiceUnavailable);
    let mut c = billrun();
    s3.apply_env(&mut c).args(["commit", "--period", "2026-01", "--shards", "3", "--input", &s3.url("in"), "--output", &s3.url("out")]);
    run_ok(&mut c);
    assert!(s3.faults.injected().len() >= 8, "faults were injected: {:?}", s3.faults.injected());
    run_ok(billrun().args(["run", "--period", "2026-01", "--input"]).arg(&local));
    let remote = outputs(&s3.bucket_dir().join("out"));
    let here = outputs(&local);
    assert_eq!(remote.iter().map(|f| &f.0).collect::<Vec<_>>(), here.iter().map(|f| &f.0).collect::<Vec<_>>());
    for (a, b) in remote.iter().zip(&here) {
        assert!(a.1 == b.1, "{} differs between the shards on S3 and the local close", a.0);
    }
    let left: Vec<String> =
        files(&s3.bucket_dir().join("out")).into_iter().map(|f| f.0).filter(|p| p.starts_with("_shards") || p.starts_with("_locks")).collect();
    assert!(left.is_empty(), "left on the store: {left:?}");
}

#[test]
fn a_permanent_s3_error_fails_the_run_and_publishes_nothing() {
    let s3 = S3Server::start();
    let mut c = billrun();
    s3.apply_env(&mut c).args(["generate", "--out", &s3.url("in"), "--accounts", "3", "--resources", "2"]);
    run_ok(&mut c);
    s3.faults.fail_next_op("CompleteMultipartUpload", usize::MAX, FaultKind::InternalError);
    let mut c = billrun();
    s3.apply_env(&mut c).env("BILLRUN_S3_MAX_RETRIES", "1").args(["run", "--period", "2026-01", "--input", &s3.url("in"), "--output", &s3.url("out")]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bills/") || err.contains("state/"), "the error names the object: {err}");
    let published = outputs(&s3.bucket_dir().join("out"));
    assert!(published.is_empty(), "nothing is published: {:?}", published.iter().map(|f| &f.0).collect::<Vec<_>>());
}

#[test]
fn exit_codes_follow_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    // Bad arguments: 2.
    let out = billrun().args(["run", "--period", "2026-13"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--period"));
    // A lake with rejected rows: 1.
    generate(&lake, &[]);
    let out = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    // A missing input lake: 2, naming it.
    let out = billrun().args(["run", "--period", "2026-01", "--input"]).arg(tmp.path().join("nope")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn a_clean_month_exits_zero() {
    use crate::harness::*;
    let mut s = Scenario::new();
    s.price("cpu", billrun::model::PricingUnit::NodeHour, "1.00", "0");
    s.account("A", "100");
    s.usage("a", "A", "cpu", "2026-01-02T00:00", "2026-01-02T01:00", 1);
    s.write();
    let out = billrun().args(["run", "--period", "2026-01", "--input"]).arg(s.lake()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn corrupt_and_incomplete_files_refuse_the_run_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    generate(&lake, &["--no-anomalies"]);
    let victim = lake.join("usage/date=2026-01-03/hour=04/part-0.parquet");
    let good = std::fs::read(&victim).unwrap();
    // Truncated Parquet.
    std::fs::write(&victim, &good[..good.len() / 2]).unwrap();
    let out = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("usage/date=2026-01-03/hour=04/part-0.parquet"), "{err}");
    // A file lacking a contract column.
    let batch = {
        let b = billrun::lake::inputs::decode_parquet("x", good.clone().into()).unwrap().remove(0);
        let i = b.schema().index_of("nodes").unwrap();
        let mut b = b;
        b.remove_column(i);
        b
    };
    let l = billrun::lake::store::Lake::open(lake.to_str().unwrap(), false).unwrap();
    billrun::generate::put_parquet(&l, "usage/date=2026-01-03/hour=04/part-0.parquet", batch).unwrap();
    let out = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("column 'nodes' is missing") && err.contains("hour=04"), "{err}");
    // Nothing was published by the refused runs.
    assert!(!lake.join("bills").exists());
}

#[test]
fn the_sample_lake_exercises_every_rejection_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    run_ok(billrun().args(["generate", "--out"]).arg(&lake));
    let out = run_ok(billrun().args(["run", "--json", "--period", "2026-01", "--input"]).arg(&lake));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut seen: Vec<String> = r["rejected"].as_object().unwrap().keys().cloned().collect();
    seen.extend(r["rejected_orders"].as_object().unwrap().keys().cloned());
    for reason in billrun::model::Reason::ALL {
        assert!(seen.iter().any(|s| s == reason.as_str()), "no row rejected {}: {seen:?}", reason.as_str());
    }
}
