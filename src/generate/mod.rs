//! Synthetic input lakes, from a seed: realistic accounts, resources and usage for the
//! demo, the tests and the benchmarks. Every rule of the billing rules has rows that
//! exercise it, and (with anomalies on) every rejection reason occurs.
//!
//! Shape: a few large accounts and many small ones; most rows are compute (CPU, GPU and
//! NPU flavors, billed as multiples of their billing code) and storage; notebooks carry
//! an EVS disk, ExeML projects training, deployment and notifications; dedicated pools
//! run jobs, one scales hour by hour; packages with different expiries and resets;
//! subscriptions that renew, expire into grace and retention, or refuse scaling.

pub(crate) mod rng;
pub mod usage;

pub use rng::Rng;

use crate::decimal::Dec;
use crate::lake::outputs::{col_dec, col_i32, col_str, col_string, col_ts};
use crate::lake::store::{Lake, LakeError};
use crate::model::*;
use crate::time::{add_months, Micros, Period, DAY, HOUR};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use std::sync::Arc;

pub use usage::{Resource, Schedule};

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub seed: u64,
    pub from: Period,
    pub months: u32,
    pub accounts: usize,
    /// Ordinary resources per account, on average (large accounts get more).
    pub resources_per_account: usize,
    /// Inject rows that break each rule (one of every rejection reason).
    pub anomalies: bool,
    /// Write usage for the first this-many days of each month only (None: all).
    pub days: Option<u32>,
    /// Pay-per-use only: no packages, subscriptions or dedicated pools, balances that
    /// never run out, no unpriced usage (the lakes of the SQL peer benchmark).
    pub ppu_only: bool,
    /// Minutes a time-metered row covers at most (a divisor of 60): 60 writes one row
    /// per resource and hour; 20 cuts each hour's use into rows at :20 and :40, as a
    /// platform that meters finer does. Counted usage (messages, log volume) stays one
    /// row an hour.
    pub meter_minutes: u32,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            from: Period { year: 2026, month: 1 },
            months: 1,
            accounts: 40,
            resources_per_account: 6,
            anomalies: true,
            days: None,
            ppu_only: false,
            meter_minutes: 60,
        }
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GenReport {
    pub accounts: usize,
    pub resources: usize,
    pub usage_rows: u64,
    pub usage_files: u64,
    pub packages: usize,
    pub subscriptions: usize,
    pub payments: usize,
}

pub const REGIONS: &[&str] = &["ap-southeast-1", "ap-southeast-3"];

fn d(s: &str) -> Dec {
    Dec::parse(s).expect("literal decimal")
}

/// The catalog: pay-per-use compute, storage, notification and log prices (with
/// graduated tiers and a free tier), yearly/monthly prices for subscribable flavors, a
/// mid-period price change, a SKU priced in one region only and a currency gap.
pub fn catalog(from: Period, months: u32) -> Vec<PriceRow> {
    let start = add_months(from.start(), -24).unwrap_or(from.start());
    let change = from.start() + 14 * DAY; // the 15th of the first month, 00:00
    let mut rows = Vec::new();
    let mut push =
        |sku: &str, region: &str, mode: BillingMode, unit: PricingUnit, cur: &str, price: &str, tier: &str, f: Micros, t: Option<Micros>, item: BillingItem| {
            rows.push(PriceRow {
                sku: sku.into(),
                region: region.into(),
                billing_mode: mode,
                pricing_unit: unit,
                currency: cur.into(),
                unit_price: d(price),
                tier_start: d(tier),
                effective_from: f,
                effective_to: t,
                billing_item: item,
                description: Some(format!("{sku} {}", unit)),
                row: 0,
            });
        };
    use BillingItem as B;
    use BillingMode::*;
    use PricingUnit as U;
    let compute: &[(&str, &str, &str)] = &[
        ("modelarts.vm.cpu.2u", "0.1024", "0.0941"),
        ("modelarts.vm.gpu.t4", "1.2960", "1.1923"),
        ("modelarts.vm.gpu.v100", "3.4272", "3.1530"),
        ("modelarts.vm.npu.910b", "4.8365", "4.4496"),
    ];
    for region in REGIONS {
        for (sku, usd, eur) in compute {
            if *sku == "modelarts.vm.gpu.t4" && *region == REGIONS[0] {
                // Price change on an hour boundary inside the first month.
                push(sku, region, PayPerUse, U::NodeHour, "USD", usd, "0", start, Some(change), B::Compute);
                push(sku, region, PayPerUse, U::NodeHour, "USD", "1.1840", "0", change, None, B::Compute);
            } else {
                push(sku, region, PayPerUse, U::NodeHour, "USD", usd, "0", start, None, B::Compute);
            }
            // Graduated compute discount past 2,000 node-hours a month.
            push(sku, region, PayPerUse, U::NodeHour, "USD", &scale(usd, "0.85"), "2000", start, None, B::Compute);
            if *region == REGIONS[0] && !sku.contains("npu") {
                // No EUR price for NPUs: EUR accounts' NPU usage is a currency mismatch.
                push(sku, region, PayPerUse, U::NodeHour, "EUR", eur, "0", start, None, B::Compute);
                push(sku, region, PayPerUse, U::NodeHour, "EUR", &scale(eur, "0.85"), "2000", start, None, B::Compute);
            }
            for (cur, p) in [("USD", usd), ("EUR", eur)] {
                if *region == REGIONS[1] && cur == "EUR" {
                    continue;
                }
                push(sku, region, YearlyMonthly, U::NodeMonth, cur, &scale(p, "504"), "0", start, None, B::Compute);
                push(sku, region, YearlyMonthly, U::NodeYear, cur, &scale(p, "5040"), "0", start, None, B::Compute);
            }
        }
        // An A100 flavor priced only in the second region.
        if *region == REGIONS[1] {
            push("modelarts.vm.gpu.a100", region, PayPerUse, U::NodeHour, "USD", "6.9120", "0", start, None, B::Compute);
        }
        for cur in ["USD", "EUR"] {
            if *region == REGIONS[1] && cur == "EUR" {
                continue;
            }
            push("obs.standard", region, PayPerUse, U::GbHour, cur, "0.0000325", "0", start, None, B::ObjectStorage);
            push("obs.standard", region, PayPerUse, U::GbHour, cur, "0.0000300", "500000", start, None, B::ObjectStorage);
            push("sfs.capacity", region, PayPerUse, U::GbHour, cur, "0.0003", "0", start, None, B::FileStorage);
            push("evs.ssd", region, PayPerUse, U::GbHour, cur, "0.000139", "0", start, None, B::BlockStorage);
            push("smn.sms", region, PayPerUse, U::Count, cur, "0.0075", "0", start, None, B::Notification);
            push("smn.email", region, PayPerUse, U::Count, cur, "0.00002", "0", start, None, B::Notification);
            push("smn.http", region, PayPerUse, U::Count, cur, "0.0000006", "0", start, None, B::Notification);
            push("smn.traffic", region, PayPerUse, U::Gb, cur, "0.09", "0", start, None, B::Notification);
            // The first 0.5 GB of log ingestion each month is free.
            push("lts.ingest", region, PayPerUse, U::Gb, cur, "0", "0", start, None, B::Logs);
            push("lts.ingest", region, PayPerUse, U::Gb, cur, "0.35", "0.5", start, None, B::Logs);
        }
    }
    let _ = months;
    for (i, r) in rows.iter_mut().enumerate() {
        r.row = i;
    }
    rows
}

fn scale(p: &str, f: &str) -> String {
    let v = crate::decimal::mul_div_round(d(p).0, d(f).0, 10_000_000_000).unwrap_or(0);
    Dec(v).round_dp(4).to_string()
}

/// Writes a whole lake.
pub fn generate(lake: &Lake, cfg: &GenConfig) -> Result<GenReport, LakeError> {
    let world = usage::World::new(cfg);
    let mut report = GenReport {
        accounts: world.accounts.len(),
        resources: world.resources.len(),
        packages: world.packages.len(),
        subscriptions: world.subscriptions.len(),
        payments: world.payments.len(),
        ..Default::default()
    };
    let prices = catalog(cfg.from, cfg.months);
    put_parquet(lake, crate::lake::inputs::PRICES, prices_batch(&prices))?;
    put_parquet(lake, crate::lake::inputs::OFFERS, offers_batch(&package_offers(&prices)))?;
    put_parquet(lake, crate::lake::inputs::ACCOUNTS, accounts_batch(&world.accounts))?;
    put_parquet(lake, crate::lake::inputs::PAYMENTS, payments_batch(&world.payments))?;
    put_parquet(lake, crate::lake::inputs::PACKAGES, packages_batch(&world.packages))?;
    put_parquet(lake, crate::lake::inputs::SUBSCRIPTIONS, subscriptions_batch(&world.subscriptions))?;
    let first = cfg.from.start();
    let last = add_months(first, cfg.months as i32).unwrap_or(first);
    let mut hours = Vec::new();
    let mut h = first;
    while h < last {
        if let (Some(days), Some(p)) = (cfg.days, Period::containing(h)) {
            if h >= p.start() + days as i64 * DAY {
                h = p.end();
                continue;
            }
        }
        hours.push(h);
        h += HOUR;
    }
    // Each hour's rows depend only on the seed and the hour: hours are generated and
    // written in parallel, a few at a time, and the files are the same at any thread count.
    use rayon::prelude::*;
    let window = 2 * rayon::current_num_threads().max(1);
    for some in hours.chunks(window) {
        let written: Vec<(u64, u64)> = some
            .par_iter()
            .map(|&h| {
                let (mut rows_n, mut files_n) = (0u64, 0u64);
                for (name, rows) in world.hour(h) {
                    if rows.is_empty() {
                        continue;
                    }
                    let (date, hour) = crate::time::partition_of(h).unwrap_or_default();
                    rows_n += rows.len() as u64;
                    files_n += 1;
                    put_parquet(lake, &format!("usage/date={date}/hour={hour:02}/{name}"), usage::usage_batch(&rows))?;
                }
                Ok((rows_n, files_n))
            })
            .collect::<Result<_, LakeError>>()?;
        for (rows_n, files_n) in written {
            report.usage_rows += rows_n;
            report.usage_files += files_n;
        }
    }
    Ok(report)
}

pub fn put_parquet(lake: &Lake, rel: &str, batch: RecordBatch) -> Result<(), LakeError> {
    let mut buf = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(|e| LakeError::Url { url: lake.url().into(), why: e.to_string() })?;
    w.write(&batch).map_err(|e| LakeError::Url { url: lake.url().into(), why: e.to_string() })?;
    w.close().map_err(|e| LakeError::Url { url: lake.url().into(), why: e.to_string() })?;
    lake.put(rel, buf.into())
}

fn schema(fields: Vec<(&str, DataType, bool)>) -> Arc<Schema> {
    Arc::new(Schema::new(fields.into_iter().map(|(n, t, null)| Field::new(n, t, null)).collect::<Vec<_>>()))
}

use crate::lake::outputs::{dec_type, ts_type};

pub fn prices_batch(rows: &[PriceRow]) -> RecordBatch {
    let s = schema(vec![
        ("sku", DataType::Utf8, false),
        ("region", DataType::Utf8, false),
        ("billing_mode", DataType::Utf8, false),
        ("pricing_unit", DataType::Utf8, false),
        ("currency", DataType::Utf8, false),
        ("unit_price", dec_type(), false),
        ("tier_start", dec_type(), false),
        ("effective_from", ts_type(), false),
        ("effective_to", ts_type(), true),
        ("billing_item", DataType::Utf8, false),
        ("description", DataType::Utf8, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        col_str(rows.iter().map(|r| Some(r.sku.as_str()))),
        col_str(rows.iter().map(|r| Some(r.region.as_str()))),
        col_str(rows.iter().map(|r| Some(r.billing_mode.as_str()))),
        col_str(rows.iter().map(|r| Some(r.pricing_unit.as_str()))),
        col_str(rows.iter().map(|r| Some(r.currency.as_str()))),
        col_dec(rows.iter().map(|r| Some(r.unit_price))),
        col_dec(rows.iter().map(|r| Some(r.tier_start))),
        col_ts(rows.iter().map(|r| Some(r.effective_from))),
        col_ts(rows.iter().map(|r| r.effective_to)),
        col_str(rows.iter().map(|r| Some(r.billing_item.as_str()))),
        col_str(rows.iter().map(|r| r.description.as_deref())),
    ];
    RecordBatch::try_new(s, cols).expect("catalog schema")
}

pub fn accounts_batch(rows: &[Account]) -> RecordBatch {
    let s = schema(vec![
        ("account_id", DataType::Utf8, false),
        ("account_name", DataType::Utf8, false),
        ("currency", DataType::Utf8, false),
        ("opening_balance", dec_type(), false),
        ("balance_as_of", ts_type(), false),
        ("grace_days", DataType::Int32, true),
        ("retention_days", DataType::Int32, true),
        ("balance_alert_threshold", dec_type(), true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        col_str(rows.iter().map(|r| Some(r.account_id.as_str()))),
        col_str(rows.iter().map(|r| Some(r.account_name.as_str()))),
        col_str(rows.iter().map(|r| Some(r.currency.as_str()))),
        col_dec(rows.iter().map(|r| Some(r.opening_balance))),
        col_ts(rows.iter().map(|r| Some(r.balance_as_of))),
        col_i32(rows.iter().map(|r| (r.grace_days != 15).then_some(r.grace_days))),
        col_i32(rows.iter().map(|r| (r.retention_days != 15).then_some(r.retention_days))),
        col_dec(rows.iter().map(|r| r.balance_alert_threshold)),
    ];
    RecordBatch::try_new(s, cols).expect("accounts schema")
}

pub fn payments_batch(rows: &[Payment]) -> RecordBatch {
    let s = schema(vec![
        ("payment_id", DataType::Utf8, false),
        ("account_id", DataType::Utf8, false),
        ("paid_at", ts_type(), false),
        ("amount", dec_type(), false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        col_str(rows.iter().map(|r| Some(r.payment_id.as_str()))),
        col_str(rows.iter().map(|r| Some(r.account_id.as_str()))),
        col_ts(rows.iter().map(|r| Some(r.paid_at))),
        col_dec(rows.iter().map(|r| Some(r.amount))),
    ];
    RecordBatch::try_new(s, cols).expect("payments schema")
}

pub fn packages_batch(rows: &[Package]) -> RecordBatch {
    let s = schema(vec![
        ("package_id", DataType::Utf8, false),
        ("account_id", DataType::Utf8, false),
        ("region", DataType::Utf8, false),
        ("sku", DataType::Utf8, false),
        ("package_count", DataType::Int32, false),
        ("hours_per_package", dec_type(), false),
        ("price", dec_type(), false),
        ("purchased_at", ts_type(), false),
        ("effective_from", ts_type(), false),
        ("expires_at", ts_type(), false),
        ("reset_period", DataType::Utf8, false),
        ("alert_threshold_pct", dec_type(), true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        col_str(rows.iter().map(|r| Some(r.package_id.as_str()))),
        col_str(rows.iter().map(|r| Some(r.account_id.as_str()))),
        col_str(rows.iter().map(|r| Some(r.region.as_str()))),
        col_str(rows.iter().map(|r| Some(r.sku.as_str()))),
        col_i32(rows.iter().map(|r| Some(r.package_count))),
        col_dec(rows.iter().map(|r| Some(r.hours_per_package))),
        col_dec(rows.iter().map(|r| Some(r.price))),
        col_ts(rows.iter().map(|r| Some(r.purchased_at))),
        col_ts(rows.iter().map(|r| Some(r.effective_from))),
        col_ts(rows.iter().map(|r| Some(r.expires_at))),
        col_str(rows.iter().map(|r| Some(r.reset_period.as_str()))),
        col_dec(rows.iter().map(|r| r.alert_threshold_pct)),
    ];
    RecordBatch::try_new(s, cols).expect("packages schema")
}

pub fn subscriptions_batch(rows: &[Subscription]) -> RecordBatch {
    let s = schema(vec![
        ("subscription_id", DataType::Utf8, false),
        ("account_id", DataType::Utf8, false),
        ("region", DataType::Utf8, false),
        ("resource_id", DataType::Utf8, false),
        ("sku", DataType::Utf8, false),
        ("nodes", DataType::Int32, false),
        ("unit_count", DataType::Int32, false),
        ("term_unit", DataType::Utf8, false),
        ("term_count", DataType::Int32, false),
        ("ordered_at", ts_type(), false),
        ("start_at", ts_type(), false),
        ("end_at", ts_type(), false),
        ("renewal_of", DataType::Utf8, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        col_str(rows.iter().map(|r| Some(r.subscription_id.as_str()))),
        col_str(rows.iter().map(|r| Some(r.account_id.as_str()))),
        col_str(rows.iter().map(|r| Some(r.region.as_str()))),
        col_str(rows.iter().map(|r| Some(r.resource_id.as_str()))),
        col_str(rows.iter().map(|r| Some(r.sku.as_str()))),
        col_i32(rows.iter().map(|r| Some(r.nodes))),
        col_i32(rows.iter().map(|r| Some(r.unit_count))),
        col_str(rows.iter().map(|r| Some(r.term_unit.as_str()))),
        col_i32(rows.iter().map(|r| Some(r.term_count))),
        col_ts(rows.iter().map(|r| Some(r.ordered_at))),
        col_ts(rows.iter().map(|r| Some(r.start_at))),
        col_ts(rows.iter().map(|r| Some(r.end_at))),
        col_string(rows.iter().map(|r| r.renewal_of.clone())),
    ];
    RecordBatch::try_new(s, cols).expect("subscriptions schema")
}

/// Packages on sale: 100 node-hours of each compute flavor, 30% below its first-tier
/// pay-per-use price, valid one month.
pub fn package_offers(prices: &[PriceRow]) -> Vec<crate::cost::recommend::Offer> {
    let mut out = Vec::new();
    for p in prices {
        if p.billing_mode == BillingMode::PayPerUse && p.pricing_unit == PricingUnit::NodeHour && p.tier_start.is_zero() && p.effective_to.is_none() {
            out.push(crate::cost::recommend::Offer {
                sku: p.sku.clone(),
                region: p.region.clone(),
                currency: p.currency.clone(),
                hours_per_package: Dec::from_int(100),
                price: Dec(crate::decimal::mul_div_round(p.unit_price.0, 70, 1).unwrap_or(0)).round_dp(2),
                term_months: 1,
            });
        }
    }
    out
}

pub fn offers_batch(rows: &[crate::cost::recommend::Offer]) -> RecordBatch {
    let s = schema(vec![
        ("sku", DataType::Utf8, false),
        ("region", DataType::Utf8, false),
        ("currency", DataType::Utf8, false),
        ("hours_per_package", dec_type(), false),
        ("price", dec_type(), false),
        ("term_months", DataType::Int32, false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        col_str(rows.iter().map(|r| Some(r.sku.as_str()))),
        col_str(rows.iter().map(|r| Some(r.region.as_str()))),
        col_str(rows.iter().map(|r| Some(r.currency.as_str()))),
        col_dec(rows.iter().map(|r| Some(r.hours_per_package))),
        col_dec(rows.iter().map(|r| Some(r.price))),
        col_i32(rows.iter().map(|r| Some(r.term_months))),
    ];
    RecordBatch::try_new(s, cols).expect("offers schema")
}
