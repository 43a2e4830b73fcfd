//! Test support shared by every cross-crate test: a harness over any store and the
//! behaviour suite that runs the same scenarios against each store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    reason = "test support: a failed expectation aborts the test that hit it"
)]

pub mod behaviour;
pub mod cluster;
pub mod conformance;
pub mod fixtures;
pub mod harness;
pub mod http;
pub mod nats;
pub mod nodes;
pub mod pg;
pub mod races;
pub mod receiver;
pub mod scenario;
pub mod smtp;
pub mod sqlite;
