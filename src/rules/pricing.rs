//! Pricing (billing-rules §1 and §4): the pricing quantity of a usage row, the
//! effective-dated price rows in force at an instant, and graduated tiers.

use crate::decimal::{line_amount, Dec, Qty};
use crate::model::{BillingItem, BillingMode, Module, PriceRow, PricingUnit};
use crate::text::same_bytes;
use crate::time::Micros;
use rustc_hash::FxHashMap;

/// The price catalog, indexed by SKU and region.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub rows: Vec<PriceRow>,
    by_sku_region: FxHashMap<String, FxHashMap<String, Vec<u32>>>,
    /// Each SKU's first row: what the catalog says of the SKU itself.
    skus: FxHashMap<String, u32>,
    ppu_unit: FxHashMap<String, PricingUnit>,
    /// The pay-per-use prices of each (SKU, region): an index into `ppu`.
    ppu_index: FxHashMap<String, FxHashMap<String, u32>>,
    ppu: Vec<PpuPrices>,
    /// The (SKU, region) of each key.
    ppu_names: Vec<(String, String)>,
}

/// The pay-per-use prices of one (SKU, region), worked out once per catalog: the
/// spans of time over which the same rows are in force, with their tiers by currency.
#[derive(Clone, Debug, Default)]
struct PpuPrices {
    /// By ascending `from`; the first starts at `Micros::MIN`, each lasts until the next.
    spans: Vec<PpuSpan>,
}

#[derive(Clone, Debug, Default)]
struct PpuSpan {
    from: Micros,
    /// Every currency with a row in force, with its tiers by ascending `(start, row)`
    /// (empty when no row of that currency has a tier start that fits a quantity).
    currencies: Vec<(String, Vec<Tier>)>,
}

/// The tiers of one (SKU, region) in one currency at an instant. `key` names the
/// (SKU, region) within the catalog: the key of the account's cumulative quantity.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TierSet<'a> {
    pub key: u32,
    pub tiers: &'a [Tier],
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
pub enum PriceLookup<'a> {
    /// The tiers in the account's currency, by ascending `tier_start`.
    Tiers(TierSet<'a>),
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
            c.skus.entry(r.sku.clone()).or_insert(i as u32);
            if r.billing_mode == BillingMode::PayPerUse {
                match c.ppu_unit.get(&r.sku) {
                    Some(u) if *u != r.pricing_unit => {
                        return Err(format!("row {}: SKU '{}' is priced per {} here and per {} elsewhere", r.row, r.sku, r.pricing_unit, u))
                    }
                    _ => {
                        c.ppu_unit.insert(r.sku.clone(), r.pricing_unit);
                    }
                }
            }
        }
        c.rows = rows;
        c.index_ppu();
        Ok(c)
    }

    /// Works out the pay-per-use spans of every (SKU, region). Rows come in and go
    /// out of force only at their `effective_from` and `effective_to`, so the rows in
    /// force at one of those instants are in force until the next.
    fn index_ppu(&mut self) {
        let mut keys: Vec<(&String, &String, &Vec<u32>)> =
            self.by_sku_region.iter().flat_map(|(sku, m)| m.iter().map(move |(region, rows)| (sku, region, rows))).collect();
        keys.sort();
        for (sku, region, rows) in keys {
            let ppu: Vec<&PriceRow> = rows.iter().map(|&i| &self.rows[i as usize]).filter(|r| r.billing_mode == BillingMode::PayPerUse).collect();
            if ppu.is_empty() {
                continue;
            }
            let mut edges: Vec<Micros> = vec![Micros::MIN];
            for r in &ppu {
                edges.push(r.effective_from);
                edges.extend(r.effective_to);
            }
            edges.sort_unstable();
            edges.dedup();
            let spans = edges
                .into_iter()
                .map(|from| {
                    let mut currencies: Vec<(String, Vec<Tier>)> = Vec::new();
                    for &i in rows {
                        let r = &self.rows[i as usize];
                        if r.billing_mode != BillingMode::PayPerUse || !r.in_force(from) {
                            continue;
                        }
                        let at = match currencies.iter().position(|(c, _)| *c == r.currency) {
                            Some(k) => k,
                            None => {
                                currencies.push((r.currency.clone(), Vec::new()));
                                currencies.len() - 1
                            }
                        };
                        if let Some(start) = Qty::from_dec(r.tier_start) {
                            currencies[at].1.push(Tier { start, row: i, unit_price: r.unit_price });
                        }
                    }
                    for (_, tiers) in &mut currencies {
                        tiers.sort_by_key(|t| (t.start, t.row));
                    }
                    PpuSpan { from, currencies }
                })
                .collect();
            let key = self.ppu.len() as u32;
            self.ppu.push(PpuPrices { spans });
            self.ppu_names.push((sku.clone(), region.clone()));
            self.ppu_index.entry(sku.clone()).or_default().insert(region.clone(), key);
        }
    }

    pub fn knows_sku(&self, sku: &str) -> bool {
        self.skus.contains_key(sku)
    }

    /// The billing item a SKU bills as (its first row's).
    pub fn billing_item_of(&self, sku: &str) -> Option<BillingItem> {
        self.skus.get(sku).map(|&r| self.rows[r as usize].billing_item)
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

    /// The key of a (SKU, region) with pay-per-use prices.
    pub fn ppu_key(&self, sku: &str, region: &str) -> Option<u32> {
        self.ppu_index.get(sku).and_then(|m| m.get(region)).copied()
    }

    /// The (SKU, region) of a key.
    pub fn ppu_names(&self, key: u32) -> (&str, &str) {
        let (sku, region) = &self.ppu_names[key as usize];
        (sku, region)
    }

    /// The pay-per-use tiers in force for `(sku, region, currency)` at `t`.
    pub fn ppu_tiers(&self, sku: &str, region: &str, currency: &str, t: Micros) -> PriceLookup<'_> {
        self.ppu_tiers_of(self.ppu_key(sku, region), currency, t)
    }

    /// [`Catalog::ppu_tiers`] of a (SKU, region) by its key ([`Catalog::ppu_key`]).
    pub fn ppu_tiers_of(&self, key: Option<u32>, currency: &str, t: Micros) -> PriceLookup<'_> {
        let Some(key) = key else { return PriceLookup::None };
        let spans = &self.ppu[key as usize].spans;
        let span = &spans[spans.partition_point(|s| s.from <= t).saturating_sub(1)];
        match span.currencies.iter().find(|(c, _)| same_bytes(c.as_bytes(), currency.as_bytes())) {
            Some((_, tiers)) if !tiers.is_empty() => PriceLookup::Tiers(TierSet { key, tiers }),
            _ if span.currencies.iter().any(|(c, _)| c != currency) => PriceLookup::OtherCurrencyOnly,
            _ => PriceLookup::None,
        }
    }

    /// [`Catalog::ppu_tiers`] worked out from the rows at each call: the reference
    /// the indexed lookup is tested against.
    #[cfg(test)]
    fn ppu_tiers_reference(&self, sku: &str, region: &str, currency: &str, t: Micros) -> Option<Result<Vec<Tier>, bool>> {
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
            Some(Ok(tiers))
        } else if other_currency {
            Some(Err(true))
        } else {
            None
        }
    }

    /// The yearly/monthly price row for a subscription term unit, in force at `t`
    /// (the first tier).
    pub fn term_price(&self, sku: &str, region: &str, currency: &str, unit: PricingUnit, t: Micros) -> Option<&PriceRow> {
        self.rows_for(sku, region)
            .iter()
            .map(|&i| &self.rows[i as usize])
            .filter(|r| r.billing_mode == BillingMode::YearlyMonthly && r.pricing_unit == unit && r.currency == currency && r.in_force(t))
            .min_by_key(|r| (r.tier_start, r.row))
    }
}

/// The pricing quantity of a usage row (billing-rules §1). `None` on overflow.
pub fn pricing_quantity(unit: PricingUnit, nodes: i32, unit_count: i32, quantity: Dec, duration_us: i64) -> Option<Qty> {
    match unit {
        PricingUnit::NodeHour | PricingUnit::NodeMonth | PricingUnit::NodeYear => Qty::node_hours(nodes as i64, unit_count as i64, duration_us),
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
    rate_tiered_into(tiers, cumulative, quantity, &mut out)?;
    Ok(out)
}

/// [`rate_tiered`] into a buffer the caller reuses (cleared first).
pub fn rate_tiered_into(tiers: &[Tier], cumulative: Qty, quantity: Qty, out: &mut Vec<Segment>) -> Result<(), RateError> {
    out.clear();
    let end = cumulative.checked_add(quantity).ok_or(RateError::Overflow)?;
    if quantity.is_zero() {
        let t = tier_at(tiers, cumulative);
        if cumulative < t.start {
            return Err(RateError::BelowFirstTier);
        }
        out.push(Segment { tier: t, quantity, amount: Dec::ZERO });
        return Ok(());
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
            let q = hi.checked_sub(lo).ok_or(RateError::Overflow)?;
            let amount = line_amount(t.unit_price, q).ok_or(RateError::Overflow)?;
            out.push(Segment { tier: *t, quantity: q, amount });
        }
    }
    Ok(())
}

/// A first-tier pay-per-use price row of 1 USD a node-hour for a SKU in a region, in
/// force from the epoch on: the unit tests' catalog row.
#[cfg(test)]
pub(crate) fn test_ppu_row(sku: &str, region: &str) -> PriceRow {
    PriceRow {
        sku: sku.into(),
        region: region.into(),
        billing_mode: BillingMode::PayPerUse,
        pricing_unit: PricingUnit::NodeHour,
        currency: "USD".into(),
        unit_price: Dec::from_int(1),
        tier_start: Dec::ZERO,
        effective_from: 0,
        effective_to: None,
        billing_item: crate::model::BillingItem::Compute,
        description: None,
        row: 0,
    }
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

    use crate::model::BillingItem;
    use proptest::prelude::*;

    fn row(spec: (u8, u8, bool, u8, u8, u8, i64, Option<i64>)) -> PriceRow {
        let (sku, region, ppu, currency, price, tier, from, len) = spec;
        PriceRow {
            sku: format!("s{}", sku % 2),
            region: format!("r{}", region % 2),
            billing_mode: if ppu { BillingMode::PayPerUse } else { BillingMode::YearlyMonthly },
            pricing_unit: if ppu { PricingUnit::NodeHour } else { PricingUnit::NodeMonth },
            currency: ["USD", "EUR", "CNY"][currency as usize % 3].to_string(),
            unit_price: Dec::from_int(price as i64),
            tier_start: Dec::from_int(tier as i64 % 4 * 10),
            effective_from: from,
            effective_to: len.map(|l| from + l),
            billing_item: BillingItem::Compute,
            description: None,
            row: 0,
        }
    }

    proptest! {
        /// The spans worked out once per catalog give, at every instant, what the rows
        /// in force at that instant give: the same tiers in the same order, or the same
        /// reason for having none.
        #[test]
        fn indexed_tiers_agree_with_the_rows_in_force(
            specs in proptest::collection::vec((0u8..2, 0u8..2, any::<bool>(), 0u8..3, 0u8..9, 0u8..4, 0i64..40, proptest::option::of(1i64..30)), 0..12),
            probes in proptest::collection::vec((0u8..2, 0u8..2, 0u8..3, -5i64..80), 1..40),
        ) {
            let c = Catalog::new(specs.into_iter().map(row).collect()).unwrap();
            for (sku, region, currency, t) in probes {
                let (sku, region, currency) = (format!("s{sku}"), format!("r{region}"), ["USD", "EUR", "CNY"][currency as usize]);
                let fast = match c.ppu_tiers(&sku, &region, currency, t) {
                    PriceLookup::Tiers(set) => Some(Ok(set.tiers.to_vec())),
                    PriceLookup::OtherCurrencyOnly => Some(Err(true)),
                    PriceLookup::None => None,
                };
                prop_assert_eq!(fast, c.ppu_tiers_reference(&sku, &region, currency, t), "{} {} {} at {}", sku, region, currency, t);
            }
        }
    }
}
