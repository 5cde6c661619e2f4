//! The cost tables: `cost/analysis` (composition, trends, top resources, forecast,
//! period-over-period, in one long table with a `view` column) and `cost/allocation`
//! (with the FOCUS 1.3 allocation columns).

use super::{CostBook, Sums};
use crate::decimal::Dec;
use crate::lake::outputs::*;
use crate::time::{Period, DAY};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::sync::Arc;

pub fn analysis_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("view", DataType::Utf8, false),
        Field::new("dimension", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("date", ts_type(), true),
        Field::new("rank", DataType::Int32, true),
        Field::new("billed_cost", dec_type(), true),
        Field::new("effective_cost", dec_type(), false),
        Field::new("list_cost", dec_type(), true),
        Field::new("previous_effective_cost", dec_type(), true),
        Field::new("change_pct", dec_type(), true),
        Field::new("forecast_effective_cost", dec_type(), true),
    ]))
}

#[derive(Default)]
struct Row {
    account: u32,
    view: &'static str,
    dimension: Cow<'static, str>,
    key: String,
    date: Option<i64>,
    rank: Option<i32>,
    sums: Option<Sums>,
    effective: Dec,
    previous: Option<Dec>,
    change_pct: Option<Dec>,
    forecast: Option<Dec>,
}

/// `(cur − prev) / prev × 100`, rounded half away from zero to 2 places.
pub fn change_pct(cur: Dec, prev: Dec) -> Option<Dec> {
    if prev.is_zero() {
        return None;
    }
    // A percentage is not money: a change too large for 38 digits is shown as none.
    let diff = cur.checked_sub(prev)?;
    crate::decimal::mul_div_round(diff.0, 100 * 10_000_000_000, prev.0).and_then(Dec::within).map(|v| v.round_dp(2))
}

/// Rows of a batch of the analysis table: the close writes it in batches of this many
/// rows as it computes them, so that a large region's analysis (millions of rows) is
/// never held whole; the commit of a period in shards writes the same batches.
pub const ANALYSIS_BATCH_ROWS: usize = 64 * 1024;

/// The analysis rows of a period, handed to `each` in batches of
/// [`ANALYSIS_BATCH_ROWS`] (the last one shorter; one empty batch for no rows).
/// `previous` holds each account's total effective cost of the period before, where
/// it was closed.
pub fn analysis_batches<E: From<crate::decimal::Overflow> + From<crate::lake::inputs::InputError>>(
    book: &CostBook,
    composition: &[super::views::Composed],
    n: &Names<'_>,
    previous: &FxHashMap<String, Dec>,
    each: impl FnMut(RecordBatch) -> Result<(), E>,
) -> Result<(), E> {
    let period: Period = n.period;
    let mut out = Batches { rows: Vec::with_capacity(ANALYSIS_BATCH_ROWS), names: n, each, written: false };
    let name = |k| super::views::name(&book.names, k).map(str::to_string);
    for c in composition {
        out.push(Row {
            account: c.account,
            view: "composition",
            dimension: super::DIMS[c.dim as usize].into(),
            key: name(c.key)?,
            sums: Some(c.sums),
            effective: c.sums.effective,
            ..Row::default()
        })?;
    }
    let super::views::Trends { daily, monthly } = super::views::trends(book)?;
    for &(acct, day, s) in &daily {
        out.push(Row {
            account: acct,
            view: "daily",
            dimension: "day".into(),
            key: crate::time::format_ts(day * DAY)[..10].to_string(),
            date: Some(day * DAY),
            sums: Some(s),
            effective: s.effective,
            ..Row::default()
        })?;
    }
    // The forecasts, after every daily row: each day's month to date, at the pace so
    // far, carried to the period's end.
    let days_in_period = (period.end() - period.start()) / DAY;
    let mut to_date = (u32::MAX, Dec::ZERO);
    for &(acct, day, s) in &daily {
        if to_date.0 != acct {
            to_date = (acct, Dec::ZERO);
        }
        to_date.1 = to_date.1.plus(s.effective, "cost total")?;
        let elapsed = (day * DAY - period.start()) / DAY + 1;
        if (1..=days_in_period).contains(&elapsed) {
            let f = crate::decimal::mul_div_round(to_date.1 .0, days_in_period as i128, elapsed as i128)
                .and_then(Dec::within)
                .ok_or(crate::decimal::Overflow { figure: "forecast" })?
                .round_dp(2);
            out.push(Row {
                account: acct,
                view: "forecast",
                dimension: "month_to_date".into(),
                key: crate::time::format_ts(day * DAY)[..10].to_string(),
                date: Some(day * DAY),
                effective: to_date.1,
                forecast: Some(f),
                ..Row::default()
            })?;
        }
    }
    drop(daily);
    for (i, a) in n.accounts.iter().enumerate() {
        let acct = i as u32;
        let m = monthly.get(&acct).copied().unwrap_or_default();
        out.push(Row {
            account: acct,
            view: "monthly",
            dimension: "period".into(),
            key: period.to_string(),
            date: Some(period.start()),
            sums: Some(m),
            effective: m.effective,
            ..Row::default()
        })?;
        let prev = previous.get(&a.account_id).copied();
        out.push(Row {
            account: acct,
            view: "period_over_period",
            dimension: "period".into(),
            key: period.to_string(),
            effective: m.effective,
            previous: prev,
            change_pct: prev.and_then(|p| change_pct(m.effective, p)),
            ..Row::default()
        })?;
    }
    let mut rank = (u32::MAX, 0);
    for (acct, r, s) in super::views::top_resources(book)? {
        rank = if rank.0 == acct { (acct, rank.1 + 1) } else { (acct, 1) };
        out.push(Row {
            account: acct,
            view: "top_resources",
            dimension: "resource".into(),
            key: name(r)?,
            rank: Some(rank.1),
            sums: Some(s),
            effective: s.effective,
            ..Row::default()
        })?;
    }
    // The allocation roll-ups (by enterprise project, by tag key and value).
    super::rollups::rollups(book, |r| {
        out.push(Row { account: r.account, view: "allocation", dimension: r.dimension.into(), key: r.key, effective: r.effective, ..Row::default() })
    })?;
    out.finish()
}

/// Rows gathered into batches of [`ANALYSIS_BATCH_ROWS`], each handed on when full.
struct Batches<'n, 'a, F> {
    rows: Vec<Row>,
    names: &'n Names<'a>,
    each: F,
    written: bool,
}

impl<E, F: FnMut(RecordBatch) -> Result<(), E>> Batches<'_, '_, F> {
    fn push(&mut self, row: Row) -> Result<(), E> {
        self.rows.push(row);
        if self.rows.len() == ANALYSIS_BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), E> {
        let batch = analysis_columns(&self.rows, self.names);
        self.rows.clear();
        self.written = true;
        (self.each)(batch)
    }

    fn finish(mut self) -> Result<(), E> {
        if !self.rows.is_empty() || !self.written {
            self.flush()?;
        }
        Ok(())
    }
}

fn analysis_columns(rows: &[Row], n: &Names<'_>) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        col_str(rows.iter().map(|r| Some(n.account(r.account).account_id.as_str()))),
        col_str(rows.iter().map(|r| Some(n.account(r.account).currency.as_str()))),
        col_str(rows.iter().map(|r| Some(r.view))),
        col_str(rows.iter().map(|r| Some(r.dimension.as_ref()))),
        col_str(rows.iter().map(|r| Some(r.key.as_str()))),
        col_ts(rows.iter().map(|r| r.date)),
        col_i32(rows.iter().map(|r| r.rank)),
        col_dec(rows.iter().map(|r| r.sums.map(|s| s.billed))),
        col_dec(rows.iter().map(|r| Some(r.effective))),
        col_dec(rows.iter().map(|r| r.sums.map(|s| s.list))),
        col_dec(rows.iter().map(|r| r.previous)),
        col_dec(rows.iter().map(|r| r.change_pct)),
        col_dec(rows.iter().map(|r| r.forecast)),
    ];
    RecordBatch::try_new(analysis_schema(), cols).expect("analysis columns match the schema")
}

pub fn allocation_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("BillingCurrency", DataType::Utf8, false),
        Field::new("ResourceId", DataType::Utf8, true),
        Field::new("AllocatedResourceId", DataType::Utf8, true),
        Field::new("AllocatedMethodId", DataType::Utf8, false),
        Field::new("AllocatedMethodDetails", DataType::Utf8, false),
        Field::new("AllocatedTags", DataType::Utf8, true),
        Field::new("x_EnterpriseProject", DataType::Utf8, true),
        Field::new("EffectiveCost", dec_type(), false),
    ]))
}

pub fn allocation_batch(book: &CostBook, n: &Names<'_>) -> RecordBatch {
    let mut rows: Vec<_> = book.allocation.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let cols: Vec<ArrayRef> = vec![
        col_str(rows.iter().map(|(k, _)| Some(n.account(k.account).account_id.as_str()))),
        col_str(rows.iter().map(|(k, _)| Some(n.account(k.account).currency.as_str()))),
        col_str(rows.iter().map(|(k, _)| k.source.as_deref())),
        col_str(rows.iter().map(|(k, _)| k.target.as_deref())),
        col_str(rows.iter().map(|(k, _)| Some(k.method.id()))),
        col_str(rows.iter().map(|(k, _)| Some(k.method.details()))),
        col_str(rows.iter().map(|(k, _)| k.tags.as_deref())),
        col_str(rows.iter().map(|(k, _)| k.project.as_deref())),
        col_dec(rows.iter().map(|(_, v)| Some(**v))),
    ];
    RecordBatch::try_new(allocation_schema(), cols).expect("allocation columns match the schema")
}

pub fn recommendations_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("recommendation_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("resource_id", DataType::Utf8, true),
        Field::new("sku", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("action", DataType::Utf8, false),
        Field::new("estimated_saving", dec_type(), false),
        Field::new("verified_by_rerating", DataType::Boolean, false),
        Field::new("current_cost", dec_type(), true),
        Field::new("alternative_cost", dec_type(), true),
        Field::new("evidence", DataType::Utf8, false),
        Field::new("purchase", DataType::Utf8, true),
    ]))
}

fn purchase_json(p: &super::recommend::Purchase) -> String {
    use super::recommend::Purchase;
    use crate::time::format_ts;
    match p {
        Purchase::Subscription(s) => serde_json::json!({
            "type": "subscription", "resource_id": s.resource_id, "sku": s.sku, "region": s.region,
            "nodes": s.nodes, "unit_count": s.unit_count, "term_unit": s.term_unit.as_str(), "term_count": s.term_count,
            "ordered_at": format_ts(s.ordered_at), "start_at": format_ts(s.start_at), "end_at": format_ts(s.end_at),
        }),
        Purchase::Package(p) => serde_json::json!({
            "type": "package", "sku": p.sku, "region": p.region, "package_count": p.package_count,
            "hours_per_package": p.hours_per_package.to_string(), "price": p.price.to_string(),
            "purchased_at": format_ts(p.purchased_at), "effective_from": format_ts(p.effective_from),
            "expires_at": format_ts(p.expires_at), "reset_period": p.reset_period.as_str(),
        }),
    }
    .to_string()
}

pub fn recommendations_batch(recs: &[super::recommend::Recommendation], n: &Names<'_>) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        col_str(recs.iter().map(|r| Some(n.account(r.account).account_id.as_str()))),
        col_str(recs.iter().map(|r| Some(n.account(r.account).currency.as_str()))),
        col_str(recs.iter().map(|r| Some(r.id.as_str()))),
        col_str(recs.iter().map(|r| Some(r.kind))),
        col_str(recs.iter().map(|r| r.resource.as_deref())),
        col_str(recs.iter().map(|r| r.sku.as_deref())),
        col_str(recs.iter().map(|r| r.region.as_deref())),
        col_str(recs.iter().map(|r| Some(r.action.as_str()))),
        col_dec(recs.iter().map(|r| Some(r.saving))),
        col_bool(recs.iter().map(|r| Some(r.verified))),
        col_dec(recs.iter().map(|r| r.current_cost)),
        col_dec(recs.iter().map(|r| r.alternative_cost)),
        col_str(recs.iter().map(|r| Some(r.evidence.as_str()))),
        col_string(recs.iter().map(|r| r.purchase.as_ref().map(purchase_json))),
    ];
    RecordBatch::try_new(recommendations_schema(), cols).expect("recommendation columns match the schema")
}
