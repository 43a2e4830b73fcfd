//! The one cross-crate test binary: the behaviour suite on the in-memory store, the
//! model-based isolation test, and the decision properties.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    reason = "tests: a failed expectation aborts the test"
)]

mod audit_tamper;
mod authorize_paths;
mod behaviour_fake;
mod behaviour_pg;
mod behaviour_pooled;
mod behaviour_sqlite;
mod cluster;
mod decision_properties;
mod diagnostics;
mod differential;
mod differential_sqlite;
mod erasure;
mod feed_load;
mod fresh_decisions;
mod http_api;
mod http_bounds;
mod http_hardening;
mod http_lifecycle;
mod http_rules;
mod http_secrets;
mod http_sessions;
mod mail;
mod model;
mod nats_tls;
mod oidc;
mod oidc_http;
mod pg_concurrency;
mod pg_isolation;
mod pg_tls;
mod relay;
mod relay_crash;
mod relay_embedded;
mod relay_outage;
mod scim_checker;
mod scim_filter_sql;
mod scim_http;
mod scim_members_filter;
mod signing_keys;
mod sqlite_isolation;
mod webhook_retries;
mod webhooks;
