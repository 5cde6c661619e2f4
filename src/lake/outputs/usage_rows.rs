//! The tables of usage rows: the rejected rows with their reasons, and which package
//! paid for which row.

use super::*;
use crate::engine::RejectedOrder;
use crate::lake::inputs::{UsageChunk, SUBSCRIPTIONS};
use crate::rules::records::*;
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

// ---------------------------------------------------------------- rejected

pub fn rejected_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        s("record_id"),
        s("account_id"),
        s("region"),
        s("resource_id"),
        s("resource_name"),
        s("module"),
        s("sku"),
        f("unit_count", DataType::Int32, true),
        s("pool_type"),
        s("pool_id"),
        f("nodes", DataType::Int32, true),
        f("quantity", dec_type(), true),
        f("start_time", ts_type(), true),
        f("end_time", ts_type(), true),
        s("enterprise_project"),
        s("tags"),
        sn("reason"),
        sn("detail"),
        sn("source_file"),
        f("source_row", DataType::Int64, false),
    ]))
}

/// Rejected usage rows, with their input columns as read (unreadable values null).
pub fn rejected_batch(rej: &[Rejected], chunks: &[UsageChunk], n: &Names<'_>) -> RecordBatch {
    let at = |r: &Rejected| (&chunks[r.loc.chunk as usize], r.loc.row as usize);
    let sv = |get: fn(&UsageChunk, usize) -> Option<&str>| -> ArrayRef {
        col_string(rej.iter().map(|r| {
            let (c, i) = at(r);
            get(c, i).map(str::to_string)
        }))
    };
    let i32v = |nodes: bool| -> ArrayRef {
        col_i32(rej.iter().map(|r| {
            let (c, i) = at(r);
            let v = if nodes { c.nodes.get(i) } else { c.unit_count.get(i) };
            v.and_then(|v| i32::try_from(v).ok())
        }))
    };
    let tsv = |end: bool| -> ArrayRef {
        col_ts(rej.iter().map(|r| {
            let (c, i) = at(r);
            let v = if end { c.end_time.get(i) } else { c.start_time.get(i) };
            v.and_then(Result::ok)
        }))
    };
    let cols: Vec<ArrayRef> = vec![
        sv(|c, i| c.record_id.get(i)),
        sv(|c, i| c.account_id.get(i)),
        sv(|c, i| c.region.get(i)),
        sv(|c, i| c.resource_id.get(i)),
        sv(|c, i| c.resource_name.get(i)),
        sv(|c, i| c.module.get(i)),
        sv(|c, i| c.sku.get(i)),
        i32v(false),
        sv(|c, i| c.pool_type.get(i)),
        sv(|c, i| c.pool_id.get(i)),
        i32v(true),
        col_dec(rej.iter().map(|r| {
            let (c, i) = at(r);
            c.quantity.get(i).and_then(Result::ok)
        })),
        tsv(false),
        tsv(true),
        sv(|c, i| c.enterprise_project.get(i)),
        sv(|c, i| c.tags.get(i)),
        col_str(rej.iter().map(|r| Some(r.why.reason.as_str()))),
        col_str(rej.iter().map(|r| Some(r.why.detail.as_str()))),
        col_str(rej.iter().map(|r| Some(n.files[at(r).0.file as usize].path.as_str()))),
        col_i64(rej.iter().map(|r| {
            let (c, i) = at(r);
            Some(c.file_row(i) as i64)
        })),
    ];
    RecordBatch::try_new(rejected_schema(), cols).expect("rejected columns match the schema")
}

/// Rejected subscription orders, as rows of the rejected table: `record_id` is the
/// `subscription_id`, `source_row` its row in the inventory (`inventory_row`, from the
/// engine's index of the subscription: a shard's engine holds a part of the inventory).
pub fn rejected_orders_batch(rej: &[RejectedOrder], n: &Names<'_>, inventory_row: impl Fn(u32) -> u64) -> RecordBatch {
    let sub = |r: &RejectedOrder| n.subs.get(r.subscription);
    let cols: Vec<ArrayRef> = vec![
        col_str(rej.iter().map(|r| Some(sub(r).subscription_id.as_str()))),
        col_str(rej.iter().map(|r| Some(sub(r).account_id.as_str()))),
        col_str(rej.iter().map(|r| Some(sub(r).region.as_str()))),
        col_str(rej.iter().map(|r| Some(sub(r).resource_id.as_str()))),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|r| Some(sub(r).sku.as_str()))),
        col_i32(rej.iter().map(|r| Some(sub(r).unit_count))),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|_| None)),
        col_i32(rej.iter().map(|r| Some(sub(r).nodes))),
        col_dec(rej.iter().map(|_| None)),
        col_ts(rej.iter().map(|r| Some(sub(r).start_at))),
        col_ts(rej.iter().map(|r| Some(sub(r).end_at))),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|r| Some(r.why.reason.as_str()))),
        col_str(rej.iter().map(|r| Some(r.why.detail.as_str()))),
        col_str(rej.iter().map(|_| Some(SUBSCRIPTIONS))),
        col_i64(rej.iter().map(|r| Some(inventory_row(r.subscription) as i64))),
    ];
    RecordBatch::try_new(rejected_schema(), cols).expect("rejected columns match the schema")
}

// ---------------------------------------------------------------- package deductions

pub fn package_deductions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        sn("package_id"),
        sn("account_id"),
        sn("record_id"),
        s("resource_id"),
        f("hour_start", ts_type(), false),
        f("usage_start", ts_type(), false),
        f("draw_order", DataType::Int32, false),
        f("applicable_packages", DataType::Int32, false),
        f("quantity", dec_type(), false),
        f("remaining_after", dec_type(), false),
        f("package_expires_at", ts_type(), false),
        f("package_purchased_at", ts_type(), false),
        sn("why"),
    ]))
}

/// The deduction ledger of an hour: which package paid for which row, and why that
/// one (earliest expiry, then earlier purchase, then smaller id).
pub fn package_deductions_batch(ds: &[Deduction], chunks: &[UsageChunk], n: &Names<'_>) -> RecordBatch {
    let pkg = |d: &Deduction| &n.packages[d.package as usize];
    let at = |d: &Deduction| (&chunks[d.usage.chunk as usize], d.usage.row as usize);
    let why = |d: &Deduction| {
        let p = pkg(d);
        format!(
            "draw {} of the row; {} package(s) could serve it, drawn by earliest expiry, then earlier purchase, then smaller id; this one expires {} (bought {})",
            d.draw_order,
            d.applicable,
            crate::time::format_ts(p.expires_at),
            crate::time::format_ts(p.purchased_at)
        )
    };
    let cols: Vec<ArrayRef> = vec![
        col_str(ds.iter().map(|d| Some(pkg(d).package_id.as_str()))),
        col_str(ds.iter().map(|d| Some(n.account(d.account).account_id.as_str()))),
        col_str(ds.iter().map(|d| at(d).0.record_id.get(at(d).1))),
        col_str(ds.iter().map(|d| at(d).0.resource_id.get(at(d).1))),
        col_ts(ds.iter().map(|d| Some(crate::time::hour_floor(d.usage_start)))),
        col_ts(ds.iter().map(|d| Some(d.usage_start))),
        col_i32(ds.iter().map(|d| Some(d.draw_order as i32))),
        col_i32(ds.iter().map(|d| Some(d.applicable as i32))),
        col_dec(ds.iter().map(|d| Some(d.quantity.to_dec()))),
        col_dec(ds.iter().map(|d| Some(d.remaining_after.to_dec()))),
        col_ts(ds.iter().map(|d| Some(pkg(d).expires_at))),
        col_ts(ds.iter().map(|d| Some(pkg(d).purchased_at))),
        col_string(ds.iter().map(|d| Some(why(d)))),
    ];
    RecordBatch::try_new(package_deductions_schema(), cols).expect("deduction columns match the schema")
}
