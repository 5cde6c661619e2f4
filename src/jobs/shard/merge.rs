//! The commit's merge of one table: the N shards' rows, segment by segment, in the
//! order of their merge keys (`close/sinks.rs`), each segment written as one batch —
//! the batch a single close writes for that hour, or for the close of the period.
//! The shards' files are read a batch at a time, so the merge holds a segment of
//! each, not the month.

use crate::jobs::close::sinks::{Sinks, KEY, SEG};
use crate::jobs::JobError;
use crate::lake::store::Lake;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use std::sync::Arc;

/// Rows read from a shard's file at a time.
const READ_ROWS: usize = 64 * 1024;

/// One shard's rows of a table, read in order.
struct Cursor {
    path: String,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    at: usize,
}

impl Cursor {
    fn open(lake: &Lake, path: &str) -> Result<Cursor, JobError> {
        let bytes = lake.get(path)?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.with_batch_size(READ_ROWS).build())
            .map_err(|e| JobError::Plan(format!("{path}: not a shard's results: {e}")))?;
        Ok(Cursor { path: path.to_string(), reader, batch: None, at: 0 })
    }

    /// The segment of the next row, reading the next batch when this one is done.
    fn next_seg(&mut self) -> Result<Option<i64>, JobError> {
        loop {
            if let Some(b) = &self.batch {
                if self.at < b.num_rows() {
                    return Ok(Some(segs(b, &self.path)?.value(self.at)));
                }
            }
            match self.reader.next() {
                Some(b) => {
                    self.batch = Some(b.map_err(|e| JobError::Plan(format!("{}: unreadable: {e}", self.path)))?);
                    self.at = 0;
                }
                None => {
                    self.batch = None;
                    return Ok(None);
                }
            }
        }
    }

    /// The rows of segment `seg` from here on.
    fn take(&mut self, seg: i64) -> Result<Vec<RecordBatch>, JobError> {
        let mut out = Vec::new();
        while self.next_seg()? == Some(seg) {
            let b = self.batch.as_ref().expect("a batch is open");
            let s = segs(b, &self.path)?;
            let end = (self.at..b.num_rows()).find(|&i| s.value(i) != seg).unwrap_or(b.num_rows());
            out.push(b.slice(self.at, end - self.at));
            self.at = end;
        }
        Ok(out)
    }
}

fn segs<'b>(b: &'b RecordBatch, path: &str) -> Result<&'b arrow_array::Int64Array, JobError> {
    b.column_by_name(SEG)
        .and_then(|c| c.as_primitive_opt::<arrow_array::types::Int64Type>())
        .ok_or_else(|| JobError::Plan(format!("{path}: no {SEG} column: not a shard's results")))
}

/// Merges `table` from the shards' files `paths` (shard 0 first) into `sinks`, whose
/// `table` is open with `schema`. Returns the rows written.
pub fn merge_table(lake: &Lake, paths: &[String], table: &'static str, schema: &SchemaRef, sinks: &mut Sinks<'_>) -> Result<u64, JobError> {
    let mut cursors = paths.iter().map(|p| Cursor::open(lake, p)).collect::<Result<Vec<_>, _>>()?;
    let mut rows = 0u64;
    loop {
        let mut seg: Option<i64> = None;
        for c in &mut cursors {
            if let Some(s) = c.next_seg()? {
                seg = Some(seg.map_or(s, |m: i64| m.min(s)));
            }
        }
        let Some(seg) = seg else { break };
        // The segment's rows of every shard, shard by shard, each in its own order.
        let mut parts: Vec<RecordBatch> = Vec::new();
        for c in &mut cursors {
            parts.extend(c.take(seg)?);
        }
        let batch = merged(&parts, schema, &paths.join(", "))?;
        rows += batch.num_rows() as u64;
        sinks.write(table, seg, &batch, || Ok(Vec::new()))?;
    }
    Ok(rows)
}

/// The rows of `parts` in the order of their keys (a tie keeps the parts' order), as
/// a batch of `schema`.
fn merged(parts: &[RecordBatch], schema: &SchemaRef, from: &str) -> Result<RecordBatch, JobError> {
    let keys: Vec<&arrow_array::BinaryArray> = parts
        .iter()
        .map(|p| p.column_by_name(KEY).and_then(|c| c.as_binary_opt::<i32>()).ok_or_else(|| JobError::Plan(format!("{from}: no {KEY} column"))))
        .collect::<Result<_, _>>()?;
    let mut order: Vec<(usize, usize)> = parts.iter().enumerate().flat_map(|(p, b)| (0..b.num_rows()).map(move |r| (p, r))).collect();
    order.sort_by(|a, b| keys[a.0].value(a.1).cmp(keys[b.0].value(b.1)));
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let arrays: Vec<&dyn Array> = parts
            .iter()
            .map(|p| p.column_by_name(field.name()).map(|c| c.as_ref()).ok_or_else(|| JobError::Plan(format!("{from}: no column {}", field.name()))))
            .collect::<Result<_, _>>()?;
        let column = match arrays.is_empty() {
            true => arrow_array::new_empty_array(&read_type(field.data_type())),
            false => arrow_select::interleave::interleave(&arrays, &order).map_err(|e| JobError::Bug(format!("merging {}: {e}", field.name())))?,
        };
        columns.push(as_type(column, field.data_type(), field.name())?);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| JobError::Bug(format!("merged rows of {from}: {e}")))
}

/// The type a column of `target` type reads back as: a keyed string is a string in
/// the file.
fn read_type(target: &DataType) -> DataType {
    match target {
        DataType::Dictionary(_, v) => v.as_ref().clone(),
        t => t.clone(),
    }
}

/// A column read back, in its table's type: strings the close carries as keys into
/// their distinct values are keyed again (the encoder writes the same bytes for any
/// keys of the same values).
fn as_type(column: ArrayRef, target: &DataType, name: &str) -> Result<ArrayRef, JobError> {
    if column.data_type() == target {
        return Ok(column);
    }
    match (column.data_type(), target) {
        (DataType::Utf8, DataType::Dictionary(k, v)) if **k == DataType::UInt32 && **v == DataType::Utf8 => {
            let keyed: DictionaryArray<UInt32Type> = column.as_string::<i32>().iter().collect();
            Ok(Arc::new(keyed))
        }
        (found, _) => Err(JobError::Plan(format!("column {name} reads back as {found}, not {target}"))),
    }
}
