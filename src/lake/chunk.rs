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
use arrow_buffer::builder::BooleanBufferBuilder;
use arrow_buffer::MutableBuffer;
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

    /// The row group's chunk: its bytes (dictionary page first), and its close
    /// result with offsets into them. The encoder is ready for the next row group.
    pub fn finish(&mut self) -> Result<(Bytes, ColumnCloseResult)> {
        self.close_page()?;
        let pages = std::mem::take(&mut self.pages);
        // Stamps are page numbers within the row group.
        self.seen.clear();
        let dictionary = match &mut self.dict {
            Dictionary::Str { plain, spans, by_content, values, slot, last, after, kept } => {
                let used = pages.iter().any(|p| p.encoding == Encoding::RLE_DICTIONARY);
                let (bytes, entries) = kept.take().unwrap_or((plain.len(), spans.len()));
                plain.truncate(bytes);
                let page = (used && entries > 0).then(|| (std::mem::take(plain), entries));
                plain.clear();
                spans.clear();
                by_content.clear();
                *values = None;
                slot.clear();
                *last = NONE;
                after.clear();
                page
            }
            Dictionary::Dec { entries, ids, wide, full } => {
                let used = pages.iter().any(|p| p.encoding == Encoding::RLE_DICTIONARY);
                let int64 = self.descr.physical_type() == PhysicalType::INT64;
                let page = used.then(|| {
                    let mut plain = Vec::with_capacity(entries.len() * 16);
                    for &v in entries.iter() {
                        put_plain(v, int64, &mut plain);
                    }
                    (plain, entries.len())
                });
                entries.clear();
                ids.clear();
                wide.clear();
                *full = !self.dictionary;
                page
            }
            Dictionary::Plain => None,
        };

        let mut sink = TrackedWrite::new(Vec::new());
        let mut writer = SerializedPageWriter::new(&mut sink);
        let mut encodings = vec![Encoding::RLE];
        let mut encoding_stats = Vec::new();
        let (mut compressed, mut uncompressed, mut values) = (0i64, 0i64, 0i64);
        let mut dictionary_offset = None;
        if let Some((plain, entries)) = dictionary {
            let len = plain.len();
            let page = Page::DictionaryPage { buf: self.snappy.compress(&plain)?, num_values: entries as u32, encoding: Encoding::PLAIN, is_sorted: false };
            // A dictionary page may be far larger than a data page: its buffer is not
            // kept for the data pages.
            self.snappy.out = Vec::new();
            let spec = writer.write_page(CompressedPage::new(page, len))?;
            dictionary_offset = Some(spec.offset as i64);
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            encodings.push(Encoding::PLAIN);
            encoding_stats.push(PageEncodingStats { page_type: PageType::DICTIONARY_PAGE, encoding: Encoding::PLAIN, count: 1 });
        }
        let mut offsets = OffsetIndexBuilder::new();
        let mut index = ColumnIndexBuilder::new(self.descr.physical_type());
        let mut index_valid = self.stats;
        let (mut lo, mut hi): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
        let physical = self.descr.physical_type();
        let less = |a: &[u8], b: &[u8]| match physical {
            PhysicalType::FIXED_LEN_BYTE_ARRAY => be_i128(a) < be_i128(b),
            PhysicalType::INT64 => le_i64(a) < le_i64(b),
            _ => a < b,
        };
        let mut first_data = None;
        let mut nulls = 0u64;
        for p in pages {
            let spec = writer.write_page(p.page)?;
            first_data.get_or_insert(spec.offset as i64);
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            values += p.rows as i64;
            nulls += p.nulls as u64;
            offsets.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
            offsets.append_row_count(p.rows as i64);
            if !encodings.contains(&p.encoding) {
                encodings.push(p.encoding);
            }
            match encoding_stats.last_mut() {
                Some(PageEncodingStats { page_type: PageType::DATA_PAGE, encoding, count }) if *encoding == p.encoding => *count += 1,
                _ => encoding_stats.push(PageEncodingStats { page_type: PageType::DATA_PAGE, encoding: p.encoding, count: 1 }),
            }
            match p.bounds {
                Some((min, max)) => {
                    if min.len() > INDEX_BOUND_MAX || max.len() > INDEX_BOUND_MAX {
                        index_valid = false;
                    }
                    index.append(false, min.clone(), max.clone(), p.nulls as i64, None);
                    if lo.as_ref().is_none_or(|l| less(&min, l)) {
                        lo = Some(min);
                    }
                    if hi.as_ref().is_none_or(|h| less(h, &max)) {
                        hi = Some(max);
                    }
                }
                None => index.append(true, Vec::new(), Vec::new(), p.nulls as i64, None),
            }
        }
        writer.close()?;
        let bytes = Bytes::from(sink.into_inner()?);

        let mut builder = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(Compression::SNAPPY)
            .set_encodings(encodings)
            .set_page_encoding_stats(encoding_stats)
            .set_total_compressed_size(compressed)
            .set_total_uncompressed_size(uncompressed)
            .set_num_values(values)
            .set_data_page_offset(first_data.unwrap_or(0))
            .set_dictionary_page_offset(dictionary_offset);
        if self.stats {
            let statistics = match physical {
                PhysicalType::FIXED_LEN_BYTE_ARRAY => {
                    let v = |b: Option<Vec<u8>>| b.map(|b| FixedLenByteArray::from(ByteArray::from(b)));
                    Statistics::FixedLenByteArray(ValueStatistics::new(v(lo), v(hi), None, Some(nulls), false).with_backwards_compatible_min_max(true))
                }
                PhysicalType::INT64 => {
                    let v = |b: Option<Vec<u8>>| b.map(|b| le_i64(&b));
                    Statistics::Int64(ValueStatistics::new(v(lo), v(hi), None, Some(nulls), false).with_backwards_compatible_min_max(true))
                }
                _ => {
                    let v = |b: Option<Vec<u8>>| b.map(ByteArray::from);
                    Statistics::ByteArray(ValueStatistics::new(v(lo), v(hi), None, Some(nulls), false))
                }
            };
            builder = builder.set_statistics(statistics);
        }
        let column_index = if index_valid { Some(index.build()?) } else { None };
        let close = ColumnCloseResult {
            bytes_written: bytes.len() as u64,
            rows_written: values as u64,
            metadata: builder.build()?,
            bloom_filter: None,
            column_index,
            offset_index: Some(offsets.build()),
        };
        Ok((bytes, close))
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

/// Dictionary indexes as a data page holds them: the bit width, then the hybrid runs.
fn values_rle(ids: &[u32], entries: usize, out: &mut Vec<u8>, runs: &mut Vec<u64>) {
    let bw = bit_width(entries.saturating_sub(1) as u32);
    out.push(bw);
    hybrid(ids, bw, out, runs);
}

fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
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

/// The RLE / bit-packing hybrid encoding of `values` (each below 2^`bw`): runs of
/// eight or more equal values as RLE runs, the rest bit-packed in groups of eight.
/// `starts` is scratch, kept from call to call.
///
/// Only runs of eight or more matter, and in most columns most values differ from
/// the one before, or sit in a run that goes on for a whole page: the runs are found
/// in a bitmap of where values change, 64 values a word, and only the long ones are
/// walked.
fn hybrid<V: Hybrid + ?Sized>(values: &V, bw: u8, out: &mut Vec<u8>, starts: &mut Vec<u64>) {
    let n = values.count();
    if n == 0 {
        return;
    }
    values.run_starts(starts);
    let mut literal_from = 0;
    for w in 0..n.div_ceil(64) {
        // Bit k: a run of eight or more starts at value 64 × w + k (it starts there,
        // and the next seven values are the same as it).
        let x = starts[w] as u128 | (starts[w + 1] as u128) << 64;
        let same = !x;
        let mut long = (x & same >> 1 & same >> 2 & same >> 3 & same >> 4 & same >> 5 & same >> 6 & same >> 7) as u64;
        while long != 0 {
            let i = w * 64 + long.trailing_zeros() as usize;
            long &= long - 1;
            let j = next_start(starts, i + 1);
            // Bit-packed groups are whole: the pending literals take the run's first
            // values up to a multiple of eight.
            let pad = (8 - (i - literal_from) % 8) % 8;
            let literal_to = i + pad;
            if literal_to > literal_from {
                values.bit_pack(literal_from..literal_to, bw, out);
            }
            if j - literal_to >= 8 {
                rle_run(j - literal_to, values.value(i), bw, out);
                literal_from = j;
            } else {
                literal_from = literal_to;
            }
        }
    }
    if n > literal_from {
        values.bit_pack(literal_from..n, bw, out);
    }
}

/// What the hybrid encoding encodes: dictionary entries, or definition levels.
trait Hybrid {
    fn count(&self) -> usize;
    fn value(&self, i: usize) -> u32;
    /// Where the runs of equal values start, as a bitmap: bit `i` of word `i / 64`
    /// is set where value `i` differs from the one before it, for the first value,
    /// and for every place from the end on (one whole word of them past the last
    /// value).
    fn run_starts(&self, starts: &mut Vec<u64>);
    /// The values of `range`, bit-packed.
    fn bit_pack(&self, range: std::ops::Range<usize>, bw: u8, out: &mut Vec<u8>);
}

impl Hybrid for [u32] {
    fn count(&self) -> usize {
        self.len()
    }

    fn value(&self, i: usize) -> u32 {
        self[i]
    }

    fn run_starts(&self, starts: &mut Vec<u64>) {
        let values = self;
        let n = values.len();
        starts.clear();
        starts.reserve(n.div_ceil(64) + 1);
        for (w, chunk) in values.chunks(64).enumerate() {
            let base = w * 64;
            let word = match (base, <&[u32; 64]>::try_from(chunk)) {
                // A whole word after the first: compared with the values one before, in
                // a loop of a fixed length that the compiler does several at a time, into
                // a byte each; eight bytes of 0 or 1 are then gathered into eight bits by
                // one multiplication (byte k lands on bit 56 + k, and nothing else
                // reaches the top byte).
                (1.., Ok(cur)) => {
                    let prev: &[u32; 64] = values[base - 1..base + 63].try_into().expect("64 values");
                    let mut differs = [0u8; 64];
                    for k in 0..64 {
                        differs[k] = (cur[k] != prev[k]) as u8;
                    }
                    differs.chunks_exact(8).enumerate().fold(0u64, |m, (b, eight)| {
                        let bytes = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
                        m | (bytes.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * b)
                    })
                }
                _ => {
                    let first = if base == 0 { 1 } else { (chunk[0] != values[base - 1]) as u64 };
                    let rest = chunk.windows(2).enumerate().fold(0u64, |m, (k, p)| m | ((p[1] != p[0]) as u64) << (k + 1));
                    first | rest | if chunk.len() < 64 { !0u64 << chunk.len() } else { 0 }
                }
            };
            starts.push(word);
        }
        starts.push(!0);
    }

    fn bit_pack(&self, range: std::ops::Range<usize>, bw: u8, out: &mut Vec<u8>) {
        bit_pack(&self[range], bw, out)
    }
}

/// A page's definition levels (each 0 or 1), a bit each, least significant first.
struct Levels(BooleanBufferBuilder);

impl Default for Levels {
    fn default() -> Levels {
        Levels(BooleanBufferBuilder::new(PAGE_ROWS))
    }
}

impl Clone for Levels {
    fn clone(&self) -> Levels {
        Levels(BooleanBufferBuilder::new_from_buffer(MutableBuffer::from(self.0.as_slice().to_vec()), self.0.len()))
    }
}

impl Levels {
    fn clear(&mut self) {
        self.0.truncate(0);
    }

    /// Levels `64 × w` to `64 × w + 63` (0 past the last level).
    fn word(&self, w: usize) -> u64 {
        let bytes = self.0.as_slice();
        let from = (w * 8).min(bytes.len());
        let to = (from + 8).min(bytes.len());
        let mut word = [0u8; 8];
        word[..to - from].copy_from_slice(&bytes[from..to]);
        u64::from_le_bytes(word)
    }

    /// The 8 levels from `at` on (`at` below the count; 0 past the last level).
    fn byte_at(&self, at: usize) -> u8 {
        let bytes = self.0.as_slice();
        let (i, shift) = (at / 8, at % 8);
        match bytes.get(i + 1) {
            Some(&next) if shift > 0 => bytes[i] >> shift | next << (8 - shift),
            _ => bytes[i] >> shift,
        }
    }
}

impl Hybrid for Levels {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn value(&self, i: usize) -> u32 {
        self.0.get_bit(i) as u32
    }

    fn run_starts(&self, starts: &mut Vec<u64>) {
        starts.clear();
        let len = self.0.len();
        let mut carry = 0u64;
        for w in 0..len.div_ceil(64) {
            // A start where a level differs from the one before it.
            let x = self.word(w);
            let mut word = x ^ (x << 1 | carry);
            carry = x >> 63;
            if w == 0 {
                word |= 1;
            }
            if (w + 1) * 64 > len {
                word |= !0u64 << (len % 64);
            }
            starts.push(word);
        }
        starts.push(!0);
    }

    /// Levels are one bit each: a group of eight is a byte of the bitmap.
    fn bit_pack(&self, range: std::ops::Range<usize>, bw: u8, out: &mut Vec<u8>) {
        debug_assert_eq!(bw, 1, "levels are one bit wide");
        let mut at = range.start;
        while at < range.end {
            let run_end = (at + 63 * 8).min(range.end);
            varint((((run_end - at).div_ceil(8) as u64) << 1) | 1, out);
            while at < run_end {
                let n = (run_end - at).min(8);
                out.push(self.byte_at(at) & (0xffu16 >> (8 - n)) as u8);
                at += n;
            }
        }
    }
}

/// The first run start at or after `from` (the end, past the last value, at most).
fn next_start(starts: &[u64], from: usize) -> usize {
    let mut w = from / 64;
    let mut word = starts[w] & !0u64 << (from % 64);
    while word == 0 {
        w += 1;
        word = starts[w];
    }
    w * 64 + word.trailing_zeros() as usize
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn rle_run(count: usize, value: u32, bw: u8, out: &mut Vec<u8>) {
    varint((count as u64) << 1, out);
    out.extend_from_slice(&value.to_le_bytes()[..(bw as usize).div_ceil(8)]);
}

/// Bit-packed runs of at most 63 groups of eight (the last group padded with zeros),
/// each value of `bw` bits (at most 32: the values are `u32`).
fn bit_pack(values: &[u32], bw: u8, out: &mut Vec<u8>) {
    macro_rules! widths {
        ($($w:literal)*) => {
            match bw {
                $($w => bit_pack_as::<$w>(values, out),)*
                _ => unreachable!("a bit width above 32"),
            }
        };
    }
    widths!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32)
}

/// [`bit_pack`] for one width: a group's shifts are constants, and its `W` bytes are
/// written from a 32-bit accumulator as whole words.
fn bit_pack_as<const W: usize>(values: &[u32], out: &mut Vec<u8>) {
    out.reserve(values.len().div_ceil(8) * W + 8);
    for run in values.chunks(63 * 8) {
        let groups = run.len().div_ceil(8);
        varint(((groups as u64) << 1) | 1, out);
        let mut whole = run.chunks_exact(8);
        for group in whole.by_ref() {
            pack_group::<W>(group.try_into().expect("eight values"), out);
        }
        let rest = whole.remainder();
        if !rest.is_empty() {
            let mut last = [0u32; 8];
            last[..rest.len()].copy_from_slice(rest);
            pack_group::<W>(&last, out);
        }
    }
}

/// Eight values of `W` bits, least significant bits first: `W` bytes.
#[inline(always)]
fn pack_group<const W: usize>(group: &[u32; 8], out: &mut Vec<u8>) {
    let mut bytes = [0u8; 36];
    let (mut acc, mut bits, mut at) = (0u64, 0, 0);
    for &v in group {
        acc |= (v as u64) << bits;
        bits += W;
        if bits >= 32 {
            bytes[at..at + 4].copy_from_slice(&(acc as u32).to_le_bytes());
            at += 4;
            acc >>= 32;
            bits -= 32;
        }
    }
    bytes[at..at + 4].copy_from_slice(&(acc as u32).to_le_bytes());
    out.extend_from_slice(&bytes[..W]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes the hybrid encoding (the format's definition, written out).
    fn unhybrid(mut b: &[u8], bw: u8, n: usize) -> Vec<u32> {
        let mut out = Vec::new();
        while out.len() < n {
            let (mut h, mut shift) = (0u64, 0);
            loop {
                let byte = b[0];
                b = &b[1..];
                h |= ((byte & 0x7f) as u64) << shift;
                shift += 7;
                if byte < 0x80 {
                    break;
                }
            }
            if h & 1 == 0 {
                let w = (bw as usize).div_ceil(8);
                let mut v = [0u8; 4];
                v[..w].copy_from_slice(&b[..w]);
                b = &b[w..];
                out.extend(std::iter::repeat_n(u32::from_le_bytes(v), (h >> 1) as usize));
            } else {
                let count = (h >> 1) as usize * 8;
                let (mut acc, mut bits) = (0u64, 0u32);
                for _ in 0..count {
                    while bits < bw as u32 {
                        acc |= (b[0] as u64) << bits;
                        b = &b[1..];
                        bits += 8;
                    }
                    out.push((acc & ((1u64 << bw) - 1)) as u32);
                    acc >>= bw;
                    bits -= bw as u32;
                }
            }
        }
        out.truncate(n);
        out
    }

    /// The hybrid encoding the straightforward way: every run of equal values listed,
    /// then walked; groups of eight packed one value at a time.
    fn hybrid_by_runs(values: &[u32], bw: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let n = values.len();
        let mut starts: Vec<usize> = (0..n).filter(|&i| i == 0 || values[i] != values[i - 1]).collect();
        starts.push(n);
        let pack = |values: &[u32], out: &mut Vec<u8>| {
            for run in values.chunks(63 * 8) {
                varint(((run.len().div_ceil(8) as u64) << 1) | 1, out);
                for group in run.chunks(8) {
                    let mut acc = [0u8; 32];
                    for (k, &v) in group.iter().enumerate() {
                        for b in 0..bw as usize {
                            let bit = k * bw as usize + b;
                            acc[bit / 8] |= (((v >> b) & 1) as u8) << (bit % 8);
                        }
                    }
                    out.extend_from_slice(&acc[..bw as usize]);
                }
            }
        };
        let mut literal_from = 0;
        for w in starts.windows(2) {
            let (i, j) = (w[0], w[1]);
            if j - i >= 8 {
                let literal_to = i + (8 - (i - literal_from) % 8) % 8;
                if literal_to > literal_from {
                    pack(&values[literal_from..literal_to], &mut out);
                }
                if j - literal_to >= 8 {
                    rle_run(j - literal_to, values[i], bw, &mut out);
                    literal_from = j;
                } else {
                    literal_from = literal_to;
                }
            }
        }
        if n > literal_from {
            pack(&values[literal_from..n], &mut out);
        }
        out
    }

    proptest::proptest! {
        /// The bitmap walk and the packing by width give the bytes of the
        /// straightforward walk: runs of every length, around and across the 64-value
        /// words, at every width.
        #[test]
        fn hybrid_gives_the_straightforward_bytes(
            runs in proptest::collection::vec((0u32..u32::MAX, 1usize..80), 0..120),
            bw in 0u8..=32,
            cut in 0usize..64,
        ) {
            let top = if bw == 32 { u32::MAX } else { (1u32 << bw) - 1 };
            let values: Vec<u32> = runs.iter().flat_map(|&(v, len)| std::iter::repeat_n(v & top, len)).collect();
            // A slice that starts inside a word, too.
            let values = &values[cut.min(values.len())..];
            let mut out = Vec::new();
            let mut scratch = vec![7; 3];
            hybrid(values, bw, &mut out, &mut scratch);
            proptest::prop_assert_eq!(out, hybrid_by_runs(values, bw));
        }

        /// Levels kept as bits, appended as the encoder appends them (runs of one
        /// level, and slices of validity bitmaps at any offset), encode to the bytes
        /// of the same levels as values.
        #[test]
        fn levels_as_bits_give_the_bytes_of_levels_as_values(
            parts in proptest::collection::vec((proptest::bool::ANY, 1usize..150, 0usize..9, proptest::bool::ANY), 1..40),
        ) {
            // Levels of an earlier page, cleared: their bits must not show through.
            let mut levels = Levels::default();
            levels.0.append_n(70, true);
            levels.clear();
            let mut expected: Vec<u32> = Vec::new();
            for (i, &(level, len, offset, as_run)) in parts.iter().enumerate() {
                if as_run {
                    levels.0.append_n(len, level);
                    expected.extend(std::iter::repeat_n(level as u32, len));
                } else {
                    // A bitmap of mixed levels, sliced from an offset.
                    let bits: Vec<bool> = (0..offset + len).map(|k| (k * 7 + i) % 5 < 3 || (k % 11 == 0 && level)).collect();
                    let buffer = arrow_buffer::BooleanBuffer::from(bits.clone()).slice(offset, len);
                    levels.0.append_buffer(&buffer);
                    expected.extend(bits[offset..].iter().map(|&b| b as u32));
                }
            }
            // As a forked encoder holds them.
            let levels = levels.clone();
            proptest::prop_assert_eq!(levels.count(), expected.len());
            let mut out = Vec::new();
            hybrid(&levels, 1, &mut out, &mut Vec::new());
            proptest::prop_assert_eq!(out, hybrid_by_runs(&expected, 1));
            // Packed up to a place inside a group: the group is padded with zeros.
            let (mut bits, mut values) = (Vec::new(), Vec::new());
            let to = expected.len() - 1;
            levels.bit_pack(to / 3..to, 1, &mut bits);
            expected[..].bit_pack(to / 3..to, 1, &mut values);
            proptest::prop_assert_eq!(bits, values);
        }
    }

    #[test]
    fn hybrid_runs_decode_to_their_values() {
        let cases: Vec<Vec<u32>> = vec![
            vec![],
            vec![0; 5],
            vec![1; 20_000],
            (0..1000).map(|i| i % 7).collect(),
            (0..1000).map(|i| if i % 100 < 60 { 3 } else { i % 5 }).collect(),
            [vec![1, 2, 3], vec![9; 8], vec![4], vec![9; 13], vec![5, 6]].concat(),
            (0..3000).map(|i| (i * 7919) % 100_000).collect(),
            (0..3000).map(|i| (i * 7919) % 65_536).collect(),
            (0..1001).map(|i| (i * 31) % 1000).collect(),
            (0..13).map(|i| i * 4000).collect(),
        ];
        // One scratch for all: a shorter case follows a longer one.
        let mut scratch = Vec::new();
        for values in cases {
            let bw = bit_width(values.iter().copied().max().unwrap_or(0));
            let mut out = Vec::new();
            hybrid(values.as_slice(), bw, &mut out, &mut scratch);
            assert_eq!(unhybrid(&out, bw, values.len()), values, "bit width {bw}");
        }
        // Every width, with a last group that is not whole.
        for bw in 1..=32u8 {
            let top = if bw == 32 { u32::MAX } else { (1u32 << bw) - 1 };
            let values: Vec<u32> = (0..1003u64).map(|i| if i % 5 == 0 { top } else { (i.wrapping_mul(2_654_435_761) as u32) & top }).collect();
            let mut out = Vec::new();
            hybrid(values.as_slice(), bw, &mut out, &mut scratch);
            assert_eq!(unhybrid(&out, bw, values.len()), values, "bit width {bw}");
        }
        // Long runs cost a few bytes, not one bit a value.
        let mut out = Vec::new();
        hybrid(&[1u32; 20_000][..], 1, &mut out, &mut Vec::new());
        assert!(out.len() <= 4, "{}", out.len());
    }
}
