//! The lake adapter: object-store URLs, the contract's layout, Parquet in and out.

pub mod chunk;
pub mod columns;
pub mod inputs;
pub mod outputs;
pub mod sink;
pub mod state;
pub mod store;
