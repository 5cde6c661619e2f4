//! The sink that streams one output table to the lake as Parquet.
//!
//! Each table of a period is one Parquet object, `<table>/billing_period=YYYY-MM/
//! part-0.parquet`, uploaded in parts and made visible whole when the upload
//! completes, so a reader never sees half a table. Files carry no timestamps or random
//! ids: the same inputs give the same bytes.
//!
//! Columns go through the parquet crate's `ArrowColumnWriter`s, in parallel, except
//! those billrun's column-chunk encoder (`lake::chunk`) takes and the FOCUS columns
//! that repeat another: ARCHITECTURE.md says why, with the measured cost of the
//! general writer on them.

use super::chunk::{self, ChunkEncoder};
use super::store::{Lake, LakeWriter, Result as LakeResult};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::properties::WriterPropertiesPtr;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnDescPtr;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use std::sync::Arc;

/// What was written: for the manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Written {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Columns whose values never repeat within a row group (record ids): written plain,
/// since a dictionary would only cost time.
const NEARLY_UNIQUE: &[&str] = &["x_UsageRecordId", "record_id"];

/// Free-text and id columns that no reader prunes by range: written without min/max
/// statistics (computing them compares every value).
const DESCRIPTIVE: &[&str] = &["ChargeDescription", "ResourceName", "Tags", "x_UsageRecordId", "x_PricingQuantityExact", "record_id", "detail"];

/// Columns of one value per resource, which a month's row group holds every one of
/// (hundreds of thousands in a large region): their dictionary may grow past the
/// general writer's 1 MiB limit, up to [`WIDE_DICTIONARY_BYTES`], rather than fall
/// back to PLAIN pages several times their size. (Where they are keyed, as in the
/// line items, billrun's own encoder keeps the same limit.)
const WIDE_DICTIONARY: &[&str] = &["ResourceId", "ResourceName"];
const WIDE_DICTIONARY_BYTES: usize = chunk::STR_DICT_BYTES_MAX;

/// Rows per row group of an output table.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// Streams one table to the lake. Columns are encoded in parallel (one task per
/// column, on the run's thread pool); each column's encoding depends only on its own
/// values, so the bytes are the same whatever the number of threads.
///
/// A column that is the very same array as an earlier one (FOCUS repeats some:
/// `ContractedCost` is `ListCost`, `RegionName` is `RegionId`, …) and is written with
/// the same settings is encoded once: the row group gets the earlier column's pages
/// again, under its own name. The bytes are those a second encoding would give. Which
/// columns repeat which is taken from a row group's first batch; a column that stops
/// repeating within the row group (`EffectiveCost`, from a commitment's line on)
/// takes over the earlier column's encoder as it stands and goes on by itself.
pub struct TableSink {
    rel: String,
    file: SerializedFileWriter<LakeWriter>,
    factory: ArrowRowGroupWriterFactory,
    /// The open row group's column writers (empty when none is open).
    group: Vec<ArrowColumnWriter>,
    /// The columns billrun encodes itself (see [`super::chunk`]), by column.
    own: Vec<Option<ChunkEncoder>>,
    /// For each column of the open row group, the earlier column it repeats.
    copy_of: Vec<Option<usize>>,
    /// Columns that may repeat an earlier one: same type, nullability and settings
    /// (`None`: the schema has nested columns, and nothing is repeated).
    may_copy: Option<Vec<Vec<usize>>>,
    group_rows: usize,
    /// Rows per row group.
    group_max: usize,
    groups: usize,
    rows: u64,
}

impl TableSink {
    pub fn create(lake: &Lake, rel: &str, schema: SchemaRef) -> LakeResult<TableSink> {
        TableSink::create_with(lake, rel, schema, ROW_GROUP_ROWS)
    }

    /// [`TableSink::create`] with row groups of `group_max` rows (a shard's results,
    /// read back a row group at a time by the commit).
    pub fn create_with(lake: &Lake, rel: &str, schema: SchemaRef, group_max: usize) -> LakeResult<TableSink> {
        let group_max = group_max.max(1);
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(group_max))
            .set_created_by(format!("billrun {}", env!("CARGO_PKG_VERSION")));
        for field in schema.fields() {
            if NEARLY_UNIQUE.contains(&field.name().as_str()) {
                props = props.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
            }
            if WIDE_DICTIONARY.contains(&field.name().as_str()) {
                props = props.set_column_dictionary_page_size_limit(ColumnPath::from(field.name().as_str()), WIDE_DICTIONARY_BYTES);
            }
            if DESCRIPTIVE.contains(&field.name().as_str()) {
                props = props.set_column_statistics_enabled(ColumnPath::from(field.name().as_str()), EnabledStatistics::None);
            }
        }
        let props = props.build();
        let out = lake.writer(rel)?;
        // Strings that arrive as dictionary keys are strings in the file.
        let file_schema = Arc::new(Schema::new_with_metadata(
            schema
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    t if *t == super::outputs::keyed_type() => f.as_ref().clone().with_data_type(DataType::Utf8),
                    _ => f.as_ref().clone(),
                })
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        ));
        let writer = ArrowWriter::try_new(out, file_schema, Some(props)).map_err(|e| io_err(lake, rel, e))?;
        let (file, factory) = writer.into_serialized_writer().map_err(|e| io_err(lake, rel, e))?;
        let may_copy = same_settings(&schema, &file);
        let own = own_encoders(&schema, &file);
        Ok(TableSink {
            rel: rel.to_string(),
            file,
            factory,
            group: Vec::new(),
            own,
            copy_of: Vec::new(),
            may_copy,
            group_rows: 0,
            group_max,
            groups: 0,
            rows: 0,
        })
    }

    pub fn write(&mut self, lake: &Lake, batch: &RecordBatch) -> LakeResult<()> {
        self.write_batch(batch).map_err(|e| io_err(lake, &self.rel, e))
    }

    fn write_batch(&mut self, batch: &RecordBatch) -> parquet::errors::Result<()> {
        // Found on the batch itself: slicing makes new arrays of every column.
        let copy_of = copies(batch.columns(), self.may_copy.as_deref());
        let mut at = 0;
        while at < batch.num_rows() {
            if self.group.is_empty() {
                self.group = self.factory.create_column_writers(self.groups)?;
            }
            let take = (self.group_max - self.group_rows).min(batch.num_rows() - at);
            let part = batch.slice(at, take);
            if self.group_rows == 0 {
                self.copy_of = copy_of.clone();
            } else {
                self.stop_repeating(&copy_of)?;
            }
            let mut jobs = Vec::with_capacity(self.group.len());
            let schema = part.schema();
            let columns = part.columns().iter().zip(schema.fields());
            for (((array, field), copy), (writer, own)) in columns.zip(&self.copy_of).zip(self.group.iter_mut().zip(self.own.iter_mut())) {
                match (copy, own) {
                    (Some(_), _) => {}
                    (None, Some(encoder)) => jobs.push(Job::Own(encoder, array)),
                    (None, None) => {
                        let mut leaves = compute_leaves(field, array)?;
                        if leaves.len() != 1 {
                            return Err(parquet::errors::ParquetError::General(format!("internal: column {} is not flat", field.name())));
                        }
                        jobs.push(Job::Arrow(writer, leaves.remove(0)));
                    }
                }
            }
            jobs.into_par_iter().try_for_each(|job| match job {
                Job::Arrow(w, leaf) => w.write(&leaf),
                Job::Own(e, array) => e.write(array.as_ref()),
            })?;
            self.group_rows += take;
            self.rows += take as u64;
            at += take;
            if self.group_rows == self.group_max {
                self.close_group()?;
            }
        }
        Ok(())
    }

    /// A column that repeated an earlier one in the open row group's batches so far
    /// but not in this batch's (`copy_of`) takes over the earlier column's encoder as
    /// it stands, its values so far being the same, and goes on by itself. A column
    /// that repeats another only from this batch on is simply encoded by itself.
    fn stop_repeating(&mut self, copy_of: &[Option<usize>]) -> parquet::errors::Result<()> {
        for (i, &now) in copy_of.iter().enumerate() {
            let Some(j) = self.copy_of[i] else { continue };
            if now == Some(j) {
                continue;
            }
            let forked = match &self.own[j] {
                Some(earlier) if self.own[i].is_some() => earlier.fork(self.file.schema_descr().column(i)),
                _ => {
                    return Err(parquet::errors::ParquetError::General(format!(
                        "internal: column {i} stopped repeating column {j} within a row group, and is not encoded here"
                    )))
                }
            };
            self.own[i] = Some(forked);
            self.copy_of[i] = None;
        }
        Ok(())
    }

    fn close_group(&mut self) -> parquet::errors::Result<()> {
        let writers = std::mem::take(&mut self.group);
        let copy_of = std::mem::take(&mut self.copy_of);
        let chunks: Vec<Option<Chunk>> = writers
            .into_par_iter()
            .zip(self.own.par_iter_mut())
            .zip(copy_of.par_iter())
            .map(|((w, own), c)| match (c, own) {
                (Some(_), _) => Ok(None),
                (None, Some(e)) => e.finish().map(|c| Some(Chunk::Own(c))),
                (None, None) => w.close().map(|c| Some(Chunk::Arrow(c))),
            })
            .collect::<Result<_, _>>()?;
        let repeated: Vec<bool> = (0..chunks.len()).map(|i| copy_of.contains(&Some(i))).collect();
        let descr: Vec<ColumnDescPtr> = (0..chunks.len()).map(|i| self.file.schema_descr().column(i)).collect();
        let props = self.file.properties().clone();
        let mut encoded: Vec<Option<(bytes::Bytes, ColumnCloseResult)>> = vec![None; chunks.len()];
        let mut rg = self.file.next_row_group()?;
        for (i, c) in chunks.into_iter().enumerate() {
            match (c, copy_of[i]) {
                (Some(Chunk::Own((bytes, close))), _) => {
                    rg.append_column(&bytes, close.clone())?;
                    encoded[i] = Some((bytes, close));
                }
                (Some(Chunk::Arrow(c)), _) if repeated[i] => {
                    let (bytes, close) = spliced(c, descr[i].clone(), &props)?;
                    rg.append_column(&bytes, close.clone())?;
                    encoded[i] = Some((bytes, close));
                }
                (Some(Chunk::Arrow(c)), _) => c.append_to_row_group(&mut rg)?,
                (None, Some(j)) => {
                    let Some((bytes, close)) = &encoded[j] else {
                        return Err(parquet::errors::ParquetError::General(format!("internal: column {i} repeats {j}, not encoded")));
                    };
                    rg.append_column(bytes, renamed(close, descr[i].clone())?)?;
                }
                (None, None) => return Err(parquet::errors::ParquetError::General(format!("internal: column {i} was not encoded"))),
            }
        }
        rg.close()?;
        self.groups += 1;
        self.group_rows = 0;
        Ok(())
    }

    /// Writes the footer and uploads every part; the table is not visible until the
    /// returned upload is completed.
    pub fn seal(mut self, lake: &Lake) -> LakeResult<(Written, super::store::Sealed)> {
        let rel = self.rel.clone();
        if self.group_rows > 0 {
            self.close_group().map_err(|e| io_err(lake, &rel, e))?;
        }
        let out = self.file.into_inner().map_err(|e| io_err(lake, &rel, e))?;
        let sealed = out.seal()?;
        Ok((Written { path: rel, rows: self.rows, bytes: sealed.size, sha256: sealed.sha256.clone() }, sealed))
    }
}

/// One column's work on a batch.
enum Job<'a> {
    Arrow(&'a mut ArrowColumnWriter, ArrowLeafColumn),
    Own(&'a mut ChunkEncoder, &'a ArrayRef),
}

/// A closed column chunk.
enum Chunk {
    Arrow(ArrowColumnChunk),
    Own((bytes::Bytes, ColumnCloseResult)),
}

/// For each column, its own encoder if billrun encodes it (see [`super::chunk`]).
fn own_encoders(schema: &Schema, file: &SerializedFileWriter<LakeWriter>) -> Vec<Option<ChunkEncoder>> {
    let descr = file.schema_descr();
    let props = file.properties();
    if descr.num_columns() != schema.fields().len() {
        return schema.fields().iter().map(|_| None).collect();
    }
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let d = descr.column(i);
            let path = d.path().clone();
            let stats = props.statistics_enabled(&path) != EnabledStatistics::None;
            let dictionary = props.dictionary_enabled(&path);
            // Strings as they are: only those written PLAIN without statistics.
            let plain_strings = *f.data_type() != DataType::Utf8 || (!dictionary && !stats);
            (chunk::takes(f.data_type(), &d) && plain_strings).then(|| ChunkEncoder::new(f.data_type(), d, f.is_nullable(), dictionary, stats))
        })
        .collect()
}

/// For each column, the earlier columns it may repeat (see [`TableSink`]): the same
/// type and nullability, and the same encoding settings.
fn same_settings(schema: &Schema, file: &SerializedFileWriter<LakeWriter>) -> Option<Vec<Vec<usize>>> {
    let fields = schema.fields();
    let descr = file.schema_descr();
    if descr.num_columns() != fields.len() || fields.iter().any(|f| f.data_type().is_nested()) {
        return None;
    }
    let props = file.properties();
    let settings = |i: usize| {
        let path = descr.column(i).path().clone();
        (
            props.dictionary_enabled(&path),
            props.column_dictionary_page_size_limit(&path),
            props.statistics_enabled(&path),
            props.encoding(&path),
            props.compression(&path),
            props.bloom_filter_properties(&path).is_some(),
        )
    };
    Some(
        (0..fields.len())
            .map(|i| {
                (0..i)
                    .filter(|&j| {
                        fields[j].data_type() == fields[i].data_type() && fields[j].is_nullable() == fields[i].is_nullable() && settings(j) == settings(i)
                    })
                    .collect()
            })
            .collect(),
    )
}

/// For each column of a batch, the earliest earlier column that is the same array.
fn copies(columns: &[ArrayRef], may_copy: Option<&[Vec<usize>]>) -> Vec<Option<usize>> {
    let Some(may) = may_copy else { return vec![None; columns.len()] };
    (0..columns.len()).map(|i| may[i].iter().copied().find(|&j| Arc::ptr_eq(&columns[i], &columns[j]))).collect()
}

/// A column chunk's bytes, in file order, and its close result with offsets into them.
fn spliced(chunk: ArrowColumnChunk, column: ColumnDescPtr, props: &WriterPropertiesPtr) -> parquet::errors::Result<(bytes::Bytes, ColumnCloseResult)> {
    let close = chunk.close().clone();
    let schema = Arc::new(parquet::schema::types::Type::group_type_builder("schema").with_fields(vec![column.self_type_ptr()]).build()?);
    let mut scratch = SerializedFileWriter::new(Vec::new(), schema, props.clone())?;
    let mut rg = scratch.next_row_group()?;
    chunk.append_to_row_group(&mut rg)?;
    let placed = rg.close()?;
    scratch.flush()?;
    let all = std::mem::take(scratch.inner_mut());
    let m = placed.column(0);
    let start = m.dictionary_page_offset().unwrap_or_else(|| m.data_page_offset()) as usize;
    let dictionary_len = m.dictionary_page_offset().map_or(0, |d| (m.data_page_offset() - d) as usize);
    let bytes = bytes::Bytes::from(all).slice(start..start + m.compressed_size() as usize);
    Ok((bytes, close.update_dictionary_location(dictionary_len)?))
}

/// A close result for another column with the same pages.
fn renamed(close: &ColumnCloseResult, column: ColumnDescPtr) -> parquet::errors::Result<ColumnCloseResult> {
    let m = &close.metadata;
    let mut b = ColumnChunkMetaData::builder(column)
        .set_compression_codec(m.compression_codec())
        .set_encodings_mask(*m.encodings_mask())
        .set_total_compressed_size(m.compressed_size())
        .set_total_uncompressed_size(m.uncompressed_size())
        .set_num_values(m.num_values())
        .set_data_page_offset(m.data_page_offset())
        .set_dictionary_page_offset(m.dictionary_page_offset())
        .set_unencoded_byte_array_data_bytes(m.unencoded_byte_array_data_bytes())
        .set_repetition_level_histogram(m.repetition_level_histogram().cloned())
        .set_definition_level_histogram(m.definition_level_histogram().cloned());
    if let Some(st) = m.statistics() {
        b = b.set_statistics(st.clone());
    }
    if let Some(v) = m.page_encoding_stats() {
        b = b.set_page_encoding_stats(v.clone());
    } else if let Some(mask) = m.page_encoding_stats_mask() {
        b = b.set_page_encoding_stats_mask(*mask);
    }
    Ok(ColumnCloseResult { metadata: b.build()?, ..close.clone() })
}

fn io_err(lake: &Lake, rel: &str, e: impl std::fmt::Display) -> super::store::LakeError {
    super::store::LakeError::Url { url: lake.url().to_string(), why: format!("writing {rel}: {e}") }
}

#[cfg(test)]
mod tests;
