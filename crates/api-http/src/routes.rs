//! The handlers of SPEC §4. Each one parses its input, calls one use case and maps the
//! result; no rules live here.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use domain::audit::{format_timestamp, Outcome};
use domain::ids::{
    Assurance, DisplayName, Email, KeyId, Password, ProfileKey, ProfileType, ProfileValue,
    RoleName, ScopeName, TenantId,
};
use domain::model::{AccountState, PlatformRole, SchemaEntry, TenantState, UserState};
use domain::ports::AuditFilter;
use domain::usecases::{
    parse_position, AddMember, AuthzCheck, CheckSubject, CreateTenant, MemberChange, NewApiKey,
    NewCatalogScope, NewUser, TenantChange, UserRef,
};

use crate::app::AppState;
use crate::dto::{self, *};
use crate::errors::{request_id, ApiError, ApiResult};
use crate::extract::{user_id, ClientAddress, JsonBody, ListParams};

fn roles(names: &[String]) -> ApiResult<BTreeSet<RoleName>> {
    names
        .iter()
        .map(|name| RoleName::parse(name).map_err(ApiError::from))
        .collect()
}

fn scopes(names: &[String]) -> ApiResult<BTreeSet<ScopeName>> {
    names
        .iter()
        .map(|name| ScopeName::parse(name).map_err(ApiError::from))
        .collect()
}

fn user_ref(email: Option<&str>, user: Option<&str>) -> ApiResult<UserRef> {
    match (email, user) {
        (Some(email), None) => Ok(UserRef::Email(Email::parse(email)?)),
        (None, Some(user)) => Ok(UserRef::Id(user_id(user)?)),
        _ => Err(ApiError::invalid("give exactly one of email and user_id")),
    }
}

fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn with_etag(body: Value, etag: &str) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The `If-Match` header, without `W/` and surrounding quotes kept as sent.
fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().trim_start_matches("W/").to_owned())
        .filter(|value| value != "*")
}

/// A member's version from an `If-Match` of the form `"m<version>"` (412 otherwise).
fn expected_version(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    match if_match(headers) {
        None => Ok(None),
        Some(tag) => tag
            .trim_matches('"')
            .strip_prefix('m')
            .and_then(|version| version.parse().ok())
            .map(Some)
            .ok_or_else(|| domain::Error::PreconditionFailed.into()),
    }
}

/// A profile ETag from `If-Match` (`"p<hash>"`), as the domain compares it.
fn expected_profile(headers: &HeaderMap) -> Option<String> {
    if_match(headers).map(|tag| tag.trim_matches('"').trim_start_matches('p').to_owned())
}

// ---- authentication --------------------------------------------------------------

pub async fn login(
    State(state): State<AppState>,
    address: ClientAddress,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<Response> {
    let email = Email::parse(&body.email)?;
    state.check_login_rate(&email, address.0)?;
    let session = state
        .engine
        .login(&email, &body.password, &request_id())
        .await?;
    Ok(Json(json!({
        "token": session.token,
        "expires_at": format_timestamp(session.expires_at),
        "assurance": session.assurance.as_str(),
    }))
    .into_response())
}

pub async fn step_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CodeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let session = state.engine.step_up(&caller, &body.code).await?;
    Ok(Json(json!({
        "expires_at": format_timestamp(session.expires_at),
        "assurance": session.assurance.as_str(),
        "aal2_until": session.aal2_until.map(format_timestamp),
    }))
    .into_response())
}

pub async fn enroll_totp(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let enrolment = state.engine.enroll_totp(&caller).await?;
    Ok(
        Json(json!({ "secret": enrolment.secret, "otpauth_uri": enrolment.otpauth_uri }))
            .into_response(),
    )
}

pub async fn confirm_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CodeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    state.engine.confirm_totp(&caller, &body.code).await?;
    Ok(no_content())
}

pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordChangeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let new_password = Password::parse(&body.new_password)?;
    state
        .engine
        .change_password(&caller, &body.current_password, &new_password)
        .await?;
    Ok(no_content())
}

pub async fn accept_invitation(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<InvitationBody>,
) -> ApiResult<Response> {
    let password = Password::parse(&body.password)?;
    state
        .engine
        .accept_invitation(&body.token, &password, &request_id())
        .await?;
    Ok(no_content())
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    state.engine.logout(&caller).await?;
    Ok(no_content())
}

pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let me = state.engine.me(&caller).await?;
    let platform_roles: Vec<&str> = me
        .user
        .as_ref()
        .map(|user| {
            user.platform_roles
                .iter()
                .map(PlatformRole::as_str)
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "user": me.user.as_ref().map(dto::user),
        "api_key": me.api_key.as_ref().map(dto::api_key),
        "platform_roles": platform_roles,
        "assurance": me.assurance.as_str(),
        "memberships": me.memberships.iter().map(dto::member).collect::<Vec<_>>(),
    }))
    .into_response())
}

// ---- tenants ---------------------------------------------------------------------

pub async fn create_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateTenantBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let input = CreateTenant {
        id: TenantId::parse(&body.id)?,
        display_name: DisplayName::parse(&body.display_name)?,
        admin: user_ref(body.admin.email.as_deref(), body.admin.user_id.as_deref())?,
    };
    let created_tenant = state.engine.create_tenant(&caller, input).await?;
    let mut body = dto::tenant(&created_tenant.tenant);
    if let Some(object) = body.as_object_mut() {
        object.insert("admin".to_owned(), dto::member(&created_tenant.admin));
        if let Some(token) = created_tenant.invitation_token {
            object.insert("invitation_token".to_owned(), token.into());
        }
    }
    Ok(created(body))
}

pub async fn list_tenants(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let after = params
        .after
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .map_err(|_| ApiError::invalid("after must be a cursor from a previous page"))?;
    let page = state
        .engine
        .list_tenants(&caller, after.as_ref(), params.limit)
        .await?;
    Ok(Json(dto::page(&page, dto::tenant)).into_response())
}

pub async fn get_tenant(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let tenant = state.engine.get_tenant(&caller, &tenant).await?;
    Ok(Json(dto::tenant(&tenant)).into_response())
}

pub async fn patch_tenant(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PatchTenantBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let change = TenantChange {
        display_name: body
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()?,
        state: body
            .state
            .as_deref()
            .map(|text| {
                TenantState::parse(text)
                    .ok_or_else(|| ApiError::invalid("state must be active or suspended"))
            })
            .transpose()?,
    };
    let tenant = state.engine.update_tenant(&caller, &tenant, change).await?;
    Ok(Json(dto::tenant(&tenant)).into_response())
}

pub async fn get_scopes(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let enabled = state.engine.enabled_scopes(&caller, &tenant).await?;
    let names: Vec<&str> = enabled.iter().map(ScopeName::as_str).collect();
    Ok(Json(json!({ "scopes": names })).into_response())
}

pub async fn put_scopes(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ScopesBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let enabled = state
        .engine
        .set_enabled_scopes(&caller, &tenant, scopes(&body.scopes)?)
        .await?;
    let names: Vec<&str> = enabled.iter().map(ScopeName::as_str).collect();
    Ok(Json(json!({ "scopes": names })).into_response())
}

// ---- roles -------------------------------------------------------------------------

pub async fn list_roles(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let bindings = state.engine.list_roles(&caller, &tenant).await?;
    Ok(Json(json!({
        "items": bindings.iter().map(dto::role).collect::<Vec<_>>(),
        "next_cursor": null,
    }))
    .into_response())
}

pub async fn put_role(
    State(state): State<AppState>,
    Path((tenant, role)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ScopesBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let role = RoleName::parse(&role)?;
    let binding = state
        .engine
        .put_role(&caller, &tenant, &role, scopes(&body.scopes)?)
        .await?;
    Ok(Json(dto::role(&binding)).into_response())
}

pub async fn delete_role(
    State(state): State<AppState>,
    Path((tenant, role)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let role = RoleName::parse(&role)?;
    state.engine.delete_role(&caller, &tenant, &role).await?;
    Ok(no_content())
}

// ---- members -----------------------------------------------------------------------

pub async fn list_members(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let after = params
        .after
        .as_deref()
        .map(user_id)
        .transpose()
        .map_err(|_| ApiError::invalid("after must be a cursor from a previous page"))?;
    let page = state
        .engine
        .list_members(&caller, &tenant, after.as_ref(), params.limit)
        .await?;
    Ok(Json(dto::page(&page, dto::member)).into_response())
}

pub async fn add_member(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AddMemberBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let input = AddMember {
        user: user_ref(body.email.as_deref(), body.user_id.as_deref())?,
        roles: roles(body.roles.as_deref().unwrap_or_default())?,
    };
    let added = state.engine.add_member(&caller, &tenant, input).await?;
    let mut body = dto::member(&added.member);
    if let (Some(token), Some(object)) = (added.invitation_token, body.as_object_mut()) {
        object.insert("invitation_token".to_owned(), token.into());
    }
    let etag = dto::member_etag(&added.member);
    let mut response = created(body);
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

pub async fn get_member(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let member = state
        .engine
        .get_member(&caller, &tenant, &user_id(&user)?)
        .await?;
    Ok(with_etag(dto::member(&member), &dto::member_etag(&member)))
}

pub async fn patch_member(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PatchMemberBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let change = MemberChange {
        roles: body.roles.as_deref().map(roles).transpose()?,
        state: body
            .state
            .as_deref()
            .map(|text| {
                AccountState::parse(text)
                    .ok_or_else(|| ApiError::invalid("state must be active or suspended"))
            })
            .transpose()?,
        expected_version: expected_version(&headers)?,
    };
    let member = state
        .engine
        .update_member(&caller, &tenant, &user_id(&user)?, change)
        .await?;
    Ok(with_etag(dto::member(&member), &dto::member_etag(&member)))
}

pub async fn remove_member(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state
        .engine
        .remove_member(
            &caller,
            &tenant,
            &user_id(&user)?,
            expected_version(&headers)?,
        )
        .await?;
    Ok(no_content())
}

// ---- profiles ----------------------------------------------------------------------

pub async fn member_profile(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let profile = state
        .engine
        .member_profile(&caller, &tenant, &user_id(&user)?)
        .await?;
    Ok(with_etag(
        dto::profile(&profile),
        &dto::profile_etag(&profile),
    ))
}

fn profile_value(value: &Value) -> ApiResult<ProfileValue> {
    Ok(ProfileValue::parse(value)?)
}

pub async fn put_member_value(
    State(state): State<AppState>,
    Path((tenant, user, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ValueBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let profile = state
        .engine
        .write_member_value(
            &caller,
            &tenant,
            &user_id(&user)?,
            &ProfileKey::parse(&key)?,
            Some(profile_value(&body.value)?),
            expected_profile(&headers).as_deref(),
        )
        .await?;
    Ok(with_etag(
        dto::profile(&profile),
        &dto::profile_etag(&profile),
    ))
}

pub async fn delete_member_value(
    State(state): State<AppState>,
    Path((tenant, user, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state
        .engine
        .write_member_value(
            &caller,
            &tenant,
            &user_id(&user)?,
            &ProfileKey::parse(&key)?,
            None,
            expected_profile(&headers).as_deref(),
        )
        .await?;
    Ok(no_content())
}

pub async fn put_tenant_default(
    State(state): State<AppState>,
    Path((tenant, key)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ValueBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let key = ProfileKey::parse(&key)?;
    let value = profile_value(&body.value)?;
    state
        .engine
        .write_tenant_default(&caller, &tenant, &key, Some(value.clone()))
        .await?;
    Ok(Json(json!({ "key": key.as_str(), "value": value.as_json() })).into_response())
}

pub async fn delete_tenant_default(
    State(state): State<AppState>,
    Path((tenant, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state
        .engine
        .write_tenant_default(&caller, &tenant, &ProfileKey::parse(&key)?, None)
        .await?;
    Ok(no_content())
}

// ---- users -------------------------------------------------------------------------

pub async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateUserBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let input = NewUser {
        email: Email::parse(&body.email)?,
        password: body.password.as_deref().map(Password::parse).transpose()?,
    };
    let created_user = state.engine.create_user(&caller, input).await?;
    let mut body = dto::user(&created_user.user);
    if let (Some(token), Some(object)) = (created_user.invitation_token, body.as_object_mut()) {
        object.insert("invitation_token".to_owned(), token.into());
    }
    Ok(created(body))
}

pub async fn get_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let user = state.engine.get_user(&caller, &user).await?;
    Ok(Json(dto::user(&user)).into_response())
}

pub async fn patch_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PatchUserBody>,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let new_state = UserState::parse(&body.state)
        .ok_or_else(|| ApiError::invalid("state must be active or suspended"))?;
    let user = state
        .engine
        .set_user_state(&caller, &user, new_state)
        .await?;
    Ok(Json(dto::user(&user)).into_response())
}

pub async fn put_platform_roles(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RolesBody>,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let granted = body
        .roles
        .iter()
        .map(|role| {
            PlatformRole::parse(role).ok_or_else(|| ApiError::from(domain::ids::FormatError::Role))
        })
        .collect::<ApiResult<BTreeSet<_>>>()?;
    let user = state
        .engine
        .set_platform_roles(&caller, &user, granted)
        .await?;
    Ok(Json(dto::user(&user)).into_response())
}

pub async fn put_platform_value(
    State(state): State<AppState>,
    Path((user, key)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ValueBody>,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let key = ProfileKey::parse(&key)?;
    let value = profile_value(&body.value)?;
    state
        .engine
        .write_platform_value(&caller, &user, &key, Some(value.clone()))
        .await?;
    Ok(Json(json!({ "key": key.as_str(), "value": value.as_json() })).into_response())
}

pub async fn delete_platform_value(
    State(state): State<AppState>,
    Path((user, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    state
        .engine
        .write_platform_value(&caller, &user, &ProfileKey::parse(&key)?, None)
        .await?;
    Ok(no_content())
}

// ---- catalog and schema ------------------------------------------------------------

pub async fn list_catalog(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let catalog = state.engine.list_catalog(&caller).await?;
    Ok(Json(json!({
        "items": catalog.iter().map(dto::catalog_scope).collect::<Vec<_>>(),
        "next_cursor": null,
    }))
    .into_response())
}

pub async fn add_catalog_scope(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewScopeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let input = NewCatalogScope {
        name: ScopeName::parse(&body.name)?,
        description: body.description,
        platform_only: body.platform_only,
        min_assurance: body
            .min_assurance
            .as_deref()
            .map(Assurance::parse)
            .transpose()?
            .unwrap_or(Assurance::Aal1),
    };
    let scope = state.engine.add_catalog_scope(&caller, input).await?;
    Ok(created(dto::catalog_scope(&scope)))
}

pub async fn list_schema(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let schema = state.engine.list_schema(&caller).await?;
    Ok(Json(json!({
        "items": schema.iter().map(dto::schema_entry).collect::<Vec<_>>(),
        "next_cursor": null,
    }))
    .into_response())
}

pub async fn get_schema_entry(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = ProfileKey::parse(&key)?;
    let caller = state.caller(&headers).await?;
    let entry = state.engine.get_schema_entry(&caller, &key).await?;
    Ok(Json(dto::schema_entry(&entry)).into_response())
}

pub async fn put_schema_entry(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SchemaBody>,
) -> ApiResult<Response> {
    let key = ProfileKey::parse(&key)?;
    let caller = state.caller(&headers).await?;
    if body
        .key
        .as_deref()
        .is_some_and(|body_key| body_key != key.as_str())
    {
        return Err(ApiError::invalid("the body's key differs from the path's"));
    }
    let entry = SchemaEntry {
        key,
        value_type: ProfileType::parse(&body.value_type)?,
        user_editable: body.user_editable,
        tenant_overridable: body.tenant_overridable,
    };
    let entry = state.engine.put_schema_entry(&caller, entry).await?;
    Ok(Json(dto::schema_entry(&entry)).into_response())
}

// ---- API keys ----------------------------------------------------------------------

pub async fn create_api_key(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewApiKeyBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let input = NewApiKey {
        name: DisplayName::parse(&body.name)?,
        scopes: scopes(&body.scopes)?,
    };
    let created_key = state.engine.create_api_key(&caller, &tenant, input).await?;
    let mut body = dto::api_key(&created_key.key);
    if let Some(object) = body.as_object_mut() {
        object.insert("key".to_owned(), created_key.secret.into());
    }
    Ok(created(body))
}

pub async fn list_api_keys(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let keys = state.engine.list_api_keys(&caller, &tenant).await?;
    Ok(Json(json!({
        "items": keys.iter().map(dto::api_key).collect::<Vec<_>>(),
        "next_cursor": null,
    }))
    .into_response())
}

pub async fn revoke_api_key(
    State(state): State<AppState>,
    Path((tenant, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let key = KeyId::parse(&key).map_err(|_| ApiError::from(domain::Error::NotFound))?;
    state.engine.revoke_api_key(&caller, &tenant, &key).await?;
    Ok(no_content())
}

// ---- authorize -----------------------------------------------------------------------

fn check(body: AuthorizeBody) -> ApiResult<AuthzCheck> {
    let subject = match (body.subject.user_id, body.subject.token) {
        (Some(user), None) => CheckSubject::User {
            user_id: user_id(&user)?,
            assurance: body
                .subject
                .assurance
                .as_deref()
                .map(Assurance::parse)
                .transpose()?
                .unwrap_or(Assurance::Aal1),
        },
        (None, Some(token)) if body.subject.assurance.is_none() => CheckSubject::Token(token),
        _ => {
            return Err(ApiError::invalid(
                "subject is {\"user_id\", \"assurance\"} or {\"token\"}",
            ))
        }
    };
    Ok(AuthzCheck {
        subject,
        scope: ScopeName::parse(&body.scope)?,
        target: body.target_user.as_deref().map(user_id).transpose()?,
    })
}

pub async fn authorize(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AuthorizeBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let decision = state
        .engine
        .authorize(&caller, &tenant, check(body)?)
        .await?;
    state.metrics.decision(decision.reason.as_str());
    Ok(Json(dto::decision(&decision)).into_response())
}

pub async fn authorize_batch(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<BatchBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    if body.checks.len() > domain::usecases::MAX_BATCH {
        return Err(ApiError::invalid("a batch carries at most 100 checks"));
    }
    let checks = body
        .checks
        .into_iter()
        .map(check)
        .collect::<ApiResult<Vec<_>>>()?;
    let decisions = state
        .engine
        .authorize_batch(&caller, &tenant, checks)
        .await?;
    for decision in &decisions {
        state.metrics.decision(decision.reason.as_str());
    }
    Ok(Json(json!({
        "decisions": decisions.iter().map(dto::decision).collect::<Vec<_>>(),
    }))
    .into_response())
}

// ---- audit and events --------------------------------------------------------------

fn audit_filter(params: &ListParams) -> ApiResult<AuditFilter> {
    let time = |name: &str| -> ApiResult<Option<time::OffsetDateTime>> {
        params
            .other
            .get(name)
            .map(|text| {
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| ApiError::invalid(format!("{name} must be an RFC 3339 time")))
            })
            .transpose()
    };
    Ok(AuditFilter {
        actor_id: params.other.get("actor").cloned(),
        action: params.other.get("action").cloned(),
        outcome: match params.other.get("outcome").map(String::as_str) {
            None => None,
            Some("allowed") => Some(Outcome::Allowed),
            Some("denied") => Some(Outcome::Denied),
            Some(_) => return Err(ApiError::invalid("outcome must be allowed or denied")),
        },
        from: time("from")?,
        until: time("until")?,
    })
}

pub async fn tenant_audit(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let filter = audit_filter(&params)?;
    let after = parse_position(params.after.as_deref())?;
    let page = state
        .engine
        .tenant_audit(&caller, &tenant, &filter, after, params.limit)
        .await?;
    Ok(Json(dto::page(&page, dto::audit_record)).into_response())
}

pub async fn platform_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let filter = audit_filter(&params)?;
    let after = parse_position(params.after.as_deref())?;
    let page = state
        .engine
        .platform_audit(&caller, &filter, after, params.limit)
        .await?;
    Ok(Json(dto::page(&page, dto::audit_record)).into_response())
}

pub async fn tenant_events(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let after = parse_position(params.after.as_deref())?;
    let page = state
        .engine
        .tenant_events(&caller, &tenant, after, params.limit)
        .await?;
    Ok(Json(dto::page(&page, |event| event.to_cloudevent())).into_response())
}
