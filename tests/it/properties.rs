//! Invariants over random scenarios — random accounts, SKUs, prices of up to 10
//! places, graduated tiers (free ones included), packages, payments and rows: every
//! row ends in exactly one place, money is conserved, settlements are the truncation
//! of their hour, quotas never go negative and the package ledger balances exactly,
//! and one thread gives the same bytes as two, and hours rated in blocks of a few
//! accounts the same bytes as hours rated whole. The cost analysis's views and the
//! allocations equal the figures DuckDB computes from the line items.

use crate::harness::*;
use billrun::decimal::Dec;
use billrun::jobs::close::{self, CloseJob};
use billrun::model::PricingUnit::*;
use billrun::time::Period;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
struct RowSpec {
    account: usize,
    sku: usize,
    hour: i64,
    start_s: i64,
    dur_s: i64,
    nodes: i32,
    dedicated_job: bool,
}

fn row_spec() -> impl Strategy<Value = RowSpec> {
    (0..8usize, 0..8usize, 0..72i64, 0..3599i64, 1..3600i64, 1..5i32, prop::bool::weighted(0.1))
        .prop_map(|(account, sku, hour, start_s, dur_s, nodes, dedicated_job)| RowSpec { account, sku, hour, start_s, dur_s, nodes, dedicated_job })
}

#[derive(Debug, Clone)]
struct Spec {
    /// Per SKU, its tiers: (unit price in 1e-10, the tier's start after the one
    /// before, in half node-hours). The first tier starts at 0.
    skus: Vec<Vec<(u64, u32)>>,
    balances: Vec<u32>,
    rows: Vec<RowSpec>,
    packages: Vec<(usize, usize, u32, i64)>,
    payments: Vec<(usize, i64, u32)>,
}

fn spec() -> impl Strategy<Value = Spec> {
    // A price is free one time in six; else up to 5.0000000000 with 10 places.
    let price = prop_oneof![1 => Just(0u64), 5 => 1..50_000_000_000u64];
    let tiers = prop::collection::vec((price, 1..40u32), 1..4);
    (
        prop::collection::vec(tiers, 1..4),
        prop::collection::vec(0..40u32, 1..5),
        prop::collection::vec(row_spec(), 1..60),
        prop::collection::vec((0..8usize, 0..8usize, 1..20u32, 0..72i64), 0..4),
        prop::collection::vec((0..8usize, 0..72i64, 1..30u32), 0..4),
    )
        .prop_map(|(skus, balances, rows, packages, payments)| Spec { skus, balances, rows, packages, payments })
}

fn build(spec: &Spec) -> Scenario {
    let mut s = Scenario::new();
    let skus: Vec<String> = (0..spec.skus.len()).map(|i| format!("sku{i}")).collect();
    let sku = |i: usize| skus[i % skus.len()].as_str();
    let account = |i: usize| format!("A{}", i % spec.balances.len());
    for (i, tiers) in spec.skus.iter().enumerate() {
        let mut start = 0u32;
        for (k, (price, step)) in tiers.iter().enumerate() {
            if k > 0 {
                start += step;
            }
            let price = Dec(*price as i128).to_string();
            // `start` half node-hours: 5e9 units of 1e-10 each.
            let tier = Dec(i128::from(start) * 5_000_000_000).to_string();
            s.price(&skus[i], NodeHour, &price, &tier);
        }
    }
    for (i, b) in spec.balances.iter().enumerate() {
        let a = s.account(&format!("A{i}"), &b.to_string());
        a.grace_days = 1;
        a.retention_days = 1;
        a.balance_alert_threshold = Some(Dec::from_int(5));
    }
    let base = t("2026-01-01T00:00");
    for (k, (a, sku_of, hours, at)) in spec.packages.iter().enumerate() {
        let from = billrun::time::format_ts(base + at * H);
        let from = &from[..16];
        let p = s.package(&format!("P{k}"), &account(*a), sku(*sku_of), &hours.to_string(), "12.00", from, "2026-01-04T00:00");
        p.alert_threshold_pct = Some(d("30"));
    }
    for (k, (a, at, amt)) in spec.payments.iter().enumerate() {
        let at = billrun::time::format_ts(base + at * H + 1_800_000_000);
        s.payment(&format!("pay{k}"), &account(*a), &at[..16], &amt.to_string());
    }
    for (k, r) in spec.rows.iter().enumerate() {
        let start = base + r.hour * H + r.start_s * 1_000_000;
        let end = (start + r.dur_s * 1_000_000).min(base + (r.hour + 1) * H);
        let ts = |v: i64| billrun::time::format_ts(v)[..19].to_string();
        let row = s.usage(&format!("r{k:03}"), &account(r.account), sku(r.sku), &ts(start), &ts(start), r.nodes);
        row.start = Some(start);
        row.end = Some(end.max(start + 1));
        if r.dedicated_job {
            row.pool_type = Some("dedicated".into());
            row.pool_id = Some("pool-x".into());
        }
        // Projects and tags, some rows without either, for the allocation roll-ups.
        row.enterprise_project = [Some("vision"), Some("speech"), None][r.nodes as usize % 3].map(String::from);
        row.tags = [Some(r#"{"team":"a"}"#), Some(r#"{"team":"b","env":"prod"}"#), None][(r.start_s % 3) as usize].map(String::from);
    }
    s
}

fn close_into(s: &Scenario, out: &std::path::Path, threads: usize) -> close::CloseReport {
    close_in_blocks(s, out, threads, close::RATING_BLOCK_ROWS)
}

/// A close whose hours are rated and written in blocks of about `block_rows` rows.
fn close_in_blocks(s: &Scenario, out: &std::path::Path, threads: usize, block_rows: usize) -> close::CloseReport {
    s.write();
    let job =
        CloseJob { cache_bytes: 1 << 30, block_rows, ..CloseJob::new(s.lake().to_str().unwrap(), out.to_str().unwrap(), Period::parse("2026-01").unwrap()) };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| close::run(&job)).unwrap()
}

fn tables(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for t in close::TABLES {
        let p = dir.join(close::table_path(t, Period::parse("2026-01").unwrap()));
        out.insert(t.to_string(), std::fs::read(p).unwrap());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn bills_conserve_rows_money_and_quota(spec in spec()) {
        let s = build(&spec);
        let out1 = s.dir.path().join("out1");
        let out2 = s.dir.path().join("out2");
        let report = close_into(&s, &out1, 1);
        let report2 = close_into(&s, &out2, 2);
        // Parallel = sequential, to the byte.
        prop_assert_eq!(tables(&out1), tables(&out2));
        prop_assert_eq!(report.rows_rated, report2.rows_rated);
        // Hours rated an account at a time = hours rated whole, to the byte.
        let out3 = s.dir.path().join("out3");
        let report3 = close_in_blocks(&s, &out3, 2, 1);
        prop_assert_eq!(tables(&out1), tables(&out3));
        prop_assert_eq!(report.rows_rated, report3.rows_rated);

        let o = Outputs::read(&out1, "2026-01", report);
        // Every input row ends in exactly one place.
        let rejected = o.rejections();
        let rated: std::collections::BTreeSet<String> = Outputs::rows(&o.line_items)
            .into_iter()
            .map(|l| l["x_UsageRecordId"].clone())
            .filter(|r| r != "∅")
            .collect();
        prop_assert_eq!(rated.len() + rejected.len(), spec.rows.len());
        for (id, _) in &rejected {
            prop_assert!(!rated.contains(id), "{} both rated and rejected", id);
        }
        prop_assert_eq!(o.report.rows_in as usize, spec.rows.len());

        // Σ BilledCost per invoice = total_due; Σ line amounts per hour truncate to
        // the hour's deduction.
        let mut billed: BTreeMap<String, Dec> = BTreeMap::new();
        let mut hourly: BTreeMap<(String, String), Dec> = BTreeMap::new();
        for l in Outputs::rows(&o.line_items) {
            let e = billed.entry(l["InvoiceId"].clone()).or_default();
            *e = e.checked_add(d(&l["BilledCost"])).unwrap();
            if l["PricingCategory"] == "Standard" && l["x_BillingMode"] == "pay_per_use" {
                let hour = billrun::time::format_ts(billrun::time::hour_floor(t(&l["ChargePeriodStart"][..19])));
                let e = hourly.entry((l["BillingAccountId"].clone(), hour)).or_default();
                *e = e.checked_add(d(&l["BilledCost"])).unwrap();
            }
        }
        for inv in Outputs::rows(&o.invoices) {
            prop_assert_eq!(billed.get(&inv["invoice_id"]).copied().unwrap_or_default(), d(&inv["total_due"]));
        }
        let st = Outputs::rows(&o.settlements);
        prop_assert_eq!(st.len(), hourly.len());
        for s in st {
            let sum = hourly[&(s["account_id"].clone(), s["hour_start"].clone())];
            prop_assert_eq!(d(&s["line_amount"]), sum);
            prop_assert_eq!(d(&s["deduction"]), sum.trunc_dp(2));
            prop_assert_eq!(d(&s["truncated_amount"]), sum.checked_sub(sum.trunc_dp(2)).unwrap());
        }
        // Quotas: never negative; the ledger balances.
        for l in Outputs::rows(&o.ledger) {
            let (op, used, lapsed, close) = (d(&l["opening_quota"]), d(&l["used_quota"]), d(&l["lapsed_quota"]), d(&l["closing_quota"]));
            prop_assert!(!close.is_negative() && !used.is_negative() && !lapsed.is_negative());
            prop_assert_eq!(op.checked_sub(used).unwrap().checked_sub(lapsed).unwrap(), close, "ledger {:?}", l);
        }
    }
}

/// The analyst checks of `sql/` on a closed lake, as `tests/duckdb_check.py` reports
/// them.
fn duckdb_checks(lake: &std::path::Path) -> serde_json::Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(py).arg(root.join("tests/duckdb_check.py")).arg(lake).arg(root.join("sql")).output().expect("python3 with duckdb");
    assert!(out.status.success(), "duckdb check failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, .. ProptestConfig::default() })]

    /// Every key of every composition view, each view's total, the daily trend, the
    /// forecast, each account's month, its top resources, and the allocations,
    /// against the same figures computed by DuckDB from the line items, to the last
    /// digit.
    #[test]
    fn cost_views_equal_what_duckdb_computes_from_the_line_items(spec in spec()) {
        let s = build(&spec);
        let out = s.dir.path().join("out");
        close_into(&s, &out, 2);
        let got = duckdb_checks(&out);
        prop_assert_eq!(&got["composition_view_mismatches"], &serde_json::json!(0), "{}", got);
        prop_assert_eq!(&got["composition_totals_mismatches"], &serde_json::json!(0), "{}", got);
        prop_assert_eq!(&got["composition_mismatches"], &serde_json::json!(0), "{}", got);
        prop_assert_eq!(&got["daily_trend_mismatches"], &serde_json::json!(0), "{}", got);
        prop_assert_eq!(&got["monthly_mismatches"], &serde_json::json!(0), "{}", got);
        prop_assert_eq!(&got["forecast_mismatches"], &serde_json::json!(0), "{}", got);
        prop_assert_eq!(&got["top_resources_mismatches"], &serde_json::json!(0), "{}", got);
        prop_assert_eq!(&got["allocated_by_period"], &got["effective_by_period"]);
        // For every tag key, its values (and the untagged) add up to the account's total.
        prop_assert_eq!(&got["tag_mismatches"], &serde_json::json!(0), "{}", got);
        // The allocation roll-ups billrun publishes: by project, and by tag key and
        // value, each as the allocation adds them up.
        prop_assert_eq!(&got["allocation_view_mismatches"], &serde_json::json!(0), "{}", got);
    }
}
