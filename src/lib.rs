//! billrun: the batch bill run of a cloud AI platform.
//!
//! Reads hourly usage, the price catalog, prepaid packages, subscriptions, accounts
//! and payments from a Parquet lake; rates every row exactly; settles each account's
//! prepaid balance hour by hour with arrears; writes invoices, FOCUS line items and
//! the other tables of the data contract back as Parquet.

pub mod config;
pub mod cost;
pub mod decimal;
pub mod engine;
pub mod focus;
pub mod generate;
pub mod jobs;
pub mod lake;
pub mod model;
pub mod rules;
pub mod shard;
pub mod text;
pub mod time;
