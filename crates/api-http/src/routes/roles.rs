//! Tenant role bindings.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ids::RoleName;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{RolePath, TenantPath};
use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::ApiResult;
use crate::extract::{JsonBody, Path};

use super::no_content;

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_roles))
        .routes(routes!(put_role, delete_role))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/roles",
    tag = "roles",
    summary = "The tenant's role bindings (`roles:read`)",
    params(
        TenantPath,
    ),
    responses(
        (status = 200, description = "All bindings in one page (`next_cursor` is null)", body = dto::RolePage),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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
        TenantPath,
        RolePath,
    ),
    request_body = ScopesBody,
    responses(
        (status = 200, description = "The binding", body = dto::Role),
        (status = 400, description = "`invalid_tenant_id`, `invalid_role`, `invalid_scope`, `unknown_scope`, `scope_not_enabled`, `scope_not_assignable`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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
        .put_role(&caller, &tenant, &role, body.scope_names()?)
        .await?;
    Ok(Json(dto::Role::from(&binding)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/roles/{role}",
    tag = "roles",
    summary = "Delete a role binding (`roles:write`)",
    params(
        TenantPath,
        RolePath,
    ),
    responses(
        (status = 204, description = "The binding is deleted"),
        (status = 400, description = "`invalid_tenant_id`, `invalid_role`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, or `not_found`: no such role"),
    ),
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
