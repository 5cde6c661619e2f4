//! A period closed in shards of accounts (`run --shard K/N`, `commit`): published
//! tables byte for byte those of a single close, for N = 1, 3 and 7, over two chained
//! months with every rule and every rejection reason, hourly runs before the close,
//! duplicates straddling shards, and shards from a staged usage layout; the commit's
//! refusals; the shard function against Spark's own values.

use crate::lakes::billrun;
use crate::reliability::parquet_files;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use billrun::generate::put_parquet;
use billrun::lake::store::Lake;
use billrun::shard::{xxhash64, Shard};
use billrun::time::Period;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

const MONTHS: [&str; 2] = ["2026-01", "2026-02"];

fn ok(out: Output, what: &str) -> Output {
    assert!(matches!(out.status.code(), Some(0 | 1)), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn generate(lake: &Path, args: &[&str]) {
    ok(billrun().arg("generate").args(args).arg("--out").arg(lake).output().unwrap(), "generate");
}

/// A usage file's rows, as written.
fn read_rows(path: &Path) -> RecordBatch {
    let bytes = Bytes::from(std::fs::read(path).unwrap());
    let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap().map(Result::unwrap).collect();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// Row `r` of `batch` with some string columns set.
fn copy_row(batch: &RecordBatch, r: usize, set: &[(&str, &str)]) -> RecordBatch {
    let cols: Vec<ArrayRef> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| match set.iter().find(|(n, _)| n == f.name()) {
            Some((_, v)) => Arc::new(StringArray::from(vec![*v])) as ArrayRef,
            None => batch.column(i).slice(r, 1),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), cols).unwrap()
}

fn first_file(lake: &Path, partition: &str) -> std::path::PathBuf {
    let dir = lake.join(partition);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.into_iter().next().unwrap_or_else(|| panic!("no usage under {}", dir.display()))
}

/// Late and repeated usage added to a generated lake, after the hourly runs:
/// - a copy of every rated row of a file of 2026-01-01T03 under a new record id, in a
///   new file of that hour (late usage: the close's settlements of the hour differ);
/// - record `straddle-1` for two accounts of different shards (N = 3 and 7), in two
///   hours: both copies `conflicting_duplicate`;
/// - record `straddle-3`: twice the same row, in two files, and once for an account
///   of another shard in a later hour: all three `conflicting_duplicate`;
/// - record `twice-1`: the same row in two files of an hour: one rated, one
///   `duplicate`.
fn add_late_and_repeated(lake: &Path, scratch: &Path) -> (String, String) {
    // Rows a close rates (the generator puts rows that break rules among them).
    ok(billrun().args(["run", "--period", MONTHS[0], "--input"]).arg(lake).arg("--output").arg(scratch).output().unwrap(), "scratch close");
    let lines = crate::harness::read_table(scratch, "bills/line_items", MONTHS[0]);
    let rated: std::collections::HashSet<String> = crate::harness::Outputs::col(&lines, "x_UsageRecordId").into_iter().collect();
    let rated_rows = |b: &RecordBatch| {
        let ids = b.column_by_name("record_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let rows: Vec<usize> = (0..b.num_rows()).filter(|&r| ids.is_valid(r) && rated.contains(ids.value(r))).collect();
        let picked = b.clone();
        arrow_select::take::take_record_batch(&picked, &arrow_array::UInt32Array::from_iter_values(rows.iter().map(|&r| r as u32))).unwrap()
    };
    let early = rated_rows(&read_rows(&first_file(lake, "usage/date=2026-01-01/hour=03")));
    let later = rated_rows(&read_rows(&first_file(lake, "usage/date=2026-01-15/hour=10")));
    assert!(early.num_rows() >= 3 && later.num_rows() >= 1);
    let accounts = early.column_by_name("account_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
    let a = accounts.value(1).to_string();
    // An account of another shard than `a` for both N = 3 and N = 7.
    let b = (1..12)
        .map(|i| format!("acct-{i:05}"))
        .find(|b| (Shard::of(Some(b), 3) != Shard::of(Some(&a), 3)) && (Shard::of(Some(b), 7) != Shard::of(Some(&a), 7)))
        .unwrap();
    let input = Lake::open(lake.to_str().unwrap(), false).unwrap();
    let put = |rel: &str, rows: Vec<RecordBatch>| {
        let batch = arrow_select::concat::concat_batches(&rows[0].schema(), &rows).unwrap();
        put_parquet(&input, rel, batch).unwrap();
    };
    put(
        "usage/date=2026-01-01/hour=03/zz-late.parquet",
        (0..early.num_rows())
            .map(|r| copy_row(&early, r, &[("record_id", &format!("late-{r}"))]))
            .chain([
                copy_row(&early, 1, &[("record_id", "straddle-1")]),
                copy_row(&early, 1, &[("record_id", "straddle-3")]),
                copy_row(&early, 2, &[("record_id", "twice-1")]),
            ])
            .collect(),
    );
    put(
        "usage/date=2026-01-01/hour=03/zz-more.parquet",
        vec![copy_row(&early, 1, &[("record_id", "straddle-3")]), copy_row(&early, 2, &[("record_id", "twice-1")])],
    );
    // A copy in a later hour starts in that hour: its content differs.
    put(
        "usage/date=2026-01-15/hour=10/zz-repeats.parquet",
        vec![copy_row(&later, 0, &[("record_id", "straddle-1"), ("account_id", &b)]), copy_row(&later, 0, &[("record_id", "straddle-3"), ("account_id", &b)])],
    );
    (a, b)
}

/// The hourly settlement of the first six hours of January into `out`.
fn hourly_runs(input: &Path, out: &Path) {
    for h in 0..6 {
        let hour = format!("2026-01-01T{h:02}");
        ok(billrun().args(["run", "--hour", &hour, "--input"]).arg(input).arg("--output").arg(out).output().unwrap(), &hour);
    }
}

/// Both months in `n` shards, each shard run then the commit; `staged`: the shards
/// read a staged layout written by [`stage`].
fn close_in_shards(input: &Path, out: &Path, n: u32, staged: Option<&Path>) {
    for p in MONTHS {
        if let Some(staged) = staged {
            stage(input, staged, Period::parse(p).unwrap(), n);
        }
        for k in 0..n {
            let mut cmd = billrun();
            cmd.args(["run", "--period", p, "--shard", &format!("{k}/{n}"), "--input"]).arg(input).arg("--output").arg(out);
            if let Some(staged) = staged {
                cmd.arg("--usage").arg(staged);
            }
            ok(cmd.output().unwrap(), &format!("{p} shard {k}/{n}"));
        }
        ok(billrun().args(["commit", "--period", p, "--shards", &n.to_string(), "--input"]).arg(input).arg("--output").arg(out).output().unwrap(), "commit");
    }
}

/// The staged layout as the contract gives it, written here as a shuffle would:
/// every usage row of the period with its `source_file` and `source_row`, by shard,
/// and the rows whose record id repeats under `repeats/`.
fn stage(input: &Path, staged: &Path, period: Period, n: u32) {
    let lake = Lake::open(input.to_str().unwrap(), false).unwrap();
    let out = Lake::open(staged.to_str().unwrap(), true).unwrap();
    let files = billrun::lake::inputs::list_usage(&lake, period).unwrap();
    let mut by_shard: Vec<Vec<RecordBatch>> = vec![Vec::new(); n as usize];
    let mut all = Vec::new();
    for f in &files {
        let batch = read_rows(&input.join(&f.path));
        let rows = batch.num_rows();
        let mut cols = batch.columns().to_vec();
        let mut fields: Vec<arrow_schema::Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        cols.push(Arc::new(StringArray::from(vec![f.path.as_str(); rows])));
        fields.push(arrow_schema::Field::new("source_file", arrow_schema::DataType::Utf8, false));
        cols.push(Arc::new(Int64Array::from_iter_values(0..rows as i64)));
        fields.push(arrow_schema::Field::new("source_row", arrow_schema::DataType::Int64, false));
        let batch = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols).unwrap();
        let ids = batch.column_by_name("account_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        for k in 0..n {
            let keep: arrow_array::BooleanArray = (0..rows).map(|r| Some(Shard::of(ids.is_valid(r).then(|| ids.value(r)), n) == k)).collect();
            by_shard[k as usize].push(arrow_select::filter::filter_record_batch(&batch, &keep).unwrap());
        }
        all.push(batch);
    }
    let base = format!("billing_period={period}/n={n}");
    for (k, batches) in by_shard.iter().enumerate() {
        let batch = arrow_select::concat::concat_batches(&all[0].schema(), batches).unwrap();
        // Rows in another order than the files': the reader puts them back.
        let reversed = arrow_select::take::take_record_batch(&batch, &arrow_array::UInt32Array::from_iter_values((0..batch.num_rows() as u32).rev())).unwrap();
        put_parquet(&out, &format!("{base}/k={k}/part-0.parquet"), reversed).unwrap();
    }
    let whole = arrow_select::concat::concat_batches(&all[0].schema(), &all).unwrap();
    let ids = whole.column_by_name("record_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
    let mut count = std::collections::HashMap::new();
    for id in ids.iter().flatten() {
        *count.entry(id).or_insert(0) += 1;
    }
    let keep: arrow_array::BooleanArray = ids.iter().map(|id| Some(id.is_some_and(|id| count[id] > 1))).collect();
    put_parquet(&out, &format!("{base}/repeats/part-0.parquet"), arrow_select::filter::filter_record_batch(&whole, &keep).unwrap()).unwrap();
}

pub fn same_tables(single: &Path, sharded: &Path, what: &str) {
    let (a, b) = (parquet_files(single), parquet_files(sharded));
    assert_eq!(a.iter().map(|x| &x.0).collect::<Vec<_>>(), b.iter().map(|x| &x.0).collect::<Vec<_>>(), "{what}: the same tables");
    for ((rel, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{what}: {rel} differs from the single close's");
    }
    assert!(!sharded.join("_shards").exists() || crate::harness::files_under(&sharded.join("_shards"), |_| true).is_empty(), "{what}: shard results removed");
}

#[test]
fn a_period_in_1_3_or_7_shards_publishes_the_bytes_of_a_single_close() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    generate(&input, &["--accounts", "12", "--resources", "2", "--months", "2"]);
    let outs: Vec<(String, std::path::PathBuf)> = ["single", "n1", "n3", "n7", "n3-staged"].iter().map(|n| (n.to_string(), tmp.path().join(n))).collect();
    for (_, out) in &outs {
        hourly_runs(&input, out);
    }
    let (a, b) = add_late_and_repeated(&input, &tmp.path().join("scratch"));
    let single = &outs[0].1;
    ok(billrun().args(["backfill", "--from", MONTHS[0], "--to", MONTHS[1], "--input"]).arg(&input).arg("--output").arg(single).output().unwrap(), "single");

    // What the lake holds: every rejection reason, late usage, repeats across shards.
    let rejected = crate::harness::read_table(single, "bills/rejected", MONTHS[0]);
    let rows = crate::harness::Outputs::rows(&rejected);
    let reasons: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["reason"].as_str()).collect();
    for reason in billrun::model::Reason::ALL {
        assert!(reasons.contains(reason.as_str()), "the lake provokes {}", reason.as_str());
    }
    let verdicts = |id: &str| rows.iter().filter(|r| r["record_id"] == id).map(|r| (r["account_id"].clone(), r["reason"].clone())).collect::<Vec<_>>();
    let conflicting = "conflicting_duplicate".to_string();
    assert_eq!(verdicts("straddle-1"), vec![(a.clone(), conflicting.clone()), (b.clone(), conflicting.clone())]);
    assert_eq!(verdicts("straddle-3"), vec![(a.clone(), conflicting.clone()), (a.clone(), conflicting.clone()), (b.clone(), conflicting)]);
    assert_eq!(verdicts("twice-1").iter().filter(|v| v.1 == "duplicate").count(), 1, "{:?}", verdicts("twice-1"));
    let changes = crate::harness::read_table(single, "bills/settlement_changes", MONTHS[0]);
    assert!(changes.iter().map(|b| b.num_rows()).sum::<usize>() > 0, "the late usage changes a settlement settled hourly");

    for (name, out) in &outs[1..] {
        match name.as_str() {
            "n1" => close_in_shards(&input, out, 1, None),
            "n3" => close_in_shards(&input, out, 3, None),
            "n7" => close_in_shards(&input, out, 7, None),
            _ => close_in_shards(&input, out, 3, Some(&tmp.path().join("staged"))),
        }
        same_tables(single, out, name);
    }
}

/// Hours of more line items than one batch holds (finer metering: 400 accounts'
/// resources metered every 10 minutes, about 15,000 to 22,000 line items an hour): a
/// single close writes each in slices, the commit each merged hour whole, and the
/// bytes are the same.
#[test]
fn hours_of_several_line_item_batches_commit_to_the_bytes_of_a_single_close() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    generate(&input, &["--accounts", "400", "--days", "1", "--meter-minutes", "10", "--ppu-only", "--no-anomalies"]);
    let (single, sharded) = (tmp.path().join("single"), tmp.path().join("n3"));
    ok(billrun().args(["run", "--period", MONTHS[0], "--input"]).arg(&input).arg("--output").arg(&single).output().unwrap(), "single");
    let lines = crate::harness::read_table(&single, "bills/line_items", MONTHS[0]);
    let mut per_hour: std::collections::BTreeMap<i64, usize> = Default::default();
    for b in &lines {
        use arrow_array::cast::AsArray;
        let starts = b.column_by_name("ChargePeriodStart").unwrap().as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        for i in 0..starts.len() {
            *per_hour.entry(starts.value(i) / 3_600_000_000).or_default() += 1;
        }
    }
    let busiest = per_hour.values().copied().max().unwrap_or(0);
    assert!(busiest > billrun::lake::outputs::LINE_ITEM_BATCH_ROWS, "an hour of {busiest} line items spans batches");
    for k in 0..3 {
        let shard = format!("{k}/3");
        ok(billrun().args(["run", "--period", MONTHS[0], "--shard", &shard, "--input"]).arg(&input).arg("--output").arg(&sharded).output().unwrap(), &shard);
    }
    ok(billrun().args(["commit", "--period", MONTHS[0], "--shards", "3", "--input"]).arg(&input).arg("--output").arg(&sharded).output().unwrap(), "commit");
    same_tables(&single, &sharded, "n3");
}

fn commit(input: &Path, out: &Path, n: u32) -> Output {
    billrun().args(["commit", "--period", MONTHS[0], "--shards", &n.to_string(), "--input"]).arg(input).arg("--output").arg(out).output().unwrap()
}

fn shard(input: &Path, out: &Path, k: u32, n: u32) {
    ok(
        billrun().args(["run", "--period", MONTHS[0], "--shard", &format!("{k}/{n}"), "--input"]).arg(input).arg("--output").arg(out).output().unwrap(),
        "shard",
    );
}

fn refused(out: Output, names: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    for n in names {
        assert!(err.contains(n), "'{n}' in: {err}");
    }
}

#[test]
fn commit_refuses_a_missing_partial_or_stale_shard_and_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = (tmp.path().join("in"), tmp.path().join("out"));
    generate(&input, &["--accounts", "12", "--resources", "2", "--days", "3"]);
    let dir = out.join("_shards/billing_period=2026-01/n=3");
    (0..3).for_each(|k| shard(&input, &out, k, 3));
    let published = || parquet_files(&out);

    std::fs::remove_file(dir.join("k=1/manifest.json")).unwrap();
    refused(commit(&input, &out, 3), &["shard 1/3 of 2026-01", "missing"]);
    assert!(published().is_empty(), "nothing published");

    shard(&input, &out, 1, 3);
    std::fs::remove_file(dir.join("k=2/bills/line_items.parquet")).unwrap();
    refused(commit(&input, &out, 3), &["shard 2/3 of 2026-01", "partial", "bills/line_items"]);
    assert!(published().is_empty(), "nothing published");

    // Another input: a payment arrives after the shards ran. Shard 0 runs again; 1 and
    // 2 were computed from the old inputs.
    let lake = Lake::open(input.to_str().unwrap(), false).unwrap();
    let mut payments = billrun::lake::inputs::decode_parquet("accounts/payments.parquet", lake.get("accounts/payments.parquet").unwrap()).unwrap();
    let first = payments[0].slice(0, 1);
    let id = Arc::new(StringArray::from(vec!["pay-late"])) as ArrayRef;
    let mut cols = first.columns().to_vec();
    cols[first.schema().index_of("payment_id").unwrap()] = arrow_cast_utf8(&id, first.schema().field_with_name("payment_id").unwrap().data_type());
    payments.push(RecordBatch::try_new(first.schema(), cols).unwrap());
    put_parquet(&lake, "accounts/payments.parquet", arrow_select::concat::concat_batches(&payments[0].schema(), &payments).unwrap()).unwrap();
    shard(&input, &out, 0, 3);
    refused(commit(&input, &out, 3), &["shard 1/3 of 2026-01", "stale", "other inputs"]);
    assert!(published().is_empty(), "nothing published");

    // The output lake's state changes under the shards: an hour settled meanwhile.
    shard(&input, &out, 1, 3);
    shard(&input, &out, 2, 3);
    ok(billrun().args(["run", "--hour", "2026-01-01T00", "--input"]).arg(&input).arg("--output").arg(&out).output().unwrap(), "hour");
    refused(commit(&input, &out, 3), &["shard 0/3 of 2026-01", "stale"]);
    assert!(published().is_empty(), "nothing published");

    (0..3).for_each(|k| shard(&input, &out, k, 3));
    ok(commit(&input, &out, 3), "commit");
    let once = published();
    assert!(once.len() >= 13, "{}", once.len());
    assert!(!dir.exists() || crate::harness::files_under(&dir, |_| true).is_empty(), "shard results removed");
    // Committing twice changes nothing.
    let again = ok(commit(&input, &out, 3), "commit again");
    assert_eq!(published(), once);
    assert!(String::from_utf8_lossy(&again.stdout).contains("billing period 2026-01"));
    // And it is what a single close of the same lake publishes.
    let single = tmp.path().join("single");
    ok(billrun().args(["run", "--hour", "2026-01-01T00", "--input"]).arg(&input).arg("--output").arg(&single).output().unwrap(), "hour");
    ok(billrun().args(["run", "--period", MONTHS[0], "--input"]).arg(&input).arg("--output").arg(&single).output().unwrap(), "single");
    same_tables(&single, &out, "after refusals");
}

/// `id` as a column of type `to` (the payments table's ids may be read as views).
fn arrow_cast_utf8(id: &ArrayRef, to: &arrow_schema::DataType) -> ArrayRef {
    match to {
        arrow_schema::DataType::Utf8View => Arc::new(arrow_array::StringViewArray::from(vec!["pay-late"])),
        _ => id.clone(),
    }
}

/// The shard function against values computed by Apache Spark SQL
/// (`tests/shards/vectors.csv`: `xxhash64(account_id)` and `pmod(…, N)`; `\N` is NULL).
#[test]
fn the_shard_function_is_spark_sql_pmod_xxhash64() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/shards/vectors.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("account_id,xxhash64,n2,n3,n7,n8"));
    let mut checked = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let id = (f[0] != "\\N").then_some(f[0]);
        assert_eq!(xxhash64(id), f[1].parse::<i64>().unwrap(), "{line}");
        for (n, s) in [2u32, 3, 7, 8].iter().zip(&f[2..]) {
            assert_eq!(Shard::of(id, *n), s.parse::<u32>().unwrap(), "{line}: N = {n}");
        }
        checked += 1;
    }
    assert!(checked >= 10);
}
