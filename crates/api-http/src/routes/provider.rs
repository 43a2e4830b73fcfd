//! The OpenID provider's protocol endpoints (SPEC §9): discovery, token (RFC 6749 §3.2:
//! `authorization_code` with PKCE, `refresh_token`, `client_credentials`), userinfo,
//! revocation (RFC 7009) and introspection (RFC 7662). They speak OAuth's own forms and
//! errors (`application/x-www-form-urlencoded` in, `{error, error_description}` out), which
//! relying-party libraries read, rather than problem+json; they are served only when the
//! provider has a key vault, and are described by the discovery document rather than by
//! `/openapi.json`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use domain::usecases::{ClientAuth, OAuthError};
use serde_json::{json, Value};

use crate::app::{AppState, SigningSetup};
use crate::errors::{request_id, ApiError};
use crate::extract::bearer;

/// The provider's routes besides the JWKS (which `oidc` registers with the document).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth2/token", post(token))
        .route("/oauth2/userinfo", get(userinfo).post(userinfo))
        .route("/oauth2/revoke", post(revoke))
        .route("/oauth2/introspect", post(introspect))
}

/// The provider's setup, or the 404 every provider route answers without a key vault.
pub(crate) fn provider(state: &AppState) -> Result<&SigningSetup, ApiError> {
    state.signing.as_deref().ok_or_else(ApiError::no_route)
}

async fn discovery(State(state): State<AppState>) -> Result<Response, ApiError> {
    let issuer = &provider(&state)?.issuer;
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "end_session_endpoint": format!("{issuer}/oauth2/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": domain::oidc::OPENID_SCOPES,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr",
            "amr", "sid", "tenant", "email", "email_verified", "at_hash", "azp"],
        "acr_values_supported": ["aal1", "aal2"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    let mut response = Json(document).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

/// A form body's parameters, each at most once (RFC 6749 §3.2: "parameters MUST NOT be
/// included more than once").
#[derive(Debug, Default)]
pub(crate) struct FormParams(Vec<(String, String)>);

impl FormParams {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in text.split('&').filter(|part| !part.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = percent_decode(name).ok_or("a parameter is not well encoded")?;
            let value = percent_decode(value).ok_or("a parameter is not well encoded")?;
            if pairs.iter().any(|(known, _)| known == &name) {
                return Err(format!("parameter {name} is repeated"));
            }
            pairs.push((name, value));
        }
        Ok(Self(pairs))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; the
/// result must be UTF-8. `None` for a bad escape.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let high = (input.next()? as char).to_digit(16)?;
                let low = (input.next()? as char).to_digit(16)?;
                bytes.push(u8::try_from(high * 16 + low).ok()?);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    no_store(&mut response);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"user-engine\""),
        );
    }
    response
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// What a provider endpoint refuses with: an OAuth error, or one of the API's own
/// answers (no provider configured, a store failure).
pub(crate) enum OAuthAnswer {
    OAuth(OAuthError),
    Api(ApiError),
}

impl IntoResponse for OAuthAnswer {
    fn into_response(self) -> Response {
        match self {
            Self::Api(error) => error.into_response(),
            Self::OAuth(OAuthError::Server(error)) => ApiError::from(error).into_response(),
            Self::OAuth(OAuthError::InvalidClient) => oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            ),
            Self::OAuth(error) => {
                oauth_error(StatusCode::BAD_REQUEST, error.code(), &error.to_string())
            }
        }
    }
}

impl From<OAuthError> for OAuthAnswer {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

impl From<ApiError> for OAuthAnswer {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

/// How the client authenticated (RFC 6749 §2.3.1): HTTP Basic with the form-encoded id
/// and secret, or `client_id` (and `client_secret`) in the body; never both.
fn client_auth(headers: &HeaderMap, form: &FormParams) -> Result<ClientAuth, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, credentials) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| credentials.trim().to_owned())
        });
    match basic {
        Some(credentials) => {
            if form.get("client_secret").is_some() {
                return Err(OAuthError::InvalidRequest(
                    "use one client authentication method".to_owned(),
                ));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(OAuthError::InvalidClient)?;
            let (id, secret) = decoded.split_once(':').ok_or(OAuthError::InvalidClient)?;
            let id = percent_decode(id).ok_or(OAuthError::InvalidClient)?;
            let secret = percent_decode(secret).ok_or(OAuthError::InvalidClient)?;
            if form.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::InvalidClient);
            }
            Ok(ClientAuth {
                client_id: id,
                secret: Some(secret),
            })
        }
        None => Ok(ClientAuth {
            client_id: form
                .get("client_id")
                .ok_or(OAuthError::InvalidClient)?
                .to_owned(),
            secret: form.get("client_secret").map(str::to_owned),
        }),
    }
}

fn form_of(headers: &HeaderMap, body: &Bytes) -> Result<FormParams, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| {
            value
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".to_owned(),
        ));
    }
    FormParams::parse(body).map_err(OAuthError::InvalidRequest)
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthAnswer> {
    let setup = provider(&state)?;
    let (client, form) = client_and_form(&state, &headers, &body).await?;
    let issuer = setup.issuer();
    let request_id = request_id();
    setup
        .ensure(&state.engine, &request_id)
        .await
        .map_err(OAuthError::Server)?;
    let tokens = match form.get("grant_type") {
        Some("authorization_code") => {
            let code = form
                .get("code")
                .ok_or_else(|| OAuthError::InvalidRequest("code is required".to_owned()))?;
            state
                .engine
                .redeem_code(
                    issuer,
                    &client,
                    code,
                    form.get("redirect_uri"),
                    form.get("code_verifier"),
                    &request_id,
                )
                .await?
        }
        Some("refresh_token") => {
            let refresh = form.get("refresh_token").ok_or_else(|| {
                OAuthError::InvalidRequest("refresh_token is required".to_owned())
            })?;
            state
                .engine
                .refresh_tokens(issuer, &client, refresh, &request_id)
                .await?
        }
        Some("client_credentials") => {
            state
                .engine
                .client_credentials(issuer, &client, form.get("scope"), &request_id)
                .await?
        }
        Some(_) => {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token or client_credentials",
            ))
        }
        None => return Err(OAuthError::InvalidRequest("grant_type is required".to_owned()).into()),
    };
    let mut answer = serde_json::Map::new();
    answer.insert("access_token".to_owned(), tokens.access_token.into());
    answer.insert("token_type".to_owned(), "Bearer".into());
    answer.insert("expires_in".to_owned(), tokens.expires_in.into());
    answer.insert("scope".to_owned(), tokens.scope.into());
    if let Some(id_token) = tokens.id_token {
        answer.insert("id_token".to_owned(), id_token.into());
    }
    if let Some(refresh_token) = tokens.refresh_token {
        answer.insert("refresh_token".to_owned(), refresh_token.into());
    }
    let mut response = Json(Value::Object(answer)).into_response();
    no_store(&mut response);
    Ok(response)
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let setup = provider(&state)?;
    let refused = || {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        response
    };
    let Some(token) = bearer(&headers) else {
        return Ok(refused());
    };
    match state.engine.userinfo(setup.issuer(), token).await? {
        Some(info) => {
            let mut response = Json(info).into_response();
            no_store(&mut response);
            Ok(response)
        }
        None => Ok(refused()),
    }
}

/// The form of a client's request and the client it authenticates.
async fn client_and_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(domain::oidc::OAuthClient, FormParams), OAuthError> {
    let form = form_of(headers, body)?;
    let client = state
        .engine
        .authenticate_client(&client_auth(headers, &form)?)
        .await?;
    Ok((client, form))
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthAnswer> {
    provider(&state)?;
    let (client, form) = client_and_form(&state, &headers, &body).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::InvalidRequest("token is required".to_owned()))?;
    state
        .engine
        .revoke_token(&client, token, &request_id())
        .await?;
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    Ok(response)
}

async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthAnswer> {
    let setup = provider(&state)?;
    let (client, form) = client_and_form(&state, &headers, &body).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::InvalidRequest("token is required".to_owned()))?;
    let described = state
        .engine
        .introspect(setup.issuer(), &client, token)
        .await?;
    let mut response = Json(described).into_response();
    no_store(&mut response);
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn form_parameters_decode_and_refuse_repeats() {
        let form = FormParams::parse(b"grant_type=authorization_code&code=a%2Bb+c&empty=").unwrap();
        assert_eq!(form.get("code"), Some("a+b c"));
        assert_eq!(form.get("empty"), None);
        assert!(FormParams::parse(b"a=1&a=2").is_err());
        assert!(FormParams::parse(b"a=%zz").is_err());
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(
            percent_decode(&percent_encode("é?&=")).as_deref(),
            Some("é?&=")
        );
    }
}
