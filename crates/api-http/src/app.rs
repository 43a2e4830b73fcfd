//! The application: shared state, the routes of SPEC §4 (registered in `routes::api`)
//! behind the middleware every request passes (request context with id, trace context,
//! metrics and access log; the deadline; the panic guard; the tenant gate; idempotency;
//! body limit; client address), and the management listener's router.

use std::any::Any;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Router};
use domain::ids::{Email, TenantId};
use domain::usecases::Engine;
use domain::usecases::ThrottleRule;
use ipnet::IpNet;

use crate::errors::{ApiError, REQUEST_ID};
use crate::extract::MAX_BODY_BYTES;
use crate::metrics::Metrics;

/// Whether the service can do its work (the database answers), for `/readyz`.
pub trait Readiness: Send + Sync {
    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;

    /// The store's connection pool as it is now, for `/metrics`; `None` when the store
    /// has no pool to report.
    fn pool(&self) -> Option<PoolStats> {
        None
    }
}

/// A connection pool's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open, idle or in use.
    pub open: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
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
    /// How long a request may take before it is answered 503 `overloaded`
    /// (`USER_ENGINE_REQUEST_TIMEOUT`).
    pub request_timeout: Duration,
    /// Whether the public listener serves `/metrics`; false when a management listener
    /// serves it instead (`USER_ENGINE_MANAGEMENT_LISTEN`).
    pub public_metrics: bool,
    /// Reset requests answered and still being carried out (SPEC §3.6: a reset request
    /// is answered before the email is looked up, so its timing says nothing); when all
    /// are taken the request is answered 503 `overloaded` whatever the email.
    pub reset_slots: Arc<tokio::sync::Semaphore>,
    /// Makes the OpenID provider's signing keys on first use; `None` when no
    /// key-encryption key is configured (then none is made).
    pub signing: Option<Arc<SigningSetup>>,
}

/// The provider's key vault, and whether this node has seen signing keys exist: keys
/// are never deleted and a rotation makes new ones before retiring the old, so once seen
/// they stay, and only the first requests of a node check (one at a time, so a burst of
/// first requests makes one set of keys, not one each).
pub struct SigningSetup {
    pub vault: Arc<dyn domain::signing::KeyVault>,
    /// The provider's issuer (`USER_ENGINE_PUBLIC_URL`, or `http://` and the listening
    /// address), without a trailing `/`.
    pub issuer: String,
    ready: std::sync::atomic::AtomicBool,
    making: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SigningSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningSetup").finish_non_exhaustive()
    }
}

impl SigningSetup {
    pub fn new(vault: Arc<dyn domain::signing::KeyVault>, issuer: String) -> Self {
        Self {
            vault,
            issuer,
            ready: std::sync::atomic::AtomicBool::new(false),
            making: tokio::sync::Mutex::new(()),
        }
    }

    /// Makes the first keys unless they exist.
    ///
    /// # Errors
    /// As `Engine::ensure_signing_keys`.
    pub async fn ensure(&self, engine: &Engine, request_id: &str) -> Result<(), domain::Error> {
        use std::sync::atomic::Ordering;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _making = self.making.lock().await;
        if !self.ready.load(Ordering::Acquire) {
            engine
                .ensure_signing_keys(self.vault.as_ref(), request_id)
                .await?;
            self.ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// The issuer and signer the provider's use cases take.
    pub fn issuer(&self) -> domain::usecases::Issuer<'_> {
        domain::usecases::Issuer {
            url: &self.issuer,
            vault: self.vault.as_ref(),
        }
    }
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
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            public_metrics: true,
            reset_slots: Arc::new(tokio::sync::Semaphore::new(RESETS_IN_FLIGHT)),
            signing: None,
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

/// Reset requests carried out after their answer at once on one node; each is one short
/// transaction, so this bounds the work an address-rotating flood can queue.
pub const RESETS_IN_FLIGHT: usize = 64;

/// A request's deadline unless configured (`USER_ENGINE_REQUEST_TIMEOUT`, SPEC §7).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The `Retry-After` of a request answered 503 at its deadline.
const DEADLINE_RETRY_AFTER_SECS: u64 = 1;

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
    let api = api
        .merge(crate::routes::provider::routes())
        .merge(crate::routes::pages::routes())
        .merge(crate::scim::routes())
        .merge(extra)
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
        .layer(middleware::from_fn_with_state(state.clone(), tenant_gate));
    // Outermost: no error answer to a SCIM request leaves in another format.
    guarded(api, &state)
        .layer(middleware::from_fn(crate::scim::scim_errors))
        .with_state(state)
}

/// The router of the management listener (`USER_ENGINE_MANAGEMENT_LISTEN`): liveness,
/// readiness and metrics, apart from the public port, behind the same request context,
/// deadline and panic guard as the API. These are operations endpoints, not API
/// operations, so they are not registered through `routes::api()` again.
pub fn management_router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(crate::routes::operations::healthz))
        .route("/readyz", get(crate::routes::operations::readyz))
        .route("/metrics", get(crate::routes::operations::render_metrics))
        .fallback(|| async { ApiError::no_route() });
    guarded(routes, &state).with_state(state)
}

/// Wraps `routes` in what every request of every listener passes, outermost first: the
/// request context (id, trace context, span, access log, metrics), the deadline, and
/// the panic guard. The deadline and the guard sit inside the context, so their answers
/// carry the request id and are counted like any other.
fn guarded(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        // tower-http's guard: a panicking handler loses its request, not the process.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            answer_panic,
        ))
        // tower's timeout; the handler turns its error into our problem body.
        .layer((
            HandleErrorLayer::new(answer_deadline),
            tower::timeout::TimeoutLayer::new(state.request_timeout),
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
}

/// The answer to a request past its deadline: 503 `overloaded` with `Retry-After`
/// (SPEC §5's list of codes is closed, and a server too slow to answer in time is what
/// `overloaded` says). The inner service is infallible, so the timeout's is the only
/// error that reaches here.
async fn answer_deadline(error: BoxError) -> Response {
    tracing::warn!(error = %error, "request passed its deadline");
    ApiError::overloaded(
        DEADLINE_RETRY_AFTER_SECS,
        "the request did not finish within its deadline; retry later",
    )
    .into_response()
}

/// The answer to a panicking handler: logged once, a 500 problem with the request id,
/// and nothing of the panic in the body.
fn answer_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "a handler panicked");
    ApiError::internal().into_response()
}

/// The incoming `x-request-id` when it is well-formed: 1 to 128 characters of
/// `[A-Za-z0-9._:-]`, so a client or proxy can correlate its logs with ours without
/// being able to write anything else into them.
pub fn incoming_request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-request-id")?.to_str().ok()?;
    let well_formed = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-'));
    well_formed.then(|| value.to_owned())
}

/// A W3C Trace Context `traceparent` header's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// The caller's span: 16 lowercase hex digits, not all zero.
    pub parent_span_id: String,
}

/// The incoming `traceparent` when it is well-formed: `00-<32 hex>-<16 hex>-<2 hex>`
/// with lowercase hex and neither id all zeros (W3C Trace Context, version 00).
pub fn traceparent(headers: &HeaderMap) -> Option<TraceParent> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let hex = |text: &str, length: usize| {
        text.len() == length
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    };
    let nonzero = |text: &str| text.bytes().any(|byte| byte != b'0');
    let mut parts = value.split('-');
    let (Some(version), Some(trace_id), Some(parent_span_id), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let well_formed = version == "00"
        && hex(trace_id, 32)
        && nonzero(trace_id)
        && hex(parent_span_id, 16)
        && nonzero(parent_span_id)
        && hex(flags, 2);
    well_formed.then(|| TraceParent {
        trace_id: trace_id.to_owned(),
        parent_span_id: parent_span_id.to_owned(),
    })
}

/// Gives each request an id (a well-formed incoming `x-request-id`, else a new UUIDv7;
/// task-local, for error bodies, and echoed as `x-request-id`), a tracing span with its
/// route and the caller's trace context (`traceparent`), a log line, and its metrics.
async fn request_context(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request_id =
        incoming_request_id(request.headers()).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let trace = traceparent(request.headers());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = crate::metrics::method_label(request.method().as_str());
    let tenant = tenant_of(request.uri().path()).map(str::to_owned);
    // SCIM answers carry people's data too.
    let api =
        request.uri().path().starts_with("/v1/") || request.uri().path().starts_with("/scim/");
    let started = Instant::now();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        tenant = tenant.as_deref().unwrap_or(""),
        trace_id = tracing::field::Empty,
        parent_span_id = tracing::field::Empty,
    );
    if let Some(trace) = &trace {
        span.record("trace_id", tracing::field::display(&trace.trace_id));
        span.record(
            "parent_span_id",
            tracing::field::display(&trace.parent_span_id),
        );
    }
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
        .request(&route, method, status, elapsed.as_secs_f64());
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

/// The tenant a `/v1/tenants/{tenant}/…` or `/scim/v2/tenants/{tenant}/…` path names,
/// for the log span and [`tenant_gate`].
fn tenant_of(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/tenants/")
        .or_else(|| path.strip_prefix("/scim/v2/tenants/"))
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
