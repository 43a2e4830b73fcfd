//! OAuth clients of the OpenID provider (SPEC §9): the platform's
//! (`platform:catalog:write`) and each tenant's (`tenant:write`; read with
//! `tenant:read`). A confidential client's secret is shown once, at creation. And the
//! consents members gave third-party clients (`members:read` / `members:write`, or the
//! member).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::usecases::NewOAuthClient;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{ClientPath, TenantPath, UserPath};
use super::{created, no_content};
use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::ApiResult;
use crate::extract::{user_id, JsonBody, Path};

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_platform_client, list_platform_clients))
        .routes(routes!(get_platform_client, delete_platform_client))
        .routes(routes!(create_tenant_client, list_tenant_clients))
        .routes(routes!(get_tenant_client, delete_tenant_client))
        .routes(routes!(list_member_consents))
        .routes(routes!(revoke_member_consent))
}

fn created_client(created_client: &domain::usecases::CreatedOAuthClient) -> Response {
    let mut info = dto::OAuthClientInfo::from(&created_client.client);
    info.client_secret.clone_from(&created_client.secret);
    created(info)
}

#[utoipa::path(
    post,
    path = "/v1/oauth-clients",
    tag = "oauth-clients",
    summary = "Register a platform OAuth client (`platform:catalog:write`); it may sign in members of any tenant",
    request_body = NewPlatformClientBody,
    responses(
        (status = 201, description = "The client; a confidential one with its `client_secret`, shown this once", body = dto::OAuthClientInfo),
        (status = 400, description = "`invalid_request`: a bad name, type or redirect URI, a repeated URI, malformed JSON or an unknown field (a platform client has no `scopes`)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
    ),
)]
pub async fn create_platform_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewPlatformClientBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let input = NewOAuthClient::try_from(body)?;
    let client = state
        .engine
        .create_oauth_client(&caller, None, input)
        .await?;
    Ok(created_client(&client))
}

#[utoipa::path(
    get,
    path = "/v1/oauth-clients",
    tag = "oauth-clients",
    summary = "The platform's OAuth clients, oldest first (`platform:catalog:write`)",
    responses(
        (status = 200, description = "Every platform client, in one page (never a secret)", body = dto::OAuthClientPage),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
    ),
)]
pub async fn list_platform_clients(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let clients = state.engine.list_oauth_clients(&caller, None).await?;
    Ok(Json(dto::OAuthClientPage::whole(&clients)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/oauth-clients/{client}",
    tag = "oauth-clients",
    summary = "Read a platform OAuth client (`platform:catalog:write`)",
    params(ClientPath),
    responses(
        (status = 200, description = "The client (never its secret)", body = dto::OAuthClientInfo),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`not_found`: no such platform client"),
    ),
)]
pub async fn get_platform_client(
    State(state): State<AppState>,
    Path(client): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let client = state
        .engine
        .get_oauth_client(&caller, None, &client)
        .await?;
    Ok(Json(dto::OAuthClientInfo::from(&client)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/oauth-clients/{client}",
    tag = "oauth-clients",
    summary = "Delete a platform OAuth client and every code and refresh token issued to it (`platform:catalog:write`)",
    params(ClientPath),
    responses(
        (status = 204, description = "Deleted: its refresh tokens no longer work; its access tokens expire within 5 minutes"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`not_found`: no such platform client"),
    ),
)]
pub async fn delete_platform_client(
    State(state): State<AppState>,
    Path(client): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    state
        .engine
        .delete_oauth_client(&caller, None, &client)
        .await?;
    Ok(no_content())
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/oauth-clients",
    tag = "oauth-clients",
    summary = "Register a tenant OAuth client (`tenant:write`); it signs in only the tenant's members",
    params(TenantPath),
    request_body = NewTenantClientBody,
    responses(
        (status = 201, description = "The client; a confidential one with its `client_secret`, shown this once", body = dto::OAuthClientInfo),
        (status = 400, description = "`invalid_request` (bad name, type or redirect URI, scopes on a public client, malformed JSON, unknown field), `invalid_scope`, `unknown_scope`, `scope_not_enabled`, `scope_not_assignable`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope or (`exceeds_caller`) one of the client's scopes; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
)]
pub async fn create_tenant_client(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewTenantClientBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let input = NewOAuthClient::try_from(body)?;
    let client = state
        .engine
        .create_oauth_client(&caller, Some(&tenant), input)
        .await?;
    Ok(created_client(&client))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/oauth-clients",
    tag = "oauth-clients",
    summary = "The tenant's OAuth clients, oldest first (`tenant:read`)",
    params(TenantPath),
    responses(
        (status = 200, description = "Every client of the tenant, in one page (never a secret)", body = dto::OAuthClientPage),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
)]
pub async fn list_tenant_clients(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let clients = state
        .engine
        .list_oauth_clients(&caller, Some(&tenant))
        .await?;
    Ok(Json(dto::OAuthClientPage::whole(&clients)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/oauth-clients/{client}",
    tag = "oauth-clients",
    summary = "Read a tenant OAuth client (`tenant:read`)",
    params(TenantPath, ClientPath),
    responses(
        (status = 200, description = "The client (never its secret)", body = dto::OAuthClientInfo),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, or `not_found`: no such client of this tenant"),
    ),
)]
pub async fn get_tenant_client(
    State(state): State<AppState>,
    Path((tenant, client)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let client = state
        .engine
        .get_oauth_client(&caller, Some(&tenant), &client)
        .await?;
    Ok(Json(dto::OAuthClientInfo::from(&client)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/oauth-clients/{client}",
    tag = "oauth-clients",
    summary = "Delete a tenant OAuth client and every code and refresh token issued to it (`tenant:write`)",
    params(TenantPath, ClientPath),
    responses(
        (status = 204, description = "Deleted: its refresh tokens no longer work; its access tokens expire within 5 minutes"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, or `not_found`: no such client of this tenant"),
    ),
)]
pub async fn delete_tenant_client(
    State(state): State<AppState>,
    Path((tenant, client)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state
        .engine
        .delete_oauth_client(&caller, Some(&tenant), &client)
        .await?;
    Ok(no_content())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/members/{user}/consents",
    tag = "oauth-clients",
    summary = "A member's consents to third-party OAuth clients, oldest first (`members:read` or self)",
    params(TenantPath, UserPath),
    responses(
        (status = 200, description = "Every consent the member gave in this tenant, in one page", body = dto::ConsentPage),
        (status = 400, description = "`invalid_user_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
    ),
)]
pub async fn list_member_consents(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let consents = state
        .engine
        .list_consents(&caller, &tenant, &user_id(&user)?)
        .await?;
    Ok(Json(dto::ConsentPage::whole(&consents)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/members/{user}/consents/{client}",
    tag = "oauth-clients",
    summary = "Revoke a member's consent to a client, with the codes and refresh tokens it holds for them (`members:write` or self)",
    params(TenantPath, UserPath, ClientPath),
    responses(
        (status = 204, description = "Revoked: the client's refresh tokens for the member stop working and its next sign-in asks for consent again"),
        (status = 400, description = "`invalid_user_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`, or `not_found`: the member gave the client no consent"),
    ),
)]
pub async fn revoke_member_consent(
    State(state): State<AppState>,
    Path((tenant, user, client)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state
        .engine
        .revoke_consent(&caller, &tenant, &user_id(&user)?, &client)
        .await?;
    Ok(no_content())
}
