//! SCIM 2.0 (RFC 7643 and RFC 7644) pieces that are pure domain logic: parsing and
//! evaluating what a SCIM client sends, with no HTTP or SQL in sight.

pub mod apply;
pub mod filter;
pub mod group;
pub mod model;
pub mod patch;
pub mod schema;
pub mod user;
