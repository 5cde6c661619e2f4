//! Typed, checked access to the columns of a Parquet file.
//!
//! Writers differ in the physical Arrow types they produce for the contract's logical
//! types (a string may be `Utf8`, `LargeUtf8` or `Utf8View`; a decimal any
//! `Decimal128(p, s)`; a timestamp any unit). These accessors accept each of them and
//! return the contract's values exactly — or say which column is of which wrong type.

use crate::decimal::Dec;
use crate::time::Micros;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_array::{Decimal128Array, Int32Array, LargeStringArray, StringArray, StringViewArray};
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
    #[inline]
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

    #[inline]
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

/// A decimal value that is present but cannot be held at scale 10 in 38 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

impl DecCol {
    pub fn of(batch: &RecordBatch, name: &str) -> ColResult<DecCol> {
        let a = column(batch, name)?;
        match a.data_type() {
            DataType::Decimal128(_, s) => {
                Ok(DecCol { arr: a.as_primitive::<Decimal128Type>().clone(), scale: *s })
            }
            _ => Err(wrong(a, "decimal(38,10)")),
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<Result<Dec, OutOfRange>> {
        if self.arr.is_null(i) {
            return None;
        }
        Some(Dec::from_scaled(self.arr.value(i), self.scale).ok_or(OutOfRange))
    }
}

/// An integer column (any signed or small unsigned width).
#[derive(Clone, Debug)]
pub struct IntCol(ArrayRef);

impl IntCol {
    pub fn of(batch: &RecordBatch, name: &str) -> ColResult<IntCol> {
        let a = column(batch, name)?;
        match a.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => Ok(IntCol(a.clone())),
            _ => Err(wrong(a, "int32")),
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<i64> {
        let a = &self.0;
        if a.is_null(i) {
            return None;
        }
        Some(match a.data_type() {
            DataType::Int8 => a.as_primitive::<Int8Type>().value(i) as i64,
            DataType::Int16 => a.as_primitive::<Int16Type>().value(i) as i64,
            DataType::Int32 => a.as_primitive::<Int32Type>().value(i) as i64,
            DataType::Int64 => a.as_primitive::<Int64Type>().value(i),
            DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i) as i64,
            DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i) as i64,
            DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i) as i64,
            _ => return None,
        })
    }
}

/// A timestamp column, read as UTC microseconds.
#[derive(Clone, Debug)]
pub struct TsCol {
    arr: ArrayRef,
    unit: TimeUnit,
}

impl TsCol {
    pub fn of(batch: &RecordBatch, name: &str) -> ColResult<TsCol> {
        let a = column(batch, name)?;
        match a.data_type() {
            DataType::Timestamp(unit, _) => Ok(TsCol { arr: a.clone(), unit: *unit }),
            _ => Err(wrong(a, "timestamp(us, UTC)")),
        }
    }

    /// `Some(Err(OutOfRange))` for a nanosecond value that is not whole microseconds is
    /// impossible; seconds and milliseconds beyond ±292,000 years are out of range.
    #[inline]
    pub fn get(&self, i: usize) -> Option<Result<Micros, OutOfRange>> {
        if self.arr.is_null(i) {
            return None;
        }
        let v = match self.unit {
            TimeUnit::Second => self.arr.as_primitive::<TimestampSecondType>().value(i).checked_mul(1_000_000),
            TimeUnit::Millisecond => self.arr.as_primitive::<TimestampMillisecondType>().value(i).checked_mul(1_000),
            TimeUnit::Microsecond => Some(self.arr.as_primitive::<TimestampMicrosecondType>().value(i)),
            TimeUnit::Nanosecond => {
                let ns = self.arr.as_primitive::<TimestampNanosecondType>().value(i);
                (ns % 1_000 == 0).then_some(ns / 1_000)
            }
        };
        Some(v.ok_or(OutOfRange))
    }
}
