//! Sessions, TOTP, passwords and invitations: logging in and out, stepping up to
//! `aal2`, enrolling TOTP, changing the own password, accepting an invitation, `GET /v1/me`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ids::{Email, Password, SessionId};
use domain::usecases::SessionOrigin;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::dto::{self, request::*};
use crate::errors::{request_id, ApiError, ApiResult};
use crate::extract::{ClientAddress, JsonBody, Path};

use super::no_content;
use super::params::SessionPath;

/// The routes anyone may call (they take credentials in the body).
pub(super) fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(login))
        .routes(routes!(accept_invitation))
        .routes(routes!(confirm_password_reset))
        .routes(routes!(request_password_reset))
        .routes(routes!(verify_email))
}

/// The routes of a signed-in caller.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(step_up))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(enroll_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(change_password))
        .routes(routes!(list_sessions, revoke_other_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(change_email))
        .routes(routes!(generate_recovery_codes))
        .routes(routes!(use_recovery_code))
}

#[utoipa::path(
    post,
    path = "/v1/auth/password",
    tag = "auth",
    summary = "Log in with email and password",
    request_body = LoginBody,
    responses(
        (status = 200, description = "A new session", body = dto::Session),
        (status = 400, description = "`invalid_email`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`invalid_credentials`: unknown email or wrong password (indistinguishable)"),
        (status = 429, description = "`rate_limited`: too many attempts for this email or address", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<Response> {
    let email = Email::parse(&body.email)?;
    state.check_login_rate(&email, address.0).await?;
    let origin = SessionOrigin {
        client_address: address.0.map(|address| address.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    let session = state
        .engine
        .login_from(&email, &body.password, &request_id(), &origin)
        .await?;
    Ok(Json(dto::Session::from(&session)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/auth/invitation",
    tag = "auth",
    summary = "Accept an invitation: set a password and become active",
    request_body = InvitationBody,
    responses(
        (status = 204, description = "The user is active and can log in"),
        (status = 400, description = "`invalid_request`: password under 12 characters, malformed JSON or an unknown field"),
        (status = 401, description = "`invalid_credentials`: unknown, used or expired invitation token"),
    ),
)]
pub async fn accept_invitation(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<InvitationBody>,
) -> ApiResult<Response> {
    let password = Password::parse(&body.password)?;
    state
        .engine
        .accept_invitation(&body.token, &password, &request_id())
        .await?;
    Ok(no_content())
}

#[utoipa::path(
    post,
    path = "/v1/auth/password-reset/confirm",
    tag = "auth",
    summary = "Set a new password with a reset token; every session of the user ends",
    request_body = PasswordResetBody,
    responses(
        (status = 204, description = "The password is set; every session of the user is ended"),
        (status = 400, description = "`invalid_request`: password under 12 characters, malformed JSON or an unknown field"),
        (status = 401, description = "`invalid_credentials`: unknown, used or expired reset token"),
        (status = 429, description = "`rate_limited`: too many failed credentials from this address", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    address: ClientAddress,
    JsonBody(body): JsonBody<PasswordResetBody>,
) -> ApiResult<Response> {
    let password = Password::parse(&body.new_password)?;
    let failures = address.0.map(|address| (address, state.auth_failure_rate));
    state
        .engine
        .confirm_password_reset_from(&body.token, &password, &request_id(), failures)
        .await?;
    Ok(no_content())
}

#[utoipa::path(
    post,
    path = "/v1/auth/password-reset",
    tag = "auth",
    summary = "Ask for a password reset mail; the answer is the same whatever the email",
    request_body = PasswordResetRequestBody,
    responses(
        (status = 202, description = "Accepted: when the email names an active user and mail is configured, a single-use token (1 hour) is mailed to it"),
        (status = 400, description = "`invalid_email`, `invalid_request`: malformed JSON or an unknown field"),
        (status = 429, description = "`rate_limited`: too many requests for this email or address", headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`overloaded`: too many reset requests being carried out on this node", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn request_password_reset(
    State(state): State<AppState>,
    address: ClientAddress,
    JsonBody(body): JsonBody<PasswordResetRequestBody>,
) -> ApiResult<Response> {
    let email = Email::parse(&body.email)?;
    // Answered once counted: the lookup, the token and the mail happen afterwards, so
    // neither the answer nor its time depends on whether the email names a user.
    let slot = state.reset_slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::from(domain::Error::Overloaded {
            retry_after_secs: 1,
        })
    })?;
    state
        .engine
        .admit_password_reset(&email, address.0, state.login_rate)
        .await?;
    let engine = state.engine.clone();
    let request_id = request_id();
    tokio::spawn(async move {
        if let Err(error) = engine
            .start_password_reset(&email, address.0, &request_id)
            .await
        {
            tracing::error!(%error, request_id, "a reset request was answered but not carried out");
        }
        drop(slot);
    });
    Ok(StatusCode::ACCEPTED.into_response())
}

#[utoipa::path(
    post,
    path = "/v1/auth/email-verification",
    tag = "auth",
    summary = "Apply a pending email change with the token mailed to the new address",
    request_body = TokenBody,
    responses(
        (status = 204, description = "The account's email is the new, verified address"),
        (status = 400, description = "`invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`invalid_credentials`: unknown, used or expired token"),
        (status = 409, description = "`email_taken`: another user took the address meanwhile"),
        (status = 429, description = "`rate_limited`: too many failed credentials from this address", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn verify_email(
    State(state): State<AppState>,
    address: ClientAddress,
    JsonBody(body): JsonBody<TokenBody>,
) -> ApiResult<Response> {
    let failures = address.0.map(|address| (address, state.auth_failure_rate));
    state
        .engine
        .verify_email(&body.token, &request_id(), failures)
        .await?;
    Ok(no_content())
}

#[utoipa::path(
    put,
    path = "/v1/me/email",
    tag = "auth",
    summary = "Change the own email: applied once the token sent to the new address comes back",
    request_body = EmailChangeBody,
    responses(
        (status = 202, description = "Pending until verified; the token is mailed to the new address (returned here only when mail is not configured)", body = dto::PendingEmailChange),
        (status = 400, description = "`invalid_email`; `invalid_request`: the address is the current one, malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`, or `invalid_credentials`: wrong current password"),
        (status = 403, description = "`forbidden`: not a user session; `reason` says why"),
        (status = 409, description = "`email_taken`"),
    ),
)]
pub async fn change_email(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<EmailChangeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let email = Email::parse(&body.email)?;
    let change = state
        .engine
        .request_email_change(&caller, &email, &body.current_password)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(dto::PendingEmailChange::from(&change)),
    )
        .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/me/recovery-codes",
    tag = "auth",
    summary = "Replace the own recovery codes with ten new ones, shown once (session at aal2)",
    responses(
        (status = 200, description = "The codes; earlier ones no longer work", body = dto::RecoveryCodes),
        (status = 401, description = "`unauthenticated`"),
        (status = 403, description = "`forbidden`: below aal2 or not a user session; `reason` says why"),
    ),
)]
pub async fn generate_recovery_codes(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let codes = state.engine.generate_recovery_codes(&caller).await?;
    Ok(Json(dto::RecoveryCodes { codes }).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/auth/recovery",
    tag = "auth",
    summary = "Raise the session to aal2 with a recovery code (each works once)",
    request_body = RecoveryCodeBody,
    responses(
        (status = 200, description = "The session, now aal2", body = dto::StepUp),
        (status = 400, description = "`invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`, or `invalid_totp`: wrong or already used code"),
        (status = 403, description = "`forbidden`: not a user session; `reason` says why"),
        (status = 429, description = "`rate_limited`: too many wrong codes for this user", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn use_recovery_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RecoveryCodeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let session = state.engine.use_recovery_code(&caller, &body.code).await?;
    Ok(Json(dto::StepUp::from(&session)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/auth/totp",
    tag = "auth",
    summary = "Raise the session to aal2 with a TOTP code",
    request_body = CodeBody,
    responses(
        (status = 200, description = "The session, now aal2", body = dto::StepUp),
        (status = 400, description = "`invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`, or `invalid_totp`: wrong or already used code"),
        (status = 403, description = "`forbidden`: the caller lacks the scope; `reason` says why"),
    ),
)]
pub async fn step_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CodeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let session = state.engine.step_up(&caller, &body.code).await?;
    Ok(Json(dto::StepUp::from(&session)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/me/totp",
    tag = "auth",
    summary = "Start TOTP enrolment",
    responses(
        (status = 200, description = "A secret to confirm with a code", body = dto::TotpEnrolment),
        (status = 403, description = "`forbidden`: not a user session (e.g. an API key); `reason` says why"),
    ),
)]
pub async fn enroll_totp(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let enrolment = state.engine.enroll_totp(&caller).await?;
    Ok(Json(dto::TotpEnrolment::from(&enrolment)).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/me/totp/confirm",
    tag = "auth",
    summary = "Confirm TOTP enrolment with a code",
    request_body = CodeBody,
    responses(
        (status = 204, description = "TOTP is enrolled"),
        (status = 400, description = "`invalid_request`: malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`, or `invalid_totp`: wrong code"),
        (status = 403, description = "`forbidden`: not a user session; `reason` says why"),
    ),
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CodeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    state.engine.confirm_totp(&caller, &body.code).await?;
    Ok(no_content())
}

#[utoipa::path(
    put,
    path = "/v1/me/password",
    tag = "auth",
    summary = "Change the own password",
    request_body = PasswordChangeBody,
    responses(
        (status = 204, description = "The password is changed"),
        (status = 400, description = "`invalid_request`: new password under 12 characters, malformed JSON or an unknown field"),
        (status = 401, description = "`unauthenticated`, or `invalid_credentials`: wrong current password"),
        (status = 403, description = "`forbidden`: not a user session; `reason` says why"),
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordChangeBody>,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let new_password = Password::parse(&body.new_password)?;
    state
        .engine
        .change_password(&caller, &body.current_password, &new_password)
        .await?;
    Ok(no_content())
}

#[utoipa::path(
    delete,
    path = "/v1/auth/session",
    tag = "auth",
    summary = "Log out (end this session)",
    responses(
        (status = 204, description = "The session is ended"),
    ),
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    state.engine.logout(&caller).await?;
    Ok(no_content())
}

#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "auth",
    summary = "Who the caller is",
    responses(
        (status = 200, description = "The caller", body = dto::Me),
    ),
)]
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let me = state.engine.me(&caller).await?;
    Ok(Json(dto::Me::from(&me)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/me/sessions",
    tag = "auth",
    summary = "The caller's live sessions, oldest first; the calling one is `current`",
    responses(
        (status = 200, description = "Every live session of the caller's user, in one page", body = dto::SessionPage),
        (status = 403, description = "`forbidden`: the caller's user is suspended; `reason` says why"),
    ),
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let sessions = state.engine.list_sessions(&caller).await?;
    Ok(Json(dto::SessionPage::whole(&sessions)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/me/sessions",
    tag = "auth",
    summary = "End every session of the caller's user but this one",
    responses(
        (status = 204, description = "Every other session is ended; the next request with any of them is 401"),
    ),
)]
pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    state.engine.revoke_other_sessions(&caller).await?;
    Ok(no_content())
}

#[utoipa::path(
    delete,
    path = "/v1/me/sessions/{session}",
    tag = "auth",
    summary = "End one of the caller's sessions by its id (this one too: a logout)",
    params(
        SessionPath,
    ),
    responses(
        (status = 204, description = "The session is ended; the next request with it is 401"),
        (status = 404, description = "`not_found`: the caller has no session with this id"),
    ),
)]
pub async fn revoke_session(
    State(state): State<AppState>,
    Path(session): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = state.caller(&headers).await?;
    let session =
        SessionId::parse(&session).map_err(|_| ApiError::from(domain::Error::NotFound))?;
    state.engine.revoke_session(&caller, &session).await?;
    Ok(no_content())
}
