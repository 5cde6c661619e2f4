//! Faults, crashes and hostile input: nothing panics, nothing is lost, nothing is
//! half-published, nothing leaks.

use crate::lakes::billrun;
use crate::s3_server::{FaultKind, FaultRule, S3Server, SECRET_KEY};
use std::path::Path;
use std::process::Command;

/// Every output `.parquet` object under `dir` (relative path → bytes).
pub fn parquet_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    crate::harness::files_under(dir, |rel| rel.ends_with(".parquet") && (rel.starts_with("bills") || rel.starts_with("cost") || rel.starts_with("state")))
}

fn small_lake(dir: &Path) {
    let st = billrun().args(["generate", "--accounts", "4", "--resources", "2", "--out"]).arg(dir).status().unwrap();
    assert!(st.success());
}

fn close(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap()
}

#[test]
fn a_conservation_fault_aborts_and_keeps_the_previous_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    small_lake(&lake);
    let out = close(billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake));
    assert!(matches!(out.status.code(), Some(0 | 1)));
    let before = parquet_files(&lake);
    for fault in ["drop-line", "lose-rejected"] {
        let out = close(billrun().env("BILLRUN_INJECT_FAULT", fault).args(["run", "--period", "2026-01", "--input"]).arg(&lake));
        assert_eq!(out.status.code(), Some(2), "{fault}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("conservation check failed, nothing was published"), "{err}");
        assert_eq!(parquet_files(&lake), before, "{fault}: the previous outputs are untouched");
    }
}

/// Every kind of object-store call, failing for a while (retried) or for good (the run
/// fails, naming the object, and the previous complete outputs stay as they were).
#[test]
fn object_store_faults_at_every_call_site() {
    let s3 = S3Server::start();
    let mut c = billrun();
    s3.apply_env(&mut c).args(["generate", "--accounts", "3", "--resources", "2", "--days", "2", "--out", &s3.url("lake")]);
    assert!(c.status().unwrap().success());
    let run = |extra: &[(&str, &str)]| {
        let mut c = billrun();
        s3.apply_env(&mut c);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.args(["run", "--period", "2026-01", "--input", &s3.url("lake")]).output().unwrap()
    };
    assert!(matches!(run(&[]).status.code(), Some(0 | 1)));
    let baseline = parquet_files(&s3.bucket_dir().join("lake"));
    assert!(baseline.len() >= 11);
    let ops = ["ListObjectsV2", "GetObject", "HeadObject", "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "CopyObject"];
    for op in ops {
        s3.faults.clear();
        s3.faults.fail_next_op(op, 2, FaultKind::SlowDown);
        let out = run(&[]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{op} transient: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!s3.faults.injected().is_empty(), "{op}: a fault was injected");
        assert_eq!(parquet_files(&s3.bucket_dir().join("lake")), baseline, "{op} transient: same bytes");

        s3.faults.clear();
        s3.faults.fail_next_op(op, usize::MAX, FaultKind::InternalError);
        let out = run(&[("BILLRUN_S3_MAX_RETRIES", "1")]);
        assert_eq!(out.status.code(), Some(2), "{op} permanent");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        s3.faults.clear();
        assert_eq!(parquet_files(&s3.bucket_dir().join("lake")), baseline, "{op} permanent: previous outputs intact");
    }
    // A completion that fails late, after other tables were replaced: they are restored.
    s3.faults.clear();
    s3.faults.add(FaultRule::new(FaultKind::InternalError, usize::MAX).op("CompleteMultipartUpload").key_contains("state/"));
    let out = run(&[("BILLRUN_S3_MAX_RETRIES", "1")]);
    assert_eq!(out.status.code(), Some(2));
    s3.faults.clear();
    assert_eq!(parquet_files(&s3.bucket_dir().join("lake")), baseline, "restored after a late failure");
}

/// Killed (SIGKILL) at 20 random points, then re-run: the same bytes as a run that was
/// never interrupted; every table readable at every point. The killed runs keep no
/// usage in memory, so they spill the duplicate pass too, and leave no spill file.
#[test]
fn killed_runs_rerun_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    small_lake(&lake);
    let clean = tmp.path().join("clean");
    assert!(matches!(close(billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).arg("--output").arg(&clean)).status.code(), Some(0 | 1)));
    let expected = parquet_files(&clean);
    let spill = tmp.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let config = tmp.path().join("spilling.toml");
    std::fs::write(&config, format!("[run]\ncache_mib = 0\nspill_dir = {:?}\n", spill.to_str().unwrap())).unwrap();
    let run = |out: &Path| {
        let mut c = billrun();
        c.arg("--config").arg(&config).args(["run", "--period", "2026-01", "--input"]).arg(&lake).arg("--output").arg(out);
        c
    };
    let started = std::time::Instant::now();
    close(&mut run(&tmp.path().join("timing")));
    let span = started.elapsed().as_micros().max(1000) as u64;
    let out = tmp.path().join("killed");
    let mut rng = billrun::generate::Rng::new(7);
    for k in 0..20 {
        let mut child = run(&out).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_micros(rng.below(span)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        for (path, bytes) in parquet_files(&out) {
            assert!(billrun::lake::inputs::decode_parquet(&path, bytes.into()).is_ok(), "kill {k}: {path} is readable");
        }
        let left: Vec<_> = std::fs::read_dir(&spill).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "kill {k}: the killed run left {left:?} in the spill directory");
        let st = close(&mut run(&out));
        assert!(matches!(st.status.code(), Some(0 | 1)), "kill {k}: {}", String::from_utf8_lossy(&st.stderr));
        assert!(parquet_files(&out) == expected, "kill {k}: the re-run gives the uninterrupted bytes");
    }
}

/// Credentials come from the environment and never appear in logs, errors or the
/// manifest.
#[test]
fn credentials_are_never_printed() {
    let s3 = S3Server::start();
    let mut c = billrun();
    s3.apply_env(&mut c).args(["generate", "--accounts", "2", "--resources", "1", "--days", "2", "--out", &s3.url("lake")]);
    assert!(c.status().unwrap().success());
    let mut c = billrun();
    s3.apply_env(&mut c).env("BILLRUN_LOG", "trace").args(["run", "--json", "--period", "2026-01", "--input", &s3.url("lake")]);
    let ok = c.output().unwrap();
    s3.faults.fail_next_op("GetObject", usize::MAX, FaultKind::InternalError);
    let mut c = billrun();
    s3.apply_env(&mut c).env("BILLRUN_LOG", "trace").env("BILLRUN_S3_MAX_RETRIES", "0").args(["run", "--period", "2026-01", "--input", &s3.url("lake")]);
    let failed = c.output().unwrap();
    assert_eq!(failed.status.code(), Some(2));
    let manifest = std::fs::read_to_string(s3.bucket_dir().join("lake/_manifests/billing_period=2026-01/manifest.json")).unwrap();
    for (what, text) in [
        ("stdout", String::from_utf8_lossy(&ok.stdout).to_string()),
        ("log", String::from_utf8_lossy(&ok.stderr).to_string()),
        ("error", String::from_utf8_lossy(&failed.stderr).to_string()),
        ("manifest", manifest),
    ] {
        assert!(!text.contains(SECRET_KEY), "the secret key appears in the {what}");
    }
}

/// Ids that look like paths never become paths: everything written stays under the
/// output lake's own folders.
#[test]
fn hostile_ids_never_become_paths() {
    use crate::harness::*;
    let mut s = Scenario::new();
    s.price("cpu", billrun::model::PricingUnit::NodeHour, "1.00", "0");
    let hostile = ["../../escape", "a/b=c", "..", "billing_period=1999-01", &"x".repeat(100_000), "ünïcødé-\u{FFFD}"];
    for (k, id) in hostile.iter().enumerate() {
        s.account(id, "100");
        let r = s.usage(&format!("../r{k}"), id, "cpu", "2026-01-02T00:00", "2026-01-02T01:00", 1);
        r.resource_id = Some(format!("/etc/{id}"));
        r.enterprise_project = Some(id.to_string());
    }
    let o = s.close("2026-01").unwrap();
    assert_eq!(o.report.rows_rated, hostile.len() as u64);
    // Only the lake folder exists beside it, and inside it only the contract's folders.
    let top: Vec<String> = std::fs::read_dir(s.dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert_eq!(top, vec!["lake"]);
    let mut inside: Vec<String> = std::fs::read_dir(s.lake()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    inside.sort();
    assert_eq!(inside, vec!["_manifests", "accounts", "bills", "catalog", "cost", "inventory", "state", "usage"]);
    for t in ["bills/invoices", "bills/line_items"] {
        let parts: Vec<String> = std::fs::read_dir(s.lake().join(t)).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        assert_eq!(parts, vec!["billing_period=2026-01"], "{t}");
    }
}
