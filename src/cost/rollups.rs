//! The allocation roll-ups (billing-rules §8, cost allocation): each account's
//! allocated effective cost by enterprise project, and by tag key and value, as Polars
//! queries over the period's allocation. For each tag key, the amount allocated to
//! lines without it is `(untagged)`; for the project, `(none)`. Every dimension of an
//! account adds up to the account's effective cost, or the run is refused.

use super::frame::{counts, dec_column, dec_sums, exact_sum, polars_err, sort_by, u32s};
use super::{AllocKey, CostBook};
use crate::decimal::Dec;
use crate::lake::inputs::{InputError, Result};
use polars::prelude::*;
use rustc_hash::FxHashMap;

/// The roll-ups' name in errors.
const WHAT: &str = "cost/analysis (allocation roll-ups)";

/// One figure of a roll-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollup {
    pub account: u32,
    /// `enterprise_project`, or `tag:<key>`.
    pub dimension: String,
    /// The project or the tag's value.
    pub key: String,
    pub effective: Dec,
}

pub const NO_PROJECT: &str = "(none)";
pub const UNTAGGED: &str = "(untagged)";

/// Allocated amounts summed by one set of queries: a few accounts' worth, so that
/// the frames (and what Polars' threads allocate for them) stay small however large
/// the period.
const CHUNK: usize = 16 * 1024;

/// The roll-ups of the period's allocation, by account, then dimension, then largest
/// amount first (and key), handed to `each` a few accounts at a time.
pub fn rollups<E: From<InputError>>(book: &CostBook, mut each: impl FnMut(Rollup) -> std::result::Result<(), E>) -> std::result::Result<(), E> {
    let mut entries: Vec<(&AllocKey, &Dec)> = book.allocation.iter().collect();
    entries.sort_unstable_by_key(|(k, _)| k.account);
    let mut names = Names::default();
    let mut rest = &entries[..];
    while !rest.is_empty() {
        // Whole accounts, about CHUNK amounts.
        let mut end = CHUNK.min(rest.len());
        while end < rest.len() && rest[end].0.account == rest[end - 1].0.account {
            end += 1;
        }
        for r in rollups_of(&rest[..end], &book.effective, &mut names)? {
            each(r)?;
        }
        rest = &rest[end..];
    }
    Ok(())
}

/// The roll-ups of some accounts' allocated amounts (all of each account's).
fn rollups_of(entries: &[(&AllocKey, &Dec)], effective: &FxHashMap<u32, Dec>, names: &mut Names) -> Result<Vec<Rollup>> {
    let err = polars_err(WHAT);
    // The allocation, one row per allocated amount; its tags, one row per key. Names
    // go in as ids (`names`), so that the frames hold no text.
    let (mut acct, mut project, mut amount) = (Vec::new(), Vec::new(), Vec::new());
    let (mut t_acct, mut t_key, mut t_value, mut t_amount) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut parsed: FxHashMap<&str, Vec<(u32, u32)>> = FxHashMap::default();
    for &(k, v) in entries {
        acct.push(k.account);
        project.push(names.id(k.project.as_deref().unwrap_or(NO_PROJECT)));
        amount.push(v.0);
        let Some(tags) = k.tags.as_deref() else { continue };
        let pairs = parsed.entry(tags).or_insert_with(|| tag_pairs(tags).into_iter().map(|(k, v)| (names.id(&k), names.id(&v))).collect());
        for &(key, value) in pairs.iter() {
            t_acct.push(k.account);
            t_key.push(key);
            t_value.push(value);
            t_amount.push(v.0);
        }
    }
    drop(parsed);
    let n = acct.len();
    let alloc =
        DataFrame::new(n, vec![Column::new("acct".into(), acct), Column::new("key".into(), project), dec_column(WHAT, "amount", amount)?]).map_err(&err)?;
    let m = t_acct.len();
    let tags = DataFrame::new(
        m,
        vec![Column::new("acct".into(), t_acct), Column::new("tag".into(), t_key), Column::new("key".into(), t_value), dec_column(WHAT, "amount", t_amount)?],
    )
    .map_err(&err)?;

    let sorted = |by: &[&str]| sort_by(by, &vec![false; by.len()]);
    // Each account's total, and its number of allocated amounts.
    let (by, opts) = sorted(&["acct"]);
    let totals = alloc.clone().lazy().group_by([col("acct")]).agg(exact_sum("amount", "amount")).sort(by, opts).collect().map_err(&err)?;
    let total_of: FxHashMap<u32, (Dec, u64)> = {
        let sums = dec_sums(WHAT, &totals, "amount")?;
        let accts = u32s(WHAT, &totals, "acct")?;
        let counts = counts(WHAT, &totals, "amount__n")?;
        accts.into_iter().zip(sums).zip(counts).map(|((a, s), c)| (a, (s, c))).collect()
    };
    let (by, opts) = sorted(&["acct", "key"]);
    let projects = alloc.lazy().group_by([col("acct"), col("key")]).agg(exact_sum("amount", "amount")).sort(by, opts).collect().map_err(&err)?;
    let (by, opts) = sorted(&["acct", "tag", "key"]);
    let values = tags.lazy().group_by([col("acct"), col("tag"), col("key")]).agg(exact_sum("amount", "amount")).sort(by, opts).collect().map_err(&err)?;

    let mut out = Vec::new();
    for (a, k, s) in itertools(u32s(WHAT, &projects, "acct")?, u32s(WHAT, &projects, "key")?, dec_sums(WHAT, &projects, "amount")?) {
        out.push(Rollup { account: a, dimension: "enterprise_project".into(), key: names.name(k), effective: s });
    }
    // Per account and tag key: its values, and what lines without it add up to.
    let (va, vt, vk, vs, vn) = (
        u32s(WHAT, &values, "acct")?,
        u32s(WHAT, &values, "tag")?,
        u32s(WHAT, &values, "key")?,
        dec_sums(WHAT, &values, "amount")?,
        counts(WHAT, &values, "amount__n")?,
    );
    let mut i = 0;
    while i < va.len() {
        let (a, tag) = (va[i], vt[i]);
        let (mut tagged, mut rows) = (Dec::ZERO, 0u64);
        let dimension = format!("tag:{}", names.name(tag));
        while i < va.len() && va[i] == a && vt[i] == tag {
            tagged = tagged.plus(vs[i], "allocated cost")?;
            rows += vn[i];
            out.push(Rollup { account: a, dimension: dimension.clone(), key: names.name(vk[i]), effective: vs[i] });
            i += 1;
        }
        let (total, count) = total_of.get(&a).copied().unwrap_or_default();
        if rows < count {
            out.push(Rollup { account: a, dimension, key: UNTAGGED.into(), effective: total.minus(tagged, "allocated cost")? });
        }
    }
    // Every dimension of an account adds up to its effective cost, as the bill says.
    let mut by_dimension: FxHashMap<(u32, &str), Dec> = FxHashMap::default();
    for r in &out {
        let e = by_dimension.entry((r.account, r.dimension.as_str())).or_default();
        *e = e.plus(r.effective, "allocated cost")?;
    }
    for ((a, dimension), sum) in &by_dimension {
        let effective = effective.get(a).copied().unwrap_or_default();
        if *sum != effective {
            return Err(InputError::Table { file: WHAT.into(), why: format!("account #{a}: {dimension} adds up to {sum}, its effective cost is {effective}") });
        }
    }
    out.sort_by(|x, y| (x.account, &x.dimension).cmp(&(y.account, &y.dimension)).then(y.effective.cmp(&x.effective)).then(x.key.cmp(&y.key)));
    Ok(out)
}

/// Projects, tag keys and tag values, as ids.
#[derive(Default)]
struct Names {
    ids: FxHashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), i);
        i
    }
    fn name(&self, i: u32) -> String {
        self.names[i as usize].clone()
    }
}

/// A tags object's keys and values (checked as a JSON object of strings when read).
fn tag_pairs(tags: &str) -> Vec<(String, String)> {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(tags) {
        Ok(m) => m.into_iter().filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string()))).collect(),
        Err(_) => Vec::new(),
    }
}

fn itertools<A, B, C>(a: Vec<A>, b: Vec<B>, c: Vec<C>) -> impl Iterator<Item = (A, B, C)> {
    a.into_iter().zip(b).zip(c).map(|((a, b), c)| (a, b, c))
}
