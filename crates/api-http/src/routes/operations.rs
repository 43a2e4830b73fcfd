//! The operations routes: liveness, readiness, Prometheus metrics and the OpenAPI
//! document. They need no bearer token.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::errors::ApiError;

/// The routes of this area.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers, and the NATS connection is up when a relay runs", body = String, content_type = "text/plain"),
        (status = 503, description = "`not_ready`: the database does not answer, or the relay's NATS connection is down; `detail` says which and why"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.readiness.ready().await {
        Ok(()) => "ready".into_response(),
        Err(reason) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", reason).into_response()
        }
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (
            status = 200,
            description = "Prometheus text format: requests by route and status, latency \
                           histograms, decisions by reason, login failures, the build and \
                           the process",
            body = String,
            content_type = "text/plain; version=0.0.4"
        ),
        (status = 404, description = "`not_found`: USER_ENGINE_MANAGEMENT_LISTEN is set, and \
                                      the management listener serves the metrics instead"),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // With a management listener the metrics are served there only, as they say much
    // about the service's traffic (SPEC §7, Keycloak's port 9000).
    if !state.public_metrics {
        return ApiError::no_route().into_response();
    }
    render_metrics(State(state)).await
}

/// The metrics in Prometheus's text format, wherever they are served.
pub async fn render_metrics(State(state): State<AppState>) -> Response {
    state.metrics.pool(state.readiness.pool());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Serves this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object, content_type = "application/json"))
)]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::json(),
    )
        .into_response()
}
