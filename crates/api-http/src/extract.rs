//! Request parsing: JSON bodies (415, 413, 400 as problem+json), bearer authentication,
//! tenant resolution in the order of SPEC §3.1, list parameters.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use domain::ids::{TenantId, UserId};
use domain::usecases::Caller;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde_json::Value;

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
        serde_json::from_slice::<Value>(&bytes)
            .and_then(|value| T::deserialize(ObjectsOnly(value)))
            .map(JsonBody)
            .map_err(|error| ApiError::invalid(format!("invalid JSON body: {error}")))
    }
}

/// A parsed JSON value that deserializes as `serde_json::Value` does, except that a
/// struct is read only from an object, at every depth. Serde's derived `Deserialize`
/// also reads a struct from an array, field by field in order, so without this
/// `["root@example.com","…"]` would log in (SPEC §4: an array is not an object).
struct ObjectsOnly(Value);

impl<'de> IntoDeserializer<'de, serde_json::Error> for ObjectsOnly {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for ObjectsOnly {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => {
                let mut items = SeqDeserializer::new(items.into_iter().map(ObjectsOnly));
                let value = visitor.visit_seq(&mut items)?;
                items.end()?;
                Ok(value)
            }
            Value::Object(fields) => {
                let mut fields = MapDeserializer::new(
                    fields
                        .into_iter()
                        .map(|(key, value)| (key, ObjectsOnly(value))),
                );
                let value = visitor.visit_map(&mut fields)?;
                fields.end()?;
                Ok(value)
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match &self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &"a JSON object")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // The request bodies have only unit-variant enums, read from strings.
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// What a value is, for "invalid type" messages.
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(boolean) => de::Unexpected::Bool(*boolean),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(text) => de::Unexpected::Str(text),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
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
            Some(token) => match self.engine.authenticate(token).await {
                Err(domain::Error::Unauthenticated) => self
                    .client_principal(token)
                    .await?
                    .ok_or(domain::Error::Unauthenticated),
                resolved => resolved,
            },
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

    /// The principal of a tenant client's own access token (`client_credentials`, SPEC
    /// §9), when the provider is on and `token` is one: it acts like the tenant's API key
    /// with the token's scopes.
    pub(crate) async fn client_principal(
        &self,
        token: &str,
    ) -> Result<Option<domain::usecases::Principal>, ApiError> {
        match &self.signing {
            Some(setup) if token.split('.').count() == 3 => {
                Ok(self.engine.client_principal(setup.issuer(), token).await?)
            }
            _ => Ok(None),
        }
    }

    /// The answer to a request whose token authenticated nobody: the failure counts
    /// against the client address (429 past the limit, and no record), else 401 and, on
    /// an existing tenant, a `denied` record in its trail.
    pub(crate) async fn refuse_unauthenticated(&self, tenant: Option<&TenantId>) -> ApiError {
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
        let resolved = match self
            .engine
            .authenticate_for_tenant(&tenant, bearer(headers))
            .await
        {
            // The tenant exists; the token may still be a client's own access token.
            Err(domain::Error::Unauthenticated) => match bearer(headers) {
                Some(token) => self
                    .client_principal(token)
                    .await?
                    .ok_or(domain::Error::Unauthenticated),
                None => Err(domain::Error::Unauthenticated),
            },
            resolved => resolved,
        };
        let principal = match resolved {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use serde::Deserialize;
    use serde_json::{json, Value};

    use super::ObjectsOnly;
    use crate::dto::{BatchBody, CreateTenantBody, LoginBody, ScopesBody, ValueBody};

    fn read<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, serde_json::Error> {
        T::deserialize(ObjectsOnly(value))
    }

    #[test]
    fn an_array_is_not_read_as_an_object_at_any_depth() {
        assert!(read::<LoginBody>(json!(["root@example.com", "change me please"])).is_err());
        let nested = json!({"id": "arr", "display_name": "Arr", "admin": ["a@example.com", null]});
        assert!(read::<CreateTenantBody>(nested).is_err());
        let top = json!(["arr", "Arr", {"email": "a@example.com"}]);
        assert!(read::<CreateTenantBody>(top).is_err());
        let checks = json!({"checks": [["docs:edit"]]});
        assert!(read::<BatchBody>(checks).is_err());
    }

    #[test]
    fn objects_lists_and_values_read_as_before() {
        let login: LoginBody =
            read(json!({"email": "root@example.com", "password": "pw"})).unwrap();
        assert_eq!(login.email, "root@example.com");
        let tenant: CreateTenantBody = read(
            json!({"id": "acme", "display_name": "Acme", "admin": {"email": "a@example.com"}}),
        )
        .unwrap();
        assert_eq!(tenant.admin.email.as_deref(), Some("a@example.com"));
        let scopes: ScopesBody = read(json!({"scopes": ["docs:edit", "tenant:read"]})).unwrap();
        assert_eq!(scopes.scopes.len(), 2);
        let value: ValueBody = read(json!({"value": 3.5})).unwrap();
        assert_eq!(value.value, json!(3.5));
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_still_refused() {
        assert!(read::<LoginBody>(json!({"email": "a@b.c", "password": "p", "x": 1})).is_err());
        assert!(read::<ScopesBody>(json!({"scopes": "docs:edit"})).is_err());
        assert!(read::<ScopesBody>(json!({"scopes": {"0": "docs:edit"}})).is_err());
        assert!(read::<LoginBody>(json!("root@example.com")).is_err());
    }
}
