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
