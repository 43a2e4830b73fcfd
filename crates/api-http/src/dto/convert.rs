//! Request bodies into the use cases' inputs: every string parsed into its validated
//! domain type (400 with the format's code otherwise), in the order the fields are
//! written, so a handler only extracts, converts, calls and maps.

use std::collections::BTreeSet;

use domain::ids::{
    Assurance, DisplayName, Email, FormatError, Password, ProfileKey, ProfileType, ProfileValue,
    RoleName, ScopeName, TenantId, UserId,
};
use domain::model::{AccountState, PlatformRole, SchemaEntry, TenantState, UserState};
use domain::usecases::{
    AddMember, AuthzCheck, CheckSubject, CreateTenant, MemberChange, NewApiKey, NewCatalogScope,
    NewUser, TenantChange, UserRef,
};

use super::request::*;
use crate::errors::{ApiError, ApiResult};
use crate::extract::user_id;

/// Tenant role names.
pub fn roles(names: &[String]) -> ApiResult<BTreeSet<RoleName>> {
    names
        .iter()
        .map(|name| RoleName::parse(name).map_err(ApiError::from))
        .collect()
}

/// Scope names.
pub fn scopes(names: &[String]) -> ApiResult<BTreeSet<ScopeName>> {
    names
        .iter()
        .map(|name| ScopeName::parse(name).map_err(ApiError::from))
        .collect()
}

/// Exactly one of an email and a user id.
fn user_ref(email: Option<&str>, user: Option<&str>) -> ApiResult<UserRef> {
    match (email, user) {
        (Some(email), None) => Ok(UserRef::Email(Email::parse(email)?)),
        (None, Some(user)) => Ok(UserRef::Id(user_id(user)?)),
        _ => Err(ApiError::invalid("give exactly one of email and user_id")),
    }
}

/// `active` or `suspended`, as the state's own parser reads it.
fn state<T>(text: Option<&str>, parse: fn(&str) -> Option<T>) -> ApiResult<Option<T>> {
    text.map(|text| {
        parse(text).ok_or_else(|| ApiError::invalid("state must be active or suspended"))
    })
    .transpose()
}

impl TryFrom<CreateTenantBody> for CreateTenant {
    type Error = ApiError;

    fn try_from(body: CreateTenantBody) -> ApiResult<Self> {
        Ok(Self {
            id: TenantId::parse(&body.id)?,
            display_name: DisplayName::parse(&body.display_name)?,
            admin: user_ref(body.admin.email.as_deref(), body.admin.user_id.as_deref())?,
        })
    }
}

impl TryFrom<PatchTenantBody> for TenantChange {
    type Error = ApiError;

    fn try_from(body: PatchTenantBody) -> ApiResult<Self> {
        Ok(Self {
            display_name: body
                .display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()?,
            state: state(body.state.as_deref(), TenantState::parse)?,
        })
    }
}

impl TryFrom<AddMemberBody> for AddMember {
    type Error = ApiError;

    fn try_from(body: AddMemberBody) -> ApiResult<Self> {
        Ok(Self {
            user: user_ref(body.email.as_deref(), body.user_id.as_deref())?,
            roles: roles(body.roles.as_deref().unwrap_or_default())?,
        })
    }
}

/// The change without its precondition: the handler adds `If-Match` after the body
/// parsed, so a bad body is reported before a bad header, as always.
impl TryFrom<PatchMemberBody> for MemberChange {
    type Error = ApiError;

    fn try_from(body: PatchMemberBody) -> ApiResult<Self> {
        Ok(Self {
            roles: body.roles.as_deref().map(roles).transpose()?,
            state: state(body.state.as_deref(), AccountState::parse)?,
            expected_version: None,
        })
    }
}

impl TryFrom<CreateUserBody> for NewUser {
    type Error = ApiError;

    fn try_from(body: CreateUserBody) -> ApiResult<Self> {
        Ok(Self {
            email: Email::parse(&body.email)?,
            password: body.password.as_deref().map(Password::parse).transpose()?,
        })
    }
}

impl PatchUserBody {
    /// The user state asked for.
    pub fn user_state(&self) -> ApiResult<UserState> {
        UserState::parse(&self.state)
            .ok_or_else(|| ApiError::invalid("state must be active or suspended"))
    }
}

impl RolesBody {
    /// The platform roles asked for (`invalid_role` for any other name).
    pub fn platform_roles(&self) -> ApiResult<BTreeSet<PlatformRole>> {
        self.roles
            .iter()
            .map(|role| PlatformRole::parse(role).ok_or_else(|| FormatError::Role.into()))
            .collect()
    }
}

impl ScopesBody {
    /// The scopes asked for.
    pub fn scope_names(&self) -> ApiResult<BTreeSet<ScopeName>> {
        scopes(&self.scopes)
    }
}

impl ValueBody {
    /// The profile value, checked as any profile value (the schema's type is the use
    /// case's to check).
    pub fn profile_value(&self) -> ApiResult<ProfileValue> {
        Ok(ProfileValue::parse(&self.value)?)
    }
}

impl TryFrom<NewScopeBody> for NewCatalogScope {
    type Error = ApiError;

    fn try_from(body: NewScopeBody) -> ApiResult<Self> {
        Ok(Self {
            name: ScopeName::parse(&body.name)?,
            description: body.description,
            platform_only: body.platform_only,
            min_assurance: body
                .min_assurance
                .as_deref()
                .map(Assurance::parse)
                .transpose()?
                .unwrap_or(Assurance::Aal1),
        })
    }
}

impl SchemaBody {
    /// The entry for the path's `key`; a `key` in the body must repeat it.
    pub fn entry(self, key: ProfileKey) -> ApiResult<SchemaEntry> {
        if self
            .key
            .as_deref()
            .is_some_and(|body_key| body_key != key.as_str())
        {
            return Err(ApiError::invalid("the body's key differs from the path's"));
        }
        Ok(SchemaEntry {
            key,
            value_type: ProfileType::parse(&self.value_type)?,
            user_editable: self.user_editable,
            tenant_overridable: self.tenant_overridable,
        })
    }
}

impl TryFrom<NewApiKeyBody> for NewApiKey {
    type Error = ApiError;

    fn try_from(body: NewApiKeyBody) -> ApiResult<Self> {
        Ok(Self {
            name: DisplayName::parse(&body.name)?,
            scopes: scopes(&body.scopes)?,
        })
    }
}

/// A check's parse error is the domain's: the engine orders it after the tenant, the
/// caller and the batch bound (SPEC §3.1).
impl TryFrom<AuthorizeBody> for AuthzCheck {
    type Error = domain::Error;

    fn try_from(body: AuthorizeBody) -> Result<Self, domain::Error> {
        let subject = match (body.subject.user_id, body.subject.token) {
            (Some(user), None) => CheckSubject::User {
                user_id: UserId::parse(&user)?,
                assurance: body
                    .subject
                    .assurance
                    .as_deref()
                    .map(Assurance::parse)
                    .transpose()?
                    .unwrap_or(Assurance::Aal1),
            },
            (None, Some(token)) if body.subject.assurance.is_none() => CheckSubject::Token(token),
            _ => {
                return Err(domain::Error::InvalidRequest(
                    "subject is {\"user_id\", \"assurance\"} or {\"token\"}".to_owned(),
                ))
            }
        };
        Ok(Self {
            subject,
            scope: ScopeName::parse(&body.scope)?,
            target: body.target_user.as_deref().map(UserId::parse).transpose()?,
        })
    }
}

fn client_type(name: &str) -> ApiResult<domain::oidc::ClientType> {
    domain::oidc::ClientType::parse(name)
        .ok_or_else(|| ApiError::invalid("type must be confidential or public"))
}

impl TryFrom<NewPlatformClientBody> for domain::usecases::NewOAuthClient {
    type Error = ApiError;

    fn try_from(body: NewPlatformClientBody) -> ApiResult<Self> {
        Ok(Self {
            name: body.name,
            client_type: client_type(&body.client_type)?,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris.unwrap_or_default(),
            scopes: BTreeSet::new(),
            first_party: body.first_party.unwrap_or(true),
        })
    }
}

impl TryFrom<NewTenantClientBody> for domain::usecases::NewOAuthClient {
    type Error = ApiError;

    fn try_from(body: NewTenantClientBody) -> ApiResult<Self> {
        let kind = client_type(&body.client_type)?;
        if kind == domain::oidc::ClientType::Public && body.scopes.is_some() {
            return Err(ApiError::invalid(
                "a public client has no scopes: client_credentials needs a secret",
            ));
        }
        Ok(Self {
            name: body.name,
            client_type: kind,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris.unwrap_or_default(),
            scopes: scopes(&body.scopes.unwrap_or_default())?,
            first_party: body.first_party.unwrap_or(true),
        })
    }
}
