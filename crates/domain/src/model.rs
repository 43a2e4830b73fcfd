//! The entities of the multi-tenant model (SPEC §1–§3): tenants, users, tenant accounts
//! with their memberships, the scope catalog, role bindings, profiles and API keys.
//!
//! Entities are plain data and deliberately not serializable: the HTTP layer maps them to
//! its own DTOs.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::ids::{
    Assurance, DisplayName, Email, KeyId, ProfileKey, ProfileType, ProfileValue, RoleName,
    ScopeName, TenantId, UserId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TenantState {
    Active,
    Suspended,
}

impl TenantState {
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub display_name: DisplayName,
    pub state: TenantState,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserState {
    Invited,
    Active,
    Suspended,
}

impl UserState {
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "invited" => Some(Self::Invited),
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

/// Platform roles; holding one makes a user a platform-root resource that tenant admins
/// may not change (`target_protected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlatformRole {
    Root,
    Auditor,
}

impl PlatformRole {
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "platform_root" => Some(Self::Root),
            "platform_auditor" => Some(Self::Auditor),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Root => "platform_root",
            Self::Auditor => "platform_auditor",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub state: UserState,
    pub platform_roles: BTreeSet<PlatformRole>,
    /// A confirmed TOTP enrolment exists.
    pub has_totp: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A user's secrets, kept apart from the user so reads of users never carry them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// PHC string of the password hash; `None` until an invited user sets one.
    pub password_hash: Option<String>,
    pub totp: Option<TotpEnrolment>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct TotpEnrolment {
    /// Base32 secret, shown once at enrolment.
    pub secret: String,
    pub confirmed: bool,
    /// The last accepted time step; a code of this step or earlier is never accepted again.
    pub last_used_step: Option<u64>,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("secret", &"<redacted>")
            .field("confirmed", &self.confirmed)
            .field("last_used_step", &self.last_used_step)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountState {
    Active,
    Suspended,
}

impl AccountState {
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

/// A user's tenant account and its membership roles in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub tenant: TenantId,
    pub user_id: UserId,
    /// The user's email, joined in for reads.
    pub email: Email,
    pub roles: BTreeSet<RoleName>,
    pub state: AccountState,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Bumped by every change; the HTTP layer derives the `ETag` from it.
    pub version: u64,
}

impl Member {
    /// An active account holding `tenant_admin`: what the last-admin invariant counts.
    pub fn is_active_admin(&self) -> bool {
        self.state == AccountState::Active && self.roles.iter().any(RoleName::is_tenant_admin)
    }
}

/// One entry of the platform's scope catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogScope {
    pub name: ScopeName,
    pub description: String,
    pub platform_only: bool,
    pub min_assurance: Assurance,
}

/// A tenant's binding of a role to the scopes it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    pub role: RoleName,
    pub scopes: BTreeSet<ScopeName>,
}

/// One key of the platform's profile schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaEntry {
    pub key: ProfileKey,
    pub value_type: ProfileType,
    /// The user may write their own value of this key.
    pub user_editable: bool,
    /// Tenants may set defaults and member values for this key.
    pub tenant_overridable: bool,
}

/// Where a resolved profile value came from (SPEC §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProfileSource {
    TenantMember,
    Platform,
    TenantDefault,
}

impl ProfileSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::TenantMember => "tenant_member",
            Self::Platform => "platform",
            Self::TenantDefault => "tenant_default",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedValue {
    pub value: ProfileValue,
    pub source: ProfileSource,
}

/// A member's resolved profile in one tenant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedProfile {
    pub values: BTreeMap<ProfileKey, ResolvedValue>,
}

/// Applies the precedence of SPEC §3.4 to the three layers of one member's values:
/// the member's tenant value, then the user's platform value, then the tenant default.
/// Keys not in the schema are ignored; tenant layers count only for overridable keys.
pub fn resolve_profile(
    schema: &[SchemaEntry],
    member_values: &BTreeMap<ProfileKey, ProfileValue>,
    platform_values: &BTreeMap<ProfileKey, ProfileValue>,
    tenant_defaults: &BTreeMap<ProfileKey, ProfileValue>,
) -> ResolvedProfile {
    let mut values = BTreeMap::new();
    for entry in schema {
        let tenant_layer = |layer: &'_ BTreeMap<ProfileKey, ProfileValue>| {
            if entry.tenant_overridable {
                layer.get(&entry.key).cloned()
            } else {
                None
            }
        };
        let resolved = tenant_layer(member_values)
            .map(|value| (value, ProfileSource::TenantMember))
            .or_else(|| {
                platform_values
                    .get(&entry.key)
                    .map(|value| (value.clone(), ProfileSource::Platform))
            })
            .or_else(|| {
                tenant_layer(tenant_defaults).map(|value| (value, ProfileSource::TenantDefault))
            });
        if let Some((value, source)) = resolved {
            values.insert(entry.key.clone(), ResolvedValue { value, source });
        }
    }
    ResolvedProfile { values }
}

/// A tenant API key's metadata; the secret itself is stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: KeyId,
    pub tenant: TenantId,
    pub name: DisplayName,
    pub scopes: BTreeSet<ScopeName>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A login session; the token is stored only as its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// The session counts as `aal2` until this instant (the last TOTP check plus the
    /// step-up TTL).
    pub aal2_until: Option<OffsetDateTime>,
}

/// A one-time invitation for an invited user to set a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub token_hash: String,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}
