//! A shard run from a staged usage layout (`run --shard K/N --usage STAGED`): the
//! shard's rows come from `<staged>/billing_period=P/n=N/k=K/`, written by the shuffle
//! of a distributed engine (the Spark job in `jobs/spark/`), instead of a scan of the
//! whole period's usage.
//!
//! The duplicate verdicts need every copy of a record id, whatever its shard: the
//! shuffle stages them too, as every row whose `record_id` occurs more than once in
//! the period, under `<staged>/billing_period=P/n=N/repeats/`. The shard judges them
//! with the rules' own duplicate pass (`rules/dedup.rs`), so the verdicts are those of
//! a single close.

use crate::jobs::close::execute::{self, Executed};
use crate::jobs::close::plan::Prepared;
use crate::jobs::close::{CloseJob, Usage};
use crate::jobs::JobError;
use crate::lake::inputs::{read_staged, UsageChunk};
use crate::lake::store::Lake;
use crate::rules::checks::{check_row, content_string, Rejection, RowLoc};
use crate::rules::dedup::{self, FileRow};
use crate::time::Period;
use rustc_hash::FxHashMap;

/// Executes the shard `job` names from the staged layout at `staged`.
pub fn execute(job: &CloseJob, p: &Prepared, staged: &str) -> Result<Executed, JobError> {
    let shard = job.shard.ok_or_else(|| JobError::Bug("a staged run without a shard".into()))?;
    let lake = Lake::open_with(staged, false, job.store)?;
    let base = format!("billing_period={}/n={}", p.period, shard.n);
    let repeats_dir = format!("{base}/repeats/");
    if lake.list(&repeats_dir)?.is_empty() {
        return Err(JobError::Plan(format!(
            "{}/{repeats_dir} is missing: a staged layout holds the period's repeated record ids there, which the duplicate rule needs",
            lake.url()
        )));
    }
    let mut cache = read_staged(&lake, &format!("{base}/k={}/", shard.k), &p.files)?;
    for f in 0..p.files.len() as u32 {
        cache.entry(f).or_default();
    }
    let verdicts = verdicts(read_staged(&lake, &repeats_dir, &p.files)?, p.period);
    tracing::info!(shard = %shard, duplicates = verdicts.len(), "staged usage read");
    let usage = Usage { lake: &p.input, files: &p.files, cache, keep: true, only: None, whole_what_if: job.whole_what_if, shard: Some(shard) };
    execute::execute_with(job, p, usage, verdicts)
}

/// The duplicate verdicts of the rows whose record id repeats, as the close's
/// duplicate pass judges its suspects: the rows that pass the row checks, by content.
fn verdicts(repeats: FxHashMap<u32, Vec<UsageChunk>>, period: Period) -> FxHashMap<FileRow, Rejection> {
    let mut rows = Vec::new();
    for (f, chunks) in repeats {
        for c in &chunks {
            for r in 0..c.len {
                if let Ok(u) = check_row(c, RowLoc { chunk: 0, row: r as u32 }, period) {
                    rows.push(((f, c.file_row(r)), u.record_id.to_string(), content_string(&u)));
                }
            }
        }
    }
    dedup::verdicts(rows)
}
