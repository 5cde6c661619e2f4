//! Malformed lakes: each gets a rejected row with its reason, or a refusal (exit 2)
//! naming the file, the row and the field — never a panic or a lost row.

use crate::harness::*;
use crate::lakes::billrun;
use billrun::decimal::Dec;
use billrun::model::PricingUnit::*;
use proptest::prelude::*;

fn base() -> Scenario {
    let mut s = Scenario::new();
    s.price("cpu", NodeHour, "1.00", "0");
    s.account("A", "100");
    s.usage("ok", "A", "cpu", "2026-01-02T00:00", "2026-01-02T01:00", 1);
    s
}

fn run(s: &Scenario) -> std::process::Output {
    billrun().args(["run", "--period", "2026-01", "--input"]).arg(s.lake()).output().unwrap()
}

fn refused(s: &Scenario, must_name: &[&str]) {
    let published = s.lake().join("bills/invoices/billing_period=2026-01/part-0.parquet");
    let before = std::fs::read(&published).ok();
    let out = run(s);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for m in must_name {
        assert!(err.contains(m), "the message names {m:?}: {err}");
    }
    assert_eq!(std::fs::read(&published).ok(), before, "a refused run publishes nothing");
}

fn rewrite_usage(s: &Scenario, f: impl Fn(arrow_array::RecordBatch) -> arrow_array::RecordBatch) -> String {
    let rel = s.files.keys().next().unwrap().clone();
    let path = s.lake().join(&rel);
    let b = billrun::lake::inputs::decode_parquet("x", std::fs::read(&path).unwrap().into()).unwrap().remove(0);
    let l = billrun::lake::store::Lake::open(s.lake().to_str().unwrap(), false).unwrap();
    billrun::generate::put_parquet(&l, &rel, f(b)).unwrap();
    rel
}

#[test]
fn a_column_of_the_wrong_type_refuses_naming_it() {
    let s = base();
    s.write();
    let rel = rewrite_usage(&s, |b| {
        let i = b.schema().index_of("nodes").unwrap();
        let mut cols = b.columns().to_vec();
        cols[i] = std::sync::Arc::new(arrow_array::StringArray::from(vec!["one"]));
        let mut fields: Vec<arrow_schema::Field> = b.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[i] = arrow_schema::Field::new("nodes", arrow_schema::DataType::Utf8, true);
        arrow_array::RecordBatch::try_new(std::sync::Arc::new(arrow_schema::Schema::new(fields)), cols).unwrap()
    });
    refused(&s, &[&rel, "nodes", "expected int32"]);
}

#[test]
fn extra_columns_are_accepted() {
    let s = base();
    s.write();
    rewrite_usage(&s, |b| {
        let mut fields: Vec<arrow_schema::Field> = b.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(arrow_schema::Field::new("meter_version", arrow_schema::DataType::Utf8, true));
        let mut cols = b.columns().to_vec();
        cols.push(std::sync::Arc::new(arrow_array::StringArray::from(vec!["v2"])));
        arrow_array::RecordBatch::try_new(std::sync::Arc::new(arrow_schema::Schema::new(fields)), cols).unwrap()
    });
    let out = run(&s);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn empty_files_empty_months_and_zero_byte_files() {
    // A Parquet file with no rows, and a month with no usage at all: invoices of zero.
    let mut s = base();
    s.files.clear();
    s.write();
    let empty = billrun::generate::usage::usage_batch(&[]);
    let l = billrun::lake::store::Lake::open(s.lake().to_str().unwrap(), false).unwrap();
    billrun::generate::put_parquet(&l, "usage/date=2026-01-05/hour=03/empty.parquet", empty).unwrap();
    let out = run(&s);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let inv = Outputs::rows(&read_table(&s.lake(), "bills/invoices", "2026-01"));
    assert_eq!((inv.len(), inv[0]["total_due"].as_str(), inv[0]["closing_balance"].as_str()), (1, "0.00", "100.00"));
    // A zero-byte file is not Parquet: refused, named.
    std::fs::write(s.lake().join("usage/date=2026-01-06/hour=00/zero.parquet").tap_mkdir(), b"").unwrap();
    refused(&s, &["usage/date=2026-01-06/hour=00/zero.parquet"]);
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}
impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(self.parent().unwrap()).unwrap();
        self
    }
}

#[test]
fn decimal_and_time_limits_are_rejections() {
    let mut s = base();
    s.price("huge", NodeHour, "100000000000000000000", "0"); // 1e20 per node-hour
    s.usage("q-1e27", "A", "cpu", "2026-01-02T02:00", "2026-01-02T03:00", 1).quantity = Some(Dec::parse("1000000000000000000000000000").unwrap());
    s.usage("amount-overflow", "A", "huge", "2026-01-02T02:00", "2026-01-02T03:00", 2);
    let p = Scenario::partition_file(t("2026-01-02T02:00"), "part-0.parquet");
    let mut r = s.files[&p][0].clone();
    r.quantity = Some(Dec::from_int(1));
    for (id, at) in [("epoch", 0i64), ("year-9999", 253_402_300_000_000_000)] {
        r.record_id = Some(id.into());
        r.start = Some(at);
        r.end = Some(at + H / 2);
        s.row_in(&p, r.clone());
    }
    let o = s.close("2026-01").unwrap();
    assert_eq!(o.reason_of("q-1e27").as_deref(), Some("schema"));
    assert_eq!(o.reason_of("amount-overflow").as_deref(), Some("schema"));
    assert_eq!(o.reason_of("epoch").as_deref(), Some("out_of_period"));
    assert_eq!(o.reason_of("year-9999").as_deref(), Some("out_of_period"));
    assert_eq!(o.invoice("A")["usage_charges"], "1.00");
}

#[test]
fn bad_reference_data_refuses_naming_the_row() {
    let mut s = base();
    s.price("cpu", NodeHour, "2.00", "0"); // same key, same interval: overlap
    s.write();
    refused(&s, &["catalog/prices.parquet", "overlapping", "rows 0 and 1"]);

    let mut s = base();
    s.price("neg", NodeHour, "-1.00", "0");
    s.write();
    refused(&s, &["catalog/prices.parquet row 1", "unit_price", "negative"]);

    let mut s = base();
    s.package("p", "nobody", "cpu", "1", "1.00", "2026-01-01T00:00", "2026-02-01T00:00");
    s.write();
    refused(&s, &["inventory/packages.parquet row 0", "account_id", "nobody"]);

    let mut s = base();
    s.payment("pay", "ghost", "2026-01-03T00:00", "5");
    s.write();
    refused(&s, &["accounts/payments.parquet row 0", "ghost"]);

    // A subscription for an unknown account is a rejected order, not a refusal.
    let mut s = base();
    s.price("cpu", NodeMonth, "100", "0");
    s.subscription("sub-x", "ghost", "srv", "cpu", 1, 1, "2026-01-03T00:00");
    let o = s.close("2026-01").unwrap();
    assert_eq!(o.reason_of("sub-x").as_deref(), Some("unknown_account"));

    let s = base();
    s.write();
    std::fs::remove_file(s.lake().join("accounts/accounts.parquet")).unwrap();
    refused(&s, &["accounts/accounts.parquet", "missing"]);
}

/// [`arb_str`], or a value with a control character.
fn arb_str_or_control() -> impl Strategy<Value = Option<String>> {
    prop_oneof![4 => arb_str(), 1 => Just(Some("B\u{1}".to_string()))]
}

fn arb_str() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(Some("A".to_string())),
        1 => Just(None),
        1 => Just(Some(String::new())),
        1 => "[a-z/.=\\\\]{0,12}".prop_map(Some),
        1 => any::<String>().prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32), .. ProptestConfig::default() })]

    /// Fuzzing the readers and the row checks with generated frames: any values, nulls,
    /// extreme decimals and times, hostile strings. Every row ends in exactly one
    /// place and nothing panics. Run longer with PROPTEST_CASES=20000.
    #[test]
    fn fuzzed_usage_frames_never_panic_or_lose_rows(rows in prop::collection::vec((
        arb_str(), arb_str(), prop::option::of(-3i32..5), prop::option::of(-3i32..5),
        prop::option::of(prop_oneof![Just(i128::MAX / 10), Just(-1i128), 0i128..100_000_000_000]),
        prop::option::of(-4_000_000_000i64..8_000_000_000), prop::option::of(-10i64..8_000_000_000),
        prop::sample::select(vec!["training", "evs", "nope", ""]), prop::sample::select(vec!["public", "dedicated", "x"]),
        arb_str(), any::<bool>(),
    ), 1..40)) {
        let mut s = base();
        s.files.clear();
        let hour = t("2026-01-10T05:00");
        for (k, (acct, sku, nodes, uc, qty, start, dur, module, pool, tags, wrong_hour)) in rows.into_iter().enumerate() {
            let start = start.map(|o| hour + o);
            let row = billrun::generate::usage::Row {
                record_id: Some(format!("f{k}")),
                account_id: acct,
                region: Some(R1.into()),
                resource_id: Some(format!("r{k}")),
                resource_name: None,
                module: Some(module.into()),
                sku: sku.map(|s| if s == "A" { "cpu".to_string() } else { s }),
                unit_count: uc,
                pool_type: Some(pool.into()),
                pool_id: None,
                nodes,
                quantity: qty.map(Dec),
                start,
                end: start.zip(dur).map(|(s, d)| s + d),
                enterprise_project: None,
                tags: tags.map(|t| format!("{{\"k\":\"{}\"}}", t.replace(['"', '\\'], ""))),
            };
            let at = if wrong_hour { hour + 3 * H } else { hour };
            s.row_in(&Scenario::partition_file(at, "part-0.parquet"), row);
        }
        let n: usize = s.files.values().map(Vec::len).sum();
        let o = s.close("2026-01").unwrap();
        prop_assert_eq!(o.report.rows_in as usize, n);
        let rejected: u64 = o.report.rejected.values().sum();
        prop_assert_eq!(o.report.rows_rated + rejected, n as u64);
        let inv = o.invoice("A");
        let billed: Dec = o.lines_of("A").iter().map(|l| d(&l["BilledCost"])).fold(Dec::ZERO, |a, b| a.checked_add(b).unwrap());
        prop_assert_eq!(billed, d(&inv["total_due"]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64), .. ProptestConfig::default() })]

    /// Fuzzing the Parquet reader: a valid usage file with random bytes overwritten
    /// decodes, or is refused naming the file — it never takes the process down.
    #[test]
    fn mutated_parquet_bytes_are_refused_not_crashed(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let rows: Vec<_> = (0..50).map(|k| {
            let mut s = base();
            s.usage(&format!("m{k}"), "A", "cpu", "2026-01-02T00:00", "2026-01-02T01:00", 1).clone()
        }).collect();
        let mut buf = Vec::new();
        let batch = billrun::generate::usage::usage_batch(&rows);
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        for (i, b) in flips {
            let at = i.index(buf.len());
            buf[at] = b;
        }
        let f = billrun::lake::inputs::UsageFile { path: "usage/date=2026-01-02/hour=00/f.parquet".into(), size: buf.len() as u64, e_tag: None, partition_hour: t("2026-01-02T00:00") };
        match billrun::lake::inputs::read_usage_file(0, &f, buf.into()) {
            Ok(chunks) => {
                for c in &chunks {
                    for r in 0..c.len {
                        let _ = billrun::rules::checks::check_row(c, billrun::rules::checks::RowLoc { chunk: 0, row: r as u32 }, billrun::time::Period::parse("2026-01").unwrap());
                    }
                }
            }
            Err(e) => prop_assert!(e.to_string().contains("f.parquet"), "{}", e),
        }
    }
}

#[test]
fn permission_errors_are_reported_plainly() {
    // An output location that cannot be created.
    let s = base();
    s.write();
    let blocker = s.dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let out = billrun().args(["run", "--period", "2026-01", "--input"]).arg(s.lake()).arg("--output").arg(blocker.join("out")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not-a-folder") && err.contains("cannot create folder"), "{err}");
    // A bucket that refuses the credentials.
    let s3 = crate::s3_server::S3Server::start();
    let mut c = billrun();
    s3.apply_env(&mut c).env("AWS_SECRET_ACCESS_KEY", "wrong-secret-value").env("BILLRUN_S3_MAX_RETRIES", "0");
    let out = c.args(["run", "--period", "2026-01", "--input", &s3.url("lake")]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&s3.url("lake")) && !err.contains("wrong-secret-value"), "{err}");
    assert!(err.contains("403") || err.to_lowercase().contains("signature") || err.contains("AccessDenied"), "{err}");
}

/// Writers store a usage file's strings differently: as dictionary pages, as plain
/// pages, as a dictionary that overflows into plain pages within a column chunk, or as
/// Arrow dictionaries (keys of any width) in the file's schema. The reader, which keeps
/// the columns of few distinct values as dictionaries, gives every row the same
/// strings from each, for the whole file and for a selection of its rows (which reads
/// no resource name nor project: a what-if rating needs neither), and the duplicate
/// pass reads the record ids of each.
#[test]
fn usage_strings_read_the_same_however_the_file_stores_them() {
    use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch};
    use billrun::engine::RowFilter;
    use billrun::lake::inputs::{read_usage_file, read_usage_file_of, RowKeys, UsageChunk, UsageFile};
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;
    let n = 5_000;
    let rows: Vec<billrun::generate::usage::Row> = (0..n)
        .map(|k| billrun::generate::usage::Row {
            record_id: Some(format!("rec-{k}")),
            account_id: (k % 97 != 0).then(|| format!("acct-{:03}", (k * 7919) % 131)),
            region: Some(["r-north", "r-south"][k % 2].into()),
            resource_id: Some(format!("res-{}", k % 1_700)),
            resource_name: (k % 5 != 0).then(|| format!("name-{}", k % 900)),
            module: Some("training".into()),
            sku: Some(format!("sku-{}", k % 13)),
            unit_count: Some(1),
            pool_type: Some("public".into()),
            pool_id: None,
            nodes: Some(1),
            quantity: Some(Dec::from_int(1)),
            start: Some(t("2026-01-02T00:00")),
            end: Some(t("2026-01-02T01:00")),
            enterprise_project: (k % 3 == 0).then(|| format!("proj-{}", k % 4)),
            tags: Some(format!("{{\"team\":\"t{}\"}}", k % 6)),
        })
        .collect();
    let batch = billrun::generate::usage::usage_batch(&rows);
    let write = |batch: &RecordBatch, props: WriterProperties| -> bytes::Bytes {
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
        for at in (0..batch.num_rows()).step_by(1_000) {
            w.write(&batch.slice(at, 1_000.min(batch.num_rows() - at))).unwrap();
        }
        w.close().unwrap();
        buf.into()
    };
    // The same rows with string columns typed as Arrow dictionaries, with keys of
    // several widths (as pandas categories are written), record ids among them.
    let typed = {
        use arrow_array::types::{Int16Type, Int32Type, Int8Type, UInt16Type};
        let schema = batch.schema();
        let mut fields: Vec<arrow_schema::Field> = Vec::new();
        let mut cols: Vec<ArrayRef> = Vec::new();
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            let s = c.as_any().downcast_ref::<arrow_array::StringArray>();
            let d: Option<ArrayRef> = match (f.name().as_str(), s) {
                ("account_id", Some(s)) => Some(Arc::new(s.iter().collect::<DictionaryArray<UInt16Type>>())),
                ("sku" | "tags", Some(s)) => Some(Arc::new(s.iter().collect::<DictionaryArray<Int8Type>>())),
                ("pool_id", Some(s)) => Some(Arc::new(s.iter().collect::<DictionaryArray<Int32Type>>())),
                ("record_id", Some(s)) => Some(Arc::new(s.iter().collect::<DictionaryArray<Int16Type>>())),
                _ => None,
            };
            let col = d.unwrap_or_else(|| c.clone());
            fields.push(f.as_ref().clone().with_data_type(col.data_type().clone()));
            cols.push(col);
        }
        RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols).unwrap()
    };
    let plain = WriterProperties::builder().set_dictionary_enabled(false).build();
    let files = [
        ("plain pages", write(&batch, plain.clone())),
        ("dictionary pages, row groups of 2,000", write(&batch, WriterProperties::builder().set_max_row_group_row_count(Some(2_000)).build())),
        (
            "dictionaries that overflow into plain pages",
            write(&batch, WriterProperties::builder().set_dictionary_page_size_limit(64).set_data_page_row_count_limit(300).set_write_batch_size(100).build()),
        ),
        ("Arrow dictionaries in the schema", write(&typed, WriterProperties::builder().build())),
        ("Arrow dictionaries written plain", write(&typed, plain)),
    ];
    let same = |got: Vec<[Option<String>; 9]>, want: &[[Option<String>; 9]], what: String| {
        let first = got.iter().zip(want).position(|(g, w)| g != w);
        assert!(
            first.is_none() && got.len() == want.len(),
            "{what}: {} rows for {}; first difference at {first:?}: {:?} for {:?}",
            got.len(),
            want.len(),
            first.map(|i| &got[i]),
            first.map(|i| &want[i])
        );
    };
    let strings = |chunks: &[UsageChunk]| -> Vec<[Option<String>; 9]> {
        let mut out = Vec::new();
        for c in chunks {
            for r in 0..c.len {
                out.push(
                    [&c.record_id, &c.account_id, &c.region, &c.resource_id, &c.resource_name, &c.sku, &c.pool_id, &c.enterprise_project, &c.tags]
                        .map(|col| col.get(r).map(str::to_string)),
                );
            }
        }
        out
    };
    let f = UsageFile { path: "usage/date=2026-01-02/hour=00/f.parquet".into(), size: 0, e_tag: None, partition_hour: t("2026-01-02T00:00") };
    // A what-if selection: every row of some accounts, none of others, and of the
    // rest the rows of a SKU in a region, or also of a resource. Rows without an
    // account are never selected (they are no account's).
    let resource = rows
        .iter()
        .find(|r| r.account_id.as_deref().is_some_and(|a| a.ends_with('5')) && r.sku.as_deref() != Some("sku-3"))
        .and_then(|r| r.resource_id.clone())
        .unwrap();
    let by_place = RowFilter { sku: "sku-3".into(), region: "r-north".into(), resource: None };
    let by_resource = RowFilter { resource: Some(resource.clone()), ..by_place.clone() };
    fn selection<'f>(by_place: &'f RowFilter, by_resource: &'f RowFilter) -> impl Fn(&str) -> Option<Option<&'f RowFilter>> + Sync + 'f {
        move |a| match a.chars().last() {
            Some('7') => Some(None),
            Some('5') => Some(Some(by_resource)),
            Some('0') => None,
            _ => Some(Some(by_place)),
        }
    }
    let select = selection(&by_place, &by_resource);
    let wanted = |k: &RowKeys<'_>| k.account_id.and_then(&select).is_some_and(|f| f.is_none_or(|f| f.wants(k)));
    let expected: Vec<[Option<String>; 9]> = (0..n)
        .map(|k| {
            let r = &rows[k];
            [&r.record_id, &r.account_id, &r.region, &r.resource_id, &r.resource_name, &r.sku, &r.pool_id, &r.enterprise_project, &r.tags].map(|v| v.clone())
        })
        .collect();
    let chosen: Vec<[Option<String>; 9]> = expected.iter().zip(&rows).filter(|(_, r)| wanted(&some_keys(r))).map(|(e, _)| e.clone()).collect();
    assert!(chosen.len() > 100 && chosen.len() < n / 2, "{}", chosen.len());
    // Each way of being chosen is there: a whole account, a SKU in a region, a resource.
    assert!(rows.iter().any(|r| r.account_id.as_deref().is_some_and(|a| a.ends_with('7'))));
    assert!(rows.iter().any(|r| by_place.wants(&some_keys(r)) && r.account_id.as_deref().is_some_and(|a| !a.ends_with('7') && !a.ends_with('0'))));
    assert!(rows.iter().any(|r| r.resource_id.as_deref() == Some(resource.as_str())
        && !by_place.wants(&some_keys(r))
        && r.account_id.as_deref().is_some_and(|a| a.ends_with('5'))));
    assert_eq!(billrun::lake::inputs::NOT_RATED, ["resource_name", "enterprise_project"]);
    let chosen: Vec<[Option<String>; 9]> = chosen
        .into_iter()
        .map(|mut e| {
            (e[4], e[7]) = (None, None);
            e
        })
        .collect();
    for (how, bytes) in files {
        let read_ids = bytes.clone();
        let all = read_usage_file(0, &f, bytes.clone()).unwrap_or_else(|e| panic!("{how}: {e}"));
        same(strings(&all), &expected, format!("{how}: the whole file"));
        let some = read_usage_file_of(0, &f, bytes, &select).unwrap_or_else(|e| panic!("{how}: {e}"));
        same(strings(&some), &chosen, format!("{how}: a selection of rows"));
        let numbers: Vec<u32> = some.iter().flat_map(|c| (0..c.len).map(|r| c.file_row(r))).collect();
        let expected_numbers: Vec<u32> = (0..n as u32).filter(|&k| wanted(&some_keys(&rows[k as usize]))).collect();
        assert_eq!(numbers, expected_numbers, "{how}: the selected rows keep their row numbers");
        // What the duplicate pass reads: the record ids alone.
        let ids = billrun::lake::inputs::decode_parquet_with("f", read_ids.clone(), |b| {
            let mask = parquet::arrow::ProjectionMask::columns(b.parquet_schema(), ["record_id"]);
            b.with_projection(mask)
        })
        .unwrap_or_else(|e| panic!("{how}: {e}"));
        let got: Vec<Option<String>> = ids
            .iter()
            .flat_map(|b| {
                let c = billrun::lake::columns::StrCol::of(b, "record_id").unwrap_or_else(|e| panic!("{how}: {e:?}"));
                (0..b.num_rows()).map(move |r| c.get(r).map(str::to_string))
            })
            .collect();
        assert_eq!(got, rows.iter().map(|r| r.record_id.clone()).collect::<Vec<_>>(), "{how}: the record ids alone");
    }
}

fn some_keys(r: &billrun::generate::usage::Row) -> billrun::lake::inputs::RowKeys<'_> {
    billrun::lake::inputs::RowKeys {
        account_id: r.account_id.as_deref(),
        sku: r.sku.as_deref(),
        region: r.region.as_deref(),
        resource_id: r.resource_id.as_deref(),
        pool_id: r.pool_id.as_deref(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64), .. ProptestConfig::default() })]

    /// The row checks with each distinct dictionary value checked once beforehand (as
    /// the engine runs them) give every row the same outcome as checking each row
    /// whole: the same usage, or the same rejection.
    #[test]
    fn checks_by_dictionary_value_agree_with_checks_by_row(rows in prop::collection::vec((
        arb_str_or_control(), arb_str_or_control(), arb_str_or_control(),
        prop::sample::select(vec!["training", "evs", "nope", "", "notebook\u{7}"]),
        prop::sample::select(vec!["public", "dedicated", "x", "public\n"]),
        prop::option::of(prop_oneof![
            Just("{\"team\":\"a\"}".to_string()),
            Just("{\"team\":1}".to_string()),
            Just("{\"k\":\"v\\u0041\"}".to_string()),
            Just("[]".to_string()),
            any::<String>(),
        ]),
    ), 1..60), hour in prop::sample::select(vec!["2025-12-31T23:00", "2026-01-01T00:00", "2026-01-10T05:00", "2026-01-31T23:00", "2026-02-01T00:00"])) {
        use billrun::rules::checks::{check_row, check_row_known, Known, RowLoc};
        // Hours inside the period and either side of it.
        let hour = t(hour);
        let rows: Vec<billrun::generate::usage::Row> = rows
            .into_iter()
            .enumerate()
            .map(|(k, (acct, region, sku, module, pool, tags))| billrun::generate::usage::Row {
                record_id: Some(format!("f{k}")),
                account_id: acct,
                region,
                resource_id: Some(format!("r{k}")),
                resource_name: None,
                module: Some(module.into()),
                sku,
                unit_count: Some(1),
                pool_type: Some(pool.into()),
                pool_id: None,
                nodes: Some(1),
                quantity: Some(Dec::from_int(1)),
                start: Some(hour),
                end: Some(hour + H),
                enterprise_project: None,
                tags,
            })
            .collect();
        let batch = billrun::generate::usage::usage_batch(&rows);
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let f = billrun::lake::inputs::UsageFile { path: "usage/f.parquet".into(), size: buf.len() as u64, e_tag: None, partition_hour: hour };
        let period = billrun::time::Period::parse("2026-01").unwrap();
        for c in billrun::lake::inputs::read_usage_file(0, &f, buf.into()).unwrap() {
            // (a column with no value at all is read plain)
            prop_assert!(c.account_id.dictionary().is_some() || (0..c.len).all(|r| c.account_id.get(r).is_none()), "the account column is read as a dictionary");
            let known = Known::of(&c, period);
            for r in 0..c.len {
                let loc = RowLoc { chunk: 0, row: r as u32 };
                let (whole, by_value) = (check_row(&c, loc, period), check_row_known(&c, loc, period, &known));
                prop_assert_eq!(format!("{whole:?}"), format!("{by_value:?}"));
            }
        }
    }
}

/// A balance beyond the 38 digits of `decimal(38,10)`: two payments of 6e27 each on
/// an account that holds 1. The run is refused (exit 2) naming the account and the
/// figure, and publishes nothing — the balance is never saturated nor zeroed.
#[test]
fn a_balance_beyond_38_digits_refuses_the_run_naming_the_account() {
    let mut s = base();
    s.account("RICH", "1");
    s.payment("p1", "RICH", "2026-01-03T00:00", "6000000000000000000000000000");
    s.payment("p2", "RICH", "2026-01-04T00:00", "6000000000000000000000000000");
    s.usage("r1", "RICH", "cpu", "2026-01-05T00:00", "2026-01-05T01:00", 1);
    s.write();
    refused(&s, &["account 'RICH'", "balance", "38 digits", "refused"]);
}

/// The same payments, small enough: the run goes through, the balance exact.
#[test]
fn a_balance_of_38_digits_is_kept_exactly() {
    let mut s = base();
    s.account("RICH", "1");
    s.payment("p1", "RICH", "2026-01-03T00:00", "4000000000000000000000000000");
    s.payment("p2", "RICH", "2026-01-04T00:00", "4000000000000000000000000000");
    s.write();
    let o = s.close("2026-01").unwrap();
    assert_eq!(d(&o.invoice("RICH")["closing_balance"]), d("8000000000000000000000000001"));
}
