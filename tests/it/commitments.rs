//! Commitments across periods: the deduction audit trail, a package's amortization
//! over its life, and periods that chain through backfills and re-runs.

use crate::harness::*;
use crate::lakes::billrun;
use billrun::decimal::Dec;
use billrun::model::PricingUnit::*;

/// The deduction ledger says which package paid for which row, in which order, among
/// how many that could.
#[test]
fn the_deduction_ledger_names_the_package_of_each_row() {
    let mut s = Scenario::new();
    s.price("gpu", NodeHour, "2.00", "0");
    s.account("P", "1000");
    s.package("long", "P", "gpu", "4", "40.00", "2026-01-05T00:00", "2026-02-10T00:00");
    s.package("short", "P", "gpu", "2", "10.00", "2026-01-05T00:00", "2026-01-20T00:00");
    s.usage("r1", "P", "gpu", "2026-01-05T10:00", "2026-01-05T11:00", 3);
    let o = s.close("2026-01").unwrap();
    let d: Vec<(String, String, String, String, String)> = Outputs::rows(&o.deductions)
        .into_iter()
        .map(|r| (r["package_id"].clone(), r["record_id"].clone(), r["draw_order"].clone(), r["applicable_packages"].clone(), r["remaining_after"].clone()))
        .collect();
    assert_eq!(
        d,
        vec![("short".into(), "r1".into(), "1".into(), "2".into(), "0.00".into()), ("long".into(), "r1".into(), "2".into(), "2".into(), "3.00".into()),]
    );
}

/// §3 amortization: over a package's life, Σ EffectiveCost of its covered and
/// Unused lines is its price, within the rounding of its lines; the quota that lapses
/// at expiry lapses in the period of the expiry.
#[test]
fn a_package_amortizes_to_its_price_over_its_life() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0");
    s.account("L", "1000");
    s.package("pk", "L", "cpu", "3", "10.00", "2026-01-10T00:00", "2026-02-10T00:00");
    // Four rows of 20 minutes in January, one in February: 1/3 node-hour each,
    // 10.00 / 3 × 1/3 = 1.111111… → 1.11111111 each.
    for (i, day) in ["11", "12", "13", "14"].iter().enumerate() {
        s.usage(&format!("j{i}"), "L", "cpu", &format!("2026-01-{day}T08:00"), &format!("2026-01-{day}T08:20"), 1);
    }
    s.usage("f0", "L", "cpu", "2026-02-02T08:00", "2026-02-02T08:20", 1);
    let jan = s.close("2026-01").unwrap();
    let feb = s.close("2026-02").unwrap();
    let ledger = |o: &Outputs| {
        let r = &Outputs::rows(&o.ledger)[0];
        (r["opening_quota"].clone(), r["used_quota"].clone(), r["lapsed_quota"].clone(), r["closing_quota"].clone())
    };
    assert_eq!(ledger(&jan), ("3.00".into(), "1.3333333333".into(), "0.00".into(), "1.6666666667".into()));
    // February: 1/3 used, the remaining 4/3 lapses at expiry (2026-02-10). Shown to
    // 10 places, 5/3 − 1/3 − 4/3 would not read 0 (…667 − …333 − …333 = 1e-10):
    // the shown `used` takes the difference, so the ledger balances exactly.
    assert_eq!(ledger(&feb), ("1.6666666667".into(), "0.3333333334".into(), "1.3333333333".into(), "0.00".into()));
    let mut total = Dec::ZERO;
    let mut n = 0;
    for o in [&jan, &feb] {
        for l in o.lines_of("L") {
            if l["CommitmentDiscountId"] == "pk" && l["ChargeCategory"] == "Usage" {
                total = total.checked_add(d(&l["EffectiveCost"])).unwrap();
                n += 1;
            }
        }
    }
    // 5 × 1.11111111 + Unused 10 × (4/3)/3 = 4.44444444 → 9.99999999.
    assert_eq!(n, 6);
    assert_eq!(total, d("9.99999999"));
    assert!(d("10").checked_sub(total).unwrap().0 <= n * 50, "within half a unit of the 8th place per line");
}

fn generated(tmp: &std::path::Path) -> std::path::PathBuf {
    let lake = tmp.join("in");
    let out = billrun().args(["generate", "--months", "2", "--accounts", "10", "--resources", "3", "--out"]).arg(&lake).output().unwrap();
    assert!(out.status.success());
    lake
}

fn tables(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for p in ["2026-01", "2026-02"] {
        for t in billrun::jobs::close::TABLES {
            let f = dir.join(format!("{t}/billing_period={p}/part-0.parquet"));
            v.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    v
}

/// Two months closed in one backfill equal the same two months closed one by one.
#[test]
fn a_backfill_equals_closing_month_by_month() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = generated(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let st = billrun().args(["backfill", "--from", "2026-01", "--to", "2026-02", "--input"]).arg(&lake).arg("--output").arg(&a).status().unwrap();
    assert!(matches!(st.code(), Some(0 | 1)));
    for p in ["2026-01", "2026-02"] {
        let st = billrun().args(["run", "--period", p, "--input"]).arg(&lake).arg("--output").arg(&b).status().unwrap();
        assert!(matches!(st.code(), Some(0 | 1)));
    }
    let (ta, tb) = (tables(&a), tables(&b));
    for (x, y) in ta.iter().zip(&tb) {
        assert!(x.1 == y.1, "{} differs from {}", x.0, y.0);
    }
}

/// Re-closing a period whose successor is closed is refused, naming the successor;
/// with --cascade the successor is re-closed too.
#[test]
fn rerunning_a_period_with_closed_successors_refuses_or_cascades() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = generated(tmp.path());
    let out = tmp.path().join("out");
    let st = billrun().args(["backfill", "--from", "2026-01", "--to", "2026-02", "--input"]).arg(&lake).arg("--output").arg(&out).status().unwrap();
    assert!(matches!(st.code(), Some(0 | 1)));
    let before = tables(&out);
    let r = billrun().args(["run", "--period", "2026-01", "--input"]).arg(&lake).arg("--output").arg(&out).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("2026-02") && err.contains("--cascade"), "{err}");
    assert_eq!(tables(&out), before, "a refused run changes nothing");
    let r = billrun().args(["run", "--cascade", "--period", "2026-01", "--input"]).arg(&lake).arg("--output").arg(&out).output().unwrap();
    assert!(matches!(r.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&r.stderr));
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains("billing period 2026-01") && stdout.contains("billing period 2026-02"), "{stdout}");
    assert_eq!(tables(&out), before, "same inputs, same bytes");
}

/// Each line's `ChargeDescription` is its own: kind, SKU, tier and commitment. The
/// writer composes each distinct description once and shares it among the lines that
/// have it, so lines of two tiers, two SKUs and two packages must each keep theirs.
#[test]
fn each_line_is_described_by_its_kind_tier_and_commitment() {
    let mut s = Scenario::new();
    s.price("gpu", NodeHour, "2.00", "0").price("gpu", NodeHour, "1.50", "10");
    s.price("cpu", NodeHour, "1.00", "0");
    s.account("D", "1000");
    s.package("pa", "D", "cpu", "1", "1.00", "2026-01-05T00:00", "2026-01-20T00:00");
    s.package("pb", "D", "cpu", "5", "4.00", "2026-01-05T00:00", "2026-01-20T00:00");
    s.usage("g1", "D", "gpu", "2026-01-06T00:00", "2026-01-06T01:00", 8);
    s.usage("g2", "D", "gpu", "2026-01-06T01:00", "2026-01-06T02:00", 8);
    s.usage("c1", "D", "cpu", "2026-01-06T00:00", "2026-01-06T01:00", 3);
    let o = s.close("2026-01").unwrap();
    let lines = o.lines_of("D");
    let mut seen = std::collections::BTreeSet::new();
    for l in &lines {
        let (sku, id, kind) = (&l["SkuId"], &l["CommitmentDiscountId"], &l["CommitmentDiscountType"]);
        let expected = match (l["ChargeCategory"].as_str(), l["CommitmentDiscountStatus"].as_str()) {
            ("Adjustment", _) => "truncation of the hourly settlement to cents".to_string(),
            ("Purchase", _) => format!("purchase of {kind} {id} ({sku})"),
            (_, "Unused") => format!("unused {kind} {id}"),
            (_, "Used") => format!("{sku} covered by {kind} {id}"),
            _ => format!("{sku} pay-per-use, tier from {}", l["x_TierStart"]),
        };
        assert_eq!(l["ChargeDescription"], expected, "{l:?}");
        seen.insert(expected);
    }
    for d in [
        "gpu pay-per-use, tier from 0.00",
        "gpu pay-per-use, tier from 10.00",
        "cpu covered by Resource Package pa",
        "cpu covered by Resource Package pb",
        "purchase of Resource Package pa (cpu)",
        "purchase of Resource Package pb (cpu)",
    ] {
        assert!(seen.contains(d), "{d:?} among {seen:?}");
    }
}
