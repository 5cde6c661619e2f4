//! FOCUS 1.2 conformance of `bills/line_items`, as the provider declares it: the
//! FinOps Foundation's focus-validator run with the provider's applicability
//! criteria, and the rules it gets wrong or does not really check run as DuckDB
//! queries (`tests/focus/checks.sql`; `docs/focus-conformance.md` says why each).
//! scripts/test.sh installs the validator and sets `FOCUS_VALIDATOR`.

use crate::lakes::billrun;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What this provider supports, in the validator's names. Not declared, because the
/// platform has none of them: availability zones, capacity reservations, negotiated
/// prices, virtual currency, several billing or sub-account types, and pricing in a
/// currency other than the billing currency.
const SUPPORTED: &[&str] = &[
    "ACCOUNT_NAMING_SUPPORTED",
    "COMMITMENT_DISCOUNT_SUPPORTED",
    "MULTIPLE_PRICING_CATEGORIES_SUPPORTED",
    "PUBLIC_PRICE_LIST_SUPPORTED",
    "USAGE_MEASUREMENT_SUPPORTED",
    "UNIT_PRICING_SUPPORTED",
    "SUB_ACCOUNT_SUPPORTED",
    "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED",
    "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED",
    "REGION_SUPPORTED",
    "TAGGING_SUPPORTED",
];

/// Rules focus-validator 2.2.1 encodes against the FOCUS text (a prefix of the rule
/// id), each with the check of `tests/focus/checks.sql` that tests the real text:
/// - `InvoiceId-C-004-C` ("null when the charge is not associated with an invoice")
///   has lost its condition and demands a null InvoiceId on every row;
/// - `CommitmentDiscountStatus-C-004-C` ("not null when CommitmentDiscountId is not
///   null and ChargeCategory is Usage") tests the rows whose CommitmentDiscountId is
///   null; `-C-002-C` and `-C-000-C` are its parents;
/// - the `PricingCurrency*` columns, and their presence rules `CostAndUsage-D-046-C`
///   to `D-056-C`, apply when the provider has virtual currency *and* a public price
///   list (MUST) or prices in another currency *and* a public price list
///   (RECOMMENDED); the validator applies them when any one criterion holds.
const VALIDATOR_DEFECTS: &[(&str, &str)] = &[
    ("InvoiceId-C-004-C", "InvoiceId-C-004-C"),
    ("CommitmentDiscountStatus-C-000-C", "CommitmentDiscountStatus-C-004-C"),
    ("CommitmentDiscountStatus-C-002-C", "CommitmentDiscountStatus-C-004-C"),
    ("CommitmentDiscountStatus-C-004-C", "CommitmentDiscountStatus-C-004-C"),
    ("CostAndUsage-D-046-C", "PricingCurrency*"),
    ("CostAndUsage-D-047-C", "PricingCurrency*"),
    ("CostAndUsage-D-048-C", "PricingCurrency*"),
    ("CostAndUsage-D-050-C", "PricingCurrency*"),
    ("CostAndUsage-D-051-C", "PricingCurrency*"),
    ("CostAndUsage-D-052-C", "PricingCurrency*"),
    ("CostAndUsage-D-054-C", "PricingCurrency*"),
    ("CostAndUsage-D-055-C", "PricingCurrency*"),
    ("CostAndUsage-D-056-C", "PricingCurrency*"),
    ("PricingCurrencyContractedUnitPrice-", "PricingCurrency*"),
    ("PricingCurrencyEffectiveCost-", "PricingCurrency*"),
    ("PricingCurrencyListUnitPrice-", "PricingCurrency*"),
];

#[test]
fn line_items_conform_to_focus_1_2_as_the_provider_declares_it() {
    let validator = std::env::var("FOCUS_VALIDATOR").expect("FOCUS_VALIDATOR is not set: run the tests with scripts/test.sh, which installs focus-validator");
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for p in ["2026-01", "2026-02"] {
        let data = lake.join(format!("bills/line_items/billing_period={p}/part-0.parquet"));
        let report = tmp.path().join(format!("focus-{p}.xml"));
        let out = Command::new(&validator)
            .current_dir(&site)
            .args(["--validate-version", "1.2", "--block-download", "--output-type", "unittest", "--applicability-criteria", &SUPPORTED.join(",")])
            .arg("--data-file")
            .arg(&data)
            .arg("--output-destination")
            .arg(&report)
            .output()
            .unwrap();
        let xml = std::fs::read_to_string(&report).unwrap_or_else(|_| panic!("no report from focus-validator: {}", String::from_utf8_lossy(&out.stderr)));
        let cases = xml.matches("<testcase").count();
        let skipped = xml.matches("<skipped").count();
        assert!(cases > 500, "the validator ran its rules ({cases} cases)");
        // Without the declaration it skips 441 of them.
        assert!(skipped < 300, "the declaration applies the provider's rules ({skipped} of {cases} skipped)");
        let checks = duckdb_checks(root, &lake, p);
        assert!(checks.len() >= 25, "the DuckDB checks ran: {checks:?}");
        let broken: Vec<_> = checks.iter().filter(|(_, n)| **n != 0).collect();
        assert!(broken.is_empty(), "{p}: FOCUS rules broken (rows per rule): {broken:?}");
        for failed in failures(&xml) {
            let Some((_, check)) = VALIDATOR_DEFECTS.iter().find(|(id, _)| failed.starts_with(id)) else {
                panic!("{p}: FOCUS rule failed: {failed}");
            };
            assert_eq!(checks.get(*check), Some(&0), "{p}: {failed} is checked by its real text ({check})");
        }
    }
}

/// The checks of `tests/focus/checks.sql` on one period: rows breaking each rule.
fn duckdb_checks(root: &Path, lake: &Path, period: &str) -> BTreeMap<String, u64> {
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(py)
        .arg(root.join("tests/focus/run_checks.py"))
        .arg(lake.join(format!("bills/line_items/billing_period={period}/part-0.parquet")))
        .arg(lake.join(format!("bills/invoices/billing_period={period}/*.parquet")))
        .arg(root.join("tests/focus/checks.sql"))
        .output()
        .expect("python3 with duckdb");
    assert!(out.status.success(), "the DuckDB checks failed to run: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
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
