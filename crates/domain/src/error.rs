//! The errors use cases return.
//!
//! SPEC §5 defines one flat list of problem codes shared by every operation, so the use
//! cases share one error enum whose variants are exactly those codes: the HTTP layer maps
//! it exhaustively, and a new code cannot be forgotten there. Infrastructure failure is
//! one opaque variant.

use crate::authz::Reason;
use crate::ids::FormatError;
use crate::ports::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// 400 with the format's own code (`invalid_tenant_id`, `invalid_email`, …).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// 400 `invalid_request`.
    #[error("{0}")]
    InvalidRequest(String),
    /// 400 `unknown_scope`.
    #[error("scope {0} is not in the catalog")]
    UnknownScope(String),
    /// 400 `unknown_role`.
    #[error("role {0} is neither built in nor bound in this tenant")]
    UnknownRole(String),
    /// 400 `unknown_profile_key`.
    #[error("profile key {0} is not in the profile schema")]
    UnknownProfileKey(String),
    /// 400 `invalid_profile_value`.
    #[error("{0}")]
    InvalidProfileValue(String),
    /// 400 `scope_not_assignable`.
    #[error("scope {0} is platform-only and cannot be assigned in a tenant")]
    ScopeNotAssignable(String),
    /// 400 `scope_not_enabled`.
    #[error("scope {0} is not enabled for this tenant")]
    ScopeNotEnabled(String),
    /// 401 `unauthenticated`.
    #[error("authentication required")]
    Unauthenticated,
    /// 401 `invalid_credentials`.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 401 `invalid_totp`.
    #[error("invalid totp code")]
    InvalidTotp,
    /// 403 `forbidden`, with the decision's reason.
    #[error("forbidden: {}", .0.as_str())]
    Forbidden(Reason),
    /// 404 `tenant_not_found` (also the answer to non-members: no existence oracle).
    #[error("tenant not found")]
    TenantNotFound,
    /// 404 `member_not_found`.
    #[error("member not found")]
    MemberNotFound,
    /// 404 `user_not_found`.
    #[error("user not found")]
    UserNotFound,
    /// 404 `not_found`.
    #[error("not found")]
    NotFound,
    /// 409 `tenant_exists`.
    #[error("tenant id is taken")]
    TenantExists,
    /// 409 `member_exists`.
    #[error("user is already a member of this tenant")]
    MemberExists,
    /// 409 `email_taken`.
    #[error("email is taken")]
    EmailTaken,
    /// 409 `scope_exists` (not in SPEC §5: adding a catalog scope twice).
    #[error("scope already in the catalog")]
    ScopeExists,
    /// 409 `last_tenant_admin`.
    #[error("the tenant must keep at least one active tenant admin")]
    LastTenantAdmin,
    /// 409 `last_platform_root`.
    #[error("the platform must keep at least one active platform root")]
    LastPlatformRoot,
    /// 400 `invalid_cursor`: forged, or from another list or tenant.
    #[error("the cursor is not one this list gave out")]
    InvalidCursor,
    /// 429 `rate_limited`, with the seconds to wait before the next attempt.
    #[error("too many attempts; retry later")]
    RateLimited { retry_after_secs: u64 },
    /// 412 `precondition_failed`.
    #[error("the resource changed since it was read")]
    PreconditionFailed,
    /// 500: the store failed. Never shown to clients.
    #[error("store failure: {0}")]
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl Error {
    /// The SPEC §5 problem code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Format(format) => format.code(),
            Self::InvalidRequest(_) => "invalid_request",
            Self::UnknownScope(_) => "unknown_scope",
            Self::UnknownRole(_) => "unknown_role",
            Self::UnknownProfileKey(_) => "unknown_profile_key",
            Self::InvalidProfileValue(_) => "invalid_profile_value",
            Self::ScopeNotAssignable(_) => "scope_not_assignable",
            Self::ScopeNotEnabled(_) => "scope_not_enabled",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidTotp => "invalid_totp",
            Self::Forbidden(_) => "forbidden",
            Self::TenantNotFound => "tenant_not_found",
            Self::MemberNotFound => "member_not_found",
            Self::UserNotFound => "user_not_found",
            Self::NotFound => "not_found",
            Self::TenantExists => "tenant_exists",
            Self::MemberExists => "member_exists",
            Self::EmailTaken => "email_taken",
            Self::ScopeExists => "scope_exists",
            Self::LastTenantAdmin => "last_tenant_admin",
            Self::LastPlatformRoot => "last_platform_root",
            Self::InvalidCursor => "invalid_cursor",
            Self::RateLimited { .. } => "rate_limited",
            Self::PreconditionFailed => "precondition_failed",
            Self::Store(_) => "internal",
        }
    }

    /// The HTTP status the code is reported with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Format(_)
            | Self::InvalidRequest(_)
            | Self::UnknownScope(_)
            | Self::UnknownRole(_)
            | Self::UnknownProfileKey(_)
            | Self::InvalidProfileValue(_)
            | Self::ScopeNotAssignable(_)
            | Self::ScopeNotEnabled(_)
            | Self::InvalidCursor => 400,
            Self::Unauthenticated | Self::InvalidCredentials | Self::InvalidTotp => 401,
            Self::Forbidden(_) => 403,
            Self::TenantNotFound | Self::MemberNotFound | Self::UserNotFound | Self::NotFound => {
                404
            }
            Self::TenantExists
            | Self::MemberExists
            | Self::EmailTaken
            | Self::ScopeExists
            | Self::LastTenantAdmin
            | Self::LastPlatformRoot => 409,
            Self::PreconditionFailed => 412,
            Self::RateLimited { .. } => 429,
            Self::Store(_) => 500,
        }
    }
}
