//! Outbox events (SPEC §6): written with the change they describe, served by the feed and
//! relayed; their CloudEvents 1.0 form belongs to the transports (`api-http`'s feed,
//! `adapters-nats`).

use std::collections::BTreeSet;

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::audit::Partition;
use crate::ids::{
    Assurance, DisplayName, Email, EventId, KeyId, ProfileKey, ProfileType, ProfileValue, RoleName,
    ScopeName, SessionId, TenantId, UserId,
};
use crate::model::{AccountState, PlatformRole, TenantState, UserState};

/// The event types of SPEC §6.
pub mod types {
    pub const TENANT_CREATED: &str = "tenant.created";
    pub const TENANT_UPDATED: &str = "tenant.updated";
    pub const TENANT_SCOPES_CHANGED: &str = "tenant.scopes_changed";
    pub const MEMBERSHIP_ADDED: &str = "membership.added";
    pub const MEMBERSHIP_ROLES_CHANGED: &str = "membership.roles_changed";
    pub const MEMBERSHIP_REMOVED: &str = "membership.removed";
    pub const ACCOUNT_STATE_CHANGED: &str = "account.state_changed";
    pub const PROFILE_VALUE_SET: &str = "profile.value_set";
    pub const PROFILE_VALUE_DELETED: &str = "profile.value_deleted";
    pub const ROLE_BINDING_CHANGED: &str = "role.binding_changed";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_STATE_CHANGED: &str = "user.state_changed";
    pub const USER_PASSWORD_CHANGED: &str = "user.password_changed";
    pub const USER_TOTP_ENROLLED: &str = "user.totp_enrolled";
    pub const USER_PASSWORD_RESET_ISSUED: &str = "user.password_reset_issued";
    pub const USER_TOTP_REMOVED: &str = "user.totp_removed";
    pub const USER_PASSWORD_RESET_REQUESTED: &str = "user.password_reset_requested";
    pub const USER_EMAIL_CHANGE_REQUESTED: &str = "user.email_change_requested";
    pub const USER_EMAIL_CHANGED: &str = "user.email_changed";
    pub const USER_RECOVERY_CODES_GENERATED: &str = "user.recovery_codes_generated";
    pub const USER_RECOVERY_CODE_USED: &str = "user.recovery_code_used";
    pub const USER_ERASED: &str = "user.erased";
    pub const WEBHOOK_CREATED: &str = "webhook.created";
    pub const WEBHOOK_UPDATED: &str = "webhook.updated";
    pub const WEBHOOK_DELETED: &str = "webhook.deleted";
    pub const WEBHOOK_SECRET_ROTATED: &str = "webhook.secret_rotated";
    pub const SESSION_REVOKED: &str = "session.revoked";
    pub const USER_SESSIONS_REVOKED: &str = "user.sessions_revoked";
    pub const PLATFORM_ROLES_CHANGED: &str = "platform_roles.changed";
    pub const CATALOG_SCOPE_ADDED: &str = "catalog.scope_added";
    pub const PROFILE_SCHEMA_CHANGED: &str = "profile_schema.changed";
    pub const SIGNING_KEYS_ROTATED: &str = "signing_keys.rotated";
    pub const OAUTH_CLIENT_CREATED: &str = "oauth_client.created";
    pub const OAUTH_CLIENT_DELETED: &str = "oauth_client.deleted";
    pub const OAUTH_CODE_ISSUED: &str = "oauth.code_issued";
    pub const OAUTH_TOKENS_ISSUED: &str = "oauth.tokens_issued";
    pub const OAUTH_GRANT_REVOKED: &str = "oauth.grant_revoked";
    pub const OAUTH_CONSENT_GRANTED: &str = "oauth.consent_granted";
    pub const OAUTH_CONSENT_REVOKED: &str = "oauth.consent_revoked";
    pub const SCIM_IDENTITY_CHANGED: &str = "scim.identity_changed";
    pub const SCIM_GROUP_CHANGED: &str = "scim.group_changed";

    /// Every type, for what names types (webhook subscriptions).
    pub const ALL: &[&str] = &[
        TENANT_CREATED,
        TENANT_UPDATED,
        TENANT_SCOPES_CHANGED,
        MEMBERSHIP_ADDED,
        MEMBERSHIP_ROLES_CHANGED,
        MEMBERSHIP_REMOVED,
        ACCOUNT_STATE_CHANGED,
        PROFILE_VALUE_SET,
        PROFILE_VALUE_DELETED,
        ROLE_BINDING_CHANGED,
        API_KEY_CREATED,
        API_KEY_REVOKED,
        USER_CREATED,
        USER_STATE_CHANGED,
        USER_PASSWORD_CHANGED,
        USER_TOTP_ENROLLED,
        USER_PASSWORD_RESET_ISSUED,
        USER_TOTP_REMOVED,
        USER_PASSWORD_RESET_REQUESTED,
        USER_EMAIL_CHANGE_REQUESTED,
        USER_EMAIL_CHANGED,
        USER_RECOVERY_CODES_GENERATED,
        USER_RECOVERY_CODE_USED,
        USER_ERASED,
        WEBHOOK_CREATED,
        WEBHOOK_UPDATED,
        WEBHOOK_DELETED,
        WEBHOOK_SECRET_ROTATED,
        SESSION_REVOKED,
        USER_SESSIONS_REVOKED,
        PLATFORM_ROLES_CHANGED,
        CATALOG_SCOPE_ADDED,
        PROFILE_SCHEMA_CHANGED,
        SIGNING_KEYS_ROTATED,
        OAUTH_CLIENT_CREATED,
        OAUTH_CLIENT_DELETED,
        OAUTH_CODE_ISSUED,
        OAUTH_TOKENS_ISSUED,
        OAUTH_GRANT_REVOKED,
        OAUTH_CONSENT_GRANTED,
        OAUTH_CONSENT_REVOKED,
        SCIM_IDENTITY_CHANGED,
        SCIM_GROUP_CHANGED,
    ];
}

/// Which layer of SPEC §3.4 a profile write went to, and whose value it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileLayer {
    TenantMember { user_id: UserId },
    TenantDefault,
    Platform { user_id: UserId },
}

/// What an event says, one variant per type of SPEC §6, in domain values: the use cases
/// build these, and only [`EventData::to_json`] knows the JSON shape of each.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    TenantCreated {
        id: TenantId,
        display_name: DisplayName,
    },
    /// Only what changed.
    TenantUpdated {
        display_name: Option<DisplayName>,
        state: Option<TenantState>,
    },
    TenantScopesChanged {
        scopes: BTreeSet<ScopeName>,
    },
    MembershipAdded {
        user_id: UserId,
        roles: BTreeSet<RoleName>,
    },
    MembershipRolesChanged {
        user_id: UserId,
        roles: BTreeSet<RoleName>,
    },
    MembershipRemoved {
        user_id: UserId,
    },
    AccountStateChanged {
        user_id: UserId,
        state: AccountState,
    },
    ProfileValueSet {
        layer: ProfileLayer,
        key: ProfileKey,
        value: ProfileValue,
    },
    ProfileValueDeleted {
        layer: ProfileLayer,
        key: ProfileKey,
    },
    /// `scopes: None` when the binding was deleted.
    RoleBindingChanged {
        role: RoleName,
        scopes: Option<BTreeSet<ScopeName>>,
    },
    ApiKeyCreated {
        id: KeyId,
        name: DisplayName,
        scopes: BTreeSet<ScopeName>,
    },
    ApiKeyRevoked {
        id: KeyId,
    },
    UserCreated {
        id: UserId,
        email: Email,
        state: UserState,
    },
    UserStateChanged {
        id: UserId,
        state: UserState,
    },
    UserPasswordChanged {
        id: UserId,
    },
    UserTotpEnrolled {
        id: UserId,
    },
    /// A platform administrator removed the user's TOTP factor.
    UserTotpRemoved {
        id: UserId,
    },
    /// A password reset token was issued for the user (never the token itself).
    UserPasswordResetIssued {
        id: UserId,
    },
    /// A self-service reset was asked for an active user and mailed (never the token).
    UserPasswordResetRequested {
        id: UserId,
    },
    /// A change of the user's email waits for its verification (the new address is
    /// not told: it is not the user's until verified).
    UserEmailChangeRequested {
        id: UserId,
    },
    /// The user's email changed after its verification.
    UserEmailChanged {
        id: UserId,
        email: Email,
    },
    UserRecoveryCodesGenerated {
        id: UserId,
        codes: u64,
    },
    UserRecoveryCodeUsed {
        id: UserId,
        remaining: u64,
    },
    /// The user was erased; only the id remains.
    UserErased {
        id: UserId,
    },
    /// The provider's signing keys were rotated: `kids` sign from now on, `retired` keys
    /// stopped signing (and stay published until their tokens expire).
    SigningKeysRotated {
        kids: Vec<String>,
        retired: u64,
    },
    /// An OAuth client was registered (in its tenant's feed, or the platform's).
    OAuthClientCreated {
        client_id: String,
        name: String,
        client_type: &'static str,
        first_party: bool,
    },
    OAuthClientDeleted {
        client_id: String,
    },
    /// A user signed in to a client through the hosted pages: a code was issued.
    OAuthCodeIssued {
        client_id: String,
        user_id: UserId,
        session_id: SessionId,
    },
    /// Tokens were issued at the token endpoint (`grant_type` says how); `user_id` is
    /// absent for a client's own `client_credentials` tokens.
    OAuthTokensIssued {
        client_id: String,
        user_id: Option<UserId>,
        grant_type: &'static str,
    },
    /// A user allowed a third-party client `scope` (space-separated OpenID scopes) in
    /// the tenant, on the consent page.
    OAuthConsentGranted {
        client_id: String,
        user_id: UserId,
        scope: String,
    },
    /// A user's consent to a client was revoked, with every code and refresh token of
    /// theirs the client held (`grants_revoked` of them).
    OAuthConsentRevoked {
        client_id: String,
        user_id: UserId,
        grants_revoked: u64,
    },
    /// A member's SCIM `userName` or `externalId` in the tenant was set (SPEC §8).
    ScimIdentityChanged {
        user_id: UserId,
        user_name: String,
        external_id: Option<String>,
    },
    /// A group created through SCIM got its name or `externalId` (SPEC §8).
    ScimGroupChanged {
        role: RoleName,
        display_name: String,
        external_id: Option<String>,
    },
    /// A code or refresh token family was revoked: `reason` `reuse` (a spent one came
    /// back) or `revocation` (RFC 7009).
    OAuthGrantRevoked {
        client_id: String,
        user_id: UserId,
        reason: &'static str,
    },
    /// A tenant's webhook was created or changed (never its url, which may hold a
    /// token, nor its secret).
    WebhookPut {
        name: String,
        types: BTreeSet<String>,
        created: bool,
    },
    WebhookDeleted {
        name: String,
    },
    WebhookSecretRotated {
        name: String,
    },
    /// One session ended by its owner by id (its public id, never the token).
    SessionRevoked {
        user_id: UserId,
        session_id: SessionId,
    },
    /// Sessions of a user ended at once: every other one by the owner, or all by a
    /// platform administrator; `sessions` how many.
    UserSessionsRevoked {
        id: UserId,
        sessions: u64,
    },
    PlatformRolesChanged {
        id: UserId,
        platform_roles: BTreeSet<PlatformRole>,
    },
    CatalogScopeAdded {
        name: ScopeName,
        platform_only: bool,
        min_assurance: Assurance,
    },
    ProfileSchemaChanged {
        key: ProfileKey,
        value_type: ProfileType,
        user_editable: bool,
        tenant_overridable: bool,
    },
}

fn names<'a, T: 'a>(items: impl IntoIterator<Item = &'a T>, name: fn(&T) -> &str) -> Vec<&'a str> {
    items.into_iter().map(name).collect()
}

impl EventData {
    /// The event type of SPEC §6.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::TenantCreated { .. } => types::TENANT_CREATED,
            Self::TenantUpdated { .. } => types::TENANT_UPDATED,
            Self::TenantScopesChanged { .. } => types::TENANT_SCOPES_CHANGED,
            Self::MembershipAdded { .. } => types::MEMBERSHIP_ADDED,
            Self::MembershipRolesChanged { .. } => types::MEMBERSHIP_ROLES_CHANGED,
            Self::MembershipRemoved { .. } => types::MEMBERSHIP_REMOVED,
            Self::AccountStateChanged { .. } => types::ACCOUNT_STATE_CHANGED,
            Self::ProfileValueSet { .. } => types::PROFILE_VALUE_SET,
            Self::ProfileValueDeleted { .. } => types::PROFILE_VALUE_DELETED,
            Self::RoleBindingChanged { .. } => types::ROLE_BINDING_CHANGED,
            Self::ApiKeyCreated { .. } => types::API_KEY_CREATED,
            Self::ApiKeyRevoked { .. } => types::API_KEY_REVOKED,
            Self::UserCreated { .. } => types::USER_CREATED,
            Self::UserStateChanged { .. } => types::USER_STATE_CHANGED,
            Self::UserPasswordChanged { .. } => types::USER_PASSWORD_CHANGED,
            Self::UserTotpEnrolled { .. } => types::USER_TOTP_ENROLLED,
            Self::UserPasswordResetIssued { .. } => types::USER_PASSWORD_RESET_ISSUED,
            Self::UserTotpRemoved { .. } => types::USER_TOTP_REMOVED,
            Self::UserPasswordResetRequested { .. } => types::USER_PASSWORD_RESET_REQUESTED,
            Self::UserEmailChangeRequested { .. } => types::USER_EMAIL_CHANGE_REQUESTED,
            Self::UserEmailChanged { .. } => types::USER_EMAIL_CHANGED,
            Self::UserRecoveryCodesGenerated { .. } => types::USER_RECOVERY_CODES_GENERATED,
            Self::UserRecoveryCodeUsed { .. } => types::USER_RECOVERY_CODE_USED,
            Self::UserErased { .. } => types::USER_ERASED,
            Self::SigningKeysRotated { .. } => types::SIGNING_KEYS_ROTATED,
            Self::OAuthClientCreated { .. } => types::OAUTH_CLIENT_CREATED,
            Self::OAuthClientDeleted { .. } => types::OAUTH_CLIENT_DELETED,
            Self::OAuthCodeIssued { .. } => types::OAUTH_CODE_ISSUED,
            Self::OAuthTokensIssued { .. } => types::OAUTH_TOKENS_ISSUED,
            Self::OAuthGrantRevoked { .. } => types::OAUTH_GRANT_REVOKED,
            Self::OAuthConsentGranted { .. } => types::OAUTH_CONSENT_GRANTED,
            Self::OAuthConsentRevoked { .. } => types::OAUTH_CONSENT_REVOKED,
            Self::ScimIdentityChanged { .. } => types::SCIM_IDENTITY_CHANGED,
            Self::ScimGroupChanged { .. } => types::SCIM_GROUP_CHANGED,
            Self::WebhookPut { created: true, .. } => types::WEBHOOK_CREATED,
            Self::WebhookPut { created: false, .. } => types::WEBHOOK_UPDATED,
            Self::WebhookDeleted { .. } => types::WEBHOOK_DELETED,
            Self::WebhookSecretRotated { .. } => types::WEBHOOK_SECRET_ROTATED,
            Self::SessionRevoked { .. } => types::SESSION_REVOKED,
            Self::UserSessionsRevoked { .. } => types::USER_SESSIONS_REVOKED,
            Self::PlatformRolesChanged { .. } => types::PLATFORM_ROLES_CHANGED,
            Self::CatalogScopeAdded { .. } => types::CATALOG_SCOPE_ADDED,
            Self::ProfileSchemaChanged { .. } => types::PROFILE_SCHEMA_CHANGED,
        }
    }

    /// The event's `data`, as SPEC §6 shapes it.
    pub fn to_json(&self) -> Value {
        match self {
            Self::TenantCreated { id, display_name } => {
                json!({ "id": id.as_str(), "display_name": display_name.as_str() })
            }
            Self::TenantUpdated {
                display_name,
                state,
            } => {
                let mut data = serde_json::Map::new();
                if let Some(display_name) = display_name {
                    data.insert("display_name".to_owned(), json!(display_name.as_str()));
                }
                if let Some(state) = state {
                    data.insert("state".to_owned(), json!(state.as_str()));
                }
                Value::Object(data)
            }
            Self::TenantScopesChanged { scopes } => {
                json!({ "scopes": names(scopes, ScopeName::as_str) })
            }
            Self::MembershipAdded { user_id, roles }
            | Self::MembershipRolesChanged { user_id, roles } => {
                json!({ "user_id": user_id.to_string(), "roles": names(roles, RoleName::as_str) })
            }
            Self::MembershipRemoved { user_id } => json!({ "user_id": user_id.to_string() }),
            Self::AccountStateChanged { user_id, state } => {
                json!({ "user_id": user_id.to_string(), "state": state.as_str() })
            }
            Self::ProfileValueSet { layer, key, value } => {
                profile_json(layer, key, Some(value.as_json()))
            }
            Self::ProfileValueDeleted { layer, key } => profile_json(layer, key, None),
            Self::RoleBindingChanged { role, scopes } => json!({
                "role": role.as_str(),
                "scopes": scopes.as_ref().map(|scopes| names(scopes, ScopeName::as_str)),
            }),
            Self::ApiKeyCreated { id, name, scopes } => json!({
                "id": id.to_string(),
                "name": name.as_str(),
                "scopes": names(scopes, ScopeName::as_str),
            }),
            Self::ApiKeyRevoked { id } => json!({ "id": id.to_string() }),
            Self::UserCreated { id, email, state } => json!({
                "id": id.to_string(),
                "email": email.as_str(),
                "state": state.as_str(),
            }),
            Self::UserStateChanged { id, state } => {
                json!({ "id": id.to_string(), "state": state.as_str() })
            }
            Self::UserPasswordChanged { id }
            | Self::UserTotpEnrolled { id }
            | Self::UserPasswordResetIssued { id }
            | Self::UserTotpRemoved { id }
            | Self::UserPasswordResetRequested { id }
            | Self::UserEmailChangeRequested { id }
            | Self::UserErased { id } => {
                json!({ "id": id.to_string() })
            }
            Self::UserEmailChanged { id, email } => {
                json!({ "id": id.to_string(), "email": email.as_str() })
            }
            Self::SigningKeysRotated { kids, retired } => {
                json!({ "kids": kids, "retired": retired })
            }
            Self::OAuthClientCreated {
                client_id,
                name,
                client_type,
                first_party,
            } => json!({
                "client_id": client_id,
                "name": name,
                "type": client_type,
                "first_party": first_party,
            }),
            Self::OAuthClientDeleted { client_id } => json!({ "client_id": client_id }),
            Self::OAuthCodeIssued {
                client_id,
                user_id,
                session_id,
            } => json!({
                "client_id": client_id,
                "user_id": user_id.to_string(),
                "session_id": session_id.to_string(),
            }),
            Self::OAuthTokensIssued {
                client_id,
                user_id,
                grant_type,
            } => json!({
                "client_id": client_id,
                "user_id": user_id.map(|id| id.to_string()),
                "grant_type": grant_type,
            }),
            Self::OAuthGrantRevoked {
                client_id,
                user_id,
                reason,
            } => json!({
                "client_id": client_id,
                "user_id": user_id.to_string(),
                "reason": reason,
            }),
            Self::OAuthConsentGranted {
                client_id,
                user_id,
                scope,
            } => json!({
                "client_id": client_id,
                "user_id": user_id.to_string(),
                "scope": scope,
            }),
            Self::OAuthConsentRevoked {
                client_id,
                user_id,
                grants_revoked,
            } => json!({
                "client_id": client_id,
                "user_id": user_id.to_string(),
                "grants_revoked": grants_revoked,
            }),
            Self::ScimIdentityChanged {
                user_id,
                user_name,
                external_id,
            } => json!({
                "user_id": user_id.to_string(),
                "user_name": user_name,
                "external_id": external_id,
            }),
            Self::ScimGroupChanged {
                role,
                display_name,
                external_id,
            } => json!({
                "role": role.as_str(),
                "display_name": display_name,
                "external_id": external_id,
            }),
            Self::WebhookPut { name, types, .. } => json!({ "name": name, "types": types }),
            Self::WebhookDeleted { name } | Self::WebhookSecretRotated { name } => {
                json!({ "name": name })
            }
            Self::UserRecoveryCodesGenerated { id, codes } => {
                json!({ "id": id.to_string(), "codes": codes })
            }
            Self::UserRecoveryCodeUsed { id, remaining } => {
                json!({ "id": id.to_string(), "remaining": remaining })
            }
            Self::SessionRevoked {
                user_id,
                session_id,
            } => json!({ "user_id": user_id.to_string(), "session_id": session_id.to_string() }),
            Self::UserSessionsRevoked { id, sessions } => {
                json!({ "id": id.to_string(), "sessions": sessions })
            }
            Self::PlatformRolesChanged { id, platform_roles } => json!({
                "id": id.to_string(),
                "platform_roles": platform_roles.iter().map(|role| role.as_str()).collect::<Vec<_>>(),
            }),
            Self::CatalogScopeAdded {
                name,
                platform_only,
                min_assurance,
            } => json!({
                "name": name.as_str(),
                "platform_only": platform_only,
                "min_assurance": min_assurance.as_str(),
            }),
            Self::ProfileSchemaChanged {
                key,
                value_type,
                user_editable,
                tenant_overridable,
            } => json!({
                "key": key.as_str(),
                "type": value_type.as_str(),
                "user_editable": user_editable,
                "tenant_overridable": tenant_overridable,
            }),
        }
    }
}

/// The CloudEvents 1.0 JSON form of SPEC §6 every transport sends (NATS, webhooks), with
/// the `tenant` extension (`_platform` for the platform's feed) and the feed position as
/// `sequence`.
pub fn cloudevent(event: &Event) -> Value {
    json!({
        "specversion": "1.0",
        "id": event.id.to_string(),
        "source": "user-engine",
        "type": event.event_type,
        "subject": event.subject,
        "time": crate::audit::format_timestamp(event.time),
        "datacontenttype": "application/json",
        "tenant": event.partition.name(),
        "sequence": event.position,
        "data": event.data,
    })
}

/// What erasure leaves of an event's `data` (SPEC §6): every personal value it carries — an
/// `email`, a profile `value` — replaced by `null`, and `"redacted": true` added; `None`
/// when the data carries none (the event stays as it is).
pub fn redacted(data: &Value) -> Option<Value> {
    let Value::Object(fields) = data else {
        return None;
    };
    let personal: Vec<&str> = ["email", "value", "user_name"]
        .into_iter()
        .filter(|field| fields.get(*field).is_some_and(|value| !value.is_null()))
        .collect();
    if personal.is_empty() {
        return None;
    }
    let mut fields = fields.clone();
    for field in personal {
        fields.insert(field.to_owned(), Value::Null);
    }
    fields.insert("redacted".to_owned(), Value::Bool(true));
    Some(Value::Object(fields))
}

/// A profile event's data: the layer, whose value (none for a tenant default), the key
/// and the value (`null` once deleted).
fn profile_json(layer: &ProfileLayer, key: &ProfileKey, value: Option<&Value>) -> Value {
    let mut data = serde_json::Map::new();
    let (name, user) = match layer {
        ProfileLayer::TenantMember { user_id } => ("tenant_member", Some(user_id)),
        ProfileLayer::TenantDefault => ("tenant_default", None),
        ProfileLayer::Platform { user_id } => ("platform", Some(user_id)),
    };
    data.insert("layer".to_owned(), json!(name));
    if let Some(user) = user {
        data.insert("user_id".to_owned(), json!(user.to_string()));
    }
    data.insert("key".to_owned(), json!(key.as_str()));
    data.insert("value".to_owned(), value.cloned().unwrap_or(Value::Null));
    Value::Object(data)
}

/// An event before the store gives it its feed position.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub id: EventId,
    pub time: OffsetDateTime,
    pub partition: Partition,
    pub event_type: &'static str,
    /// The aggregate the event is about (CloudEvents `subject`).
    pub subject: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub partition: Partition,
    /// Position in its feed, from 1, in commit order.
    pub position: u64,
    pub time: OffsetDateTime,
    pub event_type: String,
    pub subject: String,
    pub data: serde_json::Value,
}

impl Event {
    /// Places a draft at `position` in its feed.
    pub fn place(draft: EventDraft, position: u64) -> Self {
        Self {
            id: draft.id,
            partition: draft.partition,
            position,
            time: crate::audit::truncate_to_micros(draft.time),
            event_type: draft.event_type.to_owned(),
            subject: draft.subject,
            data: draft.data,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::parse("0193a7c2-0000-7000-8000-000000000001").unwrap()
    }

    #[test]
    fn each_payload_has_the_shape_and_type_of_spec_section_6() {
        let key = ProfileKey::parse("locale").unwrap();
        let cases = [
            (
                EventData::TenantUpdated {
                    display_name: None,
                    state: Some(TenantState::Suspended),
                },
                "tenant.updated",
                json!({ "state": "suspended" }),
            ),
            (
                EventData::MembershipAdded {
                    user_id: user(),
                    roles: BTreeSet::from([RoleName::tenant_admin()]),
                },
                "membership.added",
                json!({ "user_id": user().to_string(), "roles": ["tenant_admin"] }),
            ),
            (
                EventData::RoleBindingChanged {
                    role: RoleName::parse("editor").unwrap(),
                    scopes: None,
                },
                "role.binding_changed",
                json!({ "role": "editor", "scopes": null }),
            ),
            (
                EventData::ProfileValueDeleted {
                    layer: ProfileLayer::TenantDefault,
                    key: key.clone(),
                },
                "profile.value_deleted",
                json!({ "layer": "tenant_default", "key": "locale", "value": null }),
            ),
            (
                EventData::ProfileValueSet {
                    layer: ProfileLayer::TenantMember { user_id: user() },
                    key,
                    value: ProfileValue::parse(&json!("fr")).unwrap(),
                },
                "profile.value_set",
                json!({
                    "layer": "tenant_member",
                    "user_id": user().to_string(),
                    "key": "locale",
                    "value": "fr",
                }),
            ),
            (
                EventData::PlatformRolesChanged {
                    id: user(),
                    platform_roles: BTreeSet::from([PlatformRole::Root]),
                },
                "platform_roles.changed",
                json!({ "id": user().to_string(), "platform_roles": ["platform_root"] }),
            ),
        ];
        for (data, event_type, json) in cases {
            assert_eq!(data.event_type(), event_type);
            assert_eq!(data.to_json(), json, "{event_type}");
        }
    }
}
