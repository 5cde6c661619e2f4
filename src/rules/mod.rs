//! The billing rules, one module per rule family, as functions over plain data: no
//! object store, clock or command line in here. Money is exact: no binary floating
//! point in any rule.

#![deny(clippy::float_arithmetic)]

pub mod account;
pub mod allocation;
pub mod batch;
pub mod checks;
pub mod dedup;
pub mod invoice;
pub mod packages;
pub mod pricing;
pub mod purchases;
pub mod records;
pub mod settlement;
pub mod subscriptions;
