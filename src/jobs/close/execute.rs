//! The execution of a close: the engine over the period's hours (the writers fed an
//! hour behind on a thread of their own), the period's close, the conservation
//! checks, the whole-period tables, and the recommendations re-rated beside them.
//! Every table is written and sealed; none is made visible here.

use super::checks::{check_allocation, check_composition, check_conservation, check_written};
use super::plan::Prepared;
use super::sinks::{account_keys, number_key, text_key, texts, Globals, Sinks, PERIOD};
use super::usage::{duplicate_verdicts, rate_hours, Usage};
use super::{table_path, CloseJob, CloseReport, Fault};
use crate::decimal::Dec;
use crate::engine::Engine;
use crate::jobs::{restate, what_if, JobError};
use crate::lake::inputs::{self, UsageChunk, UsageFile};
use crate::lake::outputs::{self as out, Names};
use crate::lake::state::state_batch;
use crate::lake::store::{Lake, Sealed};
use crate::time::{Micros, Period};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::time::Instant;

/// What the execution leaves for the publication: the report, and every table
/// written and sealed (its upload not completed: invisible).
pub struct Executed {
    pub report: CloseReport,
    /// SHA-256 of the ids of the accounts executed, one a line in order (a shard's
    /// manifest carries it; the commit checks it).
    pub accounts_sha256: String,
    pub sealed: BTreeMap<&'static str, (out::Written, Sealed)>,
}

/// Rates the period and closes it: every table written and sealed, nothing visible.
pub fn execute(job: &CloseJob, p: &Prepared) -> Result<Executed, JobError> {
    let (period, input, files) = (p.period, &p.input, &p.files[..]);
    // A shard decodes its own rows only, so it keeps none of the duplicate pass's.
    let keep = p.keep_decoded && job.shard.is_none();
    let mut usage = Usage { lake: input, files, cache: FxHashMap::default(), keep, only: None, whole_what_if: job.whole_what_if, shard: job.shard };
    let t = Instant::now();
    let verdicts = duplicate_verdicts(&mut usage, period, job.spill_dir.as_deref())?;
    tracing::info!(duplicates = verdicts.len(), secs = t.elapsed().as_secs_f64(), "duplicate pass");
    execute_with(job, p, usage, verdicts)
}

/// [`execute`] from the period's usage as `usage` serves it and its duplicate verdicts.
pub(crate) fn execute_with(
    job: &CloseJob,
    p: &Prepared,
    mut usage: Usage<'_>,
    verdicts: FxHashMap<crate::rules::dedup::FileRow, crate::rules::checks::Rejection>,
) -> Result<Executed, JobError> {
    let (period, output, files, hours) = (p.period, &p.output, &p.files[..], &p.hours);
    let owns = |id: &str| job.shard.is_none_or(|s| s.owns(Some(id)));
    let mut engine = Engine::of_accounts(p.reference.clone(), period, &p.opening, owns)
        .map_err(|why| JobError::Input(inputs::InputError::Table { file: inputs::PRICES.into(), why }))?;
    let ids = out::Ids::new(period, &engine.accounts, &engine.catalog);
    let globals = Globals::of(&p.reference, owns);
    let t = Instant::now();
    let writer = HourWriter::new(job, p, &engine, &ids)?;
    let hourly = rate_period(writer, &mut usage, hours, &mut engine, &verdicts, job.block_rows)?;
    tracing::info!(rows = hourly.report.rows_in, secs = t.elapsed().as_secs_f64(), "rated");
    let HourWriter { mut report, mut sinks, mut cost, mut written, settled, mut hour_sums, .. } = hourly;

    // The close: what only the whole period determines.
    let res = engine.finish()?;
    let names = names(&engine, files, &ids);
    report.accounts = engine.accounts.len();
    report.lines += res.lines.len() as u64;
    for r in &res.rejected_orders {
        *report.rejected_orders.entry(r.why.reason.as_str().to_string()).or_default() += 1;
    }
    // The hourly tables end with the period's own rows and are sealed before the cost
    // book's sums are taken: their open row groups (up to 1,048,576 line items,
    // encoded: about 100 MB) are written out rather than held beside those sums.
    period_rows(&mut sinks, &res, &names, &globals)?;
    let mut sealed = sinks.seal()?;
    cost.observe(&res.lines, &[], &names)?;
    cost.finish()?;
    tally(&mut written, &res.lines)?;
    check_conservation(&res)?;
    check_written(&res, &written)?;
    check_allocation(&cost)?;
    let t = Instant::now();
    // The tables that do not depend on the recommendations are written and sealed
    // while the purchases are re-rated: that work leaves part of a core idle.
    let run_id = report.run_id.clone();
    let (recommendations, closed) = std::thread::scope(|scope| {
        let closing =
            scope.spawn(|| close_tables(Sinks::new(output, period, job.shard), &res, &names, &cost, &engine.accounts, &settled, &run_id, &job.reason));
        let what_if =
            what_if::WhatIf { engine: &engine, period: &res, cost: &cost, offers: &p.offers, reference: &p.reference, opening: &p.opening, shard: job.shard };
        let recommendations = what_if.recommend(&mut usage, hours, &verdicts, &mut hour_sums);
        let closed = closing.join().map_err(|_| JobError::Bug("the closing writers panicked".into()));
        (recommendations, closed)
    });
    let (closed, restated, settlement_changes) = closed??;
    sealed.extend(closed);
    let recommendations = recommendations?;
    report.restated = restated;
    report.settlement_changes = settlement_changes;
    drop(hour_sums);
    tracing::info!(recommendations = recommendations.len(), secs = t.elapsed().as_secs_f64(), "recommendations");
    drop(usage);
    total_due(&mut report, &res, &engine.accounts)?;
    // The cost analysis after the re-rating, not beside it: its Polars queries' memory
    // (Polars' code, its workers' arenas) then does not add to the re-rating's.
    let mut sinks = Sinks::new(output, period, job.shard);
    analysis_table(&mut sinks, &cost, &res, &names)?;
    let t_rec = "cost/recommendations";
    let batch = crate::cost::tables::recommendations_batch(&recommendations, &names);
    sinks.create(t_rec, batch.schema())?;
    sinks.write(t_rec, PERIOD, &batch, || account_keys(&batch, "account_id"))?;
    sealed.extend(sinks.seal()?);
    let accounts_sha256 = ids_sha256(engine.accounts.iter().map(|a| a.account_id.as_str()));
    Ok(Executed { report, accounts_sha256, sealed })
}

/// The tables written hour by hour, as the engine rates the hours.
const HOURLY_TABLES: [&str; 5] = ["bills/line_items", "bills/settlements", "bills/alerts", "bills/package_deductions", "bills/rejected"];

/// What the hours rated are written into and tallied in: the hourly tables, the
/// cost book, the report's counts, what the writers were handed (checked against the
/// invoices before publishing, so a line lost between the rules and the files cannot
/// go unnoticed), the close's settlements of the hours settled hourly (to compare),
/// and each hour's sums for the what-if re-rating. It writes with its own copy of the
/// reference data for the names, on a thread of its own.
struct HourWriter<'a> {
    period: Period,
    files: &'a [UsageFile],
    ids: &'a out::Ids,
    hourly_hours: &'a std::collections::BTreeSet<Micros>,
    refs: (Vec<crate::model::Account>, crate::rules::pricing::Catalog, Vec<crate::model::Package>, crate::rules::subscriptions::Subscriptions),
    sinks: Sinks<'a>,
    cost: crate::cost::CostBook,
    report: CloseReport,
    written: Vec<(u64, Dec)>,
    settled: BTreeMap<(u32, Micros), Dec>,
    hour_sums: what_if::HourSums,
    fault: Option<Fault>,
    /// The hour's rows of the small hourly tables (settlements, alerts, deductions,
    /// rejected), gathered block by block with the hour's usage, and written as one
    /// batch when the hour ends: their files' bytes depend on where batches break,
    /// and a commit writes each merged hour as one batch. (The line items' bytes do
    /// not: they are written block by block.)
    hour_rest: Option<(crate::engine::HourResult, Vec<UsageChunk>)>,
}

impl<'a> HourWriter<'a> {
    fn new(job: &CloseJob, p: &'a Prepared, engine: &Engine, ids: &'a out::Ids) -> Result<HourWriter<'a>, JobError> {
        let schemas = [out::line_items_schema(), out::settlements_schema(), out::alerts_schema(), out::package_deductions_schema(), out::rejected_schema()];
        let mut sinks = Sinks::new(&p.output, p.period, job.shard);
        for (t, s) in HOURLY_TABLES.into_iter().zip(schemas) {
            sinks.create(t, s)?;
        }
        Ok(HourWriter {
            period: p.period,
            files: &p.files,
            ids,
            hourly_hours: &p.hourly_hours,
            refs: (engine.accounts.clone(), engine.catalog.clone(), engine.packages.clone(), engine.subs.clone()),
            sinks,
            cost: crate::cost::CostBook::default(),
            report: p.report.clone(),
            written: Vec::new(),
            settled: BTreeMap::new(),
            hour_sums: what_if::HourSums::new(job.spill_dir.as_deref())?,
            fault: job.fault,
            hour_rest: None,
        })
    }

    /// Writes and tallies one rated block of an hour's accounts.
    fn write(&mut self, mut res: crate::engine::HourResult, chunks: &[UsageChunk]) -> Result<(), JobError> {
        inject_fault(&mut self.fault, &mut res);
        tally(&mut self.written, &res.lines)?;
        let report = &mut self.report;
        report.rows_in += res.rows_in;
        report.rows_rated += res.rows_rated;
        report.lines += res.lines.len() as u64;
        report.alerts += res.alerts.len() as u64;
        for r in &res.rejected {
            *report.rejected.entry(r.why.reason.as_str().to_string()).or_default() += 1;
        }
        let refs = &self.refs;
        let names = Names::new(self.period, &refs.0, &refs.1, &refs.2, &refs.3, self.files, self.ids);
        let names = &names;
        let hour = res.hour;
        // The cost book and the line items read the same lines: one on each side.
        let (sinks, cost) = (&mut self.sinks, &mut self.cost);
        let (observed, written_lines) = rayon::join(
            || cost.observe(&res.lines, chunks, names),
            || {
                for (_, lines) in out::line_item_slices(&res.lines) {
                    let batch = out::line_items_batch(lines, chunks, names);
                    sinks.write("bills/line_items", hour, &batch, || account_keys(&batch, "BillingAccountId"))?;
                }
                Ok::<(), JobError>(())
            },
        );
        written_lines?;
        observed?;
        self.cost.observe_settlements(&res.settlements)?;
        self.hour_sums.record(&res.settlements)?;
        for st in &res.settlements {
            if self.hourly_hours.contains(&st.hour_start) {
                self.settled.insert((st.account, st.hour_start), st.deduction);
            }
        }
        if (res.rows_rated + res.rejected.len() as u64) != res.rows_in {
            let hour = res.settlements.first().map(|s| s.hour_start);
            return Err(JobError::Conservation(format!(
                "hour {}: {} rows in, {} rated, {} rejected",
                hour.map(crate::time::format_ts).unwrap_or_else(|| "without settlements".into()),
                res.rows_in,
                res.rows_rated,
                res.rejected.len()
            )));
        }
        let (rest, _) = self
            .hour_rest
            .get_or_insert_with(|| (crate::engine::HourResult { hour, rejected_by_checks: res.rejected_by_checks, ..Default::default() }, chunks.to_vec()));
        rest.settlements.append(&mut res.settlements);
        rest.alerts.append(&mut res.alerts);
        rest.deductions.append(&mut res.deductions);
        rest.rejected.append(&mut res.rejected);
        if res.ends_hour {
            self.end_hour()?;
        }
        Ok(())
    }

    /// Writes the hour's rows of the small hourly tables, gathered by
    /// [`HourWriter::write`], and lets go of the hour's usage.
    fn end_hour(&mut self) -> Result<(), JobError> {
        let Some((res, chunks)) = self.hour_rest.take() else { return Ok(()) };
        let refs = &self.refs;
        let names = Names::new(self.period, &refs.0, &refs.1, &refs.2, &refs.3, self.files, self.ids);
        let (names, chunks, sinks) = (&names, &chunks[..], &mut self.sinks);
        for (t, batch) in [
            ("bills/settlements", out::settlements_batch(&res.settlements, names)),
            ("bills/alerts", out::alerts_batch(&res.alerts, names)),
            ("bills/package_deductions", out::package_deductions_batch(&res.deductions, chunks, names)),
        ] {
            sinks.write(t, res.hour, &batch, || account_keys(&batch, "account_id"))?;
        }
        let batch = out::rejected_batch(&res.rejected, chunks, names);
        sinks.write("bills/rejected", res.hour, &batch, || Ok(rejected_keys(&res, chunks)))
    }
}

/// Rates every hour of the period, its accounts in blocks of about `block_rows` rows
/// ([`super::RATING_BLOCK_ROWS`]). The rating of a block overlaps the writing of the
/// one before: the writer runs on a thread of its own,
/// handed each rated block (not queued). Returns the writer with every hour written.
fn rate_period<'a>(
    mut writer: HourWriter<'a>,
    usage: &mut Usage<'_>,
    hours: &BTreeMap<Micros, Vec<u32>>,
    engine: &mut Engine,
    verdicts: &FxHashMap<crate::rules::dedup::FileRow, crate::rules::checks::Rejection>,
    block_rows: usize,
) -> Result<HourWriter<'a>, JobError> {
    std::thread::scope(|scope| {
        // Handed over, not queued: the engine rates the next block while the writers
        // write this one, and no block waits between them. A queue of two whole hours
        // held two more of them (71 MB more at 94M, 17–32 MB at 28M, no faster at 10M).
        let (tx, rx) = std::sync::mpsc::sync_channel::<(crate::engine::HourResult, Vec<UsageChunk>)>(0);
        let writing = scope.spawn(move || {
            for (res, chunks) in rx {
                writer.write(res, &chunks)?;
            }
            writer.end_hour()?;
            Ok::<HourWriter<'a>, JobError>(writer)
        });
        let opts = crate::engine::HourOptions { block_rows: Some(block_rows), ..Default::default() };
        let rated = rate_hours(usage, hours, engine, verdicts, &opts, |_, res, chunks| {
            tx.send((res, chunks.to_vec())).map_err(|_| JobError::Bug("the writers stopped".into()))
        });
        drop(tx);
        let written = writing.join().map_err(|_| JobError::Bug("the writers panicked".into()))?;
        // The writer's own error first: a rating stopped by its failure reports it.
        let writer = written?;
        rated?;
        Ok(writer)
    })
}

/// The report's total due by currency, and the accounts that end the period in
/// arrears.
fn total_due(report: &mut CloseReport, res: &crate::engine::PeriodResult, accounts: &[crate::model::Account]) -> Result<(), JobError> {
    let mut due: BTreeMap<String, Dec> = BTreeMap::new();
    for inv in &res.invoices {
        let cur = accounts[inv.account as usize].currency.clone();
        let e = due.entry(cur).or_default();
        *e = e.plus(inv.total_due, "total due")?;
        if inv.status != crate::model::Phase::Active {
            report.accounts_in_arrears += 1;
        }
    }
    report.total_due = due.into_iter().map(|(k, v)| (k, v.to_string())).collect();
    Ok(())
}

/// The cost analysis of the period (`cost/analysis`): its composition views checked
/// against the bill first.
fn analysis_table(sinks: &mut Sinks<'_>, cost: &crate::cost::CostBook, res: &crate::engine::PeriodResult, names: &Names<'_>) -> Result<(), JobError> {
    let previous = previous_totals(sinks.lake(), names.period)?;
    let composition = crate::cost::views::composition(cost)?;
    check_composition(&composition, cost, res)?;
    let t = "cost/analysis";
    sinks.create(t, crate::cost::tables::analysis_schema())?;
    crate::cost::tables::analysis_batches(cost, &composition, names, &previous, |b| sinks.write(t, PERIOD, &b, || whole_keys(t, &b)))
}

/// The period's own rows of the hourly tables, after the hours': its lines
/// (purchases, lapsed quota, unused subscription time) and its rejected orders.
fn period_rows(sinks: &mut Sinks<'_>, res: &crate::engine::PeriodResult, names: &Names<'_>, globals: &Globals) -> Result<(), JobError> {
    let keys = period_line_keys(res, names, globals);
    for (at, lines) in out::line_item_slices(&res.lines) {
        let batch = out::line_items_batch(lines, &[], names);
        sinks.write("bills/line_items", PERIOD, &batch, || Ok(keys[at..at + lines.len()].to_vec()))?;
    }
    let batch = out::rejected_orders_batch(&res.rejected_orders, names, |i| globals.subscription(i));
    sinks.write("bills/rejected", PERIOD, &batch, || Ok(res.rejected_orders.iter().map(|r| number_key(0, &[globals.subscription(r.subscription)])).collect()))
}

/// The whole-period tables but the cost analysis and the recommendations: invoices,
/// account status, package ledger, cost allocation, state, restatements and
/// settlement changes, written and sealed. Also returns the number of invoices
/// restated and of settlement changes.
#[allow(clippy::too_many_arguments)]
fn close_tables(
    mut sinks: Sinks<'_>,
    res: &crate::engine::PeriodResult,
    names: &Names<'_>,
    cost: &crate::cost::CostBook,
    accounts: &[crate::model::Account],
    settled: &BTreeMap<(u32, Micros), Dec>,
    run_id: &str,
    reason: &str,
) -> Result<(BTreeMap<&'static str, (out::Written, Sealed)>, usize, usize), JobError> {
    let (output, period, shard) = (sinks.lake(), names.period, sinks.shard());
    let owns = |id: &str| shard.is_none_or(|s| s.owns(Some(id)));
    let whole = [
        ("bills/invoices", out::invoices_batch(&res.invoices, names)),
        ("bills/account_status", out::account_status_batch(&res.status, names)),
        ("bills/package_ledger", out::package_ledger_batch(&res.ledger, names)),
        ("cost/allocation", crate::cost::tables::allocation_batch(cost, names)),
        ("state", state_batch(&res.closing)),
    ];
    for (t, batch) in whole {
        sinks.create(t, batch.schema())?;
        sinks.write(t, PERIOD, &batch, || whole_keys(t, &batch))?;
    }
    // Restatements: the published invoices against the new ones.
    let mut restated = 0;
    let restatements_rel = table_path("bills/restatements", period);
    sinks.create("bills/restatements", restate::schema())?;
    for b in restate::read_existing(output, &restatements_rel)? {
        sinks.write_unsharded("bills/restatements", &b)?;
    }
    if let Some(bytes) = output.get_opt(&table_path("bills/invoices", period))? {
        let mut old = restate::read_invoices(&table_path("bills/invoices", period), bytes)?;
        old.retain(|account, _| owns(account));
        let new = restate::figures(&res.invoices, names);
        let old_run = output
            .get_opt(&format!("_manifests/billing_period={period}/manifest.json"))?
            .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
            .and_then(|m| m["run_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let changed = restate::compare(&old, &new, &old_run, run_id, reason);
        restated = changed.len();
        let batch = restate::batch(&changed);
        sinks.write("bills/restatements", PERIOD, &batch, || account_keys(&batch, "account_id"))?;
    }
    let changes = settlement_changes(output, period, accounts, settled, &owns)?;
    sinks.create("bills/settlement_changes", changes.schema())?;
    sinks.write("bills/settlement_changes", PERIOD, &changes, || account_keys(&changes, "account_id"))?;
    let n = changes.num_rows();
    Ok((sinks.seal()?, restated, n))
}

/// The merge keys of the period's own lines, in the order [`Engine::finish`] makes
/// them: packages bought (by the inventory's order), quota lapsed (by account), then
/// each subscription's purchase and unused time (by the inventory's order).
fn period_line_keys(res: &crate::engine::PeriodResult, names: &Names<'_>, globals: &Globals) -> Vec<Vec<u8>> {
    use crate::rules::records::{Commitment, LineKind};
    res.lines
        .iter()
        .map(|l| match (l.kind, l.commitment) {
            (LineKind::Purchase, Some(Commitment::Package(p))) => number_key(0, &[globals.package(p)]),
            (_, Some(Commitment::Subscription(s))) => number_key(2, &[globals.subscription(s)]),
            _ => text_key(1, &names.account(l.account).account_id),
        })
        .collect()
}

/// The merge keys of an hour's rejected rows: those the checks rejected by file and
/// row, then those the rating rejected by account.
fn rejected_keys(res: &crate::engine::HourResult, chunks: &[UsageChunk]) -> Vec<Vec<u8>> {
    res.rejected
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let c = &chunks[r.loc.chunk as usize];
            let row = r.loc.row as usize;
            match i < res.rejected_by_checks {
                true => number_key(0, &[c.file as u64, c.file_row(row) as u64]),
                false => text_key(1, c.account_id.get(row).unwrap_or("")),
            }
        })
        .collect()
}

/// The merge keys of a whole-period table. The cost analysis is ordered by view, then
/// account; the state by entity (accounts, then packages), then id; the others by
/// account.
fn whole_keys(table: &str, batch: &arrow_array::RecordBatch) -> Result<Vec<Vec<u8>>, JobError> {
    match table {
        "cost/analysis" => {
            let (views, accts) = (texts(batch, "view")?, texts(batch, "account_id")?);
            let part = |v: &str| match v {
                "composition" => 0,
                "daily" => 1,
                "forecast" => 2,
                "monthly" | "period_over_period" => 3,
                "top_resources" => 4,
                _ => 5,
            };
            Ok(views.iter().zip(&accts).map(|(v, a)| text_key(part(v.as_deref().unwrap_or("")), a.as_deref().unwrap_or(""))).collect())
        }
        "state" => {
            let (entity, id) = (texts(batch, "entity")?, texts(batch, "id")?);
            Ok(entity.iter().zip(&id).map(|(e, i)| text_key(u8::from(e.as_deref() != Some("account")), i.as_deref().unwrap_or(""))).collect())
        }
        _ => account_keys(batch, "account_id"),
    }
}

fn names<'a>(e: &'a Engine, files: &'a [UsageFile], ids: &'a out::Ids) -> Names<'a> {
    Names::new(e.period, &e.accounts, &e.catalog, &e.packages, &e.subs, files, ids)
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

/// Breaks the stage `fault` names, once, on the first hour where it can.
fn inject_fault(fault: &mut Option<Fault>, res: &mut crate::engine::HourResult) {
    match fault {
        Some(Fault::DropLine) if !res.lines.is_empty() => {
            res.lines.pop();
        }
        Some(Fault::LoseRejected) if !res.rejected.is_empty() => {
            res.rejected.pop();
        }
        _ => return,
    }
    tracing::warn!(fault = ?fault, "fault injected on purpose");
    *fault = None;
}

/// The settlements of the close against those the hourly runs published: one row per
/// account and hour settled hourly whose deduction changed (late usage, or a record
/// id repeated across hours, which only the whole month shows).
fn settlement_changes(
    lake: &Lake,
    period: Period,
    accounts: &[crate::model::Account],
    settled: &BTreeMap<(u32, Micros), Dec>,
    owns: &dyn Fn(&str) -> bool,
) -> Result<arrow_array::RecordBatch, JobError> {
    use crate::lake::columns::{DecCol, StrCol, TsCol};
    let mut hourly: BTreeMap<(String, Micros), Dec> = BTreeMap::new();
    let mut hours = std::collections::BTreeSet::new();
    for l in lake.list(&format!("hourly/settlements/billing_period={period}/"))? {
        let Some(h) = crate::jobs::hourly::file_hour(&l.path) else { continue };
        hours.insert(h);
        for b in inputs::decode_parquet(&l.path, lake.get(&l.path)?)? {
            let (acct, at, ded) = match (StrCol::of(&b, "account_id"), TsCol::of(&b, "hour_start"), DecCol::of(&b, "deduction")) {
                (Ok(a), Ok(t), Ok(d)) => (a, t, d),
                _ => return Err(JobError::Plan(format!("{}: not a settlements table", l.path))),
            };
            for i in 0..b.num_rows() {
                if let (Some(a), Some(Ok(t)), Some(Ok(d))) = (acct.get(i), at.get(i), ded.get(i)) {
                    if owns(a) {
                        hourly.insert((a.to_string(), t), d);
                    }
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
    let schema = settlement_changes_schema();
    let cols: Vec<arrow_array::ArrayRef> = vec![
        out::col_str(rows.iter().map(|(k, _, _)| Some(k.0.as_str()))),
        out::col_ts(rows.iter().map(|(k, _, _)| Some(k.1))),
        out::col_dec2(rows.iter().map(|(_, a, _)| *a)),
        out::col_dec2(rows.iter().map(|(_, _, b)| *b)),
        out::col_dec2(rows.iter().map(|(_, a, b)| b.unwrap_or_default().checked_sub(a.unwrap_or_default()))),
    ];
    Ok(arrow_array::RecordBatch::try_new(schema, cols).expect("settlement change columns match the schema"))
}

/// SHA-256 of ids, each followed by a newline, in hex.
pub fn ids_sha256<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn settlement_changes_schema() -> arrow_schema::SchemaRef {
    std::sync::Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("account_id", arrow_schema::DataType::Utf8, false),
        arrow_schema::Field::new("hour_start", out::ts_type(), false),
        arrow_schema::Field::new("hourly_deduction", out::dec2_type(), true),
        arrow_schema::Field::new("close_deduction", out::dec2_type(), true),
        arrow_schema::Field::new("difference", out::dec2_type(), false),
    ]))
}
