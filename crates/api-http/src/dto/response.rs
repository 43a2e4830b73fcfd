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

use domain::audit::{format_timestamp, ActorType, Outcome};
use domain::ids::{Assurance, ProfileType};
use domain::model::{self, AccountState, ProfileSource, TenantState, UserState};
use domain::usecases::{NewSession, NewSessionState, TotpEnrolmentStart};

use crate::openapi::profile_value_schema;

/// The names of a set of validated values, in their order.
fn names<'a, T: 'a>(values: impl IntoIterator<Item = &'a T>, name: fn(&T) -> &str) -> Vec<String> {
    values
        .into_iter()
        .map(|value| name(value).to_owned())
        .collect()
}

// ---- closed vocabularies -------------------------------------------------------------

/// A tenant state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStateName {
    Active,
    Suspended,
}

impl From<TenantState> for TenantStateName {
    fn from(state: TenantState) -> Self {
        match state {
            TenantState::Active => Self::Active,
            TenantState::Suspended => Self::Suspended,
        }
    }
}

/// A user's platform-wide state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStateName {
    Invited,
    Active,
    Suspended,
}

impl From<UserState> for UserStateName {
    fn from(state: UserState) -> Self {
        match state {
            UserState::Invited => Self::Invited,
            UserState::Active => Self::Active,
            UserState::Suspended => Self::Suspended,
        }
    }
}

/// A member's tenant account state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStateName {
    Active,
    Suspended,
}

impl From<AccountState> for AccountStateName {
    fn from(state: AccountState) -> Self {
        match state {
            AccountState::Active => Self::Active,
            AccountState::Suspended => Self::Suspended,
        }
    }
}

/// An authentication assurance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssuranceName {
    Aal1,
    Aal2,
}

impl From<Assurance> for AssuranceName {
    fn from(assurance: Assurance) -> Self {
        match assurance {
            Assurance::Aal1 => Self::Aal1,
            Assurance::Aal2 => Self::Aal2,
        }
    }
}

/// Where a resolved profile value came from (SPEC §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSourceName {
    TenantMember,
    Platform,
    TenantDefault,
}

impl From<ProfileSource> for ProfileSourceName {
    fn from(source: ProfileSource) -> Self {
        match source {
            ProfileSource::TenantMember => Self::TenantMember,
            ProfileSource::Platform => Self::Platform,
            ProfileSource::TenantDefault => Self::TenantDefault,
        }
    }
}

/// The type of a profile key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileTypeName {
    String,
    Number,
    Boolean,
}

impl From<ProfileType> for ProfileTypeName {
    fn from(value_type: ProfileType) -> Self {
        match value_type {
            ProfileType::String => Self::String,
            ProfileType::Number => Self::Number,
            ProfileType::Boolean => Self::Boolean,
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorTypeName {
    User,
    ApiKey,
    System,
    Anonymous,
}

impl From<ActorType> for ActorTypeName {
    fn from(kind: ActorType) -> Self {
        match kind {
            ActorType::User => Self::User,
            ActorType::ApiKey => Self::ApiKey,
            ActorType::System => Self::System,
            ActorType::Anonymous => Self::Anonymous,
        }
    }
}

/// Whether an audited operation was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeName {
    Allowed,
    Denied,
}

impl From<Outcome> for OutcomeName {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Allowed => Self::Allowed,
            Outcome::Denied => Self::Denied,
        }
    }
}

/// allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionName {
    Allow,
    Deny,
}

/// A tenant's readiness: `not_ready` when any check fails, else `degraded` when any
/// warns, else `ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessName {
    Ready,
    Degraded,
    NotReady,
}

impl From<diagnostics::Status> for ReadinessName {
    fn from(status: diagnostics::Status) -> Self {
        match status {
            diagnostics::Status::Ready => Self::Ready,
            diagnostics::Status::Degraded => Self::Degraded,
            diagnostics::Status::NotReady => Self::NotReady,
        }
    }
}

/// One diagnostic check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatusName {
    Pass,
    Warn,
    Fail,
}

impl From<diagnostics::CheckStatus> for CheckStatusName {
    fn from(status: diagnostics::CheckStatus) -> Self {
        match status {
            diagnostics::CheckStatus::Pass => Self::Pass,
            diagnostics::CheckStatus::Warn => Self::Warn,
            diagnostics::CheckStatus::Fail => Self::Fail,
        }
    }
}

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
    /// Present once, when the admin was invited; deliver it to them (valid 7 days).
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
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Present once, when the user was created without a password (valid 7 days).
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
            created_at,
            updated_at,
        } = User::from(&created.user);
        Self {
            id,
            email,
            state,
            platform_roles,
            has_totp,
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
    /// Present once, when a new email created an invited user (valid 7 days).
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
            roles: names(&facts.roles, |role| role.as_str()),
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

// ---- pages ---------------------------------------------------------------------------

/// One page of a list, `{items, next_cursor}`, for each item type (concrete types, as
/// utoipa inlines the arguments of a generic schema instead of referring to them).
macro_rules! page {
    ($page:ident, $item:ty, $what:literal) => {
        #[doc = concat!("One page of ", $what, ": `{items, next_cursor}`.")]
        #[derive(Debug, Clone, Serialize, ToSchema)]
        pub struct $page {
            pub items: Vec<$item>,
            /// Present when more items follow; pass it back as `after`.
            pub next_cursor: Option<String>,
        }

        impl $page {
            /// A page of `items` mapped from the domain's, with the store's cursor.
            pub fn new<'a, T: 'a>(
                items: impl IntoIterator<Item = &'a T>,
                next_cursor: Option<String>,
            ) -> Self
            where
                $item: From<&'a T>,
            {
                Self {
                    items: items.into_iter().map(<$item>::from).collect(),
                    next_cursor,
                }
            }

            /// A list the store returns whole: one page, `next_cursor` null.
            pub fn whole<'a, T: 'a>(items: impl IntoIterator<Item = &'a T>) -> Self
            where
                $item: From<&'a T>,
            {
                Self::new(items, None)
            }

            /// One page of the store's.
            pub fn of<'a, T: 'a>(page: &'a domain::ports::Page<T>) -> Self
            where
                $item: From<&'a T>,
            {
                Self::new(&page.items, page.next_cursor.clone())
            }
        }
    };
}

page!(TenantPage, Tenant, "tenants");
page!(MemberPage, Member, "members");
page!(RolePage, Role, "role bindings");
page!(ApiKeyPage, ApiKey, "API keys");
page!(CatalogScopePage, CatalogScope, "catalog scopes");
page!(SchemaEntryPage, SchemaEntry, "profile schema entries");
page!(AuditRecordPage, AuditRecord, "audit records");
page!(CloudEventPage, CloudEvent, "events");

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a failed lookup is a failed test"
)]
mod tests {
    use serde::Serialize;
    use serde_json::{json, Value};

    use super::*;

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
                    roles: BTreeSet::new(),
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
    fn the_closed_vocabularies_write_the_domain_words() {
        for state in [TenantState::Active, TenantState::Suspended] {
            assert_eq!(wire(TenantStateName::from(state)), state.as_str());
        }
        for state in [UserState::Invited, UserState::Active, UserState::Suspended] {
            assert_eq!(wire(UserStateName::from(state)), state.as_str());
        }
        for state in [AccountState::Active, AccountState::Suspended] {
            assert_eq!(wire(AccountStateName::from(state)), state.as_str());
        }
        for assurance in [Assurance::Aal1, Assurance::Aal2] {
            assert_eq!(wire(AssuranceName::from(assurance)), assurance.as_str());
        }
        for source in [
            ProfileSource::TenantMember,
            ProfileSource::Platform,
            ProfileSource::TenantDefault,
        ] {
            assert_eq!(wire(ProfileSourceName::from(source)), source.as_str());
        }
        for value_type in [
            ProfileType::String,
            ProfileType::Number,
            ProfileType::Boolean,
        ] {
            assert_eq!(wire(ProfileTypeName::from(value_type)), value_type.as_str());
        }
        for kind in [
            ActorType::User,
            ActorType::ApiKey,
            ActorType::System,
            ActorType::Anonymous,
        ] {
            assert_eq!(wire(ActorTypeName::from(kind)), kind.as_str());
        }
        for outcome in [Outcome::Allowed, Outcome::Denied] {
            assert_eq!(wire(OutcomeName::from(outcome)), outcome.as_str());
        }
        for status in [
            diagnostics::Status::Ready,
            diagnostics::Status::Degraded,
            diagnostics::Status::NotReady,
        ] {
            assert_eq!(wire(ReadinessName::from(status)), status.as_str());
        }
        for status in [
            diagnostics::CheckStatus::Pass,
            diagnostics::CheckStatus::Warn,
            diagnostics::CheckStatus::Fail,
        ] {
            assert_eq!(wire(CheckStatusName::from(status)), status.as_str());
        }
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
                "platform_roles": [], "has_totp": false,
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
