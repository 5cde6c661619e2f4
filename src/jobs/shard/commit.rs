//! `billrun commit --period P --shards N`: checks the N shards' results and publishes
//! the period's tables from them, all at once or not at all, byte for byte those of a
//! single close; then removes the shards' results.
//!
//! The checks, before anything is written: every shard has finished (its manifest);
//! each was computed from the inputs the commit sees now (the run id: version,
//! reference tables, usage files) and from the same state of the output lake, with
//! the same N; each holds exactly the accounts the shard function gives it, so every
//! account is in exactly one shard; its files are all there, at the sizes its manifest
//! says; and rows in = rated + rejected across the shards = the rows of the period's
//! usage files, counted from their footers. A failed check is exit 2, naming the
//! shard, and publishes nothing.

use super::merge::merge_table;
use super::{manifest_path, output_fingerprint, ShardManifest};
use crate::decimal::Dec;
use crate::jobs::close::execute::ids_sha256;
use crate::jobs::close::sinks::{shard_table_path, shards_dir, Sinks};
use crate::jobs::close::{self, plan, CloseJob, CloseReport, TABLES};
use crate::jobs::{restate, JobError};
use crate::lake::inputs::count_rows;
use crate::lake::store::Lake;
use crate::shard::Shard;
use crate::time::Period;
use std::collections::BTreeMap;
use std::time::Instant;

/// Commits a period closed in `n` shards. A commit whose shards' results are gone
/// because it already published them (the period's manifest says so, for the same
/// inputs) does nothing and returns that report.
pub fn commit(job: &CloseJob, n: u32) -> Result<CloseReport, JobError> {
    if n == 0 {
        return Err(JobError::Plan("--shards must be at least 1".into()));
    }
    let started = Instant::now();
    let job = CloseJob { shard: None, staged: None, ..job.clone() };
    let prepared = plan::prepare(&job)?;
    let (output, period) = (&prepared.output, prepared.period);
    let manifests = read_manifests(output, period, n)?;
    if manifests.iter().all(Option::is_none) {
        if let Some(done) = already_committed(output, period, n, &prepared.report.run_id)? {
            tracing::info!(period = %period, shards = n, "already committed");
            return Ok(done);
        }
    }
    let manifests = check(&prepared, n, manifests)?;
    let mut report = sum(&prepared.report, &manifests)?;
    report.shards = Some(n);
    let t = Instant::now();
    let mut sinks = Sinks::new(output, period, None);
    for &table in TABLES {
        let schema = close::schema_of(table);
        sinks.create(table, schema.clone())?;
        if table == "bills/restatements" {
            // The restatements published before stay, ahead of this close's.
            for b in restate::read_existing(output, &close::table_path(table, period))? {
                sinks.write(table, 0, &b, || Ok(Vec::new()))?;
            }
        }
        let files: Vec<(String, u64)> = manifests
            .iter()
            .map(|m| {
                let path = shard_table_path(period, Shard { k: m.k, n }, table);
                let size = m.outputs.iter().find(|w| w.path == path).map_or(0, |w| w.bytes);
                (path, size)
            })
            .collect();
        merge_table(output, &files, table, &schema, &mut sinks)?;
    }
    let sealed = sinks.seal()?;
    tracing::info!(period = %period, shards = n, secs = t.elapsed().as_secs_f64(), "merged");
    let report = close::publish_close(&prepared, close::execute::Executed { report, accounts_sha256: String::new(), sealed }, started)?;
    remove_results(output, period, n);
    Ok(report)
}

/// Each shard's manifest, or `None` where it has none.
fn read_manifests(output: &Lake, period: Period, n: u32) -> Result<Vec<Option<(ShardManifest, String)>>, JobError> {
    (0..n)
        .map(|k| {
            let rel = manifest_path(period, Shard { k, n });
            match output.get_opt(&rel)? {
                None => Ok(None),
                Some(bytes) => serde_json::from_slice::<ShardManifest>(&bytes)
                    .map(|m| Some((m, rel.clone())))
                    .map_err(|e| JobError::Plan(format!("shard {k}/{n} of {period}: {rel} is not a shard manifest ({e})"))),
            }
        })
        .collect()
}

/// The period's published report, when it was committed from `n` shards of the same
/// inputs.
fn already_committed(output: &Lake, period: Period, n: u32, run_id: &str) -> Result<Option<CloseReport>, JobError> {
    let Some(bytes) = output.get_opt(&format!("_manifests/billing_period={period}/manifest.json"))? else { return Ok(None) };
    let published: CloseReport = serde_json::from_slice(&bytes).map_err(|e| JobError::Plan(format!("the manifest of {period}: {e}")))?;
    if published.shards != Some(n) || published.run_id != run_id {
        return Ok(None);
    }
    let report = published;
    Ok(Some(report))
}

/// Checks the shards' results against the inputs and each other (see the module).
fn check(p: &plan::Prepared, n: u32, manifests: Vec<Option<(ShardManifest, String)>>) -> Result<Vec<ShardManifest>, JobError> {
    let (output, period) = (&p.output, p.period);
    let fingerprint = output_fingerprint(output, period)?;
    let mut ids: Vec<Vec<&str>> = vec![Vec::new(); n as usize];
    let mut sorted: Vec<&str> = p.reference.accounts.iter().map(|a| a.account_id.as_str()).collect();
    sorted.sort_unstable();
    for id in sorted {
        ids[Shard::of(Some(id), n) as usize].push(id);
    }
    let listed: BTreeMap<String, u64> = output.list(&format!("{}/", shards_dir(period, n)))?.into_iter().map(|l| (l.path, l.size)).collect();
    let mut out = Vec::with_capacity(n as usize);
    for (k, m) in manifests.into_iter().enumerate() {
        let name = format!("shard {k}/{n} of {period}");
        let Some((m, rel)) = m else {
            return Err(JobError::Plan(format!(
                "{name} has no results ({} is missing: the shard did not run or did not finish); nothing was published",
                manifest_path(period, Shard { k: k as u32, n })
            )));
        };
        if m.period != period.to_string() || m.k != k as u32 || m.n != n {
            return Err(JobError::Plan(format!("{name}: {rel} is the manifest of shard {}/{} of {}; nothing was published", m.k, m.n, m.period)));
        }
        if m.run_id != p.report.run_id {
            return Err(JobError::Plan(format!(
                "{name} is stale: computed from other inputs (run {}, the inputs now give run {}); re-run the shard; nothing was published",
                m.run_id, p.report.run_id
            )));
        }
        if m.output_fingerprint != fingerprint {
            return Err(JobError::Plan(format!(
                "{name} is stale: the output lake's state, published tables or hourly settlements changed since it ran; re-run the shard; nothing was published"
            )));
        }
        let mine = &ids[k];
        if m.report.accounts != mine.len() || m.accounts_sha256 != ids_sha256(mine.iter().copied()) {
            return Err(JobError::Plan(format!(
                "{name} holds {} accounts, but the shard function gives it {} (or other ones); nothing was published",
                m.report.accounts,
                mine.len()
            )));
        }
        for &table in TABLES {
            let path = shard_table_path(period, Shard { k: k as u32, n }, table);
            let written = m.outputs.iter().find(|w| w.path == path);
            match (written, listed.get(&path)) {
                (Some(w), Some(&size)) if w.bytes == size => {}
                _ => {
                    return Err(JobError::Plan(format!(
                        "{name} is partial: {path} is missing or not as its manifest says; re-run the shard; nothing was published"
                    )))
                }
            }
        }
        let (rows_in, rated, rejected) = (m.report.rows_in, m.report.rows_rated, m.rows_rejected());
        if rated + rejected != rows_in {
            return Err(JobError::Conservation(format!("{name}: {rows_in} rows in, {rated} rated, {rejected} rejected")));
        }
        out.push(m);
    }
    let period_rows: u64 = p.files.iter().map(|f| count_rows(&p.input, f)).sum::<Result<u64, _>>()?;
    let rows_in: u64 = out.iter().map(|m| m.report.rows_in).sum();
    if rows_in != period_rows {
        return Err(JobError::Conservation(format!("the {n} shards of {period} hold {rows_in} usage rows; the period's usage files hold {period_rows}")));
    }
    Ok(out)
}

/// The period's report: the shards' figures summed.
fn sum(base: &CloseReport, shards: &[ShardManifest]) -> Result<CloseReport, JobError> {
    let mut r = CloseReport { outputs: Vec::new(), ..base.clone() };
    let mut due: BTreeMap<String, Dec> = BTreeMap::new();
    for s in shards {
        let m = &s.report;
        r.accounts += m.accounts;
        r.rows_in += m.rows_in;
        r.rows_rated += m.rows_rated;
        r.lines += m.lines;
        r.alerts += m.alerts;
        r.accounts_in_arrears += m.accounts_in_arrears;
        r.restated += m.restated;
        r.settlement_changes += m.settlement_changes;
        for (k, v) in &m.rejected {
            *r.rejected.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &m.rejected_orders {
            *r.rejected_orders.entry(k.clone()).or_default() += v;
        }
        for (cur, v) in &m.total_due {
            let v = Dec::parse(v).ok_or_else(|| JobError::Plan(format!("shard {}/{}: total due '{v}' is not a decimal", s.k, s.n)))?;
            let e = due.entry(cur.clone()).or_default();
            *e = e.plus(v, "total due")?;
        }
    }
    r.total_due = due.into_iter().map(|(k, v)| (k, v.to_string())).collect();
    Ok(r)
}

/// Removes the shards' results once published. A leftover is only clutter: the next
/// commit finds the period's manifest and does nothing.
fn remove_results(output: &Lake, period: Period, n: u32) {
    let dir = format!("{}/", shards_dir(period, n));
    let listed = match output.list(&dir) {
        Ok(l) => l,
        Err(e) => return tracing::warn!(error = %e, "listing the shards' results to remove them"),
    };
    // Manifests first: a shard without one no longer counts.
    let (manifests, rest): (Vec<_>, Vec<_>) = listed.into_iter().partition(|l| l.path.ends_with("/manifest.json"));
    for l in manifests.into_iter().chain(rest) {
        if let Err(e) = output.delete(&l.path) {
            tracing::warn!(path = %l.path, error = %e, "removing a shard's result");
        }
    }
}
