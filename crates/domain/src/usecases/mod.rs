//! The use cases: one method of [`Engine`] per operation of SPEC §4, transport aside.
//!
//! Every use case follows the same shape: open a transaction scoped to the tenant it
//! names (or the platform), gather facts, call [`decide`], enforce the invariants of
//! SPEC §3.3, then write the change, exactly one `allowed` audit record and its events,
//! and commit. A refusal drops the transaction and writes one `denied` audit record in a
//! fresh one, so nothing else of the refused request survives.

mod api_keys;
mod auth;
mod authorize;
mod catalog;
mod diagnostics;
mod feeds;
mod idempotency;
mod lifecycle;
mod members;
mod oauth_clients;
mod oauth_consents;
mod oidc;
mod password_resets;
mod profiles;
mod roles;
mod scim;
mod sessions;
mod signing;
mod tenants;
mod throttles;
mod users;
mod webhooks;

use std::collections::BTreeSet;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

pub use api_keys::API_KEY_PREFIX;
pub use api_keys::{CreatedApiKey, NewApiKey};
pub use auth::{session_assurance, NewSession, NewSessionState, SessionOrigin, TotpEnrolmentStart};
pub use authorize::{AuthzCheck, CheckSubject, MAX_BATCH};
pub use catalog::NewCatalogScope;
pub use diagnostics::{AdminFacts, AuditProbe, TenantFacts, TrailFacts, AUDIT_PROBE_ACTION};
pub use idempotency::{IDEMPOTENCY_KEEP_FOR, IDEMPOTENCY_RUNNING_AT_MOST};
pub use lifecycle::{EmailChange, RECOVERY_CODES};
pub use members::{AddMember, AddedMember, MemberChange, UserRef};
pub use oauth_clients::{CreatedOAuthClient, NewOAuthClient, CLIENT_SECRET_PREFIX};
pub use oidc::{
    BrowserSession, ClientAuth, CodeOutcome, CodeRequest, ConsentStep, IssuedTokens, Issuer,
    OAuthError,
};
pub use password_resets::IssuedPasswordReset;
pub use profiles::profile_etag;
pub use scim::{ScimListQuery, ScimRole, ScimRoles, ScimUser, ScimUsers, SCIM_MAX_RESULTS};
pub use sessions::SessionView;
pub use tenants::{CreateTenant, CreatedTenant, TenantChange};
pub use throttles::{address_bucket, ThrottleKey, ThrottleRule, TOTP_FAILURES};
pub use users::{CreatedUser, Me, NewUser};
pub use webhooks::PutWebhook;

use crate::audit::{Actor, ActorType, AuditDraft, AuditTarget, Outcome, Partition};
use crate::authz::{decide, AuthzFacts, Decision, Reason, SubjectFacts};
use crate::error::Error;
use crate::event::{EventData, EventDraft};
use crate::ids::{Assurance, AuditId, EventId, KeyId, ScopeName, TenantId, UserId};
use crate::model::PlatformRole;
use crate::ports::{
    Clock, Decisions, FactsQuery, IdGenerator, Page, PasswordHasher, SecretGenerator, Store,
    StoreTx, SubjectRef, TotpVerifier, TxScope,
};

/// Who is calling, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user with a session; `session` is the token hash, for step-up and logout.
    User {
        user_id: UserId,
        assurance: Assurance,
        session: Option<String>,
    },
    /// A tenant API key; it acts only in its own tenant, always at `aal1`.
    ApiKey { key_id: KeyId, tenant: TenantId },
    /// A tenant OAuth client with a `client_credentials` access token (SPEC §9): it acts
    /// like its tenant's API key restricted to the token's scopes, always at `aal1`.
    Client {
        client: crate::oidc::ClientId,
        tenant: TenantId,
        scopes: BTreeSet<ScopeName>,
    },
}

impl Principal {
    /// The subject the store gathers facts of; a client has none there (its facts are
    /// the client's own, see [`Engine::facts_of`]): no user has the nil id.
    fn subject(&self) -> SubjectRef {
        match self {
            Self::User { user_id, .. } => SubjectRef::User(*user_id),
            Self::ApiKey { key_id, .. } => SubjectRef::ApiKey(*key_id),
            Self::Client { .. } => SubjectRef::User(UserId::from_generated(uuid::Uuid::nil())),
        }
    }

    fn assurance(&self) -> Assurance {
        match self {
            Self::User { assurance, .. } => *assurance,
            Self::ApiKey { .. } | Self::Client { .. } => Assurance::Aal1,
        }
    }

    /// The tenant a credential is bound to (a key's, a client's); `None` for a user.
    fn bound_tenant(&self) -> Option<&TenantId> {
        match self {
            Self::User { .. } => None,
            Self::ApiKey { tenant, .. } | Self::Client { tenant, .. } => Some(tenant),
        }
    }

    fn actor(&self) -> Actor {
        match self {
            Self::User { user_id, .. } => Actor {
                kind: ActorType::User,
                id: user_id.to_string(),
            },
            Self::ApiKey { key_id, .. } => Actor {
                kind: ActorType::ApiKey,
                id: key_id.to_string(),
            },
            Self::Client { client, .. } => Actor {
                kind: ActorType::OAuthClient,
                id: client.to_string(),
            },
        }
    }

    /// The user's id; `None` for an API key.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Self::User { user_id, .. } => Some(user_id),
            Self::ApiKey { .. } | Self::Client { .. } => None,
        }
    }
}

/// A caller and the request they made, threaded through every use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
}

/// Lifetimes of sessions, step-ups and invitations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// How long after a TOTP check a session counts as `aal2`.
    pub step_up_ttl: Duration,
    /// Absolute session lifetime.
    pub session_ttl: Duration,
    /// A session unused for this long expires.
    pub session_idle_timeout: Duration,
    pub invitation_ttl: Duration,
    /// How long a password reset token stays usable (SPEC §4: 1 hour).
    pub password_reset_ttl: Duration,
    /// How long the token of an email change stays usable.
    pub email_verification_ttl: Duration,
    /// Mail (SPEC §6): with settings, invitations, resets, verifications and security
    /// notices are queued as mails and tokens are no longer handed to the calling
    /// service; without, nothing is mailed.
    pub mail: Option<crate::mail::MailSettings>,
    /// Which URLs webhooks may name (`USER_ENGINE_WEBHOOKS_ALLOW_INSECURE`).
    pub webhooks: crate::webhook::UrlPolicy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            step_up_ttl: Duration::minutes(15),
            session_ttl: Duration::hours(12),
            session_idle_timeout: Duration::minutes(30),
            invitation_ttl: Duration::days(7),
            password_reset_ttl: Duration::hours(1),
            email_verification_ttl: Duration::hours(24),
            mail: None,
            webhooks: crate::webhook::UrlPolicy::default(),
        }
    }
}

/// The adapters the use cases run on.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub secrets: Arc<dyn SecretGenerator>,
    pub passwords: Arc<dyn PasswordHasher>,
    pub totp: Arc<dyn TotpVerifier>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports")
    }
}

/// The engine: every use case, over injected ports.
#[derive(Debug, Clone)]
pub struct Engine {
    ports: Ports,
    config: EngineConfig,
}

/// Largest page a list returns.
pub const MAX_PAGE: usize = 200;

/// The bookkeeping of one audited operation: what its audit record will say.
struct Op<'a> {
    caller: &'a Caller,
    action: &'static str,
    target: AuditTarget,
    /// The trail the record goes to: the tenant's once it is known to exist.
    partition: Partition,
    /// The reason of the last allow, for the success record.
    allowed_by: Option<&'static str>,
    /// The true reason of a refusal, when it is not the error's own code (a deny
    /// reported as 404, or a decision's reason behind a 403).
    denied_by: Option<&'static str>,
}

impl Op<'_> {
    fn draft(&self, engine: &Engine, outcome: Outcome, reason: &str) -> AuditDraft {
        AuditDraft {
            id: engine.audit_id(),
            at: engine.now(),
            partition: self.partition.clone(),
            actor: self.caller.principal.actor(),
            action: self.action,
            target: self.target.clone(),
            outcome,
            reason: reason.to_owned(),
            request_id: self.caller.request_id.clone(),
        }
    }
}

/// The checks an operation asks of `decide`.
struct Check<'a> {
    tenant: Option<&'a TenantId>,
    scope: &'static str,
    target: Option<&'a UserId>,
    self_service: bool,
}

impl Engine {
    /// An engine over `ports`, with `config`'s lifetimes.
    pub fn new(ports: Ports, config: EngineConfig) -> Self {
        Self { ports, config }
    }

    /// The lifetimes the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn now(&self) -> OffsetDateTime {
        self.ports.clock.now()
    }

    fn new_uuid(&self) -> uuid::Uuid {
        self.ports.ids.new_v7()
    }

    fn audit_id(&self) -> AuditId {
        AuditId::from_generated(self.new_uuid())
    }

    fn op<'a>(
        &self,
        caller: &'a Caller,
        action: &'static str,
        target: AuditTarget,
        partition: Partition,
    ) -> Op<'a> {
        Op {
            caller,
            action,
            target,
            partition,
            allowed_by: None,
            denied_by: None,
        }
    }

    async fn begin(&self, scope: TxScope) -> Result<Box<dyn StoreTx>, Error> {
        Ok(self.ports.store.begin(scope).await?)
    }

    /// Gathers the facts of one check, decides, and turns a deny into the error the
    /// caller sees (a non-member's deny is a 404, as for a missing tenant).
    async fn check(
        &self,
        tx: &mut (impl Decisions + crate::ports::OAuth + ?Sized),
        op: &mut Op<'_>,
        check: Check<'_>,
    ) -> Result<Decision, Error> {
        let scope = ScopeName::parse(check.scope)?;
        let query = FactsQuery {
            tenant: check.tenant.cloned(),
            subject: op.caller.principal.subject(),
            scope: scope.clone(),
            target: check.target.copied(),
        };
        let facts = self.facts_of(tx, &op.caller.principal, &query).await?;
        if check.tenant.is_some() && facts.tenant_state.is_none() {
            op.partition = Partition::Platform;
            op.denied_by = Some("tenant_not_found");
            return Err(Error::TenantNotFound);
        }
        // A key never sees another tenant (a store with row-level security hides the
        // key's own row there): it is an outsider, answered as for a missing tenant.
        if let Some(key_tenant) = op.caller.principal.bound_tenant() {
            if check.tenant.is_some_and(|tenant| tenant != key_tenant) {
                op.denied_by = Some(Reason::NotAMember.as_str());
                return Err(Error::TenantNotFound);
            }
        }
        let decision = decide(
            &facts,
            &crate::authz::AuthzRequest {
                tenant: check.tenant.cloned(),
                scope,
                assurance: op.caller.principal.assurance(),
                target: check.target.copied(),
                self_service: check.self_service,
            },
        );
        if decision.allowed {
            op.allowed_by = Some(decision.reason.as_str());
            return Ok(decision);
        }
        op.denied_by = Some(decision.reason.as_str());
        // Someone with no standing in the tenant learns nothing about it (SPEC §3.1):
        // whatever the reason, the answer is the one a missing tenant gets.
        Err(match decision.reason {
            Reason::SubjectNotFound => Error::Unauthenticated,
            _ if check.tenant.is_some_and(|tenant| outsider(&facts, tenant)) => {
                Error::TenantNotFound
            }
            Reason::TargetNotInTenant => Error::MemberNotFound,
            reason => Error::Forbidden(reason),
        })
    }

    /// SPEC §3.3, nobody grants more than they hold: every scope of a grant (the scopes
    /// roles bind, a key's scopes, a binding's scopes) must be one `decide` allows the
    /// caller in the tenant right now. Platform roots are exempt. Refuses with 403
    /// `exceeds_caller`.
    async fn require_caller_holds(
        &self,
        tx: &mut (impl Decisions + crate::ports::OAuth + ?Sized),
        op: &mut Op<'_>,
        tenant: &TenantId,
        granted: &BTreeSet<ScopeName>,
    ) -> Result<(), Error> {
        for scope in granted {
            let facts = self
                .facts_of(
                    tx,
                    &op.caller.principal,
                    &FactsQuery {
                        tenant: Some(tenant.clone()),
                        subject: op.caller.principal.subject(),
                        scope: scope.clone(),
                        target: None,
                    },
                )
                .await?;
            let decision = decide(
                &facts,
                &crate::authz::AuthzRequest {
                    tenant: Some(tenant.clone()),
                    scope: scope.clone(),
                    assurance: op.caller.principal.assurance(),
                    target: None,
                    self_service: false,
                },
            );
            if decision.facts.platform_roles.contains(&PlatformRole::Root) {
                return Ok(());
            }
            if !decision.allowed {
                op.denied_by = Some(Reason::ExceedsCaller.as_str());
                return Err(Error::Forbidden(Reason::ExceedsCaller));
            }
        }
        Ok(())
    }

    /// The facts of a decision about `principal`: the store's, and for a client — which
    /// the store's facts do not know as a subject — the client itself, acting as its
    /// tenant's API key with its token's scopes while it still exists (looked up only in
    /// its own tenant: anywhere else it has no standing).
    async fn facts_of(
        &self,
        tx: &mut (impl Decisions + crate::ports::OAuth + ?Sized),
        principal: &Principal,
        query: &FactsQuery,
    ) -> Result<AuthzFacts, Error> {
        let mut facts = tx.authz_facts(query).await?;
        if let Principal::Client {
            client,
            tenant,
            scopes,
        } = principal
        {
            let live = query.tenant.as_ref() == Some(tenant)
                && tx.get_oauth_client(client).await?.is_some();
            facts.subject = live.then(|| SubjectFacts::ApiKey {
                key_id: KeyId::from_generated(client.uuid()),
                tenant: tenant.clone(),
                scopes: scopes.clone(),
            });
            facts.account = None;
        }
        Ok(facts)
    }

    /// Writes the success record and events, then commits.
    async fn commit(
        &self,
        mut tx: Box<dyn StoreTx>,
        op: &Op<'_>,
        events: Vec<EventDraft>,
    ) -> Result<(), Error> {
        let reason = op.allowed_by.unwrap_or("allowed");
        tx.append_audit(op.draft(self, Outcome::Allowed, reason))
            .await?;
        for event in events {
            tx.append_event(event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends an operation: a refusal leaves one `denied` record and nothing else.
    async fn finish<T>(&self, op: Op<'_>, result: Result<T, Error>) -> Result<T, Error> {
        let error = match result {
            Ok(value) => return Ok(value),
            Err(Error::Store(store)) => return Err(Error::Store(store)),
            Err(error) => error,
        };
        let scope = match &op.partition {
            Partition::Tenant(tenant) => TxScope::Tenant(tenant.clone()),
            Partition::Platform => TxScope::Platform,
        };
        let reason = op.denied_by.unwrap_or(error.code());
        let mut tx = self.begin(scope).await?;
        tx.append_audit(op.draft(self, Outcome::Denied, reason))
            .await?;
        tx.commit().await?;
        Err(error)
    }

    /// Whether mails are sent (SMTP configured).
    pub fn mails(&self) -> bool {
        self.config.mail.is_some()
    }

    /// Queues `kind` to `to` in the transaction, when mail is on; true when queued.
    async fn queue_mail(
        &self,
        tx: &mut (impl crate::ports::Mailbox + ?Sized),
        kind: &crate::mail::MailKind,
        to: &crate::ids::Email,
        user: Option<UserId>,
    ) -> Result<bool, Error> {
        let Some(settings) = &self.config.mail else {
            return Ok(false);
        };
        let draft = crate::mail::render(
            settings,
            kind,
            to.clone(),
            user,
            self.new_uuid(),
            self.now(),
        );
        tx.queue_mail(&draft).await?;
        Ok(true)
    }

    /// Queues a security notice to `user`'s address, when mail is on.
    async fn notify(
        &self,
        tx: &mut (impl crate::ports::Mailbox + crate::ports::Users + ?Sized),
        user: &UserId,
        kind: crate::mail::MailKind,
    ) -> Result<(), Error> {
        if !self.mails() {
            return Ok(());
        }
        if let Some(record) = tx.get_user(user).await? {
            self.queue_mail(tx, &kind, &record.email, Some(*user))
                .await?;
        }
        Ok(())
    }

    fn event(&self, partition: Partition, subject: String, data: EventData) -> EventDraft {
        EventDraft {
            id: EventId::from_generated(self.new_uuid()),
            time: self.now(),
            partition,
            event_type: data.event_type(),
            subject,
            data: data.to_json(),
        }
    }
}

/// Someone with no standing in the tenant — not a member, no platform role, not one of
/// its keys — who must learn nothing about it (SPEC §3.1, §3.6).
fn outsider(facts: &AuthzFacts, tenant: &TenantId) -> bool {
    match &facts.subject {
        Some(SubjectFacts::User { platform_roles, .. }) => {
            platform_roles.is_empty() && facts.account.is_none()
        }
        Some(SubjectFacts::ApiKey {
            tenant: key_tenant, ..
        }) => key_tenant != tenant,
        None => true,
    }
}

/// Clamps a requested page size to 1..=200 (default 50).
///
/// # Errors
/// `invalid_request` when `requested` is outside 1..=[`MAX_PAGE`].
pub fn page_limit(requested: Option<usize>) -> Result<usize, Error> {
    match requested {
        None => Ok(50),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(_) => Err(Error::InvalidRequest(
            "limit must be between 1 and 200".to_owned(),
        )),
    }
}

/// Cuts a list fetched with `limit + 1` rows into a page and its cursor.
fn paginate<T>(mut rows: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// SHA-256 of a high-entropy token (session, API key, invitation), lowercase hex.
pub fn hash_token(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

fn tenant_target(tenant: &TenantId) -> AuditTarget {
    AuditTarget {
        kind: "tenant",
        id: tenant.to_string(),
    }
}

/// The target id of a record about a user named by an email that is not (yet) resolved
/// to a user: an audit record names ids, never an email address (SPEC §6), so that an
/// erased user leaves nothing personal in the append-only trail.
const UNRESOLVED_EMAIL: &str = "unresolved-email";

fn user_target(kind: &'static str, user: &UserId) -> AuditTarget {
    AuditTarget {
        kind,
        id: user.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unreachable, reason = "tests: literals that always parse")]
mod tests;
