//! The integration tests: one binary.

mod harness;
mod scenarios;
