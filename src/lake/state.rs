//! `state/billing_period=YYYY-MM/`: what a closed period hands to the next one —
//! each account's balance, open arrears episode and balance-alert arming, and each
//! package's remaining quota (exact, in quantity units) and whether its usage alert
//! has fired.

use super::columns::{DecCol, StrCol, TsCol};
use super::inputs::{decode_parquet, InputError};
use super::outputs::*;
use crate::decimal::{Dec, Qty};
use crate::engine::Opening;
use crate::rules::account::AccountOpening;
use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

pub fn state_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("entity", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("balance", dec_type(), true),
        Field::new("arrears_since", ts_type(), true),
        Field::new("balance_alert_armed", DataType::Boolean, true),
        Field::new("quota_remaining", dec_type(), true),
        Field::new("quota_remaining_units", DataType::Decimal128(38, 0), true),
        Field::new("package_alerted", DataType::Boolean, true),
    ]))
}

pub fn state_batch(o: &Opening) -> RecordBatch {
    let mut accts: Vec<(&String, &AccountOpening)> = o.accounts.iter().collect();
    accts.sort_by(|a, b| a.0.cmp(b.0));
    let mut pkgs: Vec<(&String, &(Qty, bool))> = o.packages.iter().collect();
    pkgs.sort_by(|a, b| a.0.cmp(b.0));
    let (na, np) = (accts.len(), pkgs.len());
    let units: arrow_array::Decimal128Array = (0..na)
        .map(|_| None)
        .chain(pkgs.iter().map(|(_, (q, _))| Some(q.0)))
        .collect::<arrow_array::Decimal128Array>()
        .with_precision_and_scale(38, 0)
        .expect("valid decimal type");
    let cols: Vec<ArrayRef> = vec![
        col_str((0..na).map(|_| Some("account")).chain((0..np).map(|_| Some("package")))),
        col_str(accts.iter().map(|a| Some(a.0.as_str())).chain(pkgs.iter().map(|p| Some(p.0.as_str())))),
        col_dec(accts.iter().map(|a| Some(a.1.balance)).chain((0..np).map(|_| None))),
        col_ts(accts.iter().map(|a| a.1.arrears_since).chain((0..np).map(|_| None))),
        col_bool(accts.iter().map(|a| Some(a.1.balance_alert_armed)).chain((0..np).map(|_| None))),
        col_dec((0..na).map(|_| None).chain(pkgs.iter().map(|p| Some(p.1 .0.to_dec())))),
        Arc::new(units),
        col_bool((0..na).map(|_| None).chain(pkgs.iter().map(|p| Some(p.1 .1)))),
    ];
    RecordBatch::try_new(state_schema(), cols).expect("state columns match the schema")
}

/// Reads a state file written by [`state_batch`].
pub fn read_state(file: &str, bytes: bytes::Bytes) -> Result<Opening, InputError> {
    let mut o = Opening::default();
    let bad = |row: usize, field: &'static str| InputError::Field { file: file.into(), row, field, why: "missing or unreadable in a state file".into() };
    let mut row = 0usize;
    for b in decode_parquet(file, bytes)? {
        let col = |name: &str| StrCol::of(&b, name).map_err(|_| bad(row, "entity"));
        let entity = col("entity")?;
        let id = col("id")?;
        let balance = DecCol::of(&b, "balance").map_err(|_| bad(row, "balance"))?;
        let since = TsCol::of(&b, "arrears_since").map_err(|_| bad(row, "arrears_since"))?;
        let armed = b.column_by_name("balance_alert_armed").ok_or_else(|| bad(row, "balance_alert_armed"))?;
        let armed = armed.as_boolean_opt().ok_or_else(|| bad(row, "balance_alert_armed"))?;
        let units = b.column_by_name("quota_remaining_units").ok_or_else(|| bad(row, "quota_remaining_units"))?;
        let units = units.as_primitive_opt::<arrow_array::types::Decimal128Type>().ok_or_else(|| bad(row, "quota_remaining_units"))?;
        let alerted = b.column_by_name("package_alerted").ok_or_else(|| bad(row, "package_alerted"))?;
        let alerted = alerted.as_boolean_opt().ok_or_else(|| bad(row, "package_alerted"))?;
        use arrow_array::Array;
        for i in 0..b.num_rows() {
            let the_id = id.get(i).ok_or_else(|| bad(row, "id"))?.to_string();
            match entity.get(i) {
                Some("account") => {
                    let bal: Dec = balance.get(i).and_then(Result::ok).ok_or_else(|| bad(row, "balance"))?;
                    let arrears_since = since.get(i).and_then(Result::ok);
                    let a = AccountOpening { balance: bal, arrears_since, balance_alert_armed: !armed.is_null(i) && armed.value(i) };
                    o.accounts.insert(the_id, a);
                }
                Some("package") => {
                    if units.is_null(i) {
                        return Err(bad(row, "quota_remaining_units"));
                    }
                    let q = Qty(units.value(i));
                    o.packages.insert(the_id, (q, !alerted.is_null(i) && alerted.value(i)));
                }
                _ => return Err(bad(row, "entity")),
            }
            row += 1;
        }
    }
    Ok(o)
}
