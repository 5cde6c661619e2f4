//! The period's usage files: their list, and each file's rows as column chunks.

use super::*;

/// A batch of usage rows as the lake reads them: the core's [`UsageBatch`] over
/// Arrow columns.
pub type UsageChunk = UsageBatch<ArrowColumns>;

/// A usage file of the lake, in the order the rules read files (by path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageFile {
    pub path: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub partition_hour: Micros,
}

/// The usage files whose partitions lie in `period`, sorted by path (which sorts by
/// hour). A file under `usage/` whose folder is not a valid `date=/hour=` partition
/// refuses the run: its rows could not be placed in any period.
pub fn list_usage(lake: &Lake, period: Period) -> Result<Vec<UsageFile>> {
    let mut out = Vec::new();
    for day in period.days() {
        for l in lake.list(&format!("usage/date={day}/"))? {
            if !l.path.ends_with(".parquet") {
                continue;
            }
            let hour = parse_partition(&l.path)
                .ok_or_else(|| InputError::Table { file: l.path.clone(), why: "not under a usage/date=YYYY-MM-DD/hour=HH/ partition".into() })?;
            out.push(UsageFile { path: l.path, size: l.size, e_tag: l.e_tag, partition_hour: hour });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `usage/date=2024-01-31/hour=07/x.parquet` → the start of that hour.
pub fn parse_partition(path: &str) -> Option<Micros> {
    let mut parts = path.split('/');
    if parts.next()? != "usage" {
        return None;
    }
    let date = parts.next()?.strip_prefix("date=")?;
    let hour = parts.next()?.strip_prefix("hour=")?;
    let _file = parts.next()?;
    if parts.next().is_some() || hour.len() != 2 {
        return None;
    }
    crate::time::parse_hour(&format!("{date}T{hour}"))
}

/// Decodes one usage file into chunks. A file that is not readable Parquet, or that
/// lacks a contract column, refuses the run.
pub fn read_usage_file(file_idx: u32, f: &UsageFile, bytes: Bytes) -> Result<Vec<UsageChunk>> {
    let batches = decode_parquet_keyed(&f.path, bytes, &USAGE_KEYED, true, |b| b)?;
    usage_chunks(file_idx, f, &batches, None)
}

/// The rows of a usage file that are wanted, each keeping its row number in the file.
/// The file is decoded in one pass, but for [`NOT_RATED`] (nulls), and the wanted rows
/// are taken from each batch: the selected rows are spread over every page, so a
/// second pass over the file for them would decompress every page again.
pub fn read_usage_file_of(file_idx: u32, f: &UsageFile, bytes: Bytes, wanted: &crate::engine::Select<'_>) -> Result<Vec<UsageChunk>> {
    use parquet::arrow::ProjectionMask;
    const KEYS: [&str; 5] = ["account_id", "sku", "region", "resource_id", "pool_id"];
    let batches = decode_parquet_keyed(&f.path, bytes, &USAGE_KEYED, true, |b| {
        let schema = b.parquet_schema();
        let read = schema.columns().iter().map(|c| c.name()).filter(|n| !NOT_RATED.contains(n));
        let mask = ProjectionMask::columns(schema, read);
        b.with_projection(mask)
    })?;
    let (kept, rows) = keep_rows(f, batches, |b, ids| {
        // A key column that is missing or of another type selects as null here; the
        // rows selected are checked afterwards.
        let [sku, region, resource, pool] = [KEYS[1], KEYS[2], KEYS[3], KEYS[4]].map(|k| StrCol::of(b, k).ok());
        crate::engine::select_rows(b.num_rows(), [Some(ids), sku.as_ref(), region.as_ref(), resource.as_ref(), pool.as_ref()], wanted)
    })?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let batches = kept.into_iter().map(|b| with_null_columns(&f.path, b, &NOT_RATED)).collect::<Result<Vec<_>>>()?;
    usage_chunks(file_idx, f, &batches, Some(&rows))
}

/// The rows of a usage file whose account is in `shard` (a null account is in the
/// shard of the null hash), each keeping its row number in the file.
pub fn read_usage_file_in(file_idx: u32, f: &UsageFile, bytes: Bytes, shard: crate::shard::Shard) -> Result<Vec<UsageChunk>> {
    let batches = decode_parquet_keyed(&f.path, bytes, &USAGE_KEYED, true, |b| b)?;
    let (kept, rows) = keep_rows(f, batches, |b, ids| (0..b.num_rows()).map(|r| shard.owns(ids.get(r))).collect())?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    usage_chunks(file_idx, f, &kept, Some(&rows))
}

/// The rows of `batches` that `keep` picks (given each batch and its `account_id`
/// column), and their row numbers in the file. Batches without a row kept are left
/// out.
fn keep_rows(f: &UsageFile, batches: Vec<RecordBatch>, keep: impl Fn(&RecordBatch, &StrCol) -> Vec<bool>) -> Result<(Vec<RecordBatch>, Vec<u32>)> {
    let mut rows: Vec<u32> = Vec::new();
    let mut kept = Vec::with_capacity(batches.len());
    let mut first = 0u32;
    for b in batches {
        let ids = StrCol::of(&b, "account_id").map_err(|p| col_err(&f.path, "account_id", p))?;
        let keep = keep(&b, &ids);
        let before = rows.len();
        rows.extend(keep.iter().enumerate().filter(|(_, &k)| k).map(|(r, _)| first + r as u32));
        first = first.saturating_add(b.num_rows() as u32);
        if rows.len() == before {
            continue;
        }
        let filtered = arrow_select::filter::filter_record_batch(&b, &arrow_array::BooleanArray::from(keep))
            .map_err(|e| InputError::Corrupt { file: f.path.clone(), why: e.to_string() })?;
        kept.push(filtered);
    }
    Ok((kept, rows))
}

/// The usage columns a selection (what-if ratings) is read without: carried to the
/// outputs only, never checked nor rated, so they are read as nulls. About a quarter
/// of a usage file is resource names.
pub const NOT_RATED: [&str; 2] = ["resource_name", "enterprise_project"];

/// `batch` with a column of nulls for each of `names` it lacks.
fn with_null_columns(file: &str, batch: RecordBatch, names: &[&str]) -> Result<RecordBatch> {
    let missing: Vec<&str> = names.iter().copied().filter(|n| batch.column_by_name(n).is_none()).collect();
    if missing.is_empty() {
        return Ok(batch);
    }
    let (schema, mut columns, rows) = batch.into_parts();
    let mut fields: Vec<arrow_schema::FieldRef> = schema.fields().iter().cloned().collect();
    for n in missing {
        fields.push(Arc::new(arrow_schema::Field::new(n, arrow_schema::DataType::Utf8, true)));
        columns.push(arrow_array::new_null_array(&arrow_schema::DataType::Utf8, rows));
    }
    RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns).map_err(|e| InputError::Corrupt { file: file.to_string(), why: e.to_string() })
}

/// Chunks over decoded batches; `rows` holds each row's number in the file when the
/// batches are a selection of the file's rows.
pub(super) fn usage_chunks(file_idx: u32, f: &UsageFile, batches: &[RecordBatch], rows: Option<&[u32]>) -> Result<Vec<UsageChunk>> {
    let file = f.path.as_str();
    let mut out = Vec::with_capacity(batches.len());
    let mut first_row = 0u32;
    let mut at = 0usize;
    for b in batches {
        cols!(file, b, record_id: StrCol, account_id: StrCol, region: StrCol, resource_id: StrCol,
            resource_name: StrCol, module: StrCol, sku: StrCol, unit_count: IntCol, pool_type: StrCol,
            pool_id: StrCol, nodes: IntCol, quantity: DecCol, start_time: TsCol, end_time: TsCol,
            enterprise_project: StrCol, tags: StrCol);
        let selected: Option<Arc<[u32]>> = rows.map(|r| Arc::from(&r[at..at + b.num_rows()]));
        out.push(UsageChunk {
            file: file_idx,
            first_row: selected.as_ref().and_then(|r| r.first().copied()).unwrap_or(first_row),
            rows: selected,
            partition_hour: f.partition_hour,
            len: b.num_rows(),
            record_id,
            account_id,
            region,
            resource_id,
            resource_name,
            module,
            sku,
            unit_count,
            pool_type,
            pool_id,
            nodes,
            quantity,
            start_time,
            end_time,
            enterprise_project,
            tags,
        });
        first_row = first_row.saturating_add(b.num_rows() as u32);
        at += b.num_rows();
    }
    Ok(out)
}

/// Shared handle to an hour's decoded usage.
pub type Chunks = Arc<Vec<UsageChunk>>;

/// The number of rows of a usage file, from its Parquet footer (two ranged reads).
pub fn count_rows(lake: &Lake, f: &UsageFile) -> Result<u64> {
    use parquet::file::metadata::ParquetMetaDataReader;
    let corrupt = |why: String| InputError::Corrupt { file: f.path.clone(), why };
    if f.size < 12 {
        return Err(corrupt("too short to be Parquet".into()));
    }
    let tail = lake.get_range(&f.path, f.size - 8..f.size)?;
    let tail: [u8; 8] = tail.as_ref().try_into().map_err(|_| corrupt("short read of the footer".into()))?;
    let len = parquet::file::metadata::FooterTail::try_new(&tail).map_err(|e| corrupt(e.to_string()))?.metadata_length() as u64;
    if len + 8 > f.size {
        return Err(corrupt(format!("footer of {len} bytes in a file of {}", f.size)));
    }
    let meta = lake.get_range(&f.path, f.size - 8 - len..f.size - 8)?;
    let meta = ParquetMetaDataReader::decode_metadata(&meta).map_err(|e| corrupt(e.to_string()))?;
    u64::try_from(meta.file_metadata().num_rows()).map_err(|_| corrupt("a negative row count".into()))
}
