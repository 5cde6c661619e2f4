//! Hand-worked bills that need more than a scenario file holds (rows placed in other
//! files or partitions, several periods, whole tables compared): each expected figure
//! is derived from billing-rules in the comment beside it. The rest are
//! `tests/scenarios/*.toml` (`scenario_files.rs`).

use crate::harness::*;
use billrun::model::PricingUnit::*;

/// §9/§10: every row check, each giving the first reason that applies.
#[test]
fn every_rejection_reason_in_check_order() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0");
    s.price_in("eur-only", R1, "EUR", NodeHour, "1.00", "0", "2025-01-01T00:00", None);
    s.price_in("other-region", "r9", "USD", NodeHour, "1.00", "0", "2025-01-01T00:00", None);
    s.account("H", "1000");
    s.usage("ok", "H", "cpu", "2026-01-02T01:00", "2026-01-02T02:00", 1);
    s.usage("null-account", "H", "cpu", "2026-01-02T01:00", "2026-01-02T02:00", 1).account_id = None;
    s.usage("bad-module", "H", "cpu", "2026-01-02T01:00", "2026-01-02T02:00", 1).module = Some("warp".into());
    // Out of period although it sits in a January partition: out_of_period, not schema.
    let mut r = s.files.values().next().unwrap()[0].clone();
    r.record_id = Some("early".into());
    r.start = Some(t("2025-12-31T23:00"));
    r.end = Some(t("2025-12-31T23:30"));
    s.row_in(&Scenario::partition_file(t("2026-01-02T01:00"), "part-0.parquet"), r.clone());
    // In the period but not in its file's partition hour: schema.
    r.record_id = Some("misplaced".into());
    r.start = Some(t("2026-01-02T05:00"));
    r.end = Some(t("2026-01-02T05:30"));
    s.row_in(&Scenario::partition_file(t("2026-01-02T01:00"), "part-0.parquet"), r);
    // Ends in the next hour and has a negative quantity: bad_interval comes first.
    let b = s.usage("crosses", "H", "cpu", "2026-01-02T03:30", "2026-01-02T04:10", 1);
    b.quantity = Some(d("-1"));
    s.usage("backwards", "H", "cpu", "2026-01-02T03:30", "2026-01-02T03:10", 1);
    s.usage("negative", "H", "cpu", "2026-01-02T03:00", "2026-01-02T03:10", 1).quantity = Some(d("-0.5"));
    // An exact repeat (second file of the same hour): the first copy is rated.
    let dup = s.usage("dup", "H", "cpu", "2026-01-02T06:00", "2026-01-02T06:30", 1).clone();
    s.row_in(&Scenario::partition_file(t("2026-01-02T06:00"), "part-1.parquet"), dup);
    // The same id a day later with other content: every copy rejected, the first too.
    s.usage("conflict", "H", "cpu", "2026-01-02T07:00", "2026-01-02T07:30", 1);
    s.usage("conflict", "H", "cpu", "2026-01-03T07:00", "2026-01-03T07:30", 2);
    s.usage("stranger", "nobody", "cpu", "2026-01-02T08:00", "2026-01-02T08:30", 1);
    s.usage("mystery-sku", "H", "quantum", "2026-01-02T08:00", "2026-01-02T08:30", 1);
    s.usage("wrong-currency", "H", "eur-only", "2026-01-02T08:00", "2026-01-02T08:30", 1);
    s.usage("wrong-region", "H", "other-region", "2026-01-02T08:00", "2026-01-02T08:30", 1);
    let o = s.close("2026-01").unwrap();
    let got = o.rejections();
    let want: Vec<(String, String)> = [
        ("backwards", "bad_interval"),
        ("bad-module", "schema"),
        ("conflict", "conflicting_duplicate"),
        ("conflict", "conflicting_duplicate"),
        ("crosses", "bad_interval"),
        ("dup", "duplicate"),
        ("early", "out_of_period"),
        ("misplaced", "schema"),
        ("mystery-sku", "unknown_sku"),
        ("negative", "negative_quantity"),
        ("null-account", "schema"),
        ("stranger", "unknown_account"),
        ("wrong-currency", "currency_mismatch"),
        ("wrong-region", "no_price"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    // Rated: "ok" (1.00) and the first "dup" copy (0.50).
    assert_eq!(o.invoice("H")["usage_charges"], "1.50");
    assert_eq!(o.report.rows_in, o.report.rows_rated + got.len() as u64);
    let detail = Outputs::rows(&o.rejected).into_iter().find(|r| r["record_id"] == "misplaced").unwrap();
    assert!(detail["source_file"].starts_with("usage/date=2026-01-02/hour=01/"), "{}", detail["source_file"]);
    assert!(detail["detail"].contains("partition"), "{}", detail["detail"]);
}

/// §3 tie on expiry → earlier purchase → smaller id; wrong region and dedicated pools
/// are never served by a package.
#[test]
fn package_ties_regions_and_pools() {
    let mut s = Scenario::new();
    s.price("gpu", NodeHour, "2.00", "0");
    s.price_in("gpu", "r2", "USD", NodeHour, "2.00", "0", "2025-01-01T00:00", None);
    s.account("T", "1000");
    s.package("late-buy", "T", "gpu", "1", "1.00", "2026-01-02T00:00", "2026-03-01T00:00");
    s.package("early-buy", "T", "gpu", "1", "1.00", "2026-01-02T00:00", "2026-03-01T00:00").purchased_at = t("2026-01-01T00:00");
    s.package("b-same", "T", "gpu", "1", "1.00", "2026-01-02T00:00", "2026-03-01T00:00");
    s.package("a-same", "T", "gpu", "1", "1.00", "2026-01-02T00:00", "2026-03-01T00:00");
    s.package("elsewhere", "T", "gpu", "100", "1.00", "2026-01-02T00:00", "2026-03-01T00:00").region = "r2".into();
    for (i, id) in ["t1", "t2", "t3", "t4"].iter().enumerate() {
        let h = format!("2026-01-03T0{i}:00");
        let e = format!("2026-01-03T0{i}:30");
        s.usage(id, "T", "gpu", &h, &e, 2); // 1 node-hour each
    }
    // A pool's own row (dedicated) is pay-per-use, not package-covered.
    let pool = s.usage("pool-row", "T", "gpu", "2026-01-03T05:00", "2026-01-03T05:30", 2);
    pool.pool_type = Some("dedicated".into());
    pool.module = Some("dedicated_pool".into());
    let o = s.close("2026-01").unwrap();
    let lines = o.lines_of("T");
    let by = |id: &str| lines.iter().find(|l| l["x_UsageRecordId"] == id).unwrap()["CommitmentDiscountId"].clone();
    assert_eq!(by("t1"), "early-buy");
    assert_eq!(by("t2"), "a-same");
    assert_eq!(by("t3"), "b-same");
    assert_eq!(by("t4"), "late-buy");
    assert_eq!(by("pool-row"), "∅");
    assert_eq!(o.invoice("T")["usage_charges"], "2.00");
}

/// §3 monthly reset: lapse with an `Unused` line each month; the usage alert fires once.
#[test]
fn monthly_package_lapses_and_alerts_once_across_periods() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0");
    s.account("M", "1000");
    let p = s.package("PM", "M", "cpu", "10", "30.00", "2026-01-15T00:00", "2026-03-15T00:00");
    p.reset_period = billrun::model::ResetPeriod::Month;
    p.alert_threshold_pct = Some(d("25"));
    // 3 months in force (Jan, Feb, Mar) → total quota 30 → 1.00 per node-hour.
    s.usage("m1", "M", "cpu", "2026-01-20T10:00", "2026-01-20T11:00", 8); // remaining 2 ≤ 2.5 → alert
    s.usage("m2", "M", "cpu", "2026-02-03T10:00", "2026-02-03T11:00", 9); // remaining 1: no second alert
    let jan = s.close("2026-01").unwrap();
    let al = Outputs::rows(&jan.alerts);
    assert_eq!(al.len(), 1);
    assert_eq!((al[0]["alert_type"].as_str(), al[0]["package_id"].as_str(), al[0]["value"].as_str()), ("package_usage", "PM", "2.00"));
    assert_eq!(al[0]["alert_time"], ts("2026-01-20T11:00"));
    let unused: Vec<(String, String)> = jan
        .lines_of("M")
        .iter()
        .filter(|l| l["CommitmentDiscountStatus"] == "Unused")
        .map(|l| (l["PricingQuantity"].clone(), l["EffectiveCost"].clone()))
        .collect();
    assert_eq!(unused, vec![("2.00".into(), "2.00".into())]);
    let l = &Outputs::rows(&jan.ledger)[0];
    assert_eq!(
        (l["opening_quota"].as_str(), l["used_quota"].as_str(), l["lapsed_quota"].as_str(), l["closing_quota"].as_str()),
        ("10.00", "8.00", "2.00", "0.00")
    );
    assert_eq!(jan.invoice("M")["purchase_charges"], "30.00");

    let feb = s.close("2026-02").unwrap();
    assert!(Outputs::rows(&feb.alerts).is_empty());
    let l = &Outputs::rows(&feb.ledger)[0];
    assert_eq!(
        (l["opening_quota"].as_str(), l["used_quota"].as_str(), l["lapsed_quota"].as_str(), l["closing_quota"].as_str()),
        ("10.00", "9.00", "1.00", "0.00")
    );
    assert_eq!(feb.invoice("M")["purchase_charges"], "0.00");
    assert_eq!(feb.invoice("M")["usage_charges"], "0.00");
}

/// §6: purchase priced from the catalog, amortized usage, a job on the pool, scaling
/// refused, and the period's uncovered time as one Unused line.
#[test]
fn subscription_purchase_amortization_and_scaling() {
    let mut s = Scenario::new();
    s.price("pgpu", NodeHour, "1.50", "0").price("pgpu", NodeMonth, "720.00", "0");
    s.account("S", "100");
    s.subscription("S1", "S", "pool-1", "pgpu", 2, 1, "2026-01-01T00:00");
    for h in ["00", "01"] {
        let r = s.usage(&format!("own-{h}"), "S", "pgpu", &format!("2026-01-02T{h}:00"), &format!("2026-01-02T{h}:59:59"), 2);
        r.resource_id = Some("pool-1".into());
        r.pool_type = Some("dedicated".into());
        r.module = Some("dedicated_pool".into());
        r.end = Some(t(&format!("2026-01-02T{h}:00")) + H);
    }
    let j = s.usage("job", "S", "pgpu", "2026-01-02T00:00", "2026-01-02T01:00", 1);
    j.pool_type = Some("dedicated".into());
    j.pool_id = Some("pool-1".into());
    let sc = s.usage("scaled", "S", "pgpu", "2026-01-03T00:00", "2026-01-03T01:00", 3);
    sc.resource_id = Some("pool-1".into());
    sc.pool_type = Some("dedicated".into());
    let o = s.close("2026-01").unwrap();
    assert_eq!(o.reason_of("scaled").as_deref(), Some("scaling_not_supported"));
    let lines = o.lines_of("S");
    let get = |id: &str, col: &str| lines.iter().find(|l| l["x_UsageRecordId"] == id).unwrap()[col].clone();
    // 720.00 × 2 nodes × 1 month = 1440.00 over 744 hours: 1 h = 1.935483870… → 1.93548387.
    assert_eq!(get("own-00", "EffectiveCost"), "1.93548387");
    assert_eq!(get("own-00", "ListCost"), "3.00");
    assert_eq!(get("own-00", "BilledCost"), "0.00");
    assert_eq!(get("own-00", "CommitmentDiscountId"), "S1");
    assert_eq!(get("job", "EffectiveCost"), "0.00");
    assert_eq!(get("job", "ListCost"), "0.00");
    assert_eq!(get("job", "PricingCategory"), "Committed");
    // Unused: 742 of 744 hours → 1440 × 742/744 = 1436.129032258… → 1436.12903226.
    let unused = lines.iter().find(|l| l["CommitmentDiscountStatus"] == "Unused").unwrap();
    assert_eq!(unused["EffectiveCost"], "1436.12903226");
    let purchase = lines.iter().find(|l| l["ChargeCategory"] == "Purchase").unwrap();
    assert_eq!(purchase["BilledCost"], "1440.00");
    assert_eq!(purchase["ChargeFrequency"], "One-Time");
    // FOCUS: a purchase is priced by a quantity but consumes none; a usage line
    // consumes what it is priced by.
    assert_ne!(purchase["PricingQuantity"], "∅");
    assert_ne!(purchase["PricingUnit"], "∅");
    assert_eq!(purchase["ConsumedQuantity"], "∅");
    assert_eq!(purchase["ConsumedUnit"], "∅");
    assert_eq!(get("own-00", "ConsumedQuantity"), get("own-00", "PricingQuantity"));
    assert_eq!(get("own-00", "ConsumedUnit"), get("own-00", "PricingUnit"));
    let inv = o.invoice("S");
    assert_eq!(inv["purchase_charges"], "1440.00");
    assert_eq!(inv["usage_charges"], "0.00");
    assert_eq!(inv["total_due"], "1440.00");
    assert_eq!(inv["committed_list_value"], "6.00");
    // Σ EffectiveCost of the subscription's lines = its price (within line rounding).
    let ec: billrun::decimal::Dec = lines
        .iter()
        .filter(|l| l["CommitmentDiscountId"] == "S1" && l["ChargeCategory"] == "Usage")
        .map(|l| d(&l["EffectiveCost"]))
        .fold(billrun::decimal::Dec::ZERO, |a, b| a.checked_add(b).unwrap());
    assert_eq!(ec, d("1440"));
}

/// §6/§10: expiry → grace (covered, no charge) → retention (frozen) → release; a
/// renewal ordered during grace covers from the original end; a renewal ordered after
/// retention is too late; an order without a yearly/monthly price is rejected.
#[test]
fn subscription_expiry_renewal_and_rejected_orders() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0").price("cpu", NodeMonth, "310.00", "0");
    s.price("nopm", NodeHour, "1.00", "0");
    let a = s.account("X", "100");
    a.grace_days = 2;
    a.retention_days = 3;
    s.subscription("old", "X", "srv", "cpu", 1, 1, "2025-12-06T00:00"); // ends 2026-01-06
    s.subscription("base", "X", "srv2", "cpu", 1, 1, "2025-12-06T00:00");
    let r = s.subscription("renewal", "X", "srv2", "cpu", 1, 1, "2026-01-06T00:00");
    r.renewal_of = Some("base".into());
    r.ordered_at = t("2026-01-07T09:00"); // during grace
    let r = s.subscription("too-late", "X", "srv", "cpu", 1, 1, "2026-01-06T00:00");
    r.renewal_of = Some("old".into());
    r.ordered_at = t("2026-01-11T00:00"); // = end + grace + retention
    s.subscription("unpriced", "X", "srv3", "nopm", 1, 1, "2026-01-04T00:00");
    for (id, res, at) in [
        ("in-grace", "srv", "2026-01-07T00:00"),
        ("in-retention", "srv", "2026-01-09T00:00"),
        ("released", "srv", "2026-01-12T00:00"),
        ("renewed", "srv2", "2026-01-09T00:00"),
    ] {
        let end = t(at) + H;
        let r = s.usage(id, "X", "cpu", at, at, 1);
        r.end = Some(end);
        r.resource_id = Some(res.into());
        r.module = Some("lite_server".into());
    }
    let o = s.close("2026-01").unwrap();
    assert_eq!(o.reason_of("in-grace"), None);
    assert_eq!(o.reason_of("in-retention").as_deref(), Some("subscription_frozen"));
    assert_eq!(o.reason_of("released").as_deref(), Some("resource_released"));
    assert_eq!(o.reason_of("renewed"), None);
    assert_eq!(o.reason_of("too-late").as_deref(), Some("renewal_too_late"));
    assert_eq!(o.reason_of("unpriced").as_deref(), Some("no_price"));
    let lines = o.lines_of("X");
    let get = |id: &str, col: &str| lines.iter().find(|l| l["x_UsageRecordId"] == id).unwrap()[col].clone();
    assert_eq!(get("in-grace", "CommitmentDiscountId"), "old");
    assert_eq!(get("in-grace", "EffectiveCost"), "0.00");
    assert_eq!(get("renewed", "CommitmentDiscountId"), "renewal");
    // The renewal's purchase (ordered in January): 310.00 × 1 node × 1 month.
    assert_eq!(o.invoice("X")["purchase_charges"], "310.00");
    assert_eq!(o.invoice("X")["usage_charges"], "0.00");
}

/// Periods chain: February opens from January's closing balance and arrears.
#[test]
fn periods_chain_through_state() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "5.00", "0");
    s.account("Q", "3.00");
    s.usage("q1", "Q", "cpu", "2026-01-31T23:00", "2026-02-01T00:00", 1); // settles at Feb 1 00:00, in January
    s.usage("q2", "Q", "cpu", "2026-02-01T00:00", "2026-02-01T01:00", 1);
    s.payment("p", "Q", "2026-02-01T00:30", "4.00");
    let jan = s.close("2026-01").unwrap();
    let inv = jan.invoice("Q");
    assert_eq!((inv["closing_balance"].as_str(), inv["status_at_close"].as_str()), ("-2.00", "arrears"));
    let feb = s.close("2026-02").unwrap();
    let inv = feb.invoice("Q");
    assert_eq!(inv["opening_balance"], "-2.00");
    assert_eq!(inv["payments"], "4.00");
    // At 01:00: balance 2.00, deduction 5.00 > 2.00: a new episode.
    assert_eq!(inv["closing_balance"], "-3.00");
    // Grace of the new episode ends 2026-02-16T01:00; February has 28 days, so at the
    // close (03-01T00:00) the account is in retention.
    assert_eq!(inv["status_at_close"], "frozen");
    let tl: Vec<String> = Outputs::rows(&feb.status).iter().filter(|r| r["account_id"] == "Q").map(|r| r["state"].clone()).collect();
    assert_eq!(tl, vec!["arrears", "active", "arrears", "frozen"]);
    // Closing March without February's successor state is fine; skipping a month is not.
    let err = s.close("2026-04").err().expect("a gap in the chain is refused");
    assert!(err.to_string().contains("2026-03 is not closed"), "{err}");
}

/// §8 allocation: a pool's hour split among its jobs by node-seconds, the rest idle
/// to the pool; allocations add up to the period's effective cost exactly.
#[test]
fn a_pool_hour_is_allocated_to_its_jobs_by_node_seconds() {
    let mut s = Scenario::new();
    s.price("gpu", NodeHour, "2.00", "0").price("cpu", NodeHour, "1.00", "0");
    s.account("Z", "1000");
    // The pool: 2 nodes for the hour = 2 node-hours = 4.00.
    let p = s.usage("pool", "Z", "gpu", "2026-01-02T00:00", "2026-01-02T01:00", 2);
    p.resource_id = Some("pool-z".into());
    p.module = Some("dedicated_pool".into());
    p.pool_type = Some("dedicated".into());
    p.enterprise_project = Some("platform".into());
    // Job A: 1 node × 30 min = 0.5; job B: 1 node × 60 min = 1; idle 0.5.
    for (id, end, project) in [("job-a", "2026-01-02T00:30", "vision"), ("job-b", "2026-01-02T01:00", "speech")] {
        let j = s.usage(id, "Z", "gpu", "2026-01-02T00:00", end, 1);
        j.resource_id = Some(id.into());
        j.pool_type = Some("dedicated".into());
        j.pool_id = Some("pool-z".into());
        j.enterprise_project = Some(project.into());
        j.tags = Some(format!(r#"{{"team":"{project}"}}"#));
    }
    // 1.00 of public usage, no project.
    s.usage("solo", "Z", "cpu", "2026-01-02T03:00", "2026-01-02T04:00", 1);
    let o = s.close("2026-01").unwrap();
    let alloc = crate::harness::read_table(&s.lake(), "cost/allocation", "2026-01");
    let rows: Vec<(String, String, String, String)> = Outputs::rows(&alloc)
        .into_iter()
        .map(|r| (r["AllocatedResourceId"].clone(), r["AllocatedMethodId"].clone(), r["x_EnterpriseProject"].clone(), r["EffectiveCost"].clone()))
        .filter(|r| r.0 != "∅")
        .collect();
    // 4.00 × 0.5/2 = 1.00 to A, × 1/2 = 2.00 to B, × 0.5/2 = 1.00 idle.
    assert!(rows.contains(&("job-a".into(), "pool-node-seconds".into(), "vision".into(), "1.00".into())), "{rows:?}");
    assert!(rows.contains(&("job-b".into(), "pool-node-seconds".into(), "speech".into(), "2.00".into())), "{rows:?}");
    assert!(rows.contains(&("pool-z".into(), "pool-idle".into(), "platform".into(), "1.00".into())), "{rows:?}");
    assert!(rows.contains(&("res-solo".into(), "direct".into(), "∅".into(), "1.00".into())), "{rows:?}");
    let total: billrun::decimal::Dec = Outputs::rows(&alloc).iter().map(|r| d(&r["EffectiveCost"])).fold(Default::default(), |a, b| a.checked_add(b).unwrap());
    let effective: billrun::decimal::Dec = o.lines_of("Z").iter().map(|l| d(&l["EffectiveCost"])).fold(Default::default(), |a, b| a.checked_add(b).unwrap());
    assert_eq!(total, effective);
    assert_eq!(total, d("5.00"));
}

/// §10: the balance alert is armed at the start, so the first settlement alerts even
/// when the opening balance is already below the threshold; payments before
/// `balance_as_of` are ignored, those between it and the first period count in the
/// opening balance.
#[test]
fn alert_armed_at_start_and_payments_around_balance_as_of() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "0.50", "0");
    let a = s.account("L", "3.00");
    a.balance_alert_threshold = Some(d("5"));
    a.balance_as_of = t("2025-12-10T00:00");
    s.payment("before", "L", "2025-12-09T00:00", "100"); // before balance_as_of: ignored
    s.payment("between", "L", "2025-12-20T00:00", "1.00"); // counts in the opening balance
    s.usage("l1", "L", "cpu", "2026-01-02T00:00", "2026-01-02T01:00", 1);
    let o = s.close("2026-01").unwrap();
    let inv = o.invoice("L");
    assert_eq!((inv["opening_balance"].as_str(), inv["payments"].as_str()), ("4.00", "0.00"));
    let al = Outputs::rows(&o.alerts);
    assert_eq!(al.len(), 1);
    assert_eq!((al[0]["alert_type"].as_str(), al[0]["value"].as_str()), ("balance", "3.50"));
}

/// §10: a subscription-covered row whose SKU has no pay-per-use price is not
/// rejected; its list price is 0.
#[test]
fn covered_rows_need_no_pay_per_use_price() {
    let mut s = Scenario::new();
    s.price("ym-only", NodeMonth, "100.00", "0");
    s.account("Y", "10");
    s.subscription("sub", "Y", "srv", "ym-only", 1, 1, "2026-01-01T00:00");
    let r = s.usage("own", "Y", "ym-only", "2026-01-03T00:00", "2026-01-03T01:00", 1);
    r.resource_id = Some("srv".into());
    r.module = Some("lite_server".into());
    let o = s.close("2026-01").unwrap();
    assert_eq!(o.reason_of("own"), None);
    let l = o.lines_of("Y").into_iter().find(|l| l["x_UsageRecordId"] == "own").unwrap();
    assert_eq!((l["ListCost"].as_str(), l["CommitmentDiscountId"].as_str()), ("0.00", "sub"));
    // 100.00 over 744 hours: 1 hour = 0.13440860…
    assert_eq!(l["EffectiveCost"], "0.1344086"); // 0.13440860, trailing zero trimmed
}

/// §10: quota that lapses at an expiry of exactly 00:00 on the 1st lapses in the
/// period that ends there; the next period has no ledger row for it.
#[test]
fn quota_expiring_at_a_period_boundary_lapses_in_the_period_that_ends() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0");
    s.account("E", "100");
    s.package("pk", "E", "cpu", "5", "5.00", "2026-01-10T00:00", "2026-02-01T00:00");
    s.usage("e1", "E", "cpu", "2026-01-11T00:00", "2026-01-11T01:00", 2);
    let jan = s.close("2026-01").unwrap();
    let l = &Outputs::rows(&jan.ledger)[0];
    assert_eq!((l["used_quota"].as_str(), l["lapsed_quota"].as_str(), l["closing_quota"].as_str()), ("2.00", "3.00", "0.00"));
    let unused = jan.lines_of("E").into_iter().find(|l| l["CommitmentDiscountStatus"] == "Unused").unwrap();
    assert_eq!(unused["EffectiveCost"], "3.00");
    let feb = s.close("2026-02").unwrap();
    assert!(Outputs::rows(&feb.ledger).is_empty());
}

/// `x_PricingQuantityExact` states each line's own quantity: the decimal when it ends
/// within 10 places, else the exact fraction of 3.6e19; null on a settlement's
/// adjustment. The writer composes each distinct text once and shares it among the
/// lines that have it, so neighbouring lines of different quantities, and a quantity
/// that comes back after another, must each keep their own.
#[test]
fn each_line_states_its_exact_quantity() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "0.07", "0");
    s.account("Q", "1000");
    s.usage("a", "Q", "cpu", "2026-01-06T00:00", "2026-01-06T01:00", 2);
    s.usage("b", "Q", "cpu", "2026-01-06T00:00", "2026-01-06T00:20", 1);
    s.usage("c", "Q", "cpu", "2026-01-06T00:00", "2026-01-06T01:00", 2);
    s.usage("d", "Q", "cpu", "2026-01-06T00:00", "2026-01-06T00:30", 3);
    let o = s.close("2026-01").unwrap();
    let mut exact: Vec<(String, String, String)> =
        o.lines_of("Q").iter().map(|l| (l["x_UsageRecordId"].clone(), l["PricingQuantity"].clone(), l["x_PricingQuantityExact"].clone())).collect();
    exact.sort();
    let third = "12000000000000000000/36000000000000000000";
    let expected = [("a", "2.00", "2.00"), ("b", "0.3333333333", third), ("c", "2.00", "2.00"), ("d", "1.50", "1.50")];
    let usage: Vec<(String, String, String)> = exact.iter().filter(|e| e.0 != "∅").cloned().collect();
    assert_eq!(usage, expected.map(|(r, q, e)| (r.to_string(), q.to_string(), e.to_string())).to_vec());
    // The hour's settlement truncates 0.14 + 0.0233333333 + 0.14 + 0.105 to cents: its
    // adjustment line has no quantity.
    let adjustments: Vec<&(String, String, String)> = exact.iter().filter(|e| e.0 == "∅").collect();
    assert_eq!(adjustments.len(), 1, "{exact:?}");
    assert_eq!((adjustments[0].1.as_str(), adjustments[0].2.as_str()), ("∅", "∅"));
}
