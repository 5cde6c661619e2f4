//! The row checks that need nothing but the row itself, in the order billing-rules §10
//! fixes: `schema` (missing or out-of-domain value) → `out_of_period` → `schema` (row
//! not in its file's partition hour) → `bad_interval` → `negative_quantity`. A row that
//! passes becomes a [`Usage`]: typed, borrowed from its file's columns, no copies.

use super::batch::{Columns, DecimalColumn, Entries, IntColumn, TextColumn, TimeColumn, UsageBatch};
use crate::decimal::Dec;
use crate::model::{Module, PoolType, Reason};
use crate::time::{format_ts, hour_floor, Micros, Period, HOUR};

/// Where a usage row is: its chunk in the hour (or the run's chunk list) and its row.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowLoc {
    pub chunk: u32,
    pub row: u32,
}

/// The largest quantity accepted: larger values could not be priced in 38 digits.
pub const MAX_QUANTITY: Dec = Dec(1_000_000_000_000_000_000 * 10_000_000_000);

/// A usage row that passed the row checks.
#[derive(Clone, Debug)]
pub struct Usage<'a> {
    pub loc: RowLoc,
    pub record_id: &'a str,
    pub account_id: &'a str,
    pub region: &'a str,
    pub resource_id: &'a str,
    pub resource_name: Option<&'a str>,
    pub module: Module,
    pub sku: &'a str,
    pub unit_count: i32,
    pub pool_type: PoolType,
    pub pool_id: Option<&'a str>,
    pub nodes: i32,
    pub quantity: Dec,
    pub start: Micros,
    pub end: Micros,
    pub enterprise_project: Option<&'a str>,
    pub tags: Option<&'a str>,
    /// The (SKU, region)'s key among the catalog's pay-per-use prices, when the
    /// engine found it once for the chunk's dictionaries (`None`: looked up by name).
    pub ppu_key: Option<Option<u32>>,
}

impl Usage<'_> {
    /// A job on a dedicated pool (`pool_type = dedicated` and `pool_id` set).
    pub fn is_pool_job(&self) -> bool {
        self.pool_type == PoolType::Dedicated && self.pool_id.is_some()
    }
    pub fn duration_us(&self) -> i64 {
        self.end - self.start
    }
    /// `nodes × unit_count`.
    pub fn size(&self) -> i64 {
        self.nodes as i64 * self.unit_count as i64
    }
}

/// A rejection: the reason code and a sentence for the `detail` column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Rejection {
        Rejection { reason, detail: detail.into() }
    }
}

fn schema(detail: impl Into<String>) -> Rejection {
    Rejection::new(Reason::Schema, detail)
}

fn req<'a>(v: Option<&'a str>, field: &str) -> Result<&'a str, Rejection> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(schema(format!("{field} is empty"))),
        None => Err(schema(format!("{field} is null"))),
    }
}

/// Whether every byte is printable ASCII: looked at 16 bytes at a time, without a
/// branch a byte.
fn printable_ascii(b: &[u8]) -> bool {
    let printable = |b: u8| b.wrapping_sub(0x20) < 0x5f;
    let mut blocks = b.chunks_exact(16);
    let whole = blocks.by_ref().all(|c| c.iter().fold(true, |ok, &b| ok & printable(b)));
    whole && blocks.remainder().iter().all(|&b| printable(b))
}

/// A string id whose characters cannot break a path or a log line.
fn no_controls<'a>(v: &'a str, field: &str) -> Result<&'a str, Rejection> {
    // Printable ASCII, the common case, is told by its bytes; any other text by its
    // characters (C1 controls are two bytes in UTF-8).
    if printable_ascii(v.as_bytes()) {
        return Ok(v);
    }
    if v.chars().any(char::is_control) {
        return Err(schema(format!("{field} contains control characters")));
    }
    Ok(v)
}

/// `tags` must be a JSON object of string keys to string values.
///
/// Tags are checked on every row, so the common case (strings without escapes) is
/// scanned directly; a string with an escape sequence goes to the full JSON parser.
pub fn tags_valid(s: &str) -> bool {
    match tags_scan(s.as_bytes()) {
        Some(ok) => ok,
        None => tags_valid_json(s),
    }
}

/// The reference reading of [`tags_valid`]: a full JSON parse.
pub fn tags_valid_json(s: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::Object(m)) => m.values().all(|v| v.is_string()),
        _ => false,
    }
}

/// The verdict on an object of escape-free strings, or `None` when a string has an
/// escape (left to the full parser).
fn tags_scan(b: &[u8]) -> Option<bool> {
    let ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    // A string starting at `i` (its opening quote): the index after its closing quote.
    let string = |i: usize| -> Result<usize, bool> {
        if b.get(i) != Some(&b'"') {
            return Err(false);
        }
        let mut j = i + 1;
        loop {
            match b.get(j) {
                None => return Err(false),
                Some(b'"') => return Ok(j + 1),
                Some(b'\\') => return Err(true),
                Some(c) if *c < 0x20 => return Err(false),
                Some(_) => j += 1,
            }
        }
    };
    let mut i = 0;
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return Some(false);
    }
    i += 1;
    ws(&mut i);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            i = match string(i) {
                Ok(j) => j,
                Err(escape) => return if escape { None } else { Some(false) },
            };
            ws(&mut i);
            if b.get(i) != Some(&b':') {
                return Some(false);
            }
            i += 1;
            ws(&mut i);
            i = match string(i) {
                Ok(j) => j,
                Err(escape) => return if escape { None } else { Some(false) },
            };
            ws(&mut i);
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    ws(&mut i);
                }
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Some(false),
            }
        }
    }
    ws(&mut i);
    Some(i == b.len())
}

/// The checks of a value alone, worked out once per distinct value of a chunk's
/// dictionary columns (a row's value is then looked up by its key): no control
/// characters in account, region and SKU, the module and pool type known, the tags a
/// JSON object of strings. A value that fails is checked again in its row, so the
/// row gets the same rejection either way.
#[derive(Debug, Default)]
pub struct Known {
    account_id: Option<Vec<bool>>,
    region: Option<Vec<bool>>,
    sku: Option<Vec<bool>>,
    module: Option<Vec<Option<Module>>>,
    pool_type: Option<Vec<Option<PoolType>>>,
    tags: Option<Vec<bool>>,
    /// The period's first and past-the-end instants.
    bounds: Option<(Micros, Micros)>,
}

impl Known {
    pub fn of<C: Columns>(c: &UsageBatch<C>, period: Period) -> Known {
        fn each<T, S: TextColumn>(col: &S, f: impl Fn(&str) -> T) -> Option<Vec<T>> {
            let d = col.dictionary()?;
            Some((0..d.len()).map(|k| f(d.entry(k).unwrap_or(""))).collect())
        }
        let clean = |s: &str| no_controls(s, "").is_ok();
        Known {
            account_id: each(&c.account_id, clean),
            region: each(&c.region, clean),
            sku: each(&c.sku, clean),
            module: each(&c.module, Module::parse),
            pool_type: each(&c.pool_type, PoolType::parse),
            tags: each(&c.tags, tags_valid),
            bounds: Some((period.start(), period.end())),
        }
    }
}

/// The verdict on row `i`'s value, when its column is a dictionary with a verdict.
fn known<T: Copy, S: TextColumn>(verdicts: Option<&Vec<T>>, col: &S, i: usize) -> Option<T> {
    verdicts?.get(col.key(i)?).copied()
}

/// A required string without control characters, looked up in `verdicts` first.
fn clean<'a, S: TextColumn>(col: &'a S, i: usize, verdicts: Option<&Vec<bool>>, field: &str) -> Result<&'a str, Rejection> {
    let v = req(col.get(i), field)?;
    match known(verdicts, col, i) {
        Some(true) => Ok(v),
        _ => no_controls(v, field),
    }
}

/// Applies the row checks to row `row` of `chunk`, for a run of `period`.
pub fn check_row<C: Columns>(chunk: &UsageBatch<C>, loc: RowLoc, period: Period) -> Result<Usage<'_>, Rejection> {
    check_row_known(chunk, loc, period, &Known::default())
}

/// [`check_row`], with the chunk's values checked once each beforehand ([`Known::of`]).
pub fn check_row_known<'a, C: Columns>(chunk: &'a UsageBatch<C>, loc: RowLoc, period: Period, k: &Known) -> Result<Usage<'a>, Rejection> {
    let i = loc.row as usize;
    let c = chunk;
    let record_id = no_controls(req(c.record_id.get(i), "record_id")?, "record_id")?;
    let account_id = clean(&c.account_id, i, k.account_id.as_ref(), "account_id")?;
    let region = clean(&c.region, i, k.region.as_ref(), "region")?;
    let resource_id = no_controls(req(c.resource_id.get(i), "resource_id")?, "resource_id")?;
    let module_s = req(c.module.get(i), "module")?;
    let module = known(k.module.as_ref(), &c.module, i)
        .flatten()
        .or_else(|| Module::parse(module_s))
        .ok_or_else(|| schema(format!("module '{module_s}' is not a known module")))?;
    let sku = clean(&c.sku, i, k.sku.as_ref(), "sku")?;
    let unit_count = c.unit_count.get(i).ok_or_else(|| schema("unit_count is null"))?;
    if !(1..=i32::MAX as i64).contains(&unit_count) {
        return Err(schema(format!("unit_count {unit_count} is not an int32 ≥ 1")));
    }
    let pool_s = req(c.pool_type.get(i), "pool_type")?;
    let pool_type = known(k.pool_type.as_ref(), &c.pool_type, i)
        .flatten()
        .or_else(|| PoolType::parse(pool_s))
        .ok_or_else(|| schema(format!("pool_type '{pool_s}' is not public or dedicated")))?;
    let pool_id = c.pool_id.get(i).filter(|s| !s.is_empty());
    if pool_id.is_some() && pool_type != PoolType::Dedicated {
        return Err(schema("pool_id is set on a public-pool row"));
    }
    let nodes = c.nodes.get(i).ok_or_else(|| schema("nodes is null"))?;
    if !(1..=i32::MAX as i64).contains(&nodes) {
        return Err(schema(format!("nodes {nodes} is not an int32 ≥ 1")));
    }
    let quantity = match c.quantity.get(i) {
        None => return Err(schema("quantity is null")),
        Some(Err(_)) => return Err(schema("quantity does not fit decimal(38,10)")),
        Some(Ok(q)) => q,
    };
    if quantity > MAX_QUANTITY {
        return Err(schema(format!("quantity {quantity} is beyond the priceable range (1e18)")));
    }
    let start = match c.start_time.get(i) {
        None => return Err(schema("start_time is null")),
        Some(Err(_)) => return Err(schema("start_time is out of range")),
        Some(Ok(t)) => t,
    };
    let end = match c.end_time.get(i) {
        None => return Err(schema("end_time is null")),
        Some(Err(_)) => return Err(schema("end_time is out of range")),
        Some(Ok(t)) => t,
    };
    let tags = c.tags.get(i);
    if let Some(t) = tags {
        if known(k.tags.as_ref(), &c.tags, i) != Some(true) && !tags_valid(t) {
            return Err(schema("tags is not a JSON object of strings"));
        }
    }
    let inside = match k.bounds {
        Some((from, to)) => from <= start && start < to,
        None => period.contains(start),
    };
    if !inside {
        return Err(Rejection::new(Reason::OutOfPeriod, format!("start_time {} is outside period {period}", format_ts(start))));
    }
    if hour_floor(start) != c.partition_hour {
        return Err(schema(format!("start_time {} is not in the file's partition hour {}", format_ts(start), format_ts(c.partition_hour))));
    }
    if end <= start || end > hour_floor(start) + HOUR {
        return Err(Rejection::new(
            Reason::BadInterval,
            format!("[{}, {}) is not a non-empty interval within one clock hour", format_ts(start), format_ts(end)),
        ));
    }
    if quantity.is_negative() {
        return Err(Rejection::new(Reason::NegativeQuantity, format!("quantity {quantity} is negative")));
    }
    Ok(Usage {
        loc,
        record_id,
        account_id,
        region,
        resource_id,
        resource_name: c.resource_name.get(i),
        module,
        sku,
        unit_count: unit_count as i32,
        pool_type,
        pool_id,
        nodes: nodes as i32,
        quantity,
        start,
        end,
        enterprise_project: c.enterprise_project.get(i),
        tags,
        ppu_key: None,
    })
}

/// The input columns of a row, as one canonical string: two copies of a `record_id`
/// are duplicates when these are equal (billing-rules §10).
pub fn content_string(u: &Usage<'_>) -> String {
    format!(
        "{:?}",
        (
            (u.record_id, u.account_id, u.region, u.resource_id, u.resource_name, u.module),
            (u.sku, u.unit_count, u.pool_type, u.pool_id, u.nodes, u.quantity),
            (u.start, u.end, u.enterprise_project, u.tags),
        )
    )
}

#[cfg(test)]
mod tests {
    use super::{no_controls, printable_ascii, tags_valid, tags_valid_json};
    use proptest::prelude::*;

    /// Control characters are found however the text is made: tab, DEL, C1 controls
    /// (two bytes in UTF-8), beside other non-ASCII text.
    #[test]
    fn controls_are_found_by_bytes_and_by_characters() {
        for (s, control) in
            [("plain-id_01", false), ("a\tb", true), ("a\u{7f}", true), ("\u{85}x", true), ("é\u{9f}", true), ("é ü 東京", false), ("", false), (" ~", false)]
        {
            assert_eq!(no_controls(s, "f").is_err(), control, "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn controls_as_the_characters_say(s in any::<String>()) {
            prop_assert_eq!(no_controls(&s, "f").is_err(), s.chars().any(char::is_control));
        }

        /// The block-wise test says what the byte-wise one says, wherever in a block
        /// (or in the bytes past the last whole block) the one odd byte is.
        #[test]
        fn printable_ascii_by_blocks_as_by_bytes(s in "[ -~]{0,40}", at in 0usize..41, odd in prop::sample::select(vec![0x00u8, 0x09, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xc3, b'a'])) {
            let mut v = s.into_bytes();
            v.insert(at.min(v.len()), odd);
            prop_assert_eq!(printable_ascii(&v), v.iter().all(|b| (0x20..0x7f).contains(b)));
        }
    }

    #[test]
    fn tags_examples() {
        for ok in [r#"{}"#, r#" { "a" : "b" , "c":"" } "#, r#"{"team":"ml","env":"prod"}"#, r#"{"k":"\u00e9\n"}"#, r#"{"a":"b","a":"c"}"#] {
            assert!(tags_valid(ok), "{ok}");
        }
        for bad in
            ["", "[]", "null", r#"{"a":1}"#, r#"{"a":"b",}"#, r#"{"a":"b"} x"#, r#"{"a":"b""#, "{\"a\":\"\u{1}\"}", r#"{"a":"\ud800"}"#, r#"{"a":{"b":"c"}}"#]
        {
            assert!(!tags_valid(bad), "{bad}");
        }
    }

    proptest! {
        /// The direct scan and the full JSON parse agree on every string, including
        /// near-misses built from JSON's own pieces.
        #[test]
        fn scan_agrees_with_the_json_parser(parts in proptest::collection::vec(prop_oneof![
            Just("{".to_string()), Just("}".to_string()), Just("\"".to_string()), Just(":".to_string()),
            Just(",".to_string()), Just(" ".to_string()), Just("\\".to_string()), Just("\\u00e9".to_string()),
            Just("\\ud800".to_string()), Just("1".to_string()), Just("\n".to_string()), Just("\u{1}".to_string()),
            "[a-z]{0,3}", Just("null".to_string()), Just("[".to_string()), Just("é".to_string()),
        ], 0..16)) {
            let s: String = parts.concat();
            prop_assert_eq!(tags_valid(&s), tags_valid_json(&s), "{:?}", s);
        }

        #[test]
        fn scan_agrees_on_objects(pairs in proptest::collection::vec(("[a-z\"\\\\ ]{0,4}", "[a-z\"\\\\ ]{0,4}"), 0..4), value_is_string in any::<bool>()) {
            let body: Vec<String> = pairs.iter().map(|(k, v)| if value_is_string { format!("\"{k}\":\"{v}\"") } else { format!("\"{k}\":{v}") }).collect();
            let s = format!("{{{}}}", body.join(","));
            prop_assert_eq!(tags_valid(&s), tags_valid_json(&s), "{:?}", s);
        }
    }
}
