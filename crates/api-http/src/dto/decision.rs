//! The bodies that carry a judgement: authorization decisions with the facts they were
//! taken on, and a tenant's diagnostics report.

use serde::Serialize;
use utoipa::ToSchema;

use super::names;
use super::vocabulary::*;

// ---- decisions -----------------------------------------------------------------------

/// The facts a decision was taken on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionFacts {
    pub tenant_state: Option<TenantStateName>,
    pub user_state: Option<UserStateName>,
    pub platform_roles: Vec<String>,
    pub account_state: Option<AccountStateName>,
    pub roles: Vec<String>,
    pub assurance: AssuranceName,
    pub scope_enabled: bool,
    pub platform_only: Option<bool>,
    pub min_assurance: Option<AssuranceName>,
    /// For an API key subject: the key's scopes.
    pub credential_scopes: Option<Vec<String>>,
    pub target_account_state: Option<AccountStateName>,
}

impl From<&domain::authz::DecisionFacts> for DecisionFacts {
    fn from(facts: &domain::authz::DecisionFacts) -> Self {
        Self {
            tenant_state: facts.tenant_state.map(Into::into),
            user_state: facts.user_state.map(Into::into),
            platform_roles: names(&facts.platform_roles, |role| role.as_str()),
            account_state: facts.account_state.map(Into::into),
            roles: names(facts.roles.iter(), |role| role.as_str()),
            assurance: facts.assurance.into(),
            scope_enabled: facts.scope_enabled,
            platform_only: facts.platform_only,
            min_assurance: facts.min_assurance.map(Into::into),
            credential_scopes: facts
                .credential_scopes
                .as_ref()
                .map(|scopes| names(scopes, |scope| scope.as_str())),
            target_account_state: facts.target_account_state.map(Into::into),
        }
    }
}

/// One authorization decision; a deny is a 200 with its reason.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decision {
    pub decision: DecisionName,
    /// A reason code of SPEC §3.2, or `unknown_scope`, `subject_not_found`, `self`,
    /// `role_binding`, `platform_root`, `platform_auditor`.
    #[schema(example = "role_binding")]
    pub reason: &'static str,
    /// The role that granted the scope, on an allow by role binding.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub matched_role: Option<String>,
    pub facts: DecisionFacts,
}

impl From<&domain::authz::Decision> for Decision {
    fn from(decision: &domain::authz::Decision) -> Self {
        Self {
            decision: if decision.allowed {
                DecisionName::Allow
            } else {
                DecisionName::Deny
            },
            reason: decision.reason.as_str(),
            matched_role: decision
                .matched_role
                .as_ref()
                .map(|role| role.as_str().to_owned()),
            facts: DecisionFacts::from(&decision.facts),
        }
    }
}

/// `{decisions}` in the order of the checks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decisions {
    pub decisions: Vec<Decision>,
}

// ---- diagnostics ---------------------------------------------------------------------

/// One check of a diagnostics report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiagnosticCheck {
    /// `tenant.active`, `admins.present`, `admins.redundant`, `admins.mfa`,
    /// `catalog.scopes_enabled`, `bindings.present`, `bindings.valid`,
    /// `api_keys.scopes_enabled`, `audit.writable`, `audit.chain_intact`, `outbox.lag`.
    #[schema(example = "admins.redundant")]
    pub id: &'static str,
    pub status: CheckStatusName,
    /// What the check saw.
    pub detail: String,
    /// The exact API call or command that turns the check green; null when it passed.
    #[schema(
        example = "as a tenant admin at aal2: POST /v1/tenants/acme/members {\"email\":\"<admin email>\",\"roles\":[\"tenant_admin\"]}"
    )]
    pub remedy: Option<String>,
}

/// A tenant's onboarding diagnostics (SPEC §6) `{tenant, status, checks}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiagnosticsReport {
    #[schema(pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$", example = "acme")]
    pub tenant: String,
    pub status: ReadinessName,
    /// Every check, in a fixed order; none is skipped when an earlier one fails.
    pub checks: Vec<DiagnosticCheck>,
}

impl From<&diagnostics::Report> for DiagnosticsReport {
    fn from(report: &diagnostics::Report) -> Self {
        Self {
            tenant: report.tenant.clone(),
            status: report.status.into(),
            checks: report
                .checks
                .iter()
                .map(|check| DiagnosticCheck {
                    id: check.id,
                    status: check.status.into(),
                    detail: check.detail.clone(),
                    remedy: check.remedy.clone(),
                })
                .collect(),
        }
    }
}
