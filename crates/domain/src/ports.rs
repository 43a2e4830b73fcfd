//! Ports: what the use cases need from the outside world, as async traits.
//!
//! The store is a unit of work: a use case opens one [`StoreTx`], reads, changes, appends
//! its audit record and events, and commits; dropping a transaction without committing
//! rolls everything back. Every tenant-scoped method takes its tenant explicitly.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::{AuditDraft, AuditRecord, Partition};
use crate::authz::AuthzFacts;
use crate::event::{Event, EventDraft};
use crate::ids::{Email, KeyId, ProfileKey, ProfileValue, RoleName, ScopeName, TenantId, UserId};
use crate::model::{
    ApiKey, CatalogScope, Credentials, Invitation, Member, RoleBinding, SchemaEntry, Session,
    Tenant, TenantState, User,
};

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
    /// tenant's rows is refused. PostgreSQL's row-level security enforces this in the
    /// database; stores without it (the in-memory fake, SQLite) call this before every
    /// tenant-scoped read or write.
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

/// What [`StoreTx::authz_facts`] gathers.
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

/// What waits in one tenant's outbox for the relay (what [`StoreTx::outbox_backlog`]
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
    /// of every check — each exactly as [`StoreTx::authz_facts`] would gather them. It
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

/// One transaction. Nothing it writes is visible to others before [`StoreTx::commit`];
/// dropping it without committing discards every write, audit record and event.
///
/// Adapters MUST serialise mutating transactions of one partition (tenant or platform)
/// from their first [`StoreTx::lock_partition`] call to commit, so invariant checks
/// (last tenant admin) cannot race, and audit `seq` and feed positions follow commit order.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait StoreTx: Send {
    /// Takes the write lock of a partition; held until commit or rollback.
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError>;

    /// Every fact one decision needs, in one call (the authorize hot path).
    async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError>;

    // Tenants.
    async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError>;
    /// # Errors
    /// MUST return `Duplicate("tenant")` when the id was ever used.
    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError>;
    async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError>;
    /// All tenants ordered by id, after `after`.
    async fn list_tenants(
        &mut self,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Vec<Tenant>, StoreError>;

    // Enabled scopes and bindings.
    async fn enabled_scopes(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, StoreError>;
    async fn set_enabled_scopes(
        &mut self,
        tenant: &TenantId,
        scopes: &BTreeSet<ScopeName>,
    ) -> Result<(), StoreError>;
    /// Bindings ordered by role name.
    async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError>;
    async fn put_binding(
        &mut self,
        tenant: &TenantId,
        binding: &RoleBinding,
    ) -> Result<(), StoreError>;
    /// Returns whether a binding existed.
    async fn delete_binding(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<bool, StoreError>;

    // Members (tenant accounts with their roles).
    async fn get_member(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Member>, StoreError>;
    /// Members ordered by user id, after `after`.
    async fn list_members(
        &mut self,
        tenant: &TenantId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError>;
    /// # Errors
    /// MUST return `Duplicate("member")` when the user already has an account there.
    async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError>;
    async fn update_member(&mut self, member: &Member) -> Result<(), StoreError>;
    /// Deletes the account, its roles and its tenant profile values.
    async fn delete_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError>;
    /// Active accounts holding `tenant_admin`.
    async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError>;
    /// Every account of a user, in any tenant (platform scope).
    async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError>;

    // Users.
    async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError>;
    async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError>;
    /// # Errors
    /// MUST return `Duplicate("email")` when the email is taken.
    async fn insert_user(
        &mut self,
        user: &User,
        credentials: &Credentials,
    ) -> Result<(), StoreError>;
    async fn update_user(&mut self, user: &User) -> Result<(), StoreError>;
    async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError>;
    async fn set_credentials(
        &mut self,
        user: &UserId,
        credentials: &Credentials,
    ) -> Result<(), StoreError>;
    async fn count_platform_roots(&mut self) -> Result<u64, StoreError>;
    /// Platform roots whose user is `active`: the `last_platform_root` invariant keeps
    /// this at one or more. Callers lock the platform partition first, so concurrent
    /// changes count one after the other.
    async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError>;

    // Catalog and profile schema.
    /// The catalog ordered by name.
    async fn list_catalog(&mut self) -> Result<Vec<CatalogScope>, StoreError>;
    async fn get_catalog_scope(
        &mut self,
        name: &ScopeName,
    ) -> Result<Option<CatalogScope>, StoreError>;
    /// # Errors
    /// MUST return `Duplicate("scope")` when the name exists.
    async fn insert_catalog_scope(&mut self, scope: &CatalogScope) -> Result<(), StoreError>;
    /// The schema ordered by key.
    async fn list_schema(&mut self) -> Result<Vec<SchemaEntry>, StoreError>;
    async fn put_schema_entry(&mut self, entry: &SchemaEntry) -> Result<(), StoreError>;

    // Profile values at the three layers.
    async fn member_values(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError>;
    async fn put_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError>;
    async fn delete_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError>;
    async fn tenant_defaults(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError>;
    async fn put_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError>;
    async fn delete_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError>;
    async fn platform_values(
        &mut self,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError>;
    async fn put_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError>;
    async fn delete_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError>;

    // API keys.
    async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError>;
    /// The tenant's keys, revoked ones included, ordered by id.
    async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError>;
    async fn get_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
    ) -> Result<Option<ApiKey>, StoreError>;
    async fn revoke_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Looks a key up by the hash of its secret (platform scope: the tenant is not known yet).
    async fn find_api_key_by_hash(
        &mut self,
        secret_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError>;

    // Sessions and invitations (platform scope).
    async fn insert_session(&mut self, session: &Session) -> Result<(), StoreError>;
    async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError>;
    async fn update_session(&mut self, session: &Session) -> Result<(), StoreError>;
    async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError>;
    /// Deletes every session of `user` except the one whose token hash is `keep` (all of
    /// them when `keep` is `None`); returns how many it deleted.
    async fn delete_sessions_of(
        &mut self,
        user: &UserId,
        keep: Option<String>,
    ) -> Result<u64, StoreError>;
    async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError>;
    async fn find_invitation(&mut self, token_hash: &str)
        -> Result<Option<Invitation>, StoreError>;
    /// Uses the invitation `token_hash` names: marks it used at `now` and returns it as
    /// it now stands, when it exists, is unused and `now` is before its expiry.
    ///
    /// This is the one step of an acceptance that only one transaction may win (SPEC
    /// §3.6: a single-use secret is used once, also under concurrency). It MUST return
    /// `None` when another transaction used the invitation, committed or not yet: an
    /// adapter either waits for that transaction and re-checks (PostgreSQL's read
    /// committed re-evaluates a conditional update's `where` on the row's newest
    /// version) or serialises writers so the check and the mark cannot interleave.
    async fn consume_invitation(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError>;

    /// Burns a TOTP time step of `user` (RFC 6238 §5.2: a code is accepted once): records
    /// `step` as the last used one, and returns `true`, unless the user has no TOTP
    /// enrolment or a step at or after `step` is already recorded.
    ///
    /// It MUST return `false` when another transaction burned this step (or a later one),
    /// committed or not yet: of concurrent calls with one step exactly one returns `true`.
    /// As with [`StoreTx::consume_invitation`], an adapter waits for the other
    /// transaction and re-checks, or serialises writers.
    async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError>;

    // Audit and events.
    /// Appends a record at the end of its partition's chain: the next `seq`, the previous
    /// record's hash, sealed with [`AuditRecord::seal`].
    async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError>;
    /// Records of a trail in `seq` order, after `after_seq`.
    async fn list_audit(
        &mut self,
        partition: &Partition,
        filter: &AuditFilter,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Appends an event at the next position of its partition's feed.
    async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError>;
    /// Events of a feed in position order, after `after`.
    async fn list_events(
        &mut self,
        partition: &Partition,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;
    /// The tenant's outbox backlog: how many events of its feed (partition
    /// `Tenant(tenant)` only, never the platform's) no relay has marked published yet,
    /// and the `time` the oldest of them carries. It writes nothing.
    ///
    /// An event counts as waiting from its commit until a relay marks it published; an
    /// adapter that has no relay at all MUST still report every event of the feed as
    /// waiting (the diagnostics decide whether a relay is expected, not the store).
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be read.
    async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError>;

    /// Makes every write of the transaction durable and visible, or none of them.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
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

/// Slow password hashing (argon2id in production). Async so adapters can move the work
/// to a blocking pool.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &str) -> Result<String, StoreError>;
    /// Verifies in constant time; `None` as the hash verifies against a dummy hash so an
    /// unknown user costs the same as a wrong password.
    async fn verify(&self, password: &str, hash: Option<&str>) -> bool;
}

/// RFC 6238 TOTP checks.
pub trait TotpVerifier: Send + Sync {
    /// The time step whose code matches `code` at `now` (allowing one step of drift),
    /// or `None`.
    fn verify(&self, secret: &str, code: &str, now: OffsetDateTime) -> Option<u64>;
    /// The `otpauth://` URI an authenticator app enrols from.
    fn provisioning_uri(&self, secret: &str, account: &str) -> String;
}
