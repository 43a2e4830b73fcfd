//! The JSON bodies of SPEC §4, one type per body: each serializes to the wire and is its
//! own OpenAPI schema, so the two cannot drift. Each is built explicitly from the
//! domain's values (`From<&domain::X>` or a named constructor).
//!
//! A field the body leaves out when it does not apply is skipped when `None` and
//! documented as a plain, not required, value (never as nullable); a field written as
//! null is an `Option` serialized as null.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use domain::audit::format_timestamp;
use domain::model;
use domain::usecases::{
    EmailChange, IssuedPasswordReset, NewSession, NewSessionState, SessionView, TotpEnrolmentStart,
};

use super::names;
use super::vocabulary::*;
use crate::openapi::profile_value_schema;

// ---- tenants, users, members ---------------------------------------------------------

/// `{id, display_name, state, created_at, updated_at}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tenant {
    /// The tenant slug.
    #[schema(pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$", example = "acme")]
    pub id: String,
    pub display_name: String,
    pub state: TenantStateName,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&model::Tenant> for Tenant {
    fn from(tenant: &model::Tenant) -> Self {
        Self {
            id: tenant.id.as_str().to_owned(),
            display_name: tenant.display_name.as_str().to_owned(),
            state: tenant.state.into(),
            created_at: format_timestamp(tenant.created_at),
            updated_at: format_timestamp(tenant.updated_at),
        }
    }
}

/// The 201 body of `POST /v1/tenants`: the tenant, its first admin, and the admin's
/// one-time invitation token when the admin was created by email.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantCreated {
    #[schema(pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$", example = "acme")]
    pub id: String,
    pub display_name: String,
    pub state: TenantStateName,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub admin: Member,
    /// Present once, when the admin was invited and mail is off; deliver it to them
    /// (valid 7 days). With mail on the invitation is mailed instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub invitation_token: Option<String>,
}

impl From<&domain::usecases::CreatedTenant> for TenantCreated {
    fn from(created: &domain::usecases::CreatedTenant) -> Self {
        let Tenant {
            id,
            display_name,
            state,
            created_at,
            updated_at,
        } = Tenant::from(&created.tenant);
        Self {
            id,
            display_name,
            state,
            created_at,
            updated_at,
            admin: Member::from(&created.admin),
            invitation_token: created.invitation_token.clone(),
        }
    }
}

/// `{id, email, state, platform_roles, has_totp, created_at, updated_at}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    #[schema(format = "uuid")]
    pub id: String,
    /// As stored: trimmed and lowercased (SPEC §2).
    #[schema(max_length = 254)]
    pub email: String,
    pub state: UserStateName,
    /// `platform_root`, `platform_auditor`.
    pub platform_roles: Vec<String>,
    pub has_totp: bool,
    /// The address came back through a token mailed to it (an email change).
    pub email_verified: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&model::User> for User {
    fn from(user: &model::User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            state: user.state.into(),
            platform_roles: names(&user.platform_roles, |role| role.as_str()),
            has_totp: user.has_totp,
            email_verified: user.email_verified,
            created_at: format_timestamp(user.created_at),
            updated_at: format_timestamp(user.updated_at),
        }
    }
}

/// The 201 body of `POST /v1/users`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserCreated {
    #[schema(format = "uuid")]
    pub id: String,
    /// As stored: trimmed and lowercased (SPEC §2).
    #[schema(max_length = 254)]
    pub email: String,
    pub state: UserStateName,
    pub platform_roles: Vec<String>,
    pub has_totp: bool,
    pub email_verified: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Present once, when the user was created without a password and mail is off
    /// (valid 7 days). With mail on the invitation is mailed instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub invitation_token: Option<String>,
}

impl From<&domain::usecases::CreatedUser> for UserCreated {
    fn from(created: &domain::usecases::CreatedUser) -> Self {
        let User {
            id,
            email,
            state,
            platform_roles,
            has_totp,
            email_verified,
            created_at,
            updated_at,
        } = User::from(&created.user);
        Self {
            id,
            email,
            state,
            platform_roles,
            has_totp,
            email_verified,
            created_at,
            updated_at,
            invitation_token: created.invitation_token.clone(),
        }
    }
}

/// `{tenant, user_id, email, roles, state, created_at, updated_at, version}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    pub tenant: String,
    #[schema(format = "uuid")]
    pub user_id: String,
    /// As stored: trimmed and lowercased (SPEC §2).
    #[schema(max_length = 254)]
    pub email: String,
    pub roles: Vec<String>,
    pub state: AccountStateName,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Grows with every change; the `ETag` is `"m<version>"`.
    pub version: u64,
}

impl From<&model::Member> for Member {
    fn from(member: &model::Member) -> Self {
        Self {
            tenant: member.tenant.as_str().to_owned(),
            user_id: member.user_id.to_string(),
            email: member.email.as_str().to_owned(),
            roles: names(&member.roles, |role| role.as_str()),
            state: member.state.into(),
            created_at: format_timestamp(member.created_at),
            updated_at: format_timestamp(member.updated_at),
            version: member.version,
        }
    }
}

/// The 201 body of `POST /v1/tenants/{tenant}/members`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberCreated {
    pub tenant: String,
    #[schema(format = "uuid")]
    pub user_id: String,
    /// As stored: trimmed and lowercased (SPEC §2).
    #[schema(max_length = 254)]
    pub email: String,
    pub roles: Vec<String>,
    pub state: AccountStateName,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub version: u64,
    /// Present once, when a new email created an invited user and mail is off (valid 7
    /// days). With mail on the invitation is mailed instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub invitation_token: Option<String>,
}

impl From<&domain::usecases::AddedMember> for MemberCreated {
    fn from(added: &domain::usecases::AddedMember) -> Self {
        let Member {
            tenant,
            user_id,
            email,
            roles,
            state,
            created_at,
            updated_at,
            version,
        } = Member::from(&added.member);
        Self {
            tenant,
            user_id,
            email,
            roles,
            state,
            created_at,
            updated_at,
            version,
            invitation_token: added.invitation_token.clone(),
        }
    }
}

/// A role binding `{role, scopes}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Role {
    #[schema(example = "tenant_admin")]
    pub role: String,
    pub scopes: Vec<String>,
}

impl From<&model::RoleBinding> for Role {
    fn from(binding: &model::RoleBinding) -> Self {
        Self {
            role: binding.role.as_str().to_owned(),
            scopes: names(&binding.scopes, |scope| scope.as_str()),
        }
    }
}

/// `{scopes}`: the scopes enabled for a tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Scopes {
    pub scopes: Vec<String>,
}

impl<'a, T: IntoIterator<Item = &'a domain::ids::ScopeName>> From<T> for Scopes {
    fn from(scopes: T) -> Self {
        Self {
            scopes: names(scopes, |scope| scope.as_str()),
        }
    }
}

/// A tenant API key `{id, name, scopes, created_at}` (the secret is never shown again).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    #[schema(format = "uuid")]
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&model::ApiKey> for ApiKey {
    fn from(key: &model::ApiKey) -> Self {
        Self {
            id: key.id.to_string(),
            name: key.name.as_str().to_owned(),
            scopes: names(&key.scopes, |scope| scope.as_str()),
            created_at: format_timestamp(key.created_at),
        }
    }
}

/// The 201 body of `POST /v1/tenants/{tenant}/api-keys`, with the key shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    #[schema(format = "uuid")]
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The bearer secret, `uek_…`; stored only as a hash.
    #[schema(example = "uek_…")]
    pub key: String,
}

impl From<&domain::usecases::CreatedApiKey> for ApiKeyCreated {
    fn from(created: &domain::usecases::CreatedApiKey) -> Self {
        let ApiKey {
            id,
            name,
            scopes,
            created_at,
        } = ApiKey::from(&created.key);
        Self {
            id,
            name,
            scopes,
            created_at,
            key: created.secret.clone(),
        }
    }
}

// ---- sessions ------------------------------------------------------------------------

/// A new session `{token, expires_at, assurance}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    /// The bearer token; stored only as a hash.
    pub token: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub assurance: AssuranceName,
}

impl From<&NewSession> for Session {
    fn from(session: &NewSession) -> Self {
        Self {
            token: session.token.clone(),
            expires_at: format_timestamp(session.expires_at),
            assurance: session.assurance.into(),
        }
    }
}

/// A password reset token `{token, expires_at}`, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PasswordReset {
    /// The single-use token; stored only as a hash.
    pub token: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl From<&IssuedPasswordReset> for PasswordReset {
    fn from(reset: &IssuedPasswordReset) -> Self {
        Self {
            token: reset.token.clone(),
            expires_at: format_timestamp(reset.expires_at),
        }
    }
}

/// A pending email change `{email, expires_at, verification_token?}`: the token only
/// when mail is off, for the calling service to deliver to the new address.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingEmailChange {
    #[schema(max_length = 254)]
    pub email: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub verification_token: Option<String>,
}

impl From<&EmailChange> for PendingEmailChange {
    fn from(change: &EmailChange) -> Self {
        Self {
            email: change.email.as_str().to_owned(),
            expires_at: format_timestamp(change.expires_at),
            verification_token: change.verification_token.clone(),
        }
    }
}

/// A webhook `{name, url, types, created_at, updated_at}`, plus `secret` once, when
/// created (and from the rotation route).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookInfo {
    pub name: String,
    pub url: String,
    pub types: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The signing secret (`whsec_…`, Standard Webhooks), shown once at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub secret: Option<String>,
}

impl From<&domain::webhook::Webhook> for WebhookInfo {
    fn from(hook: &domain::webhook::Webhook) -> Self {
        Self {
            name: hook.name.clone(),
            url: hook.url.clone(),
            types: hook.types.iter().cloned().collect(),
            created_at: format_timestamp(hook.created_at),
            updated_at: format_timestamp(hook.updated_at),
            secret: None,
        }
    }
}

/// `{secret}`: a webhook's new signing secret, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookSecret {
    pub secret: String,
}

/// One event's delivery to a webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryInfo {
    /// The event's position in the tenant's feed.
    pub position: u64,
    #[schema(format = "uuid")]
    pub event_id: String,
    pub event_type: String,
    /// `delivered`, `retrying` (failed so far; later events wait behind it), or
    /// `failed` (given up after the give-up time; later events went on).
    pub status: String,
    pub attempts: u32,
    /// The receiver's last HTTP status, when it answered.
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub first_attempt_at: String,
    #[schema(format = DateTime)]
    pub last_attempt_at: String,
}

impl From<&domain::webhook::Delivery> for DeliveryInfo {
    fn from(delivery: &domain::webhook::Delivery) -> Self {
        Self {
            position: delivery.position,
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            status: delivery.status.as_str().to_owned(),
            attempts: delivery.attempts,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error.clone(),
            first_attempt_at: format_timestamp(delivery.first_attempt_at),
            last_attempt_at: format_timestamp(delivery.last_attempt_at),
        }
    }
}

/// `{codes}`: new recovery codes, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Each raises a session to `aal2` once (`POST /v1/auth/recovery`).
    pub codes: Vec<String>,
}

/// One of the caller's sessions `{id, created_at, last_seen_at, expires_at, assurance,
/// client_address, user_agent, current}` (its token is never shown again).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionInfo {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub assurance: AssuranceName,
    /// The client address of the login that opened it, when known.
    pub client_address: Option<String>,
    /// The `User-Agent` of the login that opened it, when sent.
    pub user_agent: Option<String>,
    /// Whether this is the session of the request that asked.
    pub current: bool,
}

impl From<&SessionView> for SessionInfo {
    fn from(session: &SessionView) -> Self {
        Self {
            id: session.id.to_string(),
            created_at: format_timestamp(session.created_at),
            last_seen_at: format_timestamp(session.last_seen_at),
            expires_at: format_timestamp(session.expires_at),
            assurance: session.assurance.into(),
            client_address: session.client_address.clone(),
            user_agent: session.user_agent.clone(),
            current: session.current,
        }
    }
}

/// The session after a TOTP step-up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepUp {
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub assurance: AssuranceName,
    /// Until when `aal2` holds.
    #[schema(format = DateTime)]
    pub aal2_until: Option<String>,
}

impl From<&NewSessionState> for StepUp {
    fn from(session: &NewSessionState) -> Self {
        Self {
            expires_at: format_timestamp(session.expires_at),
            assurance: session.assurance.into(),
            aal2_until: session.aal2_until.map(format_timestamp),
        }
    }
}

/// A TOTP enrolment to confirm with `POST /v1/me/totp/confirm`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret (RFC 6238, SHA-1, 6 digits, 30 s).
    pub secret: String,
    #[schema(example = "otpauth://totp/user-engine:ada@example.com?secret=…")]
    pub otpauth_uri: String,
}

impl From<&TotpEnrolmentStart> for TotpEnrolment {
    fn from(enrolment: &TotpEnrolmentStart) -> Self {
        Self {
            secret: enrolment.secret.clone(),
            otpauth_uri: enrolment.otpauth_uri.clone(),
        }
    }
}

/// Who the caller is.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    /// The user, for a session; null for an API key.
    pub user: Option<User>,
    /// The key, for an API key; null for a session.
    pub api_key: Option<ApiKey>,
    pub platform_roles: Vec<String>,
    pub assurance: AssuranceName,
    pub memberships: Vec<Member>,
}

impl From<&domain::usecases::Me> for Me {
    fn from(me: &domain::usecases::Me) -> Self {
        Self {
            user: me.user.as_ref().map(User::from),
            api_key: me.api_key.as_ref().map(ApiKey::from),
            platform_roles: me
                .user
                .as_ref()
                .map(|user| names(&user.platform_roles, |role| role.as_str()))
                .unwrap_or_default(),
            assurance: me.assurance.into(),
            memberships: me.memberships.iter().map(Member::from).collect(),
        }
    }
}

// ---- profiles, catalog ---------------------------------------------------------------

/// One resolved profile value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResolvedValue {
    #[schema(schema_with = profile_value_schema)]
    pub value: serde_json::Value,
    pub source: ProfileSourceName,
}

/// A resolved profile `{values: {key: {value, source}}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Profile {
    pub values: BTreeMap<String, ResolvedValue>,
}

impl From<&model::ResolvedProfile> for Profile {
    fn from(profile: &model::ResolvedProfile) -> Self {
        Self {
            values: profile
                .values
                .iter()
                .map(|(key, resolved)| {
                    (
                        key.as_str().to_owned(),
                        ResolvedValue {
                            value: resolved.value.as_json().clone(),
                            source: resolved.source.into(),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// A stored platform value or tenant default `{key, value}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileValue {
    pub key: String,
    #[schema(schema_with = profile_value_schema)]
    pub value: serde_json::Value,
}

impl ProfileValue {
    pub fn new(key: &domain::ids::ProfileKey, value: &domain::ids::ProfileValue) -> Self {
        Self {
            key: key.as_str().to_owned(),
            value: value.as_json().clone(),
        }
    }
}

/// A catalog scope `{name, description, platform_only, min_assurance}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CatalogScope {
    #[schema(example = "docs:edit")]
    pub name: String,
    pub description: String,
    pub platform_only: bool,
    pub min_assurance: AssuranceName,
}

impl From<&model::CatalogScope> for CatalogScope {
    fn from(scope: &model::CatalogScope) -> Self {
        Self {
            name: scope.name.as_str().to_owned(),
            description: scope.description.clone(),
            platform_only: scope.platform_only,
            min_assurance: scope.min_assurance.into(),
        }
    }
}

/// A profile schema entry `{key, type, user_editable, tenant_overridable}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SchemaEntry {
    pub key: String,
    #[serde(rename = "type")]
    pub value_type: ProfileTypeName,
    pub user_editable: bool,
    pub tenant_overridable: bool,
}

impl From<&model::SchemaEntry> for SchemaEntry {
    fn from(entry: &model::SchemaEntry) -> Self {
        Self {
            key: entry.key.as_str().to_owned(),
            value_type: entry.value_type.into(),
            user_editable: entry.user_editable,
            tenant_overridable: entry.tenant_overridable,
        }
    }
}

// ---- audit, events -------------------------------------------------------------------

/// `{type, id}` of an audit record's actor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditActor {
    #[serde(rename = "type")]
    pub kind: ActorTypeName,
    pub id: String,
}

/// `{type, id}` of what an audited operation acted on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditTarget {
    #[serde(rename = "type")]
    #[schema(example = "member")]
    pub kind: String,
    pub id: String,
}

/// One record of a hash-chained audit trail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecord {
    #[schema(format = "uuid")]
    pub id: String,
    /// Position in its trail, from 1, without gaps.
    pub seq: u64,
    #[schema(format = DateTime)]
    pub at: String,
    /// Null for the platform trail.
    pub tenant: Option<String>,
    pub actor: AuditActor,
    pub action: String,
    pub target: AuditTarget,
    pub outcome: OutcomeName,
    pub reason: String,
    pub request_id: String,
    /// Hex SHA-256 of the previous record (64 zeros for the first).
    pub prev_hash: String,
    pub hash: String,
}

impl From<&domain::audit::AuditRecord> for AuditRecord {
    fn from(record: &domain::audit::AuditRecord) -> Self {
        Self {
            id: record.id.to_string(),
            seq: record.seq,
            at: format_timestamp(record.at),
            tenant: record.tenant().map(|tenant| tenant.as_str().to_owned()),
            actor: AuditActor {
                kind: record.actor.kind.into(),
                id: record.actor.id.clone(),
            },
            action: record.action.clone(),
            target: AuditTarget {
                kind: record.target_kind.clone(),
                id: record.target_id.clone(),
            },
            outcome: record.outcome.into(),
            reason: record.reason.clone(),
            request_id: record.request_id.clone(),
            prev_hash: record.prev_hash.clone(),
            hash: record.hash.clone(),
        }
    }
}

/// An outbox event as a CloudEvents 1.0 JSON envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CloudEvent {
    #[schema(example = "1.0")]
    pub specversion: &'static str,
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(example = "user-engine")]
    pub source: &'static str,
    #[serde(rename = "type")]
    #[schema(example = "member.added")]
    pub event_type: String,
    pub subject: String,
    #[schema(format = DateTime)]
    pub time: String,
    #[schema(example = "application/json")]
    pub datacontenttype: &'static str,
    /// The tenant, or `_platform`.
    pub tenant: String,
    /// Position in the feed; pass the last one back as `after`.
    pub sequence: u64,
    pub data: serde_json::Value,
}

impl From<&domain::event::Event> for CloudEvent {
    fn from(event: &domain::event::Event) -> Self {
        Self {
            specversion: "1.0",
            id: event.id.to_string(),
            source: "user-engine",
            event_type: event.event_type.clone(),
            subject: event.subject.clone(),
            time: format_timestamp(event.time),
            datacontenttype: "application/json",
            tenant: event.partition.name().to_owned(),
            sequence: event.position,
            data: event.data.clone(),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a failed lookup is a failed test"
)]
mod tests {
    use serde::Serialize;
    use serde_json::{json, Value};

    use crate::dto::*;

    /// Domain values to map.
    mod sample {
        use std::collections::{BTreeMap, BTreeSet};

        use domain::audit::{Actor, ActorType, AuditRecord, Outcome, Partition};
        use domain::authz::{Decision, DecisionFacts, Reason};
        use domain::event::Event;
        use domain::ids::{
            Assurance, AuditId, DisplayName, Email, EventId, KeyId, ProfileKey, ProfileType,
            ProfileValue, RoleName, ScopeName, TenantId, UserId,
        };
        use domain::model::{
            AccountState, ApiKey, CatalogScope, Member, ProfileSource, ResolvedProfile,
            ResolvedValue, RoleBinding, SchemaEntry, Tenant, TenantState, User, UserState,
        };
        use time::OffsetDateTime;
        use uuid::Uuid;

        const AT: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

        fn tenant_id() -> TenantId {
            TenantId::parse("acme").unwrap()
        }

        pub fn tenant() -> Tenant {
            Tenant {
                id: tenant_id(),
                display_name: DisplayName::parse("Acme").unwrap(),
                state: TenantState::Active,
                created_at: AT,
                updated_at: AT,
            }
        }

        pub fn user() -> User {
            User {
                id: UserId::from_generated(Uuid::now_v7()),
                email: Email::parse("ada@example.com").unwrap(),
                state: UserState::Active,
                platform_roles: BTreeSet::new(),
                has_totp: false,
                email_verified: false,
                created_at: AT,
                updated_at: AT,
            }
        }

        pub fn member() -> Member {
            Member {
                tenant: tenant_id(),
                user_id: UserId::from_generated(Uuid::now_v7()),
                email: Email::parse("ada@example.com").unwrap(),
                roles: BTreeSet::from([RoleName::parse("member").unwrap()]),
                state: AccountState::Active,
                created_at: AT,
                updated_at: AT,
                version: 1,
            }
        }

        pub fn role() -> RoleBinding {
            RoleBinding {
                role: RoleName::parse("editor").unwrap(),
                scopes: BTreeSet::from([ScopeName::parse("docs:edit").unwrap()]),
            }
        }

        pub fn api_key() -> ApiKey {
            ApiKey {
                id: KeyId::from_generated(Uuid::now_v7()),
                tenant: tenant_id(),
                name: DisplayName::parse("ci").unwrap(),
                scopes: BTreeSet::new(),
                created_by: None,
                created_at: AT,
                revoked_at: None,
            }
        }

        pub fn profile() -> ResolvedProfile {
            ResolvedProfile {
                values: BTreeMap::from([(
                    ProfileKey::parse("locale").unwrap(),
                    ResolvedValue {
                        value: ProfileValue::parse(&serde_json::json!("de")).unwrap(),
                        source: ProfileSource::TenantDefault,
                    },
                )]),
            }
        }

        pub fn catalog_scope() -> CatalogScope {
            CatalogScope {
                name: ScopeName::parse("docs:edit").unwrap(),
                description: String::new(),
                platform_only: false,
                min_assurance: Assurance::Aal1,
            }
        }

        pub fn schema_entry() -> SchemaEntry {
            SchemaEntry {
                key: ProfileKey::parse("locale").unwrap(),
                value_type: ProfileType::String,
                user_editable: true,
                tenant_overridable: true,
            }
        }

        pub fn decision() -> Decision {
            Decision {
                allowed: true,
                reason: Reason::RoleBinding,
                matched_role: Some(RoleName::parse("editor").unwrap()),
                facts: DecisionFacts {
                    tenant_state: Some(TenantState::Active),
                    user_state: Some(UserState::Active),
                    platform_roles: BTreeSet::new(),
                    account_state: Some(AccountState::Active),
                    roles: domain::authz::RoleSet::default(),
                    assurance: Assurance::Aal1,
                    scope_enabled: true,
                    platform_only: Some(false),
                    min_assurance: Some(Assurance::Aal1),
                    credential_scopes: None,
                    target_account_state: None,
                    target_platform_roles: BTreeSet::new(),
                },
            }
        }

        pub fn audit_record() -> AuditRecord {
            AuditRecord {
                id: AuditId::from_generated(Uuid::now_v7()),
                seq: 1,
                partition: Partition::Tenant(tenant_id()),
                at: AT,
                actor: Actor {
                    kind: ActorType::User,
                    id: "someone".to_owned(),
                },
                action: "member.add".to_owned(),
                target_kind: "member".to_owned(),
                target_id: "someone".to_owned(),
                outcome: Outcome::Allowed,
                reason: "role_binding".to_owned(),
                request_id: String::new(),
                prev_hash: String::new(),
                hash: String::new(),
            }
        }

        pub fn event() -> Event {
            Event {
                id: EventId::from_generated(Uuid::now_v7()),
                partition: Partition::Tenant(tenant_id()),
                position: 1,
                time: AT,
                event_type: "member.added".to_owned(),
                subject: "someone".to_owned(),
                data: serde_json::json!({}),
            }
        }
    }

    fn wire(body: impl Serialize) -> Value {
        serde_json::to_value(body).unwrap()
    }

    #[test]
    fn entities_are_written_with_the_fields_of_spec_4() {
        let tenant = sample::tenant();
        let tenant_json = json!({
            "id": "acme", "display_name": "Acme", "state": "active",
            "created_at": "1970-01-01T00:00:00.000000Z", "updated_at": "1970-01-01T00:00:00.000000Z",
        });
        assert_eq!(wire(Tenant::from(&tenant)), tenant_json);
        let user = sample::user();
        assert_eq!(
            wire(User::from(&user)),
            json!({
                "id": user.id.to_string(), "email": "ada@example.com", "state": "active",
                "platform_roles": [], "has_totp": false, "email_verified": false,
                "created_at": "1970-01-01T00:00:00.000000Z", "updated_at": "1970-01-01T00:00:00.000000Z",
            })
        );
        let member = sample::member();
        let member_json = json!({
            "tenant": "acme", "user_id": member.user_id.to_string(),
            "email": "ada@example.com", "roles": ["member"], "state": "active",
            "created_at": "1970-01-01T00:00:00.000000Z", "updated_at": "1970-01-01T00:00:00.000000Z",
            "version": 1,
        });
        assert_eq!(wire(Member::from(&member)), member_json);
        assert_eq!(
            wire(Role::from(&sample::role())),
            json!({"role": "editor", "scopes": ["docs:edit"]})
        );
        let key = sample::api_key();
        assert_eq!(
            wire(ApiKey::from(&key)),
            json!({
                "id": key.id.to_string(), "name": "ci", "scopes": [],
                "created_at": "1970-01-01T00:00:00.000000Z",
            })
        );
        assert_eq!(
            wire(Profile::from(&sample::profile())),
            json!({"values": {"locale": {"value": "de", "source": "tenant_default"}}})
        );
        assert_eq!(
            wire(CatalogScope::from(&sample::catalog_scope())),
            json!({
                "name": "docs:edit", "description": "", "platform_only": false,
                "min_assurance": "aal1",
            })
        );
        assert_eq!(
            wire(SchemaEntry::from(&sample::schema_entry())),
            json!({
                "key": "locale", "type": "string", "user_editable": true,
                "tenant_overridable": true,
            })
        );
        let page = domain::ports::Page {
            items: vec![tenant],
            next_cursor: None,
        };
        assert_eq!(
            wire(TenantPage::of(&page)),
            json!({"items": [tenant_json], "next_cursor": null})
        );
    }

    #[test]
    fn a_one_time_secret_is_written_only_when_there_is_one() {
        let member = sample::member();
        let invited = domain::usecases::AddedMember {
            member: member.clone(),
            invitation_token: Some("secret".to_owned()),
        };
        assert_eq!(
            wire(MemberCreated::from(&invited))["invitation_token"],
            "secret"
        );
        let added = domain::usecases::AddedMember {
            member,
            invitation_token: None,
        };
        let body = wire(MemberCreated::from(&added));
        assert!(body.get("invitation_token").is_none(), "{body}");
        assert_eq!(body["version"], 1);
        let created = domain::usecases::CreatedTenant {
            tenant: sample::tenant(),
            admin: sample::member(),
            invitation_token: None,
        };
        let body = wire(TenantCreated::from(&created));
        assert!(body.get("invitation_token").is_none(), "{body}");
        assert_eq!(body["admin"]["tenant"], "acme");
        let created = domain::usecases::CreatedUser {
            user: sample::user(),
            invitation_token: Some("secret".to_owned()),
        };
        assert_eq!(
            wire(UserCreated::from(&created))["invitation_token"],
            "secret"
        );
    }

    #[test]
    fn a_decision_leaves_out_matched_role_and_writes_absent_facts_as_null() {
        let mut decision = sample::decision();
        let facts = json!({
            "tenant_state": "active", "user_state": "active", "platform_roles": [],
            "account_state": "active", "roles": [], "assurance": "aal1",
            "scope_enabled": true, "platform_only": false, "min_assurance": "aal1",
            "credential_scopes": null, "target_account_state": null,
        });
        assert_eq!(
            wire(Decision::from(&decision)),
            json!({
                "decision": "allow", "reason": "role_binding", "matched_role": "editor",
                "facts": facts,
            })
        );
        decision.allowed = false;
        decision.reason = domain::authz::Reason::MissingScope;
        decision.matched_role = None;
        assert_eq!(
            wire(Decision::from(&decision)),
            json!({"decision": "deny", "reason": "missing_scope", "facts": facts})
        );
    }

    #[test]
    fn records_and_events_are_written_as_the_feeds_serve_them() {
        let record = sample::audit_record();
        assert_eq!(
            wire(AuditRecord::from(&record)),
            json!({
                "id": record.id.to_string(), "seq": 1, "at": "1970-01-01T00:00:00.000000Z",
                "tenant": "acme", "actor": {"type": "user", "id": "someone"},
                "action": "member.add", "target": {"type": "member", "id": "someone"},
                "outcome": "allowed", "reason": "role_binding", "request_id": "",
                "prev_hash": "", "hash": "",
            })
        );
        let mut platform = record;
        platform.partition = domain::audit::Partition::Platform;
        assert_eq!(wire(AuditRecord::from(&platform))["tenant"], Value::Null);
        let event = sample::event();
        assert_eq!(
            wire(CloudEvent::from(&event)),
            json!({
                "specversion": "1.0", "id": event.id.to_string(), "source": "user-engine",
                "type": "member.added", "subject": "someone",
                "time": "1970-01-01T00:00:00.000000Z", "datacontenttype": "application/json",
                "tenant": "acme", "sequence": 1, "data": {},
            })
        );
        let report = diagnostics::Report {
            tenant: "acme".to_owned(),
            status: diagnostics::Status::Ready,
            checks: vec![diagnostics::Check {
                id: diagnostics::ids::TENANT_ACTIVE,
                status: diagnostics::CheckStatus::Pass,
                detail: "tenant acme is active".to_owned(),
                remedy: None,
            }],
        };
        assert_eq!(wire(DiagnosticsReport::from(&report)), report.to_json());
    }
}

/// An OAuth client `{client_id, name, type, redirect_uris, post_logout_redirect_uris,
/// scopes, first_party, created_at}`, plus `client_secret` once, at creation of a confidential one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OAuthClientInfo {
    /// `<uuid>` for a platform client, `<tenant>.<uuid>` for a tenant client.
    pub client_id: String,
    pub name: String,
    /// `confidential` or `public`.
    #[serde(rename = "type")]
    pub client_type: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The `client_credentials` scopes (tenant clients).
    pub scopes: Vec<String>,
    /// Whether sign-ins skip the consent page.
    pub first_party: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The client secret (`uecs_…`), shown once at creation of a confidential client.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub client_secret: Option<String>,
}

impl From<&domain::oidc::OAuthClient> for OAuthClientInfo {
    fn from(client: &domain::oidc::OAuthClient) -> Self {
        Self {
            client_id: client.id.to_string(),
            name: client.name.clone(),
            client_type: client.client_type.as_str().to_owned(),
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            scopes: client
                .scopes
                .iter()
                .map(|scope| scope.as_str().to_owned())
                .collect(),
            first_party: client.first_party,
            created_at: format_timestamp(client.created_at),
            client_secret: None,
        }
    }
}

/// A member's consent to a third-party OAuth client `{client_id, scopes, granted_at}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentInfo {
    pub client_id: String,
    /// The OpenID scopes allowed.
    pub scopes: Vec<String>,
    #[schema(format = DateTime)]
    pub granted_at: String,
}

impl From<&domain::oidc::Consent> for ConsentInfo {
    fn from(consent: &domain::oidc::Consent) -> Self {
        Self {
            client_id: consent.client.to_string(),
            scopes: consent.scopes().into_iter().collect(),
            granted_at: format_timestamp(consent.granted_at),
        }
    }
}
