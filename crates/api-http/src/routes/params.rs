//! The parameters many routes share, declared once for the OpenAPI document (their SPEC
//! §2 formats are applied by `openapi`'s `CommonRules`; the handlers read them with
//! `extract::Path` and `extract::ListParams`).

#![allow(
    dead_code,
    reason = "the fields only describe parameters to utoipa; the handlers parse them"
)]

use utoipa::IntoParams;

use crate::dto::OutcomeName;

/// `{tenant}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// The tenant slug
    tenant: String,
}

/// `{user}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user's id (a UUID v7)
    user: String,
}

/// `{role}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RolePath {
    /// The role name
    role: String,
}

/// `{key}` of a profile value.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProfileKeyPath {
    /// The profile key
    key: String,
}

/// `{session}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// The session's id (`id` in the session list)
    session: String,
}

/// `{key}` of an API key.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ApiKeyPath {
    /// The API key's id
    key: String,
}

/// `{name}` of a webhook.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// The webhook's name
    name: String,
}

/// `{client}` of an OAuth client.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ClientPath {
    /// The client's id (`client_id`)
    client: String,
}

/// `?limit=&after=` of a list.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50)
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page (an opaque cursor)
    after: Option<String>,
}

/// The filters of an audit trail.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only records by this actor id
    #[param(pattern = "^[^\\x00]*$")]
    actor: Option<String>,
    /// Only records of this action, e.g. `member.add`
    #[param(pattern = "^[^\\x00]*$")]
    action: Option<String>,
    /// Only `allowed` or only `denied` records
    outcome: Option<OutcomeName>,
    /// Only records at or after this RFC 3339 time
    #[param(format = DateTime)]
    from: Option<String>,
    /// Only records before this RFC 3339 time
    #[param(format = DateTime)]
    until: Option<String>,
}
