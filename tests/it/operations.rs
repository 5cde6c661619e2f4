//! Operating billrun: one run of a period at a time, and dry runs.

use crate::lakes::billrun;

#[test]
fn a_dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    assert!(billrun().args(["generate", "--accounts", "3", "--resources", "1", "--days", "2", "--out"]).arg(&lake).status().unwrap().success());
    let out = billrun().args(["run", "--dry-run", "--period", "2026-01", "--input"]).arg(&lake).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("usage files in 48 hours"), "{text}");
    assert!(text.contains("bills/invoices/billing_period=2026-01/part-0.parquet"), "{text}");
    for d in ["bills", "cost", "state", "_locks", "_manifests"] {
        assert!(!lake.join(d).exists(), "{d} was written by a dry run");
    }
}

fn lock(lake: &std::path::Path, started_at: u64) {
    let dir = lake.join("_locks");
    std::fs::create_dir_all(&dir).unwrap();
    let body = format!(r#"{{"run_id":"other","pid":4242,"host":"batch-7","started_at":{started_at}}}"#);
    std::fs::write(dir.join("billing_period=2026-01.json"), body).unwrap();
}

#[test]
fn a_held_period_is_refused_and_a_stale_lock_is_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    assert!(billrun().args(["generate", "--accounts", "3", "--resources", "1", "--days", "2", "--out"]).arg(&lake).status().unwrap().success());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    lock(&lake, now);
    let out = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("held by run other (pid 4242 on batch-7"), "{err}");
    assert!(!lake.join("bills/invoices").exists());
    // A lock left by a run that died a day ago is stale.
    lock(&lake, now - 86_400);
    let out = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!lake.join("_locks/billing_period=2026-01.json").exists(), "the lock is released");
}

#[test]
fn two_runs_of_a_period_at_once_one_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    assert!(billrun().args(["generate", "--out"]).arg(&lake).status().unwrap().success());
    let spawn = || billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    let held = [&a, &b].iter().filter(|o| o.status.code() == Some(2)).count();
    let done = [&a, &b].iter().filter(|o| matches!(o.status.code(), Some(0 | 1))).count();
    assert_eq!((done, held), (1, 1), "{codes:?}");
    let loser = if a.status.code() == Some(2) { &a } else { &b };
    assert!(String::from_utf8_lossy(&loser.stderr).contains("is held by run"), "{}", String::from_utf8_lossy(&loser.stderr));
}

/// The config file describes the pipeline: lakes and account defaults; a misspelled
/// key is refused, naming it.
#[test]
fn the_config_file_describes_the_pipeline() {
    use crate::harness::*;
    let mut s = Scenario::new();
    s.price("cpu", billrun::model::PricingUnit::NodeHour, "1.00", "0");
    s.account("A", "0"); // grace and retention left null in the file
    s.usage("u1", "A", "cpu", "2026-01-02T00:00", "2026-01-02T01:00", 1); // into arrears at 01:00
    s.usage("u2", "A", "cpu", "2026-01-02T05:00", "2026-01-02T06:00", 1); // no grace: released
    s.write();
    let out = s.dir.path().join("out");
    let cfg = s.dir.path().join("billrun.toml");
    std::fs::write(
        &cfg,
        format!(
            "input = {:?}\noutput = {:?}\n[run]\nthreads = 1\n[accounts]\ngrace_days = 0\nretention_days = 0\n",
            s.lake().display().to_string(),
            out.display().to_string()
        ),
    )
    .unwrap();
    let r = billrun().arg("--config").arg(&cfg).args(["run", "--period", "2026-01"]).output().unwrap();
    assert!(matches!(r.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&r.stderr));
    let rejected = Outputs::rows(&read_table(&out, "bills/rejected", "2026-01"));
    assert_eq!(rejected.len(), 1);
    assert_eq!((rejected[0]["record_id"].as_str(), rejected[0]["reason"].as_str()), ("u2", "resource_released"));
    std::fs::write(&cfg, "inptu = 'x'\n").unwrap();
    let r = billrun().arg("--config").arg(&cfg).args(["run", "--period", "2026-01"]).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("inptu"), "{}", String::from_utf8_lossy(&r.stderr));
}

/// Re-closing a period with late usage records the invoices that changed, with old
/// and new figures, both run ids and the reason; closing again with the same inputs
/// adds nothing.
#[test]
fn restatements_record_every_changed_invoice() {
    use crate::harness::*;
    let mut s = Scenario::new();
    s.price("cpu", billrun::model::PricingUnit::NodeHour, "1.00", "0");
    s.account("A", "100");
    s.account("B", "100");
    s.usage("a1", "A", "cpu", "2026-01-02T00:00", "2026-01-02T01:00", 1);
    s.usage("b1", "B", "cpu", "2026-01-02T00:00", "2026-01-02T01:00", 1);
    s.close("2026-01").unwrap();
    let first_run = Outputs::rows(&read_table(&s.lake(), "bills/restatements", "2026-01"));
    assert!(first_run.is_empty());
    // Late usage for A lands after the close.
    s.usage("a-late", "A", "cpu", "2026-01-20T05:00", "2026-01-20T06:00", 3);
    let o = s.close("2026-01").unwrap();
    assert_eq!(o.report.restated, 1);
    let r = Outputs::rows(&read_table(&s.lake(), "bills/restatements", "2026-01"));
    assert_eq!(r.len(), 1, "{r:#?}");
    let r = &r[0];
    assert_eq!((r["invoice_id"].as_str(), r["old_total_due"].as_str(), r["new_total_due"].as_str()), ("INV-A-202601", "1.00", "4.00"));
    assert_eq!((r["old_closing_balance"].as_str(), r["new_closing_balance"].as_str()), ("99.00", "96.00"));
    assert_eq!(r["reason"], "test");
    assert_ne!(r["old_run_id"], r["new_run_id"]);
    let bytes = std::fs::read(s.lake().join("bills/restatements/billing_period=2026-01/part-0.parquet")).unwrap();
    let again = s.close("2026-01").unwrap();
    assert_eq!(again.report.restated, 0);
    assert_eq!(std::fs::read(s.lake().join("bills/restatements/billing_period=2026-01/part-0.parquet")).unwrap(), bytes);
}
