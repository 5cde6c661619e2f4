//! The output tables of the data contract: their Arrow schemas, the conversion of the
//! rules' records into columns, and the sink that streams a table to the lake.
//!
//! Each table of a period is one Parquet object, `<table>/billing_period=YYYY-MM/
//! part-0.parquet`, uploaded in parts and made visible whole when the upload
//! completes, so a reader never sees half a table. Files carry no timestamps or random
//! ids: the same inputs give the same bytes.

use super::chunk::{self, ChunkEncoder};
use super::store::{Lake, LakeWriter, Result as LakeResult};
use crate::decimal::Dec;
use crate::engine::{Invoice, LedgerRow, RejectedOrder};
use crate::lake::inputs::{UsageChunk, UsageFile, SUBSCRIPTIONS};
use crate::model::{Account, Module, Package, PoolType, PricingUnit};
use crate::rules::pricing::Catalog;
use crate::rules::records::*;
use crate::rules::subscriptions::Subscriptions;
use crate::time::{Micros, Period};
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::types::UInt32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, DictionaryArray, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
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
fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}
fn s(name: &str) -> Field {
    f(name, DataType::Utf8, true)
}
fn sn(name: &str) -> Field {
    f(name, DataType::Utf8, false)
}
/// A string column carried as keys into its distinct values (see [`col_keyed`]).
fn keyed_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
}
fn k(name: &str) -> Field {
    f(name, keyed_type(), true)
}
fn kn(name: &str) -> Field {
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

// ---------------------------------------------------------------- the sink

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
    groups: usize,
    rows: u64,
}

impl TableSink {
    pub fn create(lake: &Lake, rel: &str, schema: SchemaRef) -> LakeResult<TableSink> {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
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
                    t if *t == keyed_type() => f.as_ref().clone().with_data_type(DataType::Utf8),
                    _ => f.as_ref().clone(),
                })
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        ));
        let writer = ArrowWriter::try_new(out, file_schema, Some(props)).map_err(|e| io_err(lake, rel, e))?;
        let (file, factory) = writer.into_serialized_writer().map_err(|e| io_err(lake, rel, e))?;
        let may_copy = same_settings(&schema, &file);
        let own = own_encoders(&schema, &file);
        Ok(TableSink { rel: rel.to_string(), file, factory, group: Vec::new(), own, copy_of: Vec::new(), may_copy, group_rows: 0, groups: 0, rows: 0 })
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
            let take = (ROW_GROUP_ROWS - self.group_rows).min(batch.num_rows() - at);
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
            if self.group_rows == ROW_GROUP_ROWS {
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

// ---------------------------------------------------------------- context

/// Strings derived once per run: each catalog row's `SkuPriceId`, each account's
/// `InvoiceId`.
pub struct Ids {
    pub price: Vec<String>,
    pub invoice: Vec<String>,
}

impl Ids {
    pub fn new(period: Period, accounts: &[Account], catalog: &Catalog) -> Ids {
        Ids {
            price: (0..catalog.rows.len() as u32).map(|r| sku_price_id(catalog, r)).collect(),
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

// ---------------------------------------------------------------- line items (FOCUS)

pub fn line_items_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        kn("BillingAccountId"),
        k("BillingAccountName"),
        kn("BillingAccountType"),
        kn("BillingCurrency"),
        f("BillingPeriodStart", ts_type(), false),
        f("BillingPeriodEnd", ts_type(), false),
        f("ChargePeriodStart", ts_type(), false),
        f("ChargePeriodEnd", ts_type(), false),
        kn("ChargeCategory"),
        k("ChargeClass"),
        k("ChargeDescription"),
        k("ChargeFrequency"),
        k("PricingCategory"),
        f("PricingQuantity", dec_type(), true),
        k("PricingUnit"),
        f("ConsumedQuantity", dec_type(), true),
        k("ConsumedUnit"),
        f("ListUnitPrice", dec_type(), true),
        f("ListCost", dec_type(), false),
        f("ContractedUnitPrice", dec_type(), true),
        f("ContractedCost", dec_type(), false),
        f("BilledCost", dec_type(), false),
        f("EffectiveCost", dec_type(), false),
        k("CommitmentDiscountId"),
        k("CommitmentDiscountName"),
        k("CommitmentDiscountType"),
        k("CommitmentDiscountCategory"),
        k("CommitmentDiscountStatus"),
        f("CommitmentDiscountQuantity", dec_type(), true),
        k("CommitmentDiscountUnit"),
        kn("InvoiceId"),
        kn("InvoiceIssuerName"),
        kn("ProviderName"),
        kn("PublisherName"),
        k("RegionId"),
        k("RegionName"),
        k("ResourceId"),
        k("ResourceName"),
        k("ResourceType"),
        k("ServiceCategory"),
        k("ServiceName"),
        k("ServiceSubcategory"),
        k("SkuId"),
        k("SkuPriceId"),
        k("SubAccountId"),
        k("SubAccountName"),
        k("Tags"),
        s("x_UsageRecordId"),
        k("x_Module"),
        k("x_EnterpriseProject"),
        kn("x_BillingMode"),
        k("x_BillingItem"),
        k("x_PoolType"),
        k("x_PoolId"),
        f("x_TierStart", dec_type(), true),
        k("x_PricingQuantityExact"),
    ]))
}

/// The FOCUS `ResourceType` of a module.
fn resource_type(m: Module) -> &'static str {
    match m {
        Module::Notebook => "Notebook Instance",
        Module::Training => "Training Job",
        Module::InferenceRealtime => "Real-Time Service",
        Module::InferenceBatch => "Batch Service",
        Module::InferenceEdge => "Edge Service",
        Module::Workflow => "Workflow",
        Module::ExemlTraining => "ExeML Training Job",
        Module::ExemlDeployment => "ExeML Deployment",
        Module::DedicatedPool => "Dedicated Resource Pool",
        Module::LiteCluster => "Lite Cluster",
        Module::LiteServer => "Lite Server",
        Module::Maas => "MaaS Service",
        Module::Obs => "OBS Bucket",
        Module::Sfs => "SFS File System",
        Module::Evs => "EVS Disk",
        Module::Smn => "SMN Topic",
        Module::Lts => "LTS Log Group",
    }
}

fn service(v: &LineView<'_>) -> crate::model::Service {
    v.module.map(Module::service).unwrap_or(crate::model::PLATFORM_SERVICE)
}

pub fn unit_name(u: PricingUnit) -> &'static str {
    match u {
        PricingUnit::NodeHour => "Node-Hours",
        PricingUnit::GbHour => "GB-Hours",
        PricingUnit::Count => "Requests",
        PricingUnit::Gb => "GB",
        PricingUnit::NodeMonth => "Node-Months",
        PricingUnit::NodeYear => "Node-Years",
    }
}

/// Per-line derived values, computed once.
struct LineView<'a> {
    account: &'a Account,
    usage: Option<(&'a UsageChunk, usize)>,
    sku: Option<&'a str>,
    region: Option<&'a str>,
    module: Option<Module>,
    billing_mode: &'static str,
    commitment: Option<(&'a str, &'static str)>,
}

impl<'a> LineView<'a> {
    /// A string field of the line's usage row.
    fn usage_str(&self, get: fn(&'a UsageChunk, usize) -> Option<&'a str>) -> Option<&'a str> {
        self.usage.and_then(|(c, r)| get(c, r))
    }
}

/// A batch's lines grouped by what some of their columns depend on alone (their
/// kind, price row, commitment, …; their account): such a column is built from a
/// line of each group, as keys into its groups' values, all sharing one buffer of
/// keys. The file holds plain strings.
struct Groups {
    keys: arrow_buffer::ScalarBuffer<u32>,
    /// A line of each group, in order of first appearance.
    first: Vec<usize>,
}

impl Groups {
    fn of<K: std::hash::Hash + Eq + Copy>(lines: usize, key: impl Fn(usize) -> K) -> Groups {
        let mut at: rustc_hash::FxHashMap<K, u32> = rustc_hash::FxHashMap::default();
        let mut first = Vec::new();
        let mut last: Option<(K, u32)> = None;
        let keys: Vec<u32> = (0..lines)
            .map(|i| {
                let k = key(i);
                match last {
                    Some((lk, g)) if lk == k => g,
                    _ => {
                        let next = first.len() as u32;
                        let g = *at.entry(k).or_insert_with(|| {
                            first.push(i);
                            next
                        });
                        last = Some((k, g));
                        g
                    }
                }
            })
            .collect();
        Groups { keys: keys.into(), first }
    }

    /// The column of `value`, which must depend on what the lines are grouped by
    /// alone. A group whose value is none is null in every line.
    fn column<'a>(&self, value: impl Fn(usize) -> Option<&'a str>) -> ArrayRef {
        self.keyed(self.first.iter().map(|&i| value(i)).collect())
    }

    /// The column of a text `write` composes for a line (`false`, before writing
    /// anything: none, a null), which must depend on what the lines are grouped by
    /// alone: composed once a group, not formatted a line, each group's text written
    /// into the one buffer of an Arrow string builder.
    fn texts(&self, write: impl Fn(&mut StringBuilder, usize) -> bool) -> ArrayRef {
        let mut texts = StringBuilder::new();
        for &i in &self.first {
            if write(&mut texts, i) {
                texts.append_value("");
            } else {
                texts.append_null();
            }
        }
        self.keyed_values(texts.finish())
    }

    /// The lines' keys into the groups' `values`.
    fn keyed(&self, values: Vec<Option<&str>>) -> ArrayRef {
        self.keyed_values(StringArray::from(values))
    }

    /// The lines' keys into the groups' `values` (an array of one value a group).
    fn keyed_values(&self, values: StringArray) -> ArrayRef {
        use arrow_array::Array;
        let nulls = (values.null_count() > 0).then(|| {
            let valid = arrow_buffer::BooleanBuffer::collect_bool(self.keys.len(), |i| values.is_valid(self.keys[i] as usize));
            arrow_buffer::NullBuffer::new(valid)
        });
        let keys = UInt32Array::new(self.keys.clone(), nulls);
        Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, Arc::new(values)).expect("every key indexes a value"))
    }
}

/// What the columns [`Groups`] builds for a line depend on.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct LineClass {
    kind: LineKind,
    price_row: Option<u32>,
    commitment: Option<Commitment>,
    unit: Option<PricingUnit>,
    module: Option<Module>,
    /// By address: the catalog's, an inventory entry's or a usage column's.
    sku: Option<(usize, usize)>,
    region: Option<(usize, usize)>,
}

/// Builds columns in parallel, in order: each expression is a column.
macro_rules! par_columns {
    ($($column:expr),* $(,)?) => {{
        let builders: Vec<Box<dyn Fn() -> ArrayRef + Sync + '_>> = vec![$(Box::new(|| $column)),*];
        builders.par_iter().map(|build| build()).collect::<Vec<ArrayRef>>()
    }};
}

pub fn line_items_batch(lines: &[Line], chunks: &[UsageChunk], n: &Names<'_>) -> RecordBatch {
    let views: Vec<LineView<'_>> = lines
        .par_iter()
        .map(|l| {
            let usage = l.usage.map(|loc| (&chunks[loc.chunk as usize], loc.row as usize));
            let (mut sku, mut region, mut module) = (None, None, None);
            if let Some((c, r)) = usage {
                // The price row's own strings when there is one (the same text): they
                // live as long as the catalog, which keyed columns need.
                let row = l.price_row.map(|p| n.catalog.row(p));
                sku = row.map(|p| p.sku.as_str()).or_else(|| c.sku.get(r));
                region = row.map(|p| p.region.as_str()).or_else(|| c.region.get(r));
                module = l.module;
            }
            let commitment = l.commitment.map(|c| match c {
                Commitment::Package(i) => {
                    let p = &n.packages[i as usize];
                    sku = sku.or(Some(p.sku.as_str()));
                    region = region.or(Some(p.region.as_str()));
                    (p.package_id.as_str(), "Resource Package")
                }
                Commitment::Subscription(i) => {
                    let s = n.subs.get(i);
                    sku = sku.or(Some(s.sku.as_str()));
                    region = region.or(Some(s.region.as_str()));
                    (s.subscription_id.as_str(), "Yearly/Monthly")
                }
            });
            let billing_mode = match (l.kind, l.commitment) {
                (LineKind::Adjustment, _) => "pay_per_use",
                (LineKind::PoolJob, _) => "dedicated_pool",
                (_, Some(Commitment::Package(_))) => "package",
                (_, Some(Commitment::Subscription(_))) => "yearly_monthly",
                _ => "pay_per_use",
            };
            LineView { account: n.account(l.account), usage, sku, region, module, billing_mode, commitment }
        })
        .collect();
    let ps = n.period.start();
    let pe = n.period.end();
    let is_usage = |l: &Line| !matches!(l.kind, LineKind::Purchase | LineKind::Adjustment);
    let constant = |v: Option<&str>| col_keyed(lines.iter().map(|_| v));
    let address = |s: Option<&str>| s.map(|s| (s.as_ptr() as usize, s.len()));
    let class = Groups::of(lines.len(), |i| {
        let (l, v) = (&lines[i], &views[i]);
        LineClass {
            kind: l.kind,
            price_row: l.price_row,
            commitment: l.commitment,
            unit: l.unit,
            module: v.module,
            sku: address(v.sku),
            region: address(v.region),
        }
    });
    let account = Groups::of(lines.len(), |i| lines[i].account);
    let qty: Vec<Dec> = lines.iter().map(|l| l.quantity.to_dec()).collect();
    // Columns that are the same as others in most batches (no commitment, no
    // purchase) are then shared too; the sink encodes a column by itself from the
    // batch on where it differs.
    let same_quantity = lines.iter().all(|l| l.kind != LineKind::Purchase);
    let same_unit = lines.iter().all(|l| is_usage(l) || l.unit.is_none());
    let same_cost = lines.iter().all(|l| l.effective == l.billed);
    let unless = |same: bool, build: &dyn Fn() -> ArrayRef| if same { arrow_array::new_null_array(&DataType::Null, 0) } else { build() };
    // Columns FOCUS repeats are built once and shared (the sink then encodes them once).
    let [list_unit_price, list_cost, commitment_id, provider, region, project, pricing_quantity, pricing_unit, billed, consumed_quantity, consumed_unit, effective]: [ArrayRef; 12] = par_columns![
        col_dec(lines.iter().map(|l| l.price_row.map(|_| l.list_unit_price))),
        col_dec(lines.iter().map(|l| Some(l.list_cost))),
        class.column(|i| views[i].commitment.map(|c| c.0)),
        constant(Some(PROVIDER)),
        class.column(|i| views[i].region),
        col_keyed(views.iter().map(|v| v.usage_str(|c, r| c.enterprise_project.get(r)))),
        col_dec(lines.iter().zip(&qty).map(|(l, q)| (l.kind != LineKind::Adjustment).then_some(*q))),
        class.column(|i| lines[i].unit.map(unit_name)),
        col_dec(lines.iter().map(|l| Some(l.billed))),
        unless(same_quantity, &|| col_dec(lines.iter().zip(&qty).map(|(l, q)| is_usage(l).then_some(*q)))),
        unless(same_unit, &|| class.column(|i| if is_usage(&lines[i]) { lines[i].unit.map(unit_name) } else { None })),
        unless(same_cost, &|| col_dec(lines.iter().map(|l| Some(l.effective)))),
    ]
    .try_into()
    .expect("twelve columns");
    let shared = |same: bool, other: &ArrayRef, own: ArrayRef| if same { other.clone() } else { own };
    let consumed_quantity = shared(same_quantity, &pricing_quantity, consumed_quantity);
    let consumed_unit = shared(same_unit, &pricing_unit, consumed_unit);
    let effective = shared(same_cost, &billed, effective);
    let columns: Vec<ArrayRef> = par_columns![
        account.column(|i| Some(views[i].account.account_id.as_str())),
        account.column(|i| Some(views[i].account.account_name.as_str())),
        constant(Some("Billing Account")),
        account.column(|i| Some(views[i].account.currency.as_str())),
        col_ts(lines.iter().map(|_| Some(ps))),
        col_ts(lines.iter().map(|_| Some(pe))),
        col_ts(lines.iter().map(|l| Some(l.charge_start))),
        col_ts(lines.iter().map(|l| Some(l.charge_end))),
        class.column(|i| Some(lines[i].kind.charge_category())),
        constant(None),
        // A description depends on the line's kind, SKU, price row and commitment.
        class.texts(|b, i| {
            describe(b, &lines[i], &views[i], n);
            true
        }),
        class.column(|i| {
            Some(match lines[i].kind {
                LineKind::Purchase => "One-Time",
                LineKind::Unused => "Recurring",
                _ => "Usage-Based",
            })
        }),
        class.column(|i| match lines[i].kind {
            LineKind::Standard | LineKind::PoolJob => Some("Standard"),
            LineKind::Committed | LineKind::Unused => Some("Committed"),
            LineKind::Purchase => Some("Standard"),
            LineKind::Adjustment => None,
        }),
        pricing_quantity.clone(),
        pricing_unit.clone(),
        consumed_quantity.clone(),
        consumed_unit.clone(),
        list_unit_price.clone(),
        list_cost.clone(),
        list_unit_price.clone(),
        list_cost.clone(),
        billed.clone(),
        effective.clone(),
        commitment_id.clone(),
        commitment_id.clone(),
        class.column(|i| views[i].commitment.map(|c| c.1)),
        class.column(|i| views[i].commitment.map(|_| "Usage")),
        class.column(|i| match (lines[i].kind, lines[i].commitment) {
            (LineKind::Committed, Some(_)) => Some("Used"),
            (LineKind::Unused, Some(_)) => Some("Unused"),
            _ => None,
        }),
        col_dec(lines.iter().zip(&qty).map(|(l, q)| { (l.commitment.is_some() && matches!(l.kind, LineKind::Committed | LineKind::Unused)).then_some(*q) })),
        class.column(|i| {
            let l = &lines[i];
            if l.commitment.is_some() && matches!(l.kind, LineKind::Committed | LineKind::Unused) {
                l.unit.map(unit_name)
            } else {
                None
            }
        }),
        account.column(|i| Some(n.invoice_id(lines[i].account))),
        provider.clone(),
        provider.clone(),
        provider.clone(),
        region.clone(),
        region.clone(),
        col_rows(lines.iter().zip(&views).map(|(l, v)| {
            v.usage_str(|c, r| c.resource_id.get(r)).or_else(|| match l.commitment {
                Some(Commitment::Subscription(i)) => Some(n.subs.get(i).resource_id.as_str()),
                _ => None,
            })
        })),
        col_rows(views.iter().map(|v| v.usage_str(|c, r| c.resource_name.get(r)))),
        class.column(|i| views[i].module.map(resource_type)),
        class.column(|i| Some(service(&views[i]).1)),
        class.column(|i| Some(service(&views[i]).0)),
        class.column(|i| Some(service(&views[i]).2)),
        class.column(|i| views[i].sku),
        class.column(|i| lines[i].price_row.map(|r| n.ids.price[r as usize].as_str())),
        project.clone(),
        project.clone(),
        col_keyed(views.iter().map(|v| v.usage_str(|c, r| c.tags.get(r)))),
        col_str(views.iter().map(|v| v.usage_str(|c, r| c.record_id.get(r)))),
        class.column(|i| views[i].module.map(Module::as_str)),
        project.clone(),
        class.column(|i| Some(views[i].billing_mode)),
        class.column(|i| lines[i].price_row.map(|r| n.catalog.row(r).billing_item.as_str())),
        // The checks admit only the two codes: their static text is the same text.
        col_keyed(views.iter().map(|v| v.usage_str(|c, r| c.pool_type.get(r)).map(|s| PoolType::parse(s).map_or(s, |p| p.as_str())))),
        col_keyed(views.iter().map(|v| v.usage_str(|c, r| c.pool_id.get(r)))),
        col_dec(lines.iter().map(|l| { l.price_row.filter(|_| matches!(l.kind, LineKind::Standard)).map(|r| n.catalog.row(r).tier_start) })),
        // A quantity's text depends on the quantity alone.
        Groups::of(lines.len(), |i| (lines[i].kind != LineKind::Adjustment).then_some(lines[i].quantity.0)).texts(|b, i| {
            let l = &lines[i];
            if l.kind == LineKind::Adjustment {
                return false;
            }
            exact_quantity(b, l.quantity, qty[i]);
            true
        }),
    ];
    RecordBatch::try_new(line_items_schema(), columns).expect("line item columns match the schema")
}

/// A stable id of a catalog price: SKU, region, currency, mode, tier, effective from.
pub fn sku_price_id(c: &Catalog, row: u32) -> String {
    let p = c.row(row);
    format!("{}:{}:{}:{}:{}:{}", p.sku, p.region, p.currency, p.billing_mode, p.tier_start, crate::time::format_ts(p.effective_from))
}

/// The exact pricing quantity as a fraction `n/3.6e19` when it does not terminate in
/// 10 places, else the decimal.
fn exact_quantity(b: &mut impl std::fmt::Write, q: crate::decimal::Qty, rounded: Dec) {
    let _ = if crate::decimal::Qty::from_dec(rounded) == Some(q) { write!(b, "{rounded}") } else { write!(b, "{}/{}", q.0, crate::decimal::QTY_PER_UNIT) };
}

/// Writes the line's description.
fn describe(b: &mut impl std::fmt::Write, l: &Line, v: &LineView<'_>, n: &Names<'_>) {
    let sku = v.sku.unwrap_or("");
    let _ = match l.kind {
        LineKind::Standard => {
            let tier = l.price_row.map(|r| n.catalog.row(r).tier_start).unwrap_or_default();
            write!(b, "{sku} pay-per-use, tier from {tier}")
        }
        LineKind::PoolJob => write!(b, "{sku} job on a pay-per-use dedicated pool (the pool is billed)"),
        LineKind::Committed => match &v.commitment {
            Some((id, kind)) => write!(b, "{sku} covered by {kind} {id}"),
            None => write!(b, "{sku} covered"),
        },
        LineKind::Unused => match &v.commitment {
            Some((id, kind)) => write!(b, "unused {kind} {id}"),
            None => b.write_str("unused commitment"),
        },
        LineKind::Purchase => match &v.commitment {
            Some((id, kind)) => write!(b, "purchase of {kind} {id} ({sku})"),
            None => b.write_str("purchase"),
        },
        LineKind::Adjustment => b.write_str("truncation of the hourly settlement to cents"),
    };
}

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
        col_dec(rows.iter().map(|r| Some(r.opening.to_dec()))),
        col_dec(rows.iter().map(|r| Some(r.used.to_dec()))),
        col_dec(rows.iter().map(|r| Some(r.lapsed.to_dec()))),
        col_dec(rows.iter().map(|r| Some(r.closing.to_dec()))),
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

// ---------------------------------------------------------------- rejected

pub fn rejected_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        s("record_id"),
        s("account_id"),
        s("region"),
        s("resource_id"),
        s("resource_name"),
        s("module"),
        s("sku"),
        f("unit_count", DataType::Int32, true),
        s("pool_type"),
        s("pool_id"),
        f("nodes", DataType::Int32, true),
        f("quantity", dec_type(), true),
        f("start_time", ts_type(), true),
        f("end_time", ts_type(), true),
        s("enterprise_project"),
        s("tags"),
        sn("reason"),
        sn("detail"),
        sn("source_file"),
        f("source_row", DataType::Int64, false),
    ]))
}

/// Rejected usage rows, with their input columns as read (unreadable values null).
pub fn rejected_batch(rej: &[Rejected], chunks: &[UsageChunk], n: &Names<'_>) -> RecordBatch {
    let at = |r: &Rejected| (&chunks[r.loc.chunk as usize], r.loc.row as usize);
    let sv = |get: fn(&UsageChunk, usize) -> Option<&str>| -> ArrayRef {
        col_string(rej.iter().map(|r| {
            let (c, i) = at(r);
            get(c, i).map(str::to_string)
        }))
    };
    let i32v = |nodes: bool| -> ArrayRef {
        col_i32(rej.iter().map(|r| {
            let (c, i) = at(r);
            let v = if nodes { c.nodes.get(i) } else { c.unit_count.get(i) };
            v.and_then(|v| i32::try_from(v).ok())
        }))
    };
    let tsv = |end: bool| -> ArrayRef {
        col_ts(rej.iter().map(|r| {
            let (c, i) = at(r);
            let v = if end { c.end_time.get(i) } else { c.start_time.get(i) };
            v.and_then(Result::ok)
        }))
    };
    let cols: Vec<ArrayRef> = vec![
        sv(|c, i| c.record_id.get(i)),
        sv(|c, i| c.account_id.get(i)),
        sv(|c, i| c.region.get(i)),
        sv(|c, i| c.resource_id.get(i)),
        sv(|c, i| c.resource_name.get(i)),
        sv(|c, i| c.module.get(i)),
        sv(|c, i| c.sku.get(i)),
        i32v(false),
        sv(|c, i| c.pool_type.get(i)),
        sv(|c, i| c.pool_id.get(i)),
        i32v(true),
        col_dec(rej.iter().map(|r| {
            let (c, i) = at(r);
            c.quantity.get(i).and_then(Result::ok)
        })),
        tsv(false),
        tsv(true),
        sv(|c, i| c.enterprise_project.get(i)),
        sv(|c, i| c.tags.get(i)),
        col_str(rej.iter().map(|r| Some(r.why.reason.as_str()))),
        col_str(rej.iter().map(|r| Some(r.why.detail.as_str()))),
        col_str(rej.iter().map(|r| Some(n.files[at(r).0.file as usize].path.as_str()))),
        col_i64(rej.iter().map(|r| {
            let (c, i) = at(r);
            Some(c.file_row(i) as i64)
        })),
    ];
    RecordBatch::try_new(rejected_schema(), cols).expect("rejected columns match the schema")
}

/// Rejected subscription orders, as rows of the rejected table: `record_id` is the
/// `subscription_id`.
pub fn rejected_orders_batch(rej: &[RejectedOrder], n: &Names<'_>) -> RecordBatch {
    let sub = |r: &RejectedOrder| n.subs.get(r.subscription);
    let cols: Vec<ArrayRef> = vec![
        col_str(rej.iter().map(|r| Some(sub(r).subscription_id.as_str()))),
        col_str(rej.iter().map(|r| Some(sub(r).account_id.as_str()))),
        col_str(rej.iter().map(|r| Some(sub(r).region.as_str()))),
        col_str(rej.iter().map(|r| Some(sub(r).resource_id.as_str()))),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|r| Some(sub(r).sku.as_str()))),
        col_i32(rej.iter().map(|r| Some(sub(r).unit_count))),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|_| None)),
        col_i32(rej.iter().map(|r| Some(sub(r).nodes))),
        col_dec(rej.iter().map(|_| None)),
        col_ts(rej.iter().map(|r| Some(sub(r).start_at))),
        col_ts(rej.iter().map(|r| Some(sub(r).end_at))),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|_| None)),
        col_str(rej.iter().map(|r| Some(r.why.reason.as_str()))),
        col_str(rej.iter().map(|r| Some(r.why.detail.as_str()))),
        col_str(rej.iter().map(|_| Some(SUBSCRIPTIONS))),
        col_i64(rej.iter().map(|r| Some(r.subscription as i64))),
    ];
    RecordBatch::try_new(rejected_schema(), cols).expect("rejected columns match the schema")
}

// ---------------------------------------------------------------- package deductions

pub fn package_deductions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        sn("package_id"),
        sn("account_id"),
        sn("record_id"),
        s("resource_id"),
        f("hour_start", ts_type(), false),
        f("usage_start", ts_type(), false),
        f("draw_order", DataType::Int32, false),
        f("applicable_packages", DataType::Int32, false),
        f("quantity", dec_type(), false),
        f("remaining_after", dec_type(), false),
        f("package_expires_at", ts_type(), false),
        f("package_purchased_at", ts_type(), false),
        sn("why"),
    ]))
}

/// The deduction ledger of an hour: which package paid for which row, and why that
/// one (earliest expiry, then earlier purchase, then smaller id).
pub fn package_deductions_batch(ds: &[Deduction], chunks: &[UsageChunk], n: &Names<'_>) -> RecordBatch {
    let pkg = |d: &Deduction| &n.packages[d.package as usize];
    let at = |d: &Deduction| (&chunks[d.usage.chunk as usize], d.usage.row as usize);
    let why = |d: &Deduction| {
        let p = pkg(d);
        format!(
            "draw {} of the row; {} package(s) could serve it, drawn by earliest expiry, then earlier purchase, then smaller id; this one expires {} (bought {})",
            d.draw_order,
            d.applicable,
            crate::time::format_ts(p.expires_at),
            crate::time::format_ts(p.purchased_at)
        )
    };
    let cols: Vec<ArrayRef> = vec![
        col_str(ds.iter().map(|d| Some(pkg(d).package_id.as_str()))),
        col_str(ds.iter().map(|d| Some(n.account(d.account).account_id.as_str()))),
        col_str(ds.iter().map(|d| at(d).0.record_id.get(at(d).1))),
        col_str(ds.iter().map(|d| at(d).0.resource_id.get(at(d).1))),
        col_ts(ds.iter().map(|d| Some(crate::time::hour_floor(d.usage_start)))),
        col_ts(ds.iter().map(|d| Some(d.usage_start))),
        col_i32(ds.iter().map(|d| Some(d.draw_order as i32))),
        col_i32(ds.iter().map(|d| Some(d.applicable as i32))),
        col_dec(ds.iter().map(|d| Some(d.quantity.to_dec()))),
        col_dec(ds.iter().map(|d| Some(d.remaining_after.to_dec()))),
        col_ts(ds.iter().map(|d| Some(pkg(d).expires_at))),
        col_ts(ds.iter().map(|d| Some(pkg(d).purchased_at))),
        col_string(ds.iter().map(|d| Some(why(d)))),
    ];
    RecordBatch::try_new(package_deductions_schema(), cols).expect("deduction columns match the schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    fn table(lake: &Lake, rel: &str, batches: &[Vec<ArrayRef>]) -> Written {
        let schema = Arc::new(Schema::new(vec![s("a"), s("b"), f("x", dec_type(), false), f("y", dec_type(), false), s("c")]));
        let mut sink = TableSink::create(lake, rel, schema.clone()).unwrap();
        for cols in batches {
            sink.write(lake, &RecordBatch::try_new(schema.clone(), cols.clone()).unwrap()).unwrap();
        }
        let (written, sealed) = sink.seal(lake).unwrap();
        sealed.complete().unwrap();
        written
    }

    fn batch(k: usize, shared: bool) -> Vec<ArrayRef> {
        let a = col_string((0..1000).map(|i| (i % 7 != 0).then(|| format!("v{}", (i * k) % 13))));
        let x = col_dec((0..1000).map(|i| Some(Dec::from_int((i * k % 97) as i64))));
        let (b, y) = if shared {
            (a.clone(), x.clone())
        } else {
            (Arc::new(StringArray::from(a.to_data())) as ArrayRef, col_dec((0..1000).map(|i| Some(Dec::from_int((i * k % 97) as i64)))))
        };
        vec![a, b, x, y, constant_col(k)]
    }

    fn constant_col(k: usize) -> ArrayRef {
        col_string((0..1000).map(|_| Some(format!("c{k}"))))
    }

    /// A column that is the same array as an earlier one is encoded once and its
    /// pages written again: the file is byte for byte the one two encodings give.
    #[test]
    fn a_repeated_column_gives_the_bytes_of_its_own_encoding() {
        let tmp = tempfile::tempdir().unwrap();
        let lake = Lake::open(tmp.path().to_str().unwrap(), true).unwrap();
        let shared: Vec<_> = (1..4).map(|k| batch(k, true)).collect();
        let copied: Vec<_> = (1..4).map(|k| batch(k, false)).collect();
        let may = vec![vec![], vec![0], vec![], vec![2], vec![0, 1]];
        assert_eq!(copies(&shared[0], Some(&may)), vec![None, Some(0), None, Some(2), None]);
        assert_eq!(copies(&copied[0], Some(&may)), vec![None; 5]);
        let (one, two) = (table(&lake, "one.parquet", &shared), table(&lake, "two.parquet", &copied));
        assert_eq!(one.sha256, two.sha256);
        assert_eq!(one.bytes, two.bytes);
        let back = crate::lake::inputs::decode_parquet("one.parquet", std::fs::read(tmp.path().join("one.parquet")).unwrap().into()).unwrap();
        assert_eq!(back.iter().map(RecordBatch::num_rows).sum::<usize>(), 3000);
        for b in &back {
            assert_eq!(b.column(0), b.column(1));
            assert_eq!(b.column(2), b.column(3));
        }
    }

    /// A column that repeats an earlier one in a row group's first batches and then
    /// stops (`EffectiveCost` is `BilledCost` until a commitment's line) goes on from
    /// the earlier column's encoder as it stood: the file is byte for byte the one
    /// two encodings give.
    #[test]
    fn a_column_that_stops_repeating_gives_the_bytes_of_its_own_encoding() {
        let tmp = tempfile::tempdir().unwrap();
        let lake = Lake::open(tmp.path().to_str().unwrap(), true).unwrap();
        // Batches larger than a page, so that pages and dictionary entries are
        // written before the columns part; x has nulls.
        const N: usize = 25_000;
        let x = |k: usize| col_dec((0..N).map(|i| (i % 11 != 3).then(|| Dec::from_int((i * k % 997) as i64))));
        let other = |k: usize| col_dec((0..N).map(|i| Some(Dec::from_int((i * k % 89 + 5000) as i64))));
        let schema = Arc::new(Schema::new(vec![f("x", dec_type(), true), f("y", dec_type(), true)]));
        // y repeats x in the first and third batches, not in the second.
        let mixed: Vec<Vec<ArrayRef>> = (1..4)
            .map(|k| {
                let a = x(k);
                vec![a.clone(), if k == 2 { other(k) } else { a }]
            })
            .collect();
        let copied: Vec<Vec<ArrayRef>> = (1..4).map(|k| vec![x(k), if k == 2 { other(k) } else { x(k) }]).collect();
        let may = vec![vec![], vec![0]];
        assert_eq!(copies(&mixed[0], Some(&may)), vec![None, Some(0)]);
        assert_eq!(copies(&mixed[1], Some(&may)), vec![None, None]);
        let write = |rel: &str, batches: &[Vec<ArrayRef>]| {
            let mut sink = TableSink::create(&lake, rel, schema.clone()).unwrap();
            for cols in batches {
                sink.write(&lake, &RecordBatch::try_new(schema.clone(), cols.clone()).unwrap()).unwrap();
            }
            let (written, sealed) = sink.seal(&lake).unwrap();
            sealed.complete().unwrap();
            written
        };
        let (one, two) = (write("one.parquet", &mixed), write("two.parquet", &copied));
        assert_eq!(one.sha256, two.sha256);
        assert_eq!(one.bytes, two.bytes);
        let back = crate::lake::inputs::decode_parquet("one.parquet", std::fs::read(tmp.path().join("one.parquet")).unwrap().into()).unwrap();
        let values = |batches: Vec<&ArrayRef>| -> Vec<Option<i128>> {
            batches.into_iter().flat_map(|a| a.as_any().downcast_ref::<Decimal128Array>().unwrap().iter().collect::<Vec<_>>()).collect()
        };
        for c in 0..2 {
            assert_eq!(values(back.iter().map(|b| b.column(c)).collect()), values(mixed.iter().map(|b| &b[c]).collect()));
        }
    }

    /// Keyed strings and decimals, encoded by the lake's own encoder, read back as
    /// the general writer's encoding of the same values reads back, with the same
    /// statistics: over two row groups, pages that span batches, nulls, a column of
    /// nulls only, a constant, keys whose dictionary changes between batches or
    /// repeats a string, a decimal column whose dictionary fills, columns whose
    /// rare nulls come late in a page that spans batches, timestamps (one whose
    /// dictionary fills), plain strings (nulls, empty and long ones, pages cut by
    /// their bytes), and a value a row whose entries are guessed from the rows before.
    #[test]
    fn own_encoding_reads_back_as_the_general_writers() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let tmp = tempfile::tempdir().unwrap();
        let lake = Lake::open(tmp.path().to_str().unwrap(), true).unwrap();
        let fields = vec![
            k("k1"),
            kn("k2"),
            k("k3"),
            f("d1", dec_type(), true),
            f("d2", dec_type(), false),
            s("plain"),
            k("k4"),
            f("d3", dec_type(), true),
            f("t1", ts_type(), true),
            f("t2", ts_type(), false),
            f("x_UsageRecordId", DataType::Utf8, true),
            k("resources"),
        ];
        let keyed = Arc::new(Schema::new(fields.clone()));
        let shared = Arc::new(StringArray::from(vec!["delta", "alpha", "charlie", "alpha", "bravo"])) as ArrayRef;
        let sizes = [33_333usize, 1, 500_000, 20_000, 19_999, 600_000];
        let (mut ours, mut general) = (Vec::new(), Vec::new());
        let mut row = 0i64;
        for (b, &n) in sizes.iter().enumerate() {
            let values = if b % 2 == 0 { shared.clone() } else { Arc::new(StringArray::from(vec!["echo", "alpha", "zulu"])) as ArrayRef };
            let keys: UInt32Array = (0..n as i64).map(|i| ((row + i) % 7 != 3).then(|| ((row + i) % values.len() as i64) as u32)).collect();
            let k1 = Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, values).unwrap()) as ArrayRef;
            let k2 = col_keyed((0..n).map(|_| Some("constant")));
            let k3 = col_keyed((0..n).map(|_| None::<&str>));
            let d1 = col_dec((0..n as i64).map(|i| ((row + i) % 11 != 5).then(|| Dec((row + i - 700_000) as i128 * 1_234_567))));
            // Some values wider than 64 bits (a dictionary keeps those apart).
            let d2 = col_dec((0..n as i64).map(|i| Some(Dec(((row + i) % 5) as i128 * -25 + if (row + i) % 7 == 0 { 1 << 80 } else { 0 }))));
            let plain = col_string((0..n as i64).map(|i| Some(format!("p{}", (row + i) % 3))));
            // Row 533,000 shares its page with the next batch, which has no null.
            let rare = |i: i64| matches!(row + i, 33_333 | 533_000) || (row + i) % 250_003 == 100_000;
            let k4 = col_keyed((0..n as i64).map(|i| (!rare(i)).then_some(["x", "y"][(i % 2) as usize])));
            let d3 = col_dec((0..n as i64).map(|i| (!rare(i)).then_some(Dec((i % 3) as i128))));
            let t1 = col_ts((0..n as i64).map(|i| ((row + i) % 13 != 4).then_some(1_767_225_600_000_000 + ((row + i) % 2 * 2 - 1) * (row + i) * 1_000_000)));
            let t2 = col_ts((0..n as i64).map(|i| Some(1_767_225_600_000_000 + (row + i) / 5000 * 3_600_000_000)));
            let ids = col_string((0..n as i64).map(|i| {
                let r = row + i;
                (r % 17 != 9).then(|| match r {
                    _ if r % 13 == 0 => String::new(),
                    100_000..140_000 => format!("{r:0>100}"),
                    _ => format!("rec-{r}"),
                })
            }));
            // A value a row, as resource ids are: "hours" of 1,000 rows that repeat
            // much the same order, a value skipped here and there, some new each
            // fourth hour, and nulls.
            let resources = col_rows(
                (0..n as i64)
                    .map(|i| {
                        let (h, p) = ((row + i) / 1000, (row + i) % 1000);
                        let id = (p + (p + h) % 7 / 5 * 3) % 1000 + (h % 4 == 3 && p % 3 == 0) as i64 * 1000;
                        ((p * 31 + h) % 29 != 7).then(|| format!("res-{id:04}"))
                    })
                    .collect::<Vec<_>>()
                    .iter()
                    .map(Option::as_deref),
            );
            row += n as i64;
            let strings = |a: &ArrayRef| -> ArrayRef {
                let d = a.as_any().downcast_ref::<DictionaryArray<UInt32Type>>().unwrap();
                let v = d.values().as_any().downcast_ref::<StringArray>().unwrap();
                col_str(d.keys().iter().map(|k| k.map(|k| v.value(k as usize))))
            };
            general.push(vec![
                strings(&k1),
                strings(&k2),
                strings(&k3),
                d1.clone(),
                d2.clone(),
                plain.clone(),
                strings(&k4),
                d3.clone(),
                t1.clone(),
                t2.clone(),
                ids.clone(),
                strings(&resources),
            ]);
            ours.push(vec![k1, k2, k3, d1, d2, plain, k4, d3, t1, t2, ids, resources]);
        }
        let mut sink = TableSink::create(&lake, "ours.parquet", keyed.clone()).unwrap();
        for cols in &ours {
            sink.write(&lake, &RecordBatch::try_new(keyed.clone(), cols.clone()).unwrap()).unwrap();
        }
        let (_, sealed) = sink.seal(&lake).unwrap();
        sealed.complete().unwrap();
        // The general writer, with the sink's settings.
        let plain_schema = Arc::new(Schema::new(
            fields
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Dictionary(..) => f.clone().with_data_type(DataType::Utf8),
                    _ => f.clone(),
                })
                .collect::<Vec<_>>(),
        ));
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_row_count(Some(ROW_GROUP_ROWS)).build();
        let file = std::fs::File::create(tmp.path().join("general.parquet")).unwrap();
        let mut w = ArrowWriter::try_new(file, plain_schema.clone(), Some(props)).unwrap();
        for cols in &general {
            w.write(&RecordBatch::try_new(plain_schema.clone(), cols.clone()).unwrap()).unwrap();
        }
        w.close().unwrap();

        let read = |name: &str| crate::lake::inputs::decode_parquet(name, std::fs::read(tmp.path().join(name)).unwrap().into()).unwrap();
        let (a, b) = (read("ours.parquet"), read("general.parquet"));
        assert_eq!(a.iter().map(RecordBatch::num_rows).sum::<usize>(), sizes.iter().sum::<usize>());
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.schema(), b.schema());
            for c in 0..a.num_columns() {
                assert_eq!(a.column(c), b.column(c), "column {}", a.schema().field(c).name());
            }
        }
        let meta = |name: &str| SerializedFileReader::new(std::fs::File::open(tmp.path().join(name)).unwrap()).unwrap().metadata().clone();
        let (ma, mb) = (meta("ours.parquet"), meta("general.parquet"));
        assert_eq!(ma.num_row_groups(), 2);
        assert_eq!(mb.num_row_groups(), 2);
        for g in 0..2 {
            for c in [0, 1, 2, 3, 4, 6, 7, 8, 9, 11] {
                let (x, y) = (ma.row_group(g).column(c), mb.row_group(g).column(c));
                let (sx, sy) = (x.statistics().unwrap(), y.statistics().unwrap());
                let name = x.column_descr().name();
                assert_eq!(sx.min_bytes_opt(), sy.min_bytes_opt(), "min of {name} in row group {g}");
                assert_eq!(sx.max_bytes_opt(), sy.max_bytes_opt(), "max of {name} in row group {g}");
                assert_eq!(sx.null_count_opt(), sy.null_count_opt(), "nulls of {name} in row group {g}");
                assert_eq!(x.num_values(), y.num_values());
            }
        }
        // Every page's bounds in the column index are its values' least and greatest.
        let options = parquet::file::serialized_reader::ReadOptionsBuilder::new().with_page_index().build();
        let file = std::fs::File::open(tmp.path().join("ours.parquet")).unwrap();
        let indexed = SerializedFileReader::new_with_options(file, options).unwrap().metadata().clone();
        let all: Vec<ArrayRef> = (0..10)
            .map(|c| {
                let parts: Vec<&dyn Array> = a.iter().map(|b| b.column(c).as_ref()).collect();
                concat(&parts)
            })
            .collect();
        let mut group_start = 0usize;
        for g in 0..2 {
            for c in [0usize, 3, 4, 8, 9] {
                let rg_index = indexed.page_index_for_row_group(g);
                let pages = rg_index.page_locations(c).unwrap();
                use parquet::file::page_index::column_index::ColumnIndexMetaData as Ix;
                let bounds = |p: usize| -> (Option<Vec<u8>>, Option<Vec<u8>>) {
                    match rg_index.column_index(c).unwrap() {
                        Ix::BYTE_ARRAY(ix) | Ix::FIXED_LEN_BYTE_ARRAY(ix) => (ix.min_value(p).map(<[u8]>::to_vec), ix.max_value(p).map(<[u8]>::to_vec)),
                        Ix::INT64(ix) => (ix.min_value(p).map(|v| v.to_le_bytes().to_vec()), ix.max_value(p).map(|v| v.to_le_bytes().to_vec())),
                        other => panic!("column {c}: {other:?}"),
                    }
                };
                for p in 0..pages.len() {
                    let from = group_start + pages[p].first_row_index as usize;
                    let to = pages.get(p + 1).map_or(group_start + ma.row_group(g).num_rows() as usize, |n| group_start + n.first_row_index as usize);
                    let values: Vec<Vec<u8>> = (from..to).filter(|&r| all[c].is_valid(r)).map(|r| sortable(&all[c], r)).collect();
                    let (lo, hi) = (values.iter().min().unwrap(), values.iter().max().unwrap());
                    let dt = all[c].data_type();
                    let (min, max) = bounds(p);
                    assert_eq!(min.map(|v| sortable_bytes(dt, &v)), Some(lo.clone()), "page {p} of column {c}, row group {g}");
                    assert_eq!(max.map(|v| sortable_bytes(dt, &v)), Some(hi.clone()), "page {p} of column {c}, row group {g}");
                }
            }
            group_start += ma.row_group(g).num_rows() as usize;
        }
        // The plain strings: PLAIN pages only, no dictionary nor statistics, an offset
        // index; pages of long strings close before 20,000 rows.
        let ids = ma.row_group(0).column(10);
        assert!(ids.encodings().all(|e| matches!(e, parquet::basic::Encoding::PLAIN | parquet::basic::Encoding::RLE)));
        assert!(ids.dictionary_page_offset().is_none() && ids.statistics().is_none());
        let pages = |c: usize| indexed.page_index_for_row_group(0).page_locations(c).unwrap().len();
        assert!(pages(10) > pages(0), "{} pages of plain strings, {} of keys", pages(10), pages(0));
        // The first decimal column's dictionary filled: its later pages are PLAIN.
        // (The chunk's encodings list PLAIN for its dictionary page too: the data
        // pages' own encodings are read.)
        assert_eq!(data_page_encodings(&tmp.path().join("ours.parquet"), 0, 3), [parquet::basic::Encoding::RLE_DICTIONARY, parquet::basic::Encoding::PLAIN]);
    }

    /// Resource ids and names keep their dictionary past the general writer's 1 MiB
    /// (a row group holds every resource of a large region), where other strings
    /// fall back to PLAIN pages.
    #[test]
    fn resource_columns_keep_a_dictionary_of_many_resources() {
        let tmp = tempfile::tempdir().unwrap();
        let lake = Lake::open(tmp.path().to_str().unwrap(), true).unwrap();
        let schema = Arc::new(Schema::new(vec![s("ResourceId"), s("other")]));
        // 60,000 resources of 40 bytes (2.6 MB of dictionary), each twice.
        let ids = || col_string((0..120_000).map(|i| Some(format!("ecs-{:0>36}", i % 60_000))));
        let mut sink = TableSink::create(&lake, "r.parquet", schema.clone()).unwrap();
        sink.write(&lake, &RecordBatch::try_new(schema, vec![ids(), ids()]).unwrap()).unwrap();
        let (_, sealed) = sink.seal(&lake).unwrap();
        sealed.complete().unwrap();
        let path = tmp.path().join("r.parquet");
        use parquet::basic::Encoding::{PLAIN, RLE_DICTIONARY};
        assert_eq!(data_page_encodings(&path, 0, 0), [RLE_DICTIONARY]);
        assert_eq!(data_page_encodings(&path, 0, 1), [RLE_DICTIONARY, PLAIN]);
    }

    /// A keyed column (line items' resource ids and names) keeps its dictionary up
    /// to 16 MiB of entries, as the general writer's wide dictionaries do; the
    /// chunk's later pages are PLAIN, and every value reads back.
    #[test]
    fn keyed_columns_past_16_mib_of_entries_go_on_plain() {
        let tmp = tempfile::tempdir().unwrap();
        let lake = Lake::open(tmp.path().to_str().unwrap(), true).unwrap();
        let schema = Arc::new(Schema::new(vec![k("ResourceName")]));
        // 500,000 names of 40 bytes (20 MB of entries), each twice in a row, some null.
        let names: Vec<Option<String>> = (0..1_000_000).map(|i| (i % 1001 != 7).then(|| format!("name-{:0>35}", i / 2))).collect();
        let mut sink = TableSink::create(&lake, "r.parquet", schema.clone()).unwrap();
        for part in names.chunks(300_000) {
            let column = col_rows(part.iter().map(Option::as_deref));
            sink.write(&lake, &RecordBatch::try_new(schema.clone(), vec![column]).unwrap()).unwrap();
        }
        let (_, sealed) = sink.seal(&lake).unwrap();
        sealed.complete().unwrap();
        let path = tmp.path().join("r.parquet");
        use parquet::basic::Encoding::{PLAIN, RLE_DICTIONARY};
        assert_eq!(data_page_encodings(&path, 0, 0), [RLE_DICTIONARY, PLAIN]);
        let read = crate::lake::inputs::decode_parquet("r.parquet", std::fs::read(&path).unwrap().into()).unwrap();
        let got: Vec<Option<String>> = read
            .iter()
            .flat_map(|b| {
                let a = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
                (0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_string())).collect::<Vec<_>>()
            })
            .collect();
        assert!(got == names, "values read back differ");
        // The dictionary page holds the entries up to the limit, not those after it.
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut pages = reader.get_row_group(0).unwrap().get_column_page_reader(0).unwrap();
        match pages.get_next_page().unwrap() {
            Some(parquet::column::page::Page::DictionaryPage { buf, num_values, .. }) => {
                assert!(buf.len() >= chunk::STR_DICT_BYTES_MAX && buf.len() < chunk::STR_DICT_BYTES_MAX + (2 << 20), "{} bytes", buf.len());
                assert!((num_values as usize) < 500_000, "{num_values} entries");
            }
            other => panic!("no dictionary page first: {other:?}"),
        }
    }

    /// The encodings of a column chunk's data pages, in order, each run once.
    fn data_page_encodings(path: &std::path::Path, group: usize, column: usize) -> Vec<parquet::basic::Encoding> {
        use parquet::column::page::Page;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut pages = reader.get_row_group(group).unwrap().get_column_page_reader(column).unwrap();
        let mut out = Vec::new();
        while let Some(page) = pages.get_next_page().unwrap() {
            if let Page::DataPage { encoding, .. } | Page::DataPageV2 { encoding, .. } = page {
                if out.last() != Some(&encoding) {
                    out.push(encoding);
                }
            }
        }
        out
    }

    /// A value as bytes that sort as the value does (decimals: sign bit flipped).
    fn sortable(a: &ArrayRef, r: usize) -> Vec<u8> {
        match a.data_type() {
            DataType::Decimal128(..) => {
                let mut b = a.as_any().downcast_ref::<Decimal128Array>().unwrap().value(r).to_be_bytes().to_vec();
                b[0] ^= 0x80;
                b
            }
            DataType::Timestamp(..) => {
                let v = a.as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap().value(r);
                ((v as u64) ^ (1 << 63)).to_be_bytes().to_vec()
            }
            _ => a.as_any().downcast_ref::<StringArray>().unwrap().value(r).as_bytes().to_vec(),
        }
    }
    /// A bound of the column index as bytes that sort as [`sortable`]'s.
    fn sortable_bytes(dt: &DataType, v: &[u8]) -> Vec<u8> {
        let mut b = v.to_vec();
        match dt {
            DataType::Decimal128(..) => b[0] ^= 0x80,
            DataType::Timestamp(..) => {
                let v = i64::from_le_bytes(b.try_into().unwrap());
                b = ((v as u64) ^ (1 << 63)).to_be_bytes().to_vec();
            }
            _ => {}
        }
        b
    }
    /// One column of several batches, as one array.
    fn concat(parts: &[&dyn Array]) -> ArrayRef {
        match parts[0].data_type() {
            DataType::Decimal128(..) => col_dec(parts.iter().flat_map(|p| {
                let d = p.as_any().downcast_ref::<Decimal128Array>().unwrap();
                (0..d.len()).map(move |i| d.is_valid(i).then(|| Dec(d.value(i))))
            })),
            DataType::Timestamp(..) => col_ts(parts.iter().flat_map(|p| {
                let d = p.as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
                (0..d.len()).map(move |i| d.is_valid(i).then(|| d.value(i)))
            })),
            _ => col_string(parts.iter().flat_map(|p| {
                let d = p.as_any().downcast_ref::<StringArray>().unwrap();
                (0..d.len()).map(move |i| d.is_valid(i).then(|| d.value(i).to_string()))
            })),
        }
    }

    /// A column the general writer encodes (its state cannot be taken over) that stops
    /// repeating another within a row group is refused, not written wrong.
    #[test]
    fn a_repetition_that_changes_within_a_row_group_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let lake = Lake::open(tmp.path().to_str().unwrap(), true).unwrap();
        let schema = Arc::new(Schema::new(vec![s("a"), s("b"), f("x", dec_type(), false), f("y", dec_type(), false), s("c")]));
        let mut sink = TableSink::create(&lake, "t.parquet", schema.clone()).unwrap();
        sink.write(&lake, &RecordBatch::try_new(schema.clone(), batch(1, true)).unwrap()).unwrap();
        let err = sink.write(&lake, &RecordBatch::try_new(schema, batch(2, false)).unwrap()).unwrap_err();
        assert!(err.to_string().contains("column 1 stopped repeating column 0 within a row group"), "{err}");
    }
}
