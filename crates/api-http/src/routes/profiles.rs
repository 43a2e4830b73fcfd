//! Profile values in three layers (SPEC §3.4): member overrides, tenant defaults,
//! platform values, and the resolved profile with its `ETag`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ids::ProfileKey;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{ProfileKeyPath, TenantPath, UserPath};
use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::ApiResult;
use crate::extract::{user_id, JsonBody, Path};

use super::{expected_profile, no_content, with_etag};

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(member_profile))
        .routes(routes!(put_member_value, delete_member_value))
        .routes(routes!(put_tenant_default, delete_tenant_default))
        .routes(routes!(put_platform_value, delete_platform_value))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/members/{user}/profile",
    tag = "profiles",
    summary = "A member's resolved profile (`profiles:read` or self)",
    params(
        TenantPath,
        UserPath,
    ),
    responses(
        (status = 200, description = "The resolved profile, with the source of each value", body = dto::Profile, headers(("ETag" = String, description = "The resolved profile's strong entity tag"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
    ),
)]
pub async fn member_profile(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let profile = state
        .engine
        .member_profile(&caller, &tenant, &user_id(&user)?)
        .await?;
    Ok(with_etag(
        dto::Profile::from(&profile),
        &dto::profile_etag(&profile),
    ))
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/members/{user}/profile/{key}",
    tag = "profiles",
    summary = "Set a member override (`profiles:write` or self)",
    params(
        TenantPath,
        UserPath,
        ProfileKeyPath,
        ("If-Match" = Option<String>, Header, description = "The profile's `ETag` (`\"p<hash>\"`); 412 when it no longer matches"),
    ),
    request_body = ValueBody,
    responses(
        (status = 200, description = "The resolved profile after the write", body = dto::Profile, headers(("ETag" = String, description = "The resolved profile's strong entity tag"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `unknown_profile_key`, `invalid_profile_value`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
        (status = 412, description = "`precondition_failed`: `If-Match` does not match"),
    ),
)]
pub async fn put_member_value(
    State(state): State<AppState>,
    Path((tenant, user, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ValueBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let profile = state
        .engine
        .write_member_value(
            &caller,
            &tenant,
            &user_id(&user)?,
            &ProfileKey::parse(&key)?,
            Some(body.profile_value()?),
            expected_profile(&headers).as_deref(),
        )
        .await?;
    Ok(with_etag(
        dto::Profile::from(&profile),
        &dto::profile_etag(&profile),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/members/{user}/profile/{key}",
    tag = "profiles",
    summary = "Remove a member override (`profiles:write` or self)",
    params(
        TenantPath,
        UserPath,
        ProfileKeyPath,
        ("If-Match" = Option<String>, Header, description = "The profile's `ETag` (`\"p<hash>\"`); 412 when it no longer matches"),
    ),
    responses(
        (status = 204, description = "The override is removed"),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `unknown_profile_key`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
        (status = 412, description = "`precondition_failed`: `If-Match` does not match"),
    ),
)]
pub async fn delete_member_value(
    State(state): State<AppState>,
    Path((tenant, user, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state
        .engine
        .write_member_value(
            &caller,
            &tenant,
            &user_id(&user)?,
            &ProfileKey::parse(&key)?,
            None,
            expected_profile(&headers).as_deref(),
        )
        .await?;
    Ok(no_content())
}

#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/profile/{key}",
    tag = "profiles",
    summary = "Set a tenant default (`tenant:write`)",
    params(
        TenantPath,
        ProfileKeyPath,
    ),
    request_body = ValueBody,
    responses(
        (status = 200, description = "The stored default", body = dto::ProfileValue),
        (status = 400, description = "`invalid_tenant_id`, `unknown_profile_key`, `invalid_profile_value`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
)]
pub async fn put_tenant_default(
    State(state): State<AppState>,
    Path((tenant, key)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ValueBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let key = ProfileKey::parse(&key)?;
    let value = body.profile_value()?;
    state
        .engine
        .write_tenant_default(&caller, &tenant, &key, Some(value.clone()))
        .await?;
    Ok(Json(dto::ProfileValue::new(&key, &value)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/profile/{key}",
    tag = "profiles",
    summary = "Remove a tenant default (`tenant:write`)",
    params(
        TenantPath,
        ProfileKeyPath,
    ),
    responses(
        (status = 204, description = "The default is removed"),
        (status = 400, description = "`invalid_tenant_id`, `unknown_profile_key`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
)]
pub async fn delete_tenant_default(
    State(state): State<AppState>,
    Path((tenant, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    state
        .engine
        .write_tenant_default(&caller, &tenant, &ProfileKey::parse(&key)?, None)
        .await?;
    Ok(no_content())
}

#[utoipa::path(
    put,
    path = "/v1/users/{user}/profile/{key}",
    tag = "profiles",
    summary = "Set a platform profile value (self or `platform:users:write`)",
    params(
        UserPath,
        ProfileKeyPath,
    ),
    request_body = ValueBody,
    responses(
        (status = 200, description = "The stored value", body = dto::ProfileValue),
        (status = 400, description = "`invalid_user_id`, `unknown_profile_key`, `invalid_profile_value`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
    ),
)]
pub async fn put_platform_value(
    State(state): State<AppState>,
    Path((user, key)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ValueBody>,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let key = ProfileKey::parse(&key)?;
    let value = body.profile_value()?;
    state
        .engine
        .write_platform_value(&caller, &user, &key, Some(value.clone()))
        .await?;
    Ok(Json(dto::ProfileValue::new(&key, &value)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/users/{user}/profile/{key}",
    tag = "profiles",
    summary = "Remove a platform profile value (self or `platform:users:write`)",
    params(
        UserPath,
        ProfileKeyPath,
    ),
    responses(
        (status = 204, description = "The value is removed"),
        (status = 400, description = "`invalid_user_id`, `unknown_profile_key`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
    ),
)]
pub async fn delete_platform_value(
    State(state): State<AppState>,
    Path((user, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    state
        .engine
        .write_platform_value(&caller, &user, &ProfileKey::parse(&key)?, None)
        .await?;
    Ok(no_content())
}
