//! Pricing (billing-rules §1 and §4): the pricing quantity of a usage row, the
//! effective-dated price rows in force at an instant, and graduated tiers.

use crate::decimal::{line_amount, Dec, Qty};
use crate::model::{BillingMode, Module, PriceRow, PricingUnit};
use crate::time::Micros;
use rustc_hash::FxHashMap;
use std::collections::HashSet;

/// The price catalog, indexed by SKU and region.
#[derive(Debug, Default)]
pub struct Catalog {
    pub rows: Vec<PriceRow>,
    by_sku_region: FxHashMap<String, FxHashMap<String, Vec<u32>>>,
    skus: HashSet<String>,
    ppu_unit: FxHashMap<String, PricingUnit>,
}

/// One tier of a price in force: `[start, next tier's start)` priced at `row`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub start: Qty,
    pub row: u32,
    pub unit_price: Dec,
}

/// What the catalog says about a pay-per-use price at an instant.
#[derive(Debug, PartialEq, Eq)]
pub enum PriceLookup {
    /// The tiers in the account's currency, by ascending `tier_start`.
    Tiers(Vec<Tier>),
    /// Prices exist for the SKU, region and instant, but only in other currencies.
    OtherCurrencyOnly,
    None,
}

/// One priced segment of a row: the part of its quantity that falls in one tier.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub tier: Tier,
    pub quantity: Qty,
    pub amount: Dec,
}

impl Catalog {
    /// Indexes a validated catalog. Refuses a SKU whose pay-per-use rows disagree on
    /// the pricing unit: its rows' quantities could not be compared.
    pub fn new(rows: Vec<PriceRow>) -> Result<Catalog, String> {
        let mut c = Catalog::default();
        for (i, r) in rows.iter().enumerate() {
            c.by_sku_region.entry(r.sku.clone()).or_default().entry(r.region.clone()).or_default().push(i as u32);
            c.skus.insert(r.sku.clone());
            if r.billing_mode == BillingMode::PayPerUse {
                match c.ppu_unit.get(&r.sku) {
                    Some(u) if *u != r.pricing_unit => {
                        return Err(format!(
                            "row {}: SKU '{}' is priced per {} here and per {} elsewhere",
                            r.row, r.sku, r.pricing_unit, u
                        ))
                    }
                    _ => {
                        c.ppu_unit.insert(r.sku.clone(), r.pricing_unit);
                    }
                }
            }
        }
        c.rows = rows;
        Ok(c)
    }

    pub fn knows_sku(&self, sku: &str) -> bool {
        self.skus.contains(sku)
    }

    pub fn row(&self, idx: u32) -> &PriceRow {
        &self.rows[idx as usize]
    }

    fn rows_for(&self, sku: &str, region: &str) -> &[u32] {
        self.by_sku_region.get(sku).and_then(|m| m.get(region)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The pricing unit of a SKU's usage: its pay-per-use unit, or, for a SKU sold
    /// only yearly/monthly, the unit its module is metered in.
    pub fn usage_unit(&self, sku: &str, module: Module) -> PricingUnit {
        if let Some(u) = self.ppu_unit.get(sku) {
            return *u;
        }
        match module {
            Module::Obs | Module::Sfs | Module::Evs => PricingUnit::GbHour,
            Module::Smn => PricingUnit::Count,
            Module::Lts => PricingUnit::Gb,
            _ => PricingUnit::NodeHour,
        }
    }

    /// The pay-per-use tiers in force for `(sku, region, currency)` at `t`.
    pub fn ppu_tiers(&self, sku: &str, region: &str, currency: &str, t: Micros) -> PriceLookup {
        let mut tiers = Vec::new();
        let mut other_currency = false;
        for &i in self.rows_for(sku, region) {
            let r = &self.rows[i as usize];
            if r.billing_mode != BillingMode::PayPerUse || !r.in_force(t) {
                continue;
            }
            if r.currency != currency {
                other_currency = true;
                continue;
            }
            let Some(start) = Qty::from_dec(r.tier_start) else { continue };
            tiers.push(Tier { start, row: i, unit_price: r.unit_price });
        }
        if !tiers.is_empty() {
            tiers.sort_by_key(|t| (t.start, t.row));
            PriceLookup::Tiers(tiers)
        } else if other_currency {
            PriceLookup::OtherCurrencyOnly
        } else {
            PriceLookup::None
        }
    }

    /// The yearly/monthly price row for a subscription term unit, in force at `t`
    /// (the first tier).
    pub fn term_price(&self, sku: &str, region: &str, currency: &str, unit: PricingUnit, t: Micros) -> Option<&PriceRow> {
        self.rows_for(sku, region)
            .iter()
            .map(|&i| &self.rows[i as usize])
            .filter(|r| {
                r.billing_mode == BillingMode::YearlyMonthly
                    && r.pricing_unit == unit
                    && r.currency == currency
                    && r.in_force(t)
            })
            .min_by_key(|r| (r.tier_start, r.row))
    }
}

/// The pricing quantity of a usage row (billing-rules §1). `None` on overflow.
pub fn pricing_quantity(unit: PricingUnit, nodes: i32, unit_count: i32, quantity: Dec, duration_us: i64) -> Option<Qty> {
    match unit {
        PricingUnit::NodeHour | PricingUnit::NodeMonth | PricingUnit::NodeYear => {
            Qty::node_hours(nodes as i64, unit_count as i64, duration_us)
        }
        PricingUnit::GbHour => Qty::gb_hours(quantity, duration_us),
        PricingUnit::Count | PricingUnit::Gb => Qty::from_dec(quantity),
    }
}

/// The tier in force at a cumulative quantity: the highest tier whose start is at or
/// below it (the first tier when the quantity is below every start).
pub fn tier_at(tiers: &[Tier], cumulative: Qty) -> Tier {
    let mut chosen = tiers[0];
    for t in tiers {
        if t.start <= cumulative {
            chosen = *t;
        }
    }
    chosen
}

/// Why a quantity could not be rated.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RateError {
    /// Part of the quantity lies below the first tier: no price there.
    BelowFirstTier,
    /// An amount does not fit 38 digits.
    Overflow,
}

/// Splits `quantity`, starting at `cumulative`, into one segment per tier it crosses.
pub fn rate_tiered(tiers: &[Tier], cumulative: Qty, quantity: Qty) -> Result<Vec<Segment>, RateError> {
    let mut out = Vec::with_capacity(1);
    let end = cumulative.checked_add(quantity).ok_or(RateError::Overflow)?;
    if quantity.is_zero() {
        let t = tier_at(tiers, cumulative);
        if cumulative < t.start {
            return Err(RateError::BelowFirstTier);
        }
        return Ok(vec![Segment { tier: t, quantity, amount: Dec::ZERO }]);
    }
    if cumulative < tiers[0].start {
        return Err(RateError::BelowFirstTier);
    }
    for (k, t) in tiers.iter().enumerate() {
        let t_end = tiers.get(k + 1).map(|n| n.start);
        let lo = cumulative.max(t.start);
        let hi = match t_end {
            Some(e) => end.min(e),
            None => end,
        };
        if hi > lo {
            let q = hi.sub(lo);
            let amount = line_amount(t.unit_price, q).ok_or(RateError::Overflow)?;
            out.push(Segment { tier: *t, quantity: q, amount });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Qty {
        Qty::from_dec(Dec::parse(s).unwrap()).unwrap()
    }
    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }
    fn tiers() -> Vec<Tier> {
        vec![
            Tier { start: q("0"), row: 0, unit_price: d("0") },
            Tier { start: q("0.5"), row: 1, unit_price: d("2") },
            Tier { start: q("10"), row: 2, unit_price: d("1.5") },
        ]
    }

    #[test]
    fn a_row_crossing_two_boundaries_becomes_three_segments() {
        let s = rate_tiered(&tiers(), q("0.25"), q("10")).unwrap();
        let got: Vec<(Dec, Dec)> = s.iter().map(|s| (s.quantity.to_dec(), s.amount)).collect();
        assert_eq!(got, vec![(d("0.25"), d("0")), (d("9.5"), d("19")), (d("0.25"), d("0.375"))]);
    }

    #[test]
    fn quantity_below_the_first_tier_has_no_price() {
        let t = vec![Tier { start: q("1"), row: 0, unit_price: d("1") }];
        assert_eq!(rate_tiered(&t, q("0"), q("2")), Err(RateError::BelowFirstTier));
        assert_eq!(rate_tiered(&t, q("1"), q("2")).unwrap().len(), 1);
    }

    #[test]
    fn an_amount_beyond_38_digits_is_an_overflow_not_a_missing_price() {
        let t = vec![Tier { start: q("0"), row: 0, unit_price: d("100000000000000000") }];
        assert_eq!(rate_tiered(&t, q("0"), q("1000000000000000000")), Err(RateError::Overflow));
    }

    #[test]
    fn tier_at_picks_the_tier_containing_the_cumulative() {
        assert_eq!(tier_at(&tiers(), q("0.5")).row, 1);
        assert_eq!(tier_at(&tiers(), q("0.49")).row, 0);
        assert_eq!(tier_at(&tiers(), q("100")).row, 2);
    }

    #[test]
    fn pricing_quantities_follow_the_unit() {
        let hour = 3_600_000_000;
        assert_eq!(pricing_quantity(PricingUnit::NodeHour, 2, 4, d("1"), hour / 2).unwrap(), q("4"));
        assert_eq!(pricing_quantity(PricingUnit::GbHour, 1, 1, d("10"), hour / 4).unwrap(), q("2.5"));
        assert_eq!(pricing_quantity(PricingUnit::Count, 3, 3, d("7"), hour).unwrap(), q("7"));
        assert_eq!(pricing_quantity(PricingUnit::Gb, 1, 1, d("0.3"), 1).unwrap(), q("0.3"));
    }
}
