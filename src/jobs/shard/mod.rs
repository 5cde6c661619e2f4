//! A period closed in shards of accounts (data contract, "Shards"): `billrun run
//! --period P --shard K/N` executes the period for the accounts of shard K and writes
//! its results and a manifest under `_shards/billing_period=P/n=N/k=K/`, publishing
//! nothing; `billrun commit --period P --shards N` checks the N results and publishes
//! the period's tables, byte for byte those of a single close (`commit.rs`, with the
//! merge in `merge.rs`).
//!
//! A shard run is a close's plan and execution (`jobs/close`) with the engine built
//! for the shard's accounts (`Engine::of_accounts`), the usage decoded for the shard's
//! rows, and the tables written with their merge keys (`close/sinks.rs`). The
//! duplicate pass still reads every row's record id: a record id repeated across
//! accounts is judged as a single close judges it, so every shard holds the verdicts
//! of its own rows. With `--usage`, the shard's rows come from a staged layout
//! instead (`staged.rs`).

mod commit;
mod merge;
pub mod staged;

pub use commit::commit;

use super::close::sinks::shard_dir;
use super::close::{execute, plan, CloseJob, CloseReport};
use super::JobError;
use crate::lake::outputs::Written;
use crate::lake::store::Lake;
use crate::shard::Shard;
use crate::time::Period;
use std::time::Instant;

/// A shard's manifest: what it was computed from and what it wrote. Written last, so
/// a shard without one did not finish.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ShardManifest {
    pub period: String,
    pub k: u32,
    pub n: u32,
    /// The run's identity (version, reference tables, usage files): equal in every
    /// shard of one commit.
    pub run_id: String,
    /// What the shard read from the output lake (previous state, published tables of
    /// the period, hourly settlements): equal in every shard, and at the commit.
    pub output_fingerprint: String,
    /// SHA-256 of the shard's account ids, one a line, in order.
    pub accounts_sha256: String,
    /// The shard's figures (accounts, rows in, rated and rejected by reason, …),
    /// summed by the commit into the period's report.
    pub report: CloseReport,
    /// Every table the shard wrote.
    pub outputs: Vec<Written>,
}

impl ShardManifest {
    /// The shard's usage rows rejected, for every reason.
    pub fn rows_rejected(&self) -> u64 {
        self.report.rejected.values().sum()
    }
}

/// Where shard `shard`'s manifest lies.
pub fn manifest_path(period: Period, shard: Shard) -> String {
    format!("{}/manifest.json", shard_dir(period, shard))
}

/// Runs one shard of a period: executes it for the shard's accounts, writes its
/// results and then its manifest. Re-running a shard replaces its results.
pub fn run(job: &CloseJob) -> Result<ShardManifest, JobError> {
    let shard = job.shard.ok_or_else(|| JobError::Bug("a shard run without a shard".into()))?;
    let started = Instant::now();
    let prepared = plan::prepare(job)?;
    let (output, period) = (&prepared.output, prepared.period);
    // The results of an earlier run of this shard stop counting before any is replaced.
    output.delete(&manifest_path(period, shard))?;
    let fingerprint = output_fingerprint(output, period)?;
    let executed = match &job.staged {
        Some(staged) => staged::execute(job, &prepared, staged)?,
        None => execute::execute(job, &prepared)?,
    };
    let mut outputs = Vec::with_capacity(executed.sealed.len());
    for (_, (w, sealed)) in executed.sealed {
        sealed.complete()?;
        outputs.push(w);
    }
    let mut report = executed.report;
    report.seconds = started.elapsed().as_secs_f64();
    let manifest = ShardManifest {
        period: period.to_string(),
        k: shard.k,
        n: shard.n,
        run_id: report.run_id.clone(),
        output_fingerprint: fingerprint,
        accounts_sha256: executed.accounts_sha256,
        report,
        outputs,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(|e| JobError::Bug(format!("shard manifest: {e}")))?;
    output.put(&manifest_path(period, shard), body.into())?;
    tracing::info!(period = %period, shard = %shard, rows = manifest.report.rows_in, secs = started.elapsed().as_secs_f64(), "shard written");
    Ok(manifest)
}

/// A digest of what a close reads from its output lake besides its inputs: the state
/// it opens from, the period's published invoices, restatements and manifest, the
/// previous period's cost analysis, and the hourly settlements (by path, size and
/// e-tag). Shards computed against another version of these are stale.
pub fn output_fingerprint(output: &Lake, period: Period) -> Result<String, JobError> {
    use sha2::Digest;
    let prev = period.prev();
    let mut h = sha2::Sha256::new();
    for prefix in [
        format!("state/billing_period={prev}/"),
        format!("cost/analysis/billing_period={prev}/"),
        format!("bills/invoices/billing_period={period}/"),
        format!("bills/restatements/billing_period={period}/"),
        format!("_manifests/billing_period={period}/"),
        format!("hourly/settlements/billing_period={period}/"),
    ] {
        for l in output.list(&prefix)? {
            h.update(l.path.as_bytes());
            h.update(l.size.to_le_bytes());
            h.update(l.e_tag.as_deref().unwrap_or("").as_bytes());
            h.update(b"\n");
        }
    }
    Ok(h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
}
