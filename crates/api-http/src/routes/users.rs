//! Platform users: creation, state, platform roles, ending all of a user's sessions.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::usecases::NewUser;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::params::UserPath;
use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::ApiResult;
use crate::extract::{user_id, JsonBody, Path};

use super::{created, no_content};

/// The routes of this area, one `routes!` per path.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_user))
        .routes(routes!(get_user, patch_user, erase_user))
        .routes(routes!(put_platform_roles))
        .routes(routes!(revoke_user_sessions))
        .routes(routes!(issue_password_reset))
        .routes(routes!(remove_totp))
}

#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    summary = "Create a platform user (`platform:users:write`)",
    request_body = CreateUserBody,
    responses(
        (status = 201, description = "The user, with a one-time `invitation_token` when created without a password", body = dto::UserCreated),
        (status = 400, description = "`invalid_email`, `invalid_request` (password under 12 characters, malformed JSON, unknown field)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 409, description = "`email_taken`"),
    ),
)]
pub async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateUserBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let input = NewUser::try_from(body)?;
    let created_user = state.engine.create_user(&caller, input).await?;
    Ok(created(dto::UserCreated::from(&created_user)))
}

#[utoipa::path(
    get,
    path = "/v1/users/{user}",
    tag = "users",
    summary = "Read a platform user (`platform:users:read`)",
    params(
        UserPath,
    ),
    responses(
        (status = 200, description = "The user", body = dto::User),
        (status = 400, description = "`invalid_user_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
    ),
)]
pub async fn get_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let user = state.engine.get_user(&caller, &user).await?;
    Ok(Json(dto::User::from(&user)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/users/{user}",
    tag = "users",
    summary = "Erase a user: memberships, profile values, sessions, factors and email go; the id stays a tombstone (`platform:users:write` at aal2)",
    params(
        UserPath,
    ),
    responses(
        (status = 204, description = "Erased; the user's stored events no longer carry their email or profile values"),
        (status = 400, description = "`invalid_user_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope or is below aal2; `reason` says why"),
        (status = 404, description = "`user_not_found` (also once erased)"),
        (status = 409, description = "`last_tenant_admin`: the user is the last active admin of an active tenant; `last_platform_root`: the last active `platform_root`"),
    ),
)]
pub async fn erase_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    state.engine.erase_user(&caller, &user).await?;
    Ok(no_content())
}

#[utoipa::path(
    patch,
    path = "/v1/users/{user}",
    tag = "users",
    summary = "Suspend or reactivate a platform user (`platform:users:write`)",
    params(
        UserPath,
    ),
    request_body = PatchUserBody,
    responses(
        (status = 200, description = "The user", body = dto::User),
        (status = 400, description = "`invalid_user_id`, `invalid_request` (bad state, malformed JSON, unknown field)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
        (status = 409, description = "`last_platform_root`: the platform would have no active `platform_root`"),
    ),
)]
pub async fn patch_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PatchUserBody>,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let new_state = body.user_state()?;
    let user = state
        .engine
        .set_user_state(&caller, &user, new_state)
        .await?;
    Ok(Json(dto::User::from(&user)).into_response())
}

#[utoipa::path(
    put,
    path = "/v1/users/{user}/platform-roles",
    tag = "users",
    summary = "Set a user's platform roles (`platform:roles:write`)",
    params(
        UserPath,
    ),
    request_body = RolesBody,
    responses(
        (status = 200, description = "The user", body = dto::User),
        (status = 400, description = "`invalid_user_id`, `invalid_role`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
        (status = 409, description = "`last_platform_root`: the platform would have no active `platform_root`"),
    ),
)]
pub async fn put_platform_roles(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RolesBody>,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let granted = body.platform_roles()?;
    let user = state
        .engine
        .set_platform_roles(&caller, &user, granted)
        .await?;
    Ok(Json(dto::User::from(&user)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/users/{user}/sessions",
    tag = "users",
    summary = "End every session of a user (`platform:users:write`)",
    params(
        UserPath,
    ),
    responses(
        (status = 204, description = "Every session of the user is ended; the next request with any of them is 401"),
        (status = 400, description = "`invalid_user_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
    ),
)]
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    state.engine.revoke_user_sessions(&caller, &user).await?;
    Ok(no_content())
}

#[utoipa::path(
    post,
    path = "/v1/users/{user}/password-reset",
    tag = "users",
    summary = "Issue a password reset token for the calling service to deliver (`platform:users:write`)",
    params(
        UserPath,
    ),
    responses(
        (status = 201, description = "The single-use token (1 hour), shown this once", body = dto::PasswordReset),
        (status = 400, description = "`invalid_user_id`, or `invalid_request`: the user is invited (they accept the invitation instead)"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
    ),
)]
pub async fn issue_password_reset(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    let reset = state.engine.issue_password_reset(&caller, &user).await?;
    Ok(created(dto::PasswordReset::from(&reset)))
}

#[utoipa::path(
    delete,
    path = "/v1/users/{user}/totp",
    tag = "users",
    summary = "Remove a user's TOTP factor (`platform:users:write` at `aal2`)",
    params(
        UserPath,
    ),
    responses(
        (status = 204, description = "The user has no TOTP factor (any more)"),
        (status = 400, description = "`invalid_user_id`"),
        (status = 403, description = "`forbidden`: the caller lacks the scope or `aal2`; `reason` says why"),
        (status = 404, description = "`user_not_found`"),
    ),
)]
pub async fn remove_totp(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let caller = state.caller(&headers).await?;
    state.engine.remove_totp(&caller, &user).await?;
    Ok(no_content())
}
