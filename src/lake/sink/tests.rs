//! The sink's tests: its own encodings held to the general writer's, value for value.
use super::*;
use crate::decimal::Dec;
use crate::lake::outputs::*;
use arrow_array::types::UInt32Type;
use arrow_array::{Array, Decimal128Array, DictionaryArray, StringArray, TimestampMicrosecondArray, UInt32Array};

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
