//! The OpenID provider's routes (SPEC §9) served so far: the JWK Set.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::errors::ApiResult;

/// How long a relying party may keep the JWK Set: well under the hour a retired key
/// stays published, so a rotation is seen long before its old key leaves.
const JWKS_MAX_AGE: &str = "public, max-age=300";

/// The routes of this area (no bearer token).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(jwks))
}

#[utoipa::path(
    get,
    path = "/oauth2/jwks",
    tag = "oidc",
    summary = "The public keys ID and access tokens are signed with (RFC 7517)",
    responses(
        (status = 200, description = "`{keys}`: the keys that sign (RS256, ES256) and retired keys whose tokens may still be valid; the first use makes the first keys", body = Object, content_type = "application/json"),
    ),
)]
pub async fn jwks(State(state): State<AppState>) -> ApiResult<Response> {
    if let Some(signing) = &state.signing {
        signing
            .ensure(&state.engine, &crate::errors::request_id())
            .await?;
    }
    let set = state.engine.jwks().await?;
    let mut response = Json(set).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(JWKS_MAX_AGE),
    );
    Ok(response)
}
