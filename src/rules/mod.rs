//! The billing rules, one module per rule family, as functions over plain data: no
//! object store, clock or command line in here.

pub mod account;
pub mod checks;
pub mod dedup;
pub mod packages;
pub mod pricing;
pub mod records;
pub mod subscriptions;
