//! The hourly run: settle the hours since the last checkpoint up to the one asked,
//! publish their settlements and alerts, and checkpoint the state (balances, tier
//! cumulatives, quotas, arrears, alert flags) for the next hour.
//!
//! The hourly run uses the same engine as the close, so an hour settled hourly and
//! the same hour settled by the close agree — unless usage arrived late, or a record
//! id repeats across hours, which only the close sees whole. The close compares its
//! settlements with the ones published hourly and records every difference in
//! `bills/settlement_changes`.

use super::close::{self, CloseJob};
use super::JobError;
use crate::engine::Engine;
use crate::lake::inputs::{self, list_usage};
use crate::lake::outputs::{self as out, Ids, Names, TableSink};
use crate::lake::store::Lake;
use crate::time::{format_ts, hour_floor, Micros, Period, HOUR};

/// What an hourly run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HourReport {
    pub hour: String,
    pub hours_settled: Vec<String>,
    pub settlements: usize,
    pub alerts: usize,
    pub rows_in: u64,
    pub rows_rated: u64,
}

pub fn checkpoint_path(period: Period) -> String {
    format!("_checkpoints/billing_period={period}/checkpoint.json")
}

/// `hourly/settlements/billing_period=P/hour=YYYY-MM-DDTHH.parquet`
pub fn hourly_path(table: &str, hour: Micros) -> String {
    let p = Period::containing(hour).map(|p| p.to_string()).unwrap_or_default();
    format!("hourly/{table}/billing_period={p}/hour={}.parquet", &format_ts(hour)[..13])
}

/// The hour of an hourly run's file (the inverse of [`hourly_path`]).
pub(crate) fn file_hour(path: &str) -> Option<Micros> {
    path.rsplit("hour=").next().and_then(|s| s.strip_suffix(".parquet")).and_then(crate::time::parse_hour)
}

pub fn run(job: &CloseJob, hour: Micros) -> Result<HourReport, JobError> {
    let hour = hour_floor(hour);
    let period = Period::containing(hour).ok_or_else(|| JobError::Plan("hour out of range".into()))?;
    let input = Lake::open_with(&job.input, false, job.store)?;
    let output = Lake::open_with(&job.output, true, job.store)?;
    let _lock = super::lock::Lock::acquire(&output, &format!("billing_period={period}"), &format!("pid-{}", std::process::id()), job.stale_lock)?;
    if output.exists(&close::table_path("state", period))? {
        return Err(JobError::Plan(format!("period {period} is closed: its hours are settled by the close (re-close it to pick up late usage)")));
    }
    let reference = inputs::read_reference(&input, job.windows)?;
    let opening = close::opening_state(&output, period)?;
    let mut engine = Engine::new(reference, period, &opening).map_err(JobError::Plan)?;
    let ckpt = checkpoint_path(period);
    let mut from = period.start();
    if let Some(bytes) = output.get_opt(&ckpt)? {
        let c: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| JobError::Plan(format!("{ckpt}: {e}")))?;
        let last = c["last_hour"].as_i64().ok_or_else(|| JobError::Plan(format!("{ckpt}: no last_hour")))?;
        if last >= hour {
            return Err(JobError::Plan(format!(
                "{} is already settled (the checkpoint is at {}); late usage is picked up by the close",
                format_ts(hour),
                format_ts(last)
            )));
        }
        engine.restore(c["state"].clone()).map_err(|e| JobError::Plan(format!("{ckpt}: {e}")))?;
        from = last + HOUR;
    }
    let files: Vec<_> = list_usage(&input, period)?.into_iter().filter(|f| f.partition_hour >= from && f.partition_hour <= hour).collect();
    let ids = Ids::new(period, &engine.accounts, &engine.catalog);
    let mut report = HourReport { hour: format_ts(hour), ..Default::default() };
    let mut published: Vec<(Micros, arrow_array::RecordBatch, arrow_array::RecordBatch)> = Vec::new();
    close::rate_files(&input, &files, period, job.cache_bytes, &mut engine, |engine, res, _chunks| {
        let names = Names::new(period, &engine.accounts, &engine.catalog, &engine.packages, &engine.subs, &files, &ids);
        report.rows_in += res.rows_in;
        report.rows_rated += res.rows_rated;
        report.settlements += res.settlements.len();
        report.alerts += res.alerts.len();
        published.push((res.hour, out::settlements_batch(&res.settlements, &names), out::alerts_batch(&res.alerts, &names)));
        Ok(())
    })?;
    // Every hour of the range is published, with or without usage, so the close can
    // tell which hours were settled hourly. Each file goes through the lake's writer
    // and is sealed; the files are made visible together once all are uploaded, and
    // the checkpoint last.
    let mut sealed = Vec::new();
    let mut h = from;
    while h <= hour {
        let (s, a) = match published.iter().find(|p| p.0 == h) {
            Some((_, s, a)) => (s.clone(), a.clone()),
            None => (arrow_array::RecordBatch::new_empty(out::settlements_schema()), arrow_array::RecordBatch::new_empty(out::alerts_schema())),
        };
        for (table, batch) in [("settlements", s), ("alerts", a)] {
            let mut sink = TableSink::create(&output, &hourly_path(table, h), batch.schema())?;
            sink.write(&output, &batch)?;
            sealed.push(sink.seal(&output)?.1);
        }
        report.hours_settled.push(format_ts(h));
        h += HOUR;
    }
    for done in output.complete_all(sealed) {
        done?;
    }
    let snapshot = engine.snapshot().map_err(|e| JobError::Bug(format!("checkpoint: {e}")))?;
    let state = serde_json::json!({ "last_hour": hour, "state": snapshot });
    let state = serde_json::to_vec(&state).map_err(|e| JobError::Bug(format!("checkpoint: {e}")))?;
    output.put(&ckpt, state.into())?;
    Ok(report)
}
