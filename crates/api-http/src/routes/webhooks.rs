//! A tenant's webhooks (SPEC §6): create or replace, read, list, delete, rotate the
//! secret, and list a hook's deliveries.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::ApiResult;
use crate::extract::{JsonBody, ListParams, Path};

use super::no_content;
use super::params::{PageQuery, TenantPath, WebhookPath};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_webhooks))
        .routes(routes!(put_webhook, get_webhook, delete_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(list_deliveries))
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/webhooks/{name}",
    tag = "webhooks",
    summary = "Create or replace a webhook (`tenant:write`); a new one's secret is shown once",
    params(
        TenantPath,
        WebhookPath,
    ),
    request_body = WebhookBody,
    responses(
        (status = 201, description = "Created: with its signing `secret`, shown this once; it is sent the events committed from now on", body = dto::WebhookInfo),
        (status = 200, description = "Replaced (url and types); the secret and the deliveries so far stay", body = dto::WebhookInfo),
        (status = 400, description = "`invalid_request`: a bad name, url (not https, an internal address) or event type, malformed JSON or an unknown field"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
    ),
)]
pub async fn put_webhook(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<WebhookBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let put = state
        .engine
        .put_webhook(
            &caller,
            &tenant,
            &name,
            &body.url,
            body.types.into_iter().collect(),
        )
        .await?;
    let mut info = dto::WebhookInfo::from(&put.hook);
    let status = if put.secret.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    info.secret = put.secret;
    Ok((status, Json(info)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/webhooks/{name}",
    tag = "webhooks",
    summary = "Read a webhook (`tenant:read`)",
    params(
        TenantPath,
        WebhookPath,
    ),
    responses(
        (status = 200, description = "The webhook (never its secret)", body = dto::WebhookInfo),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`not_found`: no such webhook"),
    ),
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let hook = state.engine.get_webhook(&caller, &tenant, &name).await?;
    Ok(Json(dto::WebhookInfo::from(&hook)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/webhooks/{name}",
    tag = "webhooks",
    summary = "Delete a webhook and its deliveries (`tenant:write`)",
    params(
        TenantPath,
        WebhookPath,
    ),
    responses(
        (status = 204, description = "Deleted; nothing more is sent to it"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`not_found`: no such webhook"),
    ),
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state.engine.delete_webhook(&caller, &tenant, &name).await?;
    Ok(no_content())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/webhooks",
    tag = "webhooks",
    summary = "The tenant's webhooks by name (`tenant:read`)",
    params(
        TenantPath,
    ),
    responses(
        (status = 200, description = "Every webhook of the tenant, in one page", body = dto::WebhookPage),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
    ),
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let hooks = state.engine.list_webhooks(&caller, &tenant).await?;
    Ok(Json(dto::WebhookPage::whole(&hooks)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/webhooks/{name}/secret",
    tag = "webhooks",
    summary = "Give a webhook a new signing secret, shown once (`tenant:write`)",
    params(
        TenantPath,
        WebhookPath,
    ),
    responses(
        (status = 200, description = "The new secret; deliveries from now on are signed with it alone", body = dto::WebhookSecret),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`not_found`: no such webhook"),
    ),
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let secret = state
        .engine
        .rotate_webhook_secret(&caller, &tenant, &name)
        .await?;
    Ok(Json(dto::WebhookSecret { secret }).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/webhooks/{name}/deliveries",
    tag = "webhooks",
    summary = "A webhook's deliveries in feed order (`tenant:read`)",
    params(
        TenantPath,
        WebhookPath,
        PageQuery,
    ),
    responses(
        (status = 200, description = "One page of deliveries, by feed position", body = dto::DeliveryPage),
        (status = 400, description = "`invalid_cursor`, or `invalid_request`: a bad limit"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`not_found`: no such webhook"),
    ),
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    params: ListParams,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let page = state
        .engine
        .list_deliveries(
            &caller,
            &tenant,
            &name,
            params.after.as_deref(),
            params.limit,
        )
        .await?;
    Ok(Json(dto::DeliveryPage::of(&page)).into_response())
}
