//! Scenario files, `tests/scenarios/*.toml`: a billing person's view of a bill run.
//! Each file lists its input rows, then the settlements, invoices, lines, rejections,
//! alerts, ledger rows, arrears timeline, allocations and analysis rows it expects, with a comment
//! deriving each figure from the billing rules. This runner closes every file's
//! periods (`period = "…"`, or `periods = [...]` chained in order; an expectation
//! names its `period` when it is not the first) and compares field by field; every
//! difference of every file is reported at once.
//!
//! An expectation with `absent = true` says no such row exists; `[[expect.refused]]`
//! names a period whose close must be refused and words of the message. A usage row
//! may be placed in another `file` of its partition, or in another hour's
//! `partition`; `account = "∅"` leaves its account null.
//!
//! `BILLRUN_BLESS=1 cargo test --release --test it scenario_files` rewrites the
//! expected values from the current output, keeping the comments, for review in the
//! diff: a figure that changed must then be derived again by hand.
//!
//! Rejections are listed exhaustively: a row rejected that the file does not list is
//! a difference. Timestamps may be written `YYYY-MM-DDTHH:MM[:SS]` (UTC).

use crate::harness::*;
use billrun::model::{PricingUnit, ResetPeriod, TermUnit};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

type Row = BTreeMap<String, String>;

fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
    v.sort();
    v
}

/// A field of an input table: a string, or a number written as one.
fn field(t: &Table, name: &str) -> Option<String> {
    t.get(name).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn req(t: &Table, name: &str, what: &str) -> String {
    field(t, name).unwrap_or_else(|| panic!("{what}: no '{name}'"))
}

fn int(t: &Table, name: &str, default: i64) -> i64 {
    t.get(name).map_or(default, |v| v.as_integer().unwrap_or_else(|| panic!("'{name}' is not an integer")))
}

fn tables<'a>(doc: &'a Table, name: &str) -> Vec<&'a Table> {
    doc.get(name).and_then(Value::as_array).map(|a| a.iter().map(|v| v.as_table().expect("a table")).collect()).unwrap_or_default()
}

/// The scenario the file's input tables describe.
fn build(doc: &Table) -> Scenario {
    let mut s = Scenario::new();
    for p in tables(doc, "price") {
        let unit = PricingUnit::parse(&req(p, "unit", "price")).expect("a pricing unit");
        let region = field(p, "region").unwrap_or_else(|| R1.into());
        let currency = field(p, "currency").unwrap_or_else(|| "USD".into());
        let from = field(p, "from").unwrap_or_else(|| "2025-01-01T00:00".into());
        let to = field(p, "to");
        let tier = field(p, "tier").unwrap_or_else(|| "0".into());
        s.price_in(&req(p, "sku", "price"), &region, &currency, unit, &req(p, "price", "price"), &tier, &from, to.as_deref());
    }
    for a in tables(doc, "account") {
        let acct = s.account(&req(a, "id", "account"), &req(a, "balance", "account"));
        acct.grace_days = int(a, "grace_days", 15) as i32;
        acct.retention_days = int(a, "retention_days", 15) as i32;
        acct.balance_alert_threshold = field(a, "alert").map(|v| d(&v));
        if let Some(c) = field(a, "currency") {
            acct.currency = c;
        }
        if let Some(at) = field(a, "balance_as_of") {
            acct.balance_as_of = t(&at);
        }
    }
    for p in tables(doc, "payment") {
        s.payment(&req(p, "id", "payment"), &req(p, "account", "payment"), &req(p, "at", "payment"), &req(p, "amount", "payment"));
    }
    for p in tables(doc, "package") {
        let what = "package";
        let from = req(p, "from", what);
        let pkg = s.package(
            &req(p, "id", what),
            &req(p, "account", what),
            &req(p, "sku", what),
            &req(p, "hours", what),
            &req(p, "price", what),
            &from,
            &req(p, "expires", what),
        );
        pkg.package_count = int(p, "count", 1) as i32;
        pkg.reset_period = field(p, "reset").map_or(ResetPeriod::None, |r| ResetPeriod::parse(&r).expect("none or month"));
        pkg.alert_threshold_pct = field(p, "alert_pct").map(|v| d(&v));
        if let Some(at) = field(p, "purchased") {
            pkg.purchased_at = t(&at);
        }
        if let Some(r) = field(p, "region") {
            pkg.region = r;
        }
    }
    for p in tables(doc, "subscription") {
        let what = "subscription";
        let months = int(p, "months", 1) as i32;
        let sub = s.subscription(
            &req(p, "id", what),
            &req(p, "account", what),
            &req(p, "resource", what),
            &req(p, "sku", what),
            int(p, "nodes", 1) as i32,
            months,
            &req(p, "start", what),
        );
        sub.unit_count = int(p, "unit_count", 1) as i32;
        if let Some(u) = field(p, "term_unit") {
            sub.term_unit = TermUnit::parse(&u).expect("month or year");
        }
        if let Some(at) = field(p, "ordered") {
            sub.ordered_at = t(&at);
        }
        if let Some(at) = field(p, "end") {
            sub.end_at = t(&at);
        }
        sub.renewal_of = field(p, "renewal_of");
    }
    for u in tables(doc, "usage") {
        let what = "usage";
        let start = req(u, "start", what);
        let row = s.usage(&req(u, "id", what), &req(u, "account", what), &req(u, "sku", what), &start, &req(u, "end", what), int(u, "nodes", 1) as i32);
        if field(u, "account").as_deref() == Some(NULL) {
            row.account_id = None;
        }
        if let Some(m) = field(u, "module") {
            row.module = Some(m);
        }
        if let Some(r) = field(u, "resource") {
            row.resource_id = Some(r);
        }
        if let Some(p) = field(u, "pool_type") {
            row.pool_type = Some(p);
        }
        row.pool_id = field(u, "pool_id");
        if let Some(q) = field(u, "quantity") {
            row.quantity = Some(d(&q));
        }
        row.unit_count = Some(int(u, "unit_count", 1) as i32);
        row.enterprise_project = field(u, "project");
        row.tags = field(u, "tags");
        // A row placed in another file, or in the partition of another hour, than
        // its start's `part-0.parquet`.
        if field(u, "file").is_some() || field(u, "partition").is_some() {
            let placed = Scenario::partition_file(t(&start), "part-0.parquet");
            let row = s.files.get_mut(&placed).and_then(Vec::pop).expect("the row just added");
            let hour = field(u, "partition").unwrap_or(start);
            s.row_in(&Scenario::partition_file(t(&hour), &field(u, "file").unwrap_or_else(|| "part-0.parquet".into())), row);
        }
    }
    s
}

/// A null input field, written as the outputs show one.
const NULL: &str = "∅";

/// An expected value against the output's display string: timestamps may be
/// written short.
fn same(expected: &str, got: &str) -> bool {
    expected == got || (got.ends_with('Z') && expected.len() >= 16 && expected.as_bytes().get(10) == Some(&b'T') && ts(expected) == got)
}

/// The output's value as a file would write it: timestamps short.
fn shown(got: &str) -> String {
    match got.strip_suffix(":00.000000Z") {
        Some(minutes) if got.len() == 27 => minutes.to_string(),
        _ => got.to_string(),
    }
}

/// The rows an expectation table is matched against, and how a row is found.
struct Kind {
    table: &'static str,
    /// Keys of the expectation and the columns they match.
    keys: &'static [(&'static str, &'static str)],
}

const KINDS: &[Kind] = &[
    Kind { table: "invoice", keys: &[("account", "account_id")] },
    Kind { table: "settlement", keys: &[("account", "account_id"), ("hour", "hour_start")] },
    Kind { table: "line", keys: &[("record", "x_UsageRecordId"), ("account", "BillingAccountId"), ("category", "ChargeCategory")] },
    Kind { table: "alert", keys: &[("account", "account_id"), ("type", "alert_type")] },
    Kind { table: "ledger", keys: &[("package", "package_id")] },
    Kind { table: "status", keys: &[("account", "account_id")] },
    Kind { table: "allocation", keys: &[("resource", "AllocatedResourceId"), ("method", "AllocatedMethodId")] },
    Kind { table: "analysis", keys: &[("account", "account_id"), ("view", "view"), ("dimension", "dimension"), ("key", "key")] },
    // A rejected row's details (which rows are rejected: `expect.rejected`).
    Kind { table: "rejection", keys: &[("record", "record_id")] },
];

/// Fields of an expectation that choose rather than compare: the period whose
/// outputs it is about (default: the first closed), the n-th matching row, and
/// `absent = true` for "no such row".
const CHOOSERS: &[&str] = &["period", "n", "absent"];

fn rows_of(o: &Outputs, table: &str) -> Vec<Row> {
    Outputs::rows(match table {
        "invoice" => &o.invoices,
        "settlement" => &o.settlements,
        "line" => &o.line_items,
        "alert" => &o.alerts,
        "ledger" => &o.ledger,
        "status" => &o.status,
        "allocation" => &o.allocation,
        "analysis" => &o.analysis,
        "rejection" => &o.rejected,
        other => panic!("no table {other}"),
    })
}

/// One difference: where, and what.
type Diff = (String, String);

/// Compares one file; with `bless`, returns the file rewritten from the output.
fn check(path: &Path, bless: bool) -> (Vec<Diff>, Option<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The periods closed, in order: `periods = [...]`, or the one `period`.
    let periods: Vec<String> = match doc.get("periods").and_then(Value::as_array) {
        Some(list) => list.iter().map(|p| p.as_str().expect("a period").to_string()).collect(),
        None => vec![field(&doc, "period").unwrap_or_else(|| "2026-01".into())],
    };
    let s = build(&doc);
    let closed: BTreeMap<String, Outputs> =
        periods.iter().map(|p| (p.clone(), s.close(p).unwrap_or_else(|e| panic!("{}: the close of {p} failed: {e}", path.display())))).collect();
    let period_of = |e: &Table| field(e, "period").unwrap_or_else(|| periods[0].clone());
    let mut edit: toml_edit::DocumentMut = text.parse().unwrap();
    let mut diffs = Vec::new();
    let expect = doc.get("expect").and_then(Value::as_table).cloned().unwrap_or_default();
    for kind in KINDS {
        for (i, e) in tables(&expect, kind.table).into_iter().enumerate() {
            let period = period_of(e);
            let Some(o) = closed.get(&period) else {
                diffs.push((format!("expect.{}[{i}]", kind.table), format!("period {period} is not closed by this file")));
                continue;
            };
            let rows = rows_of(o, kind.table);
            let keys: Vec<(&str, String)> = kind.keys.iter().filter_map(|(k, col)| field(e, k).map(|v| (*col, v))).collect();
            let nth = int(e, "n", 1) as usize;
            let found = rows.iter().filter(|r| keys.iter().all(|(col, v)| same(v, &r[*col]))).nth(nth - 1);
            let at = format!("expect.{}[{i}] {period} {keys:?} n={nth}", kind.table);
            if e.get("absent").and_then(Value::as_bool) == Some(true) {
                if found.is_some() {
                    diffs.push((at, "a row that should not be there".into()));
                }
                continue;
            }
            let Some(row) = found else {
                diffs.push((at, "no such row".into()));
                continue;
            };
            for (name, v) in e {
                if CHOOSERS.contains(&name.as_str()) || kind.keys.iter().any(|(k, _)| k == name) {
                    continue;
                }
                let want = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let Some(got) = row.get(name) else {
                    diffs.push((at.clone(), format!("no column {name}")));
                    continue;
                };
                if !same(&want, got) {
                    diffs.push((at.clone(), format!("{name}: expected {want}, got {got}")));
                    if bless {
                        let slot = &mut edit["expect"][kind.table][i][name.as_str()];
                        let decor = slot.as_value().map(|v| v.decor().clone());
                        let mut value = toml_edit::Value::from(shown(got));
                        if let Some(decor) = decor {
                            *value.decor_mut() = decor;
                        }
                        *slot = toml_edit::Item::Value(value);
                    }
                }
            }
        }
    }
    // Rejections: exactly those listed, period by period.
    for (period, o) in &closed {
        let mut want: Vec<(String, String)> = tables(&expect, "rejected")
            .into_iter()
            .filter(|r| period_of(r) == *period)
            .map(|r| (req(r, "record", "expect.rejected"), req(r, "reason", "expect.rejected")))
            .collect();
        want.sort();
        let got = o.rejections();
        if want != got {
            diffs.push((format!("expect.rejected {period}"), format!("expected {want:?}, got {got:?}")));
        }
    }
    // Closes that must be refused, after the periods above: the message says why.
    for r in tables(&expect, "refused") {
        let period = req(r, "period", "expect.refused");
        let why = req(r, "error", "expect.refused");
        match s.close(&period) {
            Ok(_) => diffs.push((format!("expect.refused {period}"), "the close was not refused".into())),
            Err(e) if !e.to_string().contains(&why) => diffs.push((format!("expect.refused {period}"), format!("refused with '{e}', not '{why}'"))),
            Err(_) => {}
        }
    }
    (diffs, bless.then(|| edit.to_string()))
}

#[test]
fn every_scenario_file_bills_as_worked_out_by_hand() {
    let bless = std::env::var_os("BILLRUN_BLESS").is_some();
    let files = files();
    assert!(files.len() >= 10, "the scenario files are found: {files:?}");
    let mut report = Vec::new();
    for f in &files {
        let (diffs, rewritten) = check(f, bless);
        if let Some(text) = rewritten.filter(|_| !diffs.is_empty()) {
            std::fs::write(f, text).unwrap();
        }
        for (at, what) in diffs {
            report.push(format!("{}: {at}: {what}", f.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(report.is_empty(), "{} difference(s){}:\n{}", report.len(), if bless { " (rewritten from the output)" } else { "" }, report.join("\n"));
}

/// The runner itself: a wrong figure in a file is reported with its place, and a
/// timestamp written short matches the output's long form.
#[test]
fn the_runner_reports_a_wrong_figure() {
    assert!(same("2026-01-05T10:00", "2026-01-05T10:00:00.000000Z"));
    assert!(!same("2026-01-05T11:00", "2026-01-05T10:00:00.000000Z"));
    assert_eq!(shown("2026-01-05T10:00:00.000000Z"), "2026-01-05T10:00");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.toml");
    std::fs::write(
        &path,
        r#"
[[price]]
sku = "cpu"
unit = "node-hour"
price = "1.00"
[[account]]
id = "A"
balance = "10"
[[usage]]
id = "a1"
account = "A"
sku = "cpu"
start = "2026-01-05T10:00"
end = "2026-01-05T11:00"
[[expect.invoice]]
account = "A"
total_due = "2.00" # wrong: 1 node-hour × 1.00
"#,
    )
    .unwrap();
    let (diffs, rewritten) = check(&path, true);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(diffs[0].1.contains("total_due: expected 2.00, got 1.00"), "{diffs:?}");
    let rewritten = rewritten.unwrap();
    assert!(rewritten.contains(r#"total_due = "1.00" # wrong: 1 node-hour × 1.00"#), "{rewritten}");
}
