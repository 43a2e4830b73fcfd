//! Tenant members and their accounts, with `ETag`/`If-Match` on each member.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::usecases::{AddMember, MemberChange};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::{PageQuery, TenantPath, UserPath};
use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::ApiResult;
use crate::extract::{user_id, JsonBody, ListParams, Path};

use super::{created, expected_version, no_content, with_etag};

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list_members, add_member))
        .routes(routes!(get_member, patch_member, remove_member))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/members",
    tag = "members",
    summary = "List members (`members:read`)",
    params(
        TenantPath,
        PageQuery,
    ),
    responses(
        (status = 200, description = "One page of members", body = dto::MemberPage),
        (status = 400, description = "`invalid_tenant_id`, `invalid_request` (bad `limit`), `invalid_cursor` (an `after` this list did not give out)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`: no such tenant, or the caller is not in it"),
    ),
)]
pub async fn list_members(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    params: ListParams,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let page = state
        .engine
        .list_members(&caller, &tenant, params.after.as_deref(), params.limit)
        .await?;
    Ok(Json(dto::MemberPage::of(&page)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/members",
    tag = "members",
    summary = "Add a member (`members:write`); a new email creates an invited user",
    params(
        TenantPath,
    ),
    request_body = AddMemberBody,
    responses(
        (status = 201, description = "The member, with a one-time `invitation_token` when the user was invited", body = dto::MemberCreated, headers(("ETag" = String, description = "The member's strong entity tag, `\"m<version>\"`"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_email`, `invalid_user_id`, `invalid_role`, `unknown_role`, `invalid_request` (not exactly one of email and user_id, malformed JSON, unknown field)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, or `user_not_found`: no user with that `user_id`"),
        (status = 409, description = "`member_exists`"),
    ),
)]
pub async fn add_member(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AddMemberBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let input = AddMember::try_from(body)?;
    let added = state.engine.add_member(&caller, &tenant, input).await?;
    let etag = dto::member_etag(&added.member);
    let mut response = created(dto::MemberCreated::from(&added));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/members/{user}",
    tag = "members",
    summary = "Read a member (`members:read`)",
    params(
        TenantPath,
        UserPath,
    ),
    responses(
        (status = 200, description = "The member", body = dto::Member, headers(("ETag" = String, description = "The member's strong entity tag, `\"m<version>\"`"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
    ),
)]
pub async fn get_member(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let member = state
        .engine
        .get_member(&caller, &tenant, &user_id(&user)?)
        .await?;
    Ok(with_etag(
        dto::Member::from(&member),
        &dto::member_etag(&member),
    ))
}

#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}/members/{user}",
    tag = "members",
    summary = "Change a member's roles (`members:write`) or account state (`accounts:write`)",
    params(
        TenantPath,
        UserPath,
        ("If-Match" = Option<String>, Header, description = "The member's `ETag` (`\"m<version>\"`); 412 when it no longer matches"),
    ),
    request_body = PatchMemberBody,
    responses(
        (status = 200, description = "The member", body = dto::Member, headers(("ETag" = String, description = "The member's strong entity tag, `\"m<version>\"`"))),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`, `invalid_role`, `unknown_role`, `invalid_request` (bad state, malformed JSON, unknown field)"),
        (status = 403, description = "`forbidden`: e.g. lacking the scope, `aal2` needed to grant or revoke `tenant_admin`, `target_protected`; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
        (status = 409, description = "`last_tenant_admin`: the tenant would have no active admin"),
        (status = 412, description = "`precondition_failed`: `If-Match` does not match"),
    ),
)]
pub async fn patch_member(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PatchMemberBody>,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let user = user_id(&user)?;
    let mut change = MemberChange::try_from(body)?;
    change.expected_version = expected_version(&headers)?;
    let member = state
        .engine
        .update_member(&caller, &tenant, &user, change)
        .await?;
    Ok(with_etag(
        dto::Member::from(&member),
        &dto::member_etag(&member),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/members/{user}",
    tag = "members",
    summary = "Remove a member (`members:write`)",
    params(
        TenantPath,
        UserPath,
        ("If-Match" = Option<String>, Header, description = "The member's `ETag` (`\"m<version>\"`); 412 when it no longer matches"),
    ),
    responses(
        (status = 204, description = "The member is removed"),
        (status = 400, description = "`invalid_tenant_id`, `invalid_user_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`tenant_not_found`, `member_not_found`"),
        (status = 409, description = "`last_tenant_admin`: the tenant would have no active admin"),
        (status = 412, description = "`precondition_failed`: `If-Match` does not match"),
    ),
)]
pub async fn remove_member(
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, caller) = state.tenant_caller(&tenant, &headers).await?;
    let user = user_id(&user)?;
    state
        .engine
        .remove_member(&caller, &tenant, &user, expected_version(&headers)?)
        .await?;
    Ok(no_content())
}
