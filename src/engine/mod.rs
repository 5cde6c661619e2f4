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
use crate::rules::batch::{Columns, Entries, TextColumn, UsageBatch};
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

mod order;
mod selection;

use order::{rating_order, Keys, Pos, PriceKeys};
pub use selection::{select_rows, HourOptions, RowFilter, RowSelection, Select};

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
    /// How many of `rejected` the row checks rejected (in file order); the rest the
    /// rating rejected (in account order).
    pub rejected_by_checks: usize,
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

impl Engine {
    /// Prepares the period. Accounts are ordered by id; each opens from `opening`
    /// where it has a closing state, else from its `opening_balance`.
    pub fn new(reference: Reference, period: Period, opening: &Opening) -> Result<Engine, String> {
        Engine::of_accounts(reference, period, opening, |_| true)
    }

    /// [`Engine::new`] for the accounts whose id `owns` (a shard of the period): their
    /// packages, subscriptions and payments, and the rows of the others rejected as
    /// unknown only if no shard owns them — the caller hands each shard its own rows.
    /// Subscription orders are judged against every subscription and account first
    /// (a renewal may name an order of another shard), then kept where `owns` says.
    /// Everything kept stays in the order of the whole engine.
    pub fn of_accounts(reference: Reference, period: Period, opening: &Opening, owns: impl Fn(&str) -> bool) -> Result<Engine, String> {
        let Reference { prices, mut accounts, payments, mut packages, subscriptions } = reference;
        accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        let catalog = Catalog::new(prices)?;
        let mut subs = {
            let by_id: FxHashMap<&str, &Account> = accounts.iter().map(|a| (a.account_id.as_str(), a)).collect();
            Subscriptions::new(subscriptions, &by_id, &catalog)
        };
        subs.retain(|s| owns(&s.account_id));
        accounts.retain(|a| owns(&a.account_id));
        packages.retain(|p| owns(&p.account_id));
        let account_index: FxHashMap<String, u32> = accounts.iter().enumerate().map(|(i, a)| (a.account_id.clone(), i as u32)).collect();
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
        result.rejected_by_checks = rejected.len();
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
