//! The period's usage as the close reads it: files decoded (and kept, when the month
//! is small) or re-read on demand, the duplicate pass over the whole period, and the
//! hour-by-hour feed of the engine with the next hour decoded ahead.

use crate::engine::Engine;
use crate::jobs::JobError;
use crate::lake::inputs::{self, read_usage_file, UsageChunk, UsageFile};
use crate::lake::store::Lake;
use crate::rules::checks::{check_row, RowLoc};
use crate::rules::dedup::{self, FileRow};
use crate::time::{Micros, Period};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Decoded usage files, kept or re-read on demand.
pub(crate) struct Usage<'a> {
    pub(crate) lake: &'a Lake,
    pub(crate) files: &'a [UsageFile],
    pub(crate) cache: FxHashMap<u32, Vec<UsageChunk>>,
    pub(crate) keep: bool,
    /// When set (a what-if run), files not kept are decoded for these accounts' rows
    /// only, and of an account with a filter for the rows it wants.
    pub(crate) only: Option<FxHashMap<String, Option<crate::engine::RowFilter>>>,
    /// Re-rate every recommended purchase's account whole (a test hook,
    /// `BILLRUN_WHOLE_WHAT_IF`: the partial re-rating must give the same savings).
    pub(crate) whole_what_if: bool,
    /// A shard run: files are decoded for this shard's rows only (the duplicate pass
    /// still judges every row of the period).
    pub(crate) shard: Option<crate::shard::Shard>,
}

impl Usage<'_> {
    fn chunks(&self, file: u32) -> Result<Vec<UsageChunk>, JobError> {
        if let Some(c) = if self.keep { self.cache.get(&file) } else { None } {
            return Ok(c.clone());
        }
        let f = &self.files[file as usize];
        let bytes = self.lake.get(&f.path)?;
        Ok(match self.shard {
            Some(shard) => inputs::read_usage_file_in(file, f, bytes, shard)?,
            None => read_usage_file(file, f, bytes)?,
        })
    }

    /// Every row of a file, whatever the shard: the duplicate pass compares them all.
    fn whole(&self, file: u32) -> Result<Vec<UsageChunk>, JobError> {
        if let Some(c) = if self.keep { self.cache.get(&file) } else { None } {
            return Ok(c.clone());
        }
        let f = &self.files[file as usize];
        Ok(read_usage_file(file, f, self.lake.get(&f.path)?)?)
    }

    /// The chunks of a few hours, each hour's files in order.
    fn decode_hours(&self, hours: &[(&Micros, &Vec<u32>)]) -> Result<Vec<(Micros, Vec<UsageChunk>)>, JobError> {
        let mut out = Vec::with_capacity(hours.len());
        if self.keep {
            for (hour, which) in hours {
                let mut chunks = Vec::new();
                for &f in which.iter() {
                    chunks.extend(self.chunks(f)?);
                }
                out.push((**hour, chunks));
            }
            return Ok(out);
        }
        let all: Vec<u32> = hours.iter().flat_map(|(_, w)| w.iter().copied()).collect();
        let wanted = self.only.as_ref().map(selector);
        let wanted = wanted.as_ref().map(|w| w as &crate::engine::Select<'_>);
        let mut decoded: FxHashMap<u32, Vec<UsageChunk>> = decode_many(self.lake, self.files, &all, wanted, self.shard)?.into_iter().collect();
        for (hour, which) in hours {
            let mut chunks = Vec::new();
            for f in which.iter() {
                chunks.extend(decoded.remove(f).unwrap_or_default());
            }
            out.push((**hour, chunks));
        }
        Ok(out)
    }
}

/// A what-if run's selection of rows, by account id.
fn selector<'f>(only: &'f FxHashMap<String, Option<crate::engine::RowFilter>>) -> impl Fn(&str) -> Option<Option<&'f crate::engine::RowFilter>> + Sync + 'f {
    move |account| only.get(account).map(Option::as_ref)
}

/// Reads and decodes several files in parallel: every row, or only the rows of the
/// `wanted` accounts.
fn decode_many(
    lake: &Lake,
    files: &[UsageFile],
    which: &[u32],
    wanted: Option<&crate::engine::Select<'_>>,
    shard: Option<crate::shard::Shard>,
) -> Result<Vec<(u32, Vec<UsageChunk>)>, JobError> {
    let rels: Vec<String> = which.iter().map(|&i| files[i as usize].path.clone()).collect();
    let fetched = lake.get_many(&rels);
    which
        .par_iter()
        .zip(fetched.into_par_iter())
        .map(|(&i, bytes)| {
            let f = &files[i as usize];
            Ok((
                i,
                match (wanted, shard) {
                    (Some(wanted), _) => inputs::read_usage_file_of(i, f, bytes?, wanted)?,
                    (None, Some(shard)) => inputs::read_usage_file_in(i, f, bytes?, shard)?,
                    (None, None) => read_usage_file(i, f, bytes?)?,
                },
            ))
        })
        .collect()
}

/// The duplicate verdicts of the period.
///
/// With `spill`, a month not kept in memory has its hashes spilled to files under that
/// folder rather than held (`spill.rs`): the pass's memory is then a batch of files',
/// not the month's.
pub(crate) fn duplicate_verdicts(
    usage: &mut Usage<'_>,
    period: Period,
    spill: Option<&std::path::Path>,
) -> Result<FxHashMap<FileRow, crate::rules::checks::Rejection>, JobError> {
    let all: Vec<u32> = (0..usage.files.len() as u32).collect();
    let mut seen = dedup::Seen::default();
    let mut spilled = match spill {
        Some(dir) if !usage.keep => Some(super::spill::Spill::new(dir)?),
        _ => None,
    };
    for batch in all.chunks(64) {
        if usage.keep {
            // Small month: decode whole files once, keep them for rating.
            for (fi, chunks) in decode_many(usage.lake, usage.files, batch, None, None)? {
                for c in &chunks {
                    for r in 0..c.len {
                        if let Some(id) = c.record_id.get(r) {
                            seen.push(dedup::id_hash(id), (fi, c.first_row + r as u32));
                        }
                    }
                }
                usage.cache.insert(fi, chunks);
            }
        } else {
            // Large month: read the record_id column alone. Every row's id is hashed,
            // valid or not; the rare suspects are then checked in full below.
            let rels: Vec<String> = batch.iter().map(|&i| usage.files[i as usize].path.clone()).collect();
            let fetched = usage.lake.get_many(&rels);
            let parts: Vec<dedup::Part> = batch
                .par_iter()
                .zip(fetched.into_par_iter())
                .map(|(&fi, bytes)| Ok(dedup::Part::new(record_id_hashes(fi, bytes?))))
                .collect::<Result<_, JobError>>()?;
            match &mut spilled {
                Some(spill) => parts.iter().try_for_each(|p| spill.add(p))?,
                None => seen.add(dedup::Part::merge(parts)),
            }
        }
    }
    let suspects = match spilled {
        Some(spill) => spill.suspects()?,
        None => seen.suspects(),
    };
    if suspects.is_empty() {
        return Ok(FxHashMap::default());
    }
    let mut by_file: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (f, r) in &suspects {
        by_file.entry(*f).or_default().push(*r);
    }
    let mut rows = Vec::new();
    for (f, want) in by_file {
        let chunks = usage.whole(f)?;
        for c in &chunks {
            for &r in &want {
                if r < c.first_row || r >= c.first_row + c.len as u32 {
                    continue;
                }
                let loc = RowLoc { chunk: 0, row: r - c.first_row };
                if let Ok(u) = check_row(c, loc, period) {
                    let content = crate::rules::checks::content_string(&u);
                    rows.push(((f, r), u.record_id.to_string(), content));
                }
            }
        }
    }
    Ok(dedup::verdicts(rows))
}

/// Rates the period's hours in order, handing each hour's result to `each`. The
/// usage of the next hour is decoded on another thread meanwhile and handed over, not
/// queued: memory holds the hour being decoded (or waiting), the one being rated and
/// the one being written. A what-if run's hours are small selections of rows: a few
/// of them are decoded at a time, in parallel across files, and more wait.
pub(crate) fn rate_hours(
    usage: &mut Usage<'_>,
    hours: &BTreeMap<Micros, Vec<u32>>,
    engine: &mut Engine,
    verdicts: &FxHashMap<FileRow, crate::rules::checks::Rejection>,
    opts: &crate::engine::HourOptions<'_>,
    mut each: impl FnMut(&Engine, crate::engine::HourResult, &[UsageChunk]) -> Result<(), JobError>,
) -> Result<(), JobError> {
    let bar = progress(hours.len() as u64, &engine.period.to_string());
    let usage = &*usage;
    // A close's hours grow with the month (94M rows: 126,000 rows an hour), so one is
    // decoded at a time: a queue of two and two decoded together held 80 MB more at
    // 94M rows (25 MB at 28M) and were no faster at 10M. A what-if run's hours are a
    // selection of rows, small: more of them are decoded together and wait, so that
    // the decoder and the ratings keep both cores busy.
    let threads = rayon::current_num_threads().max(1);
    let (ahead, waiting) = if usage.only.is_some() { (threads, 4 * threads) } else { (1, 0) };
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Micros, Vec<UsageChunk>), JobError>>(waiting);
        scope.spawn(move || {
            let hours: Vec<(&Micros, &Vec<u32>)> = hours.iter().collect();
            for group in hours.chunks(ahead) {
                let decoded = usage.decode_hours(group);
                let failed = decoded.is_err();
                let sent = match decoded {
                    Ok(each_hour) => each_hour.into_iter().all(|h| tx.send(Ok(h)).is_ok()),
                    Err(e) => tx.send(Err(e)).is_ok(),
                };
                if failed || !sent {
                    return;
                }
            }
        });
        for got in rx {
            let (hour, chunks) = got?;
            bar.inc(1);
            engine.process_hour_in_blocks(hour, &chunks, verdicts, opts, |engine, res| each(engine, res, &chunks))?;
        }
        Ok::<(), JobError>(())
    })?;
    bar.finish_and_clear();
    Ok(())
}

/// A progress bar over a period's hours, drawn only when stderr is a terminal (a
/// scheduler's log gets the stage lines instead).
fn progress(len: u64, label: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} hours, {elapsed} (eta {eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("billrun {label}"));
    bar
}

/// `(hash of record_id, (file, row))` of every row of a usage file with a record_id,
/// reading that one column. A file that cannot be read this way yields nothing here:
/// the rating pass reads it whole and refuses it with the reason.
fn record_id_hashes(fi: u32, bytes: bytes::Bytes) -> Vec<(u64, FileRow)> {
    use parquet::arrow::ProjectionMask;
    let read = inputs::decode_usage_with("", bytes, |b| {
        let mask = ProjectionMask::columns(b.parquet_schema(), ["record_id"]);
        b.with_projection(mask)
    });
    let batches = read.unwrap_or_default();
    let mut out = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    let mut first = 0u32;
    for batch in batches {
        if let Ok(ids) = crate::lake::columns::StrCol::of(&batch, "record_id") {
            for r in 0..batch.num_rows() {
                if let Some(id) = ids.get(r) {
                    out.push((dedup::id_hash(id), (fi, first + r as u32)));
                }
            }
        }
        first += batch.num_rows() as u32;
    }
    out
}

/// Rates a set of usage files of a period (their duplicates judged among them), hour
/// by hour in order: the hourly run's loop.
pub fn rate_files(
    lake: &Lake,
    files: &[UsageFile],
    period: Period,
    cache_bytes: u64,
    engine: &mut Engine,
    each: impl FnMut(&Engine, crate::engine::HourResult, &[UsageChunk]) -> Result<(), JobError>,
) -> Result<(), JobError> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let mut usage = Usage { lake, files, cache: FxHashMap::default(), keep: total <= cache_bytes, only: None, whole_what_if: false, shard: None };
    let verdicts = duplicate_verdicts(&mut usage, period, None)?;
    let mut hours: BTreeMap<Micros, Vec<u32>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        hours.entry(f.partition_hour).or_default().push(i as u32);
    }
    rate_hours(&mut usage, &hours, engine, &verdicts, &Default::default(), each)
}
