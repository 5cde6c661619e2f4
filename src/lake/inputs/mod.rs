//! Reading the input lake: the reference tables (catalog, inventory, accounts,
//! payments) into validated structs, and hourly usage files into column chunks.
//!
//! A reference table that breaks the contract refuses the whole run with a message
//! naming the file, the row and the field: a bill computed from a guessed price or a
//! half-read inventory is worse than no bill. A usage row that breaks the contract is
//! not a refusal: it becomes a rejected row (see `rules::checks`).

use super::columns::{ArrowColumns, ColumnProblem, DecCol, IntCol, StrCol, TsCol};
use super::store::{Lake, LakeError};
use crate::decimal::Dec;
pub use crate::model::Reference;
use crate::model::*;
pub use crate::rules::batch::{RowKeys, UsageBatch};
use crate::time::{add_months, Micros, Period, HOUR};
use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub const PRICES: &str = "catalog/prices.parquet";
pub const PACKAGES: &str = "inventory/packages.parquet";
pub const SUBSCRIPTIONS: &str = "inventory/subscriptions.parquet";
pub const ACCOUNTS: &str = "accounts/accounts.parquet";
pub const PAYMENTS: &str = "accounts/payments.parquet";
/// Optional: packages on sale, for the package recommendation.
pub const OFFERS: &str = "catalog/package_offers.parquet";

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: not a readable Parquet file: {why}")]
    Corrupt { file: String, why: String },
    #[error("{file}: column '{column}' is missing")]
    MissingColumn { file: String, column: String },
    #[error("{file}: column '{column}' is {found}, expected {expected}")]
    WrongType { file: String, column: String, found: String, expected: &'static str },
    #[error("{file} row {row}: field '{field}': {why}")]
    Field { file: String, row: usize, field: &'static str, why: String },
    #[error("{file}: {why}")]
    Table { file: String, why: String },
    #[error("{file}: required input file is missing from lake {lake}")]
    MissingFile { file: String, lake: String },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{0}")]
    Overflow(#[from] crate::decimal::Overflow),
}

pub type Result<T> = std::result::Result<T, InputError>;

pub(crate) fn col_err(file: &str, column: &str, p: ColumnProblem) -> InputError {
    match p {
        ColumnProblem::Missing => InputError::MissingColumn { file: file.into(), column: column.into() },
        ColumnProblem::WrongType { found, expected } => InputError::WrongType { file: file.into(), column: column.into(), found, expected },
    }
}

/// Decodes a whole Parquet file.
/// A file that decodes into garbage must be a refusal naming it, never a crash: the
/// decoder runs under `catch_unwind`, so even a decoder bug on malformed bytes becomes
/// an error.
pub fn decode_parquet(file: &str, bytes: Bytes) -> Result<Vec<RecordBatch>> {
    decode_parquet_with(file, bytes, |b| b)
}

/// [`decode_parquet`] with the reader configured first (a projection, a selection of
/// rows), under the same guard.
pub fn decode_parquet_with(
    file: &str,
    bytes: Bytes,
    configure: impl FnOnce(ParquetRecordBatchReaderBuilder<Bytes>) -> ParquetRecordBatchReaderBuilder<Bytes>,
) -> Result<Vec<RecordBatch>> {
    decode_parquet_keyed(file, bytes, &[], false, configure)
}

/// [`decode_parquet_with`] for usage files: strings read as string views (see
/// [`decode_parquet_keyed`]).
pub fn decode_usage_with(
    file: &str,
    bytes: Bytes,
    configure: impl FnOnce(ParquetRecordBatchReaderBuilder<Bytes>) -> ParquetRecordBatchReaderBuilder<Bytes>,
) -> Result<Vec<RecordBatch>> {
    decode_parquet_keyed(file, bytes, &[], true, configure)
}

/// The usage columns of few distinct values (a file holds an hour of a region): read
/// as dictionaries, their strings are decoded once per column chunk instead of once
/// per row.
const USAGE_KEYED: [&str; 8] = ["account_id", "region", "module", "sku", "pool_type", "pool_id", "enterprise_project", "tags"];

/// [`decode_parquet_with`], the string columns named in `keyed` read as
/// `Dictionary(Int32, Utf8)`, and the others as plain strings, or as string views
/// (`Utf8View`) when `views`: a PLAIN page's strings are then pointed into, not
/// copied out one by one.
fn decode_parquet_keyed(
    file: &str,
    bytes: Bytes,
    keyed: &[&str],
    views: bool,
    configure: impl FnOnce(ParquetRecordBatchReaderBuilder<Bytes>) -> ParquetRecordBatchReaderBuilder<Bytes>,
) -> Result<Vec<RecordBatch>> {
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    let corrupt = |e: &dyn std::fmt::Display| InputError::Corrupt { file: file.into(), why: e.to_string() };
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || -> std::result::Result<Vec<RecordBatch>, String> {
        let mut meta = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).map_err(|e| e.to_string())?;
        let schema = meta.schema().clone();
        // A column with no value at all (its statistics say so) is left plain: its
        // dictionary is empty, and the decoder would then hash every null instead.
        let all_null = |name: &str| {
            let groups = meta.metadata().row_groups();
            !groups.is_empty()
                && groups.iter().all(|rg| {
                    rg.columns().iter().find(|c| c.column_path().string() == name).and_then(|c| c.statistics()).and_then(|s| s.null_count_opt())
                        == Some(rg.num_rows() as u64)
                })
        };
        // The type each string column is read as, where it is not the file's own: a
        // keyed one as `Dictionary(Int32, Utf8)`; any other as a string view when
        // `views`, else plain if the writer stored it as an Arrow dictionary (a pandas
        // category, say).
        let is_str = |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        let hint = |f: &Field| -> Option<DataType> {
            let dict = matches!(f.data_type(), DataType::Dictionary(_, v) if is_str(v));
            if !dict && !is_str(f.data_type()) {
                return None;
            }
            if keyed.contains(&f.name().as_str()) && !all_null(f.name()) {
                Some(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)))
            } else if views {
                Some(DataType::Utf8View)
            } else {
                dict.then_some(DataType::Utf8)
            }
        };
        if schema.fields().iter().any(|f| hint(f).is_some_and(|t| &t != f.data_type())) {
            let fields: Vec<Field> = schema
                .fields()
                .iter()
                .map(|f| match hint(f) {
                    Some(t) => f.as_ref().clone().with_data_type(t),
                    None => f.as_ref().clone(),
                })
                .collect();
            let hinted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
            meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), ArrowReaderOptions::new().with_schema(hinted)).map_err(|e| e.to_string())?;
        }
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, meta);
        let reader = configure(builder).with_batch_size(64 * 1024).build().map_err(|e| e.to_string())?;
        reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| e.to_string())
    }));
    match decoded {
        Ok(Ok(batches)) => Ok(batches),
        Ok(Err(why)) => Err(corrupt(&why)),
        Err(_) => Err(corrupt(&"the Parquet decoder failed on malformed data")),
    }
}

/// Field access for one row of a reference table, with errors that name it.
struct Cells<'a> {
    file: &'a str,
    row: usize,
}

impl Cells<'_> {
    fn bad(&self, field: &'static str, why: impl Into<String>) -> InputError {
        InputError::Field { file: self.file.into(), row: self.row, field, why: why.into() }
    }
    fn str(&self, c: &StrCol, i: usize, field: &'static str) -> Result<String> {
        match c.get(i) {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            Some(_) => Err(self.bad(field, "empty")),
            None => Err(self.bad(field, "null")),
        }
    }
    fn opt_str(&self, c: &StrCol, i: usize) -> Option<String> {
        c.get(i).map(str::to_string)
    }
    fn dec(&self, c: &DecCol, i: usize, field: &'static str) -> Result<Dec> {
        self.opt_dec(c, i, field)?.ok_or_else(|| self.bad(field, "null"))
    }
    fn opt_dec(&self, c: &DecCol, i: usize, field: &'static str) -> Result<Option<Dec>> {
        match c.get(i) {
            None => Ok(None),
            Some(Ok(d)) => Ok(Some(d)),
            Some(Err(_)) => Err(self.bad(field, "does not fit decimal(38,10)")),
        }
    }
    fn int(&self, c: &IntCol, i: usize, field: &'static str) -> Result<i32> {
        let v = c.get(i).ok_or_else(|| self.bad(field, "null"))?;
        i32::try_from(v).map_err(|_| self.bad(field, format!("{v} does not fit int32")))
    }
    fn opt_int(&self, c: &IntCol, i: usize, field: &'static str) -> Result<Option<i32>> {
        match c.get(i) {
            None => Ok(None),
            Some(v) => i32::try_from(v).map(Some).map_err(|_| self.bad(field, format!("{v} does not fit int32"))),
        }
    }
    fn ts(&self, c: &TsCol, i: usize, field: &'static str) -> Result<Micros> {
        self.opt_ts(c, i, field)?.ok_or_else(|| self.bad(field, "null"))
    }
    fn opt_ts(&self, c: &TsCol, i: usize, field: &'static str) -> Result<Option<Micros>> {
        match c.get(i) {
            None => Ok(None),
            Some(Ok(t)) => Ok(Some(t)),
            Some(Err(_)) => Err(self.bad(field, "timestamp out of range")),
        }
    }
    fn coded<T>(&self, c: &StrCol, i: usize, field: &'static str, parse: fn(&str) -> Option<T>) -> Result<T> {
        let s = self.str(c, i, field)?;
        parse(&s).ok_or_else(|| self.bad(field, format!("unknown value '{s}'")))
    }
}

macro_rules! cols {
    ($file:expr, $batch:expr, $($name:ident : $ty:ident),+ $(,)?) => {
        $(let $name = $ty::of($batch, stringify!($name)).map_err(|p| col_err($file, stringify!($name), p))?;)+
    };
}

fn read_table(lake: &Lake, rel: &str, required: bool) -> Result<Option<Vec<RecordBatch>>> {
    match lake.get_opt(rel)? {
        Some(bytes) => Ok(Some(decode_parquet(rel, bytes)?)),
        None if required => Err(InputError::MissingFile { file: rel.into(), lake: lake.url().into() }),
        None => Ok(None),
    }
}

mod reference;
mod staged;
mod usage;
pub use reference::*;
pub use staged::*;
pub use usage::*;

/// Grace and retention days of the rules, for accounts that leave them null.
pub const DEFAULT_WINDOWS: (i32, i32) = (15, 15);

pub fn read_reference(lake: &Lake, windows: (i32, i32)) -> Result<Reference> {
    let prices = read_prices(lake)?;
    let accounts = read_accounts(lake, windows)?;
    let (payments, packages) = {
        let by_id: HashMap<&str, &Account> = accounts.iter().map(|a| (a.account_id.as_str(), a)).collect();
        (read_payments(lake, &by_id)?, read_packages(lake, &by_id)?)
    };
    let subscriptions = read_subscriptions(lake)?;
    Ok(Reference { prices, accounts, payments, packages, subscriptions })
}
