//! The bills of a period: invoices, hourly settlements, the accounts' arrears
//! timeline, the package ledger and alerts.

use super::*;
use crate::engine::{Invoice, LedgerRow};
use crate::rules::records::*;
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

// ---------------------------------------------------------------- invoices

pub fn invoices_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        sn("invoice_id"),
        sn("account_id"),
        sn("billing_period"),
        sn("currency"),
        f("usage_charges", dec2_type(), false),
        f("purchase_charges", dec2_type(), false),
        f("total_due", dec2_type(), false),
        f("truncated_amount", dec_type(), false),
        f("committed_list_value", dec_type(), false),
        f("opening_balance", dec_type(), false),
        f("payments", dec_type(), false),
        f("closing_balance", dec_type(), false),
        f("arrears_amount", dec_type(), false),
        sn("status_at_close"),
        f("line_count", DataType::Int64, false),
    ]))
}

pub fn invoices_batch(inv: &[Invoice], n: &Names<'_>) -> RecordBatch {
    let period = n.period.to_string();
    let cols: Vec<ArrayRef> = vec![
        col_str(inv.iter().map(|i| Some(n.invoice_id(i.account)))),
        col_str(inv.iter().map(|i| Some(n.account(i.account).account_id.as_str()))),
        col_str(inv.iter().map(|_| Some(period.as_str()))),
        col_str(inv.iter().map(|i| Some(n.account(i.account).currency.as_str()))),
        col_dec2(inv.iter().map(|i| Some(i.usage_charges))),
        col_dec2(inv.iter().map(|i| Some(i.purchase_charges))),
        col_dec2(inv.iter().map(|i| Some(i.total_due))),
        col_dec(inv.iter().map(|i| Some(i.truncated))),
        col_dec(inv.iter().map(|i| Some(i.committed_list_value))),
        col_dec(inv.iter().map(|i| Some(i.opening_balance))),
        col_dec(inv.iter().map(|i| Some(i.payments))),
        col_dec(inv.iter().map(|i| Some(i.closing_balance))),
        col_dec(inv.iter().map(|i| Some(i.arrears_amount))),
        col_str(inv.iter().map(|i| Some(i.status.as_str()))),
        col_i64(inv.iter().map(|i| Some(i.line_count as i64))),
    ];
    RecordBatch::try_new(invoices_schema(), cols).expect("invoice columns match the schema")
}

// ---------------------------------------------------------------- settlements

pub fn settlements_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        sn("account_id"),
        f("hour_start", ts_type(), false),
        f("line_amount", dec_type(), false),
        f("deduction", dec2_type(), false),
        f("truncated_amount", dec_type(), false),
        f("balance_after", dec_type(), false),
        sn("account_state"),
    ]))
}

pub fn settlements_batch(st: &[Settlement], n: &Names<'_>) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        col_str(st.iter().map(|s| Some(n.account(s.account).account_id.as_str()))),
        col_ts(st.iter().map(|s| Some(s.hour_start))),
        col_dec(st.iter().map(|s| Some(s.line_amount))),
        col_dec2(st.iter().map(|s| Some(s.deduction))),
        col_dec(st.iter().map(|s| Some(s.truncated))),
        col_dec(st.iter().map(|s| Some(s.balance_after))),
        col_str(st.iter().map(|s| Some(s.state.as_str()))),
    ];
    RecordBatch::try_new(settlements_schema(), cols).expect("settlement columns match the schema")
}

// ---------------------------------------------------------------- account status

pub fn account_status_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        sn("account_id"),
        sn("state"),
        f("state_from", ts_type(), false),
        f("state_to", ts_type(), false),
        f("arrears_since", ts_type(), true),
        f("restricted_operations", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
    ]))
}

pub fn account_status_batch(st: &[StatusInterval], n: &Names<'_>) -> RecordBatch {
    let mut ops = ListBuilder::new(StringBuilder::new());
    for s in st {
        if s.state != crate::model::Phase::Active {
            for op in crate::model::RESTRICTED_OPERATIONS {
                ops.values().append_value(op);
            }
        }
        ops.append(true);
    }
    let cols: Vec<ArrayRef> = vec![
        col_str(st.iter().map(|s| Some(n.account(s.account).account_id.as_str()))),
        col_str(st.iter().map(|s| Some(s.state.as_str()))),
        col_ts(st.iter().map(|s| Some(s.from))),
        col_ts(st.iter().map(|s| Some(s.to))),
        col_ts(st.iter().map(|s| s.arrears_since)),
        Arc::new(ops.finish()),
    ];
    RecordBatch::try_new(account_status_schema(), cols).expect("status columns match the schema")
}

// ---------------------------------------------------------------- package ledger

pub fn package_ledger_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        sn("package_id"),
        sn("account_id"),
        sn("billing_period"),
        f("opening_quota", dec_type(), false),
        f("used_quota", dec_type(), false),
        f("lapsed_quota", dec_type(), false),
        f("closing_quota", dec_type(), false),
    ]))
}

pub fn package_ledger_batch(rows: &[LedgerRow], n: &Names<'_>) -> RecordBatch {
    let period = n.period.to_string();
    let cols: Vec<ArrayRef> = vec![
        col_str(rows.iter().map(|r| Some(n.packages[r.package as usize].package_id.as_str()))),
        col_str(rows.iter().map(|r| Some(n.account(r.account).account_id.as_str()))),
        col_str(rows.iter().map(|_| Some(period.as_str()))),
        col_dec(rows.iter().map(|r| Some(r.shown[0]))),
        col_dec(rows.iter().map(|r| Some(r.shown[1]))),
        col_dec(rows.iter().map(|r| Some(r.shown[2]))),
        col_dec(rows.iter().map(|r| Some(r.shown[3]))),
    ];
    RecordBatch::try_new(package_ledger_schema(), cols).expect("ledger columns match the schema")
}

// ---------------------------------------------------------------- alerts

pub fn alerts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![sn("alert_type"), sn("account_id"), s("package_id"), f("alert_time", ts_type(), false), f("value", dec_type(), false)]))
}

pub fn alerts_batch(al: &[Alert], n: &Names<'_>) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        col_str(al.iter().map(|a| Some(a.kind.as_str()))),
        col_str(al.iter().map(|a| Some(n.account(a.account).account_id.as_str()))),
        col_str(al.iter().map(|a| a.package.map(|p| n.packages[p as usize].package_id.as_str()))),
        col_ts(al.iter().map(|a| Some(a.time))),
        col_dec(al.iter().map(|a| Some(a.value))),
    ];
    RecordBatch::try_new(alerts_schema(), cols).expect("alert columns match the schema")
}
