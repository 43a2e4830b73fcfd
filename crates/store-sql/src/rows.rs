//! The row shapes both SQL stores read, with driver-neutral field types, and their
//! validated conversion into domain values.
//!
//! Each shape names its columns once ([`Shape::read`]); the SQL of each store selects
//! columns of those names (PostgreSQL from arrays, SQLite from child tables through
//! `json_group_array`). [`Shape::into_value`] refuses anything the domain's parsers
//! refuse, as `corrupt`.

use std::collections::{BTreeMap, BTreeSet};

use domain::audit::{Actor, ActorType, AuditRecord, Outcome, Partition};
use domain::event::Event;
use domain::ids::{
    Assurance, AuditId, DisplayName, Email, EventId, KeyId, ProfileKey, ProfileType, ProfileValue,
    RoleName, ScopeName, SessionId, TenantId, UserId,
};
use domain::model::{
    AccountState, ApiKey, CatalogScope, Credentials, Invitation, Member, PlatformRole, RoleBinding,
    SchemaEntry, Session, SessionDetails, Tenant, TenantState, TotpEnrolment, User, UserState,
};
use domain::ports::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{corrupt, from_sql_int, Columns};

/// A row shape: how it reads its columns, and the domain value it stands for.
pub trait Shape: Sized {
    /// The domain value.
    type Value;

    /// Reads the shape's columns from a fetched row.
    ///
    /// # Errors
    /// `Unavailable` when a column is missing or of another type.
    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError>;

    /// The domain value, validated.
    ///
    /// # Errors
    /// `Unavailable` (corrupt) for a value the domain refuses.
    fn into_value(self) -> Result<Self::Value, StoreError>;

    /// [`Shape::read`], then [`Shape::into_value`].
    ///
    /// # Errors
    /// As there.
    fn decode<C: Columns + ?Sized>(row: &C) -> Result<Self::Value, StoreError> {
        Self::read(row)?.into_value()
    }
}

pub fn tenant_id(text: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(text).map_err(|_| corrupt("tenant id"))
}

pub fn tenant_state(text: &str) -> Result<TenantState, StoreError> {
    TenantState::parse(text).ok_or_else(|| corrupt("tenant state"))
}

pub fn user_state(text: &str) -> Result<UserState, StoreError> {
    UserState::parse(text).ok_or_else(|| corrupt("user state"))
}

pub fn account_state(text: &str) -> Result<AccountState, StoreError> {
    AccountState::parse(text).ok_or_else(|| corrupt("account state"))
}

pub fn scopes(names: &[String]) -> Result<BTreeSet<ScopeName>, StoreError> {
    names
        .iter()
        .map(|name| ScopeName::parse(name).map_err(|_| corrupt("scope name")))
        .collect()
}

pub fn roles(names: &[String]) -> Result<BTreeSet<RoleName>, StoreError> {
    names
        .iter()
        .map(|name| RoleName::parse(name).map_err(|_| corrupt("role name")))
        .collect()
}

pub fn platform_roles(names: &[String]) -> Result<BTreeSet<PlatformRole>, StoreError> {
    names
        .iter()
        .map(|name| PlatformRole::parse(name).ok_or_else(|| corrupt("platform role")))
        .collect()
}

/// The partition a row of `tenant_id` (`NULL` for the platform) belongs to.
pub fn partition_of(tenant: Option<String>) -> Result<Partition, StoreError> {
    match tenant {
        Some(tenant) => Ok(Partition::Tenant(tenant_id(&tenant)?)),
        None => Ok(Partition::Platform),
    }
}

/// `tenants`.
#[derive(Debug)]
pub struct TenantRow {
    pub tenant_id: String,
    pub display_name: String,
    pub state: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The columns of [`TenantRow`], as both schemas name them.
pub const TENANT_COLUMNS: &str = "tenant_id, display_name, state, created_at, updated_at";

impl Shape for TenantRow {
    type Value = Tenant;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: row.text("tenant_id")?,
            display_name: row.text("display_name")?,
            state: row.text("state")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }

    fn into_value(self) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            id: tenant_id(&self.tenant_id)?,
            display_name: DisplayName::parse(&self.display_name)
                .map_err(|_| corrupt("display name"))?,
            state: tenant_state(&self.state)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A tenant account with its user's email and its roles.
#[derive(Debug)]
pub struct MemberRow {
    pub tenant_id: String,
    pub user_id: Uuid,
    pub email: String,
    pub state: String,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub roles: Vec<String>,
}

impl Shape for MemberRow {
    type Value = Member;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: row.text("tenant_id")?,
            user_id: row.uuid("user_id")?,
            email: row.text("email")?,
            state: row.text("state")?,
            version: row.int("version")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
            roles: row.names("roles")?,
        })
    }

    fn into_value(self) -> Result<Member, StoreError> {
        Ok(Member {
            tenant: tenant_id(&self.tenant_id)?,
            user_id: UserId::from_generated(self.user_id),
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            roles: roles(&self.roles)?,
            state: account_state(&self.state)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: from_sql_int(self.version, "version")?,
        })
    }
}

/// `users`, with the user's platform roles.
#[derive(Debug)]
pub struct UserRow {
    pub user_id: Uuid,
    pub email: String,
    pub state: String,
    pub platform_roles: Vec<String>,
    pub has_totp: bool,
    pub email_verified: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Shape for UserRow {
    type Value = User;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            user_id: row.uuid("user_id")?,
            email: row.text("email")?,
            state: row.text("state")?,
            platform_roles: row.names("platform_roles")?,
            has_totp: row.flag("has_totp")?,
            email_verified: row.flag("email_verified")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }

    fn into_value(self) -> Result<User, StoreError> {
        Ok(User {
            id: UserId::from_generated(self.user_id),
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            state: user_state(&self.state)?,
            platform_roles: platform_roles(&self.platform_roles)?,
            has_totp: self.has_totp,
            email_verified: self.email_verified,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A user and their password hash, as a login reads them.
#[derive(Debug)]
pub struct LoginRow {
    pub user: UserRow,
    pub password_hash: Option<String>,
}

impl Shape for LoginRow {
    type Value = domain::ports::LoginRecord;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            user: UserRow::read(row)?,
            password_hash: row.text_opt("password_hash")?,
        })
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        Ok(domain::ports::LoginRecord {
            user: self.user.into_value()?,
            password_hash: self.password_hash,
        })
    }
}

/// `user_credentials`.
#[derive(Debug)]
pub struct CredentialsRow {
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub totp_confirmed: bool,
    pub totp_last_step: Option<i64>,
}

/// The columns of [`CredentialsRow`].
pub const CREDENTIALS_COLUMNS: &str = "password_hash, totp_secret, totp_confirmed, totp_last_step";

impl Shape for CredentialsRow {
    type Value = Credentials;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            password_hash: row.text_opt("password_hash")?,
            totp_secret: row.text_opt("totp_secret")?,
            totp_confirmed: row.flag("totp_confirmed")?,
            totp_last_step: row.int_opt("totp_last_step")?,
        })
    }

    fn into_value(self) -> Result<Credentials, StoreError> {
        // A negative step reads as none, so the next code is accepted and records one.
        let last_used_step = self
            .totp_last_step
            .and_then(|step| u64::try_from(step).ok());
        Ok(Credentials {
            password_hash: self.password_hash,
            totp: self.totp_secret.map(|secret| TotpEnrolment {
                secret,
                confirmed: self.totp_confirmed,
                last_used_step,
            }),
        })
    }
}

/// The last used TOTP step of `credentials`, as the `totp_last_step` column holds it.
///
/// # Errors
/// `Unavailable` for a step past SQL's integers (no clock reaches one).
pub fn totp_last_step(credentials: &Credentials) -> Result<Option<i64>, StoreError> {
    credentials
        .totp
        .as_ref()
        .and_then(|totp| totp.last_used_step)
        .map(|step| crate::to_sql_int(step, "totp step"))
        .transpose()
}

/// `catalog_scopes`.
#[derive(Debug)]
pub struct ScopeRow {
    pub name: String,
    pub description: String,
    pub platform_only: bool,
    pub min_assurance: String,
}

/// The columns of [`ScopeRow`].
pub const SCOPE_COLUMNS: &str = "name, description, platform_only, min_assurance";

impl Shape for ScopeRow {
    type Value = CatalogScope;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            name: row.text("name")?,
            description: row.text("description")?,
            platform_only: row.flag("platform_only")?,
            min_assurance: row.text("min_assurance")?,
        })
    }

    fn into_value(self) -> Result<CatalogScope, StoreError> {
        Ok(CatalogScope {
            name: ScopeName::parse(&self.name).map_err(|_| corrupt("scope name"))?,
            description: self.description,
            platform_only: self.platform_only,
            min_assurance: Assurance::parse(&self.min_assurance)
                .map_err(|_| corrupt("assurance"))?,
        })
    }
}

/// `profile_schema`.
#[derive(Debug)]
pub struct SchemaRow {
    pub key: String,
    pub value_type: String,
    pub user_editable: bool,
    pub tenant_overridable: bool,
}

/// The columns of [`SchemaRow`].
pub const SCHEMA_COLUMNS: &str = "key, value_type, user_editable, tenant_overridable";

impl Shape for SchemaRow {
    type Value = SchemaEntry;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            key: row.text("key")?,
            value_type: row.text("value_type")?,
            user_editable: row.flag("user_editable")?,
            tenant_overridable: row.flag("tenant_overridable")?,
        })
    }

    fn into_value(self) -> Result<SchemaEntry, StoreError> {
        Ok(SchemaEntry {
            key: ProfileKey::parse(&self.key).map_err(|_| corrupt("profile key"))?,
            value_type: ProfileType::parse(&self.value_type)
                .map_err(|_| corrupt("profile type"))?,
            user_editable: self.user_editable,
            tenant_overridable: self.tenant_overridable,
        })
    }
}

/// A role binding with its scopes (`role`, `scopes`).
#[derive(Debug)]
pub struct BindingRow {
    pub role: String,
    pub scopes: Vec<String>,
}

impl Shape for BindingRow {
    type Value = RoleBinding;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            role: row.text("role")?,
            scopes: row.names("scopes")?,
        })
    }

    fn into_value(self) -> Result<RoleBinding, StoreError> {
        Ok(RoleBinding {
            role: RoleName::parse(&self.role).map_err(|_| corrupt("role name"))?,
            scopes: scopes(&self.scopes)?,
        })
    }
}

/// One profile value at any layer (`key`, `value`).
#[derive(Debug)]
pub struct ValueRow {
    pub key: String,
    pub value: serde_json::Value,
}

impl Shape for ValueRow {
    type Value = (ProfileKey, ProfileValue);

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            key: row.text("key")?,
            value: row.json("value")?,
        })
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        Ok((
            ProfileKey::parse(&self.key).map_err(|_| corrupt("profile key"))?,
            ProfileValue::parse(&self.value).map_err(|_| corrupt("profile value"))?,
        ))
    }
}

/// Profile values by key, from [`ValueRow`]s.
///
/// # Errors
/// As [`Shape::decode`].
pub fn profile_values<C: Columns>(
    rows: &[C],
) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
    rows.iter().map(ValueRow::decode).collect()
}

/// `api_keys`, with the key's scopes.
#[derive(Debug)]
pub struct KeyRow {
    pub tenant_id: String,
    pub key_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

impl Shape for KeyRow {
    type Value = ApiKey;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: row.text("tenant_id")?,
            key_id: row.uuid("key_id")?,
            name: row.text("name")?,
            scopes: row.names("scopes")?,
            created_by: row.uuid_opt("created_by")?,
            created_at: row.time("created_at")?,
            revoked_at: row.time_opt("revoked_at")?,
        })
    }

    fn into_value(self) -> Result<ApiKey, StoreError> {
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

/// `sessions`.
#[derive(Debug)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: Uuid,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub aal2_until: Option<OffsetDateTime>,
}

/// The columns of [`SessionRow`].
pub const SESSION_COLUMNS: &str =
    "token_hash, user_id, created_at, expires_at, last_seen_at, aal2_until";

impl Shape for SessionRow {
    type Value = Session;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            token_hash: row.text("token_hash")?,
            user_id: row.uuid("user_id")?,
            created_at: row.time("created_at")?,
            expires_at: row.time("expires_at")?,
            last_seen_at: row.time("last_seen_at")?,
            aal2_until: row.time_opt("aal2_until")?,
        })
    }

    fn into_value(self) -> Result<Session, StoreError> {
        Ok(Session {
            token_hash: self.token_hash,
            user_id: UserId::from_generated(self.user_id),
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_seen_at: self.last_seen_at,
            aal2_until: self.aal2_until,
        })
    }
}

/// `sessions` with their details (`session_id`, `client_address`, `user_agent`).
#[derive(Debug)]
pub struct SessionDetailsRow {
    session: SessionRow,
    session_id: Uuid,
    client_address: Option<String>,
    user_agent: Option<String>,
}

/// The columns of [`SessionDetailsRow`].
pub const SESSION_DETAILS_COLUMNS: &str = "token_hash, user_id, created_at, expires_at, \
     last_seen_at, aal2_until, session_id, client_address, user_agent";

impl Shape for SessionDetailsRow {
    type Value = (Session, SessionDetails);

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            session: SessionRow::read(row)?,
            session_id: row.uuid("session_id")?,
            client_address: row.text_opt("client_address")?,
            user_agent: row.text_opt("user_agent")?,
        })
    }

    fn into_value(self) -> Result<(Session, SessionDetails), StoreError> {
        Ok((
            self.session.into_value()?,
            SessionDetails {
                id: SessionId::from_generated(self.session_id),
                client_address: self.client_address,
                user_agent: self.user_agent,
            },
        ))
    }
}

/// `invitations`.
#[derive(Debug)]
pub struct InvitationRow {
    pub token_hash: String,
    pub user_id: Uuid,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// The columns of [`InvitationRow`].
pub const INVITATION_COLUMNS: &str = "token_hash, user_id, expires_at, used_at";

impl Shape for InvitationRow {
    type Value = Invitation;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            token_hash: row.text("token_hash")?,
            user_id: row.uuid("user_id")?,
            expires_at: row.time("expires_at")?,
            used_at: row.time_opt("used_at")?,
        })
    }

    fn into_value(self) -> Result<Invitation, StoreError> {
        Ok(Invitation {
            token_hash: self.token_hash,
            user_id: UserId::from_generated(self.user_id),
            expires_at: self.expires_at,
            used_at: self.used_at,
        })
    }
}

/// `audit_records`.
#[derive(Debug)]
pub struct AuditRow {
    pub partition: String,
    pub seq: i64,
    pub tenant_id: Option<String>,
    pub audit_id: Uuid,
    pub at: OffsetDateTime,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub outcome: String,
    pub reason: String,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The columns of [`AuditRow`], in the order the insert binds them.
pub const AUDIT_COLUMNS: &str = "partition, seq, tenant_id, audit_id, at, actor_type, actor_id, \
     action, target_type, target_id, outcome, reason, request_id, prev_hash, hash";

impl Shape for AuditRow {
    type Value = AuditRecord;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            partition: row.text("partition")?,
            seq: row.int("seq")?,
            tenant_id: row.text_opt("tenant_id")?,
            audit_id: row.uuid("audit_id")?,
            at: row.time("at")?,
            actor_type: row.text("actor_type")?,
            actor_id: row.text("actor_id")?,
            action: row.text("action")?,
            target_type: row.text("target_type")?,
            target_id: row.text("target_id")?,
            outcome: row.text("outcome")?,
            reason: row.text("reason")?,
            request_id: row.text("request_id")?,
            prev_hash: row.text("prev_hash")?,
            hash: row.text("hash")?,
        })
    }

    fn into_value(self) -> Result<AuditRecord, StoreError> {
        let partition = partition_of(self.tenant_id)?;
        if partition.name() != self.partition {
            return Err(corrupt("audit partition"));
        }
        Ok(AuditRecord {
            id: AuditId::from_generated(self.audit_id),
            seq: from_sql_int(self.seq, "audit seq")?,
            partition,
            at: self.at,
            actor: Actor {
                kind: match self.actor_type.as_str() {
                    "user" => ActorType::User,
                    "api_key" => ActorType::ApiKey,
                    "system" => ActorType::System,
                    "anonymous" => ActorType::Anonymous,
                    "oauth_client" => ActorType::OAuthClient,
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

/// `outbox_events`.
#[derive(Debug)]
pub struct EventRow {
    pub position: i64,
    pub tenant_id: Option<String>,
    pub event_id: Uuid,
    pub event_type: String,
    pub subject: String,
    pub time: OffsetDateTime,
    pub data: serde_json::Value,
}

/// The columns of [`EventRow`].
pub const EVENT_COLUMNS: &str = "position, tenant_id, event_id, event_type, subject, time, data";

impl Shape for EventRow {
    type Value = Event;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            position: row.int("position")?,
            tenant_id: row.text_opt("tenant_id")?,
            event_id: row.uuid("event_id")?,
            event_type: row.text("event_type")?,
            subject: row.text("subject")?,
            time: row.time("time")?,
            data: row.json("data")?,
        })
    }

    fn into_value(self) -> Result<Event, StoreError> {
        Ok(Event {
            id: EventId::from_generated(self.event_id),
            partition: partition_of(self.tenant_id)?,
            position: from_sql_int(self.position, "event position")?,
            time: self.time,
            event_type: self.event_type,
            subject: self.subject,
            data: self.data,
        })
    }
}

/// A tenant's outbox backlog (`waiting`, `oldest`): `count(*)` and `min(time)` of its
/// unpublished events.
#[derive(Debug)]
pub struct BacklogRow {
    pub waiting: i64,
    pub oldest: Option<OffsetDateTime>,
}

impl Shape for BacklogRow {
    type Value = domain::ports::OutboxBacklog;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            waiting: row.int("waiting")?,
            oldest: row.time_opt("oldest")?,
        })
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        Ok(domain::ports::OutboxBacklog {
            waiting: from_sql_int(self.waiting, "count")?,
            oldest: self.oldest,
        })
    }
}

/// The text columns of an audit record, in the order [`AUDIT_COLUMNS`] names them after
/// `partition, seq, tenant_id, audit_id, at` (which each store binds in its own types).
pub fn audit_texts(record: &AuditRecord) -> [&str; 10] {
    [
        record.actor.kind.as_str(),
        &record.actor.id,
        &record.action,
        &record.target_kind,
        &record.target_id,
        record.outcome.as_str(),
        &record.reason,
        &record.request_id,
        &record.prev_hash,
        &record.hash,
    ]
}

/// `email_verifications`.
#[derive(Debug, Clone)]
pub struct EmailVerificationRow {
    pub token_hash: String,
    pub user_id: Uuid,
    pub email: String,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// The columns of [`EmailVerificationRow`].
pub const EMAIL_VERIFICATION_COLUMNS: &str = "token_hash, user_id, email, expires_at, used_at";

impl Shape for EmailVerificationRow {
    type Value = domain::model::EmailVerification;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            token_hash: row.text("token_hash")?,
            user_id: row.uuid("user_id")?,
            email: row.text("email")?,
            expires_at: row.time("expires_at")?,
            used_at: row.time_opt("used_at")?,
        })
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        Ok(domain::model::EmailVerification {
            token_hash: self.token_hash,
            user_id: UserId::from_generated(self.user_id),
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            expires_at: self.expires_at,
            used_at: self.used_at,
        })
    }
}

/// A leased row of `mail_queue`.
#[derive(Debug, Clone)]
pub struct QueuedMailRow {
    pub mail_id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub queued_at: OffsetDateTime,
    pub attempts: i64,
}

/// The columns of [`QueuedMailRow`].
pub const QUEUED_MAIL_COLUMNS: &str =
    "mail_id, recipient, subject, text_body, html_body, queued_at, attempts";

impl Shape for QueuedMailRow {
    type Value = domain::mail::QueuedMail;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            mail_id: row.uuid("mail_id")?,
            recipient: row.text("recipient")?,
            subject: row.text("subject")?,
            text_body: row.text("text_body")?,
            html_body: row.text("html_body")?,
            queued_at: row.time("queued_at")?,
            attempts: row.int("attempts")?,
        })
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        Ok(domain::mail::QueuedMail {
            id: self.mail_id,
            recipient: self.recipient,
            subject: self.subject,
            text: self.text_body,
            html: self.html_body,
            queued_at: self.queued_at,
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt("mail attempts"))?,
        })
    }
}

/// The mail queue's counts.
#[derive(Debug, Clone)]
pub struct MailBacklogRow {
    pub waiting: i64,
    pub oldest: Option<OffsetDateTime>,
    pub failed: i64,
}

impl Shape for MailBacklogRow {
    type Value = domain::mail::MailBacklog;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            waiting: row.int("waiting")?,
            oldest: row.time_opt("oldest")?,
            failed: row.int("failed")?,
        })
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        Ok(domain::mail::MailBacklog {
            waiting: from_sql_int(self.waiting, "count")?,
            oldest: self.oldest,
            failed: from_sql_int(self.failed, "count")?,
        })
    }
}

/// The columns of a hook in `webhooks` (what [`WebhookRow`] reads).
pub const WEBHOOK_COLUMNS: &str = "tenant_id, name, url, types, created_at, updated_at";

/// A row of `webhooks`, without its secret and progress.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub tenant_id: String,
    pub name: String,
    pub url: String,
    pub types: serde_json::Value,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Shape for WebhookRow {
    type Value = domain::webhook::Webhook;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: row.text("tenant_id")?,
            name: row.text("name")?,
            url: row.text("url")?,
            types: row.json("types")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        let types = self
            .types
            .as_array()
            .ok_or_else(|| corrupt("webhook types"))?
            .iter()
            .map(|name| name.as_str().map(str::to_owned))
            .collect::<Option<BTreeSet<String>>>()
            .ok_or_else(|| corrupt("webhook types"))?;
        Ok(domain::webhook::Webhook {
            tenant: tenant_id(&self.tenant_id)?,
            name: self.name,
            url: self.url,
            types,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The columns of a leased hook (what [`LeasedWebhookRow`] reads).
pub const LEASED_WEBHOOK_COLUMNS: &str = "tenant_id, name, url, types, created_at, updated_at, \
     secret, cursor_position, head_attempts, head_since";

/// A hook as the worker leases it.
#[derive(Debug, Clone)]
pub struct LeasedWebhookRow {
    pub hook: WebhookRow,
    pub secret: String,
    pub cursor: i64,
    pub head_attempts: i64,
    pub head_since: Option<OffsetDateTime>,
}

impl Shape for LeasedWebhookRow {
    type Value = domain::webhook::LeasedWebhook;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            hook: WebhookRow::read(row)?,
            secret: row.text("secret")?,
            cursor: row.int("cursor_position")?,
            head_attempts: row.int("head_attempts")?,
            head_since: row.time_opt("head_since")?,
        })
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        Ok(domain::webhook::LeasedWebhook {
            hook: self.hook.into_value()?,
            secret: self.secret,
            cursor: from_sql_int(self.cursor, "webhook cursor")?,
            head_attempts: u32::try_from(self.head_attempts)
                .map_err(|_| corrupt("webhook attempts"))?,
            head_since: self.head_since,
        })
    }
}

/// The columns of `webhook_deliveries` [`DeliveryRow`] reads.
pub const DELIVERY_COLUMNS: &str = "position, event_id, event_type, status, attempts, \
     last_status_code, last_error, first_attempt_at, last_attempt_at";

/// A row of `webhook_deliveries`.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub position: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub first_attempt_at: OffsetDateTime,
    pub last_attempt_at: OffsetDateTime,
}

impl Shape for DeliveryRow {
    type Value = domain::webhook::Delivery;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            position: row.int("position")?,
            event_id: row.uuid("event_id")?,
            event_type: row.text("event_type")?,
            status: row.text("status")?,
            attempts: row.int("attempts")?,
            last_status_code: row.int_opt("last_status_code")?,
            last_error: row.text_opt("last_error")?,
            first_attempt_at: row.time("first_attempt_at")?,
            last_attempt_at: row.time("last_attempt_at")?,
        })
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        Ok(domain::webhook::Delivery {
            position: from_sql_int(self.position, "delivery position")?,
            event_id: self.event_id.to_string(),
            event_type: self.event_type,
            status: domain::webhook::DeliveryStatus::parse(&self.status)?,
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt("delivery attempts"))?,
            last_status_code: self
                .last_status_code
                .map(|code| u16::try_from(code).map_err(|_| corrupt("delivery status code")))
                .transpose()?,
            last_error: self.last_error,
            first_attempt_at: self.first_attempt_at,
            last_attempt_at: self.last_attempt_at,
        })
    }
}
