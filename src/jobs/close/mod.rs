//! Closing a billing period, in three stages with types between them:
//!
//! 1. **plan** (`plan.rs`): what is read and written, the lock, the reference data
//!    and the opening state — a [`plan::Prepared`]; `--dry-run` stops before it with
//!    a [`ClosePlan`];
//! 2. **execute** (`execute.rs`): the engine over the period's hours, the close of
//!    the period, the conservation checks and the recommendations' re-rating
//!    (`jobs/what_if.rs`); every table is written and sealed, none is visible — an
//!    [`execute::Executed`];
//! 3. **publish** (`publish`): the sealed tables completed all at once, or the
//!    previous ones restored, and the manifest.
//!
//! Nothing is published until every table is written and every conservation check
//! has passed, so a failed run leaves the previous outputs of the period as they were.

mod checks;
pub(crate) mod execute;
pub(crate) mod plan;
pub mod sinks;
mod spill;
mod usage;

pub use checks::{check_allocation, check_conservation};
pub use plan::{opening_state, plan, ClosePlan};
pub use usage::rate_files;
pub(crate) use usage::{rate_hours, Usage};

use super::{publish, JobError};
use crate::lake::outputs::Written;
use crate::lake::store::StoreOptions;
use crate::time::Period;
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
    /// How the lakes' stores are used (retries).
    pub store: StoreOptions,
    /// A stage broken on purpose, once (a test hook; see [`Fault`]).
    pub fault: Option<Fault>,
    /// Re-rate every recommended purchase's account whole rather than in part (a test
    /// hook: the partial re-rating must give the same savings).
    pub whole_what_if: bool,
    /// Execute the period for this shard's accounts only and write the results under
    /// `_shards/` (publishing nothing), rather than close it.
    pub shard: Option<crate::shard::Shard>,
    /// A shard's usage from a staged layout (`<staged>/billing_period=P/n=N/k=K/`)
    /// rather than a scan of the period's usage.
    pub staged: Option<String>,
    /// Where the duplicate pass spills its hashes when the month is not kept in memory
    /// (the command line: `[run] spill_dir`, else the system's temporary directory;
    /// `None`: they are held in memory).
    pub spill_dir: Option<std::path::PathBuf>,
    /// Rows of an hour rated and handed to the writers at a time
    /// ([`RATING_BLOCK_ROWS`]; a test sets a few, since blocks must give the bytes of
    /// whole hours).
    pub block_rows: usize,
}

/// Rows of an hour rated and handed to the writers at a time: an hour's accounts go in
/// blocks of about this many rows (whole accounts), so that the lines in hand do not
/// grow with the month (an hour of a 10M-row month is about 13,000 rows: one block).
pub const RATING_BLOCK_ROWS: usize = 16 * 1024;

/// Default cache budget for decoded usage: 16 MiB of Parquet (about seven times that
/// decoded). Larger months are decoded twice instead of held in memory. Holding pays
/// only for small months: the 1M-row month (35 MB of Parquet) held closes 0.1 s
/// sooner in 390 MB instead of 150 MB, and the 9.4M-row month held (276 MB) took
/// 11.1 s and 2.5 GB instead of 7.9 s and 240 MB (`benches/RESULTS.md`).
pub const DEFAULT_CACHE_BYTES: u64 = 16 << 20;

/// Default age after which a period's lock belongs to a dead run: six hours.
pub const DEFAULT_STALE_LOCK: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

impl CloseJob {
    /// A close of `period` from `input` to `output` with every default: the cache
    /// budget, the stale-lock age, the accounts' windows, the stores' retries, no test
    /// hook. The command line sets the rest from the config and the environment.
    pub fn new(input: impl Into<String>, output: impl Into<String>, period: Period) -> CloseJob {
        CloseJob {
            input: input.into(),
            output: output.into(),
            period,
            cache_bytes: DEFAULT_CACHE_BYTES,
            stale_lock: DEFAULT_STALE_LOCK,
            windows: crate::lake::inputs::DEFAULT_WINDOWS,
            reason: "re-run".into(),
            store: StoreOptions::default(),
            fault: None,
            whole_what_if: false,
            shard: None,
            staged: None,
            spill_dir: None,
            block_rows: RATING_BLOCK_ROWS,
        }
    }
}

/// A test hook (`BILLRUN_INJECT_FAULT`): breaks one stage on purpose, once, to prove
/// that the conservation checks stop the run before anything is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `drop-line`: a line is lost between the rules and the writer.
    DropLine,
    /// `lose-rejected`: a rejected row is lost.
    LoseRejected,
}

impl Fault {
    pub fn parse(s: &str) -> Option<Fault> {
        match s {
            "drop-line" => Some(Fault::DropLine),
            "lose-rejected" => Some(Fault::LoseRejected),
            _ => None,
        }
    }
}

/// What a close did.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
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
    /// The number of shards the period was closed in (`billrun commit`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
}

/// One input object a run read.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
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

/// The schema of each of [`TABLES`].
pub fn schema_of(table: &str) -> arrow_schema::SchemaRef {
    use crate::lake::outputs as out;
    match table {
        "bills/line_items" => out::line_items_schema(),
        "bills/invoices" => out::invoices_schema(),
        "bills/settlements" => out::settlements_schema(),
        "bills/account_status" => out::account_status_schema(),
        "bills/package_ledger" => out::package_ledger_schema(),
        "bills/package_deductions" => out::package_deductions_schema(),
        "bills/alerts" => out::alerts_schema(),
        "bills/rejected" => out::rejected_schema(),
        "bills/restatements" => super::restate::schema(),
        "bills/settlement_changes" => execute::settlement_changes_schema(),
        "cost/analysis" => crate::cost::tables::analysis_schema(),
        "cost/allocation" => crate::cost::tables::allocation_schema(),
        "cost/recommendations" => crate::cost::tables::recommendations_schema(),
        _ => crate::lake::state::state_schema(),
    }
}

pub fn table_path(table: &str, period: Period) -> String {
    format!("{table}/billing_period={period}/part-0.parquet")
}

/// Closes a period: plan, execute, publish.
pub fn run(job: &CloseJob) -> Result<CloseReport, JobError> {
    let started = Instant::now();
    let prepared = plan::prepare(job)?;
    let executed = execute::execute(job, &prepared)?;
    publish_close(&prepared, executed, started)
}

/// Completes every sealed table at once (or restores the previous ones) and writes
/// the manifest: the run's report with every output's rows, size and SHA-256.
pub(crate) fn publish_close(prepared: &plan::Prepared, executed: execute::Executed, started: Instant) -> Result<CloseReport, JobError> {
    let execute::Executed { mut report, sealed: tables, .. } = executed;
    let period = prepared.period;
    let mut sealed = Vec::new();
    for (_, (w, s)) in tables {
        report.outputs.push(w.clone());
        sealed.push((w, s));
    }
    report.seconds = started.elapsed().as_secs_f64();
    let manifest = serde_json::to_vec_pretty(&report).map_err(|e| JobError::Bug(format!("manifest: {e}")))?;
    let t = Instant::now();
    publish::publish(&prepared.output, sealed, (format!("_manifests/billing_period={period}/manifest.json"), manifest))?;
    tracing::info!(
        period = %period,
        tables = report.outputs.len(),
        bytes = report.outputs.iter().map(|w| w.bytes).sum::<u64>(),
        secs = t.elapsed().as_secs_f64(),
        "published"
    );
    Ok(report)
}
