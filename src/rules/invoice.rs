//! The invoice of an account and period (billing-rules §7): its figures, drawn from
//! the account's settlements and purchases, and the tie-out the publication checks —
//! the invoice's lines sum to `total_due` exactly.

use super::account::AccountBook;
use crate::decimal::{Dec, Overflow};
use crate::model::Phase;
use crate::time::Period;

/// One account's invoice (billing-rules §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    pub account: u32,
    /// Σ hourly deductions of the period's settlements.
    pub usage_charges: Dec,
    /// Σ purchase lines of the period.
    pub purchase_charges: Dec,
    /// `usage_charges + purchase_charges`.
    pub total_due: Dec,
    /// Σ the cut-off parts of the hourly settlements, never billed.
    pub truncated: Dec,
    /// Σ ListCost of the usage that packages and subscriptions covered.
    pub committed_list_value: Dec,
    pub opening_balance: Dec,
    pub payments: Dec,
    pub closing_balance: Dec,
    /// `max(0, −closing_balance)`.
    pub arrears_amount: Dec,
    /// The account's phase at the end of the period.
    pub status: Phase,
    pub line_count: u64,
    /// Σ BilledCost of the invoice's lines, for the tie-out check.
    pub billed_sum: Dec,
}

impl Invoice {
    /// Whether the invoice's lines sum to what it asks to be paid.
    pub fn ties_out(&self) -> bool {
        self.billed_sum == self.total_due
    }
}

/// The invoice of a closed account book: `purchases` is Σ its purchase lines of the
/// period, `(line_count, billed_sum)` the count and Σ BilledCost of all its lines.
pub fn invoice(book: &AccountBook, period: Period, purchases: Dec, (line_count, billed_sum): (u64, Dec)) -> Result<Invoice, Overflow> {
    Ok(Invoice {
        account: book.idx,
        usage_charges: book.usage_charges,
        purchase_charges: purchases,
        total_due: book.usage_charges.plus(purchases, "invoice's total due")?,
        truncated: book.truncated_total,
        committed_list_value: book.committed_list_value,
        opening_balance: book.opening_balance,
        payments: book.payments_total,
        closing_balance: book.balance,
        arrears_amount: book.balance.neg().max(Dec::ZERO),
        status: book.phase_at(period.end()),
        line_count,
        billed_sum,
    })
}
