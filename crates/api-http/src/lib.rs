//! user-engine's HTTP API: the axum router for every route of SPEC §4, authentication,
//! problem+json errors, and the production adapters of the domain's ports.

pub mod app;
pub mod audit;
pub mod config;
pub mod diagnose;
pub mod dto;
pub mod errors;
pub mod extract;
pub mod forwarded;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod relay;
pub mod routes;
pub mod security;
pub mod store;
