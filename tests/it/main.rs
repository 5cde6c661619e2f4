//! The integration tests: one binary.

mod commitments;
mod cost;
mod focus;
mod harness;
mod lakes;
mod properties;
mod s3_server;
mod scenarios;
