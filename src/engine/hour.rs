//! One hour of the fold: the row checks, the rating order, and the accounts rated
//! and settled in parallel, in blocks of whole accounts handed on one after another.

use super::order::{rating_order, Keys, Pos, PriceKeys};
use super::selection::{HourOptions, RowSelection};
use super::{AccountOverflow, Engine, HourResult};
use crate::decimal::{Dec, Overflow};
use crate::model::Reason;
use crate::rules::account::{AccountBook, Ctx, HourOut};
use crate::rules::batch::{Columns, Entries, TextColumn, UsageBatch};
use crate::rules::checks::{check_row_known, Known, Rejection, RowLoc, Usage};
use crate::rules::dedup::FileRow;
use crate::rules::records::*;
use crate::time::Micros;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

impl Engine {
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
        let mut whole = None;
        self.process_hour_in_blocks(hour, chunks, verdicts, &HourOptions { block_rows: None, ..*opts }, |_, block| {
            whole = Some(block);
            Ok::<(), AccountOverflow>(())
        })?;
        Ok(whole.expect("an hour is at least one block"))
    }

    /// [`Engine::process_hour_with`], the hour's accounts rated in blocks of whole
    /// accounts of about `opts.block_rows` rows each, in account order, each block's
    /// result handed to `each` before the next block is rated: what an hour holds in
    /// lines then does not grow with the month. The first block's result also holds
    /// the row checks' rejections; each block counts in `rows_in` the rows it accounts
    /// for (the first also those the checks rejected), so that in every block
    /// `rows_rated + rejected = rows_in`. The blocks' results, one after another, are
    /// the hour's result as one block gives it.
    pub fn process_hour_in_blocks<C: Columns, E: From<AccountOverflow>>(
        &mut self,
        hour: Micros,
        chunks: &[UsageBatch<C>],
        verdicts: &FxHashMap<FileRow, Rejection>,
        opts: &HourOptions<'_>,
        mut each: impl FnMut(&Engine, HourResult) -> Result<(), E>,
    ) -> Result<(), E> {
        let rows_in: u64 = chunks.iter().map(|c| c.len as u64).sum();
        let (runs, rejected) = self.check_rows(chunks, verdicts, opts);
        // The rating order, `(account, start_time, record_id)`, then file order; sorted
        // as positions (run, row in the run): the rows themselves stay where they are.
        let order: Vec<Pos<'_>> = runs
            .iter()
            .enumerate()
            .flat_map(|(k, run)| run.iter().enumerate().map(move |(i, (a, u))| (*a, u.start, u.record_id, k as u32, i as u32)))
            .collect();
        let order = rating_order(order);
        // A partial what-if run adds sums to accounts without rows: one block.
        let block_rows = opts.block_rows.filter(|_| opts.unrated.is_empty()).unwrap_or(usize::MAX);
        let mut block = HourResult { hour, rows_in: rows_in - order.len() as u64, rejected_by_checks: rejected.len(), rejected, ..HourResult::default() };
        let mut rest: &[Pos<'_>] = &order;
        loop {
            let (mine, tail) = rest.split_at(block_end(rest, block_rows));
            let work = account_work(&mut self.books, opts.unrated, mine);
            let ctx = Ctx { catalog: &self.catalog, subs: &self.subs, packages: &self.packages };
            let outs = rate_groups(work, &ctx, &runs, hour, opts.sequential);
            let rejected_later = self.gather(outs, &mut block, opts.keep_lines)?;
            block.rows_in += mine.len() as u64;
            block.rows_rated = mine.len() as u64 - rejected_later;
            rest = tail;
            block.ends_hour = rest.is_empty();
            let next = HourResult { hour, ..HourResult::default() };
            each(self, std::mem::replace(&mut block, next))?;
            if rest.is_empty() {
                return Ok(());
            }
        }
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

    pub(super) fn count(&mut self, lines: &[Line]) -> Result<(), AccountOverflow> {
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

/// Where the block that starts `order` ends: after `rows` rows, or later at the end of
/// the account the rows reach into (an account is rated in one block), or at the end.
fn block_end(order: &[Pos<'_>], rows: usize) -> usize {
    if rows >= order.len() {
        return order.len();
    }
    let last = order[rows.max(1) - 1].0;
    rows.max(1) + order[rows.max(1)..].iter().take_while(|o| o.0 == last).count()
}
