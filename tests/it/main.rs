//! The integration tests: one binary.

mod commitments;
mod cost;
mod focus;
mod harness;
mod lakes;
mod properties;
mod report;
mod s3_server;
mod scenarios;
