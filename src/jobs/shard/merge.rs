//! The commit's merge of one table: the N shards' rows, segment by segment, in the
//! order of their merge keys (`close/sinks.rs`), each segment written as one batch —
//! the batch a single close writes for that hour, or for the close of the period.
//! The shards' files are read a batch at a time, so the merge holds a segment of
//! each, not the month.

use crate::jobs::close::sinks::{with_merge_columns, Sinks, KEY, SEG};
use crate::jobs::JobError;
use crate::lake::store::Lake;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::{ChunkReader, Length};
use rayon::prelude::*;
use std::sync::Arc;

/// Rows read from a shard's file at a time.
const READ_ROWS: usize = 64 * 1024;

/// One shard's rows of a table, read in order, a row group at a time (one ranged read
/// each): the merge holds a row group of each shard, never a shard's whole file.
struct Cursor {
    path: String,
    lake: Lake,
    meta: ArrowReaderMetadata,
    size: u64,
    group: usize,
    reader: Option<ParquetRecordBatchReader>,
    batch: Option<RecordBatch>,
    at: usize,
}

impl Cursor {
    /// Opens a shard's file of a table of `schema` (with the merge columns): its
    /// footer read, keyed strings read back keyed.
    fn open(lake: &Lake, path: &str, size: u64, schema: &SchemaRef) -> Result<Cursor, JobError> {
        let bad = |why: String| JobError::Plan(format!("{path}: not a shard's results: {why}"));
        if size < 12 {
            return Err(bad("too short".into()));
        }
        let tail = lake.get_range(path, size - 8..size)?;
        let tail: [u8; 8] = tail.as_ref().try_into().map_err(|_| bad("short footer".into()))?;
        let len = parquet::file::metadata::FooterTail::try_new(&tail).map_err(|e| bad(e.to_string()))?.metadata_length() as u64;
        let footer = lake.get_range(path, size.saturating_sub(8 + len)..size - 8)?;
        let meta = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| bad(e.to_string()))?;
        let options = ArrowReaderOptions::new().with_schema(with_merge_columns(schema));
        let meta = ArrowReaderMetadata::try_new(Arc::new(meta), options).map_err(|e| bad(e.to_string()))?;
        Ok(Cursor { path: path.to_string(), lake: lake.clone(), meta, size, group: 0, reader: None, batch: None, at: 0 })
    }

    /// The next batch: from the open row group, or the next row group read.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, JobError> {
        loop {
            if let Some(r) = &mut self.reader {
                if let Some(b) = r.next() {
                    return b.map(Some).map_err(|e| JobError::Plan(format!("{}: unreadable: {e}", self.path)));
                }
                self.reader = None;
            }
            let groups = self.meta.metadata().row_groups();
            let Some(rg) = groups.get(self.group) else { return Ok(None) };
            let spans = rg.columns().iter().map(|c| c.byte_range());
            let start = spans.clone().map(|(s, _)| s).min().unwrap_or(0);
            let end = spans.map(|(s, l)| s + l).max().unwrap_or(0).min(self.size);
            let bytes = self.lake.get_range(&self.path, start..end)?;
            let window = Window { base: start, bytes, size: self.size };
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(window, self.meta.clone())
                .with_row_groups(vec![self.group])
                .with_batch_size(READ_ROWS)
                .build()
                .map_err(|e| JobError::Plan(format!("{}: unreadable: {e}", self.path)))?;
            self.reader = Some(reader);
            self.group += 1;
        }
    }

    /// The segment of the next row, reading the next batch when this one is done.
    fn next_seg(&mut self) -> Result<Option<i64>, JobError> {
        loop {
            if let Some(b) = &self.batch {
                if self.at < b.num_rows() {
                    return Ok(Some(segs(b, &self.path)?.value(self.at)));
                }
            }
            match self.next_batch()? {
                Some(b) => {
                    self.batch = Some(b);
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

/// Merges `table` from the shards' files `files` (path and size, shard 0 first) into
/// `sinks`, whose `table` is open with `schema`. Returns the rows written.
pub fn merge_table(lake: &Lake, files: &[(String, u64)], table: &'static str, schema: &SchemaRef, sinks: &mut Sinks<'_>) -> Result<u64, JobError> {
    let mut cursors = files.iter().map(|(p, size)| Cursor::open(lake, p, *size, schema)).collect::<Result<Vec<_>, _>>()?;
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let mut rows = 0u64;
    loop {
        // The shards' files are read and decoded side by side (a row group each).
        let next: Vec<Option<i64>> = cursors.par_iter_mut().map(Cursor::next_seg).collect::<Result<_, _>>()?;
        let Some(seg) = next.into_iter().flatten().min() else { break };
        // The segment's rows of every shard, shard by shard, each in its own order.
        let taken: Vec<Vec<RecordBatch>> = cursors.par_iter_mut().map(|c| c.take(seg)).collect::<Result<_, _>>()?;
        let parts: Vec<RecordBatch> = taken.into_iter().flatten().collect();
        let batch = merged(&parts, schema, &paths.join(", "))?;
        rows += batch.num_rows() as u64;
        // In the batches the close writes: one a segment, but the cost analysis in
        // batches of a fixed number of rows.
        let size = match table {
            "cost/analysis" => crate::cost::tables::ANALYSIS_BATCH_ROWS,
            _ => batch.num_rows().max(1),
        };
        let mut at = 0;
        while at < batch.num_rows() {
            let len = size.min(batch.num_rows() - at);
            sinks.write(table, seg, &batch.slice(at, len), || Ok(Vec::new()))?;
            at += len;
        }
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
    // Each part's rows stand in key order, most in runs of one key (an account's):
    // the runs are ordered, stably, rather than the rows.
    let mut runs: Vec<(&[u8], usize, usize, usize)> = Vec::new();
    for (p, k) in keys.iter().enumerate() {
        let mut r = 0;
        while r < k.len() {
            let key = k.value(r);
            let end = (r + 1..k.len()).find(|&i| k.value(i) != key).unwrap_or(k.len());
            runs.push((key, p, r, end));
            r = end;
        }
    }
    runs.sort_by(|a, b| a.0.cmp(b.0));
    let order: Vec<(usize, usize)> = runs.iter().flat_map(|&(_, p, from, to)| (from..to).map(move |r| (p, r))).collect();
    // Each column on its own: they are many, and independent.
    let columns: Vec<ArrayRef> = schema
        .fields()
        .par_iter()
        .map(|field| {
            let arrays: Vec<&dyn Array> = parts
                .iter()
                .map(|p| p.column_by_name(field.name()).map(|c| c.as_ref()).ok_or_else(|| JobError::Plan(format!("{from}: no column {}", field.name()))))
                .collect::<Result<_, _>>()?;
            let column = match arrays.is_empty() {
                true => arrow_array::new_empty_array(field.data_type()),
                false => arrow_select::interleave::interleave(&arrays, &order).map_err(|e| JobError::Bug(format!("merging {}: {e}", field.name())))?,
            };
            as_type(column, field.data_type(), field.name())
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| JobError::Bug(format!("merged rows of {from}: {e}")))
}

/// A column read back, checked to be of its table's type (keyed strings are read back
/// keyed: the reader is given the table's schema).
fn as_type(column: ArrayRef, target: &DataType, name: &str) -> Result<ArrayRef, JobError> {
    match column.data_type() == target {
        true => Ok(column),
        false => Err(JobError::Plan(format!("column {name} reads back as {}, not {target}", column.data_type()))),
    }
}

/// A byte range of a file, fetched whole, served as the file to the Parquet reader
/// (which reads only that row group's column chunks from it).
struct Window {
    base: u64,
    bytes: Bytes,
    size: u64,
}

impl Window {
    fn slice(&self, start: u64, len: usize) -> parquet::errors::Result<Bytes> {
        let from = start.checked_sub(self.base).map(|s| s as usize).filter(|&s| s + len <= self.bytes.len());
        from.map(|s| self.bytes.slice(s..s + len))
            .ok_or_else(|| parquet::errors::ParquetError::General(format!("bytes {start}+{len} outside the row group read")))
    }
}

impl Length for Window {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for Window {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        let rest = (self.base + self.bytes.len() as u64).saturating_sub(start) as usize;
        Ok(self.slice(start, rest)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, length)
    }
}
