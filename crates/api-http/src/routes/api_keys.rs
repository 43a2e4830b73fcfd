//! Tenant API keys: created with their secret shown once, listed, revoked.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ids::KeyId;
use domain::usecases::NewApiKey;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{ApiKeyPath, TenantPath};
use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path};

use super::{created, no_content};

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/api-keys",
    tag = "api-keys",
    summary = "Create a tenant API key (`api_keys:write`); the key is shown once",
    params(
        TenantPath,
    ),
    request_body = NewApiKeyBody,
    responses(
        (status = 201, description = "The key, with its secret shown this once", body = dto::ApiKeyCreated),
        (status = 400, description = "`invalid_tenant_id`, `invalid_scope`, `unknown_scope`, `scope_not_enabled`, `scope_not_assignable`, `invalid_request` (bad name, malformed JSON, unknown field)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewApiKeyBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let input = NewApiKey::try_from(body)?;
    let created_key = state.engine.create_api_key(&caller, &tenant, input).await?;
    Ok(created(dto::ApiKeyCreated::from(&created_key)))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/api-keys",
    tag = "api-keys",
    summary = "List the tenant's API keys (`api_keys:write`)",
    params(
        TenantPath,
    ),
    responses(
        (status = 200, description = "All live keys in one page (`next_cursor` is null)", body = dto::ApiKeyPage),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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
        TenantPath,
        ApiKeyPath,
    ),
    responses(
        (status = 204, description = "The key is revoked"),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, or `not_found`: no such key"),
    ),
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
