//! The identities a close must satisfy before anything is published: each invoice
//! ties out and balances, each package ledger balances, the lines handed to the
//! writers add up to the invoices, allocations add up to the effective cost.

use crate::decimal::Dec;
use crate::jobs::JobError;

/// The identities every close must satisfy before anything is published.
pub fn check_conservation(res: &crate::engine::PeriodResult) -> Result<(), JobError> {
    for inv in &res.invoices {
        if !inv.ties_out() {
            return Err(JobError::Conservation(format!("invoice of account #{}: Σ BilledCost {} ≠ total_due {}", inv.account, inv.billed_sum, inv.total_due)));
        }
        let expect_close = inv.opening_balance.plus(inv.payments, "balance")?.minus(inv.usage_charges, "balance")?;
        if expect_close != inv.closing_balance {
            return Err(JobError::Conservation(format!(
                "account #{}: opening {} + payments {} − usage {} ≠ closing {}",
                inv.account, inv.opening_balance, inv.payments, inv.usage_charges, inv.closing_balance
            )));
        }
    }
    for l in &res.ledger {
        let [opening, used, lapsed, closing] = l.shown;
        let shown_balances = opening.checked_sub(used).and_then(|q| q.checked_sub(lapsed)) == Some(closing);
        if l.opening.checked_sub(l.used).and_then(|q| q.checked_sub(l.lapsed)) != Some(l.closing) || l.closing.0 < 0 || !shown_balances {
            return Err(JobError::Conservation(format!("package #{}: ledger does not balance", l.package)));
        }
    }
    Ok(())
}

/// Allocations add up to each account's total effective cost, exactly.
pub fn check_allocation(cost: &crate::cost::CostBook) -> Result<(), JobError> {
    let allocated = cost.allocated_totals()?;
    for (acct, total) in &cost.effective {
        let got = allocated.get(acct).copied().unwrap_or_default();
        if got != *total {
            return Err(JobError::Conservation(format!("account #{acct}: allocations add up to {got}, effective cost is {total}")));
        }
    }
    Ok(())
}

/// Every composition view of the cost analysis adds up to each account's bill: its
/// billed cost to the invoice's `total_due`, its effective cost to the account's.
pub fn check_composition(
    composition: &[crate::cost::views::Composed],
    cost: &crate::cost::CostBook,
    res: &crate::engine::PeriodResult,
) -> Result<(), JobError> {
    let mut totals: rustc_hash::FxHashMap<(u32, u8), (Dec, Dec)> = rustc_hash::FxHashMap::default();
    for c in composition {
        let t = totals.entry((c.account, c.dim)).or_default();
        t.0 = t.0.plus(c.sums.billed, "composition total")?;
        t.1 = t.1.plus(c.sums.effective, "composition total")?;
    }
    for inv in &res.invoices {
        let effective = cost.effective.get(&inv.account).copied().unwrap_or_default();
        for (d, dim) in crate::cost::DIMS.into_iter().enumerate() {
            let (billed, eff) = totals.get(&(inv.account, d as u8)).copied().unwrap_or_default();
            if billed != inv.total_due || eff != effective {
                return Err(JobError::Conservation(format!(
                    "account #{}: the {dim} view of the cost analysis adds up to {billed} billed and {eff} effective; the invoice is {} and the effective cost {effective}",
                    inv.account, inv.total_due
                )));
            }
        }
    }
    Ok(())
}

/// The lines handed to the writers add up to each invoice: count and Σ BilledCost.
pub(super) fn check_written(res: &crate::engine::PeriodResult, written: &[(u64, Dec)]) -> Result<(), JobError> {
    for inv in &res.invoices {
        let (n, billed) = written.get(inv.account as usize).copied().unwrap_or_default();
        if n != inv.line_count || billed != inv.total_due {
            return Err(JobError::Conservation(format!(
                "account #{}: {n} lines written with Σ BilledCost {billed}, the invoice has {} lines and total_due {}",
                inv.account, inv.line_count, inv.total_due
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{views::Composed, CostBook, Sums, DIMS};
    use crate::rules::invoice::Invoice;

    fn invoice(account: u32, total_due: Dec) -> Invoice {
        let z = Dec::ZERO;
        Invoice {
            account,
            usage_charges: total_due,
            purchase_charges: z,
            total_due,
            truncated: z,
            committed_list_value: z,
            opening_balance: z,
            payments: z,
            closing_balance: z,
            arrears_amount: z,
            status: crate::model::Phase::Active,
            line_count: 2,
            billed_sum: total_due,
        }
    }

    /// An account billed 10.00 whose hour was cut off by 0.004 (an adjustment of
    /// -0.004): every view holds both lines, or the check refuses the close.
    #[test]
    fn every_composition_view_must_add_up_to_the_bill() {
        let d = |s: &str| Dec::parse(s).unwrap();
        let res = crate::engine::PeriodResult { invoices: vec![invoice(0, d("10.00"))], ..Default::default() };
        let mut cost = CostBook::default();
        cost.effective.insert(0, d("10.00"));
        let usage = Sums { billed: d("10.004"), effective: d("10.004"), list: d("10.004") };
        let adjustment = Sums { billed: d("-0.004"), effective: d("-0.004"), list: d("-0.004") };
        // Keys: 0 is the GPU's SKU (or region, …), 1 the settlement's own.
        let mut composition = Vec::new();
        for dim in 0..DIMS.len() as u8 {
            composition.push(Composed { account: 0, dim, key: 0, sums: usage });
            composition.push(Composed { account: 0, dim, key: 1, sums: adjustment });
        }
        check_composition(&composition, &cost, &res).unwrap();
        let sku = DIMS.iter().position(|d| *d == "sku").unwrap() as u8;
        composition.retain(|c| !(c.dim == sku && c.key == 1));
        let err = check_composition(&composition, &cost, &res).unwrap_err().to_string();
        assert!(err.contains("sku view") && err.contains("10.004"), "{err}");
    }
}
