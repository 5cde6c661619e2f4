//! One account through one billing period: its book, opened from the previous period,
//! and the rating of its usage rows in `(start_time, record_id)` order (§2–§4), which
//! is where tier cumulatives and package quotas advance. What pays for a row is
//! decided here; the hourly settlement, balance and arrears are `settlement.rs`.
//! Accounts never interact, so books are processed in parallel.

use super::checks::{Rejection, Usage};
use super::packages::{self, PackageBook};
use super::pricing::{pricing_quantity, rate_tiered_into, tier_at, Catalog, PriceLookup, RateError, Segment};
use super::records::*;
use super::subscriptions::{Coverage, Subscriptions};
use crate::decimal::{line_amount, Dec, Overflow, Qty};
use crate::model::{Account, Package, Phase, PricingUnit, Reason};
use crate::time::{format_ts, Micros, Period, DAY};
use rustc_hash::FxHashMap;

/// What a period opens from, per account (the previous period's closing state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountOpening {
    pub balance: Dec,
    pub arrears_since: Option<Micros>,
    pub balance_alert_armed: bool,
}

/// The read-only context of rating.
pub struct Ctx<'a> {
    pub catalog: &'a Catalog,
    pub subs: &'a Subscriptions,
    pub packages: &'a [Package],
}

/// What one account's rows of one hour produced.
#[derive(Debug, Default)]
pub struct HourOut {
    pub lines: Vec<Line>,
    pub rejected: Vec<Rejected>,
    pub alerts: Vec<Alert>,
    pub deductions: Vec<Deduction>,
    pub settlement: Option<Settlement>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct AccountBook {
    pub idx: u32,
    pub currency: String,
    pub(super) grace: i64,
    pub(super) retention: i64,
    pub(super) alert_threshold: Option<Dec>,
    pub opening_balance: Dec,
    pub balance: Dec,
    /// Start of the open arrears episode.
    pub arrears_since: Option<Micros>,
    pub balance_alert_armed: bool,
    /// Payments of the period not yet applied, by `(paid_at, payment_id)`.
    pub(super) payments: Vec<(Micros, Dec)>,
    pub(super) next_payment: usize,
    pub payments_total: Dec,
    /// Arrears episodes that touch the period: `(start, end)`.
    pub(super) episodes: Vec<(Micros, Option<Micros>)>,
    pub(super) hour_sum: Dec,
    pub(super) hour_has_ppu: bool,
    pub usage_charges: Dec,
    pub truncated_total: Dec,
    pub committed_list_value: Dec,
    /// Cumulative pay-per-use quantity per SKU and region, this period, by name: the
    /// form a checkpoint keeps (filled by [`AccountBook::tiers_by_name`]), and while
    /// rating only the pairs the catalog does not price.
    tiers: FxHashMap<String, FxHashMap<String, Qty>>,
    /// The same by the catalog's (SKU, region) key, while rating.
    #[serde(skip)]
    tier_keys: FxHashMap<u32, Qty>,
    /// Reused for each row's tier segments.
    #[serde(skip)]
    segments: Vec<Segment>,
    pub packages: PackageBook,
    /// Usage intervals of each subscribed resource within its term, this period.
    pub sub_covered: FxHashMap<u32, Vec<(Micros, Micros)>>,
}

impl AccountBook {
    /// Opens an account for `period`. `payments` are the account's payments, sorted by
    /// `(paid_at, payment_id)`. Without `carried` state this is the account's first
    /// period: the balance is `opening_balance` plus the payments since `balance_as_of`.
    pub fn open(
        idx: u32,
        account: &Account,
        period: Period,
        carried: Option<&AccountOpening>,
        payments: &[(Micros, Dec)],
        packages: PackageBook,
    ) -> Result<AccountBook, Overflow> {
        let start = period.start();
        let counts = |t: Micros| t >= account.balance_as_of;
        let (balance, arrears_since, armed) = match carried {
            Some(c) => (c.balance, c.arrears_since, c.balance_alert_armed),
            None => {
                let mut before = account.opening_balance;
                for (_, a) in payments.iter().filter(|(t, _)| counts(*t) && *t < start) {
                    before = before.plus(*a, "opening balance")?;
                }
                (before, None, true)
            }
        };
        let in_period: Vec<(Micros, Dec)> = payments.iter().copied().filter(|(t, _)| period.contains(*t) && counts(*t)).collect();
        Ok(AccountBook {
            idx,
            currency: account.currency.clone(),
            grace: account.grace_days as i64 * DAY,
            retention: account.retention_days as i64 * DAY,
            alert_threshold: account.balance_alert_threshold,
            opening_balance: balance,
            balance,
            arrears_since,
            balance_alert_armed: armed,
            payments: in_period,
            next_payment: 0,
            payments_total: Dec::ZERO,
            episodes: arrears_since.map(|s| vec![(s, None)]).unwrap_or_default(),
            hour_sum: Dec::ZERO,
            hour_has_ppu: false,
            usage_charges: Dec::ZERO,
            truncated_total: Dec::ZERO,
            committed_list_value: Dec::ZERO,
            tiers: FxHashMap::default(),
            tier_keys: FxHashMap::default(),
            segments: Vec::new(),
            packages,
            sub_covered: FxHashMap::default(),
        })
    }

    /// Rates one usage row. Rows must come in `(start_time, record_id)` order.
    /// A row the rules refuse is rejected and the rating goes on; a figure beyond 38
    /// digits refuses the run.
    pub fn rate(&mut self, u: &Usage<'_>, ctx: &Ctx<'_>, out: &mut HourOut) -> Result<(), Overflow> {
        self.apply_payments_until(u.start)?;
        match self.rate_inner(u, ctx, out) {
            Ok(()) => Ok(()),
            Err(Refused::Row(why)) => {
                out.rejected.push(Rejected { loc: u.loc, why });
                Ok(())
            }
            Err(Refused::Run(o)) => Err(o),
        }
    }

    fn rate_inner(&mut self, u: &Usage<'_>, ctx: &Ctx<'_>, out: &mut HourOut) -> Result<(), Refused> {
        let key = if u.is_pool_job() { u.pool_id.unwrap_or(u.resource_id) } else { u.resource_id };
        let coverage = ctx.subs.coverage(u.account_id, u.region, key, u.start);
        let unit = ctx.catalog.usage_unit(u.sku, u.module);
        let q = pricing_quantity(unit, u.nodes, u.unit_count, u.quantity, u.duration_us())
            .ok_or_else(|| Rejection::new(Reason::Schema, "pricing quantity is beyond the priceable range"))?;
        match coverage {
            Coverage::Term(s) | Coverage::Grace(s) => return self.rate_subscribed(u, ctx, s, q, unit, out),
            Coverage::Frozen(s) => {
                return Err(Refused::Row(Rejection::new(
                    Reason::SubscriptionFrozen,
                    format!("subscription '{}' expired and is in its retention period", ctx.subs.get(s).subscription_id),
                )))
            }
            Coverage::Released(s) => {
                return Err(Refused::Row(Rejection::new(
                    Reason::ResourceReleased,
                    format!("subscription '{}' expired and its resource was released", ctx.subs.get(s).subscription_id),
                )))
            }
            Coverage::None => {}
        }
        self.check_phase(u)?;
        if u.is_pool_job() {
            out.lines.push(usage_line(self.idx, u, q, unit, LineKind::PoolJob));
            return Ok(());
        }
        self.rate_pay_per_use(u, ctx, q, unit, out)
    }

    /// §2.1, §6: a row a subscription covers (in its term or grace): a committed line
    /// of the subscription, carrying the amortized value of its own duration when it is
    /// the subscribed resource's own row, listed at the pay-per-use price; the
    /// subscribed resource cannot scale.
    fn rate_subscribed(&mut self, u: &Usage<'_>, ctx: &Ctx<'_>, s: u32, q: Qty, unit: PricingUnit, out: &mut HourOut) -> Result<(), Refused> {
        let sub = ctx.subs.get(s);
        let own_row = u.resource_id == sub.resource_id;
        if own_row && u.size() != sub.nodes as i64 * sub.unit_count as i64 {
            return Err(Refused::Row(Rejection::new(
                Reason::ScalingNotSupported,
                format!(
                    "{} × {} differs from subscription '{}' ({} × {}); a yearly/monthly resource cannot scale",
                    u.nodes, u.unit_count, sub.subscription_id, sub.nodes, sub.unit_count
                ),
            )));
        }
        let mut l = usage_line(self.idx, u, q, unit, LineKind::Committed);
        l.commitment = Some(Commitment::Subscription(s));
        if own_row {
            if let PriceLookup::Tiers(set) = ctx.catalog.ppu_tiers_of(ppu_key(u, ctx), &self.currency, u.start) {
                let t = tier_at(set.tiers, self.cumulative(set.key));
                l.price_row = Some(t.row);
                l.list_unit_price = t.unit_price;
                l.list_cost = line_amount(t.unit_price, q).ok_or_else(|| Rejection::new(Reason::Schema, "list cost is beyond the priceable range"))?;
            }
            l.effective = ctx.subs.amortized(s, u.start, u.end)?;
            self.sub_covered.entry(s).or_default().push((u.start, u.end));
        }
        self.committed_list_value = self.committed_list_value.plus(l.list_cost, "committed list value")?;
        out.lines.push(l);
        Ok(())
    }

    /// §5: an account in retention or released rates no row that no subscription covers.
    fn check_phase(&self, u: &Usage<'_>) -> Result<(), Refused> {
        let since = || format_ts(self.arrears_since.unwrap_or(0));
        match self.phase_at(u.start) {
            Phase::Frozen => Err(Refused::Row(Rejection::new(Reason::AccountFrozen, format!("account in arrears since {}: retention period", since())))),
            Phase::Released => {
                Err(Refused::Row(Rejection::new(Reason::ResourceReleased, format!("account in arrears since {}: pay-per-use resources released", since()))))
            }
            Phase::Active | Phase::Arrears => Ok(()),
        }
    }

    /// §3, §4: a pay-per-use row: drawn from the account's packages first, the rest
    /// priced on the graduated tiers of the account's cumulative quantity.
    fn rate_pay_per_use(&mut self, u: &Usage<'_>, ctx: &Ctx<'_>, q: Qty, unit: PricingUnit, out: &mut HourOut) -> Result<(), Refused> {
        let idx = self.idx;
        let line = |kind: LineKind| usage_line(idx, u, q, unit, kind);
        let set = match ctx.catalog.ppu_tiers_of(ppu_key(u, ctx), &self.currency, u.start) {
            PriceLookup::Tiers(t) => t,
            PriceLookup::OtherCurrencyOnly => {
                return Err(Refused::Row(Rejection::new(
                    Reason::CurrencyMismatch,
                    format!("{} in {} is priced at {} only in currencies other than {}", u.sku, u.region, format_ts(u.start), self.currency),
                )))
            }
            PriceLookup::None => {
                return Err(Refused::Row(Rejection::new(
                    Reason::NoPrice,
                    format!("no pay-per-use price for {} in {} at {}", u.sku, u.region, format_ts(u.start)),
                )))
            }
        };
        let tiers = set.tiers;
        let cumulative = self.cumulative(set.key);
        let plan = self.packages.plan(ctx.packages, u.region, u.sku, u.pool_type, u.start, q)?;
        let mut covered = Qty::ZERO;
        for d in &plan {
            covered = covered.plus(d.quantity, "package-covered quantity")?;
        }
        let overflow = q.minus(covered, "pay-per-use quantity")?;
        let mut segments = std::mem::take(&mut self.segments);
        segments.clear();
        if plan.is_empty() || !overflow.is_zero() {
            rate_tiered_into(tiers, cumulative, overflow, &mut segments).map_err(|e| match e {
                RateError::BelowFirstTier => {
                    Rejection::new(Reason::NoPrice, format!("no price tier of {} in {} covers its cumulative quantity", u.sku, u.region))
                }
                RateError::Overflow => Rejection::new(Reason::Schema, "the amount is beyond the priceable range (38 digits)"),
            })?;
        }
        // Covered parts: committed lines of the packages, listed at the current tier.
        let list_tier = tier_at(tiers, cumulative);
        for (k, d) in self.packages.commit(ctx.packages, &plan)?.into_iter().enumerate() {
            out.deductions.push(Deduction {
                account: self.idx,
                package: d.package,
                usage: u.loc,
                usage_start: u.start,
                draw_order: k as u32 + 1,
                applicable: d.applicable,
                quantity: d.quantity,
                remaining_after: d.remaining_after,
            });
            let p = &ctx.packages[d.package as usize];
            let list_cost =
                line_amount(list_tier.unit_price, d.quantity).ok_or_else(|| Rejection::new(Reason::Schema, "list cost is beyond the priceable range"))?;
            self.committed_list_value = self.committed_list_value.plus(list_cost, "committed list value")?;
            out.lines.push(Line {
                quantity: d.quantity,
                price_row: Some(list_tier.row),
                list_unit_price: list_tier.unit_price,
                list_cost,
                effective: packages::amortized(p, d.quantity)?,
                commitment: Some(Commitment::Package(d.package)),
                ..line(LineKind::Committed)
            });
            if let Some(remaining) = d.alert {
                out.alerts.push(Alert { kind: AlertKind::PackageUsage, account: self.idx, package: Some(d.package), time: u.end, value: remaining.to_dec() });
            }
        }
        for s in &segments {
            self.hour_sum = self.hour_sum.plus(s.amount, "hour's pay-per-use amount")?;
            self.hour_has_ppu = true;
            out.lines.push(Line {
                quantity: s.quantity,
                price_row: Some(s.tier.row),
                list_unit_price: s.tier.unit_price,
                list_cost: s.amount,
                billed: s.amount,
                effective: s.amount,
                ..line(LineKind::Standard)
            });
        }
        self.segments = segments;
        if !overflow.is_zero() {
            let c = self.tier_keys.entry(set.key).or_default();
            *c = c.plus(overflow, "tier cumulative quantity")?;
        }
        Ok(())
    }

    fn cumulative(&self, key: u32) -> Qty {
        self.tier_keys.get(&key).copied().unwrap_or(Qty::ZERO)
    }

    /// The cumulative quantities by SKU and region name, as a checkpoint keeps them:
    /// a catalog's keys are its own, names hold across catalogs.
    pub fn tiers_by_name(&self, catalog: &Catalog) -> Result<FxHashMap<String, FxHashMap<String, Qty>>, Overflow> {
        let mut out = self.tiers.clone();
        for (&key, &q) in &self.tier_keys {
            let (sku, region) = catalog.ppu_names(key);
            let c = out.entry(sku.to_string()).or_default().entry(region.to_string()).or_default();
            *c = c.plus(q, "tier cumulative quantity")?;
        }
        Ok(out)
    }

    /// After a checkpoint is restored: the cumulative quantities by name are keyed
    /// by `catalog`; pairs it does not price are kept by name.
    pub fn key_tiers(&mut self, catalog: &Catalog) -> Result<(), Overflow> {
        for (sku, regions) in std::mem::take(&mut self.tiers) {
            for (region, q) in regions {
                match catalog.ppu_key(&sku, &region) {
                    Some(key) => {
                        let c = self.tier_keys.entry(key).or_default();
                        *c = c.plus(q, "tier cumulative quantity")?;
                    }
                    None => {
                        self.tiers.entry(sku.clone()).or_default().insert(region, q);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Why a row was not rated: the rules refuse the row (it is rejected and the rating
/// goes on), or a figure overflowed (the run is refused).
enum Refused {
    Row(Rejection),
    Run(Overflow),
}

impl From<Rejection> for Refused {
    fn from(why: Rejection) -> Refused {
        Refused::Row(why)
    }
}

impl From<Overflow> for Refused {
    fn from(o: Overflow) -> Refused {
        Refused::Run(o)
    }
}

/// A line of a usage row: its quantity, unit and times, of `kind`.
fn usage_line(account: u32, u: &Usage<'_>, q: Qty, unit: PricingUnit, kind: LineKind) -> Line {
    Line { usage: Some(u.loc), module: Some(u.module), quantity: q, unit: Some(unit), ..Line::blank(account, kind, u.start, u.end) }
}

/// The pay-per-use price key of a row's (SKU, region): as the engine found it for the
/// row's chunk, else looked up by name.
fn ppu_key(u: &Usage<'_>, ctx: &Ctx<'_>) -> Option<u32> {
    u.ppu_key.unwrap_or_else(|| ctx.catalog.ppu_key(u.sku, u.region))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(skus: &[&str]) -> Catalog {
        Catalog::new(skus.iter().map(|s| crate::rules::pricing::test_ppu_row(s, "r1")).collect()).unwrap()
    }

    /// A checkpoint keeps cumulative quantities by name: restored under a catalog
    /// whose keys moved (a SKU was added before it), each lands on its own pair, and
    /// a pair the new catalog does not price is kept by name.
    #[test]
    fn tier_cumulatives_survive_a_checkpoint_across_catalogs() {
        let (before, after) = (catalog(&["s1", "s2"]), catalog(&["s0", "s1"]));
        let account = Account {
            account_id: "a".into(),
            account_name: "a".into(),
            currency: "USD".into(),
            opening_balance: Dec::ZERO,
            balance_as_of: 0,
            grace_days: 0,
            retention_days: 0,
            balance_alert_threshold: None,
        };
        let period = Period::containing(0).unwrap();
        let mut book = AccountBook::open(0, &account, period, None, &[], PackageBook::default()).unwrap();
        let q = |n: i64| Qty::from_dec(Dec::from_int(n)).unwrap();
        book.tier_keys.insert(before.ppu_key("s1", "r1").unwrap(), q(5));
        book.tier_keys.insert(before.ppu_key("s2", "r1").unwrap(), q(7));
        let mut json = serde_json::to_value(&book).unwrap();
        json["tiers"] = serde_json::to_value(book.tiers_by_name(&before).unwrap()).unwrap();

        let mut restored: AccountBook = serde_json::from_value(json).unwrap();
        restored.key_tiers(&after).unwrap();
        assert_ne!(before.ppu_key("s1", "r1"), after.ppu_key("s1", "r1"));
        assert_eq!(restored.cumulative(after.ppu_key("s1", "r1").unwrap()), q(5));
        assert_eq!(restored.cumulative(after.ppu_key("s0", "r1").unwrap()), Qty::ZERO);
        assert_eq!(restored.tiers["s2"]["r1"], q(7));
        assert_eq!(restored.tiers_by_name(&after).unwrap(), book.tiers_by_name(&before).unwrap());
    }
}
