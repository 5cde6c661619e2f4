//! Closing a column chunk: its dictionary page, the statistics and the column and
//! offset indexes, and the bytes of the chunk.

use super::*;

impl ChunkEncoder {
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
