//! Lakes on Azure Blob Storage (Azurite) and Google Cloud Storage (fake-gcs-server):
//! a period closes there as it does on a local disk, byte for byte; publication is
//! all or nothing and one run at a time; the account key is never printed; the report
//! reads its figures there.

use crate::azurite::{Azurite, KEY};
use crate::fake_gcs::{FakeGcs, BUCKET};
use crate::lakes::billrun;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The tables of a lake (the manifest and locks excluded: the manifest has timings).
fn tables(files: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    files.into_iter().filter(|(p, _)| p.starts_with("bills") || p.starts_with("cost") || p.starts_with("state")).collect()
}

fn local_tables(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tables(crate::harness::files_under(dir, |_| true))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("billrun runs");
    assert!(matches!(out.status.code(), Some(0 | 1)), "billrun failed: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

const SMALL: [&str; 5] = ["--accounts", "12", "--resources", "3", "--months"];

/// The same two months closed on a local disk.
fn local_backfill(tmp: &Path) -> Vec<(String, Vec<u8>)> {
    let lake = tmp.join("local");
    run(billrun().args(["generate", "--out"]).arg(&lake).args(SMALL).arg("2"));
    run(billrun().args(["backfill", "--from", "2026-01", "--to", "2026-02", "--input"]).arg(&lake));
    local_tables(&lake)
}

fn assert_same(what: &str, remote: &[(String, Vec<u8>)], local: &[(String, Vec<u8>)]) {
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(remote), names(local), "{what}: the same tables");
    assert!(local.iter().any(|(p, _)| p.starts_with("bills/invoices/billing_period=2026-02")), "both months closed");
    for (a, b) in remote.iter().zip(local) {
        assert!(a.1 == b.1, "{what}: {} differs from the local close", a.0);
    }
}

#[test]
fn a_backfill_on_azure_with_transient_faults_equals_the_local_close() {
    let az = Azurite::start();
    let tmp = tempfile::tempdir().unwrap();
    run(az.apply_env(&mut billrun()).args(["generate", "--out", &az.url("in")]).args(SMALL).arg("2"));
    // Transient errors on reads, on staged blocks and on the commit of a block list
    // are retried.
    az.proxy.fail_next("GET", "/in/usage/", 3, 503);
    az.proxy.fail_next("PUT", "comp=block&", 2, 503);
    az.proxy.fail_next("PUT", "comp=blocklist", 1, 500);
    // The output in the Hadoop driver's form of the same container.
    let output = "abfss://billrun@devstoreaccount1.dfs.core.windows.net/out";
    run(az.apply_env(&mut billrun()).args(["backfill", "--from", "2026-01", "--to", "2026-02", "--input", &az.url("in"), "--output", output]));
    assert_eq!(az.proxy.injected().len(), 6, "every fault was met and retried: {:?}", az.proxy.injected());
    let everything = az.files("");
    assert!(everything.iter().all(|(p, _)| p.starts_with("in/") || p.starts_with("out/")), "nothing outside the lakes' prefixes");
    assert!(!everything.iter().any(|(p, _)| p.starts_with("out/_locks/") || p.starts_with("out/_rollback/")), "no lock or rollback copy is left");
    assert_same("azure", &tables(az.files("out")), &local_backfill(tmp.path()));
    // The report reads a lake where it is: its figures on Azure are the local close's.
    let figures = |lake: &str| run(az.apply_env(&mut billrun()).args(["report", "--period", "2026-02", "--json", "--output", lake])).stdout;
    let (remote, local) = (figures(output), figures(tmp.path().join("local").to_str().unwrap()));
    assert!(String::from_utf8_lossy(&local).contains("\"total_due\""), "figures printed");
    assert_eq!(String::from_utf8_lossy(&remote), String::from_utf8_lossy(&local));
}

#[test]
fn a_failed_publication_on_azure_leaves_the_previous_outputs() {
    let az = Azurite::start();
    run(az.apply_env(&mut billrun()).args(["generate", "--out", &az.url("a"), "--accounts", "6", "--resources", "2", "--days", "3"]));
    run(az.apply_env(&mut billrun()).args(["generate", "--out", &az.url("b"), "--accounts", "7", "--resources", "2", "--days", "3", "--seed", "9"]));
    run(az.apply_env(&mut billrun()).args(["run", "--period", "2026-01", "--input", &az.url("a"), "--output", &az.url("out")]));
    let before = tables(az.files("out"));
    assert!(before.len() > 5);
    // Other inputs, so every table of the second run differs from the first; the
    // commit of the state fails for good, after the other tables were replaced.
    az.proxy.fail_next("PUT", "/out/state/billing_period=2026-01/part-0.parquet?comp=blocklist", usize::MAX, 500);
    let out = az
        .apply_env(&mut billrun())
        .env("BILLRUN_STORE_MAX_RETRIES", "1")
        .args(["run", "--period", "2026-01", "--input", &az.url("b"), "--output", &az.url("out")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("state/billing_period=2026-01"), "{err}");
    // The store's answer, once: its causes are not chained again.
    assert_eq!(err.matches("injected by the test").count(), 1, "{err}");
    az.proxy.heal();
    let after = tables(az.files("out"));
    assert_eq!(after.len(), before.len(), "the same tables");
    for (a, b) in after.iter().zip(&before) {
        assert!(a == b, "{} is the previous run's, restored", a.0);
    }
    // A run that fails before anything is published leaves no outputs at all.
    az.proxy.fail_next("PUT", "comp=blocklist", usize::MAX, 500);
    let out = az
        .apply_env(&mut billrun())
        .env("BILLRUN_STORE_MAX_RETRIES", "1")
        .args(["run", "--period", "2026-01", "--input", &az.url("a"), "--output", &az.url("empty")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bills/") || err.contains("state/"), "the error names the object: {err}");
    assert!(tables(az.files("empty")).is_empty(), "nothing is published");
}

#[test]
fn two_closes_of_a_period_on_azure_at_once_one_publishes() {
    let az = Azurite::start();
    run(az.apply_env(&mut billrun()).args(["generate", "--out", &az.url("in"), "--accounts", "12", "--resources", "3"]));
    let spawn = || {
        az.apply_env(&mut billrun())
            .args(["run", "--period", "2026-01", "--input", &az.url("in")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let won = [&a, &b].iter().filter(|o| matches!(o.status.code(), Some(0 | 1))).count();
    let held: Vec<_> = [&a, &b].into_iter().filter(|o| o.status.code() == Some(2)).collect();
    assert_eq!((won, held.len()), (1, 1), "{:?} {:?}", a.status, b.status);
    let err = String::from_utf8_lossy(&held[0].stderr);
    assert!(err.contains("is held by run"), "{err}");
    // What was published is one whole run's.
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("in");
    run(billrun().args(["generate", "--out"]).arg(&lake).args(["--accounts", "12", "--resources", "3"]));
    run(billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake));
    assert_eq!(tables(az.files("in")), local_tables(&lake));
}

/// Killed (SIGKILL) at random points of a close on Azure, then run again: every table
/// is readable at every point (an upload not committed is not there), and the re-run
/// gives the bytes of a run never interrupted.
#[test]
fn a_killed_close_on_azure_reruns_to_the_same_bytes() {
    let az = Azurite::start();
    run(az.apply_env(&mut billrun()).args(["generate", "--out", &az.url("in"), "--accounts", "6", "--resources", "2", "--days", "4"]));
    let close =
        |out: &str| az.apply_env(&mut billrun()).args(["run", "--period", "2026-01", "--input", &az.url("in"), "--output", &az.url(out)]).output().unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(close("clean").status.code(), Some(0 | 1)));
    let span = started.elapsed().as_micros().max(1000) as u64;
    let expected = tables(az.files("clean"));
    let mut rng = billrun::generate::Rng::new(11);
    for k in 0..8 {
        let mut child = az
            .apply_env(&mut billrun())
            .args(["run", "--period", "2026-01", "--input", &az.url("in"), "--output", &az.url("out")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(rng.below(span)));
        let _ = child.kill();
        let _ = child.wait();
        for (path, bytes) in az.files("out").into_iter().filter(|(p, _)| p.ends_with(".parquet")) {
            assert!(billrun::lake::inputs::decode_parquet(&path, bytes.into()).is_ok(), "kill {k}: {path} is readable");
        }
        let again = close("out");
        assert!(matches!(again.status.code(), Some(0 | 1)), "kill {k}: {}", String::from_utf8_lossy(&again.stderr));
        assert!(tables(az.files("out")) == expected, "kill {k}: the re-run gives the uninterrupted bytes");
    }
}

/// The account key comes from the environment and never appears in logs, errors or
/// the manifest.
#[test]
fn the_azure_key_is_never_printed() {
    let az = Azurite::start();
    run(az.apply_env(&mut billrun()).args(["generate", "--accounts", "2", "--resources", "1", "--days", "2", "--out", &az.url("lake")]));
    let ok = run(az.apply_env(&mut billrun()).env("BILLRUN_LOG", "trace").args(["run", "--json", "--period", "2026-01", "--input", &az.url("lake")]));
    az.proxy.fail_next("GET", "", usize::MAX, 500);
    let failed = az
        .apply_env(&mut billrun())
        .env("BILLRUN_LOG", "trace")
        .env("BILLRUN_STORE_MAX_RETRIES", "0")
        .args(["run", "--period", "2026-01", "--input", &az.url("lake")])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(2));
    az.proxy.heal();
    let manifest = az.files("lake/_manifests").into_iter().map(|(_, b)| String::from_utf8(b).unwrap()).collect::<String>();
    assert!(manifest.contains("billing_period"), "the manifest was read");
    for (what, text) in [
        ("stdout", String::from_utf8_lossy(&ok.stdout).to_string()),
        ("log", String::from_utf8_lossy(&ok.stderr).to_string()),
        ("error", String::from_utf8_lossy(&failed.stderr).to_string()),
        ("manifest", manifest),
    ] {
        assert!(!text.contains(KEY) && !text.contains(&KEY[..20]), "the account key appears in the {what}");
    }
}

/// Google Cloud Storage as an input lake: fake-gcs-server serves the XML API's reads,
/// which object_store uses (its writes it does not serve; see the README).
#[test]
fn a_backfill_reading_a_gcs_lake_equals_the_local_close() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("gcs");
    run(billrun().args(["generate", "--out"]).arg(data.join(BUCKET).join("in")).args(SMALL).arg("2"));
    let gcs = FakeGcs::start(&data);
    let out = tmp.path().join("out");
    run(gcs.apply_env(&mut billrun()).args(["backfill", "--from", "2026-01", "--to", "2026-02", "--input", &gcs.url("in"), "--output"]).arg(&out));
    assert_same("gcs", &local_tables(&out), &local_backfill(tmp.path()));
}
