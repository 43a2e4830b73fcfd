//! The OpenID provider's hosted pages (SPEC §9): `/oauth2/authorize` (sign-in, the TOTP
//! step for `acr_values=aal2`, the tenant choice, the consent page of a third-party
//! client, then the code) and `/oauth2/logout`
//! (RP-initiated logout), rendered here as plain HTML with no script.
//!
//! Every page and redirect carries a strict Content-Security-Policy (nothing but this
//! origin's stylesheet), `no-store` and `frame-ancestors 'none'`. The browser session is
//! an engine session whose token lives in the `ue_session` cookie (HttpOnly,
//! `SameSite=Lax`, `Secure` when the issuer is https). Every form carries a CSRF token
//! that must equal the `ue_csrf` cookie (double submit; a cross-site form cannot read
//! or set that cookie). Each step answers with a redirect back to `GET /oauth2/authorize`
//! with the original request, which is checked anew every time: nothing a form posts is
//! trusted beyond what it names. Consent is the one step that issues the code from the
//! post itself: a consent must come from a form of ours (CSRF-checked), never from a
//! link.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::ids::{Assurance, Email, TenantId};
use domain::oidc::{
    challenge_well_formed, parse_openid_scopes, ClientType, OAuthClient, OPENID_SCOPES,
    PARAMETER_MAX,
};
use domain::usecases::{Caller, CodeOutcome, CodeRequest, ConsentStep, SessionOrigin};

use super::provider::{percent_encode, provider, FormParams};
use crate::app::AppState;
use crate::errors::{request_id, ApiError};
use crate::extract::ClientAddress;

const SESSION_COOKIE: &str = "ue_session";
const CSRF_COOKIE: &str = "ue_csrf";
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth2/authorize", get(authorize).post(authorize_step))
        .route("/oauth2/logout", get(logout_page).post(logout))
        .route("/oauth2/static/page.css", get(stylesheet))
}

/// The pages' one stylesheet (served from this origin, as the CSP allows).
const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1b1d21;\
margin:0}main{max-width:24rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;\
box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:1.5rem;margin-top:0}label{display:block;\
margin:1rem 0 .25rem;font-weight:600}input{width:100%;box-sizing:border-box;padding:.6rem;\
font:inherit;border:1px solid #6b7280;border-radius:4px}button{margin-top:1.25rem;width:100%;\
padding:.7rem;font:inherit;background:#1d4ed8;color:#fff;border:0;border-radius:4px;\
cursor:pointer}button:focus,input:focus{outline:3px solid #f59e0b;outline-offset:2px}\
.error{color:#991b1b;background:#fee2e2;padding:.6rem;border-radius:4px}\
.choices button,button.secondary{background:#fff;color:#1d4ed8;border:1px solid #1d4ed8}";

async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

use domain::mail::escape_html as escape;

/// A cookie's value from the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The security headers every page and redirect carries.
fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// What a page's forms need: the CSRF token (the browser's, or a new one to set).
struct Csrf {
    token: String,
    new: bool,
    secure: bool,
}

impl Csrf {
    fn of(headers: &HeaderMap, secure: bool) -> Self {
        match cookie(headers, CSRF_COOKIE).filter(|token| well_formed_token(token)) {
            Some(token) => Self {
                token: token.to_owned(),
                new: false,
                secure,
            },
            None => Self {
                token: random_token(),
                new: true,
                secure,
            },
        }
    }

    fn field(&self) -> String {
        format!(
            r#"<input type="hidden" name="csrf" value="{}">"#,
            escape(&self.token)
        )
    }
}

fn well_formed_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn random_token() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    // The system's randomness does not fail on the platforms this serves; should it,
    // the token is still unique per page through the time.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes[..16].copy_from_slice(&uuid::Uuid::now_v7().into_bytes());
    }
    hex::encode(bytes)
}

fn set_cookie(response: &mut Response, name: &str, value: &str, secure: bool, clear: bool) {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    if clear {
        cookie.push_str("; Max-Age=0");
    }
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// An HTML page with the security headers (and the CSRF cookie when it is new).
fn page(status: StatusCode, title: &str, body: &str, csrf: &Csrf) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/oauth2/static/page.css\">\
         </head><body><main>{body}</main></body></html>\n",
        title = escape(title),
    );
    let mut response = (status, html).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(&mut response);
    if csrf.new {
        set_cookie(&mut response, CSRF_COOKIE, &csrf.token, csrf.secure, false);
    }
    response
}

fn error_page(status: StatusCode, message: &str, csrf: &Csrf) -> Response {
    page(
        status,
        "Cannot continue",
        &format!(
            "<h1>Cannot continue</h1><p class=\"error\" role=\"alert\">{}</p>",
            escape(message)
        ),
        csrf,
    )
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    secure(&mut response);
    response
}

/// An authorization request, checked (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1).
struct AuthRequest {
    client: OAuthClient,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    scope: String,
    code_challenge: Option<String>,
    prompt_none: bool,
    prompt_login: bool,
    prompt_consent: bool,
    select_account: bool,
    max_age: Option<i64>,
    aal2: bool,
    tenant: Option<TenantId>,
    /// The request's parameters, to carry through the pages.
    params: Vec<(String, String)>,
}

/// Why a request stops: on a page of ours (no trustworthy redirect URI), or back at the
/// client with an error (RFC 6749 §4.1.2.1).
enum Stop {
    Page(StatusCode, String),
    Back {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl AuthRequest {
    async fn parse(state: &AppState, query: &str) -> Result<Self, Stop> {
        let params = FormParams::parse(query.as_bytes())
            .map_err(|problem| Stop::Page(StatusCode::BAD_REQUEST, problem))?;
        let get = |name: &str| params.get(name).map(str::to_owned);
        let client_id = get("client_id").ok_or_else(|| {
            Stop::Page(
                StatusCode::BAD_REQUEST,
                "The request names no client.".to_owned(),
            )
        })?;
        let client = state
            .engine
            .find_oauth_client(&client_id)
            .await
            .map_err(|_| {
                Stop::Page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is unavailable; try again.".to_owned(),
                )
            })?
            .ok_or_else(|| {
                Stop::Page(
                    StatusCode::BAD_REQUEST,
                    "The client is not known.".to_owned(),
                )
            })?;
        let redirect_uri = get("redirect_uri")
            .filter(|uri| client.redirects_to(uri))
            .ok_or_else(|| {
                Stop::Page(
                    StatusCode::BAD_REQUEST,
                    "The redirect URI is not one the client registered.".to_owned(),
                )
            })?;
        let state_param = get("state");
        let back = |error: &'static str, description: &str| Stop::Back {
            redirect_uri: redirect_uri.clone(),
            state: state_param.clone(),
            error,
            description: description.to_owned(),
        };
        if state_param
            .as_ref()
            .is_some_and(|value| value.len() > PARAMETER_MAX)
            || get("nonce").is_some_and(|value| value.len() > PARAMETER_MAX)
        {
            return Err(back(
                "invalid_request",
                "state and nonce are limited to 512 characters",
            ));
        }
        if get("response_type").as_deref() != Some("code") {
            return Err(back(
                "unsupported_response_type",
                "response_type must be code",
            ));
        }
        for unsupported in ["request", "request_uri"] {
            if get(unsupported).is_some() {
                return Err(back(
                    if unsupported == "request" {
                        "request_not_supported"
                    } else {
                        "request_uri_not_supported"
                    },
                    "request objects are not supported",
                ));
            }
        }
        let scopes = parse_openid_scopes(&get("scope").unwrap_or_default())
            .map_err(|problem| back("invalid_scope", &problem))?;
        let code_challenge = get("code_challenge");
        match (
            code_challenge.as_deref(),
            get("code_challenge_method").as_deref(),
        ) {
            (Some(challenge), Some("S256")) if challenge_well_formed(challenge) => {}
            (None, None) if client.client_type == ClientType::Confidential => {}
            (None, None) => {
                return Err(back(
                    "invalid_request",
                    "a public client must use PKCE (S256)",
                ))
            }
            _ => {
                return Err(back(
                    "invalid_request",
                    "code_challenge must be a base64url SHA-256 with code_challenge_method S256",
                ))
            }
        }
        let mut prompt_none = false;
        let mut prompt_login = false;
        let mut prompt_consent = false;
        let mut select_account = false;
        for value in get("prompt")
            .unwrap_or_default()
            .split(' ')
            .filter(|v| !v.is_empty())
        {
            match value {
                "none" => prompt_none = true,
                "login" => prompt_login = true,
                "select_account" => select_account = true,
                "consent" => prompt_consent = true,
                _ => {
                    return Err(back(
                        "invalid_request",
                        "prompt must be none, login, consent or select_account",
                    ))
                }
            }
        }
        if prompt_none && (prompt_login || select_account || prompt_consent) {
            return Err(back("invalid_request", "prompt=none goes alone"));
        }
        let max_age = match get("max_age") {
            None => None,
            Some(text) => Some(
                text.parse::<i64>()
                    .ok()
                    .filter(|age| *age >= 0)
                    .ok_or_else(|| {
                        back("invalid_request", "max_age must be a number of seconds")
                    })?,
            ),
        };
        let aal2 = get("acr_values")
            .unwrap_or_default()
            .split(' ')
            .any(|value| value == "aal2");
        let tenant = match get("tenant") {
            None => None,
            Some(text) => Some(
                TenantId::parse(&text)
                    .map_err(|_| back("invalid_request", "tenant is not a tenant id"))?,
            ),
        };
        // A tenant client signs in to its own tenant only.
        let tenant = match (client.id.owner(), tenant) {
            (Some(owner), Some(asked)) if owner != &asked => {
                return Err(back(
                    "invalid_request",
                    "this client signs in to its own tenant only",
                ))
            }
            (Some(owner), _) => Some(owner.clone()),
            (None, asked) => asked,
        };
        Ok(Self {
            redirect_uri,
            state: state_param,
            nonce: get("nonce"),
            scope: scopes.into_iter().collect::<Vec<_>>().join(" "),
            code_challenge,
            prompt_none,
            prompt_login,
            prompt_consent,
            select_account,
            max_age,
            aal2,
            tenant,
            params: params.pairs().to_vec(),
            client,
        })
    }

    /// The request's query with `name` dropped (`None`) or set.
    fn query_with(&self, changes: &[(&str, Option<&str>)]) -> String {
        let mut pairs: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(name, _)| !changes.iter().any(|(changed, _)| changed == name))
            .cloned()
            .collect();
        for (name, value) in changes {
            if let Some(value) = value {
                pairs.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        pairs
            .iter()
            .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn query(&self) -> String {
        self.query_with(&[])
    }

    /// Back at the client with `code`, or with an error.
    fn back_with(&self, pairs: &[(&str, &str)], issuer: &str) -> Response {
        let mut location = self.redirect_uri.clone();
        location.push(if location.contains('?') { '&' } else { '?' });
        let mut all: Vec<(&str, &str)> = pairs.to_vec();
        if let Some(state) = &self.state {
            all.push(("state", state));
        }
        all.push(("iss", issuer));
        location.push_str(
            &all.iter()
                .map(|(name, value)| format!("{name}={}", percent_encode(value)))
                .collect::<Vec<_>>()
                .join("&"),
        );
        redirect(StatusCode::FOUND, &location)
    }
}

fn stop_response(stop: Stop, issuer: &str, csrf: &Csrf) -> Response {
    match stop {
        Stop::Page(status, message) => error_page(status, &message, csrf),
        Stop::Back {
            redirect_uri,
            state,
            error,
            description,
        } => {
            let mut location = redirect_uri;
            location.push(if location.contains('?') { '&' } else { '?' });
            location.push_str(&format!(
                "error={error}&error_description={}",
                percent_encode(&description)
            ));
            if let Some(state) = state {
                location.push_str(&format!("&state={}", percent_encode(&state)));
            }
            location.push_str(&format!("&iss={}", percent_encode(issuer)));
            redirect(StatusCode::FOUND, &location)
        }
    }
}

fn hidden(request: &AuthRequest, csrf: &Csrf, step: &str) -> String {
    format!(
        r#"<input type="hidden" name="request" value="{}">{}<input type="hidden" name="step" value="{step}">"#,
        escape(&request.query()),
        csrf.field(),
    )
}

fn sign_in_page(request: &AuthRequest, csrf: &Csrf, email: &str, failed: bool) -> Response {
    let alert = if failed {
        r#"<p class="error" role="alert" id="problem">Incorrect email or password.</p>"#
    } else {
        ""
    };
    let described = if failed {
        r#" aria-describedby="problem""#
    } else {
        ""
    };
    let body = format!(
        r#"<h1>Sign in</h1><p>to continue to <strong>{client}</strong></p>{alert}
<form method="post" action="/oauth2/authorize">{hidden}
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required autofocus value="{email}"{described}>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>"#,
        client = escape(&request.client.name),
        hidden = hidden(request, csrf, "password"),
        email = escape(email),
    );
    let status = if failed {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page(status, "Sign in", &body, csrf)
}

fn totp_page(request: &AuthRequest, csrf: &Csrf, failed: bool) -> Response {
    let alert = if failed {
        r#"<p class="error" role="alert" id="problem">That code is not valid.</p>"#
    } else {
        ""
    };
    let body = format!(
        r#"<h1>Two-step verification</h1><p><strong>{client}</strong> asks for your second factor.</p>{alert}
<form method="post" action="/oauth2/authorize">{hidden}
<label for="code">Code from your authenticator app</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<button type="submit">Verify</button></form>
<form method="post" action="/oauth2/authorize">{recovery}
<label for="recovery_code">Or a recovery code</label><input id="recovery_code" name="recovery_code" type="text" autocomplete="off" required>
<button type="submit">Use recovery code</button></form>"#,
        client = escape(&request.client.name),
        hidden = hidden(request, csrf, "totp"),
        recovery = hidden(request, csrf, "recovery"),
    );
    let status = if failed {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page(status, "Two-step verification", &body, csrf)
}

fn tenant_page(request: &AuthRequest, csrf: &Csrf, tenants: &[(TenantId, String)]) -> Response {
    let choices: String = tenants
        .iter()
        .map(|(tenant, name)| {
            format!(
                r#"<button type="submit" name="tenant" value="{id}">{name} <span class="id">({id})</span></button>"#,
                id = escape(tenant.as_str()),
                name = escape(name),
            )
        })
        .collect();
    let body = format!(
        r#"<h1>Choose a workspace</h1><p>Where do you want to use <strong>{client}</strong>?</p>
<form method="post" action="/oauth2/authorize" class="choices">{hidden}<fieldset><legend>Your workspaces</legend>{choices}</fieldset></form>"#,
        client = escape(&request.client.name),
        hidden = hidden(request, csrf, "tenant"),
    );
    page(StatusCode::OK, "Choose a workspace", &body, csrf)
}

/// What each OpenID scope lets a client do, as the consent page says it.
fn scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are (your account id in this workspace)",
        "email" => "See your email address",
        "profile" => "See your basic profile",
        _ => "Use your account",
    }
}

fn consent_page(request: &AuthRequest, csrf: &Csrf, tenant: &TenantId) -> Response {
    // In the provider's order (openid first), whatever order the request gave.
    let asked: Vec<&str> = request.scope.split(' ').collect();
    let can: String = OPENID_SCOPES
        .iter()
        .filter(|scope| asked.contains(scope))
        .map(|scope| format!("<li>{}</li>", escape(scope_description(scope))))
        .collect();
    // The tenant rides in the request, so the post names the workspace asked about.
    let hidden = format!(
        r#"<input type="hidden" name="request" value="{}">{}<input type="hidden" name="step" value="consent">"#,
        escape(&request.query_with(&[("tenant", Some(tenant.as_str()))])),
        csrf.field(),
    );
    let body = format!(
        r#"<h1>Allow access?</h1><p><strong>{client}</strong> is not run by this service. It asks to use your account in the workspace <strong>{tenant}</strong>.</p>
<p id="can">If you allow it, it will be able to:</p><ul aria-labelledby="can">{can}</ul>
<form method="post" action="/oauth2/authorize">{hidden}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button></form>"#,
        client = escape(&request.client.name),
        tenant = escape(tenant.as_str()),
    );
    page(StatusCode::OK, "Allow access?", &body, csrf)
}

/// `GET /oauth2/authorize`: the flow, from whatever the browser's session has reached.
async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let setup = provider(&state)?;
    let csrf = Csrf::of(&headers, setup.issuer.starts_with("https://"));
    let request = match AuthRequest::parse(&state, query.as_deref().unwrap_or_default()).await {
        Ok(request) => request,
        Err(stop) => return Ok(stop_response(stop, &setup.issuer, &csrf)),
    };
    proceed(&state, &setup.issuer, &request, &csrf, &headers, false).await
}

/// The flow from where the browser's session stands: the sign-in page, the TOTP step,
/// the tenant choice, the consent page, or back to the client with a code.
/// `consent_given` is true only for the consent page's own (CSRF-checked) post.
async fn proceed(
    state: &AppState,
    issuer: &str,
    request: &AuthRequest,
    csrf: &Csrf,
    headers: &HeaderMap,
    consent_given: bool,
) -> Result<Response, ApiError> {
    let token = cookie(headers, SESSION_COOKIE);
    let session = match token {
        Some(token) => state.engine.browser_session(token).await?,
        None => None,
    };
    let session = session.filter(|session| {
        !request.prompt_login
            && request
                .max_age
                .is_none_or(|max_age| session.age.whole_seconds() <= max_age)
    });
    let (Some(session), Some(token)) = (session, token) else {
        if request.prompt_none {
            return Ok(request.back_with(
                &[
                    ("error", "login_required"),
                    ("error_description", "no sign-in session"),
                ],
                issuer,
            ));
        }
        return Ok(sign_in_page(request, csrf, "", false));
    };
    if request.aal2 && session.assurance < Assurance::Aal2 {
        if request.prompt_none {
            return Ok(request.back_with(
                &[
                    ("error", "interaction_required"),
                    ("error_description", "the second factor is needed"),
                ],
                issuer,
            ));
        }
        return Ok(totp_page(request, csrf, false));
    }
    let tenant = match &request.tenant {
        Some(tenant) => tenant.clone(),
        None => {
            let tenants = state.engine.sign_in_choices(&session.user).await?;
            match tenants.as_slice() {
                [] => {
                    return Ok(request.back_with(
                        &[
                            ("error", "access_denied"),
                            ("error_description", "the user belongs to no tenant"),
                        ],
                        issuer,
                    ))
                }
                [(only, _)] if !request.select_account => only.clone(),
                _ if request.prompt_none => {
                    return Ok(request.back_with(
                        &[
                            ("error", "account_selection_required"),
                            ("error_description", "the user must choose a tenant"),
                        ],
                        issuer,
                    ))
                }
                _ => return Ok(tenant_page(request, csrf, &tenants)),
            }
        }
    };
    let code_request = CodeRequest {
        client: request.client.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        tenant,
        scope: request.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        consent: if request.client.first_party {
            ConsentStep::FirstParty
        } else if consent_given {
            ConsentStep::Given
        } else if request.prompt_consent {
            ConsentStep::Ask
        } else {
            ConsentStep::Stored
        },
    };
    match state
        .engine
        .issue_code(token, &code_request, &request_id())
        .await
    {
        Ok(CodeOutcome::Code(code)) => Ok(request.back_with(&[("code", &code)], issuer)),
        Ok(CodeOutcome::ConsentRequired) if request.prompt_none => Ok(request.back_with(
            &[
                ("error", "consent_required"),
                ("error_description", "the user has not allowed this client"),
            ],
            issuer,
        )),
        Ok(CodeOutcome::ConsentRequired) => Ok(consent_page(request, csrf, &code_request.tenant)),
        Err(domain::Error::Unauthenticated) => Ok(sign_in_page(request, csrf, "", false)),
        Err(domain::Error::InvalidCredentials) => Ok(request.back_with(
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "the user may not sign in to this tenant",
                ),
            ],
            issuer,
        )),
        Err(error) => Err(error.into()),
    }
}

/// A posted form, with its CSRF token checked against the cookie; a refusal is the
/// 403 page to answer.
fn checked_form(
    headers: &HeaderMap,
    body: &Bytes,
    csrf: &Csrf,
) -> Result<FormParams, Box<Response>> {
    let refuse = |message: &str| Box::new(error_page(StatusCode::FORBIDDEN, message, csrf));
    let form = FormParams::parse(body).map_err(|_| refuse("The form could not be read."))?;
    let posted = form.get("csrf").unwrap_or_default();
    match cookie(headers, CSRF_COOKIE) {
        Some(expected) if well_formed_token(expected) && expected == posted => Ok(form),
        _ => Err(refuse(
            "This form has expired or did not come from this site. Go back and try again.",
        )),
    }
}

/// The caller a browser's session token stands for, if it is live.
async fn session_caller(state: &AppState, token: &str) -> Option<Caller> {
    let principal = state.engine.authenticate(token).await.ok()?;
    Some(Caller {
        principal,
        request_id: request_id(),
    })
}

/// `POST /oauth2/authorize`: one step (password, TOTP, recovery code, tenant), then back
/// to the flow.
async fn authorize_step(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let setup = provider(&state)?;
    let secure_cookies = setup.issuer.starts_with("https://");
    let csrf = Csrf::of(&headers, secure_cookies);
    let form = match checked_form(&headers, &body, &csrf) {
        Ok(form) => form,
        Err(refused) => return Ok(*refused),
    };
    let request = match AuthRequest::parse(&state, form.get("request").unwrap_or_default()).await {
        Ok(request) => request,
        Err(stop) => return Ok(stop_response(stop, &setup.issuer, &csrf)),
    };
    let continue_with =
        |query: String| redirect(StatusCode::SEE_OTHER, &format!("/oauth2/authorize?{query}"));
    match form.get("step") {
        Some("password") => {
            password_step(
                &state,
                &request,
                &form,
                &csrf,
                address.0,
                &headers,
                secure_cookies,
            )
            .await
        }
        Some(step @ ("totp" | "recovery")) => {
            let Some(token) = cookie(&headers, SESSION_COOKIE) else {
                return Ok(sign_in_page(&request, &csrf, "", false));
            };
            let Some(caller) = session_caller(&state, token).await else {
                return Ok(sign_in_page(&request, &csrf, "", false));
            };
            let result = if step == "totp" {
                let code = form.get("code").unwrap_or_default();
                state.engine.step_up(&caller, code).await
            } else {
                let code = form.get("recovery_code").unwrap_or_default();
                state.engine.use_recovery_code(&caller, code).await
            };
            match result {
                Ok(_) => Ok(continue_with(request.query())),
                Err(domain::Error::InvalidTotp | domain::Error::InvalidCredentials) => {
                    Ok(totp_page(&request, &csrf, true))
                }
                Err(error) => throttled_or(error, &csrf),
            }
        }
        Some("tenant") => {
            let tenant = form.get("tenant").unwrap_or_default();
            Ok(continue_with(
                request.query_with(&[("tenant", Some(tenant))]),
            ))
        }
        Some("consent") => match form.get("decision") {
            Some("allow") => proceed(&state, &setup.issuer, &request, &csrf, &headers, true).await,
            Some("deny") => Ok(request.back_with(
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user did not allow this client"),
                ],
                &setup.issuer,
            )),
            _ => Ok(error_page(
                StatusCode::BAD_REQUEST,
                "The form could not be read.",
                &csrf,
            )),
        },
        _ => Ok(error_page(
            StatusCode::BAD_REQUEST,
            "The form could not be read.",
            &csrf,
        )),
    }
}

/// A refusal the pages show as a page: too many attempts (429, with `Retry-After`) or
/// the service overloaded; anything else is the API's answer.
fn throttled_or(error: domain::Error, csrf: &Csrf) -> Result<Response, ApiError> {
    let (status, retry_after) = match &error {
        domain::Error::RateLimited { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, *retry_after_secs)
        }
        domain::Error::Overloaded { retry_after_secs } => {
            (StatusCode::SERVICE_UNAVAILABLE, *retry_after_secs)
        }
        _ => return Err(ApiError::from(error)),
    };
    let mut response = error_page(
        status,
        "Too many attempts, or the service is busy. Wait a moment and try again.",
        csrf,
    );
    if let Ok(value) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

#[allow(clippy::too_many_arguments, reason = "one step of the page flow")]
async fn password_step(
    state: &AppState,
    request: &AuthRequest,
    form: &FormParams,
    csrf: &Csrf,
    address: Option<IpAddr>,
    headers: &HeaderMap,
    secure_cookies: bool,
) -> Result<Response, ApiError> {
    let typed = form.get("email").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    // A malformed email is refused like a wrong password: the page tells nothing more.
    let Ok(email) = Email::parse(typed) else {
        return Ok(sign_in_page(request, csrf, typed, true));
    };
    if let Err(error) = state
        .engine
        .throttle_login(&email, address, state.login_rate)
        .await
    {
        return throttled_or(error, csrf);
    }
    let origin = SessionOrigin {
        client_address: address.map(|address| address.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    let session = match state
        .engine
        .login_from(&email, password, &request_id(), &origin)
        .await
    {
        Ok(session) => session,
        Err(domain::Error::InvalidCredentials) => {
            return Ok(sign_in_page(request, csrf, typed, true))
        }
        Err(error) => return throttled_or(error, csrf),
    };
    // A tenant client signs in only its tenant's members: anyone else is answered as a
    // wrong password, and the session just made ends.
    if let Some(tenant) = request.client.id.owner() {
        let principal = state.engine.authenticate(&session.token).await?;
        let allowed = match principal.user_id() {
            Some(user) => state.engine.sign_in_allowed(user, tenant).await?,
            None => false,
        };
        if !allowed {
            let caller = Caller {
                principal,
                request_id: request_id(),
            };
            state.engine.logout(&caller).await?;
            return Ok(sign_in_page(request, csrf, typed, true));
        }
    }
    // The sign-in satisfies `prompt=login` and `max_age`: they leave the request.
    let mut response = redirect(
        StatusCode::SEE_OTHER,
        &format!(
            "/oauth2/authorize?{}",
            request.query_with(&[("prompt", None), ("max_age", None)])
        ),
    );
    set_cookie(
        &mut response,
        SESSION_COOKIE,
        &session.token,
        secure_cookies,
        false,
    );
    Ok(response)
}

/// `GET /oauth2/logout`: asks the user to confirm (OpenID Connect RP-Initiated Logout).
async fn logout_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let setup = provider(&state)?;
    let csrf = Csrf::of(&headers, setup.issuer.starts_with("https://"));
    let query = query.unwrap_or_default();
    if FormParams::parse(query.as_bytes()).is_err() {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "The sign-out request could not be read.",
            &csrf,
        ));
    }
    let body = format!(
        r#"<h1>Sign out</h1><p>Do you want to sign out?</p>
<form method="post" action="/oauth2/logout"><input type="hidden" name="request" value="{request}">{csrf}
<button type="submit">Sign out</button></form>"#,
        request = escape(&query),
        csrf = csrf.field(),
    );
    Ok(page(StatusCode::OK, "Sign out", &body, &csrf))
}

/// `POST /oauth2/logout`: ends the browser's session, then returns to the client's
/// registered post-logout URI (with `state`) or says it is done.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let setup = provider(&state)?;
    let secure_cookies = setup.issuer.starts_with("https://");
    let csrf = Csrf::of(&headers, secure_cookies);
    let form = match checked_form(&headers, &body, &csrf) {
        Ok(form) => form,
        Err(refused) => return Ok(*refused),
    };
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Some(caller) = session_caller(&state, token).await {
            state.engine.logout(&caller).await?;
        }
    }
    let request =
        FormParams::parse(form.get("request").unwrap_or_default().as_bytes()).unwrap_or_default();
    let client_id = match (request.get("client_id"), request.get("id_token_hint")) {
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(hint)) => audience_of(setup, &state, hint).await?,
        (None, None) => None,
    };
    let target = match (client_id, request.get("post_logout_redirect_uri")) {
        (Some(id), Some(uri)) => state
            .engine
            .find_oauth_client(&id)
            .await?
            .filter(|client| {
                client
                    .post_logout_redirect_uris
                    .iter()
                    .any(|known| known == uri)
            })
            .map(|_| uri.to_owned()),
        _ => None,
    };
    let mut response = match target {
        Some(mut uri) => {
            if let Some(state_param) = request.get("state") {
                uri.push(if uri.contains('?') { '&' } else { '?' });
                uri.push_str(&format!("state={}", percent_encode(state_param)));
            }
            redirect(StatusCode::SEE_OTHER, &uri)
        }
        None => page(
            StatusCode::OK,
            "Signed out",
            "<h1>Signed out</h1><p>You are signed out. You may close this window.</p>",
            &csrf,
        ),
    };
    set_cookie(&mut response, SESSION_COOKIE, "", secure_cookies, true);
    Ok(response)
}

/// The `aud` of an ID token this provider signed with a published key (expired or
/// not: a logout often comes after it expired): which client a logout came from.
async fn audience_of(
    setup: &crate::app::SigningSetup,
    state: &AppState,
    hint: &str,
) -> Result<Option<String>, ApiError> {
    let keys = state.engine.signing_keys().await?;
    Ok(setup
        .vault
        .verify(&keys, "JWT", hint)
        .ok()
        .and_then(|claims| {
            claims
                .get("aud")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        }))
}
