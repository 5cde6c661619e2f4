//! The integration tests: one binary.

mod azurite;
mod badinput;
mod boundary;
mod commitments;
mod cost;
mod fake_gcs;
mod fault_proxy;
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
mod shards;
mod spark;
mod stores;
