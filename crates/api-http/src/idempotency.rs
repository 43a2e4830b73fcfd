//! `Idempotency-Key` on POSTs (SPEC §4): a replay returns the first response, the same
//! key with another body is 422 `idempotency_key_reused`, a replay while the first is
//! still running is 409.
//!
//! Keys are scoped to the caller's credential (its bearer token, hashed) and the path,
//! which names the tenant. They live in this process for 24 hours: a client retrying
//! against another node of a scaled-out deployment is not deduplicated (a shared store
//! for keys is future work, noted in the README).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::errors::ApiError;
use crate::extract::{bearer, MAX_BODY_BYTES};

const KEEP_FOR: Duration = Duration::from_secs(24 * 60 * 60);
/// A request whose future was dropped (client gone) never finishes its entry; after this
/// long the key is free again.
const RUNNING_AT_MOST: Duration = Duration::from_secs(5 * 60);
const MAX_KEY_CHARS: usize = 255;

#[derive(Debug, Clone)]
enum Entry {
    Running {
        body_hash: [u8; 32],
        since: Instant,
    },
    Done {
        body_hash: [u8; 32],
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        at: Instant,
    },
}

/// The keys seen by this process.
#[derive(Debug, Default, Clone)]
pub struct IdempotencyKeys {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl IdempotencyKeys {
    /// Claims a key for a body: `Ok(None)` to go ahead, `Ok(Some(response))` to replay,
    /// `Err` for reuse or a replay still running.
    fn claim(&self, scope: &str, body_hash: [u8; 32]) -> Result<Option<Response>, ApiError> {
        let mut entries = self.entries.lock().map_err(|_| ApiError::invalid("busy"))?;
        entries.retain(|_, entry| match entry {
            Entry::Done { at, .. } => at.elapsed() < KEEP_FOR,
            Entry::Running { since, .. } => since.elapsed() < RUNNING_AT_MOST,
        });
        match entries.get(scope) {
            None => {
                entries.insert(
                    scope.to_owned(),
                    Entry::Running {
                        body_hash,
                        since: Instant::now(),
                    },
                );
                Ok(None)
            }
            Some(
                Entry::Running {
                    body_hash: first, ..
                }
                | Entry::Done {
                    body_hash: first, ..
                },
            ) if *first != body_hash => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with another body",
            )),
            Some(Entry::Running { .. }) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running",
            )),
            Some(Entry::Done {
                status,
                headers,
                body,
                ..
            }) => {
                let mut response = (*status, body.clone()).into_response();
                for (name, value) in headers {
                    response.headers_mut().insert(name, value.clone());
                }
                response.headers_mut().insert(
                    "idempotent-replayed",
                    axum::http::HeaderValue::from_static("true"),
                );
                Ok(Some(response))
            }
        }
    }

    fn finish(&self, scope: &str, entry: Option<Entry>) {
        if let Ok(mut entries) = self.entries.lock() {
            match entry {
                Some(entry) => entries.insert(scope.to_owned(), entry),
                None => entries.remove(scope),
            };
        }
    }
}

/// The middleware: only POSTs that carry an `Idempotency-Key`.
pub async fn middleware(
    State(keys): State<IdempotencyKeys>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request
        .headers()
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return ApiError::invalid("Idempotency-Key must be 1 to 255 characters").into_response();
    }
    let credential = bearer(request.headers())
        .map(|token| hex::encode(hash(token.as_bytes())))
        .unwrap_or_default();
    let scope = format!("{credential}\n{}\n{key}", request.uri().path());
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body must be at most {MAX_BODY_BYTES} bytes"),
        )
        .into_response();
    };
    let body_hash = hash(&bytes);
    match keys.claim(&scope, body_hash) {
        Err(error) => return error.into_response(),
        Ok(Some(replay)) => return replay,
        Ok(None) => {}
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        keys.finish(&scope, None);
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // A server error is not an answer worth replaying: the key is freed for a retry.
    let entry = (!parts.status.is_server_error()).then(|| Entry::Done {
        body_hash,
        status: parts.status,
        headers: parts.headers.clone(),
        body: body.clone(),
        at: Instant::now(),
    });
    keys.finish(&scope, entry);
    Response::from_parts(parts, Body::from(body))
}
