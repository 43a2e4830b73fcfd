//! Authorization decisions, one or a batch, through `Engine::authorize_request`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ids::TenantId;
use domain::usecases::{AuthzCheck, CheckSubject};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::TenantPath;
use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::{request_id, ApiError, ApiResult};
use crate::extract::{bearer, JsonBody, Path};

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(authorize))
        .routes(routes!(authorize_batch))
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/authorize",
    tag = "authorize",
    summary = "One authorization decision (`authz:check`)",
    params(
        TenantPath,
    ),
    request_body = AuthorizeBody,
    responses(
        (status = 200, description = "The decision, allow or deny, with its reason and facts", body = dto::Decision),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `invalid_scope`, `invalid_request` (subject is neither user_id nor token, malformed JSON, unknown field)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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

/// The authorize API's checks, decided by `Engine::authorize_request`, which chooses
/// between the one-read fast path and the general path; a token that authenticates
/// nobody is refused here, where the client's address is known.
async fn decide_checks(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    bodies: Vec<AuthorizeBody>,
) -> ApiResult<Vec<domain::authz::Decision>> {
    let tenant = TenantId::parse(tenant)?;
    let mut checks: Vec<Result<AuthzCheck, domain::Error>> =
        bodies.into_iter().map(AuthzCheck::try_from).collect();
    // An access token of the provider as `subject.token` (SPEC §9) stands for its
    // session's user, at the session's assurance now; one that does not verify or whose
    // session ended stays a token, which no session matches: `subject_not_found`.
    if let Some(setup) = &state.signing {
        for check in checks.iter_mut().flatten() {
            let CheckSubject::Token(token) = &check.subject else {
                continue;
            };
            if token.split('.').count() != 3 {
                continue;
            }
            if let Some((user_id, assurance)) = state
                .engine
                .access_token_subject(setup.issuer(), token, &tenant)
                .await?
            {
                check.subject = CheckSubject::User { user_id, assurance };
            }
        }
    }
    let client = match bearer(headers) {
        Some(token) => state.client_principal(token).await?,
        None => None,
    };
    let decided = match client {
        Some(principal) => {
            state
                .engine
                .authorize_as_principal(&tenant, principal, &request_id(), checks)
                .await
        }
        None => {
            state
                .engine
                .authorize_request(&tenant, bearer(headers), &request_id(), checks)
                .await
        }
    };
    let decisions = match decided {
        Err(domain::Error::Unauthenticated) => {
            return Err(state.refuse_unauthenticated(Some(&tenant)).await)
        }
        decisions => decisions?,
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
        TenantPath,
    ),
    request_body = BatchBody,
    responses(
        (status = 200, description = "The decisions in the order of the checks", body = dto::Decisions),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `invalid_scope`, `invalid_request` (over 100 checks, bad subject, malformed JSON, unknown field)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
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
