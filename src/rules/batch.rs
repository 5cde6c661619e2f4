//! The core's view of a batch of usage rows: a set of typed columns read by row
//! number. The rules and the engine are written against these traits; the lake
//! adapter implements them for the columns it decodes, so the core never
//! names a file format, and the engine is compiled for the adapter's columns (no
//! dynamic dispatch a row).

use crate::decimal::Dec;
use crate::time::Micros;
use std::sync::Arc;

/// A value that is present but cannot be held as the contract's type (a decimal
/// beyond 38 digits at scale 10, a timestamp beyond the microsecond range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

/// The distinct values of a dictionary-encoded text column, by key.
pub trait Entries {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The value of key `k` (`None`: a null entry, or no such key).
    fn entry(&self, k: usize) -> Option<&str>;
}

/// A text column.
pub trait TextColumn {
    type Entries: Entries;
    /// Row `i`'s value (`None`: null).
    fn get(&self, i: usize) -> Option<&str>;
    /// Row `i`'s key into the column's dictionary, when it has one.
    fn key(&self, i: usize) -> Option<usize>;
    /// The column's distinct values, when it is dictionary-encoded: checks and
    /// lookups are then made once a value, not once a row.
    fn dictionary(&self) -> Option<&Self::Entries>;
}

/// An integer column, of any width.
pub trait IntColumn {
    fn get(&self, i: usize) -> Option<i64>;
}

/// A decimal column, read at the contract's scale 10.
pub trait DecimalColumn {
    fn get(&self, i: usize) -> Option<Result<Dec, OutOfRange>>;
}

/// A timestamp column, read as UTC microseconds.
pub trait TimeColumn {
    fn get(&self, i: usize) -> Option<Result<Micros, OutOfRange>>;
}

/// The column types an adapter reads usage into.
pub trait Columns {
    type Text: TextColumn + Clone + std::fmt::Debug + Send + Sync;
    type Int: IntColumn + Clone + std::fmt::Debug + Send + Sync;
    type Decimal: DecimalColumn + Clone + std::fmt::Debug + Send + Sync;
    type Time: TimeColumn + Clone + std::fmt::Debug + Send + Sync;
}

/// A batch of usage rows of one file (data-contract `usage/hourly`), as typed columns.
#[derive(Clone, Debug)]
pub struct UsageBatch<C: Columns> {
    /// Index of the file in the run's file list.
    pub file: u32,
    /// Row number (in the file) of this batch's first row.
    pub first_row: u32,
    /// Row numbers (in the file) of each row, when the batch holds a selection of the
    /// file's rows rather than a run of them.
    pub rows: Option<Arc<[u32]>>,
    /// The partition hour of the file (start instant).
    pub partition_hour: Micros,
    pub len: usize,
    pub record_id: C::Text,
    pub account_id: C::Text,
    pub region: C::Text,
    pub resource_id: C::Text,
    pub resource_name: C::Text,
    pub module: C::Text,
    pub sku: C::Text,
    pub unit_count: C::Int,
    pub pool_type: C::Text,
    pub pool_id: C::Text,
    pub nodes: C::Int,
    pub quantity: C::Decimal,
    pub start_time: C::Time,
    pub end_time: C::Time,
    pub enterprise_project: C::Text,
    pub tags: C::Text,
}

impl<C: Columns> UsageBatch<C> {
    /// The row number in its file of the batch's row `r`.
    pub fn file_row(&self, r: usize) -> u32 {
        match &self.rows {
            Some(rows) => rows.get(r).copied().unwrap_or(u32::MAX),
            None => self.first_row.saturating_add(r as u32),
        }
    }
}

/// The columns of a usage row that say whose it is and what it meters: what a what-if
/// run selects rows by.
#[derive(Clone, Copy, Debug, Default)]
pub struct RowKeys<'a> {
    pub account_id: Option<&'a str>,
    pub sku: Option<&'a str>,
    pub region: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub pool_id: Option<&'a str>,
}
