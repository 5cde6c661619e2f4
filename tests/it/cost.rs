//! Cost management: recommendations whose saving is what re-rating with the purchase
//! actually saves, and the estimates of the other kinds.

use crate::harness::*;
use billrun::model::PricingUnit::*;

fn scenario() -> Scenario {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0").price("cpu", NodeMonth, "500.00", "0");
    s.price("gpu", NodeHour, "2.00", "0").price("gpu", NodeHour, "1.50", "300");
    s.offers.push(billrun::cost::recommend::Offer {
        sku: "gpu".into(),
        region: R1.into(),
        currency: "USD".into(),
        hours_per_package: d("100"),
        price: d("140.00"),
        term_months: 1,
    });
    s.account("A", "5000");
    s.account("B", "5000");
    // A: a Lite Cluster of 2 nodes, pay-per-use, every hour of January: 1488.00.
    let start = t("2026-01-01T00:00");
    for h in 0..744 {
        let at = start + h * H;
        let r = s.usage(&format!("lc-{h}"), "A", "cpu", "2026-01-01T00:00", "2026-01-01T00:00", 2);
        r.start = Some(at);
        r.end = Some(at + H);
        r.resource_id = Some("lite-a".into());
        r.module = Some("lite_cluster".into());
        r.pool_type = Some("dedicated".into());
        let row = r.clone();
        // usage() filed it under the first hour; move it to its own partition.
        s.files.values_mut().for_each(|v| v.retain(|x| x.record_id != row.record_id));
        s.row_in(&Scenario::partition_file(at, "part-0.parquet"), row);
    }
    // B: 250 node-hours of public GPU (2.00 each, 500.00).
    for k in 0..25 {
        let at = format!("2026-01-{:02}T10:00", k + 2);
        let end = format!("2026-01-{:02}T11:00", k + 2);
        s.usage(&format!("g-{k}"), "B", "gpu", &at, &end, 10);
    }
    s
}

#[test]
fn recommended_purchases_save_exactly_what_rerating_saves() {
    let s = scenario();
    let o = s.close("2026-01").unwrap();
    let recs = Outputs::rows(&crate::harness::read_table(&s.lake(), "cost/recommendations", "2026-01"));
    let verified: Vec<_> = recs.iter().filter(|r| r["verified_by_rerating"] == "true").collect();
    assert_eq!(verified.len(), 2, "{recs:#?}");
    for r in verified {
        let account = r["account_id"].clone();
        let before = d(&o.invoice(&account)["total_due"]);
        // Buy what is recommended, and close the period again.
        let mut s2 = scenario();
        let p: serde_json::Value = serde_json::from_str(&r["purchase"]).unwrap();
        match p["type"].as_str().unwrap() {
            "subscription" => {
                let sub = s2.subscription(
                    "bought",
                    &account,
                    p["resource_id"].as_str().unwrap(),
                    p["sku"].as_str().unwrap(),
                    p["nodes"].as_i64().unwrap() as i32,
                    1,
                    "2026-01-01T00:00",
                );
                sub.unit_count = p["unit_count"].as_i64().unwrap() as i32;
            }
            "package" => {
                let pk = s2.package(
                    "bought",
                    &account,
                    p["sku"].as_str().unwrap(),
                    p["hours_per_package"].as_str().unwrap(),
                    p["price"].as_str().unwrap(),
                    "2026-01-01T00:00",
                    "2026-02-01T00:00",
                );
                pk.package_count = p["package_count"].as_i64().unwrap() as i32;
            }
            other => panic!("unknown purchase {other}"),
        }
        let after = d(&s2.close("2026-01").unwrap().invoice(&account)["total_due"]);
        assert_eq!(d(&r["estimated_saving"]), before.checked_sub(after).unwrap(), "{}", r["recommendation_id"]);
    }
    // A: 1488.00 per use against 500.00 × 2 nodes = 1000.00 subscribed.
    let a = recs.iter().find(|r| r["account_id"] == "A" && r["kind"] == "subscription").unwrap();
    assert_eq!(a["estimated_saving"], "488.00");
    // B: 2 packages (200 h) for 280.00 replace 400.00 of usage: 120.00.
    let b = recs.iter().find(|r| r["account_id"] == "B" && r["kind"] == "package").unwrap();
    assert_eq!(b["estimated_saving"], "120.00");
}

/// A purchase is verified by re-rating only the rows it can change, each hour settled
/// with the rest of the hour's sum: the savings are those of re-rating the accounts
/// whole (`BILLRUN_WHOLE_WHAT_IF`), byte for byte. E's package also moves the tier of
/// its dedicated-pool GPU rows (which it does not cover, and which are not counted in
/// the packages to buy), and its hours carry storage cents that the truncation of
/// each hour's sum must see; D was in arrears, so it is re-rated whole.
#[test]
fn partial_rerating_gives_the_savings_of_a_whole_one() {
    let mut s = scenario();
    s.price("obs", GbHour, "0.0013", "0");
    s.account("D", "300");
    s.account("E", "5000");
    for k in 0..25 {
        let (at, end) = (format!("2026-01-{:02}T12:00", k + 2), format!("2026-01-{:02}T13:00", k + 2));
        s.usage(&format!("d-{k}"), "D", "gpu", &at, &end, 10);
        s.usage(&format!("e-{k}"), "E", "gpu", &at, &end, 10);
        let r = s.usage(&format!("e-pool-{k}"), "E", "gpu", &at, &end, 6);
        r.pool_type = Some("dedicated".into());
        let r = s.usage(&format!("e-obs-{k}"), "E", "obs", &at, &end, 1);
        r.module = Some("obs".into());
        r.quantity = Some(d("3.3333"));
        // B's GPU hours also carry CPU and storage its package does not change.
        let (at, end) = (format!("2026-01-{:02}T10:00", k + 2), format!("2026-01-{:02}T11:00", k + 2));
        s.usage(&format!("b-cpu-{k}"), "B", "cpu", &at, &end, 3);
        let r = s.usage(&format!("b-obs-{k}"), "B", "obs", &at, &end, 1);
        r.module = Some("obs".into());
        r.quantity = Some(d("777.7777"));
    }
    s.write();
    let run = |out: &str, whole: bool| {
        let out = s.dir.path().join(out);
        let mut cmd = crate::lakes::billrun();
        cmd.args(["run", "--period", "2026-01", "--input"]).arg(s.lake()).arg("--output").arg(&out);
        if whole {
            cmd.env("BILLRUN_WHOLE_WHAT_IF", "1");
        }
        let o = cmd.output().unwrap();
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let (partial, whole) = (run("partial", false), run("whole", true));
    let recs = Outputs::rows(&read_table(&partial, "cost/recommendations", "2026-01"));
    let verified: Vec<&str> = recs.iter().filter(|r| r["verified_by_rerating"] == "true").map(|r| r["account_id"].as_str()).collect();
    assert!(["A", "B", "D", "E"].iter().all(|a| verified.contains(a)), "{recs:#?}");
    // E: the packages cover its public-pool GPU only (250 h: 2 packages, 200 h, 280.00);
    // its dedicated-pool GPU then stays below the 300 h tier: 300 + 50 h public + 150 h
    // dedicated at 2.00 = 400.00 + 280.00 = 680.00, against 750.00.
    let e = recs.iter().find(|r| r["account_id"] == "E").unwrap();
    assert_eq!((e["estimated_saving"].as_str(), e["kind"].as_str()), ("70.00", "package"), "{e:#?}");
    let b = recs.iter().find(|r| r["account_id"] == "B").unwrap();
    assert_eq!(b["estimated_saving"], "120.00", "{b:#?}");
    assert_eq!(recs, Outputs::rows(&read_table(&whole, "cost/recommendations", "2026-01")));
    assert_eq!(files_under(&partial, |p| p.ends_with(".parquet")), files_under(&whole, |p| p.ends_with(".parquet")));
}

#[test]
fn idle_notebooks_lapsing_packages_and_arrears_risk() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0").price("evs", GbHour, "0.001", "0");
    s.prices.last_mut().unwrap().billing_item = billrun::model::BillingItem::BlockStorage;
    s.account("N", "5000");
    s.account("R", "80");
    // A notebook that computed on the 2nd only, and whose 100 GB disk bills every day.
    let c = s.usage("nb-c", "N", "cpu", "2026-01-02T10:00", "2026-01-02T11:00", 1);
    c.resource_id = Some("nb-1".into());
    c.module = Some("notebook".into());
    for day in 1..=31 {
        let at = format!("2026-01-{day:02}T00:00");
        let end = format!("2026-01-{day:02}T01:00");
        let r = s.usage(&format!("disk-{day}"), "N", "evs", &at, &end, 1);
        r.resource_id = Some("nb-1".into());
        r.module = Some("notebook".into());
        r.quantity = Some(d("100")); // 100 GB × 1 h × 0.001 = 0.10 a day
    }
    // A package used 3 of 10 hours in 10 days, expiring 2026-02-10: 7 left, 0.3 a day
    // → 2.7 more in February's 9 days, 4.3 lapse, worth 10.00/10 × 4.3 = 4.30.
    s.package("pk", "N", "cpu", "10", "10.00", "2026-01-22T00:00", "2026-02-10T00:00");
    for day in [23, 25, 27] {
        s.usage(&format!("pk-{day}"), "N", "cpu", &format!("2026-01-{day}T05:00"), &format!("2026-01-{day}T06:00"), 1);
    }
    // R burns 2.00 a day: 80 − 62 = 18 left at close, about 9 days: within 14.
    for day in 1..=31 {
        s.usage(&format!("r-{day}"), "R", "cpu", &format!("2026-01-{day:02}T08:00"), &format!("2026-01-{day:02}T09:00"), 2);
    }
    s.close("2026-01").unwrap();
    let recs = Outputs::rows(&crate::harness::read_table(&s.lake(), "cost/recommendations", "2026-01"));
    let get = |kind: &str| recs.iter().find(|r| r["kind"] == kind).unwrap_or_else(|| panic!("no {kind}: {recs:#?}"));
    let nb = get("idle_notebook");
    assert_eq!(nb["resource_id"], "nb-1");
    // Idle since 2026-01-02T11:00 (29 days): disk cost since = 30 days × 0.10 = 3.00;
    // per 30 days: 3.00 × 30 / 29 = 3.10.
    assert_eq!(nb["current_cost"], "3.00");
    assert_eq!(nb["estimated_saving"], "3.10");
    let lapse = get("package_lapse");
    assert_eq!(lapse["resource_id"], "pk");
    assert_eq!(lapse["estimated_saving"], "4.30");
    let risk = get("arrears_risk");
    assert_eq!(risk["account_id"], "R");
    assert!(risk["evidence"].contains("14.00 deducted in the last 7 days"), "{}", risk["evidence"]);
}

/// A month too large for the decode cache is read twice, streamed hour by hour, and
/// the what-if re-rating decodes only the candidates' rows. Both give the bytes of
/// the cached run: the same bills, the same recommendations with the same savings.
#[test]
fn streamed_and_filtered_reads_give_the_cached_bytes() {
    use billrun::jobs::close::{self, CloseJob};
    use billrun::time::Period;
    let mut s = scenario();
    // C is no candidate: its rows sit before A's in A's files, and a repeated record
    // of A's (rejected as a duplicate) comes after them, so a filtered read must keep
    // each row's number in its file.
    s.account("C", "100");
    let start = t("2026-01-01T00:00");
    for h in [3i64, 34, 500] {
        let file = Scenario::partition_file(start + h * H, "part-0.parquet");
        let mut c = s.usage(&format!("c-{h}"), "C", "gpu", "2026-01-01T00:00", "2026-01-01T01:00", 1).clone();
        s.files.values_mut().for_each(|v| v.retain(|x| x.record_id != c.record_id));
        c.start = Some(start + h * H);
        c.end = Some(start + (h + 1) * H);
        let rows = s.files.get_mut(&file).unwrap();
        rows.insert(0, c.clone());
        c.record_id = Some(format!("c-{h}-b"));
        rows.insert(0, c);
    }
    // Hour 34 holds A's lite row and B's first GPU row; B's row comes again last.
    let file = Scenario::partition_file(start + 34 * H, "part-0.parquet");
    let dup = s.files[&file].iter().find(|r| r.record_id.as_deref() == Some("g-0")).unwrap().clone();
    let mut c = s.files[&file][0].clone();
    c.record_id = Some("c-34-c".into());
    s.row_in(&file, c);
    s.row_in(&file, dup);
    s.write();
    let run = |out: &str, cache_bytes: u64| {
        let out = s.dir.path().join(out);
        let job = CloseJob { cache_bytes, ..CloseJob::new(s.lake().to_str().unwrap(), out.to_str().unwrap(), Period::parse("2026-01").unwrap()) };
        let report = close::run(&job).unwrap();
        (report.rows_in, report.rejected.clone(), files_under(&out, |p| p.ends_with(".parquet")))
    };
    let cached = run("cached", 1 << 30);
    let streamed = run("streamed", 0);
    assert_eq!(cached.1.get("duplicate"), Some(&1), "{:?}", cached.1);
    let recs = Outputs::rows(&read_table(&s.dir.path().join("streamed"), "cost/recommendations", "2026-01"));
    assert_eq!(recs.iter().filter(|r| r["verified_by_rerating"] == "true").count(), 2, "{recs:#?}");
    assert_eq!(cached, streamed);
}

/// A public `cpu` row of account A: `resource` on `nodes` nodes for the hour from
/// `at`, in that hour's file.
fn hour_row(s: &mut Scenario, id: &str, at: i64, resource: &str, nodes: i32, tags: Option<&str>) {
    let r = s.usage(id, "A", "cpu", "2026-01-01T00:00", "2026-01-01T00:00", nodes);
    r.start = Some(at);
    r.end = Some(at + H);
    r.resource_id = Some(resource.to_string());
    r.tags = tags.map(str::to_string);
    let row = r.clone();
    // usage() filed it under the hour it was given; move it to its own.
    s.files.values_mut().for_each(|v| v.retain(|x| x.record_id != row.record_id));
    s.row_in(&Scenario::partition_file(at, "part-0.parquet"), row);
}

/// Two resources that trade places from hour to hour, and a third that takes the
/// place of one: each resource's allocated cost is the cost of its own rows (the
/// cost book tries the names an account's lines had the hour before, in their order,
/// and must not take one for another).
#[test]
fn resources_that_change_places_between_hours_keep_their_own_costs() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0");
    s.account("A", "5000");
    // Hour h: row 0 and row 1 of the hour's file. Nodes: r-a 1, r-b 10, r-c 100.
    let layout: [[(&str, i32); 2]; 4] = [[("r-a", 1), ("r-b", 10)], [("r-b", 10), ("r-a", 1)], [("r-c", 100), ("r-a", 1)], [("r-a", 1), ("r-b", 10)]];
    let start = t("2026-01-05T00:00");
    for (h, rows) in layout.iter().enumerate() {
        let at = start + h as i64 * H;
        for (k, (resource, nodes)) in rows.iter().enumerate() {
            hour_row(&mut s, &format!("u-{h}-{k}"), at, resource, *nodes, None);
        }
    }
    s.write();
    s.close("2026-01").unwrap();
    let alloc = read_table(&s.lake(), "cost/allocation", "2026-01");
    let mut by_resource: std::collections::BTreeMap<String, billrun::decimal::Dec> = Default::default();
    for row in Outputs::rows(&alloc) {
        let e = by_resource.entry(row["ResourceId"].clone()).or_default();
        *e = e.checked_add(d(&row["EffectiveCost"])).unwrap();
    }
    assert_eq!(by_resource.get("r-a"), Some(&d("4")), "{by_resource:?}");
    assert_eq!(by_resource.get("r-b"), Some(&d("30")), "{by_resource:?}");
    assert_eq!(by_resource.get("r-c"), Some(&d("100")), "{by_resource:?}");
    let all = by_resource.values().fold(billrun::decimal::Dec::ZERO, |a, v| a.checked_add(*v).unwrap());
    assert_eq!(all, d("134"), "{by_resource:?}");
}

/// A resource whose tags change between hours: the cost of the hours under each tags
/// is allocated to those tags (billing-rules §8: spend attributed to each tag key
/// and value), not all of the resource's cost to the tags it was first seen with.
#[test]
fn a_resource_whose_tags_change_allocates_each_tags_cost() {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0");
    s.account("A", "5000");
    // r-a: 1 node an hour for five hours, tagged team x, y, x, z, y; r-b: 10 nodes in
    // the same hours, untagged.
    let tags = [r#"{"team":"x"}"#, r#"{"team":"y"}"#, r#"{"team":"x"}"#, r#"{"team":"z"}"#, r#"{"team":"y"}"#];
    let start = t("2026-01-07T00:00");
    for (h, tag) in tags.iter().enumerate() {
        let at = start + h as i64 * H;
        for (k, (resource, nodes)) in [("r-a", 1), ("r-b", 10)].into_iter().enumerate() {
            hour_row(&mut s, &format!("u-{h}-{k}"), at, resource, nodes, (k == 0).then_some(*tag));
        }
    }
    s.write();
    s.close("2026-01").unwrap();
    let alloc = read_table(&s.lake(), "cost/allocation", "2026-01");
    let got: std::collections::BTreeMap<(String, String, String), String> = Outputs::rows(&alloc)
        .into_iter()
        .map(|r| ((r["ResourceId"].clone(), r["AllocatedTags"].clone(), r["AllocatedMethodId"].clone()), r["EffectiveCost"].clone()))
        .collect();
    let null = || "∅".to_string();
    let key = |r: &str, tags: Option<&str>| (r.to_string(), tags.map_or_else(null, str::to_string), "direct".to_string());
    let want: std::collections::BTreeMap<_, _> =
        [(key("r-a", Some(tags[0])), d("2")), (key("r-a", Some(tags[1])), d("2")), (key("r-a", Some(tags[3])), d("1")), (key("r-b", None), d("50"))]
            .into_iter()
            .collect();
    // The hours' settlements truncate nothing (whole cents): only direct costs.
    let got: std::collections::BTreeMap<_, _> = got.into_iter().filter(|(k, v)| k.2 == "direct" || d(v) != d("0")).map(|(k, v)| (k, d(&v))).collect();
    assert_eq!(got, want);
}
