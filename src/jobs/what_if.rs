//! The what-if re-rating behind purchase recommendations: the period rated again,
//! for the accounts concerned only, with each account's best candidate purchase
//! added to the inventory. It drives the engine from outside — restricting it to
//! accounts or rows, feeding it the rest of each hour's sum — and decides nothing
//! the engine decides.

use super::close::{rate_hours, Usage};
use super::JobError;
use crate::decimal::Dec;
use crate::engine::{Engine, HourOptions, Opening, RowSelection};
use crate::lake::inputs::{self, UsageChunk};
use crate::rules::dedup::FileRow;
use crate::time::Micros;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::time::Instant;

/// Each account's pay-per-use sum of every hour it was settled, as the period's
/// rating found them: what a partial what-if run adds for the rows it does not rate.
/// Kept hour by hour, each hour's in account order, as the what-if run reads them:
/// in memory, or — for a close given a spill directory — in a file of its own, 20
/// bytes an account-hour, read back an hour at a time (a large region's month is
/// hundreds of MB of them).
pub(crate) struct HourSums {
    /// Per hour: the accounts settled, ascending, and their sums.
    hours: BTreeMap<Micros, (Vec<u32>, Vec<Dec>)>,
    /// The file the hours go to, and per hour where its records lie in it.
    spilled: Option<Spilled>,
}

struct Spilled {
    /// The spill directory, for errors: the file itself has no name there.
    dir: std::path::PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    at: u64,
    index: BTreeMap<Micros, Vec<(u64, usize)>>,
}

/// Bytes of a spilled account-hour: the account, then the sum.
const RECORD: usize = 20;

impl HourSums {
    /// Hour sums held in memory, or spilled to a file under `spill`.
    pub(crate) fn new(spill: Option<&std::path::Path>) -> Result<HourSums, JobError> {
        let spilled = match spill {
            None => None,
            Some(dir) => {
                // Nameless (O_TMPFILE where the system has it): the system frees it when
                // the close ends, however it ends, a killed run's included.
                let file = tempfile::tempfile_in(dir).map_err(|e| spill_err(dir, e))?;
                Some(Spilled { dir: dir.to_path_buf(), file: std::io::BufWriter::with_capacity(1 << 20, file), at: 0, index: BTreeMap::new() })
            }
        };
        Ok(HourSums { hours: BTreeMap::new(), spilled })
    }

    pub(crate) fn record(&mut self, settlements: &[crate::rules::records::Settlement]) -> Result<(), JobError> {
        let mut by_hour: BTreeMap<Micros, Vec<(u32, Dec)>> = BTreeMap::new();
        for s in settlements {
            by_hour.entry(s.hour_start).or_default().push((s.account, s.line_amount));
        }
        for (hour, mut both) in by_hour {
            // An hour's settlements come in account order; kept so if they did not.
            if !both.is_sorted_by_key(|x| x.0) {
                both.sort_by_key(|x| x.0);
            }
            match &mut self.spilled {
                Some(sp) => {
                    use std::io::Write;
                    for (a, d) in &both {
                        let mut rec = [0u8; RECORD];
                        rec[..4].copy_from_slice(&a.to_le_bytes());
                        rec[4..].copy_from_slice(&d.0.to_le_bytes());
                        sp.file.write_all(&rec).map_err(|e| spill_err(&sp.dir, e))?;
                    }
                    sp.index.entry(hour).or_default().push((sp.at, both.len()));
                    sp.at += (both.len() * RECORD) as u64;
                }
                None => {
                    let (accounts, sums) = self.hours.entry(hour).or_default();
                    accounts.extend(both.iter().map(|x| x.0));
                    sums.extend(both.iter().map(|x| x.1));
                    if !accounts.is_sorted() {
                        let mut again: Vec<(u32, Dec)> = accounts.iter().copied().zip(sums.iter().copied()).collect();
                        again.sort_by_key(|x| x.0);
                        (*accounts, *sums) = again.into_iter().unzip();
                    }
                }
            }
        }
        Ok(())
    }

    /// The hour's accounts and sums, in account order.
    fn of(&mut self, hour: Micros) -> Result<(Vec<u32>, Vec<Dec>), JobError> {
        let Some(sp) = &mut self.spilled else {
            return Ok(self.hours.get(&hour).map_or_else(Default::default, |(a, s)| (a.clone(), s.clone())));
        };
        use std::io::Write;
        use std::os::unix::fs::FileExt;
        sp.file.flush().map_err(|e| spill_err(&sp.dir, e))?;
        let mut both: Vec<(u32, Dec)> = Vec::new();
        for &(at, n) in sp.index.get(&hour).map(Vec::as_slice).unwrap_or(&[]) {
            let mut bytes = vec![0u8; n * RECORD];
            sp.file.get_ref().read_exact_at(&mut bytes, at).map_err(|e| spill_err(&sp.dir, e))?;
            both.extend(bytes.chunks_exact(RECORD).map(|r| {
                let a = u32::from_le_bytes(r[..4].try_into().expect("4 bytes"));
                let d = i128::from_le_bytes(r[4..].try_into().expect("16 bytes"));
                (a, Dec(d))
            }));
        }
        if !both.is_sorted_by_key(|x| x.0) {
            both.sort_by_key(|x| x.0);
        }
        Ok(both.into_iter().unzip())
    }
}

fn spill_err(dir: &std::path::Path, e: std::io::Error) -> JobError {
    JobError::Plan(format!("the hour sums' spill file in {}: {e} (set [run] spill_dir to a folder with room)", dir.display()))
}

/// Per account of `wanted` (ascending), the part of the hour's sum `all` that `part`
/// (the rated rows' sums) leaves: what a partial what-if run adds for the rows it does
/// not rate. An account with a part but no whole (an hour the period's rating did not
/// settle it) goes to `astray`. All three lists are in account order.
fn unrated_sums(
    wanted: &[u32],
    (accounts, sums): (&[u32], &[Dec]),
    part: &[(u32, Dec)],
    astray: &mut rustc_hash::FxHashSet<u32>,
) -> Result<Vec<(u32, Dec)>, crate::decimal::Overflow> {
    let (mut all, mut part) = (accounts.iter().copied().zip(sums.iter().copied()).peekable(), part.iter().copied().peekable());
    let mut out = Vec::with_capacity(wanted.len());
    for &a in wanted {
        while all.next_if(|x| x.0 < a).is_some() {}
        while part.next_if(|x| x.0 < a).is_some() {}
        let whole = all.next_if(|x| x.0 == a).map(|x| x.1);
        let rated = part.next_if(|x| x.0 == a).map(|x| x.1);
        match (whole, rated) {
            (Some(whole), rated) => out.push((a, whole.minus(rated.unwrap_or(Dec::ZERO), "hour's pay-per-use amount")?)),
            (None, Some(_)) => {
                astray.insert(a);
            }
            (None, None) => {}
        }
    }
    Ok(out)
}

/// The period's recommendations. Purchases are verified by re-rating: the period is
/// rated again, for the accounts concerned only, with each account's best candidate
/// purchase added to the inventory; the saving is the difference of `total_due`.
///
/// An account that was never in arrears is re-rated in part: only the rows its
/// purchase can change (its SKU and region, its resource) are rated, once without and
/// once with the purchase, and each hour is settled with the rest of the hour's sum as
/// the period's rating found it. While the balance stays positive the hour's sums are
/// all the settlement depends on, so `total_due` is the one a whole re-rating gives;
/// an account that would fall into arrears with the purchase is re-rated whole.
pub(crate) struct WhatIf<'a> {
    /// The period's engine, rated and finished.
    pub engine: &'a Engine,
    /// What the period's close produced.
    pub period: &'a crate::engine::PeriodResult,
    pub cost: &'a crate::cost::CostBook,
    pub offers: &'a [crate::cost::recommend::Offer],
    /// The reference data the period was rated with, and the state it opened from.
    pub reference: &'a inputs::Reference,
    pub opening: &'a Opening,
    /// The shard the period's engine holds (the re-rating's engines hold the same).
    pub shard: Option<crate::shard::Shard>,
}

impl WhatIf<'_> {
    /// An engine of `reference` for the period's accounts.
    fn engine(&self, reference: inputs::Reference) -> Result<Engine, JobError> {
        let shard = self.shard;
        Engine::of_accounts(reference, self.engine.period, self.opening, |id| shard.is_none_or(|s| s.owns(Some(id)))).map_err(JobError::Plan)
    }
}

impl WhatIf<'_> {
    pub(crate) fn recommend(
        &self,
        usage: &mut Usage<'_>,
        hours: &BTreeMap<Micros, Vec<u32>>,
        verdicts: &FxHashMap<FileRow, crate::rules::checks::Rejection>,
        hour_sums: &mut HourSums,
    ) -> Result<Vec<crate::cost::recommend::Recommendation>, JobError> {
        recommend(self, usage, hours, verdicts, hour_sums)
    }
}

fn recommend(
    w: &WhatIf<'_>,
    usage: &mut Usage<'_>,
    hours: &BTreeMap<Micros, Vec<u32>>,
    verdicts: &FxHashMap<FileRow, crate::rules::checks::Rejection>,
    hour_sums: &mut HourSums,
) -> Result<Vec<crate::cost::recommend::Recommendation>, JobError> {
    use crate::cost::recommend::{self as rec, Purchase};
    use crate::engine::RowFilter;
    let WhatIf { engine, period: res, cost, offers, reference, .. } = *w;
    let period = engine.period;
    let candidates = rec::purchase_candidates(cost, &engine.accounts, &engine.catalog, offers, period)?;
    let mut out = Vec::new();
    if !candidates.is_empty() {
        let mut with = reference.clone();
        let mut partial: Vec<(String, RowFilter)> = Vec::new();
        let mut whole: Vec<String> = Vec::new();
        for c in &candidates {
            let id = engine.accounts[c.account as usize].account_id.clone();
            let filter = match &c.purchase {
                Some(Purchase::Subscription(s)) => {
                    with.subscriptions.push(s.clone());
                    Some(RowFilter { sku: s.sku.clone(), region: s.region.clone(), resource: Some(s.resource_id.clone()) })
                }
                Some(Purchase::Package(p)) => {
                    with.packages.push(p.clone());
                    Some(RowFilter { sku: p.sku.clone(), region: p.region.clone(), resource: None })
                }
                None => None,
            };
            match filter {
                Some(f) if !engine.had_arrears(c.account) && !usage.whole_what_if => partial.push((id, f)),
                _ => whole.push(id),
            }
        }
        let mut alternative: FxHashMap<u32, Dec> = FxHashMap::default();
        if !partial.is_empty() {
            let mut without = w.engine(reference.clone())?;
            let mut what_if = w.engine(with.clone())?;
            // Only the rows a purchase can change, each rating on its own thread (the
            // two run side by side), keeping no lines: the settlements and the books
            // are all that is read.
            let (rows_without, rows_with) = (RowSelection::rows(&without, &partial), RowSelection::rows(&what_if, &partial));
            let opts_without = HourOptions { selection: Some(&rows_without), sequential: true, keep_lines: false, ..HourOptions::default() };
            let mut idx: Vec<u32> = partial.iter().filter_map(|(a, _)| engine.account_index(a)).collect();
            idx.sort_unstable();
            idx.dedup();
            let mut astray: rustc_hash::FxHashSet<u32> = Default::default();
            usage.only = Some(partial.iter().map(|(a, f)| (a.clone(), Some(f.clone()))).collect());
            // The rating with the purchase runs behind the one without (up to 8 hours),
            // on a thread of its own: it needs each hour's sums of the rows not rated.
            let t0 = Instant::now();
            let mut rerated = 0u64;
            let rated = std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<(Micros, Vec<(u32, Dec)>, Vec<UsageChunk>)>(8);
                let what_if = &mut what_if;
                let rows_with = &rows_with;
                let with_purchase = scope.spawn(move || {
                    for (hour, unrated, chunks) in rx {
                        let opts = HourOptions { selection: Some(rows_with), unrated: &unrated, sequential: true, keep_lines: false, block_rows: None };
                        what_if.process_hour_with(hour, &chunks, verdicts, &opts)?;
                    }
                    Ok::<(), JobError>(())
                });
                let rated = rate_hours(usage, hours, &mut without, verdicts, &opts_without, |_, res, chunks| {
                    let mut part: Vec<(u32, Dec)> = res.settlements.iter().map(|s| (s.account, s.line_amount)).collect();
                    if !part.is_sorted_by_key(|x| x.0) {
                        part.sort_by_key(|x| x.0);
                    }
                    let (accounts, sums) = hour_sums.of(res.hour)?;
                    let unrated = unrated_sums(&idx, (&accounts, &sums), &part, &mut astray)?;
                    rerated += chunks.iter().map(|c| c.len as u64).sum::<u64>();
                    tx.send((res.hour, unrated, chunks.to_vec())).map_err(|_| JobError::Bug("the what-if rating stopped".into()))
                });
                drop(tx);
                with_purchase.join().map_err(|_| JobError::Bug("the what-if rating panicked".into()))??;
                rated
            });
            usage.only = None;
            tracing::info!(accounts = idx.len(), rows = rerated, secs = t0.elapsed().as_secs_f64(), "purchases re-rated in part");
            rated?;
            // Re-rated whole instead: an hour's sum the period's rating did not have, or
            // arrears on either side (the hours' sums are then not all that counts).
            astray.extend(idx.iter().copied().filter(|&a| what_if.had_arrears(a) || without.had_arrears(a)));
            let alt = what_if.finish()?;
            for &a in &idx {
                if astray.contains(&a) {
                    whole.push(engine.accounts[a as usize].account_id.clone());
                } else {
                    alternative.insert(a, alt.invoices[a as usize].total_due);
                }
            }
        }
        if !whole.is_empty() {
            let mut what_if = w.engine(with)?;
            let accounts = RowSelection::accounts(&what_if, &whole);
            let opts = HourOptions { selection: Some(&accounts), keep_lines: false, ..HourOptions::default() };
            usage.only = Some(whole.iter().map(|a| (a.clone(), None)).collect());
            let rated = rate_hours(usage, hours, &mut what_if, verdicts, &opts, |_, _, _| Ok(()));
            usage.only = None;
            rated?;
            let alt = what_if.finish()?;
            for a in whole.iter().filter_map(|a| engine.account_index(a)) {
                alternative.insert(a, alt.invoices[a as usize].total_due);
            }
        }
        for mut c in candidates {
            let actual = res.invoices[c.account as usize].total_due;
            let Some(&alternative) = alternative.get(&c.account) else { continue };
            let saving = actual.minus(alternative, "estimated saving")?;
            if saving <= Dec::ZERO {
                continue;
            }
            c.evidence = format!("{}; re-rated with the purchase, total due {actual} → {alternative}", c.evidence);
            c.saving = saving;
            c.verified = true;
            out.push(c);
        }
    }
    out.extend(rec::lapsing_packages(&res.ledger, &engine.packages, period)?);
    out.extend(rec::idle_notebooks(cost, period, 3)?);
    let balances: Vec<(u32, Dec, crate::model::Phase)> = res.invoices.iter().map(|i| (i.account, i.closing_balance, i.status)).collect();
    out.extend(rec::arrears_risk(cost, &balances, period, 14)?);
    out.sort_by(|a, b| (a.account, &a.id).cmp(&(b.account, &b.id)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{unrated_sums, HourSums};
    use crate::decimal::Dec;

    /// Hour sums spilled to a file give back what hour sums in memory give, hour by
    /// hour in account order; the file never shows in the spill directory.
    #[test]
    fn spilled_hour_sums_are_those_in_memory() {
        use crate::rules::records::Settlement;
        let dir = tempfile::tempdir().unwrap();
        let (mut memory, mut spilled) = (HourSums::new(None).unwrap(), HourSums::new(Some(dir.path())).unwrap());
        let at = |h: i64, a: u32, cents: i128| Settlement {
            account: a,
            hour_start: h * 3_600_000_000,
            line_amount: Dec(cents * 100_000_000 + a as i128),
            deduction: Dec::ZERO,
            truncated: Dec::ZERO,
            balance_after: Dec::ZERO,
            state: crate::model::Phase::Active,
        };
        let hours = [vec![at(0, 1, 5), at(0, 4, -7), at(0, 9, 1)], vec![at(1, 3, 2), at(1, 2, 8)], vec![], vec![at(3, 0, i128::from(i64::MAX))]];
        for h in &hours {
            memory.record(h).unwrap();
            spilled.record(h).unwrap();
        }
        for h in 0..5 {
            let hour = h * 3_600_000_000;
            let (m, s) = (memory.of(hour).unwrap(), spilled.of(hour).unwrap());
            assert_eq!(m, s, "hour {h}");
            assert!(m.0.is_sorted());
        }
        assert_eq!(memory.of(3_600_000_000).unwrap().0, vec![2, 3]);
        assert!(spilled.spilled.as_ref().unwrap().at > 0, "the hours went to the file");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing named in the spill directory");
    }

    /// Each wanted account gets its hour's sum less the part rated again (the whole
    /// sum when none was); an account the hour did not settle gets nothing, or goes
    /// astray when a part was rated for it all the same.
    #[test]
    fn unrated_sums_walk_the_three_lists_in_account_order() {
        let d = Dec::from_int;
        let mut astray = Default::default();
        let out =
            unrated_sums(&[1, 3, 5, 7, 9], (&[1, 2, 3, 7], &[d(10), d(5), d(7), d(1)]), &[(2, d(1)), (3, d(2)), (5, d(4)), (7, d(1))], &mut astray).unwrap();
        assert_eq!(out, vec![(1, d(10)), (3, d(5)), (7, d(0))]);
        assert_eq!(astray.into_iter().collect::<Vec<u32>>(), vec![5]);
    }
}
