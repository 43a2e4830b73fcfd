//! user-engine's HTTP API: the axum router for every route of SPEC §4, authentication,
//! problem+json errors, the OpenAPI document and the service's metrics.

pub mod app;
pub mod audit;
pub mod dto;
pub mod errors;
pub mod extract;
pub mod forwarded;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod scim;

#[cfg(test)]
mod middleware_tests;
