//! The integration tests: one binary.

mod badinput;
mod boundary;
mod commitments;
mod cost;
mod focus;
mod harness;
mod lakes;
mod operations;
mod peer;
mod properties;
mod reliability;
mod report;
mod s3_server;
mod scenario_files;
mod scenarios;
