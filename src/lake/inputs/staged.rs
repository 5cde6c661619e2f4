//! A staged usage layout (data contract, "Shards"): the period's usage rows split by
//! shard by a distributed engine's shuffle, `<staged>/billing_period=P/n=N/k=K/
//! *.parquet`, each row with every usage column plus `source_file` (its usage file,
//! relative to the input lake) and `source_row` (its row there). The rows are put back
//! in their files, in row order, as chunks of those files: what the shard would have
//! decoded from the usage folder itself, its rows only.

use super::*;
use rustc_hash::FxHashMap;

/// The rows staged under `prefix` of `lake`, by the index of their file in `files`
/// (the period's usage files, in path order). A row whose `source_file` is not one of
/// them, or a row staged twice, refuses the run naming the staged file and row.
pub fn read_staged(lake: &Lake, prefix: &str, files: &[UsageFile]) -> Result<FxHashMap<u32, Vec<UsageChunk>>> {
    let index: FxHashMap<&str, u32> = files.iter().enumerate().map(|(i, f)| (f.path.as_str(), i as u32)).collect();
    let listed: Vec<String> = lake.list(prefix)?.into_iter().map(|l| l.path).filter(|p| p.ends_with(".parquet")).collect();
    // Each decoded batch, with the staged file it came from.
    let mut batches: Vec<(usize, RecordBatch)> = Vec::new();
    for (si, (path, bytes)) in listed.iter().zip(lake.get_many(&listed)).enumerate() {
        batches.extend(decode_parquet_keyed(path, bytes?, &USAGE_KEYED, true, |b| b)?.into_iter().map(|b| (si, b)));
    }
    // Every row: (file, row in file, batch, row in batch).
    let mut rows: Vec<(u32, u32, u32, u32)> = Vec::new();
    let mut read = vec![0usize; listed.len()];
    for (bi, (si, b)) in batches.iter().enumerate() {
        let path = &listed[*si];
        let source = StrCol::of(b, "source_file").map_err(|p| col_err(path, "source_file", p))?;
        let at = IntCol::of(b, "source_row").map_err(|p| col_err(path, "source_row", p))?;
        for r in 0..b.num_rows() {
            let row = read[*si] + r;
            let bad = |why: String| InputError::Table { file: path.clone(), why: format!("row {row}: {why}") };
            let file = source.get(r).ok_or_else(|| bad("source_file is null".into()))?;
            let &fi = index.get(file).ok_or_else(|| bad(format!("source_file '{file}' is not a usage file of the period")))?;
            let sr = at.get(r).and_then(|v| u32::try_from(v).ok()).ok_or_else(|| bad("source_row is null or out of range".into()))?;
            rows.push((fi, sr, bi as u32, r as u32));
        }
        read[*si] += b.num_rows();
    }
    rows.sort_unstable();
    if let Some(w) = rows.windows(2).find(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1)) {
        let path = &listed[batches[w[1].2 as usize].0];
        return Err(InputError::Table { file: path.clone(), why: format!("row {} of {} is staged twice", w[1].1, files[w[1].0 as usize].path) });
    }
    let mut out: FxHashMap<u32, Vec<UsageChunk>> = FxHashMap::default();
    let columns: Vec<&RecordBatch> = batches.iter().map(|(_, b)| b).collect();
    for group in rows.chunk_by(|a, b| a.0 == b.0) {
        let fi = group[0].0;
        let f = &files[fi as usize];
        let picks: Vec<(usize, usize)> = group.iter().map(|&(_, _, b, r)| (b as usize, r as usize)).collect();
        let batch = interleave_batches(&columns, &picks).map_err(|e| InputError::Corrupt { file: f.path.clone(), why: format!("staged rows: {e}") })?;
        let file_rows: Vec<u32> = group.iter().map(|x| x.1).collect();
        out.insert(fi, usage_chunks(fi, f, &[batch], Some(&file_rows))?);
    }
    Ok(out)
}

/// The rows `picks` (batch, row) of `batches`, as one batch of the first's columns.
fn interleave_batches(batches: &[&RecordBatch], picks: &[(usize, usize)]) -> std::result::Result<RecordBatch, arrow_schema::ArrowError> {
    let schema = batches[0].schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let arrays: Vec<&dyn arrow_array::Array> = batches
            .iter()
            .map(|b| b.column_by_name(field.name()).map(|a| a.as_ref()))
            .collect::<Option<_>>()
            .ok_or_else(|| arrow_schema::ArrowError::SchemaError(format!("a staged file lacks the column {}", field.name())))?;
        columns.push(arrow_select::interleave::interleave(&arrays, picks)?);
    }
    RecordBatch::try_new(schema, columns)
}
