//! Ports: what the use cases need from the outside world, as async traits.
//!
//! The store is a unit of work: a use case opens one [`StoreTx`], reads, changes, appends
//! its audit record and events, and commits; dropping a transaction without committing
//! rolls everything back. Every tenant-scoped method takes its tenant explicitly.

pub mod capabilities;
#[cfg(test)]
mod mock;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

pub use capabilities::{
    ApiKeys, AuditLog, Authentication, Catalog, Decisions, Idempotency, IdempotencyRecord, Mailbox,
    Members, OAuth, Outbox, Profiles, Scim, SigningKeys, Tenants, Users, Webhooks,
};
#[cfg(test)]
pub use mock::MockStoreTx;

use crate::audit::Partition;
use crate::authz::AuthzFacts;
use crate::ids::{Email, KeyId, ScopeName, TenantId, UserId};
use crate::model::{ApiKey, Session, TenantState, User};

/// Failures of the store itself. Constraint violations an adapter maps by name; anything
/// else is `Unavailable` and surfaces as an infrastructure error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique key already exists (the name says which: `tenant`, `member`, `email`, …).
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// A row the change refers to does not exist (or belongs to another tenant).
    #[error("missing {0}")]
    Missing(&'static str),
    /// Two transactions conflicted; the use case may be retried.
    #[error("transaction conflict")]
    Conflict,
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Which data a transaction may see. In PostgreSQL this becomes `app.tenant_id` (or the
/// platform mode) set for the transaction only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxScope {
    /// One tenant's rows (plus platform-wide users, catalog and schema).
    Tenant(TenantId),
    /// Platform-wide: every tenant's rows, for platform operations.
    Platform,
}

impl TxScope {
    /// Whether rows of `tenant` may be touched: a tenant transaction reaching another
    /// tenant's rows is refused. Every store calls this before each tenant-scoped read
    /// or write; PostgreSQL's row-level security enforces it again in the database.
    ///
    /// # Errors
    /// `Unavailable` naming both tenants.
    pub fn allow(&self, tenant: &TenantId) -> Result<(), StoreError> {
        match self {
            Self::Platform => Ok(()),
            Self::Tenant(scoped) if scoped == tenant => Ok(()),
            Self::Tenant(scoped) => Err(StoreError::Unavailable(format!(
                "tenant scope: transaction of tenant {scoped} touched tenant {tenant}"
            ))),
        }
    }

    /// Whether a row of `tenant` is visible, for lookups that name no tenant: they
    /// filter other tenants' rows out rather than failing, as row-level security does.
    pub fn sees(&self, tenant: &TenantId) -> bool {
        match self {
            Self::Platform => true,
            Self::Tenant(scoped) => scoped == tenant,
        }
    }

    /// [`TxScope::allow`] for a trail or feed; the platform's is open to every scope.
    ///
    /// # Errors
    /// `Unavailable` for another tenant's partition.
    pub fn allow_partition(&self, partition: &Partition) -> Result<(), StoreError> {
        match partition {
            Partition::Tenant(tenant) => self.allow(tenant),
            Partition::Platform => Ok(()),
        }
    }

    /// Refuses a platform-wide read (every tenant's rows) in a tenant transaction.
    ///
    /// # Errors
    /// `Unavailable` in a tenant scope.
    pub fn require_platform(&self) -> Result<(), StoreError> {
        match self {
            Self::Platform => Ok(()),
            Self::Tenant(tenant) => Err(StoreError::Unavailable(format!(
                "tenant scope: transaction of tenant {tenant} asked a platform-wide read"
            ))),
        }
    }
}

/// Who a decision is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectRef {
    User(UserId),
    ApiKey(KeyId),
}

/// What [`Decisions::authz_facts`] gathers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactsQuery {
    pub tenant: Option<TenantId>,
    pub subject: SubjectRef,
    /// The scope name as given; it may not be in the catalog.
    pub scope: ScopeName,
    pub target: Option<UserId>,
}

/// What [`Store::authorize_snapshot`] reads: a tenant, the credential a bearer token's
/// hash names, that credential's facts for `caller_scope`, and the facts of each check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotQuery {
    pub tenant: TenantId,
    /// SHA-256 of the bearer token, lowercase hex.
    pub token_hash: String,
    /// Whether the token is an API key (looked up among the tenant's keys) rather than
    /// a session.
    pub api_key: bool,
    /// The scope the caller itself needs (`authz:check`).
    pub caller_scope: ScopeName,
    /// The checks, each about a user, in order.
    pub checks: Vec<CheckFactsQuery>,
}

/// One check of a [`SnapshotQuery`]: facts about `user` for `scope` in the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFactsQuery {
    pub user: UserId,
    pub scope: ScopeName,
    pub target: Option<UserId>,
}

/// A credential found by its token hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session(Session),
    ApiKey(ApiKey),
}

impl Credential {
    /// Whom the credential's decisions are about.
    pub fn subject(&self) -> SubjectRef {
        match self {
            Self::Session(session) => SubjectRef::User(session.user_id),
            Self::ApiKey(key) => SubjectRef::ApiKey(key.id),
        }
    }
}

/// What [`Store::authorize_snapshot`] returns, all read at one point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeSnapshot {
    /// The tenant's state, when it exists.
    pub tenant: Option<TenantState>,
    /// The credential, when the hash names one visible in the tenant (a session, or a
    /// key of this tenant, revoked or not).
    pub credential: Option<Credential>,
    /// The credential's facts for the caller scope, when there is a credential.
    pub caller: Option<AuthzFacts>,
    /// The facts of each check, in the order of the query.
    pub checks: Vec<AuthzFacts>,
}

/// A user and their password hash, as a login reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    pub user: User,
    pub password_hash: Option<String>,
}

/// One page of a cursor-paginated list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more items follow; pass it back as `after`.
    pub next_cursor: Option<String>,
}

/// Filters for audit trail reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<crate::audit::Outcome>,
    pub from: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// What waits in one tenant's outbox for the relay (what [`Outbox::outbox_backlog`]
/// reads, for the `outbox.lag` diagnostic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// Events of the tenant's feed that no relay has marked published yet.
    pub waiting: u64,
    /// The `time` of the oldest of them; `None` when none waits.
    pub oldest: Option<OffsetDateTime>,
}

/// Where a throttle's counter stands after [`Store::throttle_hit`] or
/// [`Store::throttle_peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleCount {
    /// Attempts counted in the current window (0 when no window is running).
    pub hits: u32,
    /// When the current window ends and the count starts again from zero.
    pub window_ends_at: OffsetDateTime,
}

/// Opens transactions.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Store: Send + Sync {
    /// Begins a unit of work limited to `scope`.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn begin(&self, scope: TxScope) -> Result<Box<dyn StoreTx>, StoreError>;

    /// Counts one attempt against the throttle `key` and returns the count including
    /// it. A window of `window` starts at the first attempt after the previous window
    /// ended (fixed windows); within it every call adds one.
    ///
    /// Throttles hold across every node, so the counter lives in the shared store (or
    /// in the one process of an embedded store), never in a node's memory. The count
    /// MUST be atomic: of N concurrent calls on one key in one window, each sees a
    /// different count, and together they see 1..=N (added to what was counted before).
    /// It runs outside any [`StoreTx`] and commits at once: a refused request that rolls
    /// its own transaction back still counts.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn throttle_hit(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError>;

    /// Reads the throttle `key` without counting: the hits of the window running at
    /// `now` (0, with `window_ends_at` = `now`, when none runs). It writes nothing.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn throttle_peek(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError>;

    /// Reads the user `email` names (case-insensitively) and their password hash, for
    /// a login. It writes nothing.
    ///
    /// The default runs the reads in one platform transaction; an adapter MAY answer in
    /// one statement (PostgreSQL does: users and credentials are platform tables).
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn find_login(&self, email: &Email) -> Result<Option<LoginRecord>, StoreError> {
        let mut tx = self.begin(TxScope::Platform).await?;
        let Some(user) = tx.find_user_by_email(email).await? else {
            return Ok(None);
        };
        let credentials = tx.get_credentials(&user.id).await?;
        Ok(Some(LoginRecord {
            user,
            password_hash: credentials.password_hash,
        }))
    }

    /// Reads everything one authorize request needs, consistently, in the tenant's
    /// scope: the tenant's state, the credential `token_hash` names (an API key only when it
    /// belongs to this tenant), the credential's facts for `caller_scope` and the facts
    /// of every check — each exactly as [`Decisions::authz_facts`] would gather them. It
    /// writes nothing.
    ///
    /// The default runs those reads in one tenant-scoped transaction; an adapter MAY
    /// answer in fewer round trips (PostgreSQL does it in one statement) but MUST return
    /// the same snapshot.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn authorize_snapshot(
        &self,
        query: &SnapshotQuery,
    ) -> Result<AuthorizeSnapshot, StoreError> {
        let mut tx = self.begin(TxScope::Tenant(query.tenant.clone())).await?;
        let tenant = tx
            .get_tenant(&query.tenant)
            .await?
            .map(|tenant| tenant.state);
        let credential = if query.api_key {
            tx.find_api_key_by_hash(&query.token_hash)
                .await?
                .filter(|key| key.tenant == query.tenant)
                .map(Credential::ApiKey)
        } else {
            tx.find_session(&query.token_hash)
                .await?
                .map(Credential::Session)
        };
        let caller = match &credential {
            Some(credential) => Some(
                tx.authz_facts(&FactsQuery {
                    tenant: Some(query.tenant.clone()),
                    subject: credential.subject(),
                    scope: query.caller_scope.clone(),
                    target: None,
                })
                .await?,
            ),
            None => None,
        };
        let mut checks = Vec::with_capacity(query.checks.len());
        for check in &query.checks {
            checks.push(
                tx.authz_facts(&FactsQuery {
                    tenant: Some(query.tenant.clone()),
                    subject: SubjectRef::User(check.user),
                    scope: check.scope.clone(),
                    target: check.target,
                })
                .await?,
            );
        }
        Ok(AuthorizeSnapshot {
            tenant,
            credential,
            caller,
            checks,
        })
    }
}

/// One transaction: every capability of [`capabilities`], plus [`StoreTx::commit`].
/// Nothing it writes is visible to others before commit; dropping it without committing
/// discards every write, audit record and event.
///
/// Adapters MUST serialise mutating transactions of one partition (tenant or platform)
/// from their first [`AuditLog::lock_partition`] call to commit, so invariant checks
/// (last tenant admin) cannot race, and audit `seq` and feed positions follow commit order.
#[async_trait]
pub trait StoreTx:
    Tenants
    + Members
    + Users
    + Authentication
    + Catalog
    + Profiles
    + ApiKeys
    + Decisions
    + AuditLog
    + Outbox
    + Idempotency
    + Mailbox
    + Webhooks
    + SigningKeys
    + OAuth
    + Scim
    + Send
{
    /// Makes every write of the transaction durable and visible, or none of them.
    ///
    /// # Errors
    /// `Unavailable` when the commit failed (nothing was written), `Conflict` when the
    /// store refused it for a concurrent transaction (the caller may retry).
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// The capability ports, for code that names a capability or calls its methods on a
/// concrete transaction type: `use domain::ports::prelude::*;`.
pub mod prelude {
    pub use super::{
        ApiKeys, AuditLog, Authentication, Catalog, Decisions, Idempotency, Mailbox, Members,
        OAuth, Outbox, Profiles, Scim, SigningKeys, StoreTx, Tenants, Users, Webhooks,
    };
}

/// The current time, truncated to microseconds.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// New UUID v7 values for users, keys, events and audit records.
pub trait IdGenerator: Send + Sync {
    fn new_v7(&self) -> Uuid;
}

/// Random secrets: session tokens, API key secrets, invitation tokens, TOTP secrets.
pub trait SecretGenerator: Send + Sync {
    /// 32 random bytes, URL-safe encoded.
    fn token(&self) -> String;
    /// A new base32 TOTP secret (160 bits).
    fn totp_secret(&self) -> String;
}

/// Why the password hasher did not answer. Neither is the caller's fault nor a bug: the
/// use case reports both as `overloaded`, which a client may retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The hasher's bounded queue is full; the work was not started.
    #[error("password hashing is overloaded")]
    Overloaded,
    /// The work could not run or did not finish (no hashing thread, a failed task).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Slow password hashing (argon2id in production). Async so adapters can move the work
/// to a blocking pool.
///
/// # Errors
/// Both methods MUST return [`HashError::Overloaded`] at once, without queueing the
/// work, when the adapter's bound on waiting work is reached, so a burst of logins costs
/// memory and latency within that bound; and [`HashError::Failed`] when the work could
/// not be done. A verification that ran answers `Ok`, matched or not.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &str) -> Result<String, HashError>;
    /// Verifies in constant time; `None` as the hash verifies against a dummy hash so an
    /// unknown user costs the same as a wrong password.
    async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError>;
}

/// RFC 6238 TOTP checks.
pub trait TotpVerifier: Send + Sync {
    /// The time step whose code matches `code` at `now` (allowing one step of drift),
    /// or `None`.
    fn verify(&self, secret: &str, code: &str, now: OffsetDateTime) -> Option<u64>;
    /// The `otpauth://` URI an authenticator app enrols from.
    fn provisioning_uri(&self, secret: &str, account: &str) -> String;
}
