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
    let spawn = || {
        billrun()
            .args(["run", "--period", "2026-01", "--input"])
            .arg(&lake)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
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

/// Hourly runs then the close give the same settlements and alerts as the close alone;
/// usage that lands late for an hour already settled shows in settlement_changes.
#[test]
fn hourly_runs_reconcile_with_the_close_and_late_usage_shows() {
    use crate::harness::*;
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let st = billrun().args(["generate", "--no-anomalies", "--accounts", "6", "--resources", "2", "--days", "3", "--out"]).arg(&lake).status().unwrap();
    assert!(st.success());
    let hour = |k: i64| billrun::time::format_ts(t("2026-01-01T00:00") + k * H)[..13].to_string();
    let settle = |k: i64| {
        let out = billrun().args(["run", "--hour", &hour(k), "--input"]).arg(&lake).output().unwrap();
        assert!(matches!(out.status.code(), Some(0 | 1)), "hour {k}: {}", String::from_utf8_lossy(&out.stderr));
    };
    // One by one, then a catch-up across a day, then one by one again.
    (0..24).for_each(settle);
    settle(47);
    (48..72).for_each(settle);
    // An hour already settled is not settled twice.
    let again = billrun().args(["run", "--hour", &hour(10), "--input"]).arg(&lake).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already settled"));

    let hourly = |table: &str| {
        let mut rows = Vec::new();
        for (rel, bytes) in files_under(&lake.join(format!("hourly/{table}")), |r| r.ends_with(".parquet")) {
            rows.extend(Outputs::rows(&billrun::lake::inputs::decode_parquet(&rel, bytes.into()).unwrap()));
        }
        rows.sort_by(|a, b| {
            (a.get("account_id"), a.get("hour_start"), a.get("alert_time")).cmp(&(b.get("account_id"), b.get("hour_start"), b.get("alert_time")))
        });
        rows
    };
    let (hourly_settlements, hourly_alerts) = (hourly("settlements"), hourly("alerts"));
    assert!(hourly_settlements.len() > 100, "{}", hourly_settlements.len());

    let out = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    let mut closed = Outputs::rows(&read_table(&lake, "bills/settlements", "2026-01"));
    closed.sort_by(|a, b| (a.get("account_id"), a.get("hour_start")).cmp(&(b.get("account_id"), b.get("hour_start"))));
    assert_eq!(closed, hourly_settlements, "the close settles every hour exactly as the hourly runs did");
    let mut alerts = Outputs::rows(&read_table(&lake, "bills/alerts", "2026-01"));
    alerts.sort_by(|a, b| (a.get("account_id"), a.get("alert_time")).cmp(&(b.get("account_id"), b.get("alert_time"))));
    assert_eq!(alerts, hourly_alerts);
    assert!(Outputs::rows(&read_table(&lake, "bills/settlement_changes", "2026-01")).is_empty());

    // Late usage for 10:00 on the 1st, an hour settled long ago: the re-close shows it.
    let late = billrun::generate::usage::Row {
        record_id: Some("late-1".into()),
        account_id: Some("acct-00000".into()),
        region: Some("ap-southeast-1".into()),
        resource_id: Some("late-resource".into()),
        module: Some("training".into()),
        sku: Some("modelarts.vm.gpu.v100".into()),
        unit_count: Some(1),
        pool_type: Some("public".into()),
        nodes: Some(2),
        quantity: Some(billrun::decimal::Dec::from_int(1)),
        start: Some(t("2026-01-01T10:00")),
        end: Some(t("2026-01-01T11:00")),
        ..Default::default()
    };
    let l = billrun::lake::store::Lake::open(lake.to_str().unwrap(), false).unwrap();
    billrun::generate::put_parquet(&l, "usage/date=2026-01-01/hour=10/late.parquet", billrun::generate::usage::usage_batch(&[late])).unwrap();
    let out = billrun().args(["run", "--period", "2026-01", "--reason", "late usage", "--input"]).arg(&lake).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    let changes = Outputs::rows(&read_table(&lake, "bills/settlement_changes", "2026-01"));
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!((changes[0]["account_id"].as_str(), changes[0]["hour_start"].as_str()), ("acct-00000", ts("2026-01-01T10:00").as_str()));
    let diff = d(&changes[0]["difference"]);
    // 2 V100 node-hours at 3.4272 = 6.8544 more in that hour: the cents deducted rise
    // by 6.85 or 6.86 depending on the hour's other lines.
    assert!(diff == d("6.85") || diff == d("6.86"), "{diff}");
    let restated = Outputs::rows(&read_table(&lake, "bills/restatements", "2026-01"));
    assert_eq!(restated.len(), 1);
    assert_eq!(restated[0]["reason"], "late usage");
}

/// Without a terminal, a run logs one structured line per stage, with counts and
/// durations.
#[test]
fn runs_log_one_line_per_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    assert!(billrun().args(["generate", "--accounts", "3", "--resources", "1", "--days", "2", "--out"]).arg(&lake).status().unwrap().success());
    let out = billrun().env("BILLRUN_LOG", "info").env("NO_COLOR", "1").args(["run", "--period", "2026-01", "--input"]).arg(&lake).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    for stage in ["plan", "duplicate pass", "rated", "recommendations", "published"] {
        assert!(log.lines().any(|l| l.contains(stage) && l.contains("=")), "no '{stage}' line in:\n{log}");
    }
    assert!(log.contains("rows=") && log.contains("secs="), "{log}");
    assert!(!log.contains("hours,"), "no progress bar without a terminal");
}

/// The README's first command: `billrun demo` generates the sample lake where there is
/// none, closes its month and shows the result; run again, it closes the same lake.
#[test]
fn the_demo_generates_a_sample_lake_and_closes_its_month() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("data/lake");
    let out = billrun().args(["demo", "--lake"]).arg(&lake).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("generated a sample lake"), "{shown}");
    assert!(shown.contains("total due:") && shown.contains("line items:"), "{shown}");
    assert!(lake.join("bills/invoices/billing_period=2026-01").is_dir());
    let again = billrun().args(["demo", "--lake"]).arg(&lake).output().unwrap();
    let shown = String::from_utf8_lossy(&again.stdout);
    assert!(!shown.contains("generated a sample lake") && shown.contains("total due:"), "{shown}");
}
