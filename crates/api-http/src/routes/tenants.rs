//! Tenants and their enabled scopes.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::usecases::{CreateTenant, TenantChange};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{PageQuery, TenantPath};
use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::ApiResult;
use crate::extract::{JsonBody, ListParams, Path};

use super::created;

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(get_tenant, patch_tenant))
        .routes(routes!(get_scopes, put_scopes))
}

#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    summary = "Create a tenant with its first admin (`platform:tenants:write`)",
    request_body = CreateTenantBody,
    responses(
        (status = 201, description = "The tenant, its admin, and the admin's invitation token when invited", body = dto::TenantCreated),
        (status = 400, description = "`invalid_tenant_id`, `invalid_email`, `invalid_user_id`, `invalid_request` (not exactly one of email and user_id, malformed JSON, unknown field)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`: no user with that `user_id`"),
        (status = 409, description = "`tenant_exists`"),
    ),
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateTenantBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let input = CreateTenant::try_from(body)?;
    let created_tenant = state.engine.create_tenant(&caller, input).await?;
    Ok(created(dto::TenantCreated::from(&created_tenant)))
}

#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "tenants",
    summary = "The tenants the caller may see",
    params(
        PageQuery,
    ),
    responses(
        (status = 200, description = "One page of tenants", body = dto::TenantPage),
        (status = 400, description = "`invalid_request`: bad `limit`; `invalid_cursor`: an `after` this list did not give out"),
    ),
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
        TenantPath,
    ),
    responses(
        (status = 200, description = "The tenant", body = dto::Tenant),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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
        TenantPath,
    ),
    request_body = PatchTenantBody,
    responses(
        (status = 200, description = "The tenant", body = dto::Tenant),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad state or display name, malformed JSON, unknown field)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
        (status = 409, description = "`last_tenant_admin`: reactivating a tenant that has no active admin (its admins went while it was suspended)"),
    ),
)]
pub async fn patch_tenant(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PatchTenantBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let change = TenantChange::try_from(body)?;
    let tenant = state.engine.update_tenant(&caller, &tenant, change).await?;
    Ok(Json(dto::Tenant::from(&tenant)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/scopes",
    tag = "tenants",
    summary = "The scopes enabled for a tenant (`roles:read`)",
    params(
        TenantPath,
    ),
    responses(
        (status = 200, description = "The enabled scopes", body = dto::Scopes),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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
        TenantPath,
    ),
    request_body = ScopesBody,
    responses(
        (status = 200, description = "The enabled scopes", body = dto::Scopes),
        (status = 400, description = "`invalid_tenant_id`, `invalid_scope`, `unknown_scope`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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
        .set_enabled_scopes(&caller, &tenant, body.scope_names()?)
        .await?;
    Ok(Json(dto::Scopes::from(&enabled)).into_response())
}
