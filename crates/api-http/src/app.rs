//! The application: shared state, the routes of SPEC §4 (registered in `routes::api`)
//! behind the middleware every request passes (request context with id, metrics and
//! access log; the tenant gate; idempotency; body limit; client address).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use domain::ids::{Email, TenantId};
use domain::usecases::Engine;
use domain::usecases::ThrottleRule;
use ipnet::IpNet;

use crate::errors::{ApiError, REQUEST_ID};
use crate::extract::MAX_BODY_BYTES;
use crate::metrics::Metrics;

/// Whether the service can do its work (the database answers), for `/readyz`.
pub trait Readiness: Send + Sync {
    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub readiness: Arc<dyn Readiness>,
    pub metrics: Arc<Metrics>,
    /// Password logins allowed per email and per client address.
    pub login_rate: ThrottleRule,
    /// Requests with a missing or invalid bearer token allowed per client address.
    pub auth_failure_rate: ThrottleRule,
    /// The proxies whose forwarding headers say who the client is.
    pub trusted_proxies: Arc<[IpNet]>,
    /// What the diagnostics endpoint is told (threshold, relay expected); the binary
    /// sets it from the configuration.
    pub diagnostics: diagnostics::Options,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// State with default metrics and a login limit of 10 attempts a minute.
    pub fn new(engine: Engine, readiness: Arc<dyn Readiness>) -> Self {
        Self::with_login_limit(engine, readiness, NonZeroU32::MIN.saturating_add(9))
    }

    pub fn with_login_limit(
        engine: Engine,
        readiness: Arc<dyn Readiness>,
        per_minute: NonZeroU32,
    ) -> Self {
        Self {
            engine,
            readiness,
            // Registering four fresh metrics in a fresh registry cannot clash.
            metrics: Arc::new(Metrics::new().unwrap_or_else(|_| unreachable_metrics())),
            login_rate: ThrottleRule::per_minute(per_minute),
            auth_failure_rate: ThrottleRule::per_minute(
                NonZeroU32::new(DEFAULT_AUTH_FAILURES_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            ),
            trusted_proxies: Arc::from(Vec::new()),
            diagnostics: diagnostics::Options::default(),
        }
    }

    /// Counts a login attempt for the email and the client address in the store, so the
    /// limit holds across nodes (429 past it).
    pub async fn check_login_rate(
        &self,
        email: &Email,
        address: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        self.engine
            .throttle_login(email, address, self.login_rate)
            .await
            .map_err(ApiError::from)
    }
}

/// Failed bearer authentications allowed per minute from one client address unless
/// configured (`USER_ENGINE_AUTH_FAILURES_PER_MINUTE`).
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 60;

#[allow(
    clippy::panic,
    reason = "metric names are constants; a clash is a programming error"
)]
fn unreachable_metrics() -> Metrics {
    panic!("metric registration failed")
}

/// The router of the whole API.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The router of the whole API plus `extra` routes served behind the same middleware
/// (request context, metrics, idempotency, body limit) — for benchmarks whose baseline
/// routes must cost what the API's own routes cost around their handlers.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let (api, _) = crate::routes::api().split_for_parts();
    api.merge(extra)
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the route does not take this method",
            )
        })
        // Innermost, so the handler's task sees the address whatever the outer layers do.
        .layer(middleware::from_fn_with_state(
            state.trusted_proxies.clone(),
            client_context,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Inside the request context, so a replay or a refusal still carries a request id.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::middleware,
        ))
        // Outside idempotency, so a malformed `Idempotency-Key` is judged like any input.
        .layer(middleware::from_fn_with_state(state.clone(), tenant_gate))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// Gives each request an id (task-local, for error bodies, and `x-request-id`), a
/// tracing span with its route, a log line, and its metrics.
async fn request_context(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::now_v7().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let tenant = tenant_of(request.uri().path()).map(str::to_owned);
    let api = request.uri().path().starts_with("/v1/");
    let started = Instant::now();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        tenant = tenant.as_deref().unwrap_or("")
    );
    let mut response = REQUEST_ID
        .scope(
            request_id.clone(),
            tracing::Instrument::instrument(next.run(request), span.clone()),
        )
        .await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .request(&route, &method, status, elapsed.as_secs_f64());
    if route.ends_with("/auth/password") && status == 401 {
        state.metrics.login_failure();
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    // API answers carry session tokens, keys, invitation tokens and TOTP secrets, and
    // the rest is one caller's view: no cache keeps any of them (SPEC §3.6).
    if api {
        response
            .headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    response
}

/// SPEC §3.6: for a caller who may not see the tenant, every malformed header,
/// precondition or body on a tenant route answers the 404 a missing tenant gets, so the
/// order of checks tells an outsider nothing. Handlers may read their input before the
/// tenant is resolved; this layer looks at a tenant route's client error afterwards
/// and, only then, resolves the tenant and the caller as SPEC §3.1 orders them.
async fn tenant_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(tenant) = tenant_of(request.uri().path()).and_then(|slug| TenantId::parse(slug).ok())
    else {
        return next.run(request).await;
    };
    let token = crate::extract::bearer(request.headers()).map(str::to_owned);
    let response = next.run(request).await;
    if !matches!(response.status().as_u16(), 400 | 412 | 413 | 415 | 422) {
        return response;
    }
    let principal = match state
        .engine
        .authenticate_for_tenant(&tenant, token.as_deref())
        .await
    {
        Ok(principal) => principal,
        // A failing store leaves the answer as it was; the next request decides.
        Err(domain::Error::Store(_)) => return response,
        Err(domain::Error::TenantNotFound) => {
            return ApiError::from(domain::Error::TenantNotFound).into_response()
        }
        Err(domain::Error::RateLimited { retry_after_secs }) => {
            return ApiError::rate_limited(retry_after_secs).into_response()
        }
        Err(_) => return ApiError::unauthenticated().into_response(),
    };
    let caller = domain::usecases::Caller {
        principal,
        request_id: crate::errors::request_id(),
    };
    match state.engine.sees_tenant(&caller, &tenant).await {
        Ok(false) => ApiError::from(domain::Error::TenantNotFound).into_response(),
        Ok(true) | Err(_) => response,
    }
}

/// The tenant a `/v1/tenants/{tenant}/…` path names, for the log span.
fn tenant_of(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/tenants/")
        .and_then(|rest| rest.split('/').next())
        .filter(|tenant| !tenant.is_empty())
}

tokio::task_local! {
    /// The client address of the request being handled.
    static CLIENT_ADDRESS: Option<IpAddr>;
}

/// The client address of the request being handled (`None` outside a request, or when
/// the server runs without connect info).
pub fn current_client_address() -> Option<IpAddr> {
    CLIENT_ADDRESS.try_with(|address| *address).ok().flatten()
}

/// The client's address (SPEC §3.6): the socket peer, or when the peer is one of
/// `trusted_proxies` the nearest untrusted hop of its forwarding headers (see
/// [`crate::forwarded`]); `None` when the server was started without connect info.
pub fn client_address(
    request_extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    trusted_proxies: &[IpNet],
) -> Option<IpAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| {
            crate::forwarded::client_address(peer.ip(), headers, trusted_proxies)
        })
}

/// Finds the request's client address once, for the [`crate::extract::ClientAddress`]
/// extractor (a request extension) and for bearer authentication (a task-local).
async fn client_context(
    State(trusted_proxies): State<Arc<[IpNet]>>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = client_address(request.extensions(), request.headers(), &trusted_proxies);
    request
        .extensions_mut()
        .insert(crate::extract::ClientAddress(address));
    CLIENT_ADDRESS.scope(address, next.run(request)).await
}
