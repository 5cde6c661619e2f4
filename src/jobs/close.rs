//! Closing a billing period: plan what to read, run the engine over the period's hours
//! in order, check conservation, publish the tables, report.
//!
//! Nothing is published until every table is written and every conservation check
//! has passed: each table's upload is completed only then, so a failed run leaves the
//! previous outputs of the period as they were.

use super::{publish, restate, JobError};
use crate::decimal::Dec;
use crate::engine::{Engine, Opening};
use crate::lake::inputs::{self, list_usage, read_usage_file, UsageChunk, UsageFile};
use crate::lake::outputs::{self as out, Names, TableSink, Written};
use crate::lake::state::{read_state, state_batch};
use crate::lake::store::Lake;
use crate::rules::checks::{check_row, RowLoc};
use crate::rules::dedup::{self, FileRow};
use crate::time::{Micros, Period};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::time::Instant;

/// A validated description of one period close.
#[derive(Clone, Debug)]
pub struct CloseJob {
    pub input: String,
    pub output: String,
    pub period: Period,
    /// Keep decoded usage in memory between the duplicate pass and rating when the
    /// period's files are smaller than this (bytes).
    pub cache_bytes: u64,
    /// A period lock older than this belongs to a dead run and is taken over.
    pub stale_lock: std::time::Duration,
    /// Grace and retention days for accounts that leave them null.
    pub windows: (i32, i32),
    /// Why the period is closed again (recorded with any restatement).
    pub reason: String,
}

/// What a close will read and write (`--dry-run`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClosePlan {
    pub period: String,
    pub input_lake: String,
    pub output_lake: String,
    pub opens_from: String,
    pub reference_tables: Vec<String>,
    pub usage_files: usize,
    pub usage_bytes: u64,
    pub usage_hours: usize,
    pub writes: Vec<String>,
}

/// Plans a close without writing anything. `after_previous`: the period before is
/// closed by the same backfill, before this one.
pub fn plan(job: &CloseJob, after_previous: bool) -> Result<ClosePlan, JobError> {
    let input = Lake::open(&job.input, false)?;
    let period = job.period;
    let opens_from = if after_previous {
        format!("the state of {} (closed first by this backfill)", period.prev())
    } else {
        let closed = match Lake::open(&job.output, false) {
            Ok(out) => out.exists(&table_path("state", period.prev()))?,
            Err(_) => false,
        };
        if closed {
            format!("state/billing_period={}", period.prev())
        } else {
            "the accounts' opening balances (no earlier period closed)".into()
        }
    };
    let files = list_usage(&input, period)?;
    let mut reference_tables = Vec::new();
    for rel in [inputs::PRICES, inputs::OFFERS, inputs::ACCOUNTS, inputs::PAYMENTS, inputs::PACKAGES, inputs::SUBSCRIPTIONS] {
        if input.exists(rel)? {
            reference_tables.push(rel.to_string());
        }
    }
    let hours: std::collections::BTreeSet<Micros> = files.iter().map(|f| f.partition_hour).collect();
    let mut writes: Vec<String> = TABLES.iter().map(|t| table_path(t, period)).collect();
    writes.push(format!("_manifests/billing_period={period}/manifest.json"));
    Ok(ClosePlan {
        period: period.to_string(),
        input_lake: job.input.clone(),
        output_lake: job.output.clone(),
        opens_from,
        reference_tables,
        usage_files: files.len(),
        usage_bytes: files.iter().map(|f| f.size).sum(),
        usage_hours: hours.len(),
        writes,
    })
}

/// What a close did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CloseReport {
    pub period: String,
    pub accounts: usize,
    pub usage_files: usize,
    pub rows_in: u64,
    pub rows_rated: u64,
    pub rejected: BTreeMap<String, u64>,
    pub rejected_orders: BTreeMap<String, u64>,
    pub total_due: BTreeMap<String, String>,
    pub accounts_in_arrears: usize,
    pub alerts: u64,
    pub lines: u64,
    pub outputs: Vec<Written>,
    pub seconds: f64,
    /// billrun's version.
    pub version: String,
    /// A run's identity: a hash of the period, the version, the reference tables'
    /// content and the usage files' paths and sizes.
    pub run_id: String,
    pub input_lake: String,
    pub output_lake: String,
    /// Every input read: path, size, e-tag, and SHA-256 of the reference tables.
    pub inputs: Vec<InputRead>,
    /// Invoices whose figures changed against the published ones.
    pub restated: usize,
    /// Account-hours whose settlement differs from the one published hourly.
    pub settlement_changes: usize,
}

/// One input object a run read.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct InputRead {
    pub path: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub sha256: Option<String>,
}

impl CloseReport {
    /// Exit status 1: done, with rejected rows or alerts worth a look.
    pub fn worth_a_look(&self) -> bool {
        self.rejected.values().sum::<u64>() > 0 || self.rejected_orders.values().sum::<u64>() > 0 || self.alerts > 0
    }
}

pub const TABLES: &[&str] = &[
    "bills/line_items",
    "bills/invoices",
    "bills/settlements",
    "bills/account_status",
    "bills/package_ledger",
    "bills/package_deductions",
    "bills/alerts",
    "bills/rejected",
    "bills/restatements",
    "bills/settlement_changes",
    "cost/analysis",
    "cost/allocation",
    "cost/recommendations",
    "state",
];

pub fn table_path(table: &str, period: Period) -> String {
    format!("{table}/billing_period={period}/part-0.parquet")
}

/// The opening state of `period`: the previous period's closing state, or — when no
/// period before it was ever closed on this output lake — the accounts' opening
/// balances and full quotas.
pub fn opening_state(lake: &Lake, period: Period) -> Result<Opening, JobError> {
    let prev = period.prev();
    let rel = table_path("state", prev);
    if let Some(bytes) = lake.get_opt(&rel)? {
        return Ok(read_state(&rel, bytes)?);
    }
    let earlier: Vec<String> = lake
        .list("state/")?
        .into_iter()
        .filter_map(|l| {
            let p = l.path.strip_prefix("state/billing_period=")?.get(..7)?.to_string();
            (Period::parse(&p)? < period).then_some(p)
        })
        .collect();
    if let Some(last) = earlier.iter().max() {
        return Err(JobError::Plan(format!(
            "period {period} cannot open: the last closed period on {} is {last}, and {prev} is not closed \
             (close the periods in between first, e.g. billrun backfill --from {} --to {period})",
            lake.url(),
            Period::parse(last).map(|p| p.next().to_string()).unwrap_or_default()
        )));
    }
    Ok(Opening::default())
}

/// Decoded usage files, kept or re-read on demand.
struct Usage<'a> {
    lake: &'a Lake,
    files: &'a [UsageFile],
    cache: FxHashMap<u32, Vec<UsageChunk>>,
    keep: bool,
    /// When set (a what-if run), files not kept are decoded for these accounts' rows
    /// only, and of an account with a filter for the rows it wants.
    only: Option<FxHashMap<String, Option<crate::engine::RowFilter>>>,
    /// Re-rate every recommended purchase's account whole (a test hook,
    /// `BILLRUN_WHOLE_WHAT_IF`: the partial re-rating must give the same savings).
    whole_what_if: bool,
}

impl Usage<'_> {
    fn chunks(&self, file: u32) -> Result<Vec<UsageChunk>, JobError> {
        if let Some(c) = if self.keep { self.cache.get(&file) } else { None } {
            return Ok(c.clone());
        }
        let f = &self.files[file as usize];
        let bytes = self.lake.get(&f.path)?;
        Ok(read_usage_file(file, f, bytes)?)
    }

    /// The chunks of a few hours, each hour's files in order.
    fn decode_hours(&self, hours: &[(&Micros, &Vec<u32>)]) -> Result<Vec<(Micros, Vec<UsageChunk>)>, JobError> {
        let mut out = Vec::with_capacity(hours.len());
        if self.keep {
            for (hour, which) in hours {
                let mut chunks = Vec::new();
                for &f in which.iter() {
                    chunks.extend(self.chunks(f)?);
                }
                out.push((**hour, chunks));
            }
            return Ok(out);
        }
        let all: Vec<u32> = hours.iter().flat_map(|(_, w)| w.iter().copied()).collect();
        let wanted = self.only.as_ref().map(selector);
        let wanted = wanted.as_ref().map(|w| w as &crate::engine::Select<'_>);
        let mut decoded: FxHashMap<u32, Vec<UsageChunk>> = decode_many(self.lake, self.files, &all, wanted)?.into_iter().collect();
        for (hour, which) in hours {
            let mut chunks = Vec::new();
            for f in which.iter() {
                chunks.extend(decoded.remove(f).unwrap_or_default());
            }
            out.push((**hour, chunks));
        }
        Ok(out)
    }
}

/// A what-if run's selection of rows, by account id.
fn selector<'f>(only: &'f FxHashMap<String, Option<crate::engine::RowFilter>>) -> impl Fn(&str) -> Option<Option<&'f crate::engine::RowFilter>> + Sync + 'f {
    move |account| only.get(account).map(Option::as_ref)
}

/// Reads and decodes several files in parallel: every row, or only the rows of the
/// `wanted` accounts.
fn decode_many(lake: &Lake, files: &[UsageFile], which: &[u32], wanted: Option<&crate::engine::Select<'_>>) -> Result<Vec<(u32, Vec<UsageChunk>)>, JobError> {
    let rels: Vec<String> = which.iter().map(|&i| files[i as usize].path.clone()).collect();
    let fetched = lake.get_many(&rels);
    which
        .par_iter()
        .zip(fetched.into_par_iter())
        .map(|(&i, bytes)| {
            let f = &files[i as usize];
            Ok((
                i,
                match wanted {
                    Some(wanted) => inputs::read_usage_file_of(i, f, bytes?, wanted)?,
                    None => read_usage_file(i, f, bytes?)?,
                },
            ))
        })
        .collect()
}

/// The duplicate verdicts of the period.
fn duplicate_verdicts(usage: &mut Usage<'_>, period: Period) -> Result<FxHashMap<FileRow, crate::rules::checks::Rejection>, JobError> {
    let all: Vec<u32> = (0..usage.files.len() as u32).collect();
    let mut seen = dedup::Seen::default();
    for batch in all.chunks(64) {
        if usage.keep {
            // Small month: decode whole files once, keep them for rating.
            for (fi, chunks) in decode_many(usage.lake, usage.files, batch, None)? {
                for c in &chunks {
                    for r in 0..c.len {
                        if let Some(id) = c.record_id.get(r) {
                            seen.push(dedup::id_hash(id), (fi, c.first_row + r as u32));
                        }
                    }
                }
                usage.cache.insert(fi, chunks);
            }
        } else {
            // Large month: read the record_id column alone. Every row's id is hashed,
            // valid or not; the rare suspects are then checked in full below.
            let rels: Vec<String> = batch.iter().map(|&i| usage.files[i as usize].path.clone()).collect();
            let fetched = usage.lake.get_many(&rels);
            let parts: Vec<dedup::Part> = batch
                .par_iter()
                .zip(fetched.into_par_iter())
                .map(|(&fi, bytes)| Ok(dedup::Part::new(record_id_hashes(fi, bytes?))))
                .collect::<Result<_, JobError>>()?;
            seen.add(dedup::Part::merge(parts));
        }
    }
    let suspects = seen.suspects();
    if suspects.is_empty() {
        return Ok(FxHashMap::default());
    }
    let mut by_file: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (f, r) in &suspects {
        by_file.entry(*f).or_default().push(*r);
    }
    let mut rows = Vec::new();
    for (f, want) in by_file {
        let chunks = usage.chunks(f)?;
        for c in &chunks {
            for &r in &want {
                if r < c.first_row || r >= c.first_row + c.len as u32 {
                    continue;
                }
                let loc = RowLoc { chunk: 0, row: r - c.first_row };
                if let Ok(u) = check_row(c, loc, period) {
                    let content = crate::rules::checks::content_string(&u);
                    rows.push(((f, r), u.record_id.to_string(), content));
                }
            }
        }
    }
    Ok(dedup::verdicts(rows))
}

pub fn run(job: &CloseJob) -> Result<CloseReport, JobError> {
    let started = Instant::now();
    let input = Lake::open(&job.input, false)?;
    let output = Lake::open(&job.output, true)?;
    let period = job.period;
    let _lock = super::lock::Lock::acquire(&output, &format!("billing_period={period}"), &format!("pid-{}", std::process::id()), job.stale_lock)?;
    let reference = inputs::read_reference(&input, job.windows)?;
    let offers = inputs::read_offers(&input)?;
    let what_if_reference = reference.clone();
    let opening = opening_state(&output, period)?;
    let files = list_usage(&input, period)?;
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    tracing::info!(period = %period, files = files.len(), bytes = total_bytes, "plan");

    let mut usage = Usage {
        lake: &input,
        files: &files,
        cache: FxHashMap::default(),
        keep: total_bytes <= job.cache_bytes,
        only: None,
        whole_what_if: std::env::var_os("BILLRUN_WHOLE_WHAT_IF").is_some(),
    };
    let t = Instant::now();
    let verdicts = duplicate_verdicts(&mut usage, period)?;
    tracing::info!(duplicates = verdicts.len(), secs = t.elapsed().as_secs_f64(), "duplicate pass");

    let mut engine = Engine::new(reference, period, &opening).map_err(|why| JobError::Input(inputs::InputError::Table { file: inputs::PRICES.into(), why }))?;

    let ids = out::Ids::new(period, &engine.accounts, &engine.catalog);
    let mut cost = crate::cost::CostBook::default();
    let mut sinks: BTreeMap<&str, TableSink> = BTreeMap::new();
    let schemas = [
        ("bills/line_items", out::line_items_schema()),
        ("bills/settlements", out::settlements_schema()),
        ("bills/alerts", out::alerts_schema()),
        ("bills/package_deductions", out::package_deductions_schema()),
        ("bills/rejected", out::rejected_schema()),
    ];
    for (t, s) in schemas {
        sinks.insert(t, TableSink::create(&output, &table_path(t, period), s)?);
    }

    let inputs_read = inputs_of(&input, &files)?;
    let run_id = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(period.to_string());
        h.update(env!("CARGO_PKG_VERSION"));
        for i in &inputs_read {
            h.update(&i.path);
            h.update(i.size.to_le_bytes());
            h.update(i.sha256.as_deref().unwrap_or(""));
        }
        h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect::<String>()
    };
    let mut report = CloseReport {
        period: period.to_string(),
        usage_files: files.len(),
        version: env!("CARGO_PKG_VERSION").into(),
        run_id,
        input_lake: job.input.clone(),
        output_lake: job.output.clone(),
        inputs: inputs_read,
        ..Default::default()
    };
    let mut hours: BTreeMap<Micros, Vec<u32>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        hours.entry(f.partition_hour).or_default().push(i as u32);
    }
    let t = Instant::now();
    // What the writers are handed, per account: lines and Σ BilledCost. Checked
    // against the invoices before publishing, so a line lost between the rules and
    // the files cannot go unnoticed.
    let mut written: Vec<(u64, Dec)> = Vec::new();
    // The hours settled hourly this period: only their settlements are kept, to be
    // compared with the close's (a month without hourly runs keeps none).
    let hourly_hours: std::collections::BTreeSet<Micros> =
        output.list(&format!("hourly/settlements/billing_period={period}/"))?.iter().filter_map(|l| hourly_file_hour(&l.path)).collect();
    let mut settled: BTreeMap<(u32, Micros), Dec> = BTreeMap::new();
    let mut hour_sums = HourSums::new();
    let mut fault = std::env::var("BILLRUN_INJECT_FAULT").ok();
    // The rating of an hour overlaps the writing of the one before: the writers run on
    // a thread of their own, handed the rated hours through a channel of two, with
    // their own copy of the reference data for the names.
    let refs = (engine.accounts.clone(), engine.catalog.clone(), engine.packages.clone(), engine.subs.clone());
    let mut write_hour = |mut res: crate::engine::HourResult, chunks: &[UsageChunk]| -> Result<(), JobError> {
        inject_fault(&mut fault, &mut res);
        tally(&mut written, &res.lines)?;
        let hour = res.settlements.first().map(|s| s.hour_start);
        report.rows_in += res.rows_in;
        report.rows_rated += res.rows_rated;
        report.lines += res.lines.len() as u64;
        report.alerts += res.alerts.len() as u64;
        for r in &res.rejected {
            *report.rejected.entry(r.why.reason.as_str().to_string()).or_default() += 1;
        }
        let names = Names::new(period, &refs.0, &refs.1, &refs.2, &refs.3, &files, &ids);
        let names = &names;
        // The cost book and the line items read the same lines: one on each side.
        let line_items = sinks.get_mut("bills/line_items").ok_or_else(|| JobError::Bug("no sink for bills/line_items".into()))?;
        let (observed, written_lines) =
            rayon::join(|| cost.observe(&res.lines, chunks, names), || line_items.write(&output, &out::line_items_batch(&res.lines, chunks, names)));
        written_lines?;
        observed?;
        cost.observe_settlements(&res.settlements)?;
        hour_sums.record(&res.settlements);
        for st in &res.settlements {
            if hourly_hours.contains(&st.hour_start) {
                settled.insert((st.account, st.hour_start), st.deduction);
            }
        }
        write(&output, &mut sinks, "bills/settlements", &out::settlements_batch(&res.settlements, names))?;
        write(&output, &mut sinks, "bills/alerts", &out::alerts_batch(&res.alerts, names))?;
        write(&output, &mut sinks, "bills/package_deductions", &out::package_deductions_batch(&res.deductions, chunks, names))?;
        write(&output, &mut sinks, "bills/rejected", &out::rejected_batch(&res.rejected, chunks, names))?;
        if (res.rows_rated + res.rejected.len() as u64) != res.rows_in {
            return Err(JobError::Conservation(format!(
                "hour {}: {} rows in, {} rated, {} rejected",
                hour.map(crate::time::format_ts).unwrap_or_default(),
                res.rows_in,
                res.rows_rated,
                res.rejected.len()
            )));
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(crate::engine::HourResult, Vec<UsageChunk>)>(2);
        let writer = scope.spawn(move || {
            for (res, chunks) in rx {
                write_hour(res, &chunks)?;
            }
            Ok::<(), JobError>(())
        });
        let rated = rate_hours(&mut usage, &hours, &mut engine, &verdicts, |_, res, chunks| {
            tx.send((res, chunks.to_vec())).map_err(|_| JobError::Bug("the writers stopped".into()))
        });
        drop(tx);
        let written = writer.join().map_err(|_| JobError::Bug("the writers panicked".into()))?;
        // The writers' own error first: a rating stopped by their failure reports it.
        written.and(rated)
    })?;
    tracing::info!(rows = report.rows_in, secs = t.elapsed().as_secs_f64(), "rated");

    // The close: what only the whole period determines.
    let res = engine.finish()?;
    let names = names(&engine, &files, &ids);
    let accounts = &engine.accounts;
    report.accounts = accounts.len();
    report.lines += res.lines.len() as u64;
    for r in &res.rejected_orders {
        *report.rejected_orders.entry(r.why.reason.as_str().to_string()).or_default() += 1;
    }
    cost.observe(&res.lines, &[], &names)?;
    cost.finish()?;
    tally(&mut written, &res.lines)?;
    check_conservation(&res)?;
    check_written(&res, &written)?;
    check_allocation(&cost)?;
    let previous = previous_totals(&output, period)?;
    let t = Instant::now();
    // The tables that do not depend on the recommendations are written and sealed
    // while the purchases are re-rated: that work leaves part of a core idle.
    let run_id = report.run_id.clone();
    let (recommendations, closed) = std::thread::scope(|scope| {
        let closing = scope.spawn(|| close_tables(&output, sinks, period, &res, &names, &cost, &previous, &engine.accounts, &settled, &run_id, &job.reason));
        let recommendations = recommend(&engine, &res, &cost, &offers, what_if_reference, &opening, &mut usage, &hours, &verdicts, &hour_sums);
        let closed = closing.join().map_err(|_| JobError::Bug("the closing writers panicked".into()));
        (recommendations, closed)
    });
    let (mut sealed_tables, restated, settlement_changes) = closed??;
    let recommendations = recommendations?;
    report.restated = restated;
    report.settlement_changes = settlement_changes;
    drop(hour_sums);
    tracing::info!(recommendations = recommendations.len(), secs = t.elapsed().as_secs_f64(), "recommendations");
    drop(usage);
    let mut due: BTreeMap<String, Dec> = BTreeMap::new();
    for inv in &res.invoices {
        let cur = accounts[inv.account as usize].currency.clone();
        let e = due.entry(cur).or_default();
        *e = e.plus(inv.total_due, "cost total")?;
        if inv.status != crate::model::Phase::Active {
            report.accounts_in_arrears += 1;
        }
    }
    report.total_due = due.into_iter().map(|(k, v)| (k, v.to_string())).collect();
    let t_rec = "cost/recommendations";
    let batch = crate::cost::tables::recommendations_batch(&recommendations, &names);
    let mut sink = TableSink::create(&output, &table_path(t_rec, period), batch.schema())?;
    sink.write(&output, &batch)?;
    sealed_tables.insert(t_rec, sink.seal(&output)?);
    // Publish: every table sealed, then all completed (or the previous ones restored).
    let mut sealed = Vec::new();
    for (_, (w, s)) in sealed_tables {
        report.outputs.push(w.clone());
        sealed.push((w, s));
    }
    report.seconds = started.elapsed().as_secs_f64();
    let manifest = serde_json::to_vec_pretty(&report).unwrap_or_default();
    let t = Instant::now();
    publish::publish(&output, sealed, (format!("_manifests/billing_period={period}/manifest.json"), manifest))?;
    tracing::info!(
        period = %period,
        tables = report.outputs.len(),
        bytes = report.outputs.iter().map(|w| w.bytes).sum::<u64>(),
        secs = t.elapsed().as_secs_f64(),
        "published"
    );
    Ok(report)
}

/// The close's tables but the recommendations: the period's own lines and rejected
/// orders added, the whole-period tables, restatements and settlement changes
/// written; every sink sealed. Also returns the number of invoices restated and of
/// settlement changes.
#[allow(clippy::too_many_arguments)]
fn close_tables<'t>(
    output: &Lake,
    mut sinks: BTreeMap<&'t str, TableSink>,
    period: Period,
    res: &crate::engine::PeriodResult,
    names: &Names<'_>,
    cost: &crate::cost::CostBook,
    previous: &FxHashMap<String, Dec>,
    accounts: &[crate::model::Account],
    settled: &BTreeMap<(u32, Micros), Dec>,
    run_id: &str,
    reason: &str,
) -> Result<(BTreeMap<&'t str, (out::Written, crate::lake::store::Sealed)>, usize, usize), JobError> {
    write(output, &mut sinks, "bills/line_items", &out::line_items_batch(&res.lines, &[], names))?;
    write(output, &mut sinks, "bills/rejected", &out::rejected_orders_batch(&res.rejected_orders, names))?;
    let whole = [
        ("bills/invoices", out::invoices_batch(&res.invoices, names)),
        ("bills/account_status", out::account_status_batch(&res.status, names)),
        ("bills/package_ledger", out::package_ledger_batch(&res.ledger, names)),
        ("cost/analysis", crate::cost::tables::analysis_batch(cost, names, previous)?),
        ("cost/allocation", crate::cost::tables::allocation_batch(cost, names)),
        ("state", state_batch(&res.closing)),
    ];
    for (t, batch) in whole {
        let mut sink = TableSink::create(output, &table_path(t, period), batch.schema())?;
        sink.write(output, &batch)?;
        sinks.insert(t, sink);
    }
    // Restatements: the published invoices against the new ones.
    let mut restated = 0;
    let restatements_rel = table_path("bills/restatements", period);
    let mut sink = TableSink::create(output, &restatements_rel, restate::schema())?;
    for b in restate::read_existing(output, &restatements_rel)? {
        sink.write(output, &b)?;
    }
    if let Some(bytes) = output.get_opt(&table_path("bills/invoices", period))? {
        let old = restate::read_invoices(&table_path("bills/invoices", period), bytes)?;
        let new = restate::figures(&res.invoices, names);
        let old_run = output
            .get_opt(&format!("_manifests/billing_period={period}/manifest.json"))?
            .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
            .and_then(|m| m["run_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let changed = restate::compare(&old, &new, &old_run, run_id, reason);
        restated = changed.len();
        sink.write(output, &restate::batch(&changed))?;
    }
    sinks.insert("bills/restatements", sink);
    let changes = settlement_changes(output, period, accounts, settled)?;
    let mut sink = TableSink::create(output, &table_path("bills/settlement_changes", period), changes.schema())?;
    sink.write(output, &changes)?;
    sinks.insert("bills/settlement_changes", sink);
    let mut sealed = BTreeMap::new();
    for (t, sink) in sinks {
        sealed.insert(t, sink.seal(output)?);
    }
    Ok((sealed, restated, changes.num_rows()))
}

fn names<'a>(e: &'a Engine, files: &'a [UsageFile], ids: &'a out::Ids) -> Names<'a> {
    Names::new(e.period, &e.accounts, &e.catalog, &e.packages, &e.subs, files, ids)
}

fn write(lake: &Lake, sinks: &mut BTreeMap<&str, TableSink>, table: &str, batch: &arrow_array::RecordBatch) -> Result<(), JobError> {
    let sink = sinks.get_mut(table).ok_or_else(|| JobError::Bug(format!("no sink for {table}")))?;
    Ok(sink.write(lake, batch)?)
}

/// The identities every close must satisfy before anything is published.
pub fn check_conservation(res: &crate::engine::PeriodResult) -> Result<(), JobError> {
    for inv in &res.invoices {
        if !inv.ties_out() {
            return Err(JobError::Conservation(format!("invoice of account #{}: Σ BilledCost {} ≠ total_due {}", inv.account, inv.billed_sum, inv.total_due)));
        }
        let expect_close = inv.opening_balance.plus(inv.payments, "balance")?.minus(inv.usage_charges, "balance")?;
        if expect_close != inv.closing_balance {
            return Err(JobError::Conservation(format!(
                "account #{}: opening {} + payments {} − usage {} ≠ closing {}",
                inv.account, inv.opening_balance, inv.payments, inv.usage_charges, inv.closing_balance
            )));
        }
    }
    for l in &res.ledger {
        if l.opening.checked_sub(l.used).and_then(|q| q.checked_sub(l.lapsed)) != Some(l.closing) || l.closing.0 < 0 {
            return Err(JobError::Conservation(format!("package #{}: ledger does not balance", l.package)));
        }
    }
    Ok(())
}

/// Allocations add up to each account's total effective cost, exactly.
pub fn check_allocation(cost: &crate::cost::CostBook) -> Result<(), JobError> {
    let allocated = cost.allocated_totals()?;
    for (acct, total) in &cost.effective {
        let got = allocated.get(acct).copied().unwrap_or_default();
        if got != *total {
            return Err(JobError::Conservation(format!("account #{acct}: allocations add up to {got}, effective cost is {total}")));
        }
    }
    Ok(())
}

/// Each account's total effective cost in the period before, from its cost analysis.
fn previous_totals(lake: &Lake, period: Period) -> Result<FxHashMap<String, Dec>, JobError> {
    let rel = table_path("cost/analysis", period.prev());
    let mut out = FxHashMap::default();
    let Some(bytes) = lake.get_opt(&rel)? else { return Ok(out) };
    for b in inputs::decode_parquet(&rel, bytes)? {
        let col = |c: &str| crate::lake::columns::StrCol::of(&b, c).map_err(|_| JobError::Plan(format!("{rel}: no column {c}")));
        let (acct, view) = (col("account_id")?, col("view")?);
        let eff = crate::lake::columns::DecCol::of(&b, "effective_cost").map_err(|_| JobError::Plan(format!("{rel}: no column effective_cost")))?;
        for i in 0..b.num_rows() {
            if view.get(i) == Some("monthly") {
                if let (Some(a), Some(Ok(v))) = (acct.get(i), eff.get(i)) {
                    out.insert(a.to_string(), v);
                }
            }
        }
    }
    Ok(out)
}

/// Rates the period's hours in order, handing each hour's result to `each`. The
/// usage of the hours ahead is decoded on another thread meanwhile (a few hours at
/// a time, in parallel across files), so memory holds a bounded window of hours.
fn rate_hours(
    usage: &mut Usage<'_>,
    hours: &BTreeMap<Micros, Vec<u32>>,
    engine: &mut Engine,
    verdicts: &FxHashMap<FileRow, crate::rules::checks::Rejection>,
    mut each: impl FnMut(&Engine, crate::engine::HourResult, &[UsageChunk]) -> Result<(), JobError>,
) -> Result<(), JobError> {
    let bar = progress(hours.len() as u64, &engine.period.to_string());
    let usage = &*usage;
    let ahead = rayon::current_num_threads().max(1);
    // A what-if run's hours are a selection of rows, small: more of them may wait
    // decoded, so that the decoder and the ratings keep both cores busy.
    let waiting = if usage.only.is_some() { 4 * ahead } else { ahead };
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Micros, Vec<UsageChunk>), JobError>>(waiting);
        scope.spawn(move || {
            let hours: Vec<(&Micros, &Vec<u32>)> = hours.iter().collect();
            for group in hours.chunks(ahead) {
                let decoded = usage.decode_hours(group);
                let failed = decoded.is_err();
                let sent = match decoded {
                    Ok(each_hour) => each_hour.into_iter().all(|h| tx.send(Ok(h)).is_ok()),
                    Err(e) => tx.send(Err(e)).is_ok(),
                };
                if failed || !sent {
                    return;
                }
            }
        });
        for got in rx {
            let (hour, chunks) = got?;
            bar.inc(1);
            let res = engine.process_hour(hour, &chunks, verdicts)?;
            each(engine, res, &chunks)?;
        }
        Ok::<(), JobError>(())
    })?;
    bar.finish_and_clear();
    Ok(())
}

/// A progress bar over a period's hours, drawn only when stderr is a terminal (a
/// scheduler's log gets the stage lines instead).
fn progress(len: u64, label: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} hours, {elapsed} (eta {eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("billrun {label}"));
    bar
}

/// Each account's pay-per-use sum of every hour it was settled, as the period's
/// rating found them: what a partial what-if run adds for the rows it does not rate.
/// Kept hour by hour, each hour's in account order, as the what-if run reads them.
struct HourSums {
    /// Per hour: the accounts settled, ascending, and their sums.
    hours: BTreeMap<Micros, (Vec<u32>, Vec<Dec>)>,
}

impl HourSums {
    fn new() -> HourSums {
        HourSums { hours: BTreeMap::new() }
    }

    fn record(&mut self, settlements: &[crate::rules::records::Settlement]) {
        let mut touched: Vec<Micros> = Vec::new();
        for s in settlements {
            let (accounts, sums) = self.hours.entry(s.hour_start).or_default();
            accounts.push(s.account);
            sums.push(s.line_amount);
            if touched.last() != Some(&s.hour_start) {
                touched.push(s.hour_start);
            }
        }
        // An hour's settlements come in account order; kept so if they did not.
        for hour in touched {
            if let Some((accounts, sums)) = self.hours.get_mut(&hour).filter(|(a, _)| !a.is_sorted()) {
                let mut both: Vec<(u32, Dec)> = accounts.iter().copied().zip(sums.iter().copied()).collect();
                both.sort_by_key(|x| x.0);
                (*accounts, *sums) = both.into_iter().unzip();
            }
        }
    }

    /// The hour's accounts and sums, in account order.
    fn of(&self, hour: Micros) -> (&[u32], &[Dec]) {
        self.hours.get(&hour).map_or((&[], &[]), |(a, s)| (a.as_slice(), s.as_slice()))
    }
}

/// Per account of `wanted` (ascending), the part of the hour's sum `all` that `part`
/// (the rated rows' sums) leaves: what a partial what-if run adds for the rows it does
/// not rate. An account with a part but no whole (an hour the period's rating did not
/// settle it) goes to `astray`. All three lists are in account order.
fn unrated_sums(
    wanted: &[u32],
    (accounts, sums): (&[u32], &[Dec]),
    part: &[(u32, Dec)],
    astray: &mut rustc_hash::FxHashSet<u32>,
) -> Result<Vec<(u32, Dec)>, crate::decimal::Overflow> {
    let (mut all, mut part) = (accounts.iter().copied().zip(sums.iter().copied()).peekable(), part.iter().copied().peekable());
    let mut out = Vec::with_capacity(wanted.len());
    for &a in wanted {
        while all.next_if(|x| x.0 < a).is_some() {}
        while part.next_if(|x| x.0 < a).is_some() {}
        let whole = all.next_if(|x| x.0 == a).map(|x| x.1);
        let rated = part.next_if(|x| x.0 == a).map(|x| x.1);
        match (whole, rated) {
            (Some(whole), rated) => out.push((a, whole.minus(rated.unwrap_or(Dec::ZERO), "hour's pay-per-use amount")?)),
            (None, Some(_)) => {
                astray.insert(a);
            }
            (None, None) => {}
        }
    }
    Ok(out)
}

/// The period's recommendations. Purchases are verified by re-rating: the period is
/// rated again, for the accounts concerned only, with each account's best candidate
/// purchase added to the inventory; the saving is the difference of `total_due`.
///
/// An account that was never in arrears is re-rated in part: only the rows its
/// purchase can change (its SKU and region, its resource) are rated, once without and
/// once with the purchase, and each hour is settled with the rest of the hour's sum as
/// the period's rating found it. While the balance stays positive the hour's sums are
/// all the settlement depends on, so `total_due` is the one a whole re-rating gives;
/// an account that would fall into arrears with the purchase is re-rated whole.
#[allow(clippy::too_many_arguments)]
fn recommend(
    engine: &Engine,
    res: &crate::engine::PeriodResult,
    cost: &crate::cost::CostBook,
    offers: &[crate::cost::recommend::Offer],
    reference: inputs::Reference,
    opening: &Opening,
    usage: &mut Usage<'_>,
    hours: &BTreeMap<Micros, Vec<u32>>,
    verdicts: &FxHashMap<FileRow, crate::rules::checks::Rejection>,
    hour_sums: &HourSums,
) -> Result<Vec<crate::cost::recommend::Recommendation>, JobError> {
    use crate::cost::recommend::{self as rec, Purchase};
    use crate::engine::RowFilter;
    let period = engine.period;
    let candidates = rec::purchase_candidates(cost, &engine.accounts, &engine.catalog, offers, period)?;
    let mut out = Vec::new();
    if !candidates.is_empty() {
        let mut with = reference.clone();
        let mut partial: Vec<(String, RowFilter)> = Vec::new();
        let mut whole: Vec<String> = Vec::new();
        for c in &candidates {
            let id = engine.accounts[c.account as usize].account_id.clone();
            let filter = match &c.purchase {
                Some(Purchase::Subscription(s)) => {
                    with.subscriptions.push(s.clone());
                    Some(RowFilter { sku: s.sku.clone(), region: s.region.clone(), resource: Some(s.resource_id.clone()) })
                }
                Some(Purchase::Package(p)) => {
                    with.packages.push(p.clone());
                    Some(RowFilter { sku: p.sku.clone(), region: p.region.clone(), resource: None })
                }
                None => None,
            };
            match filter {
                Some(f) if !engine.had_arrears(c.account) && !usage.whole_what_if => partial.push((id, f)),
                _ => whole.push(id),
            }
        }
        let mut alternative: FxHashMap<u32, Dec> = FxHashMap::default();
        if !partial.is_empty() {
            let mut without = Engine::new(reference, period, opening).map_err(JobError::Plan)?;
            let mut what_if = Engine::new(with.clone(), period, opening).map_err(JobError::Plan)?;
            without.restrict_rows(&partial);
            what_if.restrict_rows(&partial);
            without.sequential = true;
            what_if.sequential = true;
            without.keep_lines = false;
            what_if.keep_lines = false;
            let mut idx: Vec<u32> = partial.iter().filter_map(|(a, _)| engine.account_index(a)).collect();
            idx.sort_unstable();
            idx.dedup();
            let mut astray: rustc_hash::FxHashSet<u32> = Default::default();
            usage.only = Some(partial.iter().map(|(a, f)| (a.clone(), Some(f.clone()))).collect());
            // The rating with the purchase runs behind the one without (up to 8 hours),
            // on a thread of its own: it needs each hour's sums of the rows not rated.
            let t0 = Instant::now();
            let mut rerated = 0u64;
            let rated = std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<(Micros, Vec<(u32, Dec)>, Vec<UsageChunk>)>(8);
                let what_if = &mut what_if;
                let with_purchase = scope.spawn(move || {
                    for (hour, unrated, chunks) in rx {
                        what_if.unrated = unrated;
                        what_if.process_hour(hour, &chunks, verdicts)?;
                    }
                    Ok::<(), JobError>(())
                });
                let rated = rate_hours(usage, hours, &mut without, verdicts, |_, res, chunks| {
                    let mut part: Vec<(u32, Dec)> = res.settlements.iter().map(|s| (s.account, s.line_amount)).collect();
                    if !part.is_sorted_by_key(|x| x.0) {
                        part.sort_by_key(|x| x.0);
                    }
                    let unrated = unrated_sums(&idx, hour_sums.of(res.hour), &part, &mut astray)?;
                    rerated += chunks.iter().map(|c| c.len as u64).sum::<u64>();
                    tx.send((res.hour, unrated, chunks.to_vec())).map_err(|_| JobError::Bug("the what-if rating stopped".into()))
                });
                drop(tx);
                with_purchase.join().map_err(|_| JobError::Bug("the what-if rating panicked".into()))??;
                rated
            });
            usage.only = None;
            tracing::info!(accounts = idx.len(), rows = rerated, secs = t0.elapsed().as_secs_f64(), "purchases re-rated in part");
            rated?;
            // Re-rated whole instead: an hour's sum the period's rating did not have, or
            // arrears on either side (the hours' sums are then not all that counts).
            astray.extend(idx.iter().copied().filter(|&a| what_if.had_arrears(a) || without.had_arrears(a)));
            let alt = what_if.finish()?;
            for &a in &idx {
                if astray.contains(&a) {
                    whole.push(engine.accounts[a as usize].account_id.clone());
                } else {
                    alternative.insert(a, alt.invoices[a as usize].total_due);
                }
            }
        }
        if !whole.is_empty() {
            let mut what_if = Engine::new(with, period, opening).map_err(JobError::Plan)?;
            what_if.restrict(&whole);
            what_if.keep_lines = false;
            usage.only = Some(whole.iter().map(|a| (a.clone(), None)).collect());
            let rated = rate_hours(usage, hours, &mut what_if, verdicts, |_, _, _| Ok(()));
            usage.only = None;
            rated?;
            let alt = what_if.finish()?;
            for a in whole.iter().filter_map(|a| engine.account_index(a)) {
                alternative.insert(a, alt.invoices[a as usize].total_due);
            }
        }
        for mut c in candidates {
            let actual = res.invoices[c.account as usize].total_due;
            let Some(&alternative) = alternative.get(&c.account) else { continue };
            let saving = actual.minus(alternative, "estimated saving")?;
            if saving <= Dec::ZERO {
                continue;
            }
            c.evidence = format!("{}; re-rated with the purchase, total due {actual} → {alternative}", c.evidence);
            c.saving = saving;
            c.verified = true;
            out.push(c);
        }
    }
    out.extend(rec::lapsing_packages(&res.ledger, &engine.packages, period)?);
    out.extend(rec::idle_notebooks(cost, period, 3)?);
    let balances: Vec<(u32, Dec, crate::model::Phase)> = res.invoices.iter().map(|i| (i.account, i.closing_balance, i.status)).collect();
    out.extend(rec::arrears_risk(cost, &balances, period, 14)?);
    out.sort_by(|a, b| (a.account, &a.id).cmp(&(b.account, &b.id)));
    Ok(out)
}

/// Lines and Σ BilledCost per account index.
fn tally(written: &mut Vec<(u64, Dec)>, lines: &[crate::rules::records::Line]) -> Result<(), crate::decimal::Overflow> {
    for l in lines {
        let a = l.account as usize;
        if written.len() <= a {
            written.resize(a + 1, (0, Dec::ZERO));
        }
        let e = &mut written[a];
        e.0 += 1;
        e.1 = e.1.plus(l.billed, "invoice's billed cost")?;
    }
    Ok(())
}

/// The lines handed to the writers add up to each invoice: count and Σ BilledCost.
fn check_written(res: &crate::engine::PeriodResult, written: &[(u64, Dec)]) -> Result<(), JobError> {
    for inv in &res.invoices {
        let (n, billed) = written.get(inv.account as usize).copied().unwrap_or_default();
        if n != inv.line_count || billed != inv.total_due {
            return Err(JobError::Conservation(format!(
                "account #{}: {n} lines written with Σ BilledCost {billed}, the invoice has {} lines and total_due {}",
                inv.account, inv.line_count, inv.total_due
            )));
        }
    }
    Ok(())
}

/// A test hook (`BILLRUN_INJECT_FAULT`): breaks one stage on purpose, once, to prove
/// that the conservation checks stop the run before anything is published.
/// `drop-line` loses a line between the rules and the writer; `lose-rejected` loses a
/// rejected row.
fn inject_fault(fault: &mut Option<String>, res: &mut crate::engine::HourResult) {
    match fault.as_deref() {
        Some("drop-line") if !res.lines.is_empty() => {
            res.lines.pop();
        }
        Some("lose-rejected") if !res.rejected.is_empty() => {
            res.rejected.pop();
        }
        _ => return,
    }
    tracing::warn!(fault = fault.as_deref().unwrap_or(""), "fault injected on purpose");
    *fault = None;
}

/// The inputs of a run: the reference tables with their SHA-256, the usage files with
/// their sizes and e-tags.
fn inputs_of(lake: &Lake, files: &[UsageFile]) -> Result<Vec<InputRead>, JobError> {
    use sha2::Digest;
    let mut out = Vec::new();
    for rel in [inputs::PRICES, inputs::OFFERS, inputs::ACCOUNTS, inputs::PAYMENTS, inputs::PACKAGES, inputs::SUBSCRIPTIONS] {
        if let Some(bytes) = lake.get_opt(rel)? {
            let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            out.push(InputRead { path: rel.into(), size: bytes.len() as u64, e_tag: None, sha256: Some(sha) });
        }
    }
    out.extend(files.iter().map(|f| InputRead { path: f.path.clone(), size: f.size, e_tag: f.e_tag.clone(), sha256: None }));
    Ok(out)
}

/// `(hash of record_id, (file, row))` of every row of a usage file with a record_id,
/// reading that one column. A file that cannot be read this way yields nothing here:
/// the rating pass reads it whole and refuses it with the reason.
fn record_id_hashes(fi: u32, bytes: bytes::Bytes) -> Vec<(u64, FileRow)> {
    use parquet::arrow::ProjectionMask;
    let read = inputs::decode_usage_with("", bytes, |b| {
        let mask = ProjectionMask::columns(b.parquet_schema(), ["record_id"]);
        b.with_projection(mask)
    });
    let batches = read.unwrap_or_default();
    let mut out = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    let mut first = 0u32;
    for batch in batches {
        if let Ok(ids) = crate::lake::columns::StrCol::of(&batch, "record_id") {
            for r in 0..batch.num_rows() {
                if let Some(id) = ids.get(r) {
                    out.push((dedup::id_hash(id), (fi, first + r as u32)));
                }
            }
        }
        first += batch.num_rows() as u32;
    }
    out
}

/// Rates a set of usage files of a period (their duplicates judged among them), hour
/// by hour in order: the hourly run's loop.
pub fn rate_files(
    lake: &Lake,
    files: &[UsageFile],
    period: Period,
    cache_bytes: u64,
    engine: &mut Engine,
    each: impl FnMut(&Engine, crate::engine::HourResult, &[UsageChunk]) -> Result<(), JobError>,
) -> Result<(), JobError> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let mut usage = Usage { lake, files, cache: FxHashMap::default(), keep: total <= cache_bytes, only: None, whole_what_if: false };
    let verdicts = duplicate_verdicts(&mut usage, period)?;
    let mut hours: BTreeMap<Micros, Vec<u32>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        hours.entry(f.partition_hour).or_default().push(i as u32);
    }
    rate_hours(&mut usage, &hours, engine, &verdicts, each)
}

/// The hour of an hourly run's file, `…/hour=YYYY-MM-DDTHH.parquet`.
fn hourly_file_hour(path: &str) -> Option<Micros> {
    path.rsplit("hour=").next().and_then(|s| s.strip_suffix(".parquet")).and_then(crate::time::parse_hour)
}

/// The settlements of the close against those the hourly runs published: one row per
/// account and hour settled hourly whose deduction changed (late usage, or a record
/// id repeated across hours, which only the whole month shows).
fn settlement_changes(
    lake: &Lake,
    period: Period,
    accounts: &[crate::model::Account],
    settled: &BTreeMap<(u32, Micros), Dec>,
) -> Result<arrow_array::RecordBatch, JobError> {
    use crate::lake::columns::{DecCol, StrCol, TsCol};
    let mut hourly: BTreeMap<(String, Micros), Dec> = BTreeMap::new();
    let mut hours = std::collections::BTreeSet::new();
    for l in lake.list(&format!("hourly/settlements/billing_period={period}/"))? {
        let Some(h) = hourly_file_hour(&l.path) else { continue };
        hours.insert(h);
        for b in inputs::decode_parquet(&l.path, lake.get(&l.path)?)? {
            let (acct, at, ded) = match (StrCol::of(&b, "account_id"), TsCol::of(&b, "hour_start"), DecCol::of(&b, "deduction")) {
                (Ok(a), Ok(t), Ok(d)) => (a, t, d),
                _ => return Err(JobError::Plan(format!("{}: not a settlements table", l.path))),
            };
            for i in 0..b.num_rows() {
                if let (Some(a), Some(Ok(t)), Some(Ok(d))) = (acct.get(i), at.get(i), ded.get(i)) {
                    hourly.insert((a.to_string(), t), d);
                }
            }
        }
    }
    let mut close: BTreeMap<(String, Micros), Dec> = BTreeMap::new();
    for ((a, h), d) in settled {
        if hours.contains(h) {
            close.insert((accounts[*a as usize].account_id.clone(), *h), *d);
        }
    }
    let keys: std::collections::BTreeSet<&(String, Micros)> = hourly.keys().chain(close.keys()).collect();
    let rows: Vec<(&(String, Micros), Option<Dec>, Option<Dec>)> =
        keys.into_iter().map(|k| (k, hourly.get(k).copied(), close.get(k).copied())).filter(|(_, a, b)| a != b).collect();
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("account_id", arrow_schema::DataType::Utf8, false),
        arrow_schema::Field::new("hour_start", out::ts_type(), false),
        arrow_schema::Field::new("hourly_deduction", out::dec2_type(), true),
        arrow_schema::Field::new("close_deduction", out::dec2_type(), true),
        arrow_schema::Field::new("difference", out::dec2_type(), false),
    ]));
    let cols: Vec<arrow_array::ArrayRef> = vec![
        out::col_str(rows.iter().map(|(k, _, _)| Some(k.0.as_str()))),
        out::col_ts(rows.iter().map(|(k, _, _)| Some(k.1))),
        out::col_dec2(rows.iter().map(|(_, a, _)| *a)),
        out::col_dec2(rows.iter().map(|(_, _, b)| *b)),
        out::col_dec2(rows.iter().map(|(_, a, b)| b.unwrap_or_default().checked_sub(a.unwrap_or_default()))),
    ];
    Ok(arrow_array::RecordBatch::try_new(schema, cols).expect("settlement change columns match the schema"))
}

#[cfg(test)]
mod tests {
    use super::unrated_sums;
    use crate::decimal::Dec;

    /// Each wanted account gets its hour's sum less the part rated again (the whole
    /// sum when none was); an account the hour did not settle gets nothing, or goes
    /// astray when a part was rated for it all the same.
    #[test]
    fn unrated_sums_walk_the_three_lists_in_account_order() {
        let d = Dec::from_int;
        let mut astray = Default::default();
        let out =
            unrated_sums(&[1, 3, 5, 7, 9], (&[1, 2, 3, 7], &[d(10), d(5), d(7), d(1)]), &[(2, d(1)), (3, d(2)), (5, d(4)), (7, d(1))], &mut astray).unwrap();
        assert_eq!(out, vec![(1, d(10)), (3, d(5)), (7, d(0))]);
        assert_eq!(astray.into_iter().collect::<Vec<u32>>(), vec![5]);
    }
}
