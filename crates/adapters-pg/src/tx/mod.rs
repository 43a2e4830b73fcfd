//! One store transaction over PostgreSQL: every `StoreTx` method as SQL.
//!
//! Queries are checked at run time (`sqlx::query`), not with `query!`: the workspace then
//! builds without a database and without committed offline data, and the adapter's own
//! tests run every statement against a real PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use domain::audit::{Actor, ActorType, AuditDraft, AuditRecord, Outcome, Partition};
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
    AuditFilter, AuthorizeSnapshot, Credential, FactsQuery, LoginRecord, OutboxBacklog,
    SnapshotQuery, StoreError, StoreTx, SubjectRef, ThrottleCount,
};
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::store_error;
use crate::facts_cache::{FactsCache, Heads};

pub(crate) struct PgTx {
    tx: Transaction<'static, Postgres>,
    /// Heads this transaction has locked, as it last wrote them: while the row lock is
    /// held nobody else can change them, so appends need not read them again.
    heads: std::collections::HashMap<String, Head>,
}

#[derive(Clone, sqlx::FromRow)]
struct Head {
    audit_seq: i64,
    audit_hash: String,
    event_position: i64,
}

/// A row of the `authorize_snapshot` SQL function: the credential (repeated on every
/// row), then one facts row.
#[derive(sqlx::FromRow)]
struct SnapshotRow {
    /// 1 for the caller's own scope, then 2… for the checks in order.
    ord: i64,
    tenant_audit_seq: Option<i64>,
    tenant_event_position: Option<i64>,
    platform_audit_seq: Option<i64>,
    platform_event_position: Option<i64>,
    #[sqlx(flatten)]
    session: SessionColumns,
    api_key_id: Option<Uuid>,
    api_key_name: Option<String>,
    api_key_scopes: Option<Vec<String>>,
    api_key_created_by: Option<Uuid>,
    api_key_created_at: Option<OffsetDateTime>,
    api_key_revoked_at: Option<OffsetDateTime>,
    #[sqlx(flatten)]
    facts: FactsRow,
}

impl SnapshotRow {
    fn heads(&self) -> Heads {
        Heads {
            tenant: self.tenant_audit_seq.zip(self.tenant_event_position),
            platform: self.platform_audit_seq.zip(self.platform_event_position),
        }
    }

    fn credential(&self, query: &SnapshotQuery) -> Result<Option<Credential>, StoreError> {
        if let Some(session) = self.session.session(&query.token_hash) {
            return Ok(Some(Credential::Session(session)));
        }
        match (
            self.api_key_id,
            &self.api_key_name,
            &self.api_key_scopes,
            self.api_key_created_at,
        ) {
            (Some(key_id), Some(name), Some(scopes), Some(created_at)) => KeyRow {
                tenant_id: query.tenant.to_string(),
                key_id,
                name: name.clone(),
                scopes: scopes.clone(),
                created_by: self.api_key_created_by,
                created_at,
                revoked_at: self.api_key_revoked_at,
            }
            .into_key()
            .map(|key| Some(Credential::ApiKey(key))),
            _ => Ok(None),
        }
    }
}

#[derive(sqlx::FromRow)]
struct LoginRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: Option<String>,
}

/// [`domain::ports::Store::find_login`] in one statement, outside any transaction:
/// users and their credentials are platform tables, which row-level security does not
/// cover, so no setting is needed.
pub(crate) async fn find_login(
    pool: &sqlx::PgPool,
    email: &Email,
) -> Result<Option<LoginRecord>, StoreError> {
    let row: Option<LoginRow> = sqlx::query_as(&format!(
        "select u.*, (select c.password_hash from user_credentials c \
                      where c.user_id = u.user_id) as password_hash \
         from (select {USER_COLUMNS} from users where lower(email) = lower($1)) as u"
    ))
    .bind(email.as_str())
    .fetch_optional(pool)
    .await
    .map_err(store_error)?;
    row.map(|row| {
        Ok(LoginRecord {
            user: row.user.into_user()?,
            password_hash: row.password_hash,
        })
    })
    .transpose()
}

/// A row of the `authorize_probe` SQL function: one partition head, and the session the
/// token hash names (repeated on every row).
#[derive(sqlx::FromRow)]
struct ProbeRow {
    partition: Option<String>,
    audit_seq: Option<i64>,
    event_position: Option<i64>,
    #[sqlx(flatten)]
    session: SessionColumns,
}

/// The `session_*` columns of `authorize_snapshot` and `authorize_probe`: the session the
/// token hash names, all null when there is none.
#[derive(sqlx::FromRow)]
struct SessionColumns {
    session_user_id: Option<Uuid>,
    session_created_at: Option<OffsetDateTime>,
    session_expires_at: Option<OffsetDateTime>,
    session_last_seen_at: Option<OffsetDateTime>,
    session_aal2_until: Option<OffsetDateTime>,
}

impl SessionColumns {
    fn session(&self, token_hash: &str) -> Option<Session> {
        Some(Session::from(SessionRow {
            token_hash: token_hash.to_owned(),
            user_id: self.session_user_id?,
            created_at: self.session_created_at?,
            expires_at: self.session_expires_at?,
            last_seen_at: self.session_last_seen_at?,
            aal2_until: self.session_aal2_until,
        }))
    }
}

/// [`domain::ports::Store::authorize_snapshot`]: from the facts cache when a probe of
/// the partition heads (and the session) shows the cached facts still hold, else in one
/// statement that also refreshes the cache. Both run outside any explicit transaction:
/// the SQL functions set the tenant for the statement's own transaction.
pub(crate) async fn authorize_snapshot(
    pool: &sqlx::PgPool,
    cache: &FactsCache,
    query: &SnapshotQuery,
) -> Result<AuthorizeSnapshot, StoreError> {
    if let Some(cached) = cache.heads_for(query) {
        let session_hash = (!query.api_key).then_some(query.token_hash.as_str());
        let rows: Vec<ProbeRow> = sqlx::query_as("select * from authorize_probe($1, $2)")
            .bind(query.tenant.as_str())
            .bind(session_hash)
            .fetch_all(pool)
            .await
            .map_err(store_error)?;
        let mut heads = Heads::default();
        let mut session = None;
        for row in rows {
            let head = row.audit_seq.zip(row.event_position);
            match row.partition.as_deref() {
                Some("_platform") => heads.platform = head,
                Some(partition) if partition == query.tenant.as_str() => heads.tenant = head,
                _ => {}
            }
            if let Some(found) = row.session.session(&query.token_hash) {
                session = Some(found);
            }
        }
        if heads == cached {
            if let Some(snapshot) = cache.answer(query, heads, session) {
                return Ok(snapshot);
            }
        }
    }
    let (heads, snapshot) = read_snapshot(pool, query).await?;
    cache.keep(query, heads, &snapshot);
    Ok(snapshot)
}

/// The `authorize_snapshot` statement, and the heads it read the facts with.
async fn read_snapshot(
    pool: &sqlx::PgPool,
    query: &SnapshotQuery,
) -> Result<(Heads, AuthorizeSnapshot), StoreError> {
    let users: Vec<Uuid> = query.checks.iter().map(|c| *c.user.as_uuid()).collect();
    let scopes: Vec<&str> = query.checks.iter().map(|c| c.scope.as_str()).collect();
    let targets: Vec<Option<Uuid>> = query
        .checks
        .iter()
        .map(|c| c.target.map(|target| *target.as_uuid()))
        .collect();
    let mut rows: Vec<SnapshotRow> = sqlx::query_as(
        "select * from authorize_snapshot($1, $2, $3, $4, $5::uuid[], $6::text[], $7::uuid[])",
    )
    .bind(query.tenant.as_str())
    .bind(&query.token_hash)
    .bind(query.api_key)
    .bind(query.caller_scope.as_str())
    .bind(&users)
    .bind(&scopes)
    .bind(&targets)
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    rows.sort_unstable_by_key(|row| row.ord);
    let mut rows = rows.into_iter();
    let first = rows.next().ok_or_else(|| corrupt("authorize snapshot"))?;
    let heads = first.heads();
    let tenant = first
        .facts
        .tenant_state
        .as_deref()
        .map(|state| TenantState::parse(state).ok_or_else(|| corrupt("tenant state")))
        .transpose()?;
    let credential = first.credential(query)?;
    let caller = match &credential {
        Some(credential) => Some(first.facts.into_facts(&credential.subject(), None)?),
        None => None,
    };
    let checks = rows
        .zip(&query.checks)
        .map(|(row, check)| {
            row.facts
                .into_facts(&SubjectRef::User(check.user), check.target)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if checks.len() != query.checks.len() {
        return Err(corrupt("authorize snapshot"));
    }
    Ok((
        heads,
        AuthorizeSnapshot {
            tenant,
            credential,
            caller,
            checks,
        },
    ))
}

/// How many ended throttle windows one new window sweeps away: enough to keep up with
/// the rate windows start at, small enough to cost little.
const THROTTLE_SWEEP: i64 = 100;

/// [`Store::throttle_hit`](domain::ports::Store::throttle_hit): one atomic upsert that
/// starts a window or counts in the running one, committed at once.
pub(crate) async fn throttle_hit(
    pool: &sqlx::PgPool,
    key: &str,
    window: time::Duration,
    now: OffsetDateTime,
) -> Result<ThrottleCount, StoreError> {
    let (hits, window_ends_at): (i32, OffsetDateTime) = sqlx::query_as(
        "insert into throttles as t (key, window_ends_at, hits) values ($1, $3, 1) \
         on conflict (key) do update set \
         window_ends_at = case when t.window_ends_at <= $2 then excluded.window_ends_at \
             else t.window_ends_at end, \
         hits = case when t.window_ends_at <= $2 then 1 \
             else least(t.hits, 2147483646) + 1 end \
         returning hits, window_ends_at",
    )
    .bind(key)
    .bind(now)
    .bind(now + window)
    .fetch_one(pool)
    .await
    .map_err(store_error)?;
    if hits == 1 {
        // A new window: sweep a few ended ones, so the table holds about the live
        // windows only. Rows another sweep holds are skipped, not waited for.
        sqlx::query(
            "delete from throttles where key in (select key from throttles \
             where window_ends_at <= $1 limit $2 for update skip locked)",
        )
        .bind(now)
        .bind(THROTTLE_SWEEP)
        .execute(pool)
        .await
        .map_err(store_error)?;
    }
    Ok(ThrottleCount {
        hits: u32::try_from(hits).map_err(|_| corrupt("throttle hits"))?,
        window_ends_at,
    })
}

/// [`Store::throttle_peek`](domain::ports::Store::throttle_peek): one read.
pub(crate) async fn throttle_peek(
    pool: &sqlx::PgPool,
    key: &str,
    now: OffsetDateTime,
) -> Result<ThrottleCount, StoreError> {
    let row: Option<(i32, OffsetDateTime)> = sqlx::query_as(
        "select hits, window_ends_at from throttles where key = $1 and window_ends_at > $2",
    )
    .bind(key)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(store_error)?;
    Ok(match row {
        Some((hits, window_ends_at)) => ThrottleCount {
            hits: u32::try_from(hits).map_err(|_| corrupt("throttle hits"))?,
            window_ends_at,
        },
        None => ThrottleCount {
            hits: 0,
            window_ends_at: now,
        },
    })
}

impl PgTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> Self {
        Self {
            tx,
            heads: std::collections::HashMap::new(),
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("unreadable {what} in the database"))
}

fn tenant_id(text: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(text).map_err(|_| corrupt("tenant id"))
}

fn scopes(names: &[String]) -> Result<BTreeSet<ScopeName>, StoreError> {
    names
        .iter()
        .map(|name| ScopeName::parse(name).map_err(|_| corrupt("scope name")))
        .collect()
}

fn roles(names: &[String]) -> Result<BTreeSet<RoleName>, StoreError> {
    names
        .iter()
        .map(|name| RoleName::parse(name).map_err(|_| corrupt("role name")))
        .collect()
}

fn platform_roles(names: &[String]) -> Result<BTreeSet<PlatformRole>, StoreError> {
    names
        .iter()
        .map(|name| PlatformRole::parse(name).ok_or_else(|| corrupt("platform role")))
        .collect()
}

fn platform_role_names(roles: &BTreeSet<PlatformRole>) -> Vec<&'static str> {
    roles.iter().map(PlatformRole::as_str).collect()
}

fn account_state(text: &str) -> Result<AccountState, StoreError> {
    AccountState::parse(text).ok_or_else(|| corrupt("account state"))
}

fn profile_values(
    rows: Vec<(String, serde_json::Value)>,
) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
    rows.into_iter()
        .map(|(key, value)| {
            Ok((
                ProfileKey::parse(&key).map_err(|_| corrupt("profile key"))?,
                ProfileValue::parse(&value).map_err(|_| corrupt("profile value"))?,
            ))
        })
        .collect()
}

fn partition_name(partition: &Partition) -> &str {
    partition.name()
}

fn partition_of(tenant: Option<String>) -> Result<Partition, StoreError> {
    match tenant {
        Some(tenant) => Ok(Partition::Tenant(tenant_id(&tenant)?)),
        None => Ok(Partition::Platform),
    }
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    tenant_id: String,
    display_name: String,
    state: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TenantRow {
    fn into_tenant(self) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            id: tenant_id(&self.tenant_id)?,
            display_name: DisplayName::parse(&self.display_name)
                .map_err(|_| corrupt("display name"))?,
            state: TenantState::parse(&self.state).ok_or_else(|| corrupt("tenant state"))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const TENANT_COLUMNS: &str = "tenant_id, display_name, state, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct MemberRow {
    tenant_id: String,
    user_id: Uuid,
    email: String,
    state: String,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    roles: Vec<String>,
}

impl MemberRow {
    fn into_member(self) -> Result<Member, StoreError> {
        Ok(Member {
            tenant: tenant_id(&self.tenant_id)?,
            user_id: UserId::from_generated(self.user_id),
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            roles: roles(&self.roles)?,
            state: account_state(&self.state)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: u64::try_from(self.version).map_err(|_| corrupt("version"))?,
        })
    }
}

const MEMBER_SELECT: &str = "select a.tenant_id, a.user_id, u.email, a.state, a.version, \
     a.created_at, a.updated_at, \
     array(select m.role from memberships m \
           where m.tenant_id = a.tenant_id and m.user_id = a.user_id \
           order by m.role collate \"C\") as roles \
     from accounts a join users u on u.user_id = a.user_id";

#[derive(sqlx::FromRow)]
struct UserRow {
    user_id: Uuid,
    email: String,
    state: String,
    platform_roles: Vec<String>,
    has_totp: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl UserRow {
    fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: UserId::from_generated(self.user_id),
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            state: UserState::parse(&self.state).ok_or_else(|| corrupt("user state"))?,
            platform_roles: platform_roles(&self.platform_roles)?,
            has_totp: self.has_totp,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const USER_COLUMNS: &str =
    "user_id, email, state, platform_roles, has_totp, created_at, updated_at";

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
    key_id: Uuid,
    name: String,
    scopes: Vec<String>,
    created_by: Option<Uuid>,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl KeyRow {
    fn into_key(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: KeyId::from_generated(self.key_id),
            tenant: tenant_id(&self.tenant_id)?,
            name: DisplayName::parse(&self.name).map_err(|_| corrupt("key name"))?,
            scopes: scopes(&self.scopes)?,
            created_by: self.created_by.map(UserId::from_generated),
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

const KEY_COLUMNS: &str = "tenant_id, key_id, name, scopes, created_by, created_at, revoked_at";

#[derive(sqlx::FromRow)]
struct SessionRow {
    token_hash: String,
    user_id: Uuid,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    aal2_until: Option<OffsetDateTime>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Self {
            token_hash: row.token_hash,
            user_id: UserId::from_generated(row.user_id),
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_seen_at: row.last_seen_at,
            aal2_until: row.aal2_until,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    partition: String,
    seq: i64,
    tenant_id: Option<String>,
    audit_id: Uuid,
    at: OffsetDateTime,
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
            id: AuditId::from_generated(self.audit_id),
            seq: u64::try_from(self.seq).map_err(|_| corrupt("audit seq"))?,
            partition,
            at: self.at,
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

/// Crate-visible so the relay decodes outbox rows exactly as the feed does.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    position: i64,
    tenant_id: Option<String>,
    event_id: Uuid,
    event_type: String,
    subject: String,
    time: OffsetDateTime,
    data: serde_json::Value,
}

impl EventRow {
    pub(crate) fn into_event(self) -> Result<Event, StoreError> {
        Ok(Event {
            id: EventId::from_generated(self.event_id),
            partition: partition_of(self.tenant_id)?,
            position: u64::try_from(self.position).map_err(|_| corrupt("event position"))?,
            time: self.time,
            event_type: self.event_type,
            subject: self.subject,
            data: self.data,
        })
    }
}

/// The facts of one decision, as a row of the `authz_facts_rows` SQL function (the one
/// definition of what a decision reads, shared with `authorize_snapshot`).
#[derive(sqlx::FromRow)]
pub(crate) struct FactsRow {
    tenant_state: Option<String>,
    user_state: Option<String>,
    user_platform_roles: Option<Vec<String>>,
    key_tenant: Option<String>,
    key_scopes: Option<Vec<String>>,
    key_revoked: Option<bool>,
    account_state: Option<String>,
    account_roles: Vec<String>,
    /// The tenant's roles bound to the scope.
    scope_roles: Vec<String>,
    scope_name: Option<String>,
    scope_description: Option<String>,
    scope_platform_only: Option<bool>,
    scope_min_assurance: Option<String>,
    scope_enabled: bool,
    target_platform_roles: Option<Vec<String>>,
    target_account_state: Option<String>,
}

const FACTS_QUERY: &str = "select * from authz_facts_rows($1, array[$2]::uuid[], \
    array[$3]::uuid[], array[$4]::text[], array[$5]::uuid[])";

impl FactsRow {
    /// The domain's facts about `subject` (and `target`, when one is named).
    pub(crate) fn into_facts(
        self,
        subject: &SubjectRef,
        target: Option<UserId>,
    ) -> Result<AuthzFacts, StoreError> {
        let row = self;
        let subject = match subject {
            SubjectRef::User(user_id) => match (row.user_state, row.user_platform_roles) {
                (Some(state), Some(roles)) => Some(SubjectFacts::User {
                    user_id: *user_id,
                    state: UserState::parse(&state).ok_or_else(|| corrupt("user state"))?,
                    platform_roles: platform_roles(&roles)?,
                }),
                _ => None,
            },
            SubjectRef::ApiKey(key_id) => match (row.key_tenant, row.key_scopes, row.key_revoked) {
                (Some(tenant), Some(key_scopes), Some(false)) => Some(SubjectFacts::ApiKey {
                    key_id: *key_id,
                    tenant: tenant_id(&tenant)?,
                    scopes: scopes(&key_scopes)?,
                }),
                _ => None,
            },
        };
        let account_roles = roles(&row.account_roles)?;
        let bound_roles = roles(&row.scope_roles)?
            .intersection(&account_roles)
            .cloned()
            .collect();
        let account = match row.account_state {
            Some(state) => Some(AccountFacts {
                state: account_state(&state)?,
                roles: account_roles,
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
        let target = match (target, row.target_platform_roles) {
            (Some(user_id), Some(roles)) => Some(TargetFacts {
                user_id,
                account_state: row
                    .target_account_state
                    .as_deref()
                    .map(account_state)
                    .transpose()?,
                platform_roles: platform_roles(&roles)?,
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
            bound_roles,
            target,
        })
    }
}

impl PgTx {
    /// Locks a partition's head row (creating it at first use) until commit, and reads it
    /// once; later calls in the transaction use what it holds.
    async fn lock_head(&mut self, partition: &Partition) -> Result<Head, StoreError> {
        if let Some(head) = self.heads.get(partition_name(partition)) {
            return Ok(head.clone());
        }
        let head: Head = sqlx::query_as(
            "insert into partition_heads (partition) values ($1) \
             on conflict (partition) do update set partition = excluded.partition \
             returning audit_seq, audit_hash, event_position",
        )
        .bind(partition_name(partition))
        .fetch_one(&mut *self.tx)
        .await
        .map_err(store_error)?;
        self.heads
            .insert(partition_name(partition).to_owned(), head.clone());
        Ok(head)
    }

    async fn values(
        &mut self,
        sql: &str,
        first: &str,
        second: Option<Uuid>,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        let query = sqlx::query_as::<_, (String, serde_json::Value)>(sql).bind(first);
        let query = match second {
            Some(second) => query.bind(second),
            None => query,
        };
        let rows = query.fetch_all(&mut *self.tx).await.map_err(store_error)?;
        profile_values(rows)
    }

    async fn execute(
        &mut self,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<u64, StoreError> {
        query
            .execute(&mut *self.tx)
            .await
            .map(|done| done.rows_affected())
            .map_err(store_error)
    }
}

#[async_trait]
impl StoreTx for PgTx {
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        self.lock_head(partition).await.map(|_| ())
    }

    async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError> {
        let (user, key) = match &query.subject {
            SubjectRef::User(user) => (Some(*user.as_uuid()), None),
            SubjectRef::ApiKey(key) => (None, Some(*key.as_uuid())),
        };
        let row: FactsRow = sqlx::query_as(FACTS_QUERY)
            .bind(query.tenant.as_ref().map(TenantId::as_str))
            .bind(user)
            .bind(key)
            .bind(query.scope.as_str())
            .bind(query.target.map(|target| *target.as_uuid()))
            .fetch_one(&mut *self.tx)
            .await
            .map_err(store_error)?;
        row.into_facts(&query.subject, query.target)
    }

    async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = sqlx::query_as(&format!(
            "select {TENANT_COLUMNS} from tenants where tenant_id = $1"
        ))
        .bind(tenant.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        row.map(TenantRow::into_tenant).transpose()
    }

    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into tenants (tenant_id, display_name, state, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(tenant.id.as_str())
            .bind(tenant.display_name.as_str())
            .bind(tenant.state.as_str())
            .bind(tenant.created_at)
            .bind(tenant.updated_at),
        )
        .await
        .map(|_| ())
    }

    async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        let updated = self
            .execute(
                sqlx::query(
                    "update tenants set display_name = $2, state = $3, updated_at = $4 \
                     where tenant_id = $1",
                )
                .bind(tenant.id.as_str())
                .bind(tenant.display_name.as_str())
                .bind(tenant.state.as_str())
                .bind(tenant.updated_at),
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
        limit: usize,
    ) -> Result<Vec<Tenant>, StoreError> {
        let rows: Vec<TenantRow> = sqlx::query_as(&format!(
            "select {TENANT_COLUMNS} from tenants \
             where $1::text is null or tenant_id > $1 collate \"C\" \
             order by tenant_id collate \"C\" limit $2"
        ))
        .bind(after.as_ref().map(TenantId::as_str))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(TenantRow::into_tenant).collect()
    }

    async fn enabled_scopes(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, StoreError> {
        let names: Vec<String> =
            sqlx::query_scalar("select scope from tenant_scopes where tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_all(&mut *self.tx)
                .await
                .map_err(store_error)?;
        scopes(&names)
    }

    async fn set_enabled_scopes(
        &mut self,
        tenant: &TenantId,
        scope_names: &BTreeSet<ScopeName>,
    ) -> Result<(), StoreError> {
        let names: Vec<&str> = scope_names.iter().map(ScopeName::as_str).collect();
        self.execute(
            sqlx::query("delete from tenant_scopes where tenant_id = $1").bind(tenant.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into tenant_scopes (tenant_id, scope) select $1, unnest($2::text[])",
            )
            .bind(tenant.as_str())
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError> {
        let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
            "select b.role, array(select s.scope from role_binding_scopes s \
                                  where s.tenant_id = b.tenant_id and s.role = b.role) \
             from role_bindings b where b.tenant_id = $1 order by b.role collate \"C\"",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *self.tx)
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
        let names: Vec<&str> = binding.scopes.iter().map(ScopeName::as_str).collect();
        self.execute(
            sqlx::query(
                "insert into role_bindings (tenant_id, role) values ($1, $2) \
                 on conflict (tenant_id, role) do nothing",
            )
            .bind(tenant.as_str())
            .bind(binding.role.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query("delete from role_binding_scopes where tenant_id = $1 and role = $2")
                .bind(tenant.as_str())
                .bind(binding.role.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into role_binding_scopes (tenant_id, role, scope) \
                 select $1, $2, unnest($3::text[])",
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
        self.execute(
            sqlx::query("delete from role_bindings where tenant_id = $1 and role = $2")
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
        let row: Option<MemberRow> = sqlx::query_as(&format!(
            "{MEMBER_SELECT} where a.tenant_id = $1 and a.user_id = $2"
        ))
        .bind(tenant.as_str())
        .bind(user.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        row.map(MemberRow::into_member).transpose()
    }

    async fn list_members(
        &mut self,
        tenant: &TenantId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let rows: Vec<MemberRow> = sqlx::query_as(&format!(
            "{MEMBER_SELECT} where a.tenant_id = $1 and ($2::uuid is null or a.user_id > $2) \
             order by a.user_id limit $3"
        ))
        .bind(tenant.as_str())
        .bind(after.map(|user| *user.as_uuid()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(MemberRow::into_member).collect()
    }

    async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError> {
        let names: Vec<&str> = member.roles.iter().map(RoleName::as_str).collect();
        self.execute(
            sqlx::query(
                "with account as ( \
                     insert into accounts (tenant_id, user_id, state, version, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6)) \
                 insert into memberships (tenant_id, user_id, role) \
                 select $1, $2, unnest($7::text[])",
            )
            .bind(member.tenant.as_str())
            .bind(member.user_id.as_uuid())
            .bind(member.state.as_str())
            .bind(i64::try_from(member.version).unwrap_or(i64::MAX))
            .bind(member.created_at)
            .bind(member.updated_at)
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn update_member(&mut self, member: &Member) -> Result<(), StoreError> {
        let updated = self
            .execute(
                sqlx::query(
                    "update accounts set state = $3, version = $4, updated_at = $5 \
                     where tenant_id = $1 and user_id = $2",
                )
                .bind(member.tenant.as_str())
                .bind(member.user_id.as_uuid())
                .bind(member.state.as_str())
                .bind(i64::try_from(member.version).unwrap_or(i64::MAX))
                .bind(member.updated_at),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::Missing("member"));
        }
        let names: Vec<&str> = member.roles.iter().map(RoleName::as_str).collect();
        self.execute(
            sqlx::query("delete from memberships where tenant_id = $1 and user_id = $2")
                .bind(member.tenant.as_str())
                .bind(member.user_id.as_uuid()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into memberships (tenant_id, user_id, role) \
                 select $1, $2, unnest($3::text[])",
            )
            .bind(member.tenant.as_str())
            .bind(member.user_id.as_uuid())
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn delete_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        let deleted = self
            .execute(
                sqlx::query("delete from accounts where tenant_id = $1 and user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_uuid()),
            )
            .await?;
        if deleted == 0 {
            return Err(StoreError::Missing("member"));
        }
        Ok(())
    }

    async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "select count(*) from accounts a where a.tenant_id = $1 and a.state = 'active' \
             and exists (select 1 from memberships m where m.tenant_id = a.tenant_id \
                         and m.user_id = a.user_id and m.role = 'tenant_admin')",
        )
        .bind(tenant.as_str())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(store_error)?;
        u64::try_from(count).map_err(|_| corrupt("count"))
    }

    async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError> {
        let rows: Vec<MemberRow> = sqlx::query_as(&format!(
            "{MEMBER_SELECT} where a.user_id = $1 order by a.tenant_id collate \"C\""
        ))
        .bind(user.as_uuid())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(MemberRow::into_member).collect()
    }

    async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "select {USER_COLUMNS} from users where user_id = $1"
        ))
        .bind(user.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        row.map(UserRow::into_user).transpose()
    }

    async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "select {USER_COLUMNS} from users where lower(email) = lower($1)"
        ))
        .bind(email.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        row.map(UserRow::into_user).transpose()
    }

    async fn insert_user(
        &mut self,
        user: &User,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into users (user_id, email, state, platform_roles, has_totp, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(user.id.as_uuid())
            .bind(user.email.as_str())
            .bind(user.state.as_str())
            .bind(platform_role_names(&user.platform_roles))
            .bind(user.has_totp)
            .bind(user.created_at)
            .bind(user.updated_at),
        )
        .await?;
        self.set_credentials(&user.id, credentials).await
    }

    async fn update_user(&mut self, user: &User) -> Result<(), StoreError> {
        let updated = self
            .execute(
                sqlx::query(
                    "update users set email = $2, state = $3, platform_roles = $4, has_totp = $5, \
                     updated_at = $6 where user_id = $1",
                )
                .bind(user.id.as_uuid())
                .bind(user.email.as_str())
                .bind(user.state.as_str())
                .bind(platform_role_names(&user.platform_roles))
                .bind(user.has_totp)
                .bind(user.updated_at),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::Missing("user"));
        }
        Ok(())
    }

    async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError> {
        let row: Option<(Option<String>, Option<String>, bool, Option<i64>)> = sqlx::query_as(
            "select password_hash, totp_secret, totp_confirmed, totp_last_step \
             from user_credentials where user_id = $1",
        )
        .bind(user.as_uuid())
        .fetch_optional(&mut *self.tx)
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
        let totp = credentials.totp.as_ref();
        self.execute(
            sqlx::query(
                "insert into user_credentials (user_id, password_hash, totp_secret, totp_confirmed, totp_last_step) \
                 values ($1, $2, $3, $4, $5) \
                 on conflict (user_id) do update set password_hash = excluded.password_hash, \
                 totp_secret = excluded.totp_secret, totp_confirmed = excluded.totp_confirmed, \
                 totp_last_step = excluded.totp_last_step",
            )
            .bind(user.as_uuid())
            .bind(credentials.password_hash.as_deref())
            .bind(totp.map(|totp| totp.secret.as_str()))
            .bind(totp.is_some_and(|totp| totp.confirmed))
            .bind(totp.and_then(|totp| totp.last_used_step).and_then(|step| i64::try_from(step).ok())),
        )
        .await
        .map(|_| ())
    }

    async fn count_platform_roots(&mut self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "select count(*) from users where 'platform_root' = any(platform_roles)",
        )
        .fetch_one(&mut *self.tx)
        .await
        .map_err(store_error)?;
        u64::try_from(count).map_err(|_| corrupt("count"))
    }

    async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "select count(*) from users \
             where 'platform_root' = any(platform_roles) and state = 'active'",
        )
        .fetch_one(&mut *self.tx)
        .await
        .map_err(store_error)?;
        u64::try_from(count).map_err(|_| corrupt("count"))
    }

    async fn list_catalog(&mut self) -> Result<Vec<CatalogScope>, StoreError> {
        let rows: Vec<ScopeRow> = sqlx::query_as(
            "select name, description, platform_only, min_assurance from catalog_scopes \
             order by name collate \"C\"",
        )
        .fetch_all(&mut *self.tx)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(ScopeRow::into_scope).collect()
    }

    async fn get_catalog_scope(
        &mut self,
        name: &ScopeName,
    ) -> Result<Option<CatalogScope>, StoreError> {
        let row: Option<ScopeRow> = sqlx::query_as(
            "select name, description, platform_only, min_assurance from catalog_scopes where name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        row.map(ScopeRow::into_scope).transpose()
    }

    async fn insert_catalog_scope(&mut self, scope: &CatalogScope) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into catalog_scopes (name, description, platform_only, min_assurance) \
                 values ($1, $2, $3, $4)",
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
        let rows: Vec<SchemaRow> = sqlx::query_as(
            "select key, value_type, user_editable, tenant_overridable from profile_schema \
             order by key collate \"C\"",
        )
        .fetch_all(&mut *self.tx)
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
                 values ($1, $2, $3, $4) on conflict (key) do update set \
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
        self.values(
            "select key, value from member_profile_values where tenant_id = $1 and user_id = $2",
            tenant.as_str(),
            Some(*user.as_uuid()),
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
        self.execute(
            sqlx::query(
                "insert into member_profile_values (tenant_id, user_id, key, value) \
                 values ($1, $2, $3, $4) on conflict (tenant_id, user_id, key) \
                 do update set value = excluded.value",
            )
            .bind(tenant.as_str())
            .bind(user.as_uuid())
            .bind(key.as_str())
            .bind(value.as_json()),
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
        self.execute(
            sqlx::query(
                "delete from member_profile_values where tenant_id = $1 and user_id = $2 and key = $3",
            )
            .bind(tenant.as_str())
            .bind(user.as_uuid())
            .bind(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn tenant_defaults(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.values(
            "select key, value from tenant_profile_defaults where tenant_id = $1",
            tenant.as_str(),
            None,
        )
        .await
    }

    async fn put_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into tenant_profile_defaults (tenant_id, key, value) values ($1, $2, $3) \
                 on conflict (tenant_id, key) do update set value = excluded.value",
            )
            .bind(tenant.as_str())
            .bind(key.as_str())
            .bind(value.as_json()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.execute(
            sqlx::query("delete from tenant_profile_defaults where tenant_id = $1 and key = $2")
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
        let rows: Vec<(String, serde_json::Value)> =
            sqlx::query_as("select key, value from platform_profile_values where user_id = $1")
                .bind(user.as_uuid())
                .fetch_all(&mut *self.tx)
                .await
                .map_err(store_error)?;
        profile_values(rows)
    }

    async fn put_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into platform_profile_values (user_id, key, value) values ($1, $2, $3) \
                 on conflict (user_id, key) do update set value = excluded.value",
            )
            .bind(user.as_uuid())
            .bind(key.as_str())
            .bind(value.as_json()),
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
            sqlx::query("delete from platform_profile_values where user_id = $1 and key = $2")
                .bind(user.as_uuid())
                .bind(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError> {
        let names: Vec<&str> = key.scopes.iter().map(ScopeName::as_str).collect();
        self.execute(
            sqlx::query(
                "insert into api_keys (tenant_id, key_id, name, scopes, secret_hash, created_by, created_at, revoked_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(key.tenant.as_str())
            .bind(key.id.as_uuid())
            .bind(key.name.as_str())
            .bind(&names)
            .bind(secret_hash)
            .bind(key.created_by.map(|user| *user.as_uuid()))
            .bind(key.created_at)
            .bind(key.revoked_at),
        )
        .await
        .map(|_| ())
    }

    async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let rows: Vec<KeyRow> = sqlx::query_as(&format!(
            "select {KEY_COLUMNS} from api_keys where tenant_id = $1 order by key_id"
        ))
        .bind(tenant.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    async fn get_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "select {KEY_COLUMNS} from api_keys where tenant_id = $1 and key_id = $2"
        ))
        .bind(tenant.as_str())
        .bind(key.as_uuid())
        .fetch_optional(&mut *self.tx)
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
        let updated = self
            .execute(
                sqlx::query(
                    "update api_keys set revoked_at = $3 where tenant_id = $1 and key_id = $2",
                )
                .bind(tenant.as_str())
                .bind(key.as_uuid())
                .bind(at),
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
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "select {KEY_COLUMNS} from api_keys where secret_hash = $1"
        ))
        .bind(secret_hash)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        row.map(KeyRow::into_key).transpose()
    }

    async fn insert_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into sessions (token_hash, user_id, created_at, expires_at, last_seen_at, aal2_until) \
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&session.token_hash)
            .bind(session.user_id.as_uuid())
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.last_seen_at)
            .bind(session.aal2_until),
        )
        .await
        .map(|_| ())
    }

    async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(
            "select token_hash, user_id, created_at, expires_at, last_seen_at, aal2_until \
             from sessions where token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(row.map(Session::from))
    }

    async fn update_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "update sessions set expires_at = $2, last_seen_at = $3, aal2_until = $4 \
                 where token_hash = $1",
            )
            .bind(&session.token_hash)
            .bind(session.expires_at)
            .bind(session.last_seen_at)
            .bind(session.aal2_until),
        )
        .await
        .map(|_| ())
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        self.execute(sqlx::query("delete from sessions where token_hash = $1").bind(token_hash))
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
                "delete from sessions where user_id = $1 \
                 and ($2::text is null or token_hash <> $2)",
            )
            .bind(user.as_uuid())
            .bind(keep),
        )
        .await
    }

    async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into invitations (token_hash, user_id, expires_at, used_at) \
                 values ($1, $2, $3, $4)",
            )
            .bind(&invitation.token_hash)
            .bind(invitation.user_id.as_uuid())
            .bind(invitation.expires_at)
            .bind(invitation.used_at),
        )
        .await
        .map(|_| ())
    }

    async fn find_invitation(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        let row: Option<(String, Uuid, OffsetDateTime, Option<OffsetDateTime>)> = sqlx::query_as(
            "select token_hash, user_id, expires_at, used_at from invitations where token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(
            row.map(|(token_hash, user_id, expires_at, used_at)| Invitation {
                token_hash,
                user_id: UserId::from_generated(user_id),
                expires_at,
                used_at,
            }),
        )
    }

    /// One conditional update: under read committed, a concurrent update of the row
    /// makes this one wait for it and re-check its `where` on the row's newest version,
    /// so only one transaction can set `used_at`.
    async fn consume_invitation(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError> {
        let row: Option<(String, Uuid, OffsetDateTime, Option<OffsetDateTime>)> = sqlx::query_as(
            "update invitations set used_at = $2 \
             where token_hash = $1 and used_at is null and expires_at > $2 \
             returning token_hash, user_id, expires_at, used_at",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(
            row.map(|(token_hash, user_id, expires_at, used_at)| Invitation {
                token_hash,
                user_id: UserId::from_generated(user_id),
                expires_at,
                used_at,
            }),
        )
    }

    /// A conditional update, as for invitations: the step is burned by whichever
    /// transaction updates the row first; the others re-check and find it used.
    async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let step = i64::try_from(step).map_err(|_| corrupt("totp step"))?;
        self.execute(
            sqlx::query(
                "update user_credentials set totp_last_step = $2 \
                 where user_id = $1 and totp_secret is not null \
                 and (totp_last_step is null or totp_last_step < $2)",
            )
            .bind(user.as_uuid())
            .bind(step),
        )
        .await
        .map(|updated| updated == 1)
    }

    async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError> {
        let mut head = self.lock_head(&draft.partition).await?;
        let seq = u64::try_from(head.audit_seq).map_err(|_| corrupt("audit seq"))? + 1;
        let record = AuditRecord::seal(draft, seq, &head.audit_hash);
        sqlx::query(
            "with head as (update partition_heads set audit_seq = $2, audit_hash = $15 \
                           where partition = $1) \
             insert into audit_records (partition, seq, tenant_id, audit_id, at, actor_type, \
                 actor_id, action, target_type, target_id, outcome, reason, request_id, \
                 prev_hash, hash) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(record.partition.name())
        .bind(i64::try_from(record.seq).unwrap_or(i64::MAX))
        .bind(record.tenant().map(TenantId::as_str))
        .bind(record.id.as_uuid())
        .bind(record.at)
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
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        head.audit_seq += 1;
        head.audit_hash.clone_from(&record.hash);
        self.heads.insert(record.partition.name().to_owned(), head);
        Ok(record)
    }

    async fn list_audit(
        &mut self,
        partition: &Partition,
        filter: &AuditFilter,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "select partition, seq, tenant_id, audit_id, at, actor_type, actor_id, action, \
                    target_type, target_id, outcome, reason, request_id, prev_hash, hash \
             from audit_records where partition = $1 and seq > $2 \
               and ($3::text is null or actor_id = $3) \
               and ($4::text is null or action = $4) \
               and ($5::text is null or outcome = $5) \
               and ($6::timestamptz is null or at >= $6) \
               and ($7::timestamptz is null or at < $7) \
             order by seq limit $8",
        )
        .bind(partition.name())
        .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
        .bind(filter.actor_id.as_deref())
        .bind(filter.action.as_deref())
        .bind(filter.outcome.map(|outcome| outcome.as_str()))
        .bind(filter.from)
        .bind(filter.until)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(AuditRow::into_record).collect()
    }

    /// No `RETURNING` on the event row: a tenant transaction may append to the platform
    /// feed but not read it back (row-level security).
    async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError> {
        let mut head = self.lock_head(&draft.partition).await?;
        let position = head.event_position + 1;
        sqlx::query(
            "with head as (update partition_heads set event_position = $2 where partition = $1) \
             insert into outbox_events (partition, position, tenant_id, event_id, event_type, \
                 subject, time, data) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(draft.partition.name())
        .bind(position)
        .bind(draft.partition.tenant().map(TenantId::as_str))
        .bind(draft.id.as_uuid())
        .bind(draft.event_type)
        .bind(&draft.subject)
        .bind(domain::audit::truncate_to_micros(draft.time))
        .bind(&draft.data)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        head.event_position = position;
        self.heads.insert(draft.partition.name().to_owned(), head);
        Ok(Event::place(
            draft,
            u64::try_from(position).map_err(|_| corrupt("event position"))?,
        ))
    }

    async fn list_events(
        &mut self,
        partition: &Partition,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "select position, tenant_id, event_id, event_type, subject, time, data \
             from outbox_events where partition = $1 and position > $2 \
             order by position limit $3",
        )
        .bind(partition.name())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    /// Served by the partial index `outbox_events_unpublished`; row-level security
    /// would hide another tenant's rows anyway, the partition filter says which feed.
    async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError> {
        let (waiting, oldest): (i64, Option<OffsetDateTime>) = sqlx::query_as(
            "select count(*), min(time) from outbox_events \
             where partition = $1 and published_at is null",
        )
        .bind(tenant.as_str())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(OutboxBacklog {
            waiting: u64::try_from(waiting).map_err(|_| corrupt("count"))?,
            oldest,
        })
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(store_error)
    }
}
