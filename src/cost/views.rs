//! The views of `cost/analysis` that are group-bys over the cost book's period sums,
//! as Polars queries: the composition by each dimension of [`DIMS`], the daily and
//! monthly trends, and each account's top resources. (The allocation roll-ups are in
//! [`super::rollups`]; the forecast and the change from the period before are
//! exact roundings of these sums, in [`super::tables`].)
//!
//! Keys go into the frames as the rank of their name among the keys (names sorted by
//! their bytes), so that the frames hold no text and sorting by key sorts by name.
//! Every sum is an [`exact_sum`]: one that Polars could have wrapped is refused.

use super::frame::{dec_column, dec_sums, decs, exact_sum, ints, polars_err, sort_by, u32s};
use super::syms::{Dictionary, Sym, NO_SYM};
use super::{CostBook, Sums, DIMS};
use crate::decimal::Dec;
use crate::lake::inputs::{InputError, Result};
use polars::prelude::*;
use rustc_hash::FxHashMap;

/// The views' name in errors.
const WHAT: &str = "cost/analysis";

/// How many resources the `top_resources` view keeps per account.
pub const TOP: usize = 10;

/// Rows of the book's sums that one query takes: whole accounts, about this many,
/// so that the frames (and what Polars' threads allocate for them) stay small
/// however large the period.
const CHUNK: usize = 64 * 1024;

/// One row of the composition views: an account's sums under one key of one
/// dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Composed {
    pub account: u32,
    /// The dimension, as its place in [`DIMS`].
    pub dim: u8,
    pub key: Sym,
    pub sums: Sums,
}

/// The composition views of the period: for each account, each dimension of [`DIMS`]
/// (by name) and each key (by name), the sums of the lines with that key. A line
/// without a key in a dimension (none, or an empty name) is not in that view.
pub fn composition(book: &CostBook) -> Result<Vec<Composed>> {
    let ranks = Ranks::of(&book.names, book.values.iter().flat_map(|(_, v, _)| v.iter().copied()));
    // The dimensions in the order of their names, and back.
    let mut by_name: Vec<usize> = (0..DIMS.len()).collect();
    by_name.sort_by_key(|&d| DIMS[d]);
    let mut out = Vec::new();
    for rows in chunks(&book.values, |r| r.0) {
        let mut keys: [Vec<u32>; 8] = Default::default();
        for (_, values, _) in rows {
            for (place, &d) in by_name.iter().enumerate() {
                keys[place].push(ranks.rank(values[d]));
            }
        }
        let mut columns = vec![Column::new("acct".into(), rows.iter().map(|r| r.0).collect::<Vec<u32>>())];
        columns.extend(keys.into_iter().enumerate().map(|(place, k)| Column::new(format!("k{place}").into(), k)));
        columns.extend(sums_columns(rows.iter().map(|r| &r.2))?);
        let frame = DataFrame::new(rows.len(), columns).map_err(polars_err(WHAT))?.lazy();
        // Each dimension's sums by account and key, then the eight in one frame.
        let per_dim: Vec<LazyFrame> = (0..DIMS.len())
            .map(|place| {
                let key = format!("k{place}");
                frame
                    .clone()
                    .filter(col(key.as_str()).neq(lit(NONE)))
                    .group_by([col("acct"), col(key.as_str()).alias("key")])
                    .agg(sum_aggs())
                    .with_column(lit(place as u32).cast(DataType::UInt32).alias("dim"))
            })
            .collect();
        let summed = concat(per_dim, UnionArgs::default()).map_err(polars_err(WHAT))?;
        let df = sorted(summed, &["acct", "dim", "key"], &[false, false, false])?;
        let (accts, dims, keys, sums) = (u32s(WHAT, &df, "acct")?, u32s(WHAT, &df, "dim")?, u32s(WHAT, &df, "key")?, sums_of(&df)?);
        for (((account, place), key), sums) in accts.into_iter().zip(dims).zip(keys).zip(sums) {
            out.push(Composed { account, dim: by_name[place as usize] as u8, key: ranks.sym(key), sums });
        }
    }
    Ok(out)
}

/// The daily and monthly trends of the period.
pub struct Trends {
    /// Each account's days with lines, in order: account, day (days since the epoch)
    /// and the day's sums.
    pub daily: Vec<(u32, i64, Sums)>,
    /// Each account's month (accounts with lines only).
    pub monthly: FxHashMap<u32, Sums>,
}

/// The daily trend of each account, and each account's month as the sum of its days.
pub fn trends(book: &CostBook) -> Result<Trends> {
    let n = book.daily.len();
    let (mut accts, mut days) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (acct, day) in book.daily.keys() {
        accts.push(*acct);
        days.push(*day);
    }
    let mut columns = vec![Column::new("acct".into(), accts), Column::new("day".into(), days)];
    columns.extend(sums_columns(book.daily.values())?);
    let frame = DataFrame::new(n, columns).map_err(polars_err(WHAT))?.lazy();
    let df = sorted(frame.clone(), &["acct", "day"], &[false, false])?;
    let (accts, days) = (u32s(WHAT, &df, "acct")?, ints(WHAT, &df, "day")?);
    let daily = accts.into_iter().zip(days).zip(costs_of(&df)?).map(|((a, d), s)| (a, d.unwrap_or_default(), s)).collect();
    let months = sorted(frame.group_by([col("acct")]).agg(sum_aggs()), &["acct"], &[false])?;
    let monthly = u32s(WHAT, &months, "acct")?.into_iter().zip(sums_of(&months)?).collect();
    Ok(Trends { daily, monthly })
}

/// Each account's [`TOP`] resources by effective cost (ties by name), in order:
/// account, resource and sums.
pub fn top_resources(book: &CostBook) -> Result<Vec<(u32, Sym, Sums)>> {
    let ranks = Ranks::of(&book.names, book.resources.iter().map(|r| r.1));
    let mut out = Vec::new();
    for rows in chunks(&book.resources, |r| r.0) {
        let mut columns = vec![
            Column::new("acct".into(), rows.iter().map(|r| r.0).collect::<Vec<u32>>()),
            Column::new("key".into(), rows.iter().map(|r| ranks.rank(r.1)).collect::<Vec<u32>>()),
        ];
        columns.extend(sums_columns(rows.iter().map(|r| &r.2))?);
        let frame = DataFrame::new(rows.len(), columns).map_err(polars_err(WHAT))?.lazy();
        let (by, opts) = sort_by(&["acct", "effective", "key"], &[false, true, false]);
        let top = frame.sort(by, opts).group_by_stable([col("acct")]).head(Some(TOP));
        let df = top.collect().map_err(polars_err(WHAT))?;
        let (accts, keys) = (u32s(WHAT, &df, "acct")?, u32s(WHAT, &df, "key")?);
        out.extend(accts.into_iter().zip(keys).zip(costs_of(&df)?).map(|((a, k), s)| (a, ranks.sym(k), s)));
    }
    Ok(out)
}

/// No key: its rank.
const NONE: u32 = u32::MAX;

/// The keys of a view ranked by their names' bytes.
struct Ranks {
    /// By symbol: its rank, or [`NONE`] (no name, or an empty one).
    rank: Vec<u32>,
    /// By rank: the symbol.
    order: Vec<Sym>,
}

impl Ranks {
    fn of(names: &Dictionary, keys: impl Iterator<Item = Sym>) -> Ranks {
        let mut rank = vec![NONE; names.len()];
        let mut order = Vec::new();
        for k in keys {
            let Some(slot) = rank.get_mut(k as usize) else { continue };
            if *slot == NONE && names.name(k).is_some_and(|n| !n.is_empty()) {
                *slot = 0;
                order.push(k);
            }
        }
        order.sort_unstable_by_key(|&k| names.name(k).unwrap_or_default());
        for (r, &k) in order.iter().enumerate() {
            rank[k as usize] = r as u32;
        }
        Ranks { rank, order }
    }
    fn rank(&self, k: Sym) -> u32 {
        if k == NO_SYM {
            return NONE;
        }
        self.rank.get(k as usize).copied().unwrap_or(NONE)
    }
    fn sym(&self, rank: u32) -> Sym {
        self.order[rank as usize]
    }
}

/// `rows` in runs of whole accounts of about [`CHUNK`] rows (`rows` are by account).
fn chunks<T>(rows: &[T], account: impl Fn(&T) -> u32) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = CHUNK.min(rest.len());
        while end < rest.len() && account(&rest[end]) == account(&rest[end - 1]) {
            end += 1;
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

/// The columns `billed`, `effective` and `list` of some sums.
fn sums_columns<'a>(sums: impl Iterator<Item = &'a Sums> + Clone) -> Result<[Column; 3]> {
    Ok([
        dec_column(WHAT, "billed", sums.clone().map(|s| s.billed.0).collect())?,
        dec_column(WHAT, "effective", sums.clone().map(|s| s.effective.0).collect())?,
        dec_column(WHAT, "list", sums.map(|s| s.list.0).collect())?,
    ])
}

/// The exact sums of the three costs, each under its own name.
fn sum_aggs() -> Vec<Expr> {
    ["billed", "effective", "list"].into_iter().flat_map(|c| exact_sum(c, c)).collect()
}

/// The costs of each row of `df`, as they are (not sums).
fn costs_of(df: &DataFrame) -> Result<Vec<Sums>> {
    let (billed, effective, list) = (decs(WHAT, df, "billed")?, decs(WHAT, df, "effective")?, decs(WHAT, df, "list")?);
    let cost = |v: Option<Dec>| v.unwrap_or_default();
    Ok(billed.into_iter().zip(effective).zip(list).map(|((b, e), l)| Sums { billed: cost(b), effective: cost(e), list: cost(l) }).collect())
}

/// The sums [`sum_aggs`] took, one a row of `df`.
fn sums_of(df: &DataFrame) -> Result<Vec<Sums>> {
    let (billed, effective, list) = (dec_sums(WHAT, df, "billed")?, dec_sums(WHAT, df, "effective")?, dec_sums(WHAT, df, "list")?);
    Ok(billed.into_iter().zip(effective).zip(list).map(|((billed, effective), list)| Sums { billed, effective, list }).collect())
}

fn sorted(frame: LazyFrame, by: &[&str], descending: &[bool]) -> Result<DataFrame> {
    let (by, opts) = sort_by(by, descending);
    frame.sort(by, opts).collect().map_err(polars_err(WHAT))
}

/// A name of the views' keys, for the tables.
pub fn name(names: &Dictionary, k: Sym) -> std::result::Result<&str, InputError> {
    names.name(k).ok_or_else(|| InputError::Table { file: WHAT.into(), why: format!("no name for key #{k}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::syms::Syms;

    fn sums(effective: &str) -> Sums {
        let d = Dec::parse(effective).unwrap();
        Sums { billed: d, effective: d, list: d }
    }

    /// Two accounts; keys named so that their order by name is not the order they
    /// were first seen, and one empty name, which no view shows.
    fn book() -> CostBook {
        let mut names = Syms::default();
        let [gpu, cpu, empty] = ["gpu", "cpu", ""].map(|n| names.id(n));
        let mut book = CostBook { names: names.into_dictionary(), ..CostBook::default() };
        let v = |k: Sym| [k, k, k, k, k, NO_SYM, k, empty];
        book.values = vec![(0, v(gpu), sums("10.004")), (0, v(cpu), sums("2.5")), (0, v(gpu), sums("-0.004")), (1, v(cpu), sums("1"))];
        // Twelve resources, two at each cost from 0 to 5: res-00 and RES-01 at 0, …
        for i in 0..12 {
            let name = names_of(&mut book, &format!("{}-{i:02}", if i % 2 == 0 { "res" } else { "RES" }));
            book.resources.push((0, name, sums(&(i / 2).to_string())));
        }
        book.resources.push((1, cpu, sums("7")));
        book
    }

    /// Adds a name to a finished book's names.
    fn names_of(book: &mut CostBook, name: &str) -> Sym {
        let mut names = Syms::default();
        for k in 0..book.names.len() as Sym {
            names.id(book.names.name(k).unwrap());
        }
        let k = names.id(name);
        book.names = names.into_dictionary();
        k
    }

    #[test]
    fn composition_sums_each_key_of_each_dimension_in_order_of_names() {
        let b = book();
        let got: Vec<(u32, &str, &str, Dec)> =
            composition(&b).unwrap().iter().map(|c| (c.account, DIMS[c.dim as usize], b.names.name(c.key).unwrap(), c.sums.effective)).collect();
        let d = |s: &str| Dec::parse(s).unwrap();
        // Six dimensions have a key (region has none; module × billing item's is
        // empty), in the order of their names; within each, cpu before gpu.
        let mut want = Vec::new();
        for dim in ["billing_item", "billing_mode", "charge_category", "module", "product", "sku"] {
            want.push((0, dim, "cpu", d("2.5")));
            want.push((0, dim, "gpu", d("10")));
        }
        for dim in ["billing_item", "billing_mode", "charge_category", "module", "product", "sku"] {
            want.push((1, dim, "cpu", d("1")));
        }
        assert_eq!(got, want);
    }

    #[test]
    fn top_resources_are_the_ten_most_expensive_ties_by_name() {
        let b = book();
        let got: Vec<(u32, &str, Dec)> = top_resources(&b).unwrap().iter().map(|(a, k, s)| (*a, b.names.name(*k).unwrap(), s.effective)).collect();
        let d = |s: &str| Dec::parse(s).unwrap();
        // Account 0: two resources at each cost from 5 down to 1, the name in
        // capitals first (its bytes sort first); the two at 0 are cut.
        let mut want = Vec::new();
        let names = ["res-00", "RES-01", "res-02", "RES-03", "res-04", "RES-05", "res-06", "RES-07", "res-08", "RES-09", "res-10", "RES-11"];
        for k in (1..=5).rev() {
            want.push((0, names[2 * k + 1], d(&k.to_string())));
            want.push((0, names[2 * k], d(&k.to_string())));
        }
        want.push((1, "cpu", d("7")));
        assert_eq!(got, want);
    }

    #[test]
    fn a_sum_that_could_wrap_is_refused() {
        let mut b = book();
        let big = Sums { billed: Dec(crate::decimal::MAX_MANTISSA), effective: Dec(crate::decimal::MAX_MANTISSA), list: Dec(crate::decimal::MAX_MANTISSA) };
        b.values.push((1, b.values[3].1, big));
        b.values.push((1, b.values[3].1, big));
        assert!(matches!(composition(&b), Err(InputError::Overflow(_))));
    }
}
