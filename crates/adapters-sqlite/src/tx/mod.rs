//! One store transaction over SQLite: every `StoreTx` method as SQL, the tenant scope
//! enforced in the adapter, and the move from reading to writing.
//!
//! Queries are checked at run time (`sqlx::query`), as in the PostgreSQL adapter; the
//! behaviour suite and the differential test run every statement.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use domain::audit::{Actor, ActorType, AuditDraft, AuditRecord, Outcome, Partition, GENESIS_HASH};
use domain::authz::{AccountFacts, AuthzFacts, SubjectFacts, TargetFacts};
use domain::event::{Event, EventDraft};
use domain::ids::{
    Assurance, AuditId, DisplayName, Email, EventId, KeyId, ProfileKey, ProfileType, ProfileValue,
    RoleName, ScopeName, TenantId, UserId,
};
use domain::model::{
    AccountState, ApiKey, CatalogScope, Credentials, Invitation, Member, PlatformRole, RoleBinding,
    SchemaEntry, Session, Tenant, TenantState, TotpEnrolment, User, UserState,
};
use domain::ports::{
    AuditFilter, FactsQuery, OutboxBacklog, StoreError, StoreTx, SubjectRef, ThrottleCount, TxScope,
};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Sqlite, Transaction};
use time::OffsetDateTime;
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use crate::errors::store_error;
use crate::Writer;

/// Where a transaction is: nothing opened yet, a read snapshot on a reader, or the
/// writer held with `BEGIN IMMEDIATE` until commit or drop.
enum Phase {
    Idle,
    Reading(Transaction<'static, Sqlite>),
    Writing(OwnedMutexGuard<Writer>),
}

pub(crate) struct SqliteTx {
    scope: TxScope,
    readers: SqlitePool,
    writer: Arc<Mutex<Writer>>,
    phase: Phase,
}

impl SqliteTx {
    pub(crate) fn new(scope: TxScope, readers: SqlitePool, writer: Arc<Mutex<Writer>>) -> Self {
        Self {
            scope,
            readers,
            writer,
            phase: Phase::Idle,
        }
    }

    /// The connection reads go to: the writer once the transaction writes (it must see
    /// its own changes), else a read snapshot taken at the first read.
    async fn read(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if matches!(self.phase, Phase::Idle) {
            let tx = self.readers.begin().await.map_err(store_error)?;
            self.phase = Phase::Reading(tx);
        }
        match &mut self.phase {
            Phase::Reading(tx) => Ok(&mut **tx),
            Phase::Writing(writer) => Ok(&mut writer.connection),
            Phase::Idle => Err(unexpected_phase()),
        }
    }

    /// The writer, taken at the first write and held to commit or drop.
    async fn write(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if !matches!(self.phase, Phase::Writing(_)) {
            // The read snapshot ends before waiting: it wrote nothing, holding it would
            // keep a reader busy while waiting, and reads from here on must see every
            // commit made before this transaction's write lock.
            self.phase = Phase::Idle;
            let mut writer = self.writer.clone().lock_owned().await;
            if writer.open {
                // A dropped transaction whose rollback could not be spawned.
                rollback(&mut writer).await;
            }
            sqlx::query("begin immediate")
                .execute(&mut writer.connection)
                .await
                .map_err(store_error)?;
            writer.open = true;
            self.phase = Phase::Writing(writer);
        }
        match &mut self.phase {
            Phase::Writing(writer) => Ok(&mut writer.connection),
            Phase::Idle | Phase::Reading(_) => Err(unexpected_phase()),
        }
    }

    /// Whether a query returns a row, on the writer (existence checks before writes).
    async fn exists(&mut self, sql: &str, binds: &[&str]) -> Result<bool, StoreError> {
        let connection = self.write().await?;
        let mut query = sqlx::query_scalar::<_, i64>(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        query
            .fetch_optional(connection)
            .await
            .map(|row| row.is_some())
            .map_err(store_error)
    }

    /// Fails with `Missing(what)` unless the row exists.
    async fn require(
        &mut self,
        what: &'static str,
        sql: &str,
        binds: &[&str],
    ) -> Result<(), StoreError> {
        if self.exists(sql, binds).await? {
            Ok(())
        } else {
            Err(StoreError::Missing(what))
        }
    }

    async fn require_tenant(&mut self, tenant: &TenantId) -> Result<(), StoreError> {
        self.require(
            "tenant",
            "select 1 from tenants where tenant_id = ?1",
            &[tenant.as_str()],
        )
        .await
    }

    async fn require_user(&mut self, user: &UserId) -> Result<(), StoreError> {
        self.require(
            "user",
            "select 1 from users where user_id = ?1",
            &[&user.to_string()],
        )
        .await
    }

    async fn require_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        self.require(
            "member",
            "select 1 from accounts where tenant_id = ?1 and user_id = ?2",
            &[tenant.as_str(), &user.to_string()],
        )
        .await
    }

    async fn require_profile_key(&mut self, key: &ProfileKey) -> Result<(), StoreError> {
        self.require(
            "profile_key",
            "select 1 from profile_schema where key = ?1",
            &[key.as_str()],
        )
        .await
    }

    /// Fails with `Missing("scope")` unless every scope is in the catalog.
    async fn require_scopes(&mut self, names: &str) -> Result<(), StoreError> {
        let unknown = self
            .exists(
                "select 1 from json_each(?1) \
                 where value not in (select name from catalog_scopes)",
                &[names],
            )
            .await?;
        if unknown {
            Err(StoreError::Missing("scope"))
        } else {
            Ok(())
        }
    }

    /// Runs one statement on the writer and returns the rows it changed.
    async fn execute<'q>(
        &mut self,
        query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<u64, StoreError> {
        let connection = self.write().await?;
        query
            .execute(connection)
            .await
            .map(|done| done.rows_affected())
            .map_err(store_error)
    }

    async fn values(
        &mut self,
        sql: &str,
        binds: &[&str],
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        let connection = self.read().await?;
        let mut query = sqlx::query_as::<_, (String, String)>(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        let rows = query.fetch_all(connection).await.map_err(store_error)?;
        rows.into_iter()
            .map(|(key, value)| {
                let json: serde_json::Value =
                    serde_json::from_str(&value).map_err(|_| corrupt("profile value"))?;
                Ok((
                    ProfileKey::parse(&key).map_err(|_| corrupt("profile key"))?,
                    ProfileValue::parse(&json).map_err(|_| corrupt("profile value"))?,
                ))
            })
            .collect()
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        // A read transaction rolls itself back (sqlx queues it on its connection). The
        // writer must be rolled back before the next writer gets it: a task holding it
        // does that now; without a runtime, the next writer does it first.
        if let Phase::Writing(writer) = std::mem::replace(&mut self.phase, Phase::Idle) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let mut writer = writer;
                    rollback(&mut writer).await;
                });
            }
        }
    }
}

/// Rolls the writer's transaction back; `open` stays set if that failed, so the next
/// writer tries again.
async fn rollback(writer: &mut Writer) {
    match sqlx::query("rollback")
        .execute(&mut writer.connection)
        .await
    {
        Ok(_) => writer.open = false,
        // Nothing to roll back: SQLite already did (some errors end the transaction).
        Err(error) if crate::errors::no_transaction(&error) => {
            writer.open = false;
        }
        Err(_) => {}
    }
}

/// How many ended throttle windows one new window sweeps away.
const THROTTLE_SWEEP: i64 = 100;

/// [`Store::throttle_hit`](domain::ports::Store::throttle_hit): one upsert on the writer,
/// outside any transaction (so it commits at once). Writes are serialised, so the count
/// is atomic.
pub(crate) async fn throttle_hit(
    writer: &Mutex<Writer>,
    key: &str,
    window: time::Duration,
    now: OffsetDateTime,
) -> Result<ThrottleCount, StoreError> {
    let mut writer = writer.lock().await;
    if writer.open {
        // A dropped transaction whose rollback could not be spawned.
        rollback(&mut writer).await;
    }
    let (hits, window_ends_at): (i64, i64) = sqlx::query_as(
        "insert into throttles (key, window_ends_at, hits) values (?1, ?3, 1) \
         on conflict (key) do update set \
         window_ends_at = case when window_ends_at <= ?2 then excluded.window_ends_at \
             else window_ends_at end, \
         hits = case when window_ends_at <= ?2 then 1 else min(hits, 2147483646) + 1 end \
         returning hits, window_ends_at",
    )
    .bind(key)
    .bind(micros(now))
    .bind(micros(now + window))
    .fetch_one(&mut writer.connection)
    .await
    .map_err(store_error)?;
    if hits == 1 {
        // A new window: sweep a few ended ones, so the table holds about the live ones.
        sqlx::query(
            "delete from throttles where key in (select key from throttles \
             where window_ends_at <= ?1 limit ?2)",
        )
        .bind(micros(now))
        .bind(THROTTLE_SWEEP)
        .execute(&mut writer.connection)
        .await
        .map_err(store_error)?;
    }
    Ok(ThrottleCount {
        hits: u32::try_from(hits).map_err(|_| corrupt("throttle hits"))?,
        window_ends_at: timestamp(window_ends_at)?,
    })
}

/// [`Store::throttle_peek`](domain::ports::Store::throttle_peek): one read on a reader.
pub(crate) async fn throttle_peek(
    readers: &SqlitePool,
    key: &str,
    now: OffsetDateTime,
) -> Result<ThrottleCount, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "select hits, window_ends_at from throttles where key = ?1 and window_ends_at > ?2",
    )
    .bind(key)
    .bind(micros(now))
    .fetch_optional(readers)
    .await
    .map_err(store_error)?;
    Ok(match row {
        Some((hits, window_ends_at)) => ThrottleCount {
            hits: u32::try_from(hits).map_err(|_| corrupt("throttle hits"))?,
            window_ends_at: timestamp(window_ends_at)?,
        },
        None => ThrottleCount {
            hits: 0,
            window_ends_at: now,
        },
    })
}

fn unexpected_phase() -> StoreError {
    StoreError::Unavailable("store transaction in an unexpected state".to_owned())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("unreadable {what} in the database"))
}

/// Microseconds since the Unix epoch: what every timestamp column holds.
fn micros(at: OffsetDateTime) -> i64 {
    // Every `OffsetDateTime` (years -9999 to 9999) fits: about 3.2e17 microseconds.
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn timestamp(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| corrupt("timestamp"))
}

fn optional_timestamp(micros: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    micros.map(timestamp).transpose()
}

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| corrupt("id"))
}

fn user_id(text: &str) -> Result<UserId, StoreError> {
    uuid(text).map(UserId::from_generated)
}

fn tenant_id(text: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(text).map_err(|_| corrupt("tenant id"))
}

/// A JSON array of strings, as `json_group_array` returns it.
fn names(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|_| corrupt("name list"))
}

fn scopes(json: &str) -> Result<BTreeSet<ScopeName>, StoreError> {
    names(json)?
        .iter()
        .map(|name| ScopeName::parse(name).map_err(|_| corrupt("scope name")))
        .collect()
}

fn roles(json: &str) -> Result<BTreeSet<RoleName>, StoreError> {
    names(json)?
        .iter()
        .map(|name| RoleName::parse(name).map_err(|_| corrupt("role name")))
        .collect()
}

fn platform_roles(json: &str) -> Result<BTreeSet<PlatformRole>, StoreError> {
    names(json)?
        .iter()
        .map(|name| PlatformRole::parse(name).ok_or_else(|| corrupt("platform role")))
        .collect()
}

/// A set of names as the JSON array `json_each` reads.
fn json_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    serde_json::Value::Array(
        names
            .map(|name| serde_json::Value::String(name.to_owned()))
            .collect(),
    )
    .to_string()
}

fn account_state(text: &str) -> Result<AccountState, StoreError> {
    AccountState::parse(text).ok_or_else(|| corrupt("account state"))
}

fn partition_of(tenant: Option<String>) -> Result<Partition, StoreError> {
    match tenant {
        Some(tenant) => Ok(Partition::Tenant(tenant_id(&tenant)?)),
        None => Ok(Partition::Platform),
    }
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn position(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    tenant_id: String,
    display_name: String,
    state: String,
    created_at: i64,
    updated_at: i64,
}

impl TenantRow {
    fn into_tenant(self) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            id: tenant_id(&self.tenant_id)?,
            display_name: DisplayName::parse(&self.display_name)
                .map_err(|_| corrupt("display name"))?,
            state: TenantState::parse(&self.state).ok_or_else(|| corrupt("tenant state"))?,
            created_at: timestamp(self.created_at)?,
            updated_at: timestamp(self.updated_at)?,
        })
    }
}

const TENANT_COLUMNS: &str = "tenant_id, display_name, state, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct MemberRow {
    tenant_id: String,
    user_id: String,
    email: String,
    state: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    roles: String,
}

impl MemberRow {
    fn into_member(self) -> Result<Member, StoreError> {
        Ok(Member {
            tenant: tenant_id(&self.tenant_id)?,
            user_id: user_id(&self.user_id)?,
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            roles: roles(&self.roles)?,
            state: account_state(&self.state)?,
            created_at: timestamp(self.created_at)?,
            updated_at: timestamp(self.updated_at)?,
            version: u64::try_from(self.version).map_err(|_| corrupt("version"))?,
        })
    }
}

const MEMBER_SELECT: &str = "select a.tenant_id, a.user_id, u.email, a.state, a.version, \
     a.created_at, a.updated_at, \
     (select json_group_array(m.role) from memberships m \
      where m.tenant_id = a.tenant_id and m.user_id = a.user_id) as roles \
     from accounts a join users u on u.user_id = a.user_id";

#[derive(sqlx::FromRow)]
struct UserRow {
    user_id: String,
    email: String,
    state: String,
    platform_roles: String,
    has_totp: bool,
    created_at: i64,
    updated_at: i64,
}

impl UserRow {
    fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: user_id(&self.user_id)?,
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            state: UserState::parse(&self.state).ok_or_else(|| corrupt("user state"))?,
            platform_roles: platform_roles(&self.platform_roles)?,
            has_totp: self.has_totp,
            created_at: timestamp(self.created_at)?,
            updated_at: timestamp(self.updated_at)?,
        })
    }
}

const USER_SELECT: &str = "select u.user_id, u.email, u.state, \
     (select json_group_array(r.role) from user_platform_roles r where r.user_id = u.user_id) \
         as platform_roles, \
     u.has_totp, u.created_at, u.updated_at from users u";

#[derive(sqlx::FromRow)]
struct ScopeRow {
    name: String,
    description: String,
    platform_only: bool,
    min_assurance: String,
}

impl ScopeRow {
    fn into_scope(self) -> Result<CatalogScope, StoreError> {
        Ok(CatalogScope {
            name: ScopeName::parse(&self.name).map_err(|_| corrupt("scope name"))?,
            description: self.description,
            platform_only: self.platform_only,
            min_assurance: Assurance::parse(&self.min_assurance)
                .map_err(|_| corrupt("assurance"))?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SchemaRow {
    key: String,
    value_type: String,
    user_editable: bool,
    tenant_overridable: bool,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    tenant_id: String,
    key_id: String,
    name: String,
    scopes: String,
    created_by: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl KeyRow {
    fn into_key(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: KeyId::from_generated(uuid(&self.key_id)?),
            tenant: tenant_id(&self.tenant_id)?,
            name: DisplayName::parse(&self.name).map_err(|_| corrupt("key name"))?,
            scopes: scopes(&self.scopes)?,
            created_by: self.created_by.as_deref().map(user_id).transpose()?,
            created_at: timestamp(self.created_at)?,
            revoked_at: optional_timestamp(self.revoked_at)?,
        })
    }
}

const KEY_SELECT: &str = "select k.tenant_id, k.key_id, k.name, \
     (select json_group_array(s.scope) from api_key_scopes s \
      where s.tenant_id = k.tenant_id and s.key_id = k.key_id) as scopes, \
     k.created_by, k.created_at, k.revoked_at from api_keys k";

#[derive(sqlx::FromRow)]
struct SessionRow {
    token_hash: String,
    user_id: String,
    created_at: i64,
    expires_at: i64,
    last_seen_at: i64,
    aal2_until: Option<i64>,
}

impl SessionRow {
    fn into_session(self) -> Result<Session, StoreError> {
        Ok(Session {
            token_hash: self.token_hash,
            user_id: user_id(&self.user_id)?,
            created_at: timestamp(self.created_at)?,
            expires_at: timestamp(self.expires_at)?,
            last_seen_at: timestamp(self.last_seen_at)?,
            aal2_until: optional_timestamp(self.aal2_until)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    partition: String,
    seq: i64,
    tenant_id: Option<String>,
    audit_id: String,
    at: i64,
    actor_type: String,
    actor_id: String,
    action: String,
    target_type: String,
    target_id: String,
    outcome: String,
    reason: String,
    request_id: String,
    prev_hash: String,
    hash: String,
}

impl AuditRow {
    fn into_record(self) -> Result<AuditRecord, StoreError> {
        let partition = partition_of(self.tenant_id)?;
        if partition.name() != self.partition {
            return Err(corrupt("audit partition"));
        }
        Ok(AuditRecord {
            id: AuditId::from_generated(uuid(&self.audit_id)?),
            seq: u64::try_from(self.seq).map_err(|_| corrupt("audit seq"))?,
            partition,
            at: timestamp(self.at)?,
            actor: Actor {
                kind: match self.actor_type.as_str() {
                    "user" => ActorType::User,
                    "api_key" => ActorType::ApiKey,
                    "system" => ActorType::System,
                    "anonymous" => ActorType::Anonymous,
                    _ => return Err(corrupt("actor type")),
                },
                id: self.actor_id,
            },
            action: self.action,
            target_kind: self.target_type,
            target_id: self.target_id,
            outcome: match self.outcome.as_str() {
                "allowed" => Outcome::Allowed,
                "denied" => Outcome::Denied,
                _ => return Err(corrupt("outcome")),
            },
            reason: self.reason,
            request_id: self.request_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    position: i64,
    tenant_id: Option<String>,
    event_id: String,
    event_type: String,
    subject: String,
    time: i64,
    data: String,
}

impl EventRow {
    fn into_event(self) -> Result<Event, StoreError> {
        Ok(Event {
            id: EventId::from_generated(uuid(&self.event_id)?),
            partition: partition_of(self.tenant_id)?,
            position: u64::try_from(self.position).map_err(|_| corrupt("event position"))?,
            time: timestamp(self.time)?,
            event_type: self.event_type,
            subject: self.subject,
            data: serde_json::from_str(&self.data).map_err(|_| corrupt("event data"))?,
        })
    }
}

/// The facts of one decision, as the single query of `authz_facts` returns them.
#[derive(sqlx::FromRow)]
struct FactsRow {
    tenant_state: Option<String>,
    user_state: Option<String>,
    user_platform_roles: String,
    key_tenant: Option<String>,
    key_scopes: String,
    key_revoked: Option<bool>,
    account_state: Option<String>,
    account_roles: String,
    bound_roles: String,
    scope_name: Option<String>,
    scope_description: Option<String>,
    scope_platform_only: Option<bool>,
    scope_min_assurance: Option<String>,
    scope_enabled: bool,
    target_exists: bool,
    target_platform_roles: String,
    target_account_state: Option<String>,
}

/// ?1 tenant, ?2 subject user, ?3 subject key, ?4 scope, ?5 target user.
const FACTS_QUERY: &str = "select \
    (select t.state from tenants t where t.tenant_id = ?1) as tenant_state, \
    (select u.state from users u where u.user_id = ?2) as user_state, \
    (select json_group_array(r.role) from user_platform_roles r where r.user_id = ?2) \
        as user_platform_roles, \
    k.tenant_id as key_tenant, \
    (select json_group_array(s.scope) from api_key_scopes s \
     where s.tenant_id = k.tenant_id and s.key_id = k.key_id) as key_scopes, \
    (k.revoked_at is not null) as key_revoked, \
    (select a.state from accounts a where a.tenant_id = ?1 and a.user_id = ?2) as account_state, \
    (select json_group_array(m.role) from memberships m \
     where m.tenant_id = ?1 and m.user_id = ?2) as account_roles, \
    (select json_group_array(distinct m.role) from memberships m \
     join role_binding_scopes b on b.tenant_id = m.tenant_id and b.role = m.role \
     where m.tenant_id = ?1 and m.user_id = ?2 and b.scope = ?4) as bound_roles, \
    c.name as scope_name, c.description as scope_description, \
    c.platform_only as scope_platform_only, c.min_assurance as scope_min_assurance, \
    exists(select 1 from tenant_scopes s where s.tenant_id = ?1 and s.scope = ?4) \
        as scope_enabled, \
    exists(select 1 from users tu where tu.user_id = ?5) as target_exists, \
    (select json_group_array(r.role) from user_platform_roles r where r.user_id = ?5) \
        as target_platform_roles, \
    (select ta.state from accounts ta where ta.tenant_id = ?1 and ta.user_id = ?5) \
        as target_account_state \
    from (select 1) as one \
    left join api_keys k on k.key_id = ?3 \
    left join catalog_scopes c on c.name = ?4";

#[async_trait]
impl StoreTx for SqliteTx {
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        // There is one writer: holding it locks every partition.
        self.scope.allow_partition(partition)?;
        self.write().await.map(|_| ())
    }

    async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError> {
        if let Some(tenant) = &query.tenant {
            self.scope.allow(tenant)?;
        }
        let (user, key) = match &query.subject {
            SubjectRef::User(user) => (Some(user.to_string()), None),
            SubjectRef::ApiKey(key) => (None, Some(key.to_string())),
        };
        let connection = self.read().await?;
        let row: FactsRow = sqlx::query_as(FACTS_QUERY)
            .bind(query.tenant.as_ref().map(TenantId::as_str))
            .bind(user)
            .bind(key)
            .bind(query.scope.as_str())
            .bind(query.target.map(|target| target.to_string()))
            .fetch_one(connection)
            .await
            .map_err(store_error)?;
        let subject = match &query.subject {
            SubjectRef::User(user_id) => match row.user_state {
                Some(state) => Some(SubjectFacts::User {
                    user_id: *user_id,
                    state: UserState::parse(&state).ok_or_else(|| corrupt("user state"))?,
                    platform_roles: platform_roles(&row.user_platform_roles)?,
                }),
                None => None,
            },
            SubjectRef::ApiKey(key_id) => match (row.key_tenant, row.key_revoked) {
                (Some(tenant), Some(false)) => {
                    let tenant = tenant_id(&tenant)?;
                    // A key of another tenant is invisible here, as under row-level
                    // security.
                    if self.scope.sees(&tenant) {
                        Some(SubjectFacts::ApiKey {
                            key_id: *key_id,
                            tenant,
                            scopes: scopes(&row.key_scopes)?,
                        })
                    } else {
                        None
                    }
                }
                _ => None,
            },
        };
        let account = match row.account_state {
            Some(state) => Some(AccountFacts {
                state: account_state(&state)?,
                roles: roles(&row.account_roles)?,
            }),
            None => None,
        };
        let scope = match (
            row.scope_name,
            row.scope_description,
            row.scope_platform_only,
            row.scope_min_assurance,
        ) {
            (Some(name), Some(description), Some(platform_only), Some(min_assurance)) => Some(
                ScopeRow {
                    name,
                    description,
                    platform_only,
                    min_assurance,
                }
                .into_scope()?,
            ),
            _ => None,
        };
        let target = match query.target {
            Some(user_id) if row.target_exists => Some(TargetFacts {
                user_id,
                account_state: row
                    .target_account_state
                    .as_deref()
                    .map(account_state)
                    .transpose()?,
                platform_roles: platform_roles(&row.target_platform_roles)?,
            }),
            _ => None,
        };
        Ok(AuthzFacts {
            tenant_state: row
                .tenant_state
                .as_deref()
                .map(|state| TenantState::parse(state).ok_or_else(|| corrupt("tenant state")))
                .transpose()?,
            subject,
            account,
            scope,
            scope_enabled: row.scope_enabled,
            bound_roles: roles(&row.bound_roles)?,
            target,
        })
    }

    async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError> {
        if !self.scope.sees(tenant) {
            return Ok(None);
        }
        let connection = self.read().await?;
        let row: Option<TenantRow> = sqlx::query_as(&format!(
            "select {TENANT_COLUMNS} from tenants where tenant_id = ?1"
        ))
        .bind(tenant.as_str())
        .fetch_optional(connection)
        .await
        .map_err(store_error)?;
        row.map(TenantRow::into_tenant).transpose()
    }

    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        if self
            .exists(
                "select 1 from tenant_tombstones where tenant_id = ?1",
                &[tenant.id.as_str()],
            )
            .await?
        {
            return Err(StoreError::Duplicate("tenant"));
        }
        self.execute(
            sqlx::query(
                "insert into tenants (tenant_id, display_name, state, created_at, updated_at) \
                 values (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(tenant.id.as_str())
            .bind(tenant.display_name.as_str())
            .bind(tenant.state.as_str())
            .bind(micros(tenant.created_at))
            .bind(micros(tenant.updated_at)),
        )
        .await
        .map(|_| ())
    }

    async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        let updated = self
            .execute(
                sqlx::query(
                    "update tenants set display_name = ?2, state = ?3, updated_at = ?4 \
                     where tenant_id = ?1",
                )
                .bind(tenant.id.as_str())
                .bind(tenant.display_name.as_str())
                .bind(tenant.state.as_str())
                .bind(micros(tenant.updated_at)),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::Missing("tenant"));
        }
        Ok(())
    }

    async fn list_tenants(
        &mut self,
        after: Option<TenantId>,
        limit_to: usize,
    ) -> Result<Vec<Tenant>, StoreError> {
        self.scope.require_platform()?;
        let connection = self.read().await?;
        let rows: Vec<TenantRow> = sqlx::query_as(&format!(
            "select {TENANT_COLUMNS} from tenants \
             where ?1 is null or tenant_id > ?1 order by tenant_id limit ?2"
        ))
        .bind(after.as_ref().map(TenantId::as_str))
        .bind(limit(limit_to))
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(TenantRow::into_tenant).collect()
    }

    async fn enabled_scopes(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, StoreError> {
        self.scope.allow(tenant)?;
        let connection = self.read().await?;
        let names: Vec<String> =
            sqlx::query_scalar("select scope from tenant_scopes where tenant_id = ?1")
                .bind(tenant.as_str())
                .fetch_all(connection)
                .await
                .map_err(store_error)?;
        names
            .iter()
            .map(|name| ScopeName::parse(name).map_err(|_| corrupt("scope name")))
            .collect()
    }

    async fn set_enabled_scopes(
        &mut self,
        tenant: &TenantId,
        scope_names: &BTreeSet<ScopeName>,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        self.require_tenant(tenant).await?;
        let names = json_names(scope_names.iter().map(ScopeName::as_str));
        self.require_scopes(&names).await?;
        self.execute(
            sqlx::query("delete from tenant_scopes where tenant_id = ?1").bind(tenant.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into tenant_scopes (tenant_id, scope) select ?1, value from json_each(?2)",
            )
            .bind(tenant.as_str())
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError> {
        self.scope.allow(tenant)?;
        let connection = self.read().await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "select b.role, (select json_group_array(s.scope) from role_binding_scopes s \
                             where s.tenant_id = b.tenant_id and s.role = b.role) \
             from role_bindings b where b.tenant_id = ?1 order by b.role",
        )
        .bind(tenant.as_str())
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|(role, names)| {
                Ok(RoleBinding {
                    role: RoleName::parse(&role).map_err(|_| corrupt("role name"))?,
                    scopes: scopes(&names)?,
                })
            })
            .collect()
    }

    async fn put_binding(
        &mut self,
        tenant: &TenantId,
        binding: &RoleBinding,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        self.require_tenant(tenant).await?;
        let names = json_names(binding.scopes.iter().map(ScopeName::as_str));
        self.require_scopes(&names).await?;
        self.execute(
            sqlx::query(
                "insert into role_bindings (tenant_id, role) values (?1, ?2) \
                 on conflict (tenant_id, role) do nothing",
            )
            .bind(tenant.as_str())
            .bind(binding.role.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query("delete from role_binding_scopes where tenant_id = ?1 and role = ?2")
                .bind(tenant.as_str())
                .bind(binding.role.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into role_binding_scopes (tenant_id, role, scope) \
                 select ?1, ?2, value from json_each(?3)",
            )
            .bind(tenant.as_str())
            .bind(binding.role.as_str())
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn delete_binding(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        self.execute(
            sqlx::query("delete from role_bindings where tenant_id = ?1 and role = ?2")
                .bind(tenant.as_str())
                .bind(role.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn get_member(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        self.scope.allow(tenant)?;
        let connection = self.read().await?;
        let row: Option<MemberRow> = sqlx::query_as(&format!(
            "{MEMBER_SELECT} where a.tenant_id = ?1 and a.user_id = ?2"
        ))
        .bind(tenant.as_str())
        .bind(user.to_string())
        .fetch_optional(connection)
        .await
        .map_err(store_error)?;
        row.map(MemberRow::into_member).transpose()
    }

    async fn list_members(
        &mut self,
        tenant: &TenantId,
        after: Option<UserId>,
        limit_to: usize,
    ) -> Result<Vec<Member>, StoreError> {
        self.scope.allow(tenant)?;
        let connection = self.read().await?;
        let rows: Vec<MemberRow> = sqlx::query_as(&format!(
            "{MEMBER_SELECT} where a.tenant_id = ?1 and (?2 is null or a.user_id > ?2) \
             order by a.user_id limit ?3"
        ))
        .bind(tenant.as_str())
        .bind(after.map(|user| user.to_string()))
        .bind(limit(limit_to))
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(MemberRow::into_member).collect()
    }

    async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        self.require_tenant(&member.tenant).await?;
        self.require_user(&member.user_id).await?;
        let user = member.user_id.to_string();
        if self
            .exists(
                "select 1 from accounts where tenant_id = ?1 and user_id = ?2",
                &[member.tenant.as_str(), &user],
            )
            .await?
        {
            return Err(StoreError::Duplicate("member"));
        }
        self.execute(
            sqlx::query(
                "insert into accounts (tenant_id, user_id, state, version, created_at, updated_at) \
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(member.tenant.as_str())
            .bind(&user)
            .bind(member.state.as_str())
            .bind(position(member.version))
            .bind(micros(member.created_at))
            .bind(micros(member.updated_at)),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into memberships (tenant_id, user_id, role) \
                 select ?1, ?2, value from json_each(?3)",
            )
            .bind(member.tenant.as_str())
            .bind(&user)
            .bind(json_names(member.roles.iter().map(RoleName::as_str))),
        )
        .await
        .map(|_| ())
    }

    async fn update_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        let user = member.user_id.to_string();
        let updated = self
            .execute(
                sqlx::query(
                    "update accounts set state = ?3, version = ?4, updated_at = ?5 \
                     where tenant_id = ?1 and user_id = ?2",
                )
                .bind(member.tenant.as_str())
                .bind(&user)
                .bind(member.state.as_str())
                .bind(position(member.version))
                .bind(micros(member.updated_at)),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::Missing("member"));
        }
        self.execute(
            sqlx::query("delete from memberships where tenant_id = ?1 and user_id = ?2")
                .bind(member.tenant.as_str())
                .bind(&user),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into memberships (tenant_id, user_id, role) \
                 select ?1, ?2, value from json_each(?3)",
            )
            .bind(member.tenant.as_str())
            .bind(&user)
            .bind(json_names(member.roles.iter().map(RoleName::as_str))),
        )
        .await
        .map(|_| ())
    }

    async fn delete_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        // Memberships and tenant profile values go by cascade; the account's API keys
        // forget their creator (trigger accounts_forget_key_creator).
        let deleted = self
            .execute(
                sqlx::query("delete from accounts where tenant_id = ?1 and user_id = ?2")
                    .bind(tenant.as_str())
                    .bind(user.to_string()),
            )
            .await?;
        if deleted == 0 {
            return Err(StoreError::Missing("member"));
        }
        Ok(())
    }

    async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.scope.allow(tenant)?;
        let connection = self.read().await?;
        let count: i64 = sqlx::query_scalar(
            "select count(*) from accounts a where a.tenant_id = ?1 and a.state = 'active' \
             and exists (select 1 from memberships m where m.tenant_id = a.tenant_id \
                         and m.user_id = a.user_id and m.role = 'tenant_admin')",
        )
        .bind(tenant.as_str())
        .fetch_one(connection)
        .await
        .map_err(store_error)?;
        u64::try_from(count).map_err(|_| corrupt("count"))
    }

    async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError> {
        self.scope.require_platform()?;
        let connection = self.read().await?;
        let rows: Vec<MemberRow> = sqlx::query_as(&format!(
            "{MEMBER_SELECT} where a.user_id = ?1 order by a.tenant_id"
        ))
        .bind(user.to_string())
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(MemberRow::into_member).collect()
    }

    async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError> {
        let connection = self.read().await?;
        let row: Option<UserRow> = sqlx::query_as(&format!("{USER_SELECT} where u.user_id = ?1"))
            .bind(user.to_string())
            .fetch_optional(connection)
            .await
            .map_err(store_error)?;
        row.map(UserRow::into_user).transpose()
    }

    async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError> {
        let connection = self.read().await?;
        let row: Option<UserRow> =
            sqlx::query_as(&format!("{USER_SELECT} where lower(u.email) = lower(?1)"))
                .bind(email.as_str())
                .fetch_optional(connection)
                .await
                .map_err(store_error)?;
        row.map(UserRow::into_user).transpose()
    }

    async fn insert_user(
        &mut self,
        user: &User,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        if self
            .exists(
                "select 1 from users where lower(email) = lower(?1)",
                &[user.email.as_str()],
            )
            .await?
        {
            return Err(StoreError::Duplicate("email"));
        }
        let id = user.id.to_string();
        if self
            .exists("select 1 from users where user_id = ?1", &[&id])
            .await?
        {
            return Err(StoreError::Duplicate("user"));
        }
        self.execute(
            sqlx::query(
                "insert into users (user_id, email, state, has_totp, created_at, updated_at) \
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(&id)
            .bind(user.email.as_str())
            .bind(user.state.as_str())
            .bind(user.has_totp)
            .bind(micros(user.created_at))
            .bind(micros(user.updated_at)),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into user_platform_roles (user_id, role) select ?1, value from json_each(?2)",
            )
            .bind(&id)
            .bind(json_names(user.platform_roles.iter().map(PlatformRole::as_str))),
        )
        .await?;
        self.set_credentials(&user.id, credentials).await
    }

    async fn update_user(&mut self, user: &User) -> Result<(), StoreError> {
        let id = user.id.to_string();
        let updated = self
            .execute(
                sqlx::query(
                    "update users set email = ?2, state = ?3, has_totp = ?4, updated_at = ?5 \
                     where user_id = ?1",
                )
                .bind(&id)
                .bind(user.email.as_str())
                .bind(user.state.as_str())
                .bind(user.has_totp)
                .bind(micros(user.updated_at)),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::Missing("user"));
        }
        self.execute(sqlx::query("delete from user_platform_roles where user_id = ?1").bind(&id))
            .await?;
        self.execute(
            sqlx::query(
                "insert into user_platform_roles (user_id, role) select ?1, value from json_each(?2)",
            )
            .bind(&id)
            .bind(json_names(user.platform_roles.iter().map(PlatformRole::as_str))),
        )
        .await
        .map(|_| ())
    }

    async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError> {
        let connection = self.read().await?;
        let row: Option<(Option<String>, Option<String>, bool, Option<i64>)> = sqlx::query_as(
            "select password_hash, totp_secret, totp_confirmed, totp_last_step \
             from user_credentials where user_id = ?1",
        )
        .bind(user.to_string())
        .fetch_optional(connection)
        .await
        .map_err(store_error)?;
        Ok(match row {
            None => Credentials::default(),
            Some((password_hash, secret, confirmed, last_step)) => Credentials {
                password_hash,
                totp: secret.map(|secret| TotpEnrolment {
                    secret,
                    confirmed,
                    last_used_step: last_step.and_then(|step| u64::try_from(step).ok()),
                }),
            },
        })
    }

    async fn set_credentials(
        &mut self,
        user: &UserId,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        self.require_user(user).await?;
        let totp = credentials.totp.as_ref();
        self.execute(
            sqlx::query(
                "insert into user_credentials (user_id, password_hash, totp_secret, totp_confirmed, totp_last_step) \
                 values (?1, ?2, ?3, ?4, ?5) \
                 on conflict (user_id) do update set password_hash = excluded.password_hash, \
                 totp_secret = excluded.totp_secret, totp_confirmed = excluded.totp_confirmed, \
                 totp_last_step = excluded.totp_last_step",
            )
            .bind(user.to_string())
            .bind(credentials.password_hash.as_deref())
            .bind(totp.map(|totp| totp.secret.as_str()))
            .bind(totp.is_some_and(|totp| totp.confirmed))
            .bind(totp.and_then(|totp| totp.last_used_step).and_then(|step| i64::try_from(step).ok())),
        )
        .await
        .map(|_| ())
    }

    async fn count_platform_roots(&mut self) -> Result<u64, StoreError> {
        let connection = self.read().await?;
        let count: i64 = sqlx::query_scalar(
            "select count(*) from user_platform_roles where role = 'platform_root'",
        )
        .fetch_one(connection)
        .await
        .map_err(store_error)?;
        u64::try_from(count).map_err(|_| corrupt("count"))
    }

    async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError> {
        let connection = self.read().await?;
        let count: i64 = sqlx::query_scalar(
            "select count(*) from user_platform_roles join users using (user_id) \
             where role = 'platform_root' and state = 'active'",
        )
        .fetch_one(connection)
        .await
        .map_err(store_error)?;
        u64::try_from(count).map_err(|_| corrupt("count"))
    }

    async fn list_catalog(&mut self) -> Result<Vec<CatalogScope>, StoreError> {
        let connection = self.read().await?;
        let rows: Vec<ScopeRow> = sqlx::query_as(
            "select name, description, platform_only, min_assurance from catalog_scopes \
             order by name",
        )
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(ScopeRow::into_scope).collect()
    }

    async fn get_catalog_scope(
        &mut self,
        name: &ScopeName,
    ) -> Result<Option<CatalogScope>, StoreError> {
        let connection = self.read().await?;
        let row: Option<ScopeRow> = sqlx::query_as(
            "select name, description, platform_only, min_assurance from catalog_scopes \
             where name = ?1",
        )
        .bind(name.as_str())
        .fetch_optional(connection)
        .await
        .map_err(store_error)?;
        row.map(ScopeRow::into_scope).transpose()
    }

    async fn insert_catalog_scope(&mut self, scope: &CatalogScope) -> Result<(), StoreError> {
        if self
            .exists(
                "select 1 from catalog_scopes where name = ?1",
                &[scope.name.as_str()],
            )
            .await?
        {
            return Err(StoreError::Duplicate("scope"));
        }
        self.execute(
            sqlx::query(
                "insert into catalog_scopes (name, description, platform_only, min_assurance) \
                 values (?1, ?2, ?3, ?4)",
            )
            .bind(scope.name.as_str())
            .bind(&scope.description)
            .bind(scope.platform_only)
            .bind(scope.min_assurance.as_str()),
        )
        .await
        .map(|_| ())
    }

    async fn list_schema(&mut self) -> Result<Vec<SchemaEntry>, StoreError> {
        let connection = self.read().await?;
        let rows: Vec<SchemaRow> = sqlx::query_as(
            "select key, value_type, user_editable, tenant_overridable from profile_schema \
             order by key",
        )
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|row| {
                Ok(SchemaEntry {
                    key: ProfileKey::parse(&row.key).map_err(|_| corrupt("profile key"))?,
                    value_type: ProfileType::parse(&row.value_type)
                        .map_err(|_| corrupt("profile type"))?,
                    user_editable: row.user_editable,
                    tenant_overridable: row.tenant_overridable,
                })
            })
            .collect()
    }

    async fn put_schema_entry(&mut self, entry: &SchemaEntry) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into profile_schema (key, value_type, user_editable, tenant_overridable) \
                 values (?1, ?2, ?3, ?4) on conflict (key) do update set \
                 value_type = excluded.value_type, user_editable = excluded.user_editable, \
                 tenant_overridable = excluded.tenant_overridable",
            )
            .bind(entry.key.as_str())
            .bind(entry.value_type.as_str())
            .bind(entry.user_editable)
            .bind(entry.tenant_overridable),
        )
        .await
        .map(|_| ())
    }

    async fn member_values(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.scope.allow(tenant)?;
        self.values(
            "select key, value from member_profile_values where tenant_id = ?1 and user_id = ?2",
            &[tenant.as_str(), &user.to_string()],
        )
        .await
    }

    async fn put_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        self.require_member(tenant, user).await?;
        self.require_profile_key(key).await?;
        self.execute(
            sqlx::query(
                "insert into member_profile_values (tenant_id, user_id, key, value) \
                 values (?1, ?2, ?3, ?4) on conflict (tenant_id, user_id, key) \
                 do update set value = excluded.value",
            )
            .bind(tenant.as_str())
            .bind(user.to_string())
            .bind(key.as_str())
            .bind(value.as_json().to_string()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        self.execute(
            sqlx::query(
                "delete from member_profile_values where tenant_id = ?1 and user_id = ?2 and key = ?3",
            )
            .bind(tenant.as_str())
            .bind(user.to_string())
            .bind(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn tenant_defaults(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.scope.allow(tenant)?;
        self.values(
            "select key, value from tenant_profile_defaults where tenant_id = ?1",
            &[tenant.as_str()],
        )
        .await
    }

    async fn put_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        self.require_tenant(tenant).await?;
        self.require_profile_key(key).await?;
        self.execute(
            sqlx::query(
                "insert into tenant_profile_defaults (tenant_id, key, value) values (?1, ?2, ?3) \
                 on conflict (tenant_id, key) do update set value = excluded.value",
            )
            .bind(tenant.as_str())
            .bind(key.as_str())
            .bind(value.as_json().to_string()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        self.execute(
            sqlx::query("delete from tenant_profile_defaults where tenant_id = ?1 and key = ?2")
                .bind(tenant.as_str())
                .bind(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn platform_values(
        &mut self,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.values(
            "select key, value from platform_profile_values where user_id = ?1",
            &[&user.to_string()],
        )
        .await
    }

    async fn put_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.require_user(user).await?;
        self.require_profile_key(key).await?;
        self.execute(
            sqlx::query(
                "insert into platform_profile_values (user_id, key, value) values (?1, ?2, ?3) \
                 on conflict (user_id, key) do update set value = excluded.value",
            )
            .bind(user.to_string())
            .bind(key.as_str())
            .bind(value.as_json().to_string()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.execute(
            sqlx::query("delete from platform_profile_values where user_id = ?1 and key = ?2")
                .bind(user.to_string())
                .bind(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError> {
        self.scope.allow(&key.tenant)?;
        let id = key.id.to_string();
        if self
            .exists(
                "select 1 from api_keys where key_id = ?1 or secret_hash = ?2",
                &[&id, secret_hash],
            )
            .await?
        {
            return Err(StoreError::Duplicate("api_key"));
        }
        self.require_tenant(&key.tenant).await?;
        if let Some(creator) = &key.created_by {
            self.require_member(&key.tenant, creator).await?;
        }
        let names = json_names(key.scopes.iter().map(ScopeName::as_str));
        self.require_scopes(&names).await?;
        self.execute(
            sqlx::query(
                "insert into api_keys (tenant_id, key_id, name, secret_hash, created_by, created_at, revoked_at) \
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(key.tenant.as_str())
            .bind(&id)
            .bind(key.name.as_str())
            .bind(secret_hash)
            .bind(key.created_by.map(|user| user.to_string()))
            .bind(micros(key.created_at))
            .bind(key.revoked_at.map(micros)),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into api_key_scopes (tenant_id, key_id, scope) \
                 select ?1, ?2, value from json_each(?3)",
            )
            .bind(key.tenant.as_str())
            .bind(&id)
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        let connection = self.read().await?;
        let rows: Vec<KeyRow> = sqlx::query_as(&format!(
            "{KEY_SELECT} where k.tenant_id = ?1 order by k.key_id"
        ))
        .bind(tenant.as_str())
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    async fn get_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        let connection = self.read().await?;
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "{KEY_SELECT} where k.tenant_id = ?1 and k.key_id = ?2"
        ))
        .bind(tenant.as_str())
        .bind(key.to_string())
        .fetch_optional(connection)
        .await
        .map_err(store_error)?;
        row.map(KeyRow::into_key).transpose()
    }

    async fn revoke_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        let updated = self
            .execute(
                sqlx::query(
                    "update api_keys set revoked_at = ?3 where tenant_id = ?1 and key_id = ?2",
                )
                .bind(tenant.as_str())
                .bind(key.to_string())
                .bind(micros(at)),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::Missing("api_key"));
        }
        Ok(())
    }

    async fn find_api_key_by_hash(
        &mut self,
        secret_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        let connection = self.read().await?;
        let row: Option<KeyRow> = sqlx::query_as(&format!("{KEY_SELECT} where k.secret_hash = ?1"))
            .bind(secret_hash)
            .fetch_optional(connection)
            .await
            .map_err(store_error)?;
        let key = row.map(KeyRow::into_key).transpose()?;
        Ok(key.filter(|key| self.scope.sees(&key.tenant)))
    }

    async fn insert_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.require_user(&session.user_id).await?;
        self.execute(
            sqlx::query(
                "insert into sessions (token_hash, user_id, created_at, expires_at, last_seen_at, aal2_until) \
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(&session.token_hash)
            .bind(session.user_id.to_string())
            .bind(micros(session.created_at))
            .bind(micros(session.expires_at))
            .bind(micros(session.last_seen_at))
            .bind(session.aal2_until.map(micros)),
        )
        .await
        .map(|_| ())
    }

    async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let connection = self.read().await?;
        let row: Option<SessionRow> = sqlx::query_as(
            "select token_hash, user_id, created_at, expires_at, last_seen_at, aal2_until \
             from sessions where token_hash = ?1",
        )
        .bind(token_hash)
        .fetch_optional(connection)
        .await
        .map_err(store_error)?;
        row.map(SessionRow::into_session).transpose()
    }

    async fn update_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "update sessions set expires_at = ?2, last_seen_at = ?3, aal2_until = ?4 \
                 where token_hash = ?1",
            )
            .bind(&session.token_hash)
            .bind(micros(session.expires_at))
            .bind(micros(session.last_seen_at))
            .bind(session.aal2_until.map(micros)),
        )
        .await
        .map(|_| ())
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        self.execute(sqlx::query("delete from sessions where token_hash = ?1").bind(token_hash))
            .await
            .map(|deleted| deleted > 0)
    }

    async fn delete_sessions_of(
        &mut self,
        user: &UserId,
        keep: Option<String>,
    ) -> Result<u64, StoreError> {
        self.execute(
            sqlx::query(
                "delete from sessions where user_id = ?1 and (?2 is null or token_hash <> ?2)",
            )
            .bind(user.to_string())
            .bind(keep),
        )
        .await
    }

    async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError> {
        self.require_user(&invitation.user_id).await?;
        self.execute(
            sqlx::query(
                "insert into invitations (token_hash, user_id, expires_at, used_at) \
                 values (?1, ?2, ?3, ?4)",
            )
            .bind(&invitation.token_hash)
            .bind(invitation.user_id.to_string())
            .bind(micros(invitation.expires_at))
            .bind(invitation.used_at.map(micros)),
        )
        .await
        .map(|_| ())
    }

    async fn find_invitation(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        let connection = self.read().await?;
        let row: Option<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "select token_hash, user_id, expires_at, used_at from invitations where token_hash = ?1",
        )
        .bind(token_hash)
        .fetch_optional(connection)
        .await
        .map_err(store_error)?;
        row.map(|(token_hash, user, expires_at, used_at)| {
            Ok(Invitation {
                token_hash,
                user_id: user_id(&user)?,
                expires_at: timestamp(expires_at)?,
                used_at: optional_timestamp(used_at)?,
            })
        })
        .transpose()
    }

    /// On the writer, which this transaction now holds to its commit: whatever it read
    /// before, the check and the mark see every committed use and no other transaction
    /// can use the invitation until this one ends.
    async fn consume_invitation(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError> {
        let connection = self.write().await?;
        let row: Option<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "update invitations set used_at = ?2 \
             where token_hash = ?1 and used_at is null and expires_at > ?2 \
             returning token_hash, user_id, expires_at, used_at",
        )
        .bind(token_hash)
        .bind(micros(now))
        .fetch_optional(connection)
        .await
        .map_err(store_error)?;
        row.map(|(token_hash, user, expires_at, used_at)| {
            Ok(Invitation {
                token_hash,
                user_id: user_id(&user)?,
                expires_at: timestamp(expires_at)?,
                used_at: optional_timestamp(used_at)?,
            })
        })
        .transpose()
    }

    /// On the writer, held to commit, as for invitations.
    async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let step = i64::try_from(step).map_err(|_| corrupt("totp step"))?;
        self.execute(
            sqlx::query(
                "update user_credentials set totp_last_step = ?2 \
                 where user_id = ?1 and totp_secret is not null \
                 and (totp_last_step is null or totp_last_step < ?2)",
            )
            .bind(user.to_string())
            .bind(step),
        )
        .await
        .map(|updated| updated == 1)
    }

    async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let connection = self.write().await?;
        // Writers are serialised, so the last record read here stays the last one.
        let last: Option<(i64, String)> = sqlx::query_as(
            "select seq, hash from audit_records where partition = ?1 order by seq desc limit 1",
        )
        .bind(draft.partition.name())
        .fetch_optional(&mut *connection)
        .await
        .map_err(store_error)?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (
                u64::try_from(seq).map_err(|_| corrupt("audit seq"))? + 1,
                hash,
            ),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let record = AuditRecord::seal(draft, seq, &prev_hash);
        sqlx::query(
            "insert into audit_records (partition, seq, tenant_id, audit_id, at, actor_type, \
                 actor_id, action, target_type, target_id, outcome, reason, request_id, \
                 prev_hash, hash) \
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .bind(record.partition.name())
        .bind(position(record.seq))
        .bind(record.tenant().map(TenantId::as_str))
        .bind(record.id.to_string())
        .bind(micros(record.at))
        .bind(record.actor.kind.as_str())
        .bind(&record.actor.id)
        .bind(&record.action)
        .bind(&record.target_kind)
        .bind(&record.target_id)
        .bind(record.outcome.as_str())
        .bind(&record.reason)
        .bind(&record.request_id)
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .execute(connection)
        .await
        .map_err(store_error)?;
        Ok(record)
    }

    async fn list_audit(
        &mut self,
        partition: &Partition,
        filter: &AuditFilter,
        after_seq: u64,
        limit_to: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.scope.allow_partition(partition)?;
        let connection = self.read().await?;
        let rows: Vec<AuditRow> = sqlx::query_as(
            "select partition, seq, tenant_id, audit_id, at, actor_type, actor_id, action, \
                    target_type, target_id, outcome, reason, request_id, prev_hash, hash \
             from audit_records where partition = ?1 and seq > ?2 \
               and (?3 is null or actor_id = ?3) \
               and (?4 is null or action = ?4) \
               and (?5 is null or outcome = ?5) \
               and (?6 is null or at >= ?6) \
               and (?7 is null or at < ?7) \
             order by seq limit ?8",
        )
        .bind(partition.name())
        .bind(position(after_seq))
        .bind(filter.actor_id.as_deref())
        .bind(filter.action.as_deref())
        .bind(filter.outcome.map(|outcome| outcome.as_str()))
        .bind(filter.from.map(micros))
        .bind(filter.until.map(micros))
        .bind(limit(limit_to))
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(AuditRow::into_record).collect()
    }

    async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let connection = self.write().await?;
        let last: i64 = sqlx::query_scalar(
            "select coalesce(max(position), 0) from outbox_events where partition = ?1",
        )
        .bind(draft.partition.name())
        .fetch_one(&mut *connection)
        .await
        .map_err(store_error)?;
        let next = u64::try_from(last).map_err(|_| corrupt("event position"))? + 1;
        let event = Event::place(draft, next);
        sqlx::query(
            "insert into outbox_events (partition, position, tenant_id, event_id, event_type, \
                 subject, time, data) \
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(event.partition.name())
        .bind(position(event.position))
        .bind(event.partition.tenant().map(TenantId::as_str))
        .bind(event.id.to_string())
        .bind(&event.event_type)
        .bind(&event.subject)
        .bind(micros(event.time))
        .bind(event.data.to_string())
        .execute(connection)
        .await
        .map_err(store_error)?;
        Ok(event)
    }

    async fn list_events(
        &mut self,
        partition: &Partition,
        after: u64,
        limit_to: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.scope.allow_partition(partition)?;
        let connection = self.read().await?;
        let rows: Vec<EventRow> = sqlx::query_as(
            "select position, tenant_id, event_id, event_type, subject, time, data \
             from outbox_events where partition = ?1 and position > ?2 \
             order by position limit ?3",
        )
        .bind(partition.name())
        .bind(position(after))
        .bind(limit(limit_to))
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError> {
        self.scope.allow(tenant)?;
        let connection = self.read().await?;
        let (waiting, oldest): (i64, Option<i64>) = sqlx::query_as(
            "select count(*), min(time) from outbox_events \
             where partition = ?1 and published_at is null",
        )
        .bind(tenant.as_str())
        .fetch_one(connection)
        .await
        .map_err(store_error)?;
        Ok(OutboxBacklog {
            waiting: u64::try_from(waiting).map_err(|_| corrupt("count"))?,
            oldest: optional_timestamp(oldest)?,
        })
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => Ok(()),
            Phase::Reading(tx) => tx.commit().await.map_err(store_error),
            Phase::Writing(mut writer) => {
                match sqlx::query("commit").execute(&mut writer.connection).await {
                    Ok(_) => {
                        writer.open = false;
                        Ok(())
                    }
                    Err(error) => {
                        rollback(&mut writer).await;
                        Err(store_error(error))
                    }
                }
            }
        }
    }
}
