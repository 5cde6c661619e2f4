//! The plan of a close: what it reads and writes, and — for a run — the period's
//! lock, reference data, opening state and usage files, before anything is rated.

use super::{table_path, CloseJob, CloseReport, InputRead, TABLES};
use crate::engine::Opening;
use crate::jobs::lock::Lock;
use crate::jobs::JobError;
use crate::lake::inputs::{self, list_usage, UsageFile};
use crate::lake::state::read_state;
use crate::lake::store::Lake;
use crate::model::Reference;
use crate::time::{Micros, Period};
use std::collections::BTreeMap;

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
    let input = Lake::open_with(&job.input, false, job.store)?;
    let period = job.period;
    let opens_from = if after_previous {
        format!("the state of {} (closed first by this backfill)", period.prev())
    } else {
        let closed = match Lake::open_with(&job.output, false, job.store) {
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

/// Everything a close reads before it rates: the second stage starts from this.
pub struct Prepared {
    pub period: Period,
    pub input: Lake,
    pub output: Lake,
    /// Held until the period is published (or the run fails).
    pub _lock: Lock,
    pub reference: Reference,
    pub offers: Vec<crate::cost::recommend::Offer>,
    pub opening: Opening,
    /// The period's usage files, in path order, and their indexes by partition hour.
    pub files: Vec<UsageFile>,
    pub hours: BTreeMap<Micros, Vec<u32>>,
    /// Whether the decoded month fits the cache (decoded once, kept for rating).
    pub keep_decoded: bool,
    /// The hours the hourly runs settled this period (their settlements are compared).
    pub hourly_hours: std::collections::BTreeSet<Micros>,
    /// The report so far: the run's identity and every input read.
    pub report: CloseReport,
}

/// Takes the period's lock and reads what the close needs, rating nothing.
pub fn prepare(job: &CloseJob) -> Result<Prepared, JobError> {
    let input = Lake::open_with(&job.input, false, job.store)?;
    let output = Lake::open_with(&job.output, true, job.store)?;
    let period = job.period;
    // A shard run holds its shard's lock, so that the N shards run at once; the
    // commit, like a close, holds the period's.
    let scope = match job.shard {
        Some(s) => format!("billing_period={period}.shard={}-of-{}", s.k, s.n),
        None => format!("billing_period={period}"),
    };
    let lock = Lock::acquire(&output, &scope, &format!("pid-{}", std::process::id()), job.stale_lock)?;
    let reference = inputs::read_reference(&input, job.windows)?;
    let offers = inputs::read_offers(&input)?;
    let opening = opening_state(&output, period)?;
    let files = list_usage(&input, period)?;
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    tracing::info!(period = %period, files = files.len(), bytes = total_bytes, "plan");
    let mut hours: BTreeMap<Micros, Vec<u32>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        hours.entry(f.partition_hour).or_default().push(i as u32);
    }
    let hourly_hours =
        output.list(&format!("hourly/settlements/billing_period={period}/"))?.iter().filter_map(|l| crate::jobs::hourly::file_hour(&l.path)).collect();
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
    let report = CloseReport {
        period: period.to_string(),
        usage_files: files.len(),
        version: env!("CARGO_PKG_VERSION").into(),
        run_id,
        input_lake: job.input.clone(),
        output_lake: job.output.clone(),
        inputs: inputs_read,
        ..Default::default()
    };
    Ok(Prepared {
        period,
        input,
        output,
        _lock: lock,
        reference,
        offers,
        opening,
        files,
        hours,
        keep_decoded: total_bytes <= job.cache_bytes,
        hourly_hours,
        report,
    })
}
