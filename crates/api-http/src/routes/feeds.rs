//! Audit trails (tenant and platform) and the tenant's outbox event feed.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::audit::Outcome;
use domain::ids::TenantId;
use domain::ports::AuditFilter;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{AuditQuery, PageQuery, TenantPath};
use crate::app::AppState;
use crate::dto::{self};
use crate::errors::{ApiError, ApiResult};
use crate::extract::{ListParams, Path};

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(tenant_audit))
        .routes(routes!(platform_audit))
        .routes(routes!(tenant_events))
}

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
        TenantPath,
        PageQuery,
        AuditQuery,
    ),
    responses(
        (status = 200, description = "One page of audit records", body = dto::AuditRecordPage),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad `limit`, `outcome`, `from` or `until`, NUL in `actor` or `action`), `invalid_cursor` (an `after` this list did not give out)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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
        PageQuery,
        AuditQuery,
    ),
    responses(
        (status = 200, description = "One page of audit records", body = dto::AuditRecordPage),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad `limit`, `outcome`, `from` or `until`, NUL in `actor` or `action`), `invalid_cursor` (an `after` this list did not give out)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no tenant of that id"),
    ),
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
        TenantPath,
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("after" = Option<String>, Query, description = "The `next_cursor` of the previous page (an opaque cursor). Every page has one, the last page too: a reader polling the end of the feed resumes from it"),
    ),
    responses(
        (status = 200, description = "One page of CloudEvents", body = dto::CloudEventPage),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad `limit`), `invalid_cursor` (an `after` this list did not give out)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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
