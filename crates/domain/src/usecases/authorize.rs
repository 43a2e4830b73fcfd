//! The authorize API: decisions for services, one or a batch, from the same `decide`.

use super::api_keys::API_KEY_PREFIX;
use super::auth::{session_assurance, LAST_SEEN_GRANULARITY};
use super::tenants::tenant_check;
use super::{hash_token, Caller, Engine, Principal};
use crate::audit::{AuditTarget, Partition};
use crate::authz::{decide, verdict, AuthzFacts, AuthzRequest, Decision, RoleSet};
use crate::catalog::scopes;
use crate::error::Error;
use crate::ids::{Assurance, ScopeName, TenantId, UserId};
use crate::ports::{CheckFactsQuery, Credential, FactsQuery, SnapshotQuery, StoreTx, TxScope};

/// Most checks one batch may carry.
pub const MAX_BATCH: usize = 100;

/// Whom a check is about: a user at an assurance the caller vouches for, or a session
/// token the engine resolves itself (an API key there is answered `subject_not_found`).
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
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `authz:check`; `internal` when the store fails. A denied check is a decision, not an
    /// error.
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
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `authz:check`; then `invalid_request` for no checks or more than [`MAX_BATCH`];
    /// `internal` when the store fails. A denied check is a decision, not an error.
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

    /// The authorize API as a service calls it: up to [`MAX_BATCH`] checks for the
    /// bearer `token` in `tenant`, each already parsed (or the error its parsing gave).
    /// Answers from one store read when [`Engine::authorize_fast`] can; otherwise along
    /// the general path, which resolves the tenant and the caller in SPEC §3.1's order,
    /// then refuses an oversized batch, then the first malformed check, and records
    /// refusals. Both paths decide with the same `decide` over the same facts.
    ///
    /// # Errors
    /// `TenantNotFound` (no such tenant, before the token is looked at);
    /// `Unauthenticated` for a missing, unknown, revoked or expired token — the caller
    /// records that probe (it knows the client's address); `InvalidRequest` for more than
    /// [`MAX_BATCH`] checks or none; the first check's parse error; `Forbidden` (with
    /// its reason, `insufficient_assurance` among them) when the caller may not
    /// `authz:check` here; `Store`.
    pub async fn authorize_request(
        &self,
        tenant: &TenantId,
        token: Option<&str>,
        request_id: &str,
        checks: Vec<Result<AuthzCheck, Error>>,
    ) -> Result<Vec<Decision>, Error> {
        let count = checks.len();
        let parsed: Result<Vec<AuthzCheck>, Error> = checks.into_iter().collect();
        if let (Some(token), Ok(parsed)) = (token, &parsed) {
            if let Some(decisions) = self.authorize_fast(tenant, token, parsed).await? {
                return Ok(decisions);
            }
        }
        let principal = self.authenticate_for_tenant(tenant, token).await;
        self.authorize_as(tenant, principal, request_id, count, parsed)
            .await
    }

    /// The general path of [`Engine::authorize_request`] for a caller already
    /// authenticated (or refused): a client's own access token, which only the HTTP
    /// layer, holding the provider's keys, can verify.
    ///
    /// # Errors
    /// As [`Engine::authorize_request`].
    pub async fn authorize_as_principal(
        &self,
        tenant: &TenantId,
        principal: Principal,
        request_id: &str,
        checks: Vec<Result<AuthzCheck, Error>>,
    ) -> Result<Vec<Decision>, Error> {
        let count = checks.len();
        let parsed: Result<Vec<AuthzCheck>, Error> = checks.into_iter().collect();
        self.authorize_as(tenant, Ok(principal), request_id, count, parsed)
            .await
    }

    async fn authorize_as(
        &self,
        tenant: &TenantId,
        principal: Result<Principal, Error>,
        request_id: &str,
        count: usize,
        parsed: Result<Vec<AuthzCheck>, Error>,
    ) -> Result<Vec<Decision>, Error> {
        let principal = match principal {
            Ok(principal) => principal,
            Err(error @ (Error::TenantNotFound | Error::Store(_))) => return Err(error),
            Err(_) => return Err(Error::Unauthenticated),
        };
        if count > MAX_BATCH {
            return Err(Error::InvalidRequest(format!(
                "a batch carries at most {MAX_BATCH} checks"
            )));
        }
        let caller = Caller {
            principal,
            request_id: request_id.to_owned(),
        };
        self.authorize_batch(&caller, tenant, parsed?).await
    }

    /// The common case of the authorize API, from one store read: a live credential
    /// whose caller may `authz:check` in an existing tenant, asking about users. Returns
    /// `None` whenever anything else holds — no such tenant, an unknown, revoked or
    /// expired credential, a session whose idle clock is due to be written, a caller
    /// the decision refuses, a check naming a token, a malformed batch — and the caller
    /// then takes the general path ([`Engine::authenticate_for_tenant`] and
    /// [`Engine::authorize_batch`]), which answers those cases and records refusals.
    /// Both paths decide with the same `decide` over the same facts, and this one
    /// writes nothing, as the general path writes nothing when the caller is allowed.
    ///
    /// # Errors
    /// Only a failing store.
    pub async fn authorize_fast(
        &self,
        tenant: &TenantId,
        token: &str,
        checks: &[AuthzCheck],
    ) -> Result<Option<Vec<Decision>>, Error> {
        if checks.is_empty() || checks.len() > MAX_BATCH {
            return Ok(None);
        }
        let mut queries = Vec::with_capacity(checks.len());
        for check in checks {
            let CheckSubject::User { user_id, .. } = &check.subject else {
                return Ok(None);
            };
            queries.push(CheckFactsQuery {
                user: *user_id,
                scope: check.scope.clone(),
                target: check.target,
            });
        }
        let caller_scope = ScopeName::parse(scopes::AUTHZ_CHECK)?;
        let snapshot = self
            .ports
            .store
            .authorize_snapshot(&SnapshotQuery {
                tenant: tenant.clone(),
                token_hash: hash_token(token),
                api_key: token.starts_with(API_KEY_PREFIX),
                caller_scope: caller_scope.clone(),
                checks: queries,
            })
            .await?;
        let now = self.now();
        let (Some(_), Some(credential), Some(caller_facts)) =
            (&snapshot.tenant, &snapshot.credential, &snapshot.caller)
        else {
            return Ok(None);
        };
        let assurance = match credential {
            Credential::Session(session)
                if self.session_alive(session, now)
                    && now - session.last_seen_at < LAST_SEEN_GRANULARITY =>
            {
                session_assurance(session, now)
            }
            Credential::ApiKey(key) if key.revoked_at.is_none() => Assurance::Aal1,
            _ => return Ok(None),
        };
        let caller = verdict(
            caller_facts,
            &AuthzRequest {
                tenant: Some(tenant.clone()),
                scope: caller_scope,
                assurance,
                target: None,
                self_service: false,
            },
        );
        if !caller.allowed || snapshot.checks.len() != checks.len() {
            return Ok(None);
        }
        Ok(Some(
            checks
                .iter()
                .zip(&snapshot.checks)
                .map(|(check, facts)| {
                    let assurance = match &check.subject {
                        CheckSubject::User { assurance, .. } => *assurance,
                        CheckSubject::Token(_) => Assurance::Aal1,
                    };
                    decide(
                        facts,
                        &AuthzRequest {
                            tenant: Some(tenant.clone()),
                            scope: check.scope.clone(),
                            assurance,
                            target: check.target,
                            self_service: false,
                        },
                    )
                })
                .collect(),
        ))
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
            // `subject.token` names a session (SPEC §4): an API key there is no subject.
            CheckSubject::Token(token) => self
                .resolve_token(tx, &token)
                .await?
                .filter(|principal| matches!(principal, Principal::User { .. })),
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
                bound_roles: RoleSet::default(),
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
