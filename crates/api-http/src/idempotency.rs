//! `Idempotency-Key` on POSTs (SPEC §4): a replay returns the first response, the same
//! key with another body is 422 `idempotency_key_reused`, a replay while the first is
//! still running is 409.
//!
//! Records live in the shared store for 24 hours (`Engine::claim_idempotency_key`), so a
//! retry that reaches another node replays too. A key is scoped to the caller's
//! credential (its bearer token) and the path, which names the tenant. The store never
//! sees the token, the client's key, the body or the response in the clear: from them
//! this module derives a secret, and the store holds only a hash of it (the record's
//! key), a keyed hash of the body (its tag) and the response sealed with
//! ChaCha20-Poly1305 under it. A first answer may carry a session token or an API key;
//! at rest it is readable only by whoever presents the same token and key again.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::errors::ApiError;
use crate::extract::{bearer, MAX_BODY_BYTES};

const MAX_KEY_CHARS: usize = 255;

/// What one `Idempotency-Key` of one caller on one path derives.
struct Scope {
    /// Never stored: the secret the record's key, the body tag and the seal come from.
    secret: [u8; 32],
    /// The record's key in the store.
    key: String,
}

impl Scope {
    fn new(token: &str, path: &str, client_key: &str) -> Self {
        let secret: [u8; 32] = Sha256::new()
            .chain_update(b"user-engine idempotency\n")
            .chain_update(token.as_bytes())
            .chain_update(b"\n")
            .chain_update(path.as_bytes())
            .chain_update(b"\n")
            .chain_update(client_key.as_bytes())
            .finalize()
            .into();
        let key = hex::encode(
            Sha256::new()
                .chain_update(b"key\n")
                .chain_update(secret)
                .finalize(),
        );
        Self { secret, key }
    }

    /// The body's tag: keyed, so the store cannot test guesses of a body (a login's
    /// password) against it.
    fn body_tag(&self, body: &[u8]) -> String {
        hex::encode(
            Sha256::new()
                .chain_update(b"body\n")
                .chain_update(self.secret)
                .chain_update(body)
                .finalize(),
        )
    }

    fn cipher(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&CHACHA20_POLY1305, &self.secret)
            .ok()
            .map(LessSafeKey::new)
    }

    /// The response sealed: a fresh nonce, then the ciphertext and its tag, bound to the
    /// record's key.
    fn seal(&self, response: &Stored) -> Option<Vec<u8>> {
        let mut plain = serde_json::to_vec(response).ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        self.cipher()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.key.as_bytes()),
                &mut plain,
            )
            .ok()?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&plain);
        Some(sealed)
    }

    fn open(&self, sealed: &[u8]) -> Option<Stored> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .cipher()?
            .open_in_place(nonce, Aad::from(self.key.as_bytes()), &mut buffer)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

/// A first response, as it is replayed.
#[derive(Serialize, Deserialize)]
struct Stored {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Stored {
    fn new(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        Self {
            status: status.as_u16(),
            headers: headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect(),
            body: hex::encode(body),
        }
    }

    fn replay(self) -> Option<Response> {
        let status = StatusCode::from_u16(self.status).ok()?;
        let body = hex::decode(self.body).ok()?;
        let mut response = (status, body).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(
                HeaderName::try_from(name).ok()?,
                HeaderValue::try_from(value).ok()?,
            );
        }
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        Some(response)
    }
}

fn reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used with another body",
    )
}

fn in_use() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "a request with this Idempotency-Key is still running",
    )
}

/// The middleware: only POSTs that carry an `Idempotency-Key`.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(client_key) = request
        .headers()
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    if client_key.is_empty() || client_key.chars().count() > MAX_KEY_CHARS {
        return ApiError::invalid("Idempotency-Key must be 1 to 255 characters").into_response();
    }
    let scope = Scope::new(
        bearer(request.headers()).unwrap_or_default(),
        request.uri().path(),
        &client_key,
    );
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body must be at most {MAX_BODY_BYTES} bytes"),
        )
        .into_response();
    };
    let body_tag = scope.body_tag(&bytes);
    match state
        .engine
        .claim_idempotency_key(&scope.key, &body_tag)
        .await
    {
        Err(error) => return ApiError::from(error).into_response(),
        Ok(Some(first)) if first.body_tag != body_tag => return reused().into_response(),
        Ok(Some(first)) => {
            return match first.response {
                None => in_use().into_response(),
                // Only a record written behind the API's back fails to open.
                Some(sealed) => scope
                    .open(&sealed)
                    .and_then(Stored::replay)
                    .unwrap_or_else(|| in_use().into_response()),
            };
        }
        Ok(None) => {}
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX)
        .await
        .unwrap_or_else(|_| Bytes::new());
    // Only the request's outcome is replayed. A server error, "try again later" (429)
    // and "who are you" (401) are not: the key is freed, so a retry after Retry-After
    // runs again, and requests that authenticate nobody leave no record behind.
    let sealed = if parts.status.is_server_error()
        || matches!(
            parts.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::UNAUTHORIZED
        ) {
        None
    } else {
        scope.seal(&Stored::new(parts.status, &parts.headers, &body))
    };
    if let Err(error) = state
        .engine
        .finish_idempotency_key(&scope.key, sealed)
        .await
    {
        // The change stands; a retry finds the key running until its claim lapses.
        tracing::warn!(%error, "idempotency record not stored");
    }
    Response::from_parts(parts, Body::from(body))
}
