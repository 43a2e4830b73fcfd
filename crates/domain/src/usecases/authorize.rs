//! The authorize API: decisions for services, one or a batch, from the same `decide`.

use std::collections::BTreeSet;

use super::tenants::tenant_check;
use super::{Caller, Engine, Principal};
use crate::audit::{AuditTarget, Partition};
use crate::authz::{decide, AuthzFacts, AuthzRequest, Decision};
use crate::catalog::scopes;
use crate::error::Error;
use crate::ids::{Assurance, ScopeName, TenantId, UserId};
use crate::ports::{FactsQuery, StoreTx, TxScope};

/// Most checks one batch may carry.
pub const MAX_BATCH: usize = 100;

/// Whom a check is about: a user at an assurance the caller vouches for, or a session
/// token (or API key) the engine resolves itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckSubject {
    User {
        user_id: UserId,
        assurance: Assurance,
    },
    Token(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzCheck {
    pub subject: CheckSubject,
    pub scope: ScopeName,
    pub target: Option<UserId>,
}

impl Engine {
    /// One decision about a subject in a tenant; the caller needs `authz:check` there.
    /// A well-formed check always yields a decision, allow or deny.
    pub async fn authorize(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        check: AuthzCheck,
    ) -> Result<Decision, Error> {
        let mut decisions = self.authorize_batch(caller, tenant, vec![check]).await?;
        decisions
            .pop()
            .ok_or(Error::InvalidRequest("no decision".to_owned()))
    }

    /// Decisions for up to 100 checks, in order.
    pub async fn authorize_batch(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        checks: Vec<AuthzCheck>,
    ) -> Result<Vec<Decision>, Error> {
        let mut op = self.op(
            caller,
            "authz.check",
            AuditTarget {
                kind: "tenant",
                id: tenant.to_string(),
            },
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::AUTHZ_CHECK),
            )
            .await?;
            if checks.is_empty() || checks.len() > MAX_BATCH {
                return Err(Error::InvalidRequest(format!(
                    "a batch carries 1 to {MAX_BATCH} checks"
                )));
            }
            let mut decisions = Vec::with_capacity(checks.len());
            for check in checks {
                decisions.push(self.decide_check(tx.as_mut(), tenant, check).await?);
            }
            Ok(decisions)
        }
        .await;
        self.finish(op, result).await
    }

    async fn decide_check(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &TenantId,
        check: AuthzCheck,
    ) -> Result<Decision, Error> {
        let principal = match check.subject {
            CheckSubject::User { user_id, assurance } => Some(Principal::User {
                user_id,
                assurance,
                session: None,
            }),
            CheckSubject::Token(token) => self.resolve_token(tx, &token).await?,
        };
        let request = |assurance| AuthzRequest {
            tenant: Some(tenant.clone()),
            scope: check.scope.clone(),
            assurance,
            target: check.target,
            self_service: false,
        };
        let Some(principal) = principal else {
            let facts = AuthzFacts {
                tenant_state: None,
                subject: None,
                account: None,
                scope: None,
                scope_enabled: false,
                bound_roles: BTreeSet::new(),
                target: None,
            };
            return Ok(decide(&facts, &request(Assurance::Aal1)));
        };
        let facts = tx
            .authz_facts(&FactsQuery {
                tenant: Some(tenant.clone()),
                subject: principal.subject(),
                scope: check.scope.clone(),
                target: check.target,
            })
            .await?;
        Ok(decide(&facts, &request(principal.assurance())))
    }
}
