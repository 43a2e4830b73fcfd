//! Tenant onboarding diagnostics (SPEC §6): is this tenant ready to be used?
//!
//! The domain gathers a tenant's facts through its ports
//! ([`Engine::tenant_diagnostics`]); this crate judges them. Every check is a pure
//! function of [`TenantFacts`] and [`Options`], all of them run (none stops at the first
//! failure), and each says what it saw (`detail`) and, unless it passed, the exact API
//! call or command that fixes it (`remedy`). The HTTP endpoint and `user-engine
//! diagnose` both serialise the same [`Report`].

mod checks;

use domain::ids::TenantId;
use domain::usecases::{Caller, Engine, TenantFacts};
use time::Duration;

pub use checks::evaluate_checks;

/// The id of every check, in report order.
pub mod ids {
    pub const TENANT_ACTIVE: &str = "tenant.active";
    pub const ADMINS_PRESENT: &str = "admins.present";
    pub const ADMINS_REDUNDANT: &str = "admins.redundant";
    pub const ADMINS_MFA: &str = "admins.mfa";
    pub const CATALOG_SCOPES_ENABLED: &str = "catalog.scopes_enabled";
    pub const BINDINGS_PRESENT: &str = "bindings.present";
    pub const BINDINGS_VALID: &str = "bindings.valid";
    pub const API_KEYS_SCOPES_ENABLED: &str = "api_keys.scopes_enabled";
    pub const AUDIT_WRITABLE: &str = "audit.writable";
    pub const AUDIT_CHAIN_INTACT: &str = "audit.chain_intact";
    pub const OUTBOX_LAG: &str = "outbox.lag";
    pub const DELIVERY_FAILING: &str = "delivery.failing";

    /// Every check, in the order a report lists them.
    pub const ALL: &[&str] = &[
        TENANT_ACTIVE,
        ADMINS_PRESENT,
        ADMINS_REDUNDANT,
        ADMINS_MFA,
        CATALOG_SCOPES_ENABLED,
        BINDINGS_PRESENT,
        BINDINGS_VALID,
        API_KEYS_SCOPES_ENABLED,
        AUDIT_WRITABLE,
        AUDIT_CHAIN_INTACT,
        OUTBOX_LAG,
        DELIVERY_FAILING,
    ];
}

/// What the checks are told beyond the facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `outbox.lag` warns when an event has waited for the relay longer than this.
    pub outbox_lag_warn: Duration,
    /// Whether a relay is expected to publish the outbox (NATS is configured). Without
    /// one, events are served by the feed only and waiting is their normal state.
    pub relay_expected: bool,
}

/// The default `outbox.lag` threshold: a relay polls continuously, so a minute of
/// waiting means it is stopped or failing, not busy.
pub const DEFAULT_OUTBOX_LAG_WARN_SECONDS: u32 = 60;

impl Default for Options {
    fn default() -> Self {
        Self {
            outbox_lag_warn: Duration::seconds(i64::from(DEFAULT_OUTBOX_LAG_WARN_SECONDS)),
            relay_expected: true,
        }
    }
}

/// One check's verdict. Ordered: `Pass < Warn < Fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

impl CheckStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// The tenant's overall readiness. Ordered: `Ready < Degraded < NotReady`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Ready,
    Degraded,
    NotReady,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Degraded => "degraded",
            Self::NotReady => "not_ready",
        }
    }

    /// SPEC §6: any fail → `not_ready`, else any warn → `degraded`, else `ready`.
    pub fn of(checks: &[Check]) -> Self {
        match checks.iter().map(|check| check.status).max() {
            Some(CheckStatus::Fail) => Self::NotReady,
            Some(CheckStatus::Warn) => Self::Degraded,
            Some(CheckStatus::Pass) | None => Self::Ready,
        }
    }
}

/// One check's result: `{id, status, detail, remedy}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub id: &'static str,
    pub status: CheckStatus,
    /// What the check saw, in a sentence an operator can act on.
    pub detail: String,
    /// The exact API call or command that turns the check green; null when it passed.
    pub remedy: Option<String>,
}

/// A tenant's diagnostics report: `{tenant, status, checks}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub tenant: String,
    pub status: Status,
    pub checks: Vec<Check>,
}

impl Report {
    /// The check of that id, if the report has it.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|check| check.id == id)
    }

    /// The report as JSON, exactly as the endpoint and `diagnose --json` write it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tenant": self.tenant,
            "status": self.status.as_str(),
            "checks": self.checks.iter().map(|check| serde_json::json!({
                "id": check.id,
                "status": check.status.as_str(),
                "detail": check.detail,
                "remedy": check.remedy,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Runs every check over the facts and derives the overall status.
pub fn evaluate(facts: &TenantFacts, options: &Options) -> Report {
    let checks = evaluate_checks(facts, options);
    Report {
        tenant: facts.tenant.id.to_string(),
        status: Status::of(&checks),
        checks,
    }
}

/// A caller's diagnostics of a tenant (`diagnostics:read`, isolated like every tenant
/// operation: a non-member learns nothing, a refusal is audited).
///
/// # Errors
/// The use case's errors (`tenant_not_found`, `forbidden`, store failures).
pub async fn diagnose(
    engine: &Engine,
    caller: &Caller,
    tenant: &TenantId,
    options: &Options,
) -> Result<Report, domain::Error> {
    let facts = engine.tenant_diagnostics(caller, tenant).await?;
    Ok(evaluate(&facts, options))
}

/// The operator's diagnostics of a tenant (`user-engine diagnose`), with no caller.
///
/// # Errors
/// `tenant_not_found` for an unknown tenant; store failures.
pub async fn diagnose_as_operator(
    engine: &Engine,
    tenant: &TenantId,
    request_id: &str,
    options: &Options,
) -> Result<Report, domain::Error> {
    let facts = engine
        .tenant_diagnostics_as_operator(tenant, request_id)
        .await?;
    Ok(evaluate(&facts, options))
}

#[cfg(test)]
mod tests;
