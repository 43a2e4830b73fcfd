//! The scope catalog and the profile schema.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ids::ProfileKey;
use domain::usecases::NewCatalogScope;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::ProfileKeyPath;
use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::ApiResult;
use crate::extract::{JsonBody, Path};

use super::created;

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_catalog, add_catalog_scope))
        .routes(routes!(list_schema))
        .routes(routes!(get_schema_entry, put_schema_entry))
}

#[utoipa::path(
    get,
    path = "/v1/catalog/scopes",
    tag = "catalog",
    summary = "The scope catalog",
    responses(
        (status = 200, description = "All catalog scopes in one page (`next_cursor` is null)", body = dto::CatalogScopePage),
    ),
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
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 409, description = "`scope_exists`"),
    ),
)]
pub async fn add_catalog_scope(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewScopeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let input = NewCatalogScope::try_from(body)?;
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
    ),
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
        ProfileKeyPath,
    ),
    responses(
        (status = 200, description = "The entry", body = dto::SchemaEntry),
        (status = 400, description = "`invalid_request`: malformed key"),
        (status = 404, description = "`not_found`: no such key"),
    ),
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
        ProfileKeyPath,
    ),
    request_body = SchemaBody,
    responses(
        (status = 200, description = "The entry", body = dto::SchemaEntry),
        (status = 400, description = "`invalid_request`: malformed key, bad type, body key differs from the path, malformed JSON, unknown field"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
    ),
)]
pub async fn put_schema_entry(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SchemaBody>,
) -> ApiResult<Response> {
    let key = ProfileKey::parse(&key)?;
    let caller = state.caller(&headers).await?;
    let entry = body.entry(key)?;
    let entry = state.engine.put_schema_entry(&caller, entry).await?;
    Ok(Json(dto::SchemaEntry::from(&entry)).into_response())
}
