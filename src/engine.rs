//! The bill run of one period as a fold over its hours: the pure core, with no object
//! store, clock or command line inside. The job feeds it each hour's decoded usage (in
//! time order) and the period's duplicate verdicts; it returns what each hour produced
//! and, at the close, the period's invoices, ledgers and the state the next period
//! opens from. Accounts are rated in parallel within an hour; their results are
//! concatenated in account order, so the output does not depend on the thread count.

#![deny(clippy::float_arithmetic)]

use crate::decimal::{Dec, Overflow, Qty};
use crate::model::{Account, Package, Reason, Reference};
use crate::rules::account::{AccountBook, AccountOpening, Ctx, HourOut};
use crate::rules::batch::{Columns, Entries, RowKeys, TextColumn, UsageBatch};
use crate::rules::checks::{check_row_known, Known, Rejection, RowLoc, Usage};
use crate::rules::dedup::FileRow;
pub use crate::rules::invoice::Invoice;
use crate::rules::packages::{self, PackageBook};
use crate::rules::pricing::Catalog;
use crate::rules::records::*;
use crate::rules::subscriptions::{Order, Subscriptions};
use crate::rules::{invoice, purchases};
use crate::time::{Micros, Period};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// The state a period opens from: the previous period's close, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opening {
    pub accounts: FxHashMap<String, AccountOpening>,
    /// Closing quota and "alert fired" of each package.
    pub packages: FxHashMap<String, (Qty, bool)>,
}

/// What one hour produced.
#[derive(Debug, Default)]
pub struct HourResult {
    /// The hour's start.
    pub hour: Micros,
    pub lines: Vec<Line>,
    pub rejected: Vec<Rejected>,
    pub settlements: Vec<Settlement>,
    pub alerts: Vec<Alert>,
    pub deductions: Vec<Deduction>,
    pub rows_in: u64,
    pub rows_rated: u64,
}

/// One package's quota movement in the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRow {
    pub package: u32,
    pub account: u32,
    pub opening: Qty,
    pub used: Qty,
    pub lapsed: Qty,
    pub closing: Qty,
    /// The four figures as the ledger table shows them ([`packages::ledger_shown`]):
    /// opening, used, lapsed, closing.
    pub shown: [Dec; 4],
}

/// A rejected subscription order of the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedOrder {
    pub subscription: u32,
    pub why: Rejection,
}

/// What the close of the period produced.
#[derive(Debug, Default)]
pub struct PeriodResult {
    pub lines: Vec<Line>,
    pub invoices: Vec<Invoice>,
    pub status: Vec<StatusInterval>,
    pub ledger: Vec<LedgerRow>,
    pub rejected_orders: Vec<RejectedOrder>,
    pub closing: Opening,
}

/// A figure of an account went beyond the 38 digits of the contract's decimals: the
/// run is refused (exit 2), never published with a saturated or zeroed figure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account '{account}': {overflow}; the run is refused")]
pub struct AccountOverflow {
    pub account: String,
    pub overflow: Overflow,
}

pub struct Engine {
    pub period: Period,
    pub accounts: Vec<Account>,
    pub packages: Vec<Package>,
    pub catalog: Catalog,
    pub subs: Subscriptions,
    account_index: FxHashMap<String, u32>,
    books: Vec<AccountBook>,
    /// Per account: lines so far and Σ BilledCost.
    tally: Vec<(u64, Dec)>,
}

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
    fn wanted<C: Columns>(&self, engine: &Engine, c: &UsageBatch<C>) -> Option<Vec<bool>> {
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
}

impl Default for HourOptions<'_> {
    fn default() -> Self {
        HourOptions { selection: None, unrated: &[], sequential: false, keep_lines: true }
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

/// A checked row's place in the rating order: account, start time, record id, then
/// its run of rows and its place in the run.
type Pos<'a> = (u32, Micros, &'a str, u32, u32);

/// `order` (positions in file order) sorted as `Pos` sorts. Accounts are indices: the
/// positions are first placed by account, by counting (an hour has a few rows an
/// account), and only each account's own rows are then sorted. Most rows of an account
/// and hour share their start time, so the order falls to the record ids: they are
/// compared by their first 16 bytes as one number, and in full only where those are
/// the same, with the start time as another number before them.
fn rating_order(order: Vec<Pos<'_>>) -> Vec<Pos<'_>> {
    let head = |s: &str| {
        let mut b = [0u8; 16];
        let n = s.len().min(16);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        u128::from_be_bytes(b)
    };
    // Where each account's positions start, and (last) where they all end.
    let accounts = order.iter().map(|p| p.0 as usize + 1).max().unwrap_or(0);
    let mut starts = vec![0u32; accounts + 1];
    for p in &order {
        starts[p.0 as usize + 1] += 1;
    }
    for a in 1..=accounts {
        starts[a] += starts[a - 1];
    }
    // The start time's sign bit flipped: signed order as unsigned.
    let mut keys: Vec<(u64, u128, u32)> = vec![(0, 0, 0); order.len()];
    let mut next = starts.clone();
    for (n, p) in order.iter().enumerate() {
        let at = &mut next[p.0 as usize];
        keys[*at as usize] = (p.1 as u64 ^ (1 << 63), head(p.2), n as u32);
        *at += 1;
    }
    // Positions are numbered in (run, row) order: the number breaks the last ties.
    for w in starts.windows(2) {
        keys[w[0] as usize..w[1] as usize]
            .sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| order[a.2 as usize].2.cmp(order[b.2 as usize].2)).then(a.2.cmp(&b.2)));
    }
    keys.iter().map(|k| order[k.2 as usize]).collect()
}

/// A usage chunk's dictionary columns resolved once a distinct value rather than once
/// a row: the index of each account key (`None`: not in accounts) and whether each SKU
/// key is in the catalog. A row whose column has no dictionary is looked up itself.
#[derive(Debug, Default)]
struct Keys {
    accounts: Option<Vec<Option<u32>>>,
    skus: Option<Vec<bool>>,
    /// The pay-per-use price keys of the SKU and region dictionaries' pairs.
    prices: Option<PriceKeys>,
    /// With a [`RowSelection`], the rows it rates.
    wanted: Option<Vec<bool>>,
}

/// The pay-per-use price key ([`Catalog::ppu_key`]) of each pair of a chunk's SKU and
/// region dictionary values, found once a chunk: a row is then priced by its keys
/// into the two dictionaries, without hashing its names.
#[derive(Debug)]
struct PriceKeys {
    regions: usize,
    /// By `sku × regions + region`; `None` for a pair with a null value.
    keys: Vec<Option<Option<u32>>>,
}

impl PriceKeys {
    /// Dictionaries of a few values each (a pair a price row at most): larger ones
    /// (`None`) are left to the lookup by name.
    fn of<E: Entries>(catalog: &Catalog, skus: &E, regions: &E) -> Option<PriceKeys> {
        if skus.len() * regions.len() > 1 << 16 {
            return None;
        }
        let keys = (0..skus.len())
            .flat_map(|s| (0..regions.len()).map(move |g| (s, g)))
            .map(|(s, g)| Some(catalog.ppu_key(skus.entry(s)?, regions.entry(g)?)))
            .collect();
        Some(PriceKeys { regions: regions.len(), keys })
    }

    /// The key of the pair at SKU key `sku` and region key `region` (`None`: not
    /// known here).
    fn get(&self, sku: usize, region: usize) -> Option<Option<u32>> {
        (region < self.regions).then(|| self.keys.get(sku * self.regions + region).copied().flatten()).flatten()
    }
}

impl Engine {
    /// Prepares the period. Accounts are ordered by id; each opens from `opening`
    /// where it has a closing state, else from its `opening_balance`.
    pub fn new(reference: Reference, period: Period, opening: &Opening) -> Result<Engine, String> {
        let Reference { prices, mut accounts, payments, packages, subscriptions } = reference;
        accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        let catalog = Catalog::new(prices)?;
        let account_index: FxHashMap<String, u32> = accounts.iter().enumerate().map(|(i, a)| (a.account_id.clone(), i as u32)).collect();
        let subs = {
            let by_id: FxHashMap<&str, &Account> = accounts.iter().map(|a| (a.account_id.as_str(), a)).collect();
            Subscriptions::new(subscriptions, &by_id, &catalog)
        };
        let mut pay_by_acct: Vec<Vec<(Micros, String, Dec)>> = vec![Vec::new(); accounts.len()];
        for p in payments {
            if let Some(&i) = account_index.get(&p.account_id) {
                pay_by_acct[i as usize].push((p.paid_at, p.payment_id, p.amount));
            }
        }
        let mut pkg_by_acct: Vec<Vec<u32>> = vec![Vec::new(); accounts.len()];
        for (i, p) in packages.iter().enumerate() {
            if let Some(&a) = account_index.get(&p.account_id) {
                pkg_by_acct[a as usize].push(i as u32);
            }
        }
        let carried_pkg = |i: u32| opening.packages.get(&packages[i as usize].package_id).copied();
        let books = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut pays = std::mem::take(&mut pay_by_acct[i]);
                pays.sort();
                let pays: Vec<(Micros, Dec)> = pays.into_iter().map(|(t, _, a)| (t, a)).collect();
                let book = PackageBook::open(&packages, &pkg_by_acct[i], period, &carried_pkg);
                AccountBook::open(i as u32, a, period, opening.accounts.get(&a.account_id), &pays, book)
                    .map_err(|overflow| AccountOverflow { account: a.account_id.clone(), overflow }.to_string())
            })
            .collect::<Result<_, String>>()?;
        let tally = vec![(0, Dec::ZERO); accounts.len()];
        Ok(Engine { period, accounts, packages, catalog, subs, account_index, books, tally })
    }

    /// Whether an account was in arrears at any time of the period so far, or opened
    /// with a negative balance.
    pub fn had_arrears(&self, account: u32) -> bool {
        self.books.get(account as usize).is_some_and(|b| b.had_arrears())
    }

    /// The state the rating has reached: every account's book and tally. Restored
    /// into an engine built from the same reference data and period, it continues
    /// exactly where this one stopped (the hourly run's checkpoint).
    pub fn snapshot(&self) -> Result<serde_json::Value, String> {
        let mut books = serde_json::to_value(&self.books).map_err(|e| e.to_string())?;
        if let Some(each) = books.as_array_mut() {
            for (v, b) in each.iter_mut().zip(&self.books) {
                let tiers = b.tiers_by_name(&self.catalog).map_err(|o| self.overflow(b.idx, o).to_string())?;
                v["tiers"] = serde_json::to_value(tiers).map_err(|e| e.to_string())?;
            }
        }
        let tally = serde_json::to_value(&self.tally).map_err(|e| e.to_string())?;
        Ok(serde_json::json!({ "books": books, "tally": tally }))
    }

    pub fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let mut books: Vec<AccountBook> = serde_json::from_value(state["books"].clone()).map_err(|e| e.to_string())?;
        for b in &mut books {
            b.key_tiers(&self.catalog).map_err(|o| self.overflow(b.idx, o).to_string())?;
        }
        let tally: Vec<(u64, Dec)> = serde_json::from_value(state["tally"].clone()).map_err(|e| e.to_string())?;
        if books.len() != self.books.len() || tally.len() != self.tally.len() {
            return Err("the checkpoint was taken with other accounts".into());
        }
        self.books = books;
        self.tally = tally;
        Ok(())
    }

    /// An account's overflow, named by the account's id.
    fn overflow(&self, account: u32, overflow: Overflow) -> AccountOverflow {
        let account = self.accounts.get(account as usize).map_or_else(|| format!("#{account}"), |a| a.account_id.clone());
        AccountOverflow { account, overflow }
    }

    pub fn account_index(&self, id: &str) -> Option<u32> {
        self.account_index.get(id).copied()
    }

    /// Rates and settles the hour that starts at `hour`. `chunks` hold the usage files
    /// of that hour's partition; `verdicts` the period's duplicate rejections.
    pub fn process_hour<C: Columns>(
        &mut self,
        hour: Micros,
        chunks: &[UsageBatch<C>],
        verdicts: &FxHashMap<FileRow, Rejection>,
    ) -> Result<HourResult, AccountOverflow> {
        self.process_hour_with(hour, chunks, verdicts, &HourOptions::default())
    }

    /// [`Engine::process_hour`], rating as `opts` says.
    pub fn process_hour_with<C: Columns>(
        &mut self,
        hour: Micros,
        chunks: &[UsageBatch<C>],
        verdicts: &FxHashMap<FileRow, Rejection>,
        opts: &HourOptions<'_>,
    ) -> Result<HourResult, AccountOverflow> {
        let mut result = HourResult { hour, rows_in: chunks.iter().map(|c| c.len as u64).sum(), ..HourResult::default() };
        let (runs, rejected) = self.check_rows(chunks, verdicts, opts);
        result.rejected = rejected;
        // The rating order, `(account, start_time, record_id)`, then file order; sorted
        // as positions (run, row in the run): the rows themselves stay where they are.
        let order: Vec<Pos<'_>> = runs
            .iter()
            .enumerate()
            .flat_map(|(k, run)| run.iter().enumerate().map(move |(i, (a, u))| (*a, u.start, u.record_id, k as u32, i as u32)))
            .collect();
        let order = rating_order(order);
        let work = account_work(&mut self.books, opts.unrated, &order);
        let ctx = Ctx { catalog: &self.catalog, subs: &self.subs, packages: &self.packages };
        let outs = rate_groups(work, &ctx, &runs, hour, opts.sequential);
        let n_rows = order.len() as u64;
        let rejected_later = self.gather(outs, &mut result, opts.keep_lines)?;
        result.rows_rated = n_rows - rejected_later;
        Ok(result)
    }

    /// The row checks of an hour's chunks, in parallel over runs of rows (unless
    /// sequential): the rows admitted, run by run, with the account each is rated for,
    /// and the rejections. Each run's rows and rejections are joined in file order, so
    /// the outcome is the sequential one.
    fn check_rows<'c, C: Columns>(
        &self,
        chunks: &'c [UsageBatch<C>],
        verdicts: &FxHashMap<FileRow, Rejection>,
        opts: &HourOptions<'_>,
    ) -> (Vec<Vec<(u32, Usage<'c>)>>, Vec<Rejected>) {
        const RUN: usize = 1024;
        let runs: Vec<(usize, usize, usize)> =
            chunks.iter().enumerate().flat_map(|(ci, c)| (0..c.len).step_by(RUN).map(move |r| (ci, r, (r + RUN).min(c.len)))).collect();
        let known: Vec<(Known, Keys)> = chunks.iter().map(|c| (Known::of(c, self.period), self.keys_of(c, opts.selection))).collect();
        let checked: Vec<(Vec<(u32, Usage<'c>)>, Vec<Rejected>)> = each(opts.sequential, runs, 1, |(ci, from, to)| {
            let c = &chunks[ci];
            let mut rows = Vec::with_capacity(to - from);
            let mut rejected = Vec::new();
            for r in from..to {
                if let Some((acct, u)) = self.admit(c, ci, r, &known[ci], verdicts, &mut rejected) {
                    rows.push((acct, u));
                }
            }
            (rows, rejected)
        });
        let mut runs = Vec::with_capacity(checked.len());
        let mut rejected = Vec::new();
        for (r, rej) in checked {
            runs.push(r);
            rejected.extend(rej);
        }
        (runs, rejected)
    }

    /// Joins the groups' outputs into the hour's result, in account order, counting
    /// each account's lines; returns how many rows the rating rejected.
    fn gather(&mut self, outs: Vec<GroupOut>, result: &mut HourResult, keep_lines: bool) -> Result<u64, AccountOverflow> {
        let mut rejected_later = 0u64;
        if keep_lines {
            result.lines.reserve(outs.iter().flatten().map(|o| o.0.lines.len()).sum());
        }
        for out in outs {
            let (o, settlements) = out.map_err(|(account, o)| self.overflow(account, o))?;
            rejected_later += o.rejected.len() as u64;
            self.count(&o.lines)?;
            if keep_lines {
                result.lines.extend(o.lines);
            }
            result.rejected.extend(o.rejected);
            result.alerts.extend(o.alerts);
            result.deductions.extend(o.deductions);
            result.settlements.extend(settlements);
        }
        Ok(rejected_later)
    }

    /// The row checks of one usage row: the account it is rated for and its fields,
    /// or its rejection (pushed to `rejected`). `None` without a rejection: a row of
    /// another account in a what-if run.
    fn admit<'c, C: Columns>(
        &self,
        c: &'c UsageBatch<C>,
        ci: usize,
        r: usize,
        (known, keys): &(Known, Keys),
        verdicts: &FxHashMap<FileRow, Rejection>,
        rejected: &mut Vec<Rejected>,
    ) -> Option<(u32, Usage<'c>)> {
        // The account's index, by the row's dictionary key when it has one.
        let account = |id: &str| match c.account_id.key(r).and_then(|k| keys.accounts.as_ref()?.get(k)) {
            Some(&a) => a,
            None => self.account_index.get(id).copied(),
        };
        // A what-if run: rows of other accounts are skipped before any check; in a
        // partial one, the rows a purchase cannot change too.
        if keys.wanted.as_ref().is_some_and(|w| !w[r]) {
            return None;
        }
        let loc = RowLoc { chunk: ci as u32, row: r as u32 };
        let u = match check_row_known(c, loc, self.period, known) {
            Ok(u) => u,
            Err(why) => {
                rejected.push(Rejected { loc, why });
                return None;
            }
        };
        if let Some(why) = verdicts.get(&(c.file, c.file_row(r))) {
            rejected.push(Rejected { loc, why: why.clone() });
            return None;
        }
        let Some(acct) = account(u.account_id) else {
            rejected.push(Rejected { loc, why: Rejection::new(Reason::UnknownAccount, format!("account '{}' is not in accounts", u.account_id)) });
            return None;
        };
        let sku_known = match c.sku.key(r).and_then(|k| keys.skus.as_ref()?.get(k)) {
            Some(&known) => known,
            None => self.catalog.knows_sku(u.sku),
        };
        if !sku_known {
            rejected.push(Rejected { loc, why: Rejection::new(Reason::UnknownSku, format!("SKU '{}' is nowhere in the catalog", u.sku)) });
            return None;
        }
        let mut u = u;
        if let (Some(s), Some(g), Some(prices)) = (c.sku.key(r), c.region.key(r), &keys.prices) {
            u.ppu_key = prices.get(s, g);
        }
        Some((acct, u))
    }

    /// A chunk's account and SKU dictionaries resolved once each (see [`Keys`]).
    fn keys_of<C: Columns>(&self, c: &UsageBatch<C>, selection: Option<&RowSelection>) -> Keys {
        let wanted = selection.and_then(|s| s.wanted(self, c));
        Keys {
            accounts: c.account_id.dictionary().map(|d| (0..d.len()).map(|k| d.entry(k).and_then(|v| self.account_index.get(v).copied())).collect()),
            skus: c.sku.dictionary().map(|d| (0..d.len()).map(|k| d.entry(k).is_some_and(|v| self.catalog.knows_sku(v))).collect()),
            prices: c.sku.dictionary().zip(c.region.dictionary()).and_then(|(skus, regions)| PriceKeys::of(&self.catalog, skus, regions)),
            wanted,
        }
    }

    fn count(&mut self, lines: &[Line]) -> Result<(), AccountOverflow> {
        for l in lines {
            let t = &mut self.tally[l.account as usize];
            t.0 += 1;
            match t.1.plus(l.billed, "invoice's billed cost") {
                Ok(sum) => t.1 = sum,
                Err(o) => return Err(self.overflow(l.account, o)),
            }
        }
        Ok(())
    }

    /// Closes the period: purchases, lapsed quota, unused subscription time, the
    /// package ledger, invoices, the arrears timeline and the next period's opening.
    pub fn finish(&mut self) -> Result<PeriodResult, AccountOverflow> {
        let mut res = PeriodResult::default();
        let mut purchases = vec![Dec::ZERO; self.accounts.len()];
        self.package_purchases(&mut res, &mut purchases)?;
        self.package_lapses(&mut res)?;
        self.subscription_orders(&mut res, &mut purchases)?;
        let period_lines = std::mem::take(&mut res.lines);
        self.count(&period_lines)?;
        res.lines = period_lines;
        self.invoices(&mut res, &purchases)?;
        Ok(res)
    }

    /// The `Purchase` line of each package bought in the period.
    fn package_purchases(&self, res: &mut PeriodResult, purchases: &mut [Dec]) -> Result<(), AccountOverflow> {
        for (i, p) in self.packages.iter().enumerate() {
            let Some(&acct) = self.account_index.get(&p.account_id) else { continue };
            if self.period.contains(p.purchased_at) {
                let line = purchases::package_purchase(acct, i as u32, p, &self.catalog).map_err(|o| self.overflow(acct, o))?;
                purchases[acct as usize] = purchases[acct as usize].plus(p.price, "purchase charges").map_err(|o| self.overflow(acct, o))?;
                res.lines.push(line);
            }
        }
        Ok(())
    }

    /// Each package's ledger row, the `Unused` line of the quota that lapses at the
    /// close, and the quota the next period opens with.
    fn package_lapses(&mut self, res: &mut PeriodResult) -> Result<(), AccountOverflow> {
        let period = self.period;
        let mut failed = None;
        'books: for b in &mut self.books {
            for s in &mut b.packages.states {
                let p = &self.packages[s.idx as usize];
                let lapsed = if packages::lapses_at_close(p, period) { s.remaining } else { Qty::ZERO };
                let closing = match s.remaining.minus(lapsed, "package quota") {
                    Ok(c) => c,
                    Err(o) => {
                        failed = Some((b.idx, o));
                        break 'books;
                    }
                };
                let shown = match packages::ledger_shown(s.opening, lapsed, closing) {
                    Ok(shown) => shown,
                    Err(o) => {
                        failed = Some((b.idx, o));
                        break 'books;
                    }
                };
                res.ledger.push(LedgerRow { package: s.idx, account: b.idx, opening: s.opening, used: s.used, lapsed, closing, shown });
                if !lapsed.is_zero() {
                    match purchases::package_lapse(b.idx, s.idx, p, lapsed, period, &self.catalog) {
                        Ok(l) => res.lines.push(l),
                        Err(o) => {
                            failed = Some((b.idx, o));
                            break 'books;
                        }
                    }
                }
                s.remaining = closing;
                res.closing.packages.insert(p.package_id.clone(), (closing, s.alerted));
            }
        }
        match failed {
            Some((acct, o)) => Err(self.overflow(acct, o)),
            None => Ok(()),
        }
    }

    /// Subscriptions: the purchase lines and rejected orders of the period, and the
    /// `Unused` line of each valid subscription's uncovered time.
    fn subscription_orders(&mut self, res: &mut PeriodResult, purchases: &mut [Dec]) -> Result<(), AccountOverflow> {
        let period = self.period;
        for (i, s) in self.subs.subs.iter().enumerate() {
            let acct = self.account_index.get(&s.account_id).copied();
            match (&self.subs.orders[i], acct) {
                (Order::Rejected(why), _) => {
                    if period.contains(s.ordered_at) {
                        res.rejected_orders.push(RejectedOrder { subscription: i as u32, why: why.clone() });
                    }
                }
                (Order::Valid { price, price_row }, Some(acct)) => {
                    let accounts = &self.accounts;
                    let overflow = |overflow| AccountOverflow { account: accounts[acct as usize].account_id.clone(), overflow };
                    if period.contains(s.ordered_at) {
                        res.lines.push(purchases::subscription_purchase(acct, i as u32, s, *price, *price_row, &self.catalog).map_err(overflow)?);
                        purchases[acct as usize] = purchases[acct as usize].plus(*price, "purchase charges").map_err(overflow)?;
                    }
                    let mut covered = self.books[acct as usize].sub_covered.remove(&(i as u32)).unwrap_or_default();
                    if let Some(l) = purchases::subscription_unused(acct, i as u32, &self.subs, &mut covered, period).map_err(overflow)? {
                        res.lines.push(l);
                    }
                }
                (Order::Valid { .. }, None) => {}
            }
        }
        Ok(())
    }

    /// Each account's invoice and arrears timeline, and the state it opens the next
    /// period with.
    fn invoices(&mut self, res: &mut PeriodResult, purchases: &[Dec]) -> Result<(), AccountOverflow> {
        let period = self.period;
        let mut failed = None;
        for (i, b) in self.books.iter_mut().enumerate() {
            let closed = b.close(period).and_then(|status| Ok((status, invoice::invoice(b, period, purchases[i], self.tally[i])?)));
            match closed {
                Ok((status, inv)) => {
                    res.status.extend(status);
                    res.invoices.push(inv);
                    res.closing.accounts.insert(self.accounts[i].account_id.clone(), b.opening_for_next());
                }
                Err(o) => {
                    failed = Some((i as u32, o));
                    break;
                }
            }
        }
        match failed {
            Some((acct, o)) => Err(self.overflow(acct, o)),
            None => Ok(()),
        }
    }
}

/// Rows (and accounts) in a group of accounts rated into one output.
const GROUP_ROWS: usize = 512;

/// One account's work in an hour: its book, its rows' positions in the rating order,
/// and (in a partial what-if run) the sum of its rows not rated here.
type Work<'b, 'o, 'c> = (&'b mut AccountBook, &'o [Pos<'c>], Option<Dec>);

/// What a group of accounts produced in an hour, or the first overflow of one of them.
type GroupOut = Result<(HourOut, Vec<Settlement>), (u32, Overflow)>;

/// Pairs each account that has rows (or, in a partial what-if run, a sum of rows not
/// rated here) with its book and its positions. `books` and `unrated` are in account
/// order, as `order` is.
fn account_work<'b, 'o, 'c>(books: &'b mut [AccountBook], unrated: &[(u32, Dec)], order: &'o [Pos<'c>]) -> Vec<Work<'b, 'o, 'c>> {
    let mut accts: Vec<u32> = order.iter().map(|o| o.0).collect();
    accts.dedup();
    if !unrated.is_empty() {
        accts.extend(unrated.iter().map(|u| u.0));
        accts.sort_unstable();
        accts.dedup();
    }
    let mut work = Vec::with_capacity(accts.len());
    let mut rest: &[Pos<'c>] = order;
    let mut books = books.iter_mut();
    let mut unrated = unrated.iter().peekable();
    for acct in accts {
        while unrated.next_if(|u| u.0 < acct).is_some() {}
        let sum = unrated.next_if(|u| u.0 == acct).map(|u| u.1);
        let n = rest.iter().take_while(|o| o.0 == acct).count();
        let (mine, tail) = rest.split_at(n);
        let book = books.by_ref().find(|b| b.idx == acct).expect("books are in account order");
        work.push((book, mine, sum));
        rest = tail;
    }
    work
}

/// Rates and settles the accounts of an hour, in groups of consecutive accounts, in
/// parallel (unless sequential), each group into one output: its lines in one vector,
/// sized up front (a few rows an account would otherwise cost a small vector each,
/// grown and then copied). Outputs come back in account order.
fn rate_groups(work: Vec<Work<'_, '_, '_>>, ctx: &Ctx<'_>, runs: &[Vec<(u32, Usage<'_>)>], hour: Micros, sequential: bool) -> Vec<GroupOut> {
    let mut groups: Vec<Vec<Work<'_, '_, '_>>> = Vec::new();
    let mut rows_in_group = usize::MAX;
    for w in work {
        if rows_in_group >= GROUP_ROWS {
            groups.push(Vec::new());
            rows_in_group = 0;
        }
        rows_in_group += w.1.len() + 1;
        groups.last_mut().expect("a group is open").push(w);
    }
    each(sequential, groups, 1, |group| {
        let mut out = HourOut::default();
        // A line a row, and an adjustment an account at most (more only with
        // packages or subscriptions, which grow the vector).
        out.lines.reserve(group.iter().map(|(_, mine, _)| mine.len() + 1).sum());
        let mut settlements = Vec::with_capacity(group.len());
        for (book, mine, unrated) in group {
            let account = book.idx;
            let mut rate = || -> Result<(), Overflow> {
                for &(.., k, i) in mine {
                    book.rate(&runs[k as usize][i as usize].1, ctx, &mut out)?;
                }
                if let Some(sum) = unrated {
                    book.add_unrated(sum)?;
                }
                book.settle(hour, &mut out)
            };
            rate().map_err(|o| (account, o))?;
            settlements.extend(out.settlement.take());
        }
        Ok((out, settlements))
    })
}

/// `f` over `items`, in order: on the thread pool (in runs of at least `min_len`), or
/// on the calling thread.
fn each<T: Send, R: Send>(sequential: bool, items: Vec<T>, min_len: usize, f: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    match sequential {
        true => items.into_iter().map(f).collect(),
        false => items.into_par_iter().with_min_len(min_len).map(f).collect(),
    }
}

/// Package quotas are in the pricing unit of their SKU (billing-rules §3).
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A chunk's price keys are the catalog's keys of each pair of its SKU and region
    /// dictionaries' values, in any order, with nulls and pairs the catalog lacks.
    #[test]
    fn price_keys_are_the_catalogs_by_dictionary_entry() {
        use crate::rules::pricing::test_ppu_row as row;
        /// A dictionary of owned values.
        struct Dict(Vec<Option<String>>);
        impl Entries for Dict {
            fn len(&self) -> usize {
                self.0.len()
            }
            fn entry(&self, k: usize) -> Option<&str> {
                self.0.get(k)?.as_deref()
            }
        }
        let dict = |v: &[Option<&str>]| Dict(v.iter().map(|s| s.map(str::to_string)).collect());
        let catalog = Catalog::new(vec![row("s0", "r0"), row("s1", "r1"), row("s2", "r0"), row("s2", "r2")]).unwrap();
        let skus = dict(&[Some("s2"), None, Some("s0"), Some("s9"), Some("s1")]);
        let regions = dict(&[Some("r2"), Some("r0"), None, Some("r1")]);
        let p = PriceKeys::of(&catalog, &skus, &regions).unwrap();
        let mut found = 0;
        for s in 0..skus.len() {
            for g in 0..regions.len() {
                let want = skus.entry(s).zip(regions.entry(g)).map(|(s, g)| catalog.ppu_key(s, g));
                assert_eq!(p.get(s, g), want, "SKU entry {s}, region entry {g}");
                found += usize::from(matches!(want, Some(Some(_))));
            }
        }
        assert_eq!(found, 4, "every price pair is found once");
        assert_eq!(p.get(0, regions.len()), None, "a region key past the dictionary is not known here");
        // Dictionaries too large to pair up are left to the lookup by name.
        let many = Dict((0..300).map(|i| Some(format!("x{i}"))).collect());
        assert!(PriceKeys::of(&catalog, &many, &many).is_none());
    }

    proptest! {
        /// The rating order by number keys is the order of the positions themselves:
        /// record ids that share 16 bytes or more, that end inside them, or that hold
        /// NUL bytes (a shorter id padded reads as the same number), and start times
        /// either side of the epoch.
        #[test]
        fn rating_order_is_the_positions_order(
            rows in proptest::collection::vec((prop_oneof![0u32..4, 0u32..300], prop_oneof![Just(-1i64), Just(0i64), Just(3_600_000_000i64), any::<i64>()],
                "(res-0000-000-nb-disk-49|res-0000-000-nb|ab\\x00?|ab|)[a-c\\x00]{0,3}"), 0..200)
        ) {
            // Positions as the engine numbers them: runs of rows in order, rows in a run.
            let order: Vec<Pos<'_>> = rows.iter().enumerate().map(|(n, (a, t, id))| (*a, *t, id.as_str(), n as u32 / 7, n as u32 % 7)).collect();
            let mut plain = order.clone();
            plain.sort_unstable();
            prop_assert_eq!(rating_order(order), plain);
        }
    }
}
