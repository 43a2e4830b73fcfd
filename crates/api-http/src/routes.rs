//! The handlers of SPEC §4. Each one parses its input, calls one use case and maps the
//! result; no rules live here.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use domain::audit::Outcome;
use domain::ids::{
    Assurance, DisplayName, Email, KeyId, Password, ProfileKey, ProfileType, ProfileValue,
    RoleName, ScopeName, TenantId,
};
use domain::model::{AccountState, PlatformRole, SchemaEntry, TenantState, UserState};
use domain::ports::AuditFilter;
use domain::usecases::{
    AddMember, AuthzCheck, CheckSubject, CreateTenant, MemberChange, NewApiKey, NewCatalogScope,
    NewUser, TenantChange, UserRef,
};

use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::{request_id, ApiError, ApiResult};
use crate::extract::{bearer, user_id, ClientAddress, JsonBody, ListParams, Path};

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

fn created(body: impl Serialize) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn with_etag(body: impl Serialize, etag: &str) -> Response {
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

#[utoipa::path(
    post,
    path = "/v1/auth/password",
    tag = "auth",
    summary = "Log in with email and password",
    request_body = LoginBody,
    responses(
        (status = 200, description = "A new session", body = dto::Session),
        (status = 400, description = "`invalid_email`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`invalid_credentials`: unknown email or wrong password (indistinguishable)"),
        (status = 429, description = "`rate_limited`: too many attempts for this email or address", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    address: ClientAddress,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<Response> {
    let email = Email::parse(&body.email)?;
    state.check_login_rate(&email, address.0).await?;
    let session = state
        .engine
        .login(&email, &body.password, &request_id())
        .await?;
    Ok(Json(dto::Session::from(&session)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/auth/totp",
    tag = "auth",
    summary = "Raise the session to aal2 with a TOTP code",
    request_body = CodeBody,
    responses(
        (status = 200, description = "The session, now aal2", body = dto::StepUp),
        (status = 400, description = "`invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`, or `invalid_totp`: wrong or already used code"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
    ),
    security(("bearer" = [])),
)]
pub async fn step_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CodeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let session = state.engine.step_up(&caller, &body.code).await?;
    Ok(Json(dto::StepUp::from(&session)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/me/totp",
    tag = "auth",
    summary = "Start TOTP enrolment",
    responses(
        (status = 200, description = "A secret to confirm with a code", body = dto::TotpEnrolment),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: not a user session (e.g. an API key); `reason` says why"),
    ),
    security(("bearer" = [])),
)]
pub async fn enroll_totp(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let enrolment = state.engine.enroll_totp(&caller).await?;
    Ok(Json(dto::TotpEnrolment::from(&enrolment)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/me/totp/confirm",
    tag = "auth",
    summary = "Confirm TOTP enrolment with a code",
    request_body = CodeBody,
    responses(
        (status = 204, description = "TOTP is enrolled"),
        (status = 400, description = "`invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`, or `invalid_totp`: wrong code"),
        (status = 403, description = "`forbidden`: not a user session; `reason` says why"),
    ),
    security(("bearer" = [])),
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CodeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    state.engine.confirm_totp(&caller, &body.code).await?;
    Ok(no_content())
}

#[utoipa::path(
    put,
    path = "/v1/me/password",
    tag = "auth",
    summary = "Change the own password",
    request_body = PasswordChangeBody,
    responses(
        (status = 204, description = "The password is changed"),
        (status = 400, description = "`invalid_request`: new password under 12 characters, malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`, or `invalid_credentials`: wrong current password"),
        (status = 403, description = "`forbidden`: not a user session; `reason` says why"),
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    post,
    path = "/v1/auth/invitation",
    tag = "auth",
    summary = "Accept an invitation: set a password and become active",
    request_body = InvitationBody,
    responses(
        (status = 204, description = "The user is active and can log in"),
        (status = 400, description = "`invalid_request`: password under 12 characters, malformed JSON or an unknown field"),
        (status = 401, description = "`invalid_credentials`: unknown, used or expired invitation token"),
    ),
)]
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

#[utoipa::path(
    delete,
    path = "/v1/auth/session",
    tag = "auth",
    summary = "Log out (end this session)",
    responses(
        (status = 204, description = "The session is ended"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
    ),
    security(("bearer" = [])),
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    state.engine.logout(&caller).await?;
    Ok(no_content())
}

#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "auth",
    summary = "Who the caller is",
    responses(
        (status = 200, description = "The caller", body = dto::Me),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
    ),
    security(("bearer" = [])),
)]
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let me = state.engine.me(&caller).await?;
    Ok(Json(dto::Me::from(&me)).into_response())
}

// ---- tenants ---------------------------------------------------------------------

#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    summary = "Create a tenant with its first admin (`platform:tenants:write`)",
    request_body = CreateTenantBody,
    responses(
        (status = 201, description = "The tenant, its admin, and the admin's invitation token when invited", body = dto::TenantCreated),
        (status = 400, description = "`invalid_tenant_id`, `invalid_email`, `invalid_user_id`, `invalid_request` (not exactly one of email and user_id, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`: no user with that `user_id`"),
        (status = 409, description = "`tenant_exists`"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(created(dto::TenantCreated::from(&created_tenant)))
}

#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "tenants",
    summary = "The tenants the caller may see",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("after" = Option<String>, Query, description = "The `next_cursor` of the previous page (an opaque cursor)"),
    ),
    responses(
        (status = 200, description = "One page of tenants", body = dto::TenantPage),
        (status = 400, description = "`invalid_request`: bad `limit`; `invalid_cursor`: an `after` this list did not give out"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
    ),
    security(("bearer" = [])),
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let page = state
        .engine
        .list_tenants(&caller, params.after.as_deref(), params.limit)
        .await?;
    Ok(Json(dto::TenantPage::of(&page)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}",
    tag = "tenants",
    summary = "Read a tenant",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    responses(
        (status = 200, description = "The tenant", body = dto::Tenant),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let tenant = state.engine.get_tenant(&caller, &tenant).await?;
    Ok(Json(dto::Tenant::from(&tenant)).into_response())
}

#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}",
    tag = "tenants",
    summary = "Rename (`tenant:write`) or suspend/reactivate (platform) a tenant",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    request_body = PatchTenantBody,
    responses(
        (status = 200, description = "The tenant", body = dto::Tenant),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad state or display name, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(Json(dto::Tenant::from(&tenant)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/scopes",
    tag = "tenants",
    summary = "The scopes enabled for a tenant (`roles:read`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    responses(
        (status = 200, description = "The enabled scopes", body = dto::Scopes),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn get_scopes(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let enabled = state.engine.enabled_scopes(&caller, &tenant).await?;
    Ok(Json(dto::Scopes::from(&enabled)).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/scopes",
    tag = "tenants",
    summary = "Set the scopes enabled for a tenant (platform)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    request_body = ScopesBody,
    responses(
        (status = 200, description = "The enabled scopes", body = dto::Scopes),
        (status = 400, description = "`invalid_tenant_id`, `invalid_scope`, `unknown_scope`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(Json(dto::Scopes::from(&enabled)).into_response())
}

// ---- roles -------------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/roles",
    tag = "roles",
    summary = "The tenant's role bindings (`roles:read`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    responses(
        (status = 200, description = "All bindings in one page (`next_cursor` is null)", body = dto::RolePage),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn list_roles(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let bindings = state.engine.list_roles(&caller, &tenant).await?;
    Ok(Json(dto::RolePage::whole(&bindings)).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/roles/{role}",
    tag = "roles",
    summary = "Create or replace a role binding (`roles:write`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("role" = String, Path, description = "The role name", pattern = "^[a-z][a-z0-9_]{0,39}$"),
    ),
    request_body = ScopesBody,
    responses(
        (status = 200, description = "The binding", body = dto::Role),
        (status = 400, description = "`invalid_tenant_id`, `invalid_role`, `invalid_scope`, `unknown_scope`, `scope_not_enabled`, `scope_not_assignable`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(Json(dto::Role::from(&binding)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/roles/{role}",
    tag = "roles",
    summary = "Delete a role binding (`roles:write`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("role" = String, Path, description = "The role name", pattern = "^[a-z][a-z0-9_]{0,39}$"),
    ),
    responses(
        (status = 204, description = "The binding is deleted"),
        (status = 400, description = "`invalid_tenant_id`, `invalid_role`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, or `not_found`: no such role"),
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/members",
    tag = "members",
    summary = "List members (`members:read`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("after" = Option<String>, Query, description = "The `next_cursor` of the previous page (an opaque cursor)"),
    ),
    responses(
        (status = 200, description = "One page of members", body = dto::MemberPage),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad `limit`), `invalid_cursor` (an `after` this list did not give out)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn list_members(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let page = state
        .engine
        .list_members(&caller, &tenant, params.after.as_deref(), params.limit)
        .await?;
    Ok(Json(dto::MemberPage::of(&page)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/members",
    tag = "members",
    summary = "Add a member (`members:write`); a new email creates an invited user",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    request_body = AddMemberBody,
    responses(
        (status = 201, description = "The member, with a one-time `invitation_token` when the user was invited", body = dto::MemberCreated, headers(("ETag" = String, description = "The member's strong entity tag, `\"m<version>\"`"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_email`, `invalid_user_id`, `invalid_role`, `unknown_role`, `invalid_request` (not exactly one of email and user_id, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, or `user_not_found`: no user with that `user_id`"),
        (status = 409, description = "`member_exists`"),
    ),
    security(("bearer" = [])),
)]
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
    let etag = dto::member_etag(&added.member);
    let mut response = created(dto::MemberCreated::from(&added));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/members/{user}",
    tag = "members",
    summary = "Read a member (`members:read`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
    ),
    responses(
        (status = 200, description = "The member", body = dto::Member, headers(("ETag" = String, description = "The member's strong entity tag, `\"m<version>\"`"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(with_etag(
        dto::Member::from(&member),
        &dto::member_etag(&member),
    ))
}

#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}/members/{user}",
    tag = "members",
    summary = "Change a member's roles (`members:write`) or account state (`accounts:write`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
        ("If-Match" = Option<String>, Header, description = "The member's `ETag` (`\"m<version>\"`); 412 when it no longer matches"),
    ),
    request_body = PatchMemberBody,
    responses(
        (status = 200, description = "The member", body = dto::Member, headers(("ETag" = String, description = "The member's strong entity tag, `\"m<version>\"`"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `invalid_role`, `unknown_role`, `invalid_request` (bad state, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: e.g. lacking the scope, `aal2` needed to grant or revoke `tenant_admin`, `target_protected`; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
        (status = 409, description = "`last_tenant_admin`: the tenant would have no active admin"),
        (status = 412, description = "`precondition_failed`: `If-Match` does not match"),
    ),
    security(("bearer" = [])),
)]
pub async fn patch_member(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PatchMemberBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let user = user_id(&user)?;
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
        .update_member(&caller, &tenant, &user, change)
        .await?;
    Ok(with_etag(
        dto::Member::from(&member),
        &dto::member_etag(&member),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/members/{user}",
    tag = "members",
    summary = "Remove a member (`members:write`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
        ("If-Match" = Option<String>, Header, description = "The member's `ETag` (`\"m<version>\"`); 412 when it no longer matches"),
    ),
    responses(
        (status = 204, description = "The member is removed"),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
        (status = 409, description = "`last_tenant_admin`: the tenant would have no active admin"),
        (status = 412, description = "`precondition_failed`: `If-Match` does not match"),
    ),
    security(("bearer" = [])),
)]
pub async fn remove_member(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let user = user_id(&user)?;
    state
        .engine
        .remove_member(&caller, &tenant, &user, expected_version(&headers)?)
        .await?;
    Ok(no_content())
}

// ---- profiles ----------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/members/{user}/profile",
    tag = "profiles",
    summary = "A member's resolved profile (`profiles:read` or self)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
    ),
    responses(
        (status = 200, description = "The resolved profile, with the source of each value", body = dto::Profile, headers(("ETag" = String, description = "The resolved profile's strong entity tag"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
    ),
    security(("bearer" = [])),
)]
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
        dto::Profile::from(&profile),
        &dto::profile_etag(&profile),
    ))
}

fn profile_value(value: &Value) -> ApiResult<ProfileValue> {
    Ok(ProfileValue::parse(value)?)
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/members/{user}/profile/{key}",
    tag = "profiles",
    summary = "Set a member override (`profiles:write` or self)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
        ("key" = String, Path, description = "The profile key", pattern = "^[a-z][a-z0-9_]{0,39}$"),
        ("If-Match" = Option<String>, Header, description = "The profile's `ETag` (`\"p<hash>\"`); 412 when it no longer matches"),
    ),
    request_body = ValueBody,
    responses(
        (status = 200, description = "The resolved profile after the write", body = dto::Profile, headers(("ETag" = String, description = "The resolved profile's strong entity tag"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `unknown_profile_key`, `invalid_profile_value`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
        (status = 412, description = "`precondition_failed`: `If-Match` does not match"),
    ),
    security(("bearer" = [])),
)]
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
        dto::Profile::from(&profile),
        &dto::profile_etag(&profile),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/members/{user}/profile/{key}",
    tag = "profiles",
    summary = "Remove a member override (`profiles:write` or self)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
        ("key" = String, Path, description = "The profile key", pattern = "^[a-z][a-z0-9_]{0,39}$"),
        ("If-Match" = Option<String>, Header, description = "The profile's `ETag` (`\"p<hash>\"`); 412 when it no longer matches"),
    ),
    responses(
        (status = 204, description = "The override is removed"),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `unknown_profile_key`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
        (status = 412, description = "`precondition_failed`: `If-Match` does not match"),
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/profile/{key}",
    tag = "profiles",
    summary = "Set a tenant default (`tenant:write`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("key" = String, Path, description = "The profile key", pattern = "^[a-z][a-z0-9_]{0,39}$"),
    ),
    request_body = ValueBody,
    responses(
        (status = 200, description = "The stored default", body = dto::ProfileValue),
        (status = 400, description = "`invalid_tenant_id`, `unknown_profile_key`, `invalid_profile_value`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(Json(dto::ProfileValue::new(&key, &value)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/profile/{key}",
    tag = "profiles",
    summary = "Remove a tenant default (`tenant:write`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("key" = String, Path, description = "The profile key", pattern = "^[a-z][a-z0-9_]{0,39}$"),
    ),
    responses(
        (status = 204, description = "The default is removed"),
        (status = 400, description = "`invalid_tenant_id`, `unknown_profile_key`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    summary = "Create a platform user (`platform:users:write`)",
    request_body = CreateUserBody,
    responses(
        (status = 201, description = "The user, with a one-time `invitation_token` when created without a password", body = dto::UserCreated),
        (status = 400, description = "`invalid_email`, `invalid_request` (password under 12 characters, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 409, description = "`email_taken`"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(created(dto::UserCreated::from(&created_user)))
}

#[utoipa::path(
    get,
    path = "/v1/users/{user}",
    tag = "users",
    summary = "Read a platform user (`platform:users:read`)",
    params(
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
    ),
    responses(
        (status = 200, description = "The user", body = dto::User),
        (status = 400, description = "`invalid_user_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
    ),
    security(("bearer" = [])),
)]
pub async fn get_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let user = state.engine.get_user(&caller, &user).await?;
    Ok(Json(dto::User::from(&user)).into_response())
}

#[utoipa::path(
    patch,
    path = "/v1/users/{user}",
    tag = "users",
    summary = "Suspend or reactivate a platform user (`platform:users:write`)",
    params(
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
    ),
    request_body = PatchUserBody,
    responses(
        (status = 200, description = "The user", body = dto::User),
        (status = 400, description = "`invalid_user_id`, `invalid_request` (bad state, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
        (status = 409, description = "`last_platform_root`: the platform would have no active `platform_root`"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(Json(dto::User::from(&user)).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/users/{user}/platform-roles",
    tag = "users",
    summary = "Set a user's platform roles (`platform:roles:write`)",
    params(
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
    ),
    request_body = RolesBody,
    responses(
        (status = 200, description = "The user", body = dto::User),
        (status = 400, description = "`invalid_user_id`, `invalid_role`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
        (status = 409, description = "`last_platform_root`: the platform would have no active `platform_root`"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(Json(dto::User::from(&user)).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/users/{user}/profile/{key}",
    tag = "profiles",
    summary = "Set a platform profile value (self or `platform:users:write`)",
    params(
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
        ("key" = String, Path, description = "The profile key", pattern = "^[a-z][a-z0-9_]{0,39}$"),
    ),
    request_body = ValueBody,
    responses(
        (status = 200, description = "The stored value", body = dto::ProfileValue),
        (status = 400, description = "`invalid_user_id`, `unknown_profile_key`, `invalid_profile_value`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(Json(dto::ProfileValue::new(&key, &value)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/users/{user}/profile/{key}",
    tag = "profiles",
    summary = "Remove a platform profile value (self or `platform:users:write`)",
    params(
        ("user" = String, Path, description = "The user's id (a UUID v7)", format = "uuid"),
        ("key" = String, Path, description = "The profile key", pattern = "^[a-z][a-z0-9_]{0,39}$"),
    ),
    responses(
        (status = 204, description = "The value is removed"),
        (status = 400, description = "`invalid_user_id`, `unknown_profile_key`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    get,
    path = "/v1/catalog/scopes",
    tag = "catalog",
    summary = "The scope catalog",
    responses(
        (status = 200, description = "All catalog scopes in one page (`next_cursor` is null)", body = dto::CatalogScopePage),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
    ),
    security(("bearer" = [])),
)]
pub async fn list_catalog(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let catalog = state.engine.list_catalog(&caller).await?;
    Ok(Json(dto::CatalogScopePage::whole(&catalog)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/catalog/scopes",
    tag = "catalog",
    summary = "Add a catalog scope (`platform:catalog:write`)",
    request_body = NewScopeBody,
    responses(
        (status = 201, description = "The scope", body = dto::CatalogScope),
        (status = 400, description = "`invalid_scope`, `invalid_request` (bad min_assurance, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 409, description = "`scope_exists`"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(created(dto::CatalogScope::from(&scope)))
}

#[utoipa::path(
    get,
    path = "/v1/profile-schema",
    tag = "catalog",
    summary = "The profile schema",
    responses(
        (status = 200, description = "All schema entries in one page (`next_cursor` is null)", body = dto::SchemaEntryPage),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
    ),
    security(("bearer" = [])),
)]
pub async fn list_schema(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let schema = state.engine.list_schema(&caller).await?;
    Ok(Json(dto::SchemaEntryPage::whole(&schema)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/profile-schema/{key}",
    tag = "catalog",
    summary = "Read one profile schema entry",
    params(
        ("key" = String, Path, description = "The profile key", pattern = "^[a-z][a-z0-9_]{0,39}$"),
    ),
    responses(
        (status = 200, description = "The entry", body = dto::SchemaEntry),
        (status = 400, description = "`invalid_request`: malformed key"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 404, description = "`not_found`: no such key"),
    ),
    security(("bearer" = [])),
)]
pub async fn get_schema_entry(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = ProfileKey::parse(&key)?;
    let caller = state.caller(&headers).await?;
    let entry = state.engine.get_schema_entry(&caller, &key).await?;
    Ok(Json(dto::SchemaEntry::from(&entry)).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/profile-schema/{key}",
    tag = "catalog",
    summary = "Create or replace a profile schema entry (`platform:catalog:write`)",
    params(
        ("key" = String, Path, description = "The profile key", pattern = "^[a-z][a-z0-9_]{0,39}$"),
    ),
    request_body = SchemaBody,
    responses(
        (status = 200, description = "The entry", body = dto::SchemaEntry),
        (status = 400, description = "`invalid_request`: malformed key, bad type, body key differs from the path, malformed JSON, unknown field"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(Json(dto::SchemaEntry::from(&entry)).into_response())
}

// ---- API keys ----------------------------------------------------------------------

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/api-keys",
    tag = "api-keys",
    summary = "Create a tenant API key (`api_keys:write`); the key is shown once",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    request_body = NewApiKeyBody,
    responses(
        (status = 201, description = "The key, with its secret shown this once", body = dto::ApiKeyCreated),
        (status = 400, description = "`invalid_tenant_id`, `invalid_scope`, `unknown_scope`, `scope_not_enabled`, `scope_not_assignable`, `invalid_request` (bad name, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
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
    Ok(created(dto::ApiKeyCreated::from(&created_key)))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/api-keys",
    tag = "api-keys",
    summary = "List the tenant's API keys (`api_keys:write`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    responses(
        (status = 200, description = "All live keys in one page (`next_cursor` is null)", body = dto::ApiKeyPage),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let keys = state.engine.list_api_keys(&caller, &tenant).await?;
    Ok(Json(dto::ApiKeyPage::whole(&keys)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/api-keys/{key}",
    tag = "api-keys",
    summary = "Revoke an API key (`api_keys:write`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("key" = String, Path, description = "The API key's id", format = "uuid"),
    ),
    responses(
        (status = 204, description = "The key is revoked"),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, or `not_found`: no such key"),
    ),
    security(("bearer" = [])),
)]
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

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/authorize",
    tag = "authorize",
    summary = "One authorization decision (`authz:check`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    request_body = AuthorizeBody,
    responses(
        (status = 200, description = "The decision, allow or deny, with its reason and facts", body = dto::Decision),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `invalid_scope`, `invalid_request` (subject is neither user_id nor token, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn authorize(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AuthorizeBody>,
) -> ApiResult<Response> {
    let mut decisions = decide_checks(&state, &tenant, &headers, vec![body]).await?;
    let decision = decisions
        .pop()
        .ok_or_else(|| ApiError::invalid("no decision"))?;
    Ok(Json(dto::Decision::from(&decision)).into_response())
}

/// The authorize API's checks, decided: from one store read when the caller is a live
/// credential allowed `authz:check` in an existing tenant and every check names a user
/// (`Engine::authorize_fast`), else along the general path, which resolves the tenant
/// and caller in SPEC §3.1's order and records refusals.
async fn decide_checks(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    bodies: Vec<AuthorizeBody>,
) -> ApiResult<Vec<domain::authz::Decision>> {
    let parsed_tenant = TenantId::parse(tenant);
    let count = bodies.len();
    let checks = bodies.into_iter().map(check).collect::<ApiResult<Vec<_>>>();
    let decisions = match (&parsed_tenant, &checks, bearer(headers)) {
        (Ok(tenant), Ok(checks), Some(token)) => {
            state.engine.authorize_fast(tenant, token, checks).await?
        }
        _ => None,
    };
    let decisions = match decisions {
        Some(decisions) => decisions,
        None => {
            let (tenant, caller) = state.tenant_caller(tenant, headers).await?;
            if count > domain::usecases::MAX_BATCH {
                return Err(ApiError::invalid("a batch carries at most 100 checks"));
            }
            let checks = checks?;
            state
                .engine
                .authorize_batch(&caller, &tenant, checks)
                .await?
        }
    };
    for decision in &decisions {
        state.metrics.decision(decision.reason.as_str());
    }
    Ok(decisions)
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/authorize/batch",
    tag = "authorize",
    summary = "Up to 100 decisions, in order (`authz:check`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    request_body = BatchBody,
    responses(
        (status = 200, description = "The decisions in the order of the checks", body = dto::Decisions),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `invalid_scope`, `invalid_request` (over 100 checks, bad subject, malformed JSON, unknown field)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn authorize_batch(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<BatchBody>,
) -> ApiResult<Response> {
    let decisions = decide_checks(&state, &tenant, &headers, body.checks).await?;
    Ok(Json(dto::Decisions {
        decisions: decisions.iter().map(dto::Decision::from).collect(),
    })
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
    // No id or action holds NUL, and PostgreSQL cannot even compare text with one: a
    // 400, not a 500.
    let text = |name: &str| -> ApiResult<Option<String>> {
        match params.other.get(name) {
            Some(value) if value.contains('\0') => Err(ApiError::invalid(format!(
                "{name} must not contain NUL characters"
            ))),
            value => Ok(value.cloned()),
        }
    };
    Ok(AuditFilter {
        actor_id: text("actor")?,
        action: text("action")?,
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

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/audit",
    tag = "audit",
    summary = "The tenant's audit trail (`audit:read`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("after" = Option<String>, Query, description = "The `next_cursor` of the previous page (an opaque cursor)"),
        ("actor" = Option<String>, Query, description = "Only records by this actor id", pattern = "^[^\\x00]*$"),
        ("action" = Option<String>, Query, description = "Only records of this action, e.g. `member.add`", pattern = "^[^\\x00]*$"),
        ("outcome" = Option<dto::OutcomeName>, Query, description = "Only `allowed` or only `denied` records"),
        ("from" = Option<String>, Query, description = "Only records at or after this RFC 3339 time", format = DateTime),
        ("until" = Option<String>, Query, description = "Only records before this RFC 3339 time", format = DateTime),
    ),
    responses(
        (status = 200, description = "One page of audit records", body = dto::AuditRecordPage),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad `limit`, `outcome`, `from` or `until`, NUL in `actor` or `action`), `invalid_cursor` (an `after` this list did not give out)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn tenant_audit(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let filter = audit_filter(&params)?;
    let after = params.after.as_deref();
    let page = state
        .engine
        .tenant_audit(&caller, &tenant, &filter, after, params.limit)
        .await?;
    Ok(Json(dto::AuditRecordPage::of(&page)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    summary = "The platform audit trail, or with `tenant` any tenant's (`platform:audit:read`)",
    params(
        ("tenant" = Option<String>, Query, description = "Read this tenant's trail instead of the platform's", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("after" = Option<String>, Query, description = "The `next_cursor` of the previous page (an opaque cursor)"),
        ("actor" = Option<String>, Query, description = "Only records by this actor id", pattern = "^[^\\x00]*$"),
        ("action" = Option<String>, Query, description = "Only records of this action, e.g. `member.add`", pattern = "^[^\\x00]*$"),
        ("outcome" = Option<dto::OutcomeName>, Query, description = "Only `allowed` or only `denied` records"),
        ("from" = Option<String>, Query, description = "Only records at or after this RFC 3339 time", format = DateTime),
        ("until" = Option<String>, Query, description = "Only records before this RFC 3339 time", format = DateTime),
    ),
    responses(
        (status = 200, description = "One page of audit records", body = dto::AuditRecordPage),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad `limit`, `outcome`, `from` or `until`, NUL in `actor` or `action`), `invalid_cursor` (an `after` this list did not give out)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no tenant of that id"),
    ),
    security(("bearer" = [])),
)]
pub async fn platform_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let filter = audit_filter(&params)?;
    let after = params.after.as_deref();
    let page = match params.other.get("tenant") {
        None => {
            state
                .engine
                .platform_audit(&caller, &filter, after, params.limit)
                .await?
        }
        Some(tenant) => {
            let tenant = TenantId::parse(tenant)?;
            state
                .engine
                .platform_tenant_audit(&caller, &tenant, &filter, after, params.limit)
                .await?
        }
    };
    Ok(Json(dto::AuditRecordPage::of(&page)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/events",
    tag = "audit",
    summary = "The tenant's outbox event feed (`events:read`)",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("after" = Option<String>, Query, description = "The `next_cursor` of the previous page (an opaque cursor). Every page has one, the last page too: a reader polling the end of the feed resumes from it"),
    ),
    responses(
        (status = 200, description = "One page of CloudEvents", body = dto::CloudEventPage),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad `limit`), `invalid_cursor` (an `after` this list did not give out)"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn tenant_events(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let after = params.after.as_deref();
    let page = state
        .engine
        .tenant_events(&caller, &tenant, after, params.limit)
        .await?;
    Ok(Json(dto::CloudEventPage::of(&page)).into_response())
}

// ---- diagnostics -------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/diagnostics",
    tag = "tenants",
    summary = "The tenant's onboarding diagnostics (`diagnostics:read`)",
    description = "Every check of SPEC §6 and `api_keys.scopes_enabled`, each with what it \
                   saw and, unless it passed, the exact call that fixes it. The overall \
                   `status` is `not_ready` when any check fails, else `degraded` when any \
                   warns, else `ready`; the answer is 200 whatever the status. Writes \
                   nothing: the `audit.writable` probe is rolled back.",
    params(
        ("tenant" = String, Path, description = "The tenant slug", pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    ),
    responses(
        (status = 200, description = "The report", body = dto::DiagnosticsReport),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 401, description = "`unauthenticated`: no valid bearer token"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
    security(("bearer" = [])),
)]
pub async fn tenant_diagnostics(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let report = diagnostics::diagnose(&state.engine, &caller, &tenant, &state.diagnostics).await?;
    Ok(Json(dto::DiagnosticsReport::from(&report)).into_response())
}
