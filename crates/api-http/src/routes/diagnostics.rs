//! A tenant's onboarding diagnostics (SPEC §6).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::TenantPath;
use crate::app::AppState;
use crate::dto::{self};
use crate::errors::ApiResult;
use crate::extract::Path;

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(tenant_diagnostics))
}

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
        TenantPath,
    ),
    responses(
        (status = 200, description = "The report", body = dto::DiagnosticsReport),
        (status = 400, description = "`invalid_tenant_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
)]
pub async fn tenant_diagnostics(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let report =
        ::diagnostics::diagnose(&state.engine, &caller, &tenant, &state.diagnostics).await?;
    Ok(Json(dto::DiagnosticsReport::from(&report)).into_response())
}
