//! The errors use cases return.
//!
//! SPEC §5 defines one flat list of problem codes shared by every operation, so the use
//! cases share one error enum whose variants are exactly those codes: a transport maps
//! it exhaustively (the HTTP status of each lives in `api-http`'s `errors.rs`), and a new
//! code cannot be forgotten there. Infrastructure failure is one opaque variant.

use crate::authz::Reason;
use crate::ids::FormatError;
use crate::ports::{HashError, StoreError};

/// The seconds a client is told to wait (`Retry-After`) when password hashing is
/// overloaded: a hash takes tens of milliseconds, so a queue drains within a second.
pub const OVERLOADED_RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The format's own code (`invalid_tenant_id`, `invalid_email`, …).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// `invalid_request`.
    #[error("{0}")]
    InvalidRequest(String),
    /// `unknown_scope`.
    #[error("scope {0} is not in the catalog")]
    UnknownScope(String),
    /// `unknown_role`.
    #[error("role {0} is neither built in nor bound in this tenant")]
    UnknownRole(String),
    /// `unknown_profile_key`.
    #[error("profile key {0} is not in the profile schema")]
    UnknownProfileKey(String),
    /// `invalid_profile_value`.
    #[error("{0}")]
    InvalidProfileValue(String),
    /// `scope_not_assignable`.
    #[error("scope {0} is platform-only and cannot be assigned in a tenant")]
    ScopeNotAssignable(String),
    /// `scope_not_enabled`.
    #[error("scope {0} is not enabled for this tenant")]
    ScopeNotEnabled(String),
    /// `unauthenticated`.
    #[error("authentication required")]
    Unauthenticated,
    /// `invalid_credentials`.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// `invalid_totp`.
    #[error("invalid totp code")]
    InvalidTotp,
    /// `forbidden`, with the decision's reason.
    #[error("forbidden: {}", .0.as_str())]
    Forbidden(Reason),
    /// `tenant_not_found` (also the answer to non-members: no existence oracle).
    #[error("tenant not found")]
    TenantNotFound,
    /// `member_not_found`.
    #[error("member not found")]
    MemberNotFound,
    /// `user_not_found`.
    #[error("user not found")]
    UserNotFound,
    /// `not_found`.
    #[error("not found")]
    NotFound,
    /// `tenant_exists`.
    #[error("tenant id is taken")]
    TenantExists,
    /// `member_exists`.
    #[error("user is already a member of this tenant")]
    MemberExists,
    /// `email_taken`.
    #[error("email is taken")]
    EmailTaken,
    /// `scope_exists` (not in SPEC §5: adding a catalog scope twice).
    #[error("scope already in the catalog")]
    ScopeExists,
    /// `last_tenant_admin`.
    #[error("the tenant must keep at least one active tenant admin")]
    LastTenantAdmin,
    /// `last_platform_root`.
    #[error("the platform must keep at least one active platform root")]
    LastPlatformRoot,
    /// `invalid_cursor`: forged, or from another list or tenant.
    #[error("the cursor is not one this list gave out")]
    InvalidCursor,
    /// `rate_limited`, with the seconds to wait before the next attempt.
    #[error("too many attempts; retry later")]
    RateLimited { retry_after_secs: u64 },
    /// A SCIM request refused as RFC 7644 §3.12 words it (status 400): its `scimType`
    /// (`invalidFilter`, `invalidValue`, `invalidPath`, `mutability`, `noTarget`, …) and
    /// what is wrong. Only the SCIM routes produce it.
    #[error("{detail}")]
    ScimInvalid {
        scim_type: &'static str,
        detail: String,
    },
    /// A SCIM `uniqueness` conflict (status 409): a `userName` or group name the tenant
    /// already has.
    #[error("{0}")]
    ScimConflict(String),
    /// `precondition_failed`.
    #[error("the resource changed since it was read")]
    PreconditionFailed,
    /// `overloaded`: a bounded queue (password hashing) is full or its work failed to
    /// run; retry after the seconds given.
    #[error("the service is overloaded; retry later")]
    Overloaded { retry_after_secs: u64 },
    /// `internal`: the store failed. Its detail is never shown to clients.
    #[error("store failure: {0}")]
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<HashError> for Error {
    /// A hasher that cannot answer is overloaded, never an internal failure: the request
    /// did nothing wrong and may be retried.
    fn from(_: HashError) -> Self {
        Self::Overloaded {
            retry_after_secs: OVERLOADED_RETRY_AFTER_SECS,
        }
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
            Self::ScimInvalid { .. } => "invalid_request",
            Self::ScimConflict(_) => "conflict",
            Self::Overloaded { .. } => "overloaded",
            Self::Store(_) => "internal",
        }
    }
}
