//! Purchases and what they leave unused (billing-rules §3, §6): the `Purchase` line of
//! a package or a subscription ordered in the period, and the `Unused` lines of quota
//! that lapses at the close and of subscribed time no usage line covered, each at its
//! amortized value.

use super::packages;
use super::pricing::Catalog;
use super::records::{Commitment, Line, LineKind};
use super::subscriptions::{covered_length, Subscriptions};
use crate::decimal::{Dec, Overflow, Qty};
use crate::model::{Module, Package, PricingUnit, Subscription};
use crate::time::{hour_floor, Micros, Period, HOUR};

/// The pricing unit a package's quota is counted in: its SKU's usage unit.
pub fn package_unit(catalog: &Catalog, p: &Package) -> PricingUnit {
    catalog.usage_unit(&p.sku, Module::Training)
}

/// The `Purchase` line of package `idx`, at `purchased_at` for its price. Its quantity
/// is the package's quota; its effective cost 0 (the usage it covers carries it).
pub fn package_purchase(account: u32, idx: u32, p: &Package, catalog: &Catalog) -> Result<Line, Overflow> {
    let mut l = Line::blank(account, LineKind::Purchase, p.purchased_at, hour_floor(p.purchased_at) + HOUR);
    l.billed = p.price;
    l.commitment = Some(Commitment::Package(idx));
    l.quantity = packages::quota(p).ok_or(Overflow { figure: "package quota" })?;
    l.unit = Some(package_unit(catalog, p));
    Ok(l)
}

/// The `Unused` line of `lapsed` quota of package `idx` at the close of `period`: the
/// amortized value of the quota, over the part of the period the package was in force.
pub fn package_lapse(account: u32, idx: u32, p: &Package, lapsed: Qty, period: Period, catalog: &Catalog) -> Result<Line, Overflow> {
    let mut l = Line::blank(account, LineKind::Unused, p.effective_from.max(period.start()), p.expires_at.min(period.end()));
    l.quantity = lapsed;
    l.unit = Some(package_unit(catalog, p));
    l.effective = packages::amortized(p, lapsed)?;
    l.commitment = Some(Commitment::Package(idx));
    Ok(l)
}

/// The `Purchase` line of subscription `idx`, at `ordered_at` for `price` (the
/// catalog's yearly/monthly price of `price_row` × nodes × unit_count × terms).
pub fn subscription_purchase(account: u32, idx: u32, s: &Subscription, price: Dec, price_row: u32, catalog: &Catalog) -> Result<Line, Overflow> {
    let row = catalog.row(price_row);
    let units = i64::from(s.nodes).checked_mul(i64::from(s.unit_count)).and_then(|n| n.checked_mul(i64::from(s.term_count)));
    let mut l = Line::blank(account, LineKind::Purchase, s.ordered_at, hour_floor(s.ordered_at) + HOUR);
    l.billed = price;
    l.price_row = Some(price_row);
    l.list_unit_price = row.unit_price;
    l.list_cost = price;
    l.commitment = Some(Commitment::Subscription(idx));
    l.quantity = units.and_then(|n| Qty::from_dec(Dec::from_int(n))).ok_or(Overflow { figure: "subscription's purchased quantity" })?;
    l.unit = Some(row.pricing_unit);
    Ok(l)
}

/// The `Unused` line of subscription `idx` in `period`: the seconds of its term in the
/// period that no usage line of the subscribed resource covered (`covered`, the
/// intervals of those lines), at their amortized value. `None` when every second was
/// used, or the term does not touch the period.
pub fn subscription_unused(account: u32, idx: u32, subs: &Subscriptions, covered: &mut [(Micros, Micros)], period: Period) -> Result<Option<Line>, Overflow> {
    let s = subs.get(idx);
    let (lo, hi) = (s.start_at.max(period.start()), s.end_at.min(period.end()));
    if hi <= lo {
        return Ok(None);
    }
    let unused = (hi - lo) - covered_length(covered, lo, hi);
    if unused <= 0 {
        return Ok(None);
    }
    let mut l = Line::blank(account, LineKind::Unused, lo, hi);
    l.quantity = Qty::node_hours(i64::from(s.nodes), i64::from(s.unit_count), unused).ok_or(Overflow { figure: "subscription's unused quantity" })?;
    l.unit = Some(PricingUnit::NodeHour);
    l.effective = subs.amortized_len(idx, unused)?;
    l.commitment = Some(Commitment::Subscription(idx));
    Ok(Some(l))
}
