//! HTTP test support: `spawn_app` starts the real service on port 0 with a database of
//! its own (`spawn_app_on` chooses PostgreSQL or the embedded SQLite store) through the
//! same `startup::Application` as `user-engine serve`, and `TestApp` speaks to it over
//! real HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use domain::ids::Email;
use domain::ports::Store;
use domain::usecases::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::config::{Config, Secret};
use server::startup::Application;
use server::store::Backend;

use crate::pg::TestDb;
use crate::sqlite::TestFile;

/// The password the HTTP tests give the users they create.
pub const PASSWORD: &str = "member password 123";

/// The platform root every app is bootstrapped with.
pub const ROOT_EMAIL: &str = "root@example.com";
pub const ROOT_PASSWORD: &str = "root password 123";

/// Which store a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Postgres,
    Sqlite,
}

/// The database behind a test app, kept as long as the app.
#[derive(Debug, Clone)]
pub enum AppDb {
    Postgres(Arc<TestDb>),
    Sqlite(Arc<TestFile>),
}

impl AppDb {
    /// The store's URL, as `USER_ENGINE_DATABASE_URL` would name it.
    pub fn url(&self) -> String {
        match self {
            Self::Postgres(db) => db.url(),
            Self::Sqlite(file) => file.url(),
        }
    }

    /// A connection as the PostgreSQL owner, for tests that inspect or tamper with
    /// PostgreSQL directly; such tests run on PostgreSQL only.
    pub async fn owner_connection(&self) -> sqlx::PgConnection {
        match self {
            Self::Postgres(db) => db.owner_connection().await,
            Self::Sqlite(file) => panic!(
                "a PostgreSQL owner connection asked of an app on SQLite ({})",
                file.path.display()
            ),
        }
    }
}

/// What a test app is started with besides its store. The defaults keep the throttles
/// out of the way of tests about other rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppOptions {
    /// Password logins allowed per minute per email and per client address.
    pub login_per_minute: u32,
    /// Requests with a missing or invalid bearer token allowed per minute per client
    /// address.
    pub auth_failures_per_minute: u32,
    /// CIDRs of trusted proxies (`USER_ENGINE_TRUSTED_PROXIES`); the test client
    /// connects from 127.0.0.1.
    pub trusted_proxies: Vec<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            login_per_minute: 1000,
            auth_failures_per_minute: 100_000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A running service and a client for it.
#[derive(Debug)]
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub engine: Engine,
    pub db: AppDb,
    pub options: AppOptions,
    /// The store this node runs on (for SQLite, the one every node of the file shares).
    backend: Backend,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A response: status, headers and the JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The problem+json `code`, if the body is a problem.
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }

    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
    }
}

/// Starts the service with production ports (argon2id, RFC TOTP) on a fresh PostgreSQL
/// database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(StoreKind::Postgres, 1000).await
}

/// Starts the service on a fresh database of the given store.
pub async fn spawn_app_on(store: StoreKind) -> TestApp {
    spawn_app_with(store, 1000).await
}

pub async fn spawn_app_with_login_limit(per_minute: u32) -> TestApp {
    spawn_app_with(StoreKind::Postgres, per_minute).await
}

/// Starts the service on a fresh database of `kind`, allowing `per_minute` logins.
pub async fn spawn_app_with(kind: StoreKind, per_minute: u32) -> TestApp {
    spawn_app_with_options(
        kind,
        AppOptions {
            login_per_minute: per_minute,
            ..AppOptions::default()
        },
    )
    .await
}

/// Starts the service on a fresh database of `kind` with `options`, bootstrapped with
/// the platform root [`ROOT_EMAIL`].
pub async fn spawn_app_with_options(kind: StoreKind, options: AppOptions) -> TestApp {
    let db = match kind {
        StoreKind::Postgres => AppDb::Postgres(Arc::new(TestDb::create().await)),
        StoreKind::Sqlite => AppDb::Sqlite(Arc::new(TestFile::new())),
    };
    let config = app_config(&db, &options);
    let app = Application::build(&config).await.expect("the app starts");
    serve(db, options, app)
}

/// Starts the service on a fresh database of `kind` with `options` and the settings
/// `configure` changes (those `AppOptions` does not name), through the same
/// `Application::build` as `serve`; returns the app and its management listener's
/// address, when `configure` set one.
pub async fn spawn_app_configured(
    kind: StoreKind,
    options: AppOptions,
    configure: impl FnOnce(&mut Config),
) -> (TestApp, Option<SocketAddr>) {
    let db = match kind {
        StoreKind::Postgres => AppDb::Postgres(Arc::new(TestDb::create().await)),
        StoreKind::Sqlite => AppDb::Sqlite(Arc::new(TestFile::new())),
    };
    let mut config = app_config(&db, &options);
    configure(&mut config);
    let app = Application::build(&config).await.expect("the app starts");
    let management = app.management_address();
    (serve(db, options, app), management)
}

/// What `user-engine serve` would be configured with for `db` and `options`: port 0, no
/// broker, and the platform root bootstrapped.
fn app_config(db: &AppDb, options: &AppOptions) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: Some(Secret::new(db.url())),
        max_connections: 8,
        bootstrap_email: Some(Email::parse(ROOT_EMAIL).expect("email")),
        bootstrap_password: Some(Secret::new(ROOT_PASSWORD)),
        login_rate_per_minute: options.login_per_minute,
        auth_failures_per_minute: options.auth_failures_per_minute,
        trusted_proxies: api_http::forwarded::parse_proxies(&options.trusted_proxies.join(","))
            .expect("trusted proxies"),
        nats_url: None,
        ..Config::default()
    }
}

/// Runs a built app in the background until the `TestApp` is dropped.
fn serve(db: AppDb, options: AppOptions, app: Application) -> TestApp {
    let address = app.address();
    let engine = app.engine().clone();
    let backend = app.backend().clone();
    let server = tokio::spawn(async move {
        let _ = app.run_until_stopped(std::future::pending()).await;
    });
    TestApp {
        address,
        client: reqwest::Client::new(),
        engine,
        db,
        options,
        backend,
        server,
    }
}

impl TestApp {
    /// A second API node on the same database, sharing nothing with this one but the
    /// store: on PostgreSQL a pool of its own, on SQLite the one process's store (an
    /// embedded file has one process, so its nodes are that process's).
    pub async fn another_node(&self) -> TestApp {
        self.another_node_configured(|_| {}).await
    }

    /// [`TestApp::another_node`] with the settings `configure` changes (those this node
    /// was started with beyond `AppOptions`, such as its key-encryption key file).
    pub async fn another_node_configured(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = app_config(&self.db, &self.options);
        configure(&mut config);
        let app = match &self.db {
            AppDb::Postgres(_) => Application::build(&config).await,
            AppDb::Sqlite(_) => Application::build_on(&config, self.backend.clone()).await,
        }
        .expect("another node starts");
        serve(self.db.clone(), self.options.clone(), app)
    }

    /// The store this node runs on, for tests of the store's contracts under
    /// concurrency with data made through the API.
    pub fn store(&self) -> Arc<dyn Store> {
        self.backend.store()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request.send().await.expect("the request is sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    /// Logs in and returns the session token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .send(
                Method::POST,
                "/v1/auth/password",
                None,
                Some(serde_json::json!({ "email": email, "password": password })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login: {reply:?}");
        reply.body["token"].as_str().expect("a token").to_owned()
    }

    pub async fn root_token(&self) -> String {
        self.login(ROOT_EMAIL, ROOT_PASSWORD).await
    }
}

/// Reads a response whole.
pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// Every error is problem+json with the fields of SPEC §5: `type`, a non-empty `title`
/// and `detail`, `status`, `code`, the `request_id` (also sent as `x-request-id`), and a
/// `reason` on a 403.
pub fn assert_problem(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{code}: {reply:?}");
    assert_eq!(
        reply.content_type(),
        Some("application/problem+json"),
        "{reply:?}"
    );
    assert_eq!(reply.code(), Some(code), "{reply:?}");
    assert_eq!(
        reply.body.get("type").and_then(Value::as_str),
        Some(format!("urn:user-engine:problem:{code}").as_str()),
        "{reply:?}"
    );
    assert_eq!(
        reply.body.get("status").and_then(Value::as_u64),
        Some(u64::from(status.as_u16())),
        "{reply:?}"
    );
    for field in ["title", "detail"] {
        assert!(
            reply
                .body
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|text| !text.is_empty()),
            "a non-empty {field}: {reply:?}"
        );
    }
    let request_id = reply
        .body
        .get("request_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(!request_id.is_empty(), "a request id: {reply:?}");
    assert_eq!(
        reply
            .headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok()),
        Some(request_id),
        "{reply:?}"
    );
    if status == StatusCode::FORBIDDEN {
        assert!(
            reply.body.get("reason").is_some_and(Value::is_string),
            "a 403 has a reason: {reply:?}"
        );
    }
}

pub fn assert_status(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{reply:?}");
}

/// A string field of a JSON object.
pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

/// Creates an active user with `password` through the API and returns its id.
pub async fn new_user(app: &TestApp, root: &str, email: &str, password: &str) -> String {
    let created = app
        .post(
            "/v1/users",
            root,
            json!({ "email": email, "password": password }),
        )
        .await;
    assert_status(&created, StatusCode::CREATED);
    text(&created.body, "id").to_owned()
}

/// The RFC 6238 generator of an enrolment, as an authenticator app holds it.
#[derive(Debug)]
pub struct Authenticator(pub totp_rs::TOTP);

impl Authenticator {
    /// The code of the step `offset` seconds from now.
    pub fn code(&self, offset: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() + offset;
        self.0.generate(u64::try_from(now).expect("after 1970"))
    }

    /// A six-digit code that no step of the ±1 window accepts.
    pub fn wrong_code(&self) -> String {
        let valid = [
            self.code(-60),
            self.code(-30),
            self.code(0),
            self.code(30),
            self.code(60),
        ];
        (0..)
            .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
            .find(|code| !valid.contains(code))
            .expect("a wrong code")
    }
}

/// Enrols and confirms TOTP for the session's user: the session becomes `aal2`.
pub async fn enrol_totp(app: &TestApp, token: &str) -> Authenticator {
    let enrolment = app
        .send(Method::POST, "/v1/me/totp", Some(token), None)
        .await;
    assert_status(&enrolment, StatusCode::OK);
    assert!(text(&enrolment.body, "otpauth_uri").starts_with("otpauth://totp/"));
    let secret = totp_rs::Secret::Encoded(text(&enrolment.body, "secret").to_owned())
        .to_bytes()
        .expect("a base32 secret");
    let authenticator = Authenticator(
        totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, secret).expect("a generator"),
    );
    let confirmed = app
        .post(
            "/v1/me/totp/confirm",
            token,
            json!({ "code": authenticator.code(0) }),
        )
        .await;
    assert_status(&confirmed, StatusCode::NO_CONTENT);
    authenticator
}

/// A 403 `forbidden` whose reason is `reason`.
pub fn assert_forbidden(reply: &Reply, reason: &str) {
    assert_problem(reply, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(reply.body["reason"], reason, "{reply:?}");
}

pub fn etag(reply: &Reply) -> String {
    reply
        .headers
        .get("etag")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("an ETag: {reply:?}"))
        .to_owned()
}

/// Sends a request with extra headers.
pub async fn send_with(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    reply(request.send().await.expect("the request is sent")).await
}

pub async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    app.send(Method::PUT, path, Some(token), Some(body)).await
}

pub async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    app.send(Method::PATCH, path, Some(token), Some(body)).await
}

pub async fn delete(app: &TestApp, path: &str, token: &str) -> Reply {
    app.send(Method::DELETE, path, Some(token), None).await
}

/// An invited user accepts their invitation with `password` (204).
pub async fn accept_invitation(app: &TestApp, token: &str, password: &str) {
    let accepted = app
        .send(
            Method::POST,
            "/v1/auth/invitation",
            None,
            Some(json!({ "token": token, "password": password })),
        )
        .await;
    assert_status(&accepted, StatusCode::NO_CONTENT);
}

/// Creates a tenant whose first admin is a new active user: (admin token, admin id).
pub async fn tenant_with_admin(app: &TestApp, root: &str, tenant: &str) -> (String, String) {
    let email = format!("admin@{tenant}.example");
    let admin_id = new_user(app, root, &email, PASSWORD).await;
    let created = app
        .post(
            "/v1/tenants",
            root,
            json!({ "id": tenant, "display_name": "Tenant", "admin": { "user_id": admin_id } }),
        )
        .await;
    assert_status(&created, StatusCode::CREATED);
    (app.login(&email, PASSWORD).await, admin_id)
}

/// Adds an existing user to a tenant with roles.
pub async fn add_member(app: &TestApp, token: &str, tenant: &str, user_id: &str, roles: Value) {
    let added = app
        .post(
            &format!("/v1/tenants/{tenant}/members"),
            token,
            json!({ "user_id": user_id, "roles": roles }),
        )
        .await;
    assert_status(&added, StatusCode::CREATED);
}

/// The id of the session's user.
pub async fn my_id(app: &TestApp, token: &str) -> String {
    let me = app.get("/v1/me", token).await;
    assert_status(&me, StatusCode::OK);
    text(&me.body["user"], "id").to_owned()
}

/// Makes each named `async fn(StoreKind)` of the calling module a test on PostgreSQL and
/// one on the embedded SQLite store, as `MODULE::postgres::NAME` and
/// `MODULE::sqlite::NAME`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use $crate::http::StoreKind;
            $(
                #[test]
                fn $name() {
                    $crate::pg::run(super::$name(StoreKind::Postgres));
                }
            )*
        }
        mod sqlite {
            use $crate::http::StoreKind;
            $(
                #[test]
                fn $name() {
                    $crate::pg::run(super::$name(StoreKind::Sqlite));
                }
            )*
        }
    };
}
