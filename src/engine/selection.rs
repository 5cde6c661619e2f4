//! Which rows of an hour the engine rates, and how: a selection of accounts or of
//! some of their rows, and the options of a rating that is not the close's (the
//! what-if re-rating of `jobs/what_if.rs`). The engine keeps no such state itself.

use super::Engine;
use crate::decimal::Dec;
use crate::rules::batch::{Columns, Entries, RowKeys, TextColumn, UsageBatch};
use rustc_hash::FxHashMap;

/// Which rows of an hour the engine rates: all (the close), or those of some accounts,
/// and of an account with a filter only the rows it wants. Other rows are skipped, as
/// if absent. Keyed by the engine's account index.
#[derive(Clone, Debug, Default)]
pub struct RowSelection {
    accounts: FxHashMap<u32, Option<RowFilter>>,
}

impl RowSelection {
    /// Every row of these accounts (by id) of `engine`.
    pub fn accounts(engine: &Engine, ids: &[String]) -> RowSelection {
        RowSelection { accounts: ids.iter().filter_map(|a| Some((engine.account_index(a)?, None))).collect() }
    }

    /// The rows each filter wants of its account (by id) of `engine`.
    pub fn rows(engine: &Engine, rows: &[(String, RowFilter)]) -> RowSelection {
        RowSelection { accounts: rows.iter().filter_map(|(a, f)| Some((engine.account_index(a)?, Some(f.clone())))).collect() }
    }

    /// The rows of `c` selected, or `None` when `c` holds a selection of its file's
    /// rows already (read with this very selection: every row of it is wanted).
    pub(super) fn wanted<C: Columns>(&self, engine: &Engine, c: &UsageBatch<C>) -> Option<Vec<bool>> {
        let cols = [&c.account_id, &c.sku, &c.region, &c.resource_id, &c.pool_id].map(Some);
        c.rows.is_none().then(|| select_rows(c.len, cols, |a| engine.account_index(a).and_then(|i| self.accounts.get(&i)).map(Option::as_ref)))
    }
}

/// How an hour is rated. The close rates every row in parallel and keeps the lines
/// ([`HourOptions::default`]); the what-if re-rating (`jobs/what_if.rs`) asks for less.
#[derive(Clone, Copy, Debug)]
pub struct HourOptions<'a> {
    /// The rows rated (`None`: all).
    pub selection: Option<&'a RowSelection>,
    /// Per account, in account order, the part of this hour's pay-per-use sum that
    /// comes from rows not rated here: added before the hour is settled.
    pub unrated: &'a [(u32, Dec)],
    /// Rate on the calling thread rather than spreading the hour over the pool.
    pub sequential: bool,
    /// Hand the hour's lines back in its result (else they are counted, then dropped
    /// where made).
    pub keep_lines: bool,
    /// Rate the hour's accounts in blocks of about this many rows, each block handed
    /// on before the next is rated ([`super::Engine::process_hour_in_blocks`];
    /// `None`: the hour in one block).
    pub block_rows: Option<usize>,
}

impl Default for HourOptions<'_> {
    fn default() -> Self {
        HourOptions { selection: None, unrated: &[], sequential: false, keep_lines: true, block_rows: None }
    }
}

/// The rows of an account that a purchase can change: those of its SKU and region
/// (they share the tier cumulative and the packages), and those of its resource or of
/// the jobs on it (a subscription covers them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowFilter {
    pub sku: String,
    pub region: String,
    pub resource: Option<String>,
}

impl RowFilter {
    pub fn wants(&self, k: &RowKeys<'_>) -> bool {
        if k.sku == Some(self.sku.as_str()) && k.region == Some(self.region.as_str()) {
            return true;
        }
        self.resource.as_deref().is_some_and(|res| k.resource_id == Some(res) || k.pool_id == Some(res))
    }
}

/// A what-if selection: an account's entry (see [`select_rows`]).
pub type Select<'f> = dyn Fn(&str) -> Option<Option<&'f RowFilter>> + Sync + 'f;

/// Which rows a what-if selection wants, of a batch of `n` rows whose account, SKU,
/// region, resource and pool columns are `cols`. `select` gives an account's entry:
/// `None`, none of its rows; `Some(None)`, all of them; `Some(Some(f))`, the rows `f`
/// wants. With dictionary columns each distinct account is looked up once, and a
/// filter's SKU and region are compared as dictionary entries, not as text.
pub fn select_rows<'f, S: TextColumn>(n: usize, cols: [Option<&S>; 5], select: impl Fn(&str) -> Option<Option<&'f RowFilter>>) -> Vec<bool> {
    let [account, sku, region, resource, pool] = cols;
    fn at<S: TextColumn>(c: Option<&S>, r: usize) -> Option<&str> {
        c.and_then(|c| c.get(r))
    }
    let keys = |r: usize| RowKeys { account_id: at(account, r), sku: at(sku, r), region: at(region, r), resource_id: at(resource, r), pool_id: at(pool, r) };
    let by_text = || (0..n).map(|r| at(account, r).and_then(&select).is_some_and(|f| f.is_none_or(|f| f.wants(&keys(r))))).collect();
    // Each dictionary entry's first key with the same text, and the key of a text.
    fn entries<S: TextColumn>(c: &S) -> Option<(Vec<u32>, FxHashMap<&str, u32>)> {
        let d = c.dictionary()?;
        let mut first: FxHashMap<&str, u32> = FxHashMap::default();
        let canon = (0..d.len()).map(|k| d.entry(k).map_or(u32::MAX, |v| *first.entry(v).or_insert(k as u32))).collect();
        Some((canon, first))
    }
    let (Some(account), Some(sku), Some(region)) = (account, sku, region) else {
        return by_text();
    };
    let (Some(accounts), Some((sku_of, skus)), Some((region_of, regions))) = (account.dictionary(), entries(sku), entries(region)) else {
        return by_text();
    };
    // A row's entry in a column (`u32::MAX`: null, or no entry).
    fn entry_of(canon: &[u32], key: Option<usize>) -> u32 {
        key.and_then(|k| canon.get(k)).copied().unwrap_or(u32::MAX)
    }
    // Per account key: not selected, every row, or a filter with its SKU's and region's
    // entries in this batch (`u32::MAX`: no row has that text).
    type Entry<'f> = Option<Option<(&'f RowFilter, u32, u32)>>;
    let by_key: Vec<Entry<'f>> = (0..accounts.len())
        .map(|k| {
            let f = select(accounts.entry(k)?)?;
            Some(f.map(|f| (f, skus.get(f.sku.as_str()).copied().unwrap_or(u32::MAX), regions.get(f.region.as_str()).copied().unwrap_or(u32::MAX))))
        })
        .collect();
    (0..n)
        .map(|r| match account.key(r).and_then(|k| by_key.get(k)).copied().flatten() {
            None => false,
            Some(None) => true,
            Some(Some((f, s, g))) => {
                (s != u32::MAX && g != u32::MAX && entry_of(&sku_of, sku.key(r)) == s && entry_of(&region_of, region.key(r)) == g)
                    || f.resource.as_deref().is_some_and(|res| at(resource, r) == Some(res) || at(pool, r) == Some(res))
            }
        })
        .collect()
}
