//! Published tables as Polars frames, and exact sums read back out of them.
//!
//! Money goes into Polars as `Decimal(38, 10)` — the lake's decimals rescaled to the
//! bill run's scale, never a float — and comes back out as [`Dec`]. Polars' decimal
//! sum wraps silently on overflow, so every sum is taken with [`exact_sum`], which
//! also takes each group's row count and extreme values: [`dec_sums`] takes a sum
//! only where those rows cannot pass i128's range (so it did not wrap), and refuses
//! one past 38 digits, as the bill run's own arithmetic does.

use crate::decimal::{Dec, MAX_MANTISSA, SCALE};
use crate::lake::columns::{DecCol, StrCol, TsCol};
use crate::lake::inputs::{InputError, Result};
use arrow_array::RecordBatch;
use polars::prelude::*;

/// What a column holds, as Polars is given it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    /// Money or a quantity: `Decimal(38, 10)`.
    Dec,
    /// Microseconds since the epoch, as `Int64` (days and hours are integer divisions).
    Micros,
}

/// A Polars error, named after the table it was computing from.
pub fn polars_err(file: &str) -> impl Fn(PolarsError) -> InputError + '_ {
    move |e| InputError::Table { file: file.to_string(), why: format!("dataframe query: {e}") }
}

fn field_err(file: &str, row: usize, field: &'static str, why: &str) -> InputError {
    InputError::Field { file: file.to_string(), row, field, why: why.to_string() }
}

/// The columns `wanted` of a decoded table `file`, as one frame. A missing column or one
/// of the wrong type is an error naming it; so is a decimal or a timestamp out of range
/// (with its row), never a null in its place.
pub fn frame(file: &str, batches: &[RecordBatch], wanted: &[(&'static str, Kind)]) -> Result<DataFrame> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut columns = Vec::with_capacity(wanted.len());
    for &(name, kind) in wanted {
        let bad = |p| crate::lake::inputs::col_err(file, name, p);
        let column = match kind {
            Kind::Str => {
                let mut out: Vec<Option<String>> = Vec::with_capacity(rows);
                for b in batches {
                    let c = StrCol::of(b, name).map_err(bad)?;
                    out.extend((0..b.num_rows()).map(|i| c.get(i).map(str::to_string)));
                }
                Column::new(name.into(), out)
            }
            Kind::Dec => {
                let mut out: Vec<Option<i128>> = Vec::with_capacity(rows);
                let mut row = 0;
                for b in batches {
                    let c = DecCol::of(b, name).map_err(bad)?;
                    for i in 0..b.num_rows() {
                        out.push(c.get(i).transpose().map_err(|_| field_err(file, row + i, name, "decimal out of range"))?.map(|d| d.0));
                    }
                    row += b.num_rows();
                }
                let values = Int128Chunked::from_iter_options(name.into(), out.into_iter());
                values.into_decimal(38, SCALE as usize).map_err(polars_err(file))?.into_column()
            }
            Kind::Micros => {
                let mut out: Vec<Option<i64>> = Vec::with_capacity(rows);
                let mut row = 0;
                for b in batches {
                    let c = TsCol::of(b, name).map_err(bad)?;
                    for i in 0..b.num_rows() {
                        out.push(c.get(i).transpose().map_err(|_| field_err(file, row + i, name, "timestamp out of range"))?);
                    }
                    row += b.num_rows();
                }
                Column::new(name.into(), out)
            }
        };
        columns.push(column);
    }
    DataFrame::new(rows, columns).map_err(polars_err(file))
}

/// The aggregations of an exact sum of `value`, named `<alias>`: with it, the group's
/// row count and least and greatest values, which [`dec_sums`] checks.
pub fn exact_sum(value: &str, alias: &str) -> [Expr; 4] {
    [
        col(value).sum().alias(alias),
        col(value).min().alias(format!("{alias}__min")),
        col(value).max().alias(format!("{alias}__max")),
        col(value).count().alias(format!("{alias}__n")),
    ]
}

/// The sums [`exact_sum`] aggregated as `alias`, one a row of `df`. A group whose rows
/// could pass i128's range (row count × its largest magnitude) is refused, since the
/// sum Polars gives it may have wrapped; so is a sum past 38 digits.
pub fn dec_sums(file: &str, df: &DataFrame, alias: &str) -> Result<Vec<Dec>> {
    let err = polars_err(file);
    let dec = |name: &str| -> Result<Vec<Option<i128>>> {
        let c = df.column(name).map_err(&err)?;
        Ok(c.decimal().map_err(&err)?.physical().iter().collect())
    };
    let (sums, mins, maxs) = (dec(alias)?, dec(&format!("{alias}__min"))?, dec(&format!("{alias}__max"))?);
    let counts = counts(file, df, &format!("{alias}__n"))?;
    let mut out = Vec::with_capacity(sums.len());
    for (k, sum) in sums.into_iter().enumerate() {
        // Below i128's range, Polars' sum cannot have wrapped: it is the exact sum,
        // which must then fit 38 digits.
        let largest = mins[k].unwrap_or(0).unsigned_abs().max(maxs[k].unwrap_or(0).unsigned_abs());
        let bound = largest.checked_mul(u128::from(counts[k]));
        let sum = sum.unwrap_or(0);
        if bound.is_none_or(|b| b > i128::MAX as u128) || sum.unsigned_abs() > MAX_MANTISSA as u128 {
            return Err(InputError::Overflow(crate::decimal::Overflow { figure: alias_label(alias) }));
        }
        out.push(Dec(sum));
    }
    Ok(out)
}

fn alias_label(alias: &str) -> &'static str {
    match alias {
        "effective_cost" => "effective cost total",
        "total_due" => "total due",
        _ => "cost total",
    }
}

/// A decimal column of the bill run's mantissas, as Polars takes money.
pub fn dec_column(file: &str, name: &str, mantissas: Vec<i128>) -> Result<Column> {
    let c = Int128Chunked::from_vec(name.into(), mantissas).into_decimal(38, SCALE as usize).map_err(polars_err(file))?;
    Ok(c.into_column())
}

/// The 32-bit integers (ids, account indexes) of column `name` of `df`.
pub fn u32s(file: &str, df: &DataFrame, name: &str) -> Result<Vec<u32>> {
    let err = polars_err(file);
    Ok(df.column(name).map_err(&err)?.u32().map_err(&err)?.iter().map(Option::unwrap_or_default).collect())
}

/// The row counts (a `count()` aggregation, of Polars' index type) of column `name`.
pub fn counts(file: &str, df: &DataFrame, name: &str) -> Result<Vec<u64>> {
    let err = polars_err(file);
    let c = df.column(name).map_err(&err)?.cast(&DataType::UInt64).map_err(&err)?;
    Ok(c.u64().map_err(&err)?.iter().map(Option::unwrap_or_default).collect())
}

/// The strings of column `name` of `df` (`""` for a null).
pub fn strs(file: &str, df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let err = polars_err(file);
    let c = df.column(name).map_err(&err)?;
    Ok(c.str().map_err(&err)?.iter().map(|s| s.unwrap_or_default().to_string()).collect())
}

/// The decimals of column `name` of `df`, as they are (not sums).
pub fn decs(file: &str, df: &DataFrame, name: &str) -> Result<Vec<Option<Dec>>> {
    let err = polars_err(file);
    let c = df.column(name).map_err(&err)?;
    Ok(c.decimal().map_err(&err)?.physical().iter().map(|v| v.map(Dec)).collect())
}

/// The integers of column `name` of `df`.
pub fn ints(file: &str, df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    let err = polars_err(file);
    let c = df.column(name).map_err(&err)?;
    Ok(c.i64().map_err(&err)?.iter().collect())
}

/// The 128-bit integers of column `name` of `df` (quantities' mantissas).
pub fn i128s(file: &str, df: &DataFrame, name: &str) -> Result<Vec<i128>> {
    let err = polars_err(file);
    Ok(df.column(name).map_err(&err)?.i128().map_err(&err)?.iter().map(Option::unwrap_or_default).collect())
}

/// The flags of column `name` of `df` (a null is false).
pub fn bools(file: &str, df: &DataFrame, name: &str) -> Result<Vec<bool>> {
    let err = polars_err(file);
    Ok(df.column(name).map_err(&err)?.bool().map_err(&err)?.iter().map(|b| b == Some(true)).collect())
}

/// A stable sort by the columns `by`, each ascending or (`descending`) not.
pub fn sort_by(by: &[&str], descending: &[bool]) -> (Vec<PlSmallStr>, SortMultipleOptions) {
    let names = by.iter().map(|s| PlSmallStr::from(*s)).collect();
    (names, SortMultipleOptions::default().with_order_descending_multi(descending.to_vec()).with_maintain_order(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(values: &[i128]) -> DataFrame {
        let c = Int128Chunked::from_vec("x".into(), values.to_vec()).into_decimal(38, SCALE as usize).unwrap().into_column();
        let g = Column::new("g".into(), values.iter().map(|_| "a").collect::<Vec<_>>());
        DataFrame::new(values.len(), vec![g, c]).unwrap()
    }

    fn summed(values: &[i128]) -> Result<Vec<Dec>> {
        let df = money(values).lazy().group_by([col("g")]).agg(exact_sum("x", "x")).collect().unwrap();
        dec_sums("t", &df, "x")
    }

    #[test]
    fn a_sum_is_exact_to_the_last_digit() {
        // 0.0000000001 + 12345678901234567890.1234567891 − 3
        let got = summed(&[1, 123_456_789_012_345_678_901_234_567_891, -30_000_000_000]).unwrap();
        assert_eq!(got, vec![Dec(123_456_789_012_345_678_901_234_567_891 + 1 - 30_000_000_000)]);
    }

    #[test]
    fn a_sum_that_could_pass_38_digits_is_refused_not_wrapped() {
        // Each fits Decimal(38, 10); two of them do not (their sum still fits i128).
        let big = 60_000_000_000_000_000_000_000_000_000_000_000_000i128;
        assert!(matches!(summed(&[big, big]), Err(InputError::Overflow(_))));
        // Three could pass i128's range, where Polars' sum wraps.
        assert!(matches!(summed(&[-big, -big, -big]), Err(InputError::Overflow(_))));
        assert!(matches!(summed(&[-big, -big, 1]), Err(InputError::Overflow(_))));
        assert_eq!(summed(&[big, 1]).unwrap(), vec![Dec(big + 1)]);
        // Large magnitudes that cancel: exact.
        let half = 50_000_000_000_000_000_000_000_000_000_000_000_000i128;
        assert_eq!(summed(&[half, -half, 7]).unwrap(), vec![Dec(7)]);
    }
}
