//! The lake's own encoder for four kinds of output column chunk: strings drawn from
//! short lists (account ids, SKUs, units, constants), which the line items carry as
//! dictionary keys, exact decimals, timestamps, and strings that hardly repeat
//! (record ids, exact quantities), written PLAIN without statistics.
//!
//! The general Parquet writer hashes every string again to find its dictionary
//! entry, compares every value for the statistics, and turns each decimal into a
//! byte buffer of its own; on the line-item table those steps were most of the
//! close's encoding time. Here a key is looked up once per distinct key and row
//! group, string statistics come from the distinct values, and decimals and
//! timestamps stay integers until they are written.
//!
//! The chunks are plain Parquet, as the general writer makes them: a PLAIN dictionary
//! page first, then format-v1 data pages of at most 20,000 rows (definition levels
//! RLE, values RLE_DICTIONARY; PLAIN for the pages of a decimal column after its
//! dictionary is full; PLAIN for strings that hardly repeat, in pages of at most
//! 20,000 rows and about 1 MiB), Snappy compression, chunk statistics, and a column
//! and an offset index (the PLAIN strings: no statistics, an offset index only).

use arrow_array::types::UInt32Type;
use arrow_array::{Array, ArrayRef, Decimal128Array, DictionaryArray, StringArray, TimestampMicrosecondArray};
use bytes::Bytes;
use hashbrown::HashTable;
use parquet::basic::{Compression, Encoding, PageType, Type as PhysicalType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder, PageEncodingStats};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::text::same_bytes;

mod finish;
mod hybrid;
#[cfg(test)]
mod tests;

use hybrid::{hybrid, rle_run, values_rle, Levels};

/// Rows per data page: the general writer's default limit.
const PAGE_ROWS: usize = 20_000;
/// Bytes a decimal or timestamp column's dictionary may hold (the general writer's
/// dictionary page limit); the pages after it fills are PLAIN.
const DICT_BYTES_MAX: usize = 1 << 20;
/// Bytes a string column's dictionary may hold: a month's row group may hold every
/// resource of a large region (ids, names), so more than the general writer's 1 MiB.
/// Past it, the chunk's remaining pages are PLAIN.
pub const STR_DICT_BYTES_MAX: usize = 16 << 20;
/// Longest min or max a column index holds (the general writer's default); a page
/// whose bound is longer leaves the chunk without a column index.
const INDEX_BOUND_MAX: usize = 64;
const NONE: u32 = u32::MAX;
/// Bytes of PLAIN strings after which a data page is closed (the general writer's
/// default page size limit).
const PAGE_BYTES: usize = 1 << 20;

/// Whether a column of this Arrow type, written to this Parquet column, is one
/// this encoder takes.
pub fn takes(data_type: &arrow_schema::DataType, descr: &ColumnDescPtr) -> bool {
    use arrow_schema::DataType as D;
    match data_type {
        D::Dictionary(k, v) => **k == D::UInt32 && **v == D::Utf8 && descr.physical_type() == PhysicalType::BYTE_ARRAY,
        D::Decimal128(..) => descr.physical_type() == PhysicalType::FIXED_LEN_BYTE_ARRAY && descr.type_length() == 16,
        D::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => descr.physical_type() == PhysicalType::INT64,
        D::Utf8 => descr.physical_type() == PhysicalType::BYTE_ARRAY,
        _ => false,
    }
}

/// The distinct values of the open row group, in order of first appearance.
#[derive(Clone)]
enum Dictionary {
    Str {
        /// PLAIN encoding of the entries: 4-byte length, then the bytes.
        plain: Vec<u8>,
        /// Each entry's bytes in `plain`.
        spans: Vec<(u32, u32)>,
        /// Each entry by its bytes' hash, held with it: an entry costs no allocation
        /// of its own, and a row group's ids and names (at 94M rows, some 130,000 a
        /// row group) are not each copied into a box and freed again.
        by_content: HashTable<(u64, u32)>,
        /// The dictionary values the keys of the last batch index, and the entry of
        /// each key (`NONE`: not seen yet).
        values: Option<ArrayRef>,
        slot: Vec<u32>,
        /// The entry a value not seen in the batch was last found to be (`NONE`:
        /// none yet), and for each entry, the one found after it the last time. A
        /// column of a value a row (a resource's id) repeats its rows from hour to
        /// hour in much the same order: the last entry, the one that followed it
        /// before, and the next two are compared before the table is probed.
        last: u32,
        after: Vec<u32>,
        /// Once the entries pass [`STR_DICT_BYTES_MAX`]: the bytes and the number of
        /// the entries the dictionary page holds (the pages from then on are PLAIN).
        kept: Option<(usize, usize)>,
    },
    Dec {
        entries: Vec<i128>,
        /// Each entry's id: by a 64-bit key when the value fits one (amounts and
        /// quantities do), which halves the table a page's values are looked up in.
        ids: FxHashMap<i64, u32>,
        wide: FxHashMap<i128, u32>,
        /// Full: the remaining pages are PLAIN.
        full: bool,
    },
    /// None: strings written PLAIN as they come.
    Plain,
}

/// A written data page and what the indexes need of it.
struct DataPage {
    page: CompressedPage,
    encoding: Encoding,
    rows: usize,
    nulls: usize,
    bounds: Option<(Vec<u8>, Vec<u8>)>,
}

impl Clone for DataPage {
    fn clone(&self) -> DataPage {
        DataPage {
            page: CompressedPage::new(self.page.compressed_page().clone(), self.page.uncompressed_size()),
            encoding: self.encoding,
            rows: self.rows,
            nulls: self.nulls,
            bounds: self.bounds.clone(),
        }
    }
}

/// Encodes one column of a row group.
#[derive(Clone)]
pub struct ChunkEncoder {
    descr: ColumnDescPtr,
    nullable: bool,
    stats: bool,
    /// Whether a decimal or timestamp column may use a dictionary.
    dictionary: bool,
    dict: Dictionary,
    /// The open page: definition levels (nullable columns, once the page has a
    /// null), and the non-null values as dictionary entries (strings) or as they are
    /// (decimals).
    levels: Levels,
    ids: Vec<u32>,
    decimals: Vec<i128>,
    /// The open page's PLAIN strings (4-byte length, then the bytes, each).
    strings: Vec<u8>,
    page_rows: usize,
    page_nulls: usize,
    pages: Vec<DataPage>,
    /// Scratch: the page each string entry was last seen in.
    seen: Vec<u32>,
    /// Scratch of [`hybrid`].
    runs: Vec<u64>,
    snappy: Snappy,
}

impl ChunkEncoder {
    /// An encoder for a column of `data_type` (one [`takes`]). Decimal and timestamp
    /// columns use a dictionary when `dictionary`; keyed string columns always do;
    /// plain string columns never do, and have no statistics (the sink hands it only
    /// those).
    pub fn new(data_type: &arrow_schema::DataType, descr: ColumnDescPtr, nullable: bool, dictionary: bool, stats: bool) -> ChunkEncoder {
        let dict = match data_type {
            arrow_schema::DataType::Decimal128(..) | arrow_schema::DataType::Timestamp(..) => {
                Dictionary::Dec { entries: Vec::new(), ids: FxHashMap::default(), wide: FxHashMap::default(), full: !dictionary }
            }
            arrow_schema::DataType::Utf8 => Dictionary::Plain,
            _ => Dictionary::Str {
                plain: Vec::new(),
                spans: Vec::new(),
                by_content: HashTable::new(),
                values: None,
                slot: Vec::new(),
                last: NONE,
                after: Vec::new(),
                kept: None,
            },
        };
        ChunkEncoder {
            descr,
            nullable,
            stats,
            dictionary,
            dict,
            levels: Levels::default(),
            ids: Vec::with_capacity(PAGE_ROWS),
            decimals: Vec::new(),
            strings: Vec::new(),
            page_rows: 0,
            page_nulls: 0,
            pages: Vec::new(),
            seen: Vec::new(),
            runs: Vec::new(),
            snappy: Snappy::default(),
        }
    }

    /// An encoder for the column `descr` whose values so far are the very values this
    /// one was given (with the same settings): its state is this one's, so it goes on
    /// to the bytes encoding them itself would have given.
    pub fn fork(&self, descr: ColumnDescPtr) -> ChunkEncoder {
        ChunkEncoder { descr, ..self.clone() }
    }

    /// Appends a batch's values.
    pub fn write(&mut self, array: &dyn Array) -> Result<()> {
        if array.null_count() > 0 && !self.nullable {
            return Err(ParquetError::General(format!("nulls in the required column {}", self.descr.name())));
        }
        if let Some(a) = array.as_any().downcast_ref::<DictionaryArray<UInt32Type>>() {
            return self.write_keys(a);
        }
        if let Some(a) = array.as_any().downcast_ref::<Decimal128Array>() {
            return self.write_numbers(a.values(), a.nulls(), |v| v);
        }
        if let Some(a) = array.as_any().downcast_ref::<TimestampMicrosecondArray>() {
            return self.write_numbers(a.values(), a.nulls(), i128::from);
        }
        if let Some(a) = array.as_any().downcast_ref::<StringArray>() {
            return self.write_strings(a);
        }
        Err(ParquetError::General(format!("column {}: {} is not encoded here", self.descr.name(), array.data_type())))
    }

    fn write_keys(&mut self, a: &DictionaryArray<UInt32Type>) -> Result<()> {
        let strings = a
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| ParquetError::General(format!("column {}: dictionary values are not strings", self.descr.name())))?;
        if let Dictionary::Str { values, slot, .. } = &mut self.dict {
            if !values.as_ref().is_some_and(|v| Arc::ptr_eq(v, a.values())) {
                *values = Some(a.values().clone());
                slot.clear();
                slot.resize(strings.len(), NONE);
            }
        }
        let keys = a.keys().values();
        let nulls = a.nulls().filter(|n| n.null_count() > 0);
        let mut at = 0;
        while at < a.len() {
            let take = (PAGE_ROWS - self.page_rows).min(a.len() - at);
            let part = &keys[at..at + take];
            match nulls {
                // One value (a constant column): every key is 0, resolved once.
                None if strings.len() == 1 => {
                    self.resolve(strings, std::iter::once(0))?;
                    let id = *self.ids.last().expect("one entry resolved");
                    self.ids.resize(self.ids.len() + take - 1, id);
                    self.present(take);
                }
                None => {
                    self.resolve(strings, part.iter().map(|&k| k as usize))?;
                    self.present(take);
                }
                Some(n) => {
                    let valid = n.inner().slice(at, take);
                    self.resolve(strings, valid.set_indices().map(|i| part[i] as usize))?;
                    self.levels_of(&valid);
                }
            }
            at += take;
            if self.page_rows == PAGE_ROWS {
                self.close_page()?;
            }
        }
        Ok(())
    }

    /// Appends the dictionary entry of each of `keys` (into the batch's `strings`) to
    /// the open page, adding the strings the row group has not had yet.
    fn resolve(&mut self, strings: &StringArray, keys: impl Iterator<Item = usize>) -> Result<()> {
        let descr = &self.descr;
        let ids = &mut self.ids;
        let Dictionary::Str { plain, spans, by_content, slot, last, after, .. } = &mut self.dict else {
            return Err(ParquetError::General(format!("column {}: strings for a decimal column", descr.name())));
        };
        for k in keys {
            match slot.get(k) {
                Some(&id) if id != NONE => ids.push(id),
                Some(_) => {
                    if strings.is_null(k) {
                        return Err(ParquetError::General(format!("column {}: key {k} names a null value", descr.name())));
                    }
                    let s = strings.value(k).as_bytes();
                    let entry = |id: u32| spans.get(id as usize).map(|&(from, len)| &plain[from as usize..(from + len) as usize]);
                    let followed = after.get(*last as usize).copied().unwrap_or(NONE);
                    let hit = |id: u32| entry(id).is_some_and(|e| same_bytes(e, s));
                    let guess = [*last, followed, last.wrapping_add(1), last.wrapping_add(2)].into_iter().find(|&id| hit(id));
                    // Not guessed: looked up by hash; not found, a new entry under that hash.
                    let found = match guess {
                        Some(id) => Ok(id),
                        None => {
                            let hash = FxBuildHasher.hash_one(s);
                            by_content.find(hash, |&(h, id)| h == hash && hit(id)).map(|&(_, id)| id).ok_or(hash)
                        }
                    };
                    slot[k] = match found {
                        Ok(id) => id,
                        Err(hash) => {
                            let id = spans.len() as u32;
                            let start = plain.len() + 4;
                            plain.extend_from_slice(&(s.len() as u32).to_le_bytes());
                            plain.extend_from_slice(s);
                            spans.push((start as u32, s.len() as u32));
                            by_content.insert_unique(hash, (hash, id), |&(h, _)| h);
                            after.push(NONE);
                            id
                        }
                    };
                    if let Some(a) = after.get_mut(*last as usize) {
                        *a = slot[k];
                    }
                    *last = slot[k];
                    ids.push(slot[k]);
                }
                None => return Err(ParquetError::General(format!("column {}: key {k} out of range", descr.name()))),
            }
        }
        Ok(())
    }

    /// Rows written to the open page, valid where `valid` is set.
    fn levels_of(&mut self, valid: &arrow_buffer::BooleanBuffer) {
        let nulls = valid.len() - valid.count_set_bits();
        if nulls == 0 {
            self.present(valid.len());
            return;
        }
        if self.page_nulls == 0 {
            self.levels.clear();
            self.levels.0.append_n(self.page_rows, true);
        }
        if nulls == valid.len() {
            self.levels.0.append_n(nulls, false);
        } else {
            self.levels.0.append_buffer(valid);
        }
        self.page_nulls += nulls;
        self.page_rows += valid.len();
    }

    /// `n` values written to the open page. Definition levels are only kept once the
    /// page has a null: a page without one has all its levels 1.
    #[inline]
    fn present(&mut self, n: usize) {
        if self.page_nulls > 0 {
            self.levels.0.append_n(n, true);
        }
        self.page_rows += n;
    }

    /// Strings, PLAIN: a page closes at 20,000 rows or once its values pass 1 MiB.
    fn write_strings(&mut self, a: &StringArray) -> Result<()> {
        if !matches!(self.dict, Dictionary::Plain) {
            return Err(ParquetError::General(format!("column {}: plain strings for a keyed or numeric column", self.descr.name())));
        }
        let offsets = a.value_offsets();
        let data = a.value_data();
        let nulls = a.nulls().filter(|n| n.null_count() > 0);
        let mut at = 0;
        while at < a.len() {
            let most = (PAGE_ROWS - self.page_rows).min(a.len() - at);
            // The rows that fit under the page's byte limit (at least one; a null is
            // counted as a 4-byte length too).
            let room = PAGE_BYTES.saturating_sub(self.strings.len());
            let take = match (0..=most).position(|k| (offsets[at + k] - offsets[at]) as usize + 4 * k > room) {
                Some(past) => (past - 1).max(1),
                None => most,
            };
            let valid = nulls.map(|n| n.inner().slice(at, take));
            self.strings.reserve((offsets[at + take] - offsets[at]) as usize + 4 * take);
            for i in at..at + take {
                if valid.as_ref().is_none_or(|v| v.value(i - at)) {
                    let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
                    self.strings.extend_from_slice(&((to - from) as u32).to_le_bytes());
                    self.strings.extend_from_slice(&data[from..to]);
                }
            }
            match &valid {
                None => self.present(take),
                Some(v) => self.levels_of(v),
            }
            at += take;
            if self.page_rows == PAGE_ROWS || self.strings.len() >= PAGE_BYTES {
                self.close_page()?;
            }
        }
        Ok(())
    }

    /// Decimals (as their 128-bit mantissas) or timestamps, each value `as_i128`.
    fn write_numbers<T: Copy>(&mut self, values: &[T], nulls: Option<&arrow_buffer::NullBuffer>, as_i128: impl Fn(T) -> i128) -> Result<()> {
        if !matches!(self.dict, Dictionary::Dec { .. }) {
            return Err(ParquetError::General(format!("column {}: numbers for a string column", self.descr.name())));
        }
        let nulls = nulls.filter(|n| n.null_count() > 0);
        let mut at = 0;
        while at < values.len() {
            let take = (PAGE_ROWS - self.page_rows).min(values.len() - at);
            match nulls {
                None => {
                    self.decimals.extend(values[at..at + take].iter().map(|&v| as_i128(v)));
                    self.present(take);
                }
                Some(n) => {
                    let valid = n.inner().slice(at, take);
                    self.decimals.extend(valid.set_indices().map(|i| as_i128(values[at + i])));
                    self.levels_of(&valid);
                }
            }
            at += take;
            if self.page_rows == PAGE_ROWS {
                self.close_page()?;
            }
        }
        Ok(())
    }

    fn close_page(&mut self) -> Result<()> {
        let rows = self.page_rows;
        if rows == 0 {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(16 + self.ids.len().max(self.decimals.len()) * 2);
        if self.nullable {
            buf.extend_from_slice(&[0; 4]);
            if self.page_nulls == 0 && rows >= 8 {
                rle_run(rows, 1, 1, &mut buf);
            } else if self.page_nulls == 0 {
                hybrid(&[1; 8][..rows], 1, &mut buf, &mut self.runs);
            } else {
                hybrid(&self.levels, 1, &mut buf, &mut self.runs);
            }
            let len = (buf.len() - 4) as u32;
            buf[..4].copy_from_slice(&len.to_le_bytes());
        }
        let page_no = self.pages.len() as u32;
        let (encoding, bounds) = match &mut self.dict {
            // A page of nulls only has no values: PLAIN, so that a chunk of nulls
            // only needs no dictionary.
            _ if self.ids.is_empty() && self.decimals.is_empty() && self.strings.is_empty() => (Encoding::PLAIN, None),
            Dictionary::Plain => {
                buf.extend_from_slice(&self.strings);
                (Encoding::PLAIN, None)
            }
            Dictionary::Str { plain, spans, kept, .. } => {
                let bounds = if self.stats { str_bounds(&self.ids, spans, plain, &mut self.seen, page_no) } else { None };
                if kept.is_none() && plain.len() >= STR_DICT_BYTES_MAX {
                    *kept = Some((plain.len(), spans.len()));
                }
                if kept.is_some() {
                    // Each value as its entry's PLAIN bytes: the length, then the text.
                    for &id in &self.ids {
                        let (from, len) = spans[id as usize];
                        buf.extend_from_slice(&plain[from as usize - 4..(from + len) as usize]);
                    }
                    (Encoding::PLAIN, bounds)
                } else {
                    values_rle(&self.ids, spans.len(), &mut buf, &mut self.runs);
                    (Encoding::RLE_DICTIONARY, bounds)
                }
            }
            Dictionary::Dec { entries, ids, wide, full } => {
                let int64 = self.descr.physical_type() == PhysicalType::INT64;
                let bounds = match (self.stats, min_max(&self.decimals)) {
                    (true, Some((lo, hi))) => {
                        let (mut min, mut max) = (Vec::new(), Vec::new());
                        put_plain(lo, int64, &mut min);
                        put_plain(hi, int64, &mut max);
                        Some((min, max))
                    }
                    _ => None,
                };
                if !*full && entries.len() * if int64 { 8 } else { 16 } >= DICT_BYTES_MAX {
                    *full = true;
                }
                if *full {
                    buf.reserve(self.decimals.len() * 16);
                    for &v in &self.decimals {
                        put_plain(v, int64, &mut buf);
                    }
                    (Encoding::PLAIN, bounds)
                } else {
                    self.ids.clear();
                    // Equal neighbours are common (a price, lines of one SKU): the last
                    // value's entry is tried before the table.
                    let mut last: Option<(i128, u32)> = None;
                    for &v in &self.decimals {
                        let id = match last {
                            Some((lv, id)) if lv == v => id,
                            _ => {
                                let next = entries.len() as u32;
                                let id = match i64::try_from(v) {
                                    Ok(small) => *ids.entry(small).or_insert(next),
                                    Err(_) => *wide.entry(v).or_insert(next),
                                };
                                if id == next {
                                    entries.push(v);
                                }
                                last = Some((v, id));
                                id
                            }
                        };
                        self.ids.push(id);
                    }
                    values_rle(&self.ids, entries.len(), &mut buf, &mut self.runs);
                    (Encoding::RLE_DICTIONARY, bounds)
                }
            }
        };
        let uncompressed = buf.len();
        let page = Page::DataPage {
            buf: self.snappy.compress(&buf)?,
            num_values: rows as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        self.pages.push(DataPage { page: CompressedPage::new(page, uncompressed), encoding, rows, nulls: self.page_nulls, bounds });
        self.levels.clear();
        self.ids.clear();
        self.decimals.clear();
        self.strings.clear();
        self.page_rows = 0;
        self.page_nulls = 0;
        Ok(())
    }
}

/// Appends a decimal's or a timestamp's PLAIN encoding: 16 bytes big-endian (a
/// decimal's fixed-length bytes), or 8 bytes little-endian (an INT64).
fn put_plain(v: i128, int64: bool, out: &mut Vec<u8>) {
    if int64 {
        out.extend_from_slice(&(v as i64).to_le_bytes());
    } else {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// The least and greatest of `values`, in one pass.
fn min_max(values: &[i128]) -> Option<(i128, i128)> {
    let first = *values.first()?;
    Some(values.iter().fold((first, first), |(lo, hi), &v| (lo.min(v), hi.max(v))))
}

fn le_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

fn be_i128(b: &[u8]) -> i128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    i128::from_be_bytes(a)
}

/// The least and greatest string of a page's entries, each distinct entry compared
/// once.
fn str_bounds(ids: &[u32], spans: &[(u32, u32)], plain: &[u8], seen: &mut Vec<u32>, page_no: u32) -> Option<(Vec<u8>, Vec<u8>)> {
    if seen.len() < spans.len() {
        seen.resize(spans.len(), NONE);
    }
    let text = |id: u32| {
        let (at, len) = spans[id as usize];
        &plain[at as usize..(at + len) as usize]
    };
    let (mut lo, mut hi): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    let mut last = NONE;
    for &id in ids {
        if id == last || seen[id as usize] == page_no {
            continue;
        }
        last = id;
        seen[id as usize] = page_no;
        let s = text(id);
        if lo.is_none_or(|l| s < l) {
            lo = Some(s);
        }
        if hi.is_none_or(|h| s > h) {
            hi = Some(s);
        }
    }
    Some((lo?.to_vec(), hi?.to_vec()))
}

/// Snappy, kept from page to page: its hash table and its output buffer are made
/// once, not zeroed afresh for every page.
#[derive(Default)]
struct Snappy {
    encoder: Option<snap::raw::Encoder>,
    out: Vec<u8>,
}

impl Clone for Snappy {
    /// A fresh one: nothing of a page is carried to the next but the buffers.
    fn clone(&self) -> Snappy {
        Snappy::default()
    }
}

impl Snappy {
    fn compress(&mut self, buf: &[u8]) -> Result<Bytes> {
        let most = snap::raw::max_compress_len(buf.len());
        if self.out.len() < most {
            self.out.resize(most, 0);
        }
        let n = self.encoder.get_or_insert_with(snap::raw::Encoder::new).compress(buf, &mut self.out).map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(Bytes::copy_from_slice(&self.out[..n]))
    }
}
