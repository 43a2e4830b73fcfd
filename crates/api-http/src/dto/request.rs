//! Request bodies: unknown fields rejected, `null` refused for an optional field. The
//! handlers parse their strings into the domain's validated types.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;

/// An optional field, when present, holds a value of its type: `null` is refused like
/// any other wrong type (SPEC §2: anything else is rejected), rather than read as absent.
/// Use as `#[serde(default, deserialize_with = "present")]`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The current six-digit TOTP code.
    #[schema(pattern = "^[0-9]{6}$", example = "123456")]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeBody {
    #[schema(format = Password)]
    pub current_password: String,
    /// At least 12 characters.
    #[schema(format = Password, min_length = 12)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationBody {
    /// The one-time invitation token from the 201 body that invited the user.
    pub token: String,
    /// At least 12 characters.
    #[schema(format = Password, min_length = 12)]
    pub password: String,
}

/// `{token, new_password}`: a password reset token and the new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetBody {
    /// The reset token from `POST /v1/users/{user}/password-reset` (or a mail).
    pub token: String,
    /// At least 12 characters.
    #[schema(format = Password, min_length = 12)]
    pub new_password: String,
}

/// `{email}`: whose password to reset (self-service).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequestBody {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
}

/// `{email, current_password}`: the new address and the password that proves the caller.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeBody {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    #[schema(format = Password)]
    pub current_password: String,
}

/// `{token}`: a single-use token from a mail.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The token mailed to the new address (or, without mail, returned by
    /// `PUT /v1/me/email`).
    pub token: String,
}

/// `{code}`: one recovery code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryCodeBody {
    /// A recovery code as shown, e.g. `0a1b2c3d-4e5f6a7b` (case, spaces and dashes do
    /// not matter).
    #[schema(max_length = 64, example = "0a1b2c3d-4e5f6a7b")]
    pub code: String,
}

/// `{email}` or `{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRefBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "email")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "uuid")]
    pub user_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    /// The tenant slug.
    #[schema(pattern = "^[a-z][a-z0-9-]{1,38}[a-z0-9]$", example = "acme")]
    pub id: String,
    pub display_name: String,
    /// The first `tenant_admin`: exactly one of `email` (created as `invited` when new)
    /// and `user_id`.
    pub admin: UserRefBody,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTenantBody {
    /// Needs `tenant:write`.
    #[serde(default, deserialize_with = "present")]
    pub display_name: Option<String>,
    /// `active` or `suspended`; platform only.
    #[serde(default, deserialize_with = "present")]
    #[schema(example = "suspended")]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopesBody {
    pub scopes: Vec<String>,
}

/// `{url, types}`: where a webhook sends, and which events.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// An `https://` URL of a public host (plain `http://` and internal addresses only
    /// with `USER_ENGINE_WEBHOOKS_ALLOW_INSECURE`).
    #[schema(max_length = 2048, example = "https://hooks.example.com/user-engine")]
    pub url: String,
    /// Event types (e.g. `membership.added`), or `["*"]` for every event of the tenant.
    #[schema(min_items = 1, max_items = 64)]
    pub types: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberBody {
    /// Exactly one of `email` and `user_id`; a new email creates an `invited` user.
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "email")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "uuid")]
    pub user_id: Option<String>,
    /// Tenant role names (default none).
    #[serde(default, deserialize_with = "present")]
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMemberBody {
    #[serde(default, deserialize_with = "present")]
    pub roles: Option<Vec<String>>,
    /// The tenant account state, `active` or `suspended` (needs `accounts:write`).
    #[serde(default, deserialize_with = "present")]
    #[schema(example = "suspended")]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueBody {
    /// A string of at most 1024 characters, a finite number or a boolean, as the
    /// profile schema types the key.
    #[schema(schema_with = crate::openapi::profile_value_schema)]
    pub value: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    #[schema(format = "email")]
    pub email: String,
    /// Without one the user is `invited` and the 201 body carries an `invitation_token`.
    #[serde(default, deserialize_with = "present")]
    #[schema(format = Password, min_length = 12)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUserBody {
    /// `active` or `suspended`.
    #[schema(example = "suspended")]
    pub state: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    /// Platform roles: `platform_root`, `platform_auditor`.
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScopeBody {
    /// Two to four `:`-separated segments of `[a-z][a-z0-9_]*`.
    #[schema(example = "docs:edit")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub platform_only: bool,
    /// `aal1` (default) or `aal2`.
    #[serde(default, deserialize_with = "present")]
    #[schema(example = "aal1")]
    pub min_assurance: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaBody {
    /// `string`, `number` or `boolean`.
    #[serde(rename = "type")]
    #[schema(example = "string")]
    pub value_type: String,
    pub user_editable: bool,
    pub tenant_overridable: bool,
    /// Accepted when it repeats the path's key, so an entry read can be written back;
    /// left out of the OpenAPI document, where it could only say "any string" and a
    /// client could not tell that only one string is accepted.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyBody {
    pub name: String,
    pub scopes: Vec<String>,
}

/// `{"user_id": …, "assurance": …}` or `{"token": …}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "uuid")]
    pub user_id: Option<String>,
    /// With `user_id`: `aal1` (default) or `aal2`.
    #[serde(default, deserialize_with = "present")]
    pub assurance: Option<String>,
    /// A session token, instead of `user_id` and `assurance`.
    #[serde(default, deserialize_with = "present")]
    pub token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    pub subject: SubjectBody,
    #[schema(example = "docs:edit")]
    pub scope: String,
    /// The user the action is aimed at, when there is one.
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "uuid")]
    pub target_user: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    #[schema(max_items = 100)]
    pub checks: Vec<AuthorizeBody>,
}

/// A platform OAuth client to register (SPEC §9).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlatformClientBody {
    /// Shown on the hosted pages; 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, example = "Portal")]
    pub name: String,
    /// `confidential` (gets a secret) or `public` (no secret; must use PKCE).
    #[serde(rename = "type")]
    #[schema(example = "confidential")]
    pub client_type: String,
    /// Where codes may be sent, compared exactly: `https://`, or `http://` to
    /// localhost; no fragment.
    #[schema(min_items = 1, max_items = 20, example = json!(["https://app.example.com/callback"]))]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 20)]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `true` (the default): the platform's own application, whose sign-ins skip the
    /// consent page; `false`: a third-party application each user must allow.
    #[serde(default, deserialize_with = "present")]
    pub first_party: Option<bool>,
}

/// A tenant OAuth client to register (SPEC §9): a platform client's fields, plus a
/// confidential client's `client_credentials` scopes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenantClientBody {
    #[schema(min_length = 1, max_length = 200, example = "Docs")]
    pub name: String,
    #[serde(rename = "type")]
    #[schema(example = "confidential")]
    pub client_type: String,
    #[schema(min_items = 1, max_items = 20, example = json!(["https://app.example.com/callback"]))]
    pub redirect_uris: Vec<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 20)]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `true` (the default): the tenant's own application, whose sign-ins skip the
    /// consent page; `false`: a third-party application each member must allow.
    #[serde(default, deserialize_with = "present")]
    pub first_party: Option<bool>,
    /// A confidential client's `client_credentials` scopes, as an API key's (each held
    /// by the caller); never on a public client.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 64)]
    pub scopes: Option<Vec<String>>,
}
