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
    // What the purchase commits to, in node-hours: its FOCUS line shows it.
    term_node_hours(s).ok_or(Overflow { figure: "subscription's term in node-hours" })?;
    Ok(l)
}

/// A subscription's node-hours over its whole term: nodes × unit count × the term's
/// hours (`None` past the quantity's digits).
pub fn term_node_hours(s: &Subscription) -> Option<Qty> {
    Qty::node_hours(i64::from(s.nodes), i64::from(s.unit_count), s.end_at - s.start_at)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BillingItem, BillingMode, PriceRow, TermUnit};

    fn catalog() -> Catalog {
        Catalog::new(vec![PriceRow {
            sku: "gpu".into(),
            region: "r1".into(),
            billing_mode: BillingMode::YearlyMonthly,
            pricing_unit: PricingUnit::NodeMonth,
            currency: "USD".into(),
            unit_price: Dec::from_int(720),
            tier_start: Dec::ZERO,
            effective_from: 0,
            effective_to: None,
            billing_item: BillingItem::Compute,
            description: None,
            row: 0,
        }])
        .unwrap()
    }

    fn subscription(nodes: i32, unit_count: i32) -> Subscription {
        let start = crate::time::parse_hour("2026-01-01T00").unwrap();
        Subscription {
            subscription_id: "S".into(),
            account_id: "A".into(),
            region: "r1".into(),
            resource_id: "pool".into(),
            sku: "gpu".into(),
            nodes,
            unit_count,
            term_unit: TermUnit::Month,
            term_count: 1,
            ordered_at: start,
            start_at: start,
            end_at: start + 744 * HOUR,
            renewal_of: None,
        }
    }

    /// The purchase commits to nodes × unit count × the term's hours: 2 × 744 for a
    /// 2-node January.
    #[test]
    fn a_subscription_commits_to_its_terms_node_hours() {
        let s = subscription(2, 1);
        assert_eq!(term_node_hours(&s), Qty::from_dec(Dec::from_int(1488)));
        assert!(subscription_purchase(0, 0, &s, Dec::from_int(1440), 0, &catalog()).is_ok());
    }

    /// A term whose node-hours go past the quantity's digits refuses the purchase,
    /// naming the figure, rather than showing no quantity.
    #[test]
    fn a_term_past_the_quantitys_digits_is_refused() {
        let s = subscription(i32::MAX, i32::MAX);
        let err = subscription_purchase(0, 0, &s, Dec::from_int(1), 0, &catalog()).unwrap_err();
        assert_eq!(err.figure, "subscription's term in node-hours");
    }
}
