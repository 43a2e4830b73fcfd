//! Request parsing: JSON bodies (415, 413, 400 as problem+json), bearer authentication,
//! tenant resolution in the order of SPEC §3.1, list parameters.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use domain::ids::{TenantId, UserId};
use domain::usecases::Caller;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::errors::{request_id, ApiError};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body: `Content-Type: application/json` (else 415), at most 64 KiB (else 413),
/// well-formed and without unknown fields (else 400).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|mime| mime.trim().to_ascii_lowercase())
            .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"));
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("the body must be at most {MAX_BODY_BYTES} bytes"),
                    )
                } else {
                    ApiError::invalid(format!("the body could not be read: {rejection}"))
                }
            })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| ApiError::invalid(format!("invalid JSON body: {error}")))
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

impl AppState {
    /// Authenticates the request's bearer token (401 otherwise, 429 once the client
    /// address has failed too often).
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let principal = match bearer(headers) {
            Some(token) => self.engine.authenticate(token).await,
            None => Err(domain::Error::Unauthenticated),
        };
        let principal = match principal {
            Ok(principal) => principal,
            Err(domain::Error::Store(store)) => return Err(domain::Error::Store(store).into()),
            Err(_) => return Err(self.refuse_unauthenticated(None).await),
        };
        Ok(Caller {
            principal,
            request_id: request_id(),
        })
    }

    /// The answer to a request whose token authenticated nobody: the failure counts
    /// against the client address (429 past the limit, and no record), else 401 and, on
    /// an existing tenant, a `denied` record in its trail.
    async fn refuse_unauthenticated(&self, tenant: Option<&TenantId>) -> ApiError {
        match self
            .engine
            .refuse_unauthenticated(
                tenant,
                crate::app::current_client_address(),
                self.auth_failure_rate,
                &request_id(),
            )
            .await
        {
            domain::Error::Unauthenticated => ApiError::unauthenticated(),
            error => error.into(),
        }
    }

    /// Resolves a tenant path segment then the caller, in the order of SPEC §3.1:
    /// validate the slug (400) → load the tenant (404) → authenticate (401).
    pub async fn tenant_caller(
        &self,
        tenant: &str,
        headers: &HeaderMap,
    ) -> Result<(TenantId, Caller), ApiError> {
        let tenant = TenantId::parse(tenant)?;
        let principal = match self
            .engine
            .authenticate_for_tenant(&tenant, bearer(headers))
            .await
        {
            Ok(principal) => principal,
            Err(error @ (domain::Error::TenantNotFound | domain::Error::Store(_))) => {
                return Err(error.into())
            }
            // The tenant exists (it was loaded first): the probe goes into its trail.
            Err(_) => return Err(self.refuse_unauthenticated(Some(&tenant)).await),
        };
        Ok((
            tenant,
            Caller {
                principal,
                request_id: request_id(),
            },
        ))
    }
}

/// A user id from the path (400 `invalid_user_id`).
pub fn user_id(text: &str) -> Result<UserId, ApiError> {
    Ok(UserId::parse(text)?)
}

/// `?limit=` (1–200, default 50) and `?after=`, plus any other query parameters.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub limit: usize,
    pub after: Option<String>,
    pub other: BTreeMap<String, String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ListParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(mut query) = Query::<BTreeMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::invalid(format!("invalid query string: {rejection}")))?;
        let limit = match query.remove("limit") {
            None => None,
            Some(text) => Some(
                text.parse::<usize>()
                    .map_err(|_| ApiError::invalid("limit must be a number between 1 and 200"))?,
            ),
        };
        Ok(Self {
            limit: domain::usecases::page_limit(limit)?,
            after: query.remove("after").filter(|after| !after.is_empty()),
            other: query,
        })
    }
}

/// The client's IP address (SPEC §3.6: the peer, or behind a trusted proxy the nearest
/// untrusted forwarded hop), when the server runs with connect info (else `None`).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // The router's client-context layer put it there; without that layer no proxy is
        // trusted and the peer is the client.
        Ok(parts.extensions.get::<Self>().copied().unwrap_or_else(|| {
            Self(crate::app::client_address(
                &parts.extensions,
                &parts.headers,
                &[],
            ))
        }))
    }
}

/// Path parameters whose rejection (say, percent-encoding that is not UTF-8) is a
/// problem+json 400 like every other bad input.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| ApiError::invalid(format!("invalid path: {rejection}")))
    }
}
