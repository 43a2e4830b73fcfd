//! The wire format: request bodies (unknown fields rejected) and the JSON bodies of
//! SPEC §4, mapped explicitly from the domain's entities.

use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use utoipa::ToSchema;

use domain::audit::{format_timestamp, AuditRecord};
use domain::authz::Decision;
use domain::model::{
    ApiKey, CatalogScope, Member, ResolvedProfile, RoleBinding, SchemaEntry, Tenant, User,
};
use domain::ports::Page;

/// An optional field, when present, holds a value of its type: `null` is refused like
/// any other wrong type (SPEC §2: anything else is rejected), rather than read as absent.
/// Use as `#[serde(default, deserialize_with = "present")]`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The current six-digit TOTP code.
    #[schema(pattern = "^[0-9]{6}$", example = "123456")]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeBody {
    #[schema(format = Password)]
    pub current_password: String,
    /// At least 12 characters.
    #[schema(format = Password, min_length = 12)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationBody {
    /// The one-time invitation token from the 201 body that invited the user.
    pub token: String,
    /// At least 12 characters.
    #[schema(format = Password, min_length = 12)]
    pub password: String,
}

/// `{email}` or `{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRefBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "email")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "uuid")]
    pub user_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    /// The tenant slug.
    #[schema(pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$", example = "acme")]
    pub id: String,
    pub display_name: String,
    /// The first `tenant_admin`: exactly one of `email` (created as `invited` when new)
    /// and `user_id`.
    pub admin: UserRefBody,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTenantBody {
    /// Needs `tenant:write`.
    #[serde(default, deserialize_with = "present")]
    pub display_name: Option<String>,
    /// `active` or `suspended`; platform only.
    #[serde(default, deserialize_with = "present")]
    #[schema(example = "suspended")]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopesBody {
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberBody {
    /// Exactly one of `email` and `user_id`; a new email creates an `invited` user.
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "email")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "uuid")]
    pub user_id: Option<String>,
    /// Tenant role names (default none).
    #[serde(default, deserialize_with = "present")]
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMemberBody {
    #[serde(default, deserialize_with = "present")]
    pub roles: Option<Vec<String>>,
    /// The tenant account state, `active` or `suspended` (needs `accounts:write`).
    #[serde(default, deserialize_with = "present")]
    #[schema(example = "suspended")]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueBody {
    /// A string of at most 1024 characters, a finite number or a boolean, as the
    /// profile schema types the key.
    #[schema(schema_with = crate::openapi::profile_value_schema)]
    pub value: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    #[schema(format = "email")]
    pub email: String,
    /// Without one the user is `invited` and the 201 body carries an `invitation_token`.
    #[serde(default, deserialize_with = "present")]
    #[schema(format = Password, min_length = 12)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUserBody {
    /// `active` or `suspended`.
    #[schema(example = "suspended")]
    pub state: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    /// Platform roles: `platform_root`, `platform_auditor`.
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScopeBody {
    /// Two to four `:`-separated segments of `[a-z][a-z0-9_]*`.
    #[schema(example = "docs:edit")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub platform_only: bool,
    /// `aal1` (default) or `aal2`.
    #[serde(default, deserialize_with = "present")]
    #[schema(example = "aal1")]
    pub min_assurance: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaBody {
    /// `string`, `number` or `boolean`.
    #[serde(rename = "type")]
    #[schema(example = "string")]
    pub value_type: String,
    pub user_editable: bool,
    pub tenant_overridable: bool,
    /// Accepted when it repeats the path's key, so an entry read can be written back;
    /// left out of the OpenAPI document, where it could only say "any string" and a
    /// client could not tell that only one string is accepted.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyBody {
    pub name: String,
    pub scopes: Vec<String>,
}

/// `{"user_id": …, "assurance": …}` or `{"token": …}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "uuid")]
    pub user_id: Option<String>,
    /// With `user_id`: `aal1` (default) or `aal2`.
    #[serde(default, deserialize_with = "present")]
    pub assurance: Option<String>,
    /// A session token, instead of `user_id` and `assurance`.
    #[serde(default, deserialize_with = "present")]
    pub token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    pub subject: SubjectBody,
    #[schema(example = "docs:edit")]
    pub scope: String,
    /// The user the action is aimed at, when there is one.
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "uuid")]
    pub target_user: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    #[schema(max_items = 100)]
    pub checks: Vec<AuthorizeBody>,
}

pub fn tenant(tenant: &Tenant) -> Value {
    json!({
        "id": tenant.id.as_str(),
        "display_name": tenant.display_name.as_str(),
        "state": tenant.state.as_str(),
        "created_at": format_timestamp(tenant.created_at),
        "updated_at": format_timestamp(tenant.updated_at),
    })
}

pub fn user(user: &User) -> Value {
    let roles: Vec<&str> = user
        .platform_roles
        .iter()
        .map(|role| role.as_str())
        .collect();
    json!({
        "id": user.id.to_string(),
        "email": user.email.as_str(),
        "state": user.state.as_str(),
        "platform_roles": roles,
        "has_totp": user.has_totp,
        "created_at": format_timestamp(user.created_at),
        "updated_at": format_timestamp(user.updated_at),
    })
}

pub fn member(member: &Member) -> Value {
    let roles: Vec<&str> = member.roles.iter().map(|role| role.as_str()).collect();
    json!({
        "tenant": member.tenant.as_str(),
        "user_id": member.user_id.to_string(),
        "email": member.email.as_str(),
        "roles": roles,
        "state": member.state.as_str(),
        "created_at": format_timestamp(member.created_at),
        "updated_at": format_timestamp(member.updated_at),
        "version": member.version,
    })
}

/// A member's strong `ETag`.
pub fn member_etag(member: &Member) -> String {
    format!("\"m{}\"", member.version)
}

pub fn role(binding: &RoleBinding) -> Value {
    let scopes: Vec<&str> = binding.scopes.iter().map(|scope| scope.as_str()).collect();
    json!({ "role": binding.role.as_str(), "scopes": scopes })
}

pub fn api_key(key: &ApiKey) -> Value {
    let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.as_str()).collect();
    json!({
        "id": key.id.to_string(),
        "name": key.name.as_str(),
        "scopes": scopes,
        "created_at": format_timestamp(key.created_at),
    })
}

pub fn profile(profile: &ResolvedProfile) -> Value {
    let values: serde_json::Map<String, Value> = profile
        .values
        .iter()
        .map(|(key, resolved)| {
            (
                key.as_str().to_owned(),
                json!({ "value": resolved.value.as_json(), "source": resolved.source.as_str() }),
            )
        })
        .collect();
    json!({ "values": values })
}

/// A profile's strong `ETag`.
pub fn profile_etag(profile: &ResolvedProfile) -> String {
    format!("\"p{}\"", domain::usecases::profile_etag(profile))
}

pub fn catalog_scope(scope: &CatalogScope) -> Value {
    json!({
        "name": scope.name.as_str(),
        "description": scope.description,
        "platform_only": scope.platform_only,
        "min_assurance": scope.min_assurance.as_str(),
    })
}

pub fn schema_entry(entry: &SchemaEntry) -> Value {
    json!({
        "key": entry.key.as_str(),
        "type": entry.value_type.as_str(),
        "user_editable": entry.user_editable,
        "tenant_overridable": entry.tenant_overridable,
    })
}

pub fn audit_record(record: &AuditRecord) -> Value {
    json!({
        "id": record.id.to_string(),
        "seq": record.seq,
        "at": format_timestamp(record.at),
        "tenant": record.tenant().map(|tenant| tenant.as_str()),
        "actor": { "type": record.actor.kind.as_str(), "id": record.actor.id },
        "action": record.action,
        "target": { "type": record.target_kind, "id": record.target_id },
        "outcome": record.outcome.as_str(),
        "reason": record.reason,
        "request_id": record.request_id,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    })
}

pub fn decision(decision: &Decision) -> Value {
    let facts = &decision.facts;
    let roles: Vec<&str> = facts.roles.iter().map(|role| role.as_str()).collect();
    let platform_roles: Vec<&str> = facts
        .platform_roles
        .iter()
        .map(|role| role.as_str())
        .collect();
    let mut body = json!({
        "decision": if decision.allowed { "allow" } else { "deny" },
        "reason": decision.reason.as_str(),
        "facts": {
            "tenant_state": facts.tenant_state.map(|state| state.as_str()),
            "user_state": facts.user_state.map(|state| state.as_str()),
            "platform_roles": platform_roles,
            "account_state": facts.account_state.map(|state| state.as_str()),
            "roles": roles,
            "assurance": facts.assurance.as_str(),
            "scope_enabled": facts.scope_enabled,
            "platform_only": facts.platform_only,
            "min_assurance": facts.min_assurance.map(|assurance| assurance.as_str()),
            "credential_scopes": facts.credential_scopes.as_ref().map(|scopes| scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>()),
            "target_account_state": facts.target_account_state.map(|state| state.as_str()),
        },
    });
    if let (Some(role), Some(object)) = (&decision.matched_role, body.as_object_mut()) {
        object.insert("matched_role".to_owned(), role.as_str().into());
    }
    body
}

/// `{items, next_cursor}`.
pub fn page<T>(page: &Page<T>, item: impl Fn(&T) -> Value) -> Value {
    json!({
        "items": page.items.iter().map(item).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })
}
