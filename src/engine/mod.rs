//! The bill run of one period as a fold over its hours: the pure core, with no object
//! store, clock or command line inside. The job feeds it each hour's decoded usage (in
//! time order) and the period's duplicate verdicts; it returns what each hour produced
//! and, at the close, the period's invoices, ledgers and the state the next period
//! opens from. Accounts are rated in parallel within an hour; their results are
//! concatenated in account order, so the output does not depend on the thread count.

#![deny(clippy::float_arithmetic)]

use crate::decimal::{Dec, Overflow, Qty};
use crate::model::{Account, Package, Reference};
use crate::rules::account::{AccountBook, AccountOpening};
use crate::rules::checks::Rejection;
pub use crate::rules::invoice::Invoice;
use crate::rules::packages::{self, PackageBook};
use crate::rules::pricing::Catalog;
use crate::rules::records::*;
use crate::rules::subscriptions::{Order, Subscriptions};
use crate::rules::{invoice, purchases};
use crate::time::{Micros, Period};
use rustc_hash::FxHashMap;

mod hour;
mod order;
mod selection;

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
    /// The hour's last block of accounts ([`Engine::process_hour_in_blocks`]); true
    /// for a whole hour.
    pub ends_hour: bool,
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
