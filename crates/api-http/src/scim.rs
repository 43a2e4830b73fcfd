//! SCIM 2.0 (RFC 7643, RFC 7644) at `/scim/v2/tenants/{tenant}/` (SPEC §8): discovery,
//! `Users` and `Groups`. Authentication is a tenant API key holding `scim:write`; every
//! operation goes through the engine's SCIM use cases, so `decide`, the audit record and
//! the events are those of any other change.
//!
//! Errors are SCIM error bodies (`urn:ietf:params:scim:api:messages:2.0:Error`), never
//! problem+json: [`scim_errors`] rewrites every problem a `/scim/` request gets —
//! a handler's, the body limit's, the deadline's, the panic guard's, the tenant gate's
//! (which answers an outsider's malformed request as a missing tenant, as on `/v1`) —
//! so none escapes in the other format. Responses are `application/scim+json`.
//!
//! These routes are not in `/openapi.json`: SCIM's own discovery endpoints describe
//! them, as RFC 7644 §4 intends.

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use domain::ids::{TenantId, UserId};
use domain::scim::filter::AttrPath;
use domain::scim::patch::parse_patch;
use domain::scim::schema::{self, Capabilities};
use domain::usecases::{ScimListQuery, ScimRole, ScimUser, SCIM_MAX_RESULTS};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::errors::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path};

/// The SCIM error message URN.
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SCIM_JSON: &str = "application/scim+json";
/// Where the SCIM routes live.
const PREFIX: &str = "/scim/v2/tenants/";
/// Resources a list returns when `count` is not given.
const DEFAULT_COUNT: u64 = 100;
/// The largest problem body read back to rewrite it.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// The SCIM routes.
pub fn routes() -> Router<AppState> {
    let base = "/scim/v2/tenants/{tenant}";
    Router::new()
        .route(
            &format!("{base}/ServiceProviderConfig"),
            get(service_provider_config),
        )
        .route(&format!("{base}/ResourceTypes"), get(resource_types))
        .route(&format!("{base}/ResourceTypes/{{id}}"), get(resource_type))
        .route(&format!("{base}/Schemas"), get(schemas))
        .route(&format!("{base}/Schemas/{{id}}"), get(schema_by_id))
        .route(&format!("{base}/.search"), post(search_everything))
        .route(&format!("{base}/Users/.search"), post(search_users))
        .route(&format!("{base}/Groups/.search"), post(search_groups))
        .route(&format!("{base}/Users"), get(list_users).post(create_user))
        .route(
            &format!("{base}/Users/{{id}}"),
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route(
            &format!("{base}/Groups"),
            get(list_groups).post(create_group),
        )
        .route(
            &format!("{base}/Groups/{{id}}"),
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
}

/// The tenant's SCIM base URL, from the configured public URL when there is one, else
/// from the request's `Host`.
fn base_url(state: &AppState, headers: &HeaderMap, tenant: &TenantId) -> String {
    let origin = match &state.signing {
        Some(signing) => signing.issuer.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .filter(|host| {
                    host.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
                })
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    format!("{origin}{PREFIX}{tenant}")
}

/// A SCIM JSON answer.
fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}

fn with_header(mut response: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
    response
}

fn scim_invalid(scim_type: &'static str, detail: impl Into<String>) -> ApiError {
    domain::Error::ScimInvalid {
        scim_type,
        detail: detail.into(),
    }
    .into()
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.9), comma-separated paths.
fn attribute_list(list: Option<&str>) -> ApiResult<Vec<AttrPath>> {
    list.map_or(Ok(Vec::new()), |list| {
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                AttrPath::parse(name).map_err(|error| {
                    scim_invalid("invalidValue", format!("attributes: {}", error.message()))
                })
            })
            .collect()
    })
}

/// The query of a list or a read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimQuery {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
    sort_by: Option<String>,
}

impl ScimQuery {
    /// A `POST …/.search` body (RFC 7644 §3.4.3) as the query it stands for.
    fn of_search(body: &Value) -> ApiResult<Self> {
        let Value::Object(members) = body else {
            return Err(scim_invalid(
                "invalidSyntax",
                "a SearchRequest is a JSON object",
            ));
        };
        let mut query = Self::default();
        for (name, value) in members {
            let list = || -> ApiResult<Option<String>> {
                match value {
                    Value::Null => Ok(None),
                    Value::Array(names) => names
                        .iter()
                        .map(|name| {
                            name.as_str().map(str::to_owned).ok_or_else(|| {
                                scim_invalid("invalidValue", "attribute names are strings")
                            })
                        })
                        .collect::<ApiResult<Vec<String>>>()
                        .map(|names| Some(names.join(","))),
                    _ => Err(scim_invalid(
                        "invalidValue",
                        format!("{name} must be an array"),
                    )),
                }
            };
            let scalar = || -> ApiResult<Option<String>> {
                match value {
                    Value::Null => Ok(None),
                    Value::String(text) => Ok(Some(text.clone())),
                    Value::Number(number) => Ok(Some(number.to_string())),
                    _ => Err(scim_invalid(
                        "invalidValue",
                        format!("{name} must be a scalar"),
                    )),
                }
            };
            match name.to_ascii_lowercase().as_str() {
                "schemas" => {}
                "attributes" => query.attributes = list()?,
                "excludedattributes" => query.excluded_attributes = list()?,
                "filter" => query.filter = scalar()?,
                "startindex" => query.start_index = scalar()?,
                "count" => query.count = scalar()?,
                "sortby" => query.sort_by = scalar()?,
                "sortorder" => {}
                _ => {
                    return Err(scim_invalid(
                        "invalidSyntax",
                        format!("a SearchRequest has no member {name}"),
                    ))
                }
            }
        }
        Ok(query)
    }

    fn list(&self) -> ApiResult<ScimListQuery> {
        let number = |value: &Option<String>, what: &str| -> ApiResult<Option<i64>> {
            value
                .as_deref()
                .map(|text| {
                    text.trim().parse::<i64>().map_err(|_| {
                        scim_invalid("invalidValue", format!("{what} must be an integer"))
                    })
                })
                .transpose()
        };
        if self.sort_by.is_some() {
            return Err(scim_invalid(
                "invalidValue",
                "sorting is not supported (ServiceProviderConfig says so)",
            ));
        }
        // RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count is 0.
        let start_index = number(&self.start_index, "startIndex")?.unwrap_or(1).max(1);
        let count = number(&self.count, "count")?.map_or(DEFAULT_COUNT, |count| {
            u64::try_from(count.max(0)).unwrap_or(0)
        });
        Ok(ScimListQuery {
            filter: self
                .filter
                .clone()
                .filter(|filter| !filter.trim().is_empty()),
            start_index: u64::try_from(start_index).unwrap_or(1),
            count: count.min(SCIM_MAX_RESULTS),
        })
    }

    fn projection(&self) -> ApiResult<(Vec<AttrPath>, Vec<AttrPath>)> {
        Ok((
            attribute_list(self.attributes.as_deref())?,
            attribute_list(self.excluded_attributes.as_deref())?,
        ))
    }

    /// Whether a Group's `members` are asked for.
    fn wants_members(&self) -> ApiResult<bool> {
        let (attributes, excluded) = self.projection()?;
        let members = |path: &AttrPath| path.name.eq_ignore_ascii_case("members");
        Ok(if attributes.is_empty() {
            !excluded
                .iter()
                .any(|path| members(path) && path.sub.is_none())
        } else {
            attributes.iter().any(members)
        })
    }
}

fn project(resource: &Value, query: &ScimQuery) -> ApiResult<Value> {
    let (attributes, excluded) = query.projection()?;
    Ok(schema::project(resource, &attributes, &excluded))
}

fn list_response(total: u64, start_index: u64, resources: Vec<Value>) -> Response {
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

/// A member's version from `If-Match` (`W/"3"` or `"3"`); a tag of another form can
/// match no version (412).
fn if_match_version(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    match if_match(headers) {
        None => Ok(None),
        Some(tag) => tag
            .trim_matches('"')
            .parse()
            .map(Some)
            .map_err(|_| domain::Error::PreconditionFailed.into()),
    }
}

/// `If-Match` as sent, `None` for none or `*`.
fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().trim_start_matches("W/").to_owned())
        .filter(|value| value != "*")
}

/// A group's ETag compared as `If-Match` gives it (weak or not).
fn if_match_etag(headers: &HeaderMap) -> Option<String> {
    if_match(headers).map(|tag| format!("W/{tag}"))
}

fn user_id(id: &str) -> ApiResult<UserId> {
    // Not a user id: no such member (ids are never guessed at).
    UserId::parse(id).map_err(|_| domain::Error::MemberNotFound.into())
}

fn user_answer(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &TenantId,
    user: &ScimUser,
    status: StatusCode,
    query: &ScimQuery,
) -> ApiResult<Response> {
    let location = format!(
        "{}/Users/{}",
        base_url(state, headers, tenant),
        user.member.user_id
    );
    let resource = project(&user.resource(location.clone()), query)?;
    let response = scim_json(status, &resource);
    let response = with_header(
        response,
        header::ETAG,
        &format!("W/\"{}\"", user.member.version),
    );
    Ok(if status == StatusCode::CREATED {
        with_header(response, header::LOCATION, &location)
    } else {
        response
    })
}

fn group_answer(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &TenantId,
    group: &ScimRole,
    status: StatusCode,
    query: &ScimQuery,
) -> ApiResult<Response> {
    let base = base_url(state, headers, tenant);
    let resource = project(&group.resource(&base, true), query)?;
    let response = with_header(scim_json(status, &resource), header::ETAG, &group.etag());
    Ok(if status == StatusCode::CREATED {
        let location = format!("{base}/Groups/{}", group.role);
        with_header(response, header::LOCATION, &location)
    } else {
        response
    })
}

async fn service_provider_config(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state.engine.scim_discover(&caller, &tenant).await?;
    let base = base_url(&state, &headers, &tenant);
    let config = schema::service_provider_config(
        &base,
        Capabilities {
            bulk: None,
            max_results: u32::try_from(SCIM_MAX_RESULTS).unwrap_or(u32::MAX),
            sort: false,
        },
    );
    Ok(scim_json(StatusCode::OK, &config))
}

async fn resource_types(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state.engine.scim_discover(&caller, &tenant).await?;
    let types = schema::resource_types(&base_url(&state, &headers, &tenant));
    let total = types.len() as u64;
    Ok(list_response(total, 1, types))
}

async fn resource_type(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state.engine.scim_discover(&caller, &tenant).await?;
    schema::resource_types(&base_url(&state, &headers, &tenant))
        .into_iter()
        .find(|resource_type| resource_type["id"].as_str() == Some(id.as_str()))
        .map(|resource_type| scim_json(StatusCode::OK, &resource_type))
        .ok_or_else(|| domain::Error::NotFound.into())
}

async fn schemas(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state.engine.scim_discover(&caller, &tenant).await?;
    let base = base_url(&state, &headers, &tenant);
    let all: Vec<Value> = schema::schemas()
        .iter()
        .map(|schema| schema.to_json(&base))
        .collect();
    let total = all.len() as u64;
    Ok(list_response(total, 1, all))
}

async fn schema_by_id(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state.engine.scim_discover(&caller, &tenant).await?;
    let base = base_url(&state, &headers, &tenant);
    schema::schemas()
        .iter()
        .find(|schema| schema.id == id)
        .map(|schema| scim_json(StatusCode::OK, &schema.to_json(&base)))
        .ok_or_else(|| domain::Error::NotFound.into())
}

/// `POST /.search` across resource types is not offered: 501, as RFC 7644 §3.12 says
/// for an operation the service provider does not support.
async fn search_everything(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state.engine.scim_discover(&caller, &tenant).await?;
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "searching several resource types at once is not supported; search /Users or /Groups",
    ))
}

async fn search_users(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let query = ScimQuery::of_search(&body)?;
    users_page(&state, &headers, &tenant, &caller, &query).await
}

async fn search_groups(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let query = ScimQuery::of_search(&body)?;
    groups_page(&state, &headers, &tenant, &caller, &query).await
}

async fn list_users(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    users_page(&state, &headers, &tenant, &caller, &query).await
}

async fn users_page(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &TenantId,
    caller: &domain::usecases::Caller,
    query: &ScimQuery,
) -> ApiResult<Response> {
    let list = query.list()?;
    query.projection()?;
    let start_index = list.start_index;
    let page = state.engine.scim_list_users(caller, tenant, list).await?;
    let base = base_url(state, headers, tenant);
    let resources = page
        .users
        .iter()
        .map(|user| {
            project(
                &user.resource(format!("{base}/Users/{}", user.member.user_id)),
                query,
            )
        })
        .collect::<ApiResult<Vec<Value>>>()?;
    Ok(list_response(page.total, start_index, resources))
}

async fn get_user(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    query.projection()?;
    let user = user_id(&id)?;
    let found = state.engine.scim_get_user(&caller, &tenant, &user).await?;
    user_answer(&state, &headers, &tenant, &found, StatusCode::OK, &query)
}

async fn create_user(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    query.projection()?;
    let created = state
        .engine
        .scim_create_user(&caller, &tenant, &body)
        .await?;
    user_answer(
        &state,
        &headers,
        &tenant,
        &created,
        StatusCode::CREATED,
        &query,
    )
}

async fn replace_user(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    query.projection()?;
    let expected = if_match_version(&headers)?;
    let user = user_id(&id)?;
    let replaced = state
        .engine
        .scim_replace_user(&caller, &tenant, &user, &body, expected)
        .await?;
    user_answer(&state, &headers, &tenant, &replaced, StatusCode::OK, &query)
}

async fn patch_user(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    query.projection()?;
    let expected = if_match_version(&headers)?;
    let operations =
        parse_patch(&body).map_err(|error| scim_invalid(error.scim_type, error.detail))?;
    let user = user_id(&id)?;
    let patched = state
        .engine
        .scim_patch_user(&caller, &tenant, &user, &operations, expected)
        .await?;
    user_answer(&state, &headers, &tenant, &patched, StatusCode::OK, &query)
}

async fn delete_user(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let expected = if_match_version(&headers)?;
    let user = user_id(&id)?;
    state
        .engine
        .scim_delete_user(&caller, &tenant, &user, expected)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_groups(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    groups_page(&state, &headers, &tenant, &caller, &query).await
}

async fn groups_page(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &TenantId,
    caller: &domain::usecases::Caller,
    query: &ScimQuery,
) -> ApiResult<Response> {
    let list = query.list()?;
    let members = query.wants_members()?;
    let start_index = list.start_index;
    let page = state
        .engine
        .scim_list_groups(caller, tenant, list, members)
        .await?;
    let base = base_url(state, headers, tenant);
    let resources = page
        .groups
        .iter()
        .map(|group| project(&group.resource(&base, members), query))
        .collect::<ApiResult<Vec<Value>>>()?;
    Ok(list_response(page.total, start_index, resources))
}

async fn get_group(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let members = query.wants_members()?;
    let group = state
        .engine
        .scim_get_group(&caller, &tenant, &id, members)
        .await?;
    let base = base_url(&state, &headers, &tenant);
    let resource = project(&group.resource(&base, members), &query)?;
    // The ETag of a group read without its members would not be the group's.
    let response = scim_json(StatusCode::OK, &resource);
    Ok(if members {
        with_header(response, header::ETAG, &group.etag())
    } else {
        response
    })
}

async fn create_group(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    query.projection()?;
    let created = state
        .engine
        .scim_create_group(&caller, &tenant, &body)
        .await?;
    group_answer(
        &state,
        &headers,
        &tenant,
        &created,
        StatusCode::CREATED,
        &query,
    )
}

async fn replace_group(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    query.projection()?;
    let expected = if_match_etag(&headers);
    let replaced = state
        .engine
        .scim_replace_group(&caller, &tenant, &id, &body, expected.as_deref())
        .await?;
    group_answer(&state, &headers, &tenant, &replaced, StatusCode::OK, &query)
}

async fn patch_group(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<ScimQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    query.projection()?;
    let expected = if_match_etag(&headers);
    let operations =
        parse_patch(&body).map_err(|error| scim_invalid(error.scim_type, error.detail))?;
    let patched = state
        .engine
        .scim_patch_group(&caller, &tenant, &id, &operations, expected.as_deref())
        .await?;
    group_answer(&state, &headers, &tenant, &patched, StatusCode::OK, &query)
}

async fn delete_group(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let expected = if_match_etag(&headers);
    state
        .engine
        .scim_delete_group(&caller, &tenant, &id, expected.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The SCIM `scimType` of a problem code: the engine's SCIM refusals carry theirs as
/// their code; conflicts are `uniqueness`; everything else has none.
fn scim_type(code: &str, status: u16) -> Option<&str> {
    const TYPES: [&str; 10] = [
        "invalidFilter",
        "tooMany",
        "uniqueness",
        "mutability",
        "invalidSyntax",
        "invalidPath",
        "noTarget",
        "invalidValue",
        "invalidVers",
        "sensitive",
    ];
    if let Some(known) = TYPES.iter().find(|known| **known == code) {
        return Some(known);
    }
    match (status, code) {
        (409, "conflict" | "member_exists" | "email_taken") => Some("uniqueness"),
        (400, "invalid_request") => Some("invalidSyntax"),
        (400, _) => Some("invalidValue"),
        _ => None,
    }
}

/// Rewrites every error answer to a `/scim/` request that is not already a SCIM error
/// (a problem+json, an extractor's plain text) as one (RFC 7644 §3.12), keeping its
/// status and headers (`WWW-Authenticate`, `Retry-After`).
pub async fn scim_errors(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/scim/") {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let scim = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(SCIM_JSON.as_bytes()));
    if scim || !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_PROBLEM_BYTES)
        .await
        .unwrap_or_default();
    // A problem body says its code and detail; anything else (an extractor's plain
    // text) is the detail itself.
    let problem: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
        json!({ "detail": text })
    });
    let status = parts.status.as_u16();
    let code = problem.get("code").and_then(Value::as_str).unwrap_or("");
    let detail = problem
        .get("detail")
        .and_then(Value::as_str)
        .filter(|detail| !detail.is_empty())
        .unwrap_or(parts.status.canonical_reason().unwrap_or("error"));
    let mut error = serde_json::Map::new();
    error.insert("schemas".into(), json!([ERROR_SCHEMA]));
    error.insert("status".into(), json!(status.to_string()));
    error.insert("detail".into(), json!(detail));
    if let Some(scim_type) = scim_type(code, status) {
        error.insert("scimType".into(), json!(scim_type));
    }
    let error = Value::Object(error);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(error.to_string()))
}
