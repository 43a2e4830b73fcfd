//! The handlers of SPEC §4, one module per area, and the one place they are registered:
//! [`api`] gives the router and the OpenAPI paths together (utoipa-axum's
//! `OpenApiRouter`, one `routes!` per path), so no route can be served undocumented or
//! documented unserved. Each handler parses its input, calls one use case and maps the
//! result; no rules live here.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::errors::ApiResult;

pub mod api_keys;
pub mod auth;
pub mod authorize;
pub mod catalog;
pub mod diagnostics;
pub mod feeds;
pub mod members;
pub mod oauth_clients;
pub mod oidc;
pub mod operations;
pub(crate) mod pages;
mod params;
pub mod profiles;
pub(crate) mod provider;
pub mod roles;
pub mod tenants;
pub mod users;
pub mod webhooks;

/// Every route of the API with its OpenAPI paths, on the document's base (info, tags,
/// shared components). Routes that take a bearer token are registered through
/// [`with_bearer`], which is what the document's security requirement (and so its 401
/// and 429 answers) follows.
pub fn api() -> OpenApiRouter<AppState> {
    let signed_in = [
        auth::routes(),
        tenants::routes(),
        roles::routes(),
        members::routes(),
        profiles::routes(),
        users::routes(),
        catalog::routes(),
        api_keys::routes(),
        authorize::routes(),
        feeds::routes(),
        diagnostics::routes(),
        webhooks::routes(),
        oauth_clients::routes(),
    ]
    .into_iter()
    .fold(OpenApiRouter::default(), OpenApiRouter::merge);
    OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(auth::public_routes())
        .merge(operations::routes())
        .merge(oidc::routes())
        .merge(with_bearer(signed_in))
}

/// Marks every operation of `router` as needing a bearer token, in one place rather
/// than on each handler.
fn with_bearer(mut router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let requirement = SecurityRequirement::new("bearer", Vec::<String>::new());
    for item in router.get_openapi_mut().paths.paths.values_mut() {
        for operation in [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            operation.security = Some(vec![requirement.clone()]);
        }
    }
    router
}

fn created(body: impl Serialize) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn with_etag(body: impl Serialize, etag: &str) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The `If-Match` header, without `W/` and surrounding quotes kept as sent.
fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().trim_start_matches("W/").to_owned())
        .filter(|value| value != "*")
}

/// A member's version from an `If-Match` of the form `"m<version>"` (412 otherwise).
fn expected_version(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    match if_match(headers) {
        None => Ok(None),
        Some(tag) => tag
            .trim_matches('"')
            .strip_prefix('m')
            .and_then(|version| version.parse().ok())
            .map(Some)
            .ok_or_else(|| domain::Error::PreconditionFailed.into()),
    }
}

/// A profile ETag from `If-Match` (`"p<hash>"`), as the domain compares it.
fn expected_profile(headers: &HeaderMap) -> Option<String> {
    if_match(headers).map(|tag| tag.trim_matches('"').trim_start_matches('p').to_owned())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a failed lookup is a failed test"
)]
mod tests {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::Arc;

    use serde_json::Value;

    use crate::app::{router, AppState, Readiness};

    struct Ready;

    impl Readiness for Ready {
        fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
            Box::pin(async { Ok(()) })
        }
    }

    /// A concrete value for each path parameter, in the format SPEC §2 gives it.
    fn concrete(path: &str) -> String {
        let key = if path.contains("/api-keys/") {
            "0190f3a0-0000-7000-8000-000000000001"
        } else {
            "locale"
        };
        path.replace("{tenant}", "acme")
            .replace("{user}", "0190f3a0-0000-7000-8000-000000000002")
            .replace("{role}", "editor")
            .replace("{key}", key)
    }

    #[tokio::test]
    async fn the_router_serves_every_documented_operation() {
        let document = serde_json::to_value(crate::openapi::document()).unwrap();
        let state = AppState::new(
            domain::fakes::FakeEngine::new().engine,
            Arc::new(Ready) as Arc<dyn Readiness>,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let mut operations = 0;
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes());
                let Ok(method) = method else { continue };
                let url = format!("http://{address}{}", concrete(path));
                let response = client.request(method.clone(), &url).send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let unrouted = status == 405 || (status == 404 && body["code"] == "not_found");
                assert!(!unrouted, "{method} {path}: {status} {body}");
                operations += 1;
            }
        }
        assert!(operations >= 50, "only {operations} operations documented");
        let unknown = client
            .get(format!("http://{address}/v1/nowhere"))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status().as_u16(), 404);
    }
}
