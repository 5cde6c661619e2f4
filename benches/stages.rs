//! Micro-benchmarks of the close's hot stages, one hour of a generated lake each:
//! read (Parquet → usage chunks), validate (the row checks), rate (pay-per-use, and
//! with packages and subscriptions deducted), settle, and write (FOCUS line items
//! built, then encoded and sealed; and encoded at scale, a hundred hours in one row
//! group).
//!
//! `cargo bench --bench stages` (results under `target/criterion`); the end-to-end
//! comparison with DuckDB is `benches/e2e.sh`.

use billrun::decimal::Dec;
use billrun::engine::{Engine, Opening};
use billrun::generate::{generate, GenConfig};
use billrun::lake::inputs::{self, read_usage_file, Reference, UsageChunk, UsageFile};
use billrun::lake::outputs::{self as out, Names, TableSink};
use billrun::lake::store::Lake;
use billrun::rules::account::{AccountBook, Ctx, HourOut};
use billrun::rules::checks::{check_row, check_row_known, Known, Rejection, RowLoc};
use billrun::rules::dedup::FileRow;
use billrun::rules::packages::PackageBook;
use billrun::time::{Micros, Period, HOUR};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rustc_hash::FxHashMap;

/// One generated lake and the usage of its busiest hour.
struct Hour {
    _dir: tempfile::TempDir,
    lake: Lake,
    reference: Reference,
    files: Vec<UsageFile>,
    which: Vec<u32>,
    bytes: Vec<Bytes>,
    chunks: Vec<UsageChunk>,
    hour: Micros,
    rows: u64,
}

const PERIOD: Period = Period { year: 2026, month: 1 };

fn hour(ppu_only: bool) -> Hour {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::open(dir.path().to_str().expect("utf-8 path"), true).expect("lake");
    let cfg = GenConfig { accounts: 300, days: Some(1), anomalies: false, ppu_only, ..GenConfig::default() };
    generate(&lake, &cfg).expect("generated lake");
    let reference = inputs::read_reference(&lake, inputs::DEFAULT_WINDOWS).expect("reference");
    let files = inputs::list_usage(&lake, PERIOD).expect("usage files");
    let hour = PERIOD.start() + 12 * HOUR;
    let which: Vec<u32> = (0..files.len() as u32).filter(|&i| files[i as usize].partition_hour == hour).collect();
    let bytes: Vec<Bytes> = which.iter().map(|&i| lake.get(&files[i as usize].path).expect("usage bytes")).collect();
    let mut chunks = Vec::new();
    for (&i, b) in which.iter().zip(&bytes) {
        chunks.extend(read_usage_file(i, &files[i as usize], b.clone()).expect("usage file"));
    }
    let rows = chunks.iter().map(|c| c.len as u64).sum();
    Hour { _dir: dir, lake, reference, files, which, bytes, chunks, hour, rows }
}

fn engine(h: &Hour) -> Engine {
    Engine::new(h.reference.clone(), PERIOD, &Opening::default()).expect("engine")
}

fn stages(c: &mut Criterion) {
    let ppu = hour(true);
    let full = hour(false);
    let none: FxHashMap<FileRow, Rejection> = FxHashMap::default();

    let mut g = c.benchmark_group(format!("hour of {} rows", ppu.rows));
    g.throughput(Throughput::Elements(ppu.rows));
    g.sample_size(20);

    g.bench_function("read", |b| {
        b.iter(|| {
            let mut n = 0;
            for (&i, bytes) in ppu.which.iter().zip(&ppu.bytes) {
                n += read_usage_file(i, &ppu.files[i as usize], bytes.clone()).expect("decoded").len();
            }
            n
        })
    });

    g.bench_function("validate", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            for (ci, c) in ppu.chunks.iter().enumerate() {
                // As the engine does: each distinct value of the chunk checked once.
                let known = Known::of(c, PERIOD);
                for r in 0..c.len {
                    ok += check_row_known(c, RowLoc { chunk: ci as u32, row: r as u32 }, PERIOD, &known).is_ok() as u64;
                }
            }
            ok
        })
    });

    g.bench_function("rate, pay-per-use (checks, tiers, settlement)", |b| {
        b.iter_batched(|| engine(&ppu), |mut e| e.process_hour(ppu.hour, &ppu.chunks, &none).expect("rated").lines.len(), BatchSize::LargeInput)
    });

    g.bench_function("settle", |b| {
        // Books with the hour rated (untimed); the settlements are timed.
        let e = engine(&ppu);
        let ctx = Ctx { catalog: &e.catalog, subs: &e.subs, packages: &e.packages };
        let index: FxHashMap<&str, usize> = e.accounts.iter().enumerate().map(|(i, a)| (a.account_id.as_str(), i)).collect();
        let mut usage: Vec<Vec<_>> = vec![Vec::new(); e.accounts.len()];
        for (ci, c) in ppu.chunks.iter().enumerate() {
            for r in 0..c.len {
                if let Ok(u) = check_row(c, RowLoc { chunk: ci as u32, row: r as u32 }, PERIOD) {
                    if let Some(&i) = index.get(u.account_id) {
                        usage[i].push(u);
                    }
                }
            }
        }
        let rated = || -> Vec<AccountBook> {
            let mut books = Vec::new();
            for (i, rows) in usage.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
                let mut book = AccountBook::open(i as u32, &e.accounts[i], PERIOD, None, &[], PackageBook::default()).expect("opened");
                let mut out = HourOut::default();
                for u in rows {
                    book.rate(u, &ctx, &mut out).expect("rated");
                }
                books.push(book);
            }
            books
        };
        b.iter_batched(
            rated,
            |mut books| {
                let mut total = Dec::ZERO;
                for book in &mut books {
                    let mut out = HourOut::default();
                    book.settle(ppu.hour, &mut out).expect("settled");
                    total = total.checked_add(out.settlement.map(|s| s.deduction).unwrap_or_default()).unwrap();
                }
                total
            },
            BatchSize::LargeInput,
        )
    });

    let mut e = engine(&ppu);
    let res = e.process_hour(ppu.hour, &ppu.chunks, &none).expect("rated");
    let ids = out::Ids::new(PERIOD, &e.accounts, &e.catalog);
    let names = Names::new(PERIOD, &e.accounts, &e.catalog, &e.packages, &e.subs, &ppu.files, &ids);
    g.bench_function("cost book: lines observed", |b| {
        let mut cost = billrun::cost::CostBook::default();
        b.iter(|| cost.observe(&res.lines, &ppu.chunks, &names))
    });
    // What one of the cost book's sums costs as a Polars group-by: the hour's lines
    // by a 64-bit key of about one line each (as an hour's resources are), their
    // three costs summed as Decimal(38, 10). The tally above takes every sum the
    // book keeps (composition, day, resource, allocation, …).
    g.bench_function("cost book: lines summed by Polars, one grain", |b| {
        use polars::prelude::*;
        let key: Vec<u64> = res.lines.iter().map(|l| u64::from(l.account) << 32 | l.usage.map_or(u64::from(u32::MAX), |u| u64::from(u.row))).collect();
        let money = |f: fn(&billrun::rules::records::Line) -> Dec| -> Column {
            let m: Vec<i128> = res.lines.iter().map(|l| f(l).0).collect();
            Int128Chunked::from_vec("x".into(), m).into_decimal(38, 10).expect("decimal").into_column()
        };
        let costs = [money(|l| l.billed), money(|l| l.effective), money(|l| l.list_cost)];
        b.iter(|| {
            let mut columns = vec![Column::new("key".into(), key.clone())];
            columns.extend(costs.iter().enumerate().map(|(i, c)| c.clone().with_name(format!("c{i}").into())));
            let df = DataFrame::new(key.len(), columns).expect("frame");
            let sums = [col("c0").sum(), col("c1").sum(), col("c2").sum()];
            df.lazy().group_by([col("key")]).agg(sums).collect().expect("summed").height()
        })
    });
    g.bench_function("write: line items built", |b| b.iter(|| out::line_items_batch(&res.lines, &ppu.chunks, &names).num_rows()));
    let batch = out::line_items_batch(&res.lines, &ppu.chunks, &names);
    g.bench_function("write: line items encoded and sealed", |b| {
        b.iter(|| {
            let mut sink = TableSink::create(&ppu.lake, "bench/line_items.parquet", out::line_items_schema()).expect("sink");
            sink.write(&ppu.lake, &batch).expect("written");
            sink.seal(&ppu.lake).expect("sealed").0.bytes
        })
    });
    g.finish();

    // Encoding at scale: one hour's file is mostly the cost of sealing it, a month's
    // row group (of up to 2^20 lines) mostly the cost of each value.
    const HOURS: u64 = 100;
    let mut g = c.benchmark_group(format!("{HOURS} hours of {} rows", ppu.rows));
    g.throughput(Throughput::Elements(HOURS * ppu.rows));
    g.sample_size(10);
    g.bench_function("write: line items encoded in one row group", |b| {
        b.iter(|| {
            let mut sink = TableSink::create(&ppu.lake, "bench/line_items.parquet", out::line_items_schema()).expect("sink");
            for _ in 0..HOURS {
                sink.write(&ppu.lake, &batch).expect("written");
            }
            sink.seal(&ppu.lake).expect("sealed").0.bytes
        })
    });
    g.finish();

    let mut g = c.benchmark_group(format!("hour of {} rows with commitments", full.rows));
    g.throughput(Throughput::Elements(full.rows));
    g.sample_size(20);
    g.bench_function("rate, packages and subscriptions deducted", |b| {
        b.iter_batched(|| engine(&full), |mut e| e.process_hour(full.hour, &full.chunks, &none).expect("rated").lines.len(), BatchSize::LargeInput)
    });
    g.finish();
    let _ = &full.lake;
}

criterion_group!(benches, stages);
criterion_main!(benches);
