//! Cost optimization (billing-rules §8): recommendations with the saving of each.
//!
//! Purchases are judged by re-rating, not by rule of thumb: for each account the best
//! candidate purchase — a monthly subscription for a pay-per-use pool or Lite resource
//! that ran at a fixed size, or packages for pay-per-use public compute — is added to
//! the inventory and the period is rated again for that account. The saving is the
//! difference of the two invoices' `total_due`, purchase included. The other kinds
//! (lapsing packages, idle notebooks paying for disks, accounts about to fall into
//! arrears) are estimates from the period's figures, with their evidence: the sums
//! they rest on (an idle notebook's disk cost, an account's last week of deductions)
//! are Polars queries over the cost book.

use super::frame::{dec_column, dec_sums, exact_sum, polars_err, u32s};
use super::CostBook;
use crate::decimal::{mul_div_round, Dec, Overflow, Qty};
use crate::lake::inputs::InputError;
use crate::model::*;
use crate::rules::packages;
use crate::rules::pricing::Catalog;
use crate::time::{add_months, format_ts, Period, DAY};
use polars::prelude::*;
use rustc_hash::FxHashMap;

/// A package that can be bought (optional input `catalog/package_offers.parquet`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub sku: String,
    pub region: String,
    pub currency: String,
    pub hours_per_package: Dec,
    pub price: Dec,
    pub term_months: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Purchase {
    Subscription(Subscription),
    Package(Package),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    pub account: u32,
    pub id: String,
    pub kind: &'static str,
    pub resource: Option<String>,
    pub sku: Option<String>,
    pub region: Option<String>,
    pub action: String,
    pub saving: Dec,
    /// The saving was measured by re-rating the period with the purchase.
    pub verified: bool,
    pub current_cost: Option<Dec>,
    pub alternative_cost: Option<Dec>,
    pub evidence: String,
    pub purchase: Option<Purchase>,
}

/// The best candidate purchase of each account, by estimated saving (positive only).
pub fn purchase_candidates(
    book: &CostBook,
    accounts: &[Account],
    catalog: &Catalog,
    offers: &[Offer],
    period: Period,
) -> Result<Vec<Recommendation>, Overflow> {
    let mut best: FxHashMap<u32, Recommendation> = FxHashMap::default();
    let start = period.start();
    let mut consider = |r: Recommendation| {
        if r.saving <= Dec::ZERO {
            return;
        }
        match best.get(&r.account) {
            Some(b) if (b.saving, &b.id) >= (r.saving, &r.id) => {}
            _ => {
                best.insert(r.account, r);
            }
        }
    };
    let mut resources: Vec<_> = book.ppu_resources.iter().collect();
    resources.sort_by(|a, b| a.0.cmp(b.0));
    for ((acct, resource), r) in resources {
        let a = &accounts[*acct as usize];
        if r.min_size != r.max_size || r.hours * 10 < period.hours() * 9 {
            continue; // scaled, or not running most of the period: a subscription would refuse or idle
        }
        let Some(row) = catalog.term_price(&r.sku, &r.region, &a.currency, PricingUnit::NodeMonth, start) else { continue };
        let Some(price) = row.unit_price.0.checked_mul(r.min_size as i128).map(|v| Dec(v).round_dp(2)) else { continue };
        let sub = Subscription {
            subscription_id: format!("recommended-{resource}"),
            account_id: a.account_id.clone(),
            region: r.region.clone(),
            resource_id: resource.clone(),
            sku: r.sku.clone(),
            nodes: r.min_size.clamp(1, i32::MAX as i64) as i32,
            unit_count: 1,
            term_unit: TermUnit::Month,
            term_count: 1,
            ordered_at: start,
            start_at: start,
            end_at: add_months(start, 1).unwrap_or(start),
            renewal_of: None,
        };
        consider(Recommendation {
            account: *acct,
            id: format!("subscription:{resource}"),
            kind: "subscription",
            resource: Some(resource.clone()),
            sku: Some(r.sku.clone()),
            region: Some(r.region.clone()),
            action: format!("subscribe {resource} monthly ({} × {} at {} per node-month) instead of paying per use", r.min_size, r.sku, row.unit_price),
            saving: r.cost.minus(price, "estimated saving")?,
            verified: false,
            current_cost: Some(r.cost),
            alternative_cost: Some(price),
            evidence: format!("{} pay-per-use hours at a fixed size of {} cost {}", r.hours, r.min_size, r.cost),
            purchase: Some(Purchase::Subscription(sub)),
        });
    }
    let mut public: Vec<_> = book.ppu_public.iter().collect();
    public.sort_by(|a, b| a.0.cmp(b.0));
    for ((acct, sku, region), (qty, cost)) in public {
        let a = &accounts[*acct as usize];
        for o in offers.iter().filter(|o| &o.sku == sku && &o.region == region && o.currency == a.currency) {
            let Some(per) = Qty::from_dec(o.hours_per_package) else { continue };
            if per.is_zero() {
                continue;
            }
            let count = qty.0 / per.0;
            if count < 1 || count > i32::MAX as i128 {
                continue;
            }
            let price = o.price.0.checked_mul(count).and_then(Dec::within).ok_or(Overflow { figure: "package offer price" })?;
            let covered_cost =
                mul_div_round(cost.0, per.0 * count, qty.0).and_then(Dec::within).ok_or(Overflow { figure: "package-covered cost" })?.round_dp(2);
            let pkg = Package {
                package_id: format!("recommended-{sku}-{region}"),
                account_id: a.account_id.clone(),
                region: region.clone(),
                sku: sku.clone(),
                package_count: count as i32,
                hours_per_package: o.hours_per_package,
                price,
                purchased_at: start,
                effective_from: start,
                expires_at: add_months(start, o.term_months.max(1)).unwrap_or(start),
                reset_period: ResetPeriod::None,
                alert_threshold_pct: None,
            };
            consider(Recommendation {
                account: *acct,
                id: format!("package:{sku}:{region}"),
                kind: "package",
                resource: None,
                sku: Some(sku.clone()),
                region: Some(region.clone()),
                action: format!("buy {count} × {} node-hour packages of {sku} in {region} at {} each", o.hours_per_package, o.price),
                saving: covered_cost.minus(price, "estimated saving")?,
                verified: false,
                current_cost: Some(*cost),
                alternative_cost: Some(price),
                evidence: format!("{} node-hours of {sku} in {region} paid per use, {}", qty.to_dec(), cost),
                purchase: Some(Purchase::Package(pkg)),
            });
        }
    }
    let mut out: Vec<Recommendation> = best.into_values().collect();
    out.sort_by_key(|r| r.account);
    Ok(out)
}

/// Packages whose quota will lapse unused at the current burn rate.
pub fn lapsing_packages(ledger: &[crate::engine::LedgerRow], pkgs: &[Package], period: Period) -> Result<Vec<Recommendation>, Overflow> {
    let mut out = Vec::new();
    let (ps, pe) = (period.start(), period.end());
    for l in ledger {
        let p = &pkgs[l.package as usize];
        let in_force_days = ((p.expires_at.min(pe) - p.effective_from.max(ps)) / DAY).max(1);
        let burn_per_day = Qty(l.used.0 / in_force_days as i128);
        let (at_risk, when) = match p.reset_period {
            ResetPeriod::None if p.expires_at > pe && p.expires_at <= period.next().end() => {
                let days_left = (p.expires_at - pe) / DAY;
                (
                    l.closing
                        .minus(Qty(burn_per_day.0.checked_mul(days_left as i128).ok_or(Overflow { figure: "package burn" })?), "package quota at expiry")?,
                    p.expires_at,
                )
            }
            ResetPeriod::Month if p.expires_at > pe => (l.lapsed, pe),
            _ => continue,
        };
        if at_risk.0 <= 0 {
            continue;
        }
        out.push(Recommendation {
            account: l.account,
            id: format!("package_lapse:{}", p.package_id),
            kind: "package_lapse",
            resource: Some(p.package_id.clone()),
            sku: Some(p.sku.clone()),
            region: Some(p.region.clone()),
            action: format!("use {} node-hours of {} in {} before {}, or they lapse", at_risk.to_dec(), p.sku, p.region, format_ts(when)),
            saving: packages::amortized(p, at_risk)?,
            verified: false,
            current_cost: None,
            alternative_cost: None,
            evidence: format!(
                "{} used of {} this period ({} per day); {} left",
                l.used.to_dec(),
                l.opening.to_dec(),
                burn_per_day.to_dec(),
                l.closing.to_dec()
            ),
            purchase: None,
        });
    }
    Ok(out)
}

/// Notebooks whose EVS disk kept billing while their compute had not run for at
/// least `idle_days` days at the period's end.
pub fn idle_notebooks(book: &CostBook, period: Period, idle_days: i64) -> Result<Vec<Recommendation>, InputError> {
    let mut nbs: Vec<_> = book.notebooks.iter().filter(|(_, u)| !u.disk_by_day.is_empty()).collect();
    nbs.sort_by(|a, b| a.0.cmp(b.0));
    // Each notebook idle long enough, and since when; then its disk's cost since then.
    let mut idle = Vec::new();
    for (k, (_, usage)) in nbs.iter().enumerate() {
        let since = usage.last_compute.unwrap_or(period.start()).max(period.start());
        let days = (period.end() - since) / DAY;
        if days >= idle_days {
            idle.push((k as u32, since, days));
        }
    }
    let (mut nb, mut day, mut since_day, mut cost) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &(k, since, _) in &idle {
        for (d, c) in &nbs[k as usize].1.disk_by_day {
            nb.push(k);
            day.push(*d);
            since_day.push(since.div_euclid(DAY));
            cost.push(c.0);
        }
    }
    const WHAT: &str = "cost/recommendations (idle notebooks)";
    let rows = nb.len();
    let disk = DataFrame::new(
        rows,
        vec![Column::new("nb".into(), nb), Column::new("day".into(), day), Column::new("since".into(), since_day), dec_column(WHAT, "cost", cost)?],
    )
    .map_err(polars_err(WHAT))?;
    let since = disk.lazy().filter(col("day").gt_eq(col("since"))).group_by([col("nb")]).agg(exact_sum("cost", "cost")).collect().map_err(polars_err(WHAT))?;
    let disk_since: FxHashMap<u32, Dec> = u32s(WHAT, &since, "nb")?.into_iter().zip(dec_sums(WHAT, &since, "cost")?).collect();
    let mut out = Vec::new();
    for (k, _, idle) in idle {
        let ((acct, nb), usage) = nbs[k as usize];
        let disk = disk_since.get(&k).copied().unwrap_or_default();
        let per_month = mul_div_round(disk.0, 30, idle as i128).and_then(Dec::within).ok_or(Overflow { figure: "idle disk cost" })?.round_dp(2);
        out.push(Recommendation {
            account: *acct,
            id: format!("idle_notebook:{nb}"),
            kind: "idle_notebook",
            resource: Some(nb.clone()),
            sku: None,
            region: None,
            action: format!("delete notebook {nb} or release its EVS disk: it has not computed for {idle} days"),
            saving: per_month,
            verified: false,
            current_cost: Some(disk),
            alternative_cost: Some(Dec::ZERO),
            evidence: match usage.last_compute {
                Some(t) => format!("compute last ran until {}; its disk cost {} since", format_ts(t), disk),
                None => format!("no compute this period; its disk cost {disk}"),
            },
            purchase: None,
        });
    }
    Ok(out)
}

/// Accounts that will go into arrears within `horizon_days` at the burn rate of the
/// period's last 7 days.
pub fn arrears_risk(book: &CostBook, balances: &[(u32, Dec, Phase)], period: Period, horizon_days: i64) -> Result<Vec<Recommendation>, InputError> {
    let week_of = last_week_deductions(book, period)?;
    let mut out = Vec::new();
    for &(acct, balance, phase) in balances {
        if phase != Phase::Active || balance.is_negative() {
            continue;
        }
        let week = week_of.get(&acct).copied().unwrap_or_default();
        if week <= Dec::ZERO {
            continue;
        }
        // days left = balance / (week / 7)
        let days_left = mul_div_round(balance.0, 7, week.0).unwrap_or(i128::MAX);
        if days_left > horizon_days as i128 {
            continue;
        }
        let month_need = mul_div_round(week.0, 30, 7).and_then(Dec::within).ok_or(Overflow { figure: "month's deductions" })?.round_dp(2);
        out.push(Recommendation {
            account: acct,
            id: "arrears_risk".into(),
            kind: "arrears_risk",
            resource: None,
            sku: None,
            region: None,
            action: format!("top up at least {}: the balance lasts about {days_left} more days", month_need.minus(balance, "top-up")?.max(Dec::ZERO)),
            saving: Dec::ZERO,
            verified: false,
            current_cost: Some(week),
            alternative_cost: None,
            evidence: format!("balance {balance} at close; {week} deducted in the last 7 days"),
            purchase: None,
        });
    }
    Ok(out)
}

/// Each account's settlement deductions in the period's last 7 days.
fn last_week_deductions(book: &CostBook, period: Period) -> Result<FxHashMap<u32, Dec>, InputError> {
    const WHAT: &str = "cost/recommendations (arrears risk)";
    let last_day = (period.end() - 1).div_euclid(DAY);
    let (mut acct, mut day, mut amount) = (Vec::new(), Vec::new(), Vec::new());
    for ((a, d), x) in &book.deductions {
        acct.push(*a);
        day.push(*d);
        amount.push(x.0);
    }
    let rows = acct.len();
    let deductions = DataFrame::new(rows, vec![Column::new("acct".into(), acct), Column::new("day".into(), day), dec_column(WHAT, "amount", amount)?])
        .map_err(polars_err(WHAT))?;
    let week = deductions
        .lazy()
        .filter(col("day").gt_eq(lit(last_day - 6)).and(col("day").lt_eq(lit(last_day))))
        .group_by([col("acct")])
        .agg(exact_sum("amount", "amount"))
        .collect()
        .map_err(polars_err(WHAT))?;
    Ok(u32s(WHAT, &week, "acct")?.into_iter().zip(dec_sums(WHAT, &week, "amount")?).collect())
}
