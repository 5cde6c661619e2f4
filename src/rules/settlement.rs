//! Hourly settlement, balance and arrears (billing-rules §5): payments applied at
//! `paid_at`, each hour's pay-per-use sum truncated to 2 places and deducted at the
//! end of the hour, arrears episodes with their grace, retention and release, the
//! balance alert, and the account's arrears timeline of the period.

use super::account::{AccountBook, AccountOpening, HourOut};
use super::records::*;
use crate::decimal::{Dec, Overflow};
use crate::model::Phase;
use crate::time::{Micros, Period, HOUR};

impl AccountBook {
    /// The account's phase at `t`, given the open episode.
    pub fn phase_at(&self, t: Micros) -> Phase {
        match self.arrears_since {
            None => Phase::Active,
            Some(s) => phase_in_episode(s, self.grace, self.retention, t),
        }
    }

    /// Applies the payments made at or before `t`. A payment that brings the balance
    /// to zero or above ends the arrears episode; one that lifts it above the alert
    /// threshold re-arms the balance alert.
    pub fn apply_payments_until(&mut self, t: Micros) -> Result<(), Overflow> {
        while let Some(&(at, amount)) = self.payments.get(self.next_payment) {
            if at > t {
                break;
            }
            self.next_payment += 1;
            self.balance = self.balance.plus(amount, "balance")?;
            self.payments_total = self.payments_total.plus(amount, "payments")?;
            if self.arrears_since.is_some() && !self.balance.is_negative() {
                self.arrears_since = None;
                if let Some(e) = self.episodes.last_mut() {
                    e.1 = Some(at);
                }
            }
            if let Some(th) = self.alert_threshold {
                if !self.balance_alert_armed && self.balance > th {
                    self.balance_alert_armed = true;
                }
            }
        }
        Ok(())
    }

    /// Adds to the open hour a pay-per-use sum of rows rated elsewhere (a partial
    /// what-if run): the hour is then settled as if they had been rated here.
    pub fn add_unrated(&mut self, sum: Dec) -> Result<(), Overflow> {
        self.hour_sum = self.hour_sum.plus(sum, "hour's pay-per-use amount")?;
        self.hour_has_ppu = true;
        Ok(())
    }

    /// In arrears at any time of the period so far, or opened with a negative balance.
    pub fn had_arrears(&self) -> bool {
        !self.episodes.is_empty() || self.arrears_since.is_some() || self.opening_balance.is_negative()
    }

    /// Settles the hour that starts at `hour_start`, if it had pay-per-use lines: the
    /// deduction is their sum truncated to 2 places, at the end of the hour, after the
    /// payments made up to that instant.
    pub fn settle(&mut self, hour_start: Micros, out: &mut HourOut) -> Result<(), Overflow> {
        let at = hour_start + HOUR;
        self.apply_payments_until(at)?;
        if !self.hour_has_ppu {
            return Ok(());
        }
        let line_amount = self.hour_sum;
        let deduction = line_amount.trunc_dp(2);
        let truncated = line_amount.minus(deduction, "truncated amount")?;
        self.hour_sum = Dec::ZERO;
        self.hour_has_ppu = false;
        if self.arrears_since.is_none() && deduction > self.balance {
            self.arrears_since = Some(at);
            self.episodes.push((at, None));
        }
        self.balance = self.balance.minus(deduction, "balance")?;
        self.usage_charges = self.usage_charges.plus(deduction, "usage charges")?;
        self.truncated_total = self.truncated_total.plus(truncated, "truncated amount")?;
        if let Some(th) = self.alert_threshold {
            if self.balance_alert_armed && self.balance <= th {
                self.balance_alert_armed = false;
                out.alerts.push(Alert { kind: AlertKind::Balance, account: self.idx, package: None, time: at, value: self.balance });
            }
        }
        let mut adj = Line::blank(self.idx, LineKind::Adjustment, hour_start, at);
        adj.billed = truncated.neg();
        adj.effective = truncated.neg();
        out.lines.push(adj);
        out.settlement =
            Some(Settlement { account: self.idx, hour_start, line_amount, deduction, truncated, balance_after: self.balance, state: self.phase_at(at) });
        Ok(())
    }

    /// Applies the period's remaining payments and returns the arrears timeline of the
    /// period: consecutive intervals covering it.
    pub fn close(&mut self, period: Period) -> Result<Vec<StatusInterval>, Overflow> {
        self.apply_payments_until(period.end() - 1)?;
        let (start, end) = (period.start(), period.end());
        let mut out = Vec::new();
        let mut cursor = start;
        let mut push = |state: Phase, from: Micros, to: Micros, since: Option<Micros>| {
            if to > from {
                out.push(StatusInterval { account: self.idx, state, from, to, arrears_since: since });
            }
        };
        for &(s, e) in &self.episodes {
            let e = e.unwrap_or(end).min(end);
            push(Phase::Active, cursor, s.max(start), None);
            let grace_end = s.saturating_add(self.grace);
            let retention_end = grace_end.saturating_add(self.retention);
            let from = s.max(start);
            push(Phase::Arrears, from, e.min(grace_end), Some(s));
            push(Phase::Frozen, from.max(grace_end), e.min(retention_end), Some(s));
            push(Phase::Released, from.max(retention_end), e, Some(s));
            cursor = e.max(cursor);
        }
        push(Phase::Active, cursor, end, None);
        Ok(out)
    }

    pub fn opening_for_next(&self) -> AccountOpening {
        AccountOpening { balance: self.balance, arrears_since: self.arrears_since, balance_alert_armed: self.balance_alert_armed }
    }
}

/// The phase at `t` of an arrears episode that started at `since`.
pub fn phase_in_episode(since: Micros, grace: i64, retention: i64, t: Micros) -> Phase {
    let grace_end = since.saturating_add(grace);
    if t < grace_end {
        Phase::Arrears
    } else if t < grace_end.saturating_add(retention) {
        Phase::Frozen
    } else {
        Phase::Released
    }
}
