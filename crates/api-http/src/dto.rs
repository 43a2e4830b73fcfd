//! The wire format: request bodies (unknown fields rejected) and the JSON bodies of
//! SPEC §4, mapped explicitly from the domain's entities.

use serde::Deserialize;
use serde_json::{json, Value};

use domain::audit::{format_timestamp, AuditRecord};
use domain::authz::Decision;
use domain::model::{
    ApiKey, CatalogScope, Member, ResolvedProfile, RoleBinding, SchemaEntry, Tenant, User,
};
use domain::ports::Page;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    pub code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeBody {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationBody {
    pub token: String,
    pub password: String,
}

/// `{email}` or `{user_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRefBody {
    pub email: Option<String>,
    pub user_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    pub id: String,
    pub display_name: String,
    pub admin: UserRefBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchTenantBody {
    pub display_name: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopesBody {
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMemberBody {
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMemberBody {
    pub roles: Option<Vec<String>>,
    pub state: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueBody {
    pub value: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    pub email: String,
    pub password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUserBody {
    pub state: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewScopeBody {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub platform_only: bool,
    pub min_assurance: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaBody {
    #[serde(rename = "type")]
    pub value_type: String,
    pub user_editable: bool,
    pub tenant_overridable: bool,
    /// Accepted when it repeats the path's key.
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyBody {
    pub name: String,
    pub scopes: Vec<String>,
}

/// `{"user_id": …, "assurance": …}` or `{"token": …}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    pub user_id: Option<String>,
    pub assurance: Option<String>,
    pub token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    pub subject: SubjectBody,
    pub scope: String,
    pub target_user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
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
