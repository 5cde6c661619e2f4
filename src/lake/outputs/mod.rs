//! The output tables of the data contract: their Arrow schemas and the conversion of
//! the rules' records into columns, one file a table family — the FOCUS line items,
//! the bills (invoices, settlements, account status, package ledger, alerts) and the
//! tables of usage rows (rejected rows, package deductions). The sink that streams a
//! table to the lake is `lake::sink`.

mod bills;
mod line_items;
mod usage_rows;

pub use super::sink::{TableSink, Written};
pub use bills::*;
pub use line_items::*;
pub use usage_rows::*;

use crate::decimal::Dec;
use crate::lake::inputs::UsageFile;
use crate::model::{Account, Package};
use crate::rules::pricing::Catalog;
use crate::rules::subscriptions::Subscriptions;
use crate::time::{Micros, Period};
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::types::UInt32Type;
use arrow_array::{ArrayRef, BooleanArray, Decimal128Array, DictionaryArray, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray, UInt32Array};
use arrow_schema::{DataType, Field, TimeUnit};
use std::sync::Arc;

pub const PROVIDER: &str = "AI Cloud Platform";

// ---------------------------------------------------------------- column helpers

pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}
pub fn dec_type() -> DataType {
    DataType::Decimal128(38, 10)
}
pub fn dec2_type() -> DataType {
    DataType::Decimal128(38, 2)
}
pub(crate) fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}
pub(crate) fn s(name: &str) -> Field {
    f(name, DataType::Utf8, true)
}
pub(crate) fn sn(name: &str) -> Field {
    f(name, DataType::Utf8, false)
}
/// A string column carried as keys into its distinct values (see [`col_keyed`]).
pub(crate) fn keyed_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
}
pub(crate) fn k(name: &str) -> Field {
    f(name, keyed_type(), true)
}
pub(crate) fn kn(name: &str) -> Field {
    f(name, keyed_type(), false)
}

pub fn col_str<'a>(v: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    // Sized as [`col_rows`]: a record id a line is some 30 bytes.
    let rows = v.size_hint().0;
    let mut b = StringBuilder::with_capacity(rows, rows * 32);
    for s in v {
        b.append_option(s);
    }
    Arc::new(b.finish())
}
/// A string column whose values live in a few places while the column is built
/// (reference data, constants, the dictionaries of usage columns, texts written once):
/// as keys into the distinct addresses, so that neither building the column nor
/// encoding it copies or hashes a string a row. The file holds plain strings.
pub fn col_keyed<'a>(v: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut at: rustc_hash::FxHashMap<(usize, usize), u32> = rustc_hash::FxHashMap::default();
    let mut values = StringBuilder::new();
    // Neighbouring lines often hold the same text (an account's lines, a constant):
    // the last address's key is tried before the table.
    let mut last = ((0usize, usize::MAX), 0u32);
    let keys: UInt32Array = v
        .map(|s| {
            s.map(|s| {
                let address = (s.as_ptr() as usize, s.len());
                if address == last.0 {
                    return last.1;
                }
                let next = at.len() as u32;
                let key = *at.entry(address).or_insert_with(|| {
                    values.append_value(s);
                    next
                });
                last = (address, key);
                key
            })
        })
        .collect();
    Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, Arc::new(values.finish())).expect("every key indexes a value"))
}
/// A string column of about one value a row (a resource's id or name: once an hour
/// each), written as keys all the same: the encoder finds each row's dictionary
/// entry where the rows before left off (see [`super::chunk`]), rather than the
/// general writer hashing every row's text.
pub fn col_rows<'a>(v: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    // Sized for ids and names of some 32 bytes: an hour's column (megabytes) is not
    // grown, and copied, a doubling at a time from the builder's default kilobyte
    // (reserved, not touched: a shorter column costs no more than its own bytes).
    let rows = v.size_hint().0;
    let mut values = StringBuilder::with_capacity(rows, rows * 32);
    let mut next = 0u32;
    let keys: UInt32Array = v
        .map(|s| {
            s.map(|s| {
                values.append_value(s);
                next += 1;
                next - 1
            })
        })
        .collect();
    Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, Arc::new(values.finish())).expect("every key indexes a value"))
}
pub fn col_string(v: impl Iterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(v.collect::<StringArray>())
}
pub fn col_dec(v: impl Iterator<Item = Option<Dec>>) -> ArrayRef {
    let a: Decimal128Array = v.map(|d| d.map(|d| d.0)).collect();
    Arc::new(a.with_precision_and_scale(38, 10).expect("valid decimal type"))
}
/// A 2-place column: values must already have at most 2 places.
pub fn col_dec2(v: impl Iterator<Item = Option<Dec>>) -> ArrayRef {
    let a: Decimal128Array = v.map(|d| d.map(|d| d.mantissa_at(2))).collect();
    Arc::new(a.with_precision_and_scale(38, 2).expect("valid decimal type"))
}
pub fn col_ts(v: impl Iterator<Item = Option<Micros>>) -> ArrayRef {
    let a: TimestampMicrosecondArray = v.collect();
    Arc::new(a.with_timezone("UTC"))
}
pub fn col_i64(v: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(v.collect::<Int64Array>())
}
pub fn col_i32(v: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    Arc::new(v.collect::<Int32Array>())
}
pub fn col_bool(v: impl Iterator<Item = Option<bool>>) -> ArrayRef {
    Arc::new(v.collect::<BooleanArray>())
}

// ---------------------------------------------------------------- context

/// Strings derived once per run: each catalog row's `SkuPriceId` and
/// `SkuPriceDetails`, each account's `InvoiceId`.
pub struct Ids {
    pub price: Vec<String>,
    pub price_details: Vec<String>,
    pub invoice: Vec<String>,
}

impl Ids {
    pub fn new(period: Period, accounts: &[Account], catalog: &Catalog) -> Ids {
        Ids {
            price: (0..catalog.rows.len() as u32).map(|r| crate::focus::sku_price_id(catalog, r)).collect(),
            price_details: (0..catalog.rows.len() as u32).map(|r| crate::focus::sku_price_details(catalog, r)).collect(),
            invoice: accounts.iter().map(|a| format!("INV-{}-{}", a.account_id, period.compact())).collect(),
        }
    }
}

/// Everything the writers need to turn index-based records into columns.
pub struct Names<'a> {
    pub period: Period,
    /// `SkuPriceId` of each catalog row, and `InvoiceId` of each account.
    pub ids: &'a Ids,
    pub accounts: &'a [Account],
    pub catalog: &'a Catalog,
    pub packages: &'a [Package],
    pub subs: &'a Subscriptions,
    pub files: &'a [UsageFile],
}

impl<'a> Names<'a> {
    pub fn new(
        period: Period,
        accounts: &'a [Account],
        catalog: &'a Catalog,
        packages: &'a [Package],
        subs: &'a Subscriptions,
        files: &'a [UsageFile],
        ids: &'a Ids,
    ) -> Names<'a> {
        Names { period, ids, accounts, catalog, packages, subs, files }
    }

    pub fn account(&self, i: u32) -> &Account {
        &self.accounts[i as usize]
    }
    pub fn invoice_id(&self, i: u32) -> &str {
        &self.ids.invoice[i as usize]
    }
}
