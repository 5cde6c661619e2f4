//! The reference tables: the catalog, the inventory of packages and subscriptions,
//! the accounts and payments, and the packages on sale.

use super::*;

pub fn read_prices(lake: &Lake) -> Result<Vec<PriceRow>> {
    let file = PRICES;
    let mut out = Vec::new();
    let mut row = 0usize;
    for b in read_table(lake, file, true)?.unwrap_or_default() {
        cols!(file, &b, sku: StrCol, region: StrCol, billing_mode: StrCol, pricing_unit: StrCol,
            currency: StrCol, unit_price: DecCol, tier_start: DecCol, effective_from: TsCol,
            effective_to: TsCol, billing_item: StrCol, description: StrCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let p = PriceRow {
                sku: c.str(&sku, i, "sku")?,
                region: c.str(&region, i, "region")?,
                billing_mode: c.coded(&billing_mode, i, "billing_mode", BillingMode::parse)?,
                pricing_unit: c.coded(&pricing_unit, i, "pricing_unit", PricingUnit::parse)?,
                currency: c.str(&currency, i, "currency")?,
                unit_price: c.dec(&unit_price, i, "unit_price")?,
                tier_start: c.dec(&tier_start, i, "tier_start")?,
                effective_from: c.ts(&effective_from, i, "effective_from")?,
                effective_to: c.opt_ts(&effective_to, i, "effective_to")?,
                billing_item: c.coded(&billing_item, i, "billing_item", BillingItem::parse)?,
                description: c.opt_str(&description, i),
                row,
            };
            let ppu_unit = matches!(p.pricing_unit, PricingUnit::NodeHour | PricingUnit::GbHour | PricingUnit::Count | PricingUnit::Gb);
            if ppu_unit != (p.billing_mode == BillingMode::PayPerUse) {
                return Err(c.bad("pricing_unit", format!("'{}' is not a unit of {}", p.pricing_unit, p.billing_mode)));
            }
            if p.unit_price.is_negative() {
                return Err(c.bad("unit_price", format!("negative price {}", p.unit_price)));
            }
            if p.tier_start.is_negative() {
                return Err(c.bad("tier_start", "negative"));
            }
            if p.effective_from.rem_euclid(HOUR) != 0 {
                return Err(c.bad("effective_from", "not on an hour boundary"));
            }
            if let Some(to) = p.effective_to {
                if to <= p.effective_from {
                    return Err(c.bad("effective_to", "not after effective_from"));
                }
                if to.rem_euclid(HOUR) != 0 {
                    return Err(c.bad("effective_to", "not on an hour boundary"));
                }
            }
            out.push(p);
            row += 1;
        }
    }
    check_price_overlaps(&out)?;
    Ok(out)
}

/// For one `(sku, region, billing_mode, pricing_unit, currency, tier_start)`, effective
/// intervals must not overlap; the catalog is refused as a whole otherwise.
fn check_price_overlaps(prices: &[PriceRow]) -> Result<()> {
    let mut groups: BTreeMap<(&str, &str, BillingMode, PricingUnit, &str, Dec), Vec<&PriceRow>> = BTreeMap::new();
    for p in prices {
        groups.entry((&p.sku, &p.region, p.billing_mode, p.pricing_unit, &p.currency, p.tier_start)).or_default().push(p);
    }
    let mut clashes = Vec::new();
    for rows in groups.values_mut() {
        rows.sort_by_key(|p| (p.effective_from, p.row));
        for w in rows.windows(2) {
            if w[0].effective_to.is_none_or(|e| e > w[1].effective_from) {
                clashes.push(format!("rows {} and {} ({} {} {} tier {})", w[0].row, w[1].row, w[0].sku, w[0].region, w[0].currency, w[0].tier_start));
            }
        }
    }
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(InputError::Table { file: PRICES.into(), why: format!("overlapping effective intervals: {}", clashes.join("; ")) })
    }
}

/// `defaults`: grace and retention days of accounts that leave them null.
pub fn read_accounts(lake: &Lake, defaults: (i32, i32)) -> Result<Vec<Account>> {
    let file = ACCOUNTS;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut row = 0usize;
    for b in read_table(lake, file, true)?.unwrap_or_default() {
        cols!(file, &b, account_id: StrCol, account_name: StrCol, currency: StrCol,
            opening_balance: DecCol, balance_as_of: TsCol, grace_days: IntCol,
            retention_days: IntCol, balance_alert_threshold: DecCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let a = Account {
                account_id: c.str(&account_id, i, "account_id")?,
                account_name: c.opt_str(&account_name, i).unwrap_or_default(),
                currency: c.str(&currency, i, "currency")?,
                opening_balance: c.dec(&opening_balance, i, "opening_balance")?,
                balance_as_of: c.ts(&balance_as_of, i, "balance_as_of")?,
                grace_days: c.opt_int(&grace_days, i, "grace_days")?.unwrap_or(defaults.0),
                retention_days: c.opt_int(&retention_days, i, "retention_days")?.unwrap_or(defaults.1),
                balance_alert_threshold: c.opt_dec(&balance_alert_threshold, i, "balance_alert_threshold")?,
            };
            if a.grace_days < 0 || a.grace_days > 3650 {
                return Err(c.bad("grace_days", format!("{} is not 0..=3650", a.grace_days)));
            }
            if a.retention_days < 0 || a.retention_days > 3650 {
                return Err(c.bad("retention_days", format!("{} is not 0..=3650", a.retention_days)));
            }
            if !seen.insert(a.account_id.clone()) {
                return Err(c.bad("account_id", format!("'{}' appears twice", a.account_id)));
            }
            out.push(a);
            row += 1;
        }
    }
    Ok(out)
}

pub fn read_payments(lake: &Lake, accounts: &HashMap<&str, &Account>) -> Result<Vec<Payment>> {
    let file = PAYMENTS;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut row = 0usize;
    for b in read_table(lake, file, false)?.unwrap_or_default() {
        cols!(file, &b, payment_id: StrCol, account_id: StrCol, paid_at: TsCol, amount: DecCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let p = Payment {
                payment_id: c.str(&payment_id, i, "payment_id")?,
                account_id: c.str(&account_id, i, "account_id")?,
                paid_at: c.ts(&paid_at, i, "paid_at")?,
                amount: c.dec(&amount, i, "amount")?,
            };
            if p.amount <= Dec::ZERO {
                return Err(c.bad("amount", format!("{} is not positive", p.amount)));
            }
            if !accounts.contains_key(p.account_id.as_str()) {
                return Err(c.bad("account_id", format!("unknown account '{}'", p.account_id)));
            }
            if !seen.insert(p.payment_id.clone()) {
                return Err(c.bad("payment_id", format!("'{}' appears twice", p.payment_id)));
            }
            out.push(p);
            row += 1;
        }
    }
    Ok(out)
}

pub fn read_packages(lake: &Lake, accounts: &HashMap<&str, &Account>) -> Result<Vec<Package>> {
    let file = PACKAGES;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut row = 0usize;
    for b in read_table(lake, file, false)?.unwrap_or_default() {
        cols!(file, &b, package_id: StrCol, account_id: StrCol, region: StrCol, sku: StrCol,
            package_count: IntCol, hours_per_package: DecCol, price: DecCol, purchased_at: TsCol,
            effective_from: TsCol, expires_at: TsCol, reset_period: StrCol, alert_threshold_pct: DecCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let p = Package {
                package_id: c.str(&package_id, i, "package_id")?,
                account_id: c.str(&account_id, i, "account_id")?,
                region: c.str(&region, i, "region")?,
                sku: c.str(&sku, i, "sku")?,
                package_count: c.int(&package_count, i, "package_count")?,
                hours_per_package: c.dec(&hours_per_package, i, "hours_per_package")?,
                price: c.dec(&price, i, "price")?,
                purchased_at: c.ts(&purchased_at, i, "purchased_at")?,
                effective_from: c.ts(&effective_from, i, "effective_from")?,
                expires_at: c.ts(&expires_at, i, "expires_at")?,
                reset_period: c.coded(&reset_period, i, "reset_period", ResetPeriod::parse)?,
                alert_threshold_pct: c.opt_dec(&alert_threshold_pct, i, "alert_threshold_pct")?,
            };
            if p.package_count < 1 {
                return Err(c.bad("package_count", "must be at least 1"));
            }
            if p.hours_per_package <= Dec::ZERO {
                return Err(c.bad("hours_per_package", "must be positive"));
            }
            if p.price.is_negative() || p.price.places_used() > 2 {
                return Err(c.bad("price", format!("{} is not an amount payable in cents", p.price)));
            }
            if p.expires_at <= p.effective_from {
                return Err(c.bad("expires_at", "not after effective_from"));
            }
            if let Some(pct) = p.alert_threshold_pct {
                if pct.is_negative() || pct > Dec::from_int(100) {
                    return Err(c.bad("alert_threshold_pct", format!("{pct} is not 0..=100")));
                }
            }
            if !accounts.contains_key(p.account_id.as_str()) {
                return Err(c.bad("account_id", format!("unknown account '{}'", p.account_id)));
            }
            if !seen.insert(p.package_id.clone()) {
                return Err(c.bad("package_id", format!("'{}' appears twice", p.package_id)));
            }
            out.push(p);
            row += 1;
        }
    }
    Ok(out)
}

pub fn read_subscriptions(lake: &Lake) -> Result<Vec<Subscription>> {
    let file = SUBSCRIPTIONS;
    let mut out: Vec<Subscription> = Vec::new();
    let mut seen = HashSet::new();
    let mut row = 0usize;
    for b in read_table(lake, file, false)?.unwrap_or_default() {
        cols!(file, &b, subscription_id: StrCol, account_id: StrCol, region: StrCol,
            resource_id: StrCol, sku: StrCol, nodes: IntCol, unit_count: IntCol, term_unit: StrCol,
            term_count: IntCol, ordered_at: TsCol, start_at: TsCol, end_at: TsCol, renewal_of: StrCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let s = Subscription {
                subscription_id: c.str(&subscription_id, i, "subscription_id")?,
                account_id: c.str(&account_id, i, "account_id")?,
                region: c.str(&region, i, "region")?,
                resource_id: c.str(&resource_id, i, "resource_id")?,
                sku: c.str(&sku, i, "sku")?,
                nodes: c.int(&nodes, i, "nodes")?,
                unit_count: c.int(&unit_count, i, "unit_count")?,
                term_unit: c.coded(&term_unit, i, "term_unit", TermUnit::parse)?,
                term_count: c.int(&term_count, i, "term_count")?,
                ordered_at: c.ts(&ordered_at, i, "ordered_at")?,
                start_at: c.ts(&start_at, i, "start_at")?,
                end_at: c.ts(&end_at, i, "end_at")?,
                renewal_of: c.opt_str(&renewal_of, i).filter(|s| !s.is_empty()),
            };
            for (v, f) in [(s.nodes, "nodes"), (s.unit_count, "unit_count"), (s.term_count, "term_count")] {
                if v < 1 {
                    return Err(c.bad(f, "must be at least 1"));
                }
            }
            let months = match s.term_unit {
                TermUnit::Month => s.term_count,
                TermUnit::Year => s.term_count.saturating_mul(12),
            };
            if add_months(s.start_at, months) != Some(s.end_at) {
                return Err(c.bad("end_at", format!("is not start_at plus {} {}(s)", s.term_count, s.term_unit)));
            }
            if !seen.insert(s.subscription_id.clone()) {
                return Err(c.bad("subscription_id", format!("'{}' appears twice", s.subscription_id)));
            }
            out.push(s);
            row += 1;
        }
    }
    // A renewal must name a subscription of the same resource and start where it ends.
    let by_id: HashMap<&str, (usize, &Subscription)> = out.iter().enumerate().map(|(i, s)| (s.subscription_id.as_str(), (i, s))).collect();
    for (row, s) in out.iter().enumerate() {
        if let Some(of) = &s.renewal_of {
            let c = Cells { file, row };
            let Some((_, base)) = by_id.get(of.as_str()) else {
                return Err(c.bad("renewal_of", format!("unknown subscription '{of}'")));
            };
            if base.resource_id != s.resource_id || base.account_id != s.account_id || base.region != s.region {
                return Err(c.bad("renewal_of", format!("'{of}' is for another resource")));
            }
            if s.start_at != base.end_at {
                return Err(c.bad("start_at", format!("a renewal starts at the end_at of '{of}'")));
            }
        }
    }
    Ok(out)
}

/// The packages on sale (optional input): `sku, region, currency, hours_per_package,
/// price, term_months`.
pub fn read_offers(lake: &Lake) -> Result<Vec<crate::cost::recommend::Offer>> {
    let file = OFFERS;
    let mut out = Vec::new();
    let mut row = 0usize;
    for b in read_table(lake, file, false)?.unwrap_or_default() {
        cols!(file, &b, sku: StrCol, region: StrCol, currency: StrCol, hours_per_package: DecCol, price: DecCol, term_months: IntCol);
        for i in 0..b.num_rows() {
            let c = Cells { file, row };
            let o = crate::cost::recommend::Offer {
                sku: c.str(&sku, i, "sku")?,
                region: c.str(&region, i, "region")?,
                currency: c.str(&currency, i, "currency")?,
                hours_per_package: c.dec(&hours_per_package, i, "hours_per_package")?,
                price: c.dec(&price, i, "price")?,
                term_months: c.int(&term_months, i, "term_months")?,
            };
            if o.hours_per_package <= Dec::ZERO || o.price.is_negative() || o.term_months < 1 {
                return Err(c.bad("hours_per_package", "an offer needs positive hours, a price ≥ 0 and a term ≥ 1 month"));
            }
            out.push(o);
            row += 1;
        }
    }
    Ok(out)
}
