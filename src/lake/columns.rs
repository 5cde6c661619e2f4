//! Typed, checked access to the columns of a Parquet file.
//!
//! Writers differ in the physical Arrow types they produce for the contract's logical
//! types (a string may be `Utf8`, `LargeUtf8` or `Utf8View`; a decimal any
//! `Decimal128(p, s)`; a timestamp any unit). These accessors accept each of them and
//! return the contract's values exactly — or say which column is of which wrong type.

use crate::decimal::Dec;
use crate::rules::batch;
use crate::time::Micros;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_array::{Decimal128Array, Int16Array, Int32Array, Int64Array, Int8Array, LargeStringArray, StringArray, StringViewArray};
use arrow_array::{UInt16Array, UInt32Array, UInt8Array};
use arrow_schema::{DataType, TimeUnit};

/// Why a column could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnProblem {
    Missing,
    WrongType { found: String, expected: &'static str },
}

pub type ColResult<T> = std::result::Result<T, ColumnProblem>;

fn column<'a>(batch: &'a RecordBatch, name: &str) -> ColResult<&'a ArrayRef> {
    batch.column_by_name(name).ok_or(ColumnProblem::Missing)
}

fn wrong(arr: &ArrayRef, expected: &'static str) -> ColumnProblem {
    ColumnProblem::WrongType { found: arr.data_type().to_string(), expected }
}

/// A string column. A dictionary-encoded one (`Dictionary(Int32, Utf8)`, as the
/// usage reader asks for the columns of few distinct values) keeps its keys: a row's
/// string is looked up, never copied.
#[derive(Clone, Debug)]
pub enum StrCol {
    Utf8(StringArray),
    Large(LargeStringArray),
    View(StringViewArray),
    Dict(Int32Array, StringArray),
}

impl StrCol {
    pub fn of(batch: &RecordBatch, name: &str) -> ColResult<StrCol> {
        let a = column(batch, name)?;
        Ok(match a.data_type() {
            DataType::Utf8 => StrCol::Utf8(a.as_string::<i32>().clone()),
            DataType::LargeUtf8 => StrCol::Large(a.as_string::<i64>().clone()),
            DataType::Utf8View => StrCol::View(a.as_string_view().clone()),
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                let d = a.as_dictionary::<Int32Type>();
                StrCol::Dict(d.keys().clone(), d.values().as_string::<i32>().clone())
            }
            _ => return Err(wrong(a, "string")),
        })
    }

    /// The dictionary key of row `i` (a dictionary column's non-null row).
    #[inline(always)]
    pub fn key(&self, i: usize) -> Option<usize> {
        match self {
            StrCol::Dict(keys, _) if keys.is_valid(i) => usize::try_from(keys.value(i)).ok(),
            _ => None,
        }
    }

    /// A dictionary column's distinct values, by key.
    pub fn dictionary(&self) -> Option<&StringArray> {
        match self {
            StrCol::Dict(_, values) => Some(values),
            _ => None,
        }
    }

    /// Inlined into each caller: a caller reads one column of one type, so the
    /// variant's branch is one it predicts (shared, it mispredicted as the columns
    /// alternated).
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<&str> {
        match self {
            StrCol::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::View(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::Dict(_, values) => {
                // A key outside the dictionary is refused by the decoder; `None` here
                // all the same rather than a panic.
                let k = self.key(i).filter(|&k| k < values.len())?;
                (!values.is_null(k)).then(|| values.value(k))
            }
        }
    }
}

/// A decimal column, read at the contract's scale 10.
#[derive(Clone, Debug)]
pub struct DecCol {
    arr: Decimal128Array,
    scale: i8,
}

pub use crate::rules::batch::OutOfRange;

impl DecCol {
    pub fn of(batch: &RecordBatch, name: &str) -> ColResult<DecCol> {
        let a = column(batch, name)?;
        match a.data_type() {
            DataType::Decimal128(_, s) => Ok(DecCol { arr: a.as_primitive::<Decimal128Type>().clone(), scale: *s }),
            _ => Err(wrong(a, "decimal(38,10)")),
        }
    }

    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<Result<Dec, OutOfRange>> {
        if self.arr.is_null(i) {
            return None;
        }
        Some(Dec::from_scaled(self.arr.value(i), self.scale).ok_or(OutOfRange))
    }
}

/// An integer column (any signed or small unsigned width), kept as its own type:
/// a row's value is read without a downcast or a virtual call.
#[derive(Clone, Debug)]
pub enum IntCol {
    I8(Int8Array),
    I16(Int16Array),
    I32(Int32Array),
    I64(Int64Array),
    U8(UInt8Array),
    U16(UInt16Array),
    U32(UInt32Array),
}

impl IntCol {
    pub fn of(batch: &RecordBatch, name: &str) -> ColResult<IntCol> {
        let a = column(batch, name)?;
        Ok(match a.data_type() {
            DataType::Int8 => IntCol::I8(a.as_primitive().clone()),
            DataType::Int16 => IntCol::I16(a.as_primitive().clone()),
            DataType::Int32 => IntCol::I32(a.as_primitive().clone()),
            DataType::Int64 => IntCol::I64(a.as_primitive().clone()),
            DataType::UInt8 => IntCol::U8(a.as_primitive().clone()),
            DataType::UInt16 => IntCol::U16(a.as_primitive().clone()),
            DataType::UInt32 => IntCol::U32(a.as_primitive().clone()),
            _ => return Err(wrong(a, "int32")),
        })
    }

    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<i64> {
        match self {
            IntCol::I8(a) => a.is_valid(i).then(|| a.value(i) as i64),
            IntCol::I16(a) => a.is_valid(i).then(|| a.value(i) as i64),
            IntCol::I32(a) => a.is_valid(i).then(|| a.value(i) as i64),
            IntCol::I64(a) => a.is_valid(i).then(|| a.value(i)),
            IntCol::U8(a) => a.is_valid(i).then(|| a.value(i) as i64),
            IntCol::U16(a) => a.is_valid(i).then(|| a.value(i) as i64),
            IntCol::U32(a) => a.is_valid(i).then(|| a.value(i) as i64),
        }
    }
}

/// A timestamp column, read as UTC microseconds. Every unit is 64-bit: the values are
/// kept as such, with their unit, and a row's read without a downcast.
#[derive(Clone, Debug)]
pub struct TsCol {
    values: arrow_buffer::ScalarBuffer<i64>,
    nulls: Option<arrow_buffer::NullBuffer>,
    unit: TimeUnit,
}

impl TsCol {
    pub fn of(batch: &RecordBatch, name: &str) -> ColResult<TsCol> {
        let a = column(batch, name)?;
        let DataType::Timestamp(unit, _) = a.data_type() else { return Err(wrong(a, "timestamp(us, UTC)")) };
        let (values, nulls) = match unit {
            TimeUnit::Second => parts(a.as_primitive::<TimestampSecondType>()),
            TimeUnit::Millisecond => parts(a.as_primitive::<TimestampMillisecondType>()),
            TimeUnit::Microsecond => parts(a.as_primitive::<TimestampMicrosecondType>()),
            TimeUnit::Nanosecond => parts(a.as_primitive::<TimestampNanosecondType>()),
        };
        Ok(TsCol { values, nulls, unit: *unit })
    }

    /// `Some(Err(OutOfRange))` for a nanosecond value that is not whole microseconds is
    /// impossible; seconds and milliseconds beyond ±292,000 years are out of range.
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<Result<Micros, OutOfRange>> {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            return None;
        }
        let v = self.values[i];
        let v = match self.unit {
            TimeUnit::Second => v.checked_mul(1_000_000),
            TimeUnit::Millisecond => v.checked_mul(1_000),
            TimeUnit::Microsecond => Some(v),
            TimeUnit::Nanosecond => (v % 1_000 == 0).then_some(v / 1_000),
        };
        Some(v.ok_or(OutOfRange))
    }
}

/// A 64-bit primitive array's values and nulls.
fn parts<T: ArrowPrimitiveType<Native = i64>>(a: &arrow_array::PrimitiveArray<T>) -> (arrow_buffer::ScalarBuffer<i64>, Option<arrow_buffer::NullBuffer>) {
    (a.values().clone(), a.nulls().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray};
    use std::sync::Arc;

    fn batch(a: ArrayRef) -> RecordBatch {
        RecordBatch::try_from_iter([("c", a)]).unwrap()
    }

    /// Every integer width a writer may use reads as the same values, nulls included.
    #[test]
    fn integers_of_every_width_read_alike() {
        let widths: Vec<ArrayRef> = vec![
            Arc::new(Int8Array::from(vec![Some(1), None, Some(-3)])),
            Arc::new(Int16Array::from(vec![Some(1), None, Some(-3)])),
            Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)])),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(-3)])),
        ];
        for a in widths {
            let c = IntCol::of(&batch(a), "c").unwrap();
            assert_eq!((c.get(0), c.get(1), c.get(2)), (Some(1), None, Some(-3)));
        }
        let unsigned: Vec<ArrayRef> = vec![
            Arc::new(UInt8Array::from(vec![Some(200), None])),
            Arc::new(UInt16Array::from(vec![Some(200), None])),
            Arc::new(UInt32Array::from(vec![Some(200), None])),
        ];
        for a in unsigned {
            let c = IntCol::of(&batch(a), "c").unwrap();
            assert_eq!((c.get(0), c.get(1)), (Some(200), None));
        }
        let wrong = IntCol::of(&batch(Arc::new(StringArray::from(vec!["1"]))), "c").unwrap_err();
        assert_eq!(wrong, ColumnProblem::WrongType { found: "Utf8".into(), expected: "int32" });
    }

    /// Every timestamp unit reads as microseconds; what microseconds cannot hold is
    /// out of range, and a null is none.
    #[test]
    fn timestamps_of_every_unit_read_as_microseconds() {
        let s = TsCol::of(&batch(Arc::new(TimestampSecondArray::from(vec![Some(2), None, Some(i64::MAX)]))), "c").unwrap();
        assert_eq!((s.get(0), s.get(1), s.get(2)), (Some(Ok(2_000_000)), None, Some(Err(OutOfRange))));
        let ms = TsCol::of(&batch(Arc::new(TimestampMillisecondArray::from(vec![Some(-2), None]))), "c").unwrap();
        assert_eq!((ms.get(0), ms.get(1)), (Some(Ok(-2_000)), None));
        let us = TsCol::of(&batch(Arc::new(TimestampMicrosecondArray::from(vec![Some(7), None]).with_timezone("UTC"))), "c").unwrap();
        assert_eq!((us.get(0), us.get(1)), (Some(Ok(7)), None));
        let ns = TsCol::of(&batch(Arc::new(TimestampNanosecondArray::from(vec![Some(7_000), Some(7_001), None]))), "c").unwrap();
        assert_eq!((ns.get(0), ns.get(1), ns.get(2)), (Some(Ok(7)), Some(Err(OutOfRange)), None));
        assert!(TsCol::of(&batch(Arc::new(Int64Array::from(vec![1]))), "c").is_err());
    }
}

/// The Arrow columns a usage batch is read into: the core's column traits, each
/// delegating to the typed accessor above.
#[derive(Clone, Copy, Debug)]
pub struct ArrowColumns;

impl batch::Columns for ArrowColumns {
    type Text = StrCol;
    type Int = IntCol;
    type Decimal = DecCol;
    type Time = TsCol;
}

impl batch::Entries for StringArray {
    fn len(&self) -> usize {
        Array::len(self)
    }
    #[inline(always)]
    fn entry(&self, k: usize) -> Option<&str> {
        (k < Array::len(self) && self.is_valid(k)).then(|| self.value(k))
    }
}

impl batch::TextColumn for StrCol {
    type Entries = StringArray;
    #[inline(always)]
    fn get(&self, i: usize) -> Option<&str> {
        StrCol::get(self, i)
    }
    #[inline(always)]
    fn key(&self, i: usize) -> Option<usize> {
        StrCol::key(self, i)
    }
    fn dictionary(&self) -> Option<&StringArray> {
        StrCol::dictionary(self)
    }
}

impl batch::IntColumn for IntCol {
    #[inline(always)]
    fn get(&self, i: usize) -> Option<i64> {
        IntCol::get(self, i)
    }
}

impl batch::DecimalColumn for DecCol {
    #[inline(always)]
    fn get(&self, i: usize) -> Option<Result<Dec, OutOfRange>> {
        DecCol::get(self, i)
    }
}

impl batch::TimeColumn for TsCol {
    #[inline(always)]
    fn get(&self, i: usize) -> Option<Result<Micros, OutOfRange>> {
        TsCol::get(self, i)
    }
}
