//! Where a close writes its tables. A close writes each table to its place in the
//! output lake, sealed until the publication. A shard run (`--shard K/N`) writes the
//! same tables, for its accounts only, under `_shards/billing_period=P/n=N/k=K/`, each
//! row with two more columns that place it in the whole period's order:
//!
//! - `_seg`: the hour the row was written for, or [`PERIOD`] for what the close of the
//!   period writes (its own lines, rejected orders, the whole-period tables);
//! - `_key`: bytes that order a segment's rows across the shards as a single close
//!   orders them — the account's id for the tables in account order, the file and
//!   row for a row the checks rejected, the inventory's order for a package bought.
//!
//! Within a shard the rows already stand in that order, so `commit` merges the N
//! shards' rows segment by segment, by `_key` (a tie keeps the shard's own order), and
//! writes each segment as one batch: the batches a single close writes, hence its
//! bytes (`jobs/shard`).

use super::{table_path, JobError};
use crate::lake::outputs::{TableSink, Written};
use crate::lake::store::{Lake, Sealed};
use crate::shard::Shard;
use crate::time::Period;
use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The segment of the rows the close of the period writes (after every hour's).
pub const PERIOD: i64 = i64::MAX;
/// The segment column of a shard's results.
pub const SEG: &str = "_seg";
/// The merge key column of a shard's results.
pub const KEY: &str = "_key";

/// Rows per row group of a shard's results: the commit holds a row group of each
/// shard's file at a time.
const SHARD_GROUP_ROWS: usize = 128 * 1024;

/// The folder of shard `k` of `n`'s results for `period`.
pub fn shard_dir(period: Period, shard: Shard) -> String {
    format!("{}/k={}", shards_dir(period, shard.n), shard.k)
}

/// The folder of a period's results in `n` shards.
pub fn shards_dir(period: Period, n: u32) -> String {
    format!("_shards/billing_period={period}/n={n}")
}

/// Where shard `shard` writes `table`.
pub fn shard_table_path(period: Period, shard: Shard, table: &str) -> String {
    format!("{}/{table}.parquet", shard_dir(period, shard))
}

/// A table's schema with the two merge columns after its own.
pub fn with_merge_columns(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(SEG, DataType::Int64, false));
    fields.push(Field::new(KEY, DataType::Binary, false));
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The key of a row placed by a text (an account's id, a package's): `part`, then the
/// text's bytes, so keys compare as `(part, text)` do.
pub fn text_key(part: u8, text: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + text.len());
    k.push(part);
    k.extend_from_slice(text.as_bytes());
    k
}

/// The key of a row placed by numbers (a file and a row, an inventory's index).
pub fn number_key(part: u8, numbers: &[u64]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 8 * numbers.len());
    k.push(part);
    for n in numbers {
        k.extend_from_slice(&n.to_be_bytes());
    }
    k
}

/// The texts of a string column, plain or keyed (`None` for a null).
pub fn texts(batch: &RecordBatch, column: &str) -> Result<Vec<Option<String>>, JobError> {
    use arrow_array::cast::AsArray;
    let a = batch.column_by_name(column).ok_or_else(|| JobError::Bug(format!("no column {column} to order shards by")))?;
    Ok(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect(),
        DataType::Dictionary(k, _) if **k == DataType::UInt32 => {
            let d = a.as_dictionary::<arrow_array::types::UInt32Type>();
            let values = d.values().as_string::<i32>();
            d.keys().iter().map(|k| k.map(|k| values.value(k as usize).to_string())).collect()
        }
        t => return Err(JobError::Bug(format!("column {column} is {t}, not a string"))),
    })
}

/// Keys of a table in account order: the account's id (`part` 0).
pub fn account_keys(batch: &RecordBatch, column: &str) -> Result<Vec<Vec<u8>>, JobError> {
    Ok(texts(batch, column)?.iter().map(|a| text_key(0, a.as_deref().unwrap_or(""))).collect())
}

/// Where a close's tables go: the output lake's tables, or a shard's results.
pub(crate) struct Sinks<'a> {
    lake: &'a Lake,
    period: Period,
    shard: Option<Shard>,
    open: BTreeMap<&'static str, TableSink>,
}

impl<'a> Sinks<'a> {
    pub fn new(lake: &'a Lake, period: Period, shard: Option<Shard>) -> Sinks<'a> {
        Sinks { lake, period, shard, open: BTreeMap::new() }
    }

    /// Opens `table` with the rows of `schema`.
    pub fn create(&mut self, table: &'static str, schema: SchemaRef) -> Result<(), JobError> {
        let sink = match self.shard {
            None => TableSink::create(self.lake, &table_path(table, self.period), schema)?,
            Some(s) => TableSink::create_with(self.lake, &shard_table_path(self.period, s, table), with_merge_columns(&schema), SHARD_GROUP_ROWS)?,
        };
        self.open.insert(table, sink);
        Ok(())
    }

    /// Writes `batch` to `table`, as the rows of segment `seg`; `keys` gives each row's
    /// merge key (asked for only in a shard run).
    pub fn write(&mut self, table: &str, seg: i64, batch: &RecordBatch, keys: impl FnOnce() -> Result<Vec<Vec<u8>>, JobError>) -> Result<(), JobError> {
        let sink = self.open.get_mut(table).ok_or_else(|| JobError::Bug(format!("no sink for {table}")))?;
        if self.shard.is_none() {
            return Ok(sink.write(self.lake, batch)?);
        }
        let keys = keys()?;
        if keys.len() != batch.num_rows() {
            return Err(JobError::Bug(format!("{table}: {} merge keys for {} rows", keys.len(), batch.num_rows())));
        }
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.push(Arc::new(Int64Array::from(vec![seg; batch.num_rows()])));
        columns.push(Arc::new(BinaryArray::from_iter_values(keys.iter())));
        let keyed = RecordBatch::try_new(with_merge_columns(&batch.schema()), columns).map_err(|e| JobError::Bug(format!("{table}: {e}")))?;
        Ok(sink.write(self.lake, &keyed)?)
    }

    /// Writes `batch` to `table` only in a close: rows a commit writes itself (the
    /// restatements published before).
    pub fn write_unsharded(&mut self, table: &str, batch: &RecordBatch) -> Result<(), JobError> {
        match self.shard {
            Some(_) => Ok(()),
            None => self.write(table, PERIOD, batch, || Ok(Vec::new())),
        }
    }

    /// Seals every table (uploaded, not yet visible).
    pub fn seal(self) -> Result<BTreeMap<&'static str, (Written, Sealed)>, JobError> {
        let mut sealed = BTreeMap::new();
        for (t, sink) in self.open {
            sealed.insert(t, sink.seal(self.lake)?);
        }
        Ok(sealed)
    }

    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    pub fn lake(&self) -> &'a Lake {
        self.lake
    }
}

/// The whole inventory's order of a shard's packages and subscriptions (a shard's
/// engine holds its own, numbered from 0).
#[derive(Clone, Debug, Default)]
pub struct Globals {
    packages: Vec<u64>,
    subscriptions: Vec<u64>,
}

impl Globals {
    pub fn of(reference: &crate::model::Reference, owns: impl Fn(&str) -> bool) -> Globals {
        Globals {
            packages: reference.packages.iter().enumerate().filter(|(_, p)| owns(&p.account_id)).map(|(i, _)| i as u64).collect(),
            subscriptions: reference.subscriptions.iter().enumerate().filter(|(_, s)| owns(&s.account_id)).map(|(i, _)| i as u64).collect(),
        }
    }

    pub fn package(&self, i: u32) -> u64 {
        self.packages.get(i as usize).copied().unwrap_or(u64::MAX)
    }

    pub fn subscription(&self, i: u32) -> u64 {
        self.subscriptions.get(i as usize).copied().unwrap_or(u64::MAX)
    }
}
