//! What the rules produce: compact records that point back at their inputs (a usage
//! row, a catalog row, a package, a subscription) instead of copying strings, so a
//! month of lines costs little memory until the writer turns them into columns.

use super::checks::{Rejection, RowLoc};
use crate::decimal::{Dec, Qty};
use crate::model::{Module, Phase, PricingUnit};
use crate::time::Micros;

/// What prepaid commitment a line belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Commitment {
    Package(u32),
    Subscription(u32),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// Pay-per-use usage, billed (billing-rules §4).
    Standard,
    /// A job on a pay-per-use dedicated pool: not priced itself (the pool is).
    PoolJob,
    /// Usage covered by a package or a subscription (`CommitmentDiscountStatus = Used`).
    Committed,
    /// Commitment that no usage used: lapsed package quota, uncovered subscription time.
    Unused,
    /// A package or subscription order.
    Purchase,
    /// `−truncated_amount` of one settlement hour.
    Adjustment,
}

/// One line item of the bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Index of the account in the run's account list.
    pub account: u32,
    pub kind: LineKind,
    /// The usage row priced, for usage lines (an index into the hour's chunks).
    pub usage: Option<RowLoc>,
    /// The usage row's module, as its checks parsed it, set with `usage`: the line
    /// items and the cost book read it here rather than each parse the row's text
    /// again.
    pub module: Option<Module>,
    pub charge_start: Micros,
    pub charge_end: Micros,
    pub quantity: Qty,
    pub unit: Option<PricingUnit>,
    /// The catalog row of the price: `SkuPriceId`, `ListUnitPrice`.
    pub price_row: Option<u32>,
    pub list_unit_price: Dec,
    pub list_cost: Dec,
    pub billed: Dec,
    pub effective: Dec,
    pub commitment: Option<Commitment>,
}

impl Line {
    pub fn blank(account: u32, kind: LineKind, charge_start: Micros, charge_end: Micros) -> Line {
        Line {
            account,
            kind,
            usage: None,
            module: None,
            charge_start,
            charge_end,
            quantity: Qty::ZERO,
            unit: None,
            price_row: None,
            list_unit_price: Dec::ZERO,
            list_cost: Dec::ZERO,
            billed: Dec::ZERO,
            effective: Dec::ZERO,
            commitment: None,
        }
    }
}

/// One account's settlement of one hour (billing-rules §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub account: u32,
    pub hour_start: Micros,
    /// The hour's exact pay-per-use sum.
    pub line_amount: Dec,
    /// `line_amount` truncated to 2 places.
    pub deduction: Dec,
    pub truncated: Dec,
    pub balance_after: Dec,
    pub state: Phase,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AlertKind {
    PackageUsage,
    Balance,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::PackageUsage => "package_usage",
            AlertKind::Balance => "balance",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    pub account: u32,
    pub package: Option<u32>,
    pub time: Micros,
    /// Remaining quota (10 places) or balance.
    pub value: Dec,
}

/// A rejected usage row of an hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub loc: RowLoc,
    pub why: Rejection,
}

/// One interval of an account's arrears timeline within a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusInterval {
    pub account: u32,
    pub state: Phase,
    pub from: Micros,
    pub to: Micros,
    /// When the arrears episode this interval belongs to started.
    pub arrears_since: Option<Micros>,
}

/// One draw of a package for part of a usage row: the operator's audit trail of which
/// package paid for which row, and in which order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deduction {
    pub account: u32,
    pub package: u32,
    pub usage: RowLoc,
    pub usage_start: Micros,
    /// 1 for the package drawn first for this row, 2 for the next, …
    pub draw_order: u32,
    /// Packages with quota left that could serve the row.
    pub applicable: u32,
    pub quantity: crate::decimal::Qty,
    pub remaining_after: crate::decimal::Qty,
}
