//! Audited restatements: when a closed period is closed again and an invoice's figures
//! change, `bills/restatements` records it — old and new values, the run ids of both
//! closes, and the reason given on the command line. The table of a period keeps every
//! restatement it ever had; re-running with the same inputs adds nothing.

use super::JobError;
use crate::decimal::Dec;
use crate::lake::columns::{DecCol, IntCol, StrCol};
use crate::lake::inputs::decode_parquet;
use crate::lake::outputs::*;
use crate::lake::store::Lake;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The figures of one invoice that a restatement compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figures {
    pub invoice_id: String,
    pub usage_charges: Dec,
    pub purchase_charges: Dec,
    pub total_due: Dec,
    pub closing_balance: Dec,
    pub status: String,
    pub line_count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restatement {
    pub account_id: String,
    pub old: Figures,
    pub new: Figures,
    pub old_run: String,
    pub new_run: String,
    pub reason: String,
}

pub fn schema() -> SchemaRef {
    let d2 = dec2_type();
    let d = dec_type();
    Arc::new(Schema::new(vec![
        Field::new("invoice_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("old_usage_charges", d2.clone(), false),
        Field::new("new_usage_charges", d2.clone(), false),
        Field::new("old_purchase_charges", d2.clone(), false),
        Field::new("new_purchase_charges", d2.clone(), false),
        Field::new("old_total_due", d2.clone(), false),
        Field::new("new_total_due", d2, false),
        Field::new("old_closing_balance", d.clone(), false),
        Field::new("new_closing_balance", d, false),
        Field::new("old_status_at_close", DataType::Utf8, false),
        Field::new("new_status_at_close", DataType::Utf8, false),
        Field::new("old_line_count", DataType::Int64, false),
        Field::new("new_line_count", DataType::Int64, false),
        Field::new("old_run_id", DataType::Utf8, false),
        Field::new("new_run_id", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

/// The figures of the invoices of a published invoices table, by account.
pub fn read_invoices(file: &str, bytes: bytes::Bytes) -> Result<BTreeMap<String, Figures>, JobError> {
    let bad = |c: &str| JobError::Plan(format!("{file}: column {c} is missing or of another type"));
    let mut out = BTreeMap::new();
    for b in decode_parquet(file, bytes)? {
        let s = |c: &str| StrCol::of(&b, c).map_err(|_| bad(c));
        let dc = |c: &str| DecCol::of(&b, c).map_err(|_| bad(c));
        let (inv, acct, status) = (s("invoice_id")?, s("account_id")?, s("status_at_close")?);
        let (usage, purchase, total, closing) = (dc("usage_charges")?, dc("purchase_charges")?, dc("total_due")?, dc("closing_balance")?);
        let lines = IntCol::of(&b, "line_count").map_err(|_| bad("line_count"))?;
        // A published invoice has every figure: a missing one is a damaged table,
        // never read as zero.
        let missing = |i: usize, c: &str| JobError::Plan(format!("{file} row {i}: field '{c}' is null or out of range"));
        let dec = |c: &DecCol, i: usize, name: &str| c.get(i).and_then(Result::ok).ok_or_else(|| missing(i, name));
        let text = |c: &StrCol, i: usize, name: &str| c.get(i).map(str::to_string).ok_or_else(|| missing(i, name));
        for i in 0..b.num_rows() {
            out.insert(
                text(&acct, i, "account_id")?,
                Figures {
                    invoice_id: text(&inv, i, "invoice_id")?,
                    usage_charges: dec(&usage, i, "usage_charges")?,
                    purchase_charges: dec(&purchase, i, "purchase_charges")?,
                    total_due: dec(&total, i, "total_due")?,
                    closing_balance: dec(&closing, i, "closing_balance")?,
                    status: text(&status, i, "status_at_close")?,
                    line_count: lines.get(i).ok_or_else(|| missing(i, "line_count"))?,
                },
            );
        }
    }
    Ok(out)
}

/// The figures of a close's own invoices, by account.
pub fn figures(invoices: &[crate::engine::Invoice], n: &Names<'_>) -> BTreeMap<String, Figures> {
    invoices
        .iter()
        .map(|i| {
            (
                n.account(i.account).account_id.clone(),
                Figures {
                    invoice_id: n.invoice_id(i.account).to_string(),
                    usage_charges: i.usage_charges,
                    purchase_charges: i.purchase_charges,
                    total_due: i.total_due,
                    closing_balance: i.closing_balance,
                    status: i.status.as_str().to_string(),
                    line_count: i.line_count as i64,
                },
            )
        })
        .collect()
}

/// The restatements of a re-close: every invoice whose figures differ from the
/// published one (an invoice that appears or disappears counts too, against zeros).
pub fn compare(old: &BTreeMap<String, Figures>, new: &BTreeMap<String, Figures>, old_run: &str, new_run: &str, reason: &str) -> Vec<Restatement> {
    let zero = |f: &Figures| Figures {
        usage_charges: Dec::ZERO,
        purchase_charges: Dec::ZERO,
        total_due: Dec::ZERO,
        closing_balance: Dec::ZERO,
        status: String::new(),
        line_count: 0,
        invoice_id: f.invoice_id.clone(),
    };
    let mut out = Vec::new();
    let accounts: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for a in accounts {
        let (o, n) = match (old.get(a), new.get(a)) {
            (Some(o), Some(n)) => (o.clone(), n.clone()),
            (Some(o), None) => (o.clone(), zero(o)),
            (None, Some(n)) => (zero(n), n.clone()),
            (None, None) => continue,
        };
        if o != n {
            out.push(Restatement { account_id: a.clone(), old: o, new: n, old_run: old_run.into(), new_run: new_run.into(), reason: reason.into() });
        }
    }
    out
}

/// Rows of an existing restatements table, to keep them.
pub fn read_existing(lake: &Lake, rel: &str) -> Result<Vec<RecordBatch>, JobError> {
    match lake.get_opt(rel)? {
        Some(bytes) => Ok(decode_parquet(rel, bytes)?.into_iter().filter(|b| b.schema() == schema()).collect()),
        None => Ok(Vec::new()),
    }
}

pub fn batch(rs: &[Restatement]) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        col_str(rs.iter().map(|r| Some(r.new.invoice_id.as_str()))),
        col_str(rs.iter().map(|r| Some(r.account_id.as_str()))),
        col_dec2(rs.iter().map(|r| Some(r.old.usage_charges))),
        col_dec2(rs.iter().map(|r| Some(r.new.usage_charges))),
        col_dec2(rs.iter().map(|r| Some(r.old.purchase_charges))),
        col_dec2(rs.iter().map(|r| Some(r.new.purchase_charges))),
        col_dec2(rs.iter().map(|r| Some(r.old.total_due))),
        col_dec2(rs.iter().map(|r| Some(r.new.total_due))),
        col_dec(rs.iter().map(|r| Some(r.old.closing_balance))),
        col_dec(rs.iter().map(|r| Some(r.new.closing_balance))),
        col_str(rs.iter().map(|r| Some(r.old.status.as_str()))),
        col_str(rs.iter().map(|r| Some(r.new.status.as_str()))),
        col_i64(rs.iter().map(|r| Some(r.old.line_count))),
        col_i64(rs.iter().map(|r| Some(r.new.line_count))),
        col_str(rs.iter().map(|r| Some(r.old_run.as_str()))),
        col_str(rs.iter().map(|r| Some(r.new_run.as_str()))),
        col_str(rs.iter().map(|r| Some(r.reason.as_str()))),
    ];
    RecordBatch::try_new(schema(), cols).expect("restatement columns match the schema")
}
