//! FOCUS conformance of `bills/line_items`, as judged by the FinOps Foundation's
//! focus-validator (FOCUS 1.2). scripts/test.sh installs it and sets
//! `FOCUS_VALIDATOR`; under CI the test is required.

use crate::lakes::billrun;
use std::path::Path;
use std::process::Command;

/// Rules that do not apply to a bill run. `InvoiceId-C-004-C` reads "InvoiceId MUST
/// be null when the charge is not associated with an invoice"; every billrun line is
/// on an invoice, but the validator's model encodes the rule with no condition, so it
/// demands a null InvoiceId on every row.
const NOT_APPLICABLE: &[&str] = &["InvoiceId-C-004-C"];

#[test]
fn line_items_conform_to_focus_1_2() {
    let Ok(validator) = std::env::var("FOCUS_VALIDATOR") else {
        assert!(std::env::var("CI").is_err(), "FOCUS_VALIDATOR is not set: run the tests with scripts/test.sh");
        eprintln!("focus-validator not configured; run scripts/test.sh to include this check");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    // The sample lake of the demo (billrun demo), and a second month of it.
    assert!(billrun().args(["generate", "--months", "2", "--out"]).arg(&lake).status().unwrap().success());
    let st = billrun().args(["backfill", "--from", "2026-01", "--to", "2026-02", "--input"]).arg(&lake).status().unwrap();
    assert!(matches!(st.code(), Some(0 | 1)));
    // The validator loads its rules by a path relative to its package's parent folder.
    let venv_python = Path::new(&validator).with_file_name("python");
    let out = Command::new(&venv_python)
        .args(["-c", "import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))"])
        .output()
        .unwrap();
    let site = String::from_utf8(out.stdout).unwrap().trim().to_string();
    for p in ["2026-01", "2026-02"] {
        let data = lake.join(format!("bills/line_items/billing_period={p}/part-0.parquet"));
        let report = tmp.path().join(format!("focus-{p}.xml"));
        let out = Command::new(&validator)
            .current_dir(&site)
            .args(["--validate-version", "1.2", "--block-download", "--output-type", "unittest", "--data-file"])
            .arg(&data)
            .arg("--output-destination")
            .arg(&report)
            .output()
            .unwrap();
        let xml = std::fs::read_to_string(&report).unwrap_or_else(|_| panic!("no report from focus-validator: {}", String::from_utf8_lossy(&out.stderr)));
        let cases = xml.matches("<testcase").count();
        assert!(cases > 500, "the validator ran its rules ({cases} cases)");
        let failed = failures(&xml);
        let real: Vec<&String> = failed.iter().filter(|f| !NOT_APPLICABLE.iter().any(|n| f.starts_with(n))).collect();
        assert!(real.is_empty(), "{p}: FOCUS rules failed: {real:?}");
    }
}

/// Names of the failed test cases of a JUnit report.
fn failures(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    for case in xml.split("<testcase").skip(1) {
        let body = case.split("</testcase>").next().unwrap_or("");
        if body.contains("<failure") || body.contains("<error") {
            let name = case.split("name=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("?");
            out.push(name.to_string());
        }
    }
    out
}
