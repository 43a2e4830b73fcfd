//! The pure core of user-engine: identifiers, the multi-tenant model, the decision
//! function, audit and event types, the ports, and the use cases.
//!
//! Nothing here knows about SQL, HTTP or an async runtime: time, ids, randomness and
//! storage arrive through the [`ports`].

pub mod audit;
pub mod authz;
pub mod catalog;
pub mod cursor;
pub mod error;
pub mod event;
pub mod ids;
pub mod mail;
pub mod model;
pub mod oidc;
pub mod ports;
pub mod relay;
pub mod scim;
pub mod signing;
pub mod usecases;
pub mod webhook;

#[cfg(feature = "fakes")]
pub mod fakes;

pub use error::Error;
