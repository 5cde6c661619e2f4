//! Yearly/monthly subscriptions (billing-rules §2, §6, §10): which orders are valid
//! and what they cost, which subscription covers a usage row at an instant (its term,
//! or the grace period of an expired one), and when an expired resource is frozen or
//! released.

use super::checks::Rejection;
use super::pricing::Catalog;
use crate::decimal::{mul_div_round, Dec, Overflow};
use crate::model::{Account, PricingUnit, Reason, Subscription, TermUnit};
use crate::time::{format_ts, Micros, DAY};
use rustc_hash::FxHashMap;

/// The verdict on one subscription order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Order {
    Valid {
        /// `unit price × nodes × unit_count × term_count`, rounded to 2 places.
        price: Dec,
        price_row: u32,
    },
    Rejected(Rejection),
}

/// What covers a usage row of a resource at an instant.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Coverage {
    None,
    /// Within the term of subscription `.0`.
    Term(u32),
    /// After the end of subscription `.0`, which has no valid renewal, in its grace.
    Grace(u32),
    /// In the retention period of expired subscription `.0`.
    Frozen(u32),
    /// After the retention period of expired subscription `.0`.
    Released(u32),
}

#[derive(Clone, Debug, Default)]
pub struct Subscriptions {
    pub subs: Vec<Subscription>,
    pub orders: Vec<Order>,
    /// Grace and retention (µs) of each subscription's account.
    windows: Vec<(i64, i64)>,
    /// Valid subscriptions by resource id, by ascending `start_at`.
    by_resource: FxHashMap<String, Vec<u32>>,
}

impl Subscriptions {
    pub fn new(subs: Vec<Subscription>, accounts: &FxHashMap<&str, &Account>, catalog: &Catalog) -> Subscriptions {
        let by_id: FxHashMap<&str, usize> = subs.iter().enumerate().map(|(i, s)| (s.subscription_id.as_str(), i)).collect();
        let mut orders = Vec::with_capacity(subs.len());
        let mut windows = Vec::with_capacity(subs.len());
        for s in &subs {
            let Some(acct) = accounts.get(s.account_id.as_str()) else {
                orders.push(Order::Rejected(Rejection::new(Reason::UnknownAccount, format!("account '{}' is not in accounts", s.account_id))));
                windows.push((0, 0));
                continue;
            };
            let grace = acct.grace_days as i64 * DAY;
            let retention = acct.retention_days as i64 * DAY;
            windows.push((grace, retention));
            orders.push(Self::judge(s, acct, grace + retention, &subs, &by_id, catalog));
        }
        let mut by_resource: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        for (i, s) in subs.iter().enumerate() {
            if matches!(orders[i], Order::Valid { .. }) {
                by_resource.entry(s.resource_id.clone()).or_default().push(i as u32);
            }
        }
        for v in by_resource.values_mut() {
            v.sort_by_key(|&i| (subs[i as usize].start_at, subs[i as usize].subscription_id.clone()));
        }
        Subscriptions { subs, orders, windows, by_resource }
    }

    /// Keeps the subscriptions `keep` says, with their verdicts, in their order: a
    /// shard's subscriptions, judged first among all of them.
    pub fn retain(&mut self, keep: impl Fn(&Subscription) -> bool) {
        let kept: Vec<usize> = (0..self.subs.len()).filter(|&i| keep(&self.subs[i])).collect();
        if kept.len() == self.subs.len() {
            return;
        }
        let mut new_index = vec![u32::MAX; self.subs.len()];
        for (n, &i) in kept.iter().enumerate() {
            new_index[i] = n as u32;
        }
        fn keep_at<T>(v: Vec<T>, new_index: &[u32]) -> Vec<T> {
            v.into_iter().zip(new_index).filter(|(_, &n)| n != u32::MAX).map(|(x, _)| x).collect()
        }
        self.subs = keep_at(std::mem::take(&mut self.subs), &new_index);
        self.orders = keep_at(std::mem::take(&mut self.orders), &new_index);
        self.windows = keep_at(std::mem::take(&mut self.windows), &new_index);
        for chain in self.by_resource.values_mut() {
            chain.retain_mut(|i| {
                *i = new_index[*i as usize];
                *i != u32::MAX
            });
        }
        self.by_resource.retain(|_, chain| !chain.is_empty());
    }

    fn judge(s: &Subscription, acct: &Account, grace_and_retention: i64, subs: &[Subscription], by_id: &FxHashMap<&str, usize>, catalog: &Catalog) -> Order {
        if let Some(base) = s.renewal_of.as_deref().and_then(|b| by_id.get(b)).map(|&i| &subs[i]) {
            let deadline = base.end_at.saturating_add(grace_and_retention);
            if s.ordered_at >= deadline {
                return Order::Rejected(Rejection::new(
                    Reason::RenewalTooLate,
                    format!(
                        "renewal of '{}' ordered at {}, after its retention ended at {}",
                        base.subscription_id,
                        format_ts(s.ordered_at),
                        format_ts(deadline)
                    ),
                ));
            }
        }
        let unit = match s.term_unit {
            TermUnit::Month => PricingUnit::NodeMonth,
            TermUnit::Year => PricingUnit::NodeYear,
        };
        let Some(row) = catalog.term_price(&s.sku, &s.region, &acct.currency, unit, s.ordered_at) else {
            return Order::Rejected(Rejection::new(
                Reason::NoPrice,
                format!("no yearly_monthly {} price for {} in {} ({}) at {}", unit, s.sku, s.region, acct.currency, format_ts(s.ordered_at)),
            ));
        };
        let n = s.nodes as i128 * s.unit_count as i128 * s.term_count as i128;
        match row.unit_price.0.checked_mul(n) {
            Some(v) => Order::Valid { price: Dec(v).round_dp(2), price_row: row.row as u32 },
            None => Order::Rejected(Rejection::new(Reason::NoPrice, "purchase price overflows")),
        }
    }

    pub fn price(&self, idx: u32) -> Dec {
        match &self.orders[idx as usize] {
            Order::Valid { price, .. } => *price,
            Order::Rejected(_) => Dec::ZERO,
        }
    }

    pub fn get(&self, idx: u32) -> &Subscription {
        &self.subs[idx as usize]
    }

    /// What covers resource `resource_id` of `(account, region)` at `t`.
    pub fn coverage(&self, account: &str, region: &str, resource_id: &str, t: Micros) -> Coverage {
        let Some(chain) = self.by_resource.get(resource_id) else { return Coverage::None };
        let mut last: Option<u32> = None;
        for &i in chain {
            let s = &self.subs[i as usize];
            if s.account_id != account || s.region != region {
                continue;
            }
            if s.start_at <= t {
                last = Some(i);
            } else {
                break;
            }
        }
        let Some(i) = last else { return Coverage::None };
        let s = &self.subs[i as usize];
        if t < s.end_at {
            return Coverage::Term(i);
        }
        let (grace, retention) = self.windows[i as usize];
        let grace_end = s.end_at.saturating_add(grace);
        if t < grace_end {
            Coverage::Grace(i)
        } else if t < grace_end.saturating_add(retention) {
            Coverage::Frozen(i)
        } else {
            Coverage::Released(i)
        }
    }

    /// The amortized value of `[start, end)` of subscription `idx`'s term: its price
    /// spread evenly over the term (by the microsecond, which is by the second for
    /// whole seconds), rounded half away from zero to 8 places. Time outside the term
    /// is worth 0.
    pub fn amortized(&self, idx: u32, start: Micros, end: Micros) -> Result<Dec, Overflow> {
        let s = &self.subs[idx as usize];
        let lo = start.max(s.start_at);
        let hi = end.min(s.end_at);
        if hi <= lo {
            return Ok(Dec::ZERO);
        }
        self.amortized_len(idx, hi - lo)
    }
}

/// Length of the union of intervals, clipped to `[lo, hi)`.
pub fn covered_length(intervals: &mut [(Micros, Micros)], lo: Micros, hi: Micros) -> i64 {
    intervals.sort_unstable();
    let mut total = 0i64;
    let mut cur: Option<(Micros, Micros)> = None;
    for &(a, b) in intervals.iter() {
        let (a, b) = (a.max(lo), b.min(hi));
        if b <= a {
            continue;
        }
        match cur {
            Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((a, b)) = cur {
        total += b - a;
    }
    total
}

impl Subscriptions {
    /// The amortized value of `len` microseconds of subscription `idx`'s term.
    pub fn amortized_len(&self, idx: u32, len: i64) -> Result<Dec, Overflow> {
        const FIGURE: Overflow = Overflow { figure: "subscription's amortized cost" };
        let s = &self.subs[idx as usize];
        let term = (s.end_at - s.start_at) as i128;
        let cents8 = mul_div_round(self.price(idx).0, len as i128, term.checked_mul(100).ok_or(FIGURE)?).ok_or(FIGURE)?;
        cents8.checked_mul(100).and_then(Dec::within).ok_or(FIGURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_of_overlapping_intervals() {
        let mut v = vec![(0, 10), (5, 20), (30, 40), (40, 45)];
        assert_eq!(covered_length(&mut v, 0, 100), 35);
        assert_eq!(covered_length(&mut v, 8, 35), 17);
    }
}
