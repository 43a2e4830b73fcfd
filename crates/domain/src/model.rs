//! The entities of the multi-tenant model (SPEC §1–§3): tenants, users, tenant accounts
//! with their memberships, the scope catalog, role bindings, profiles and API keys.
//!
//! Entities are plain data and deliberately not serializable: the HTTP layer maps them to
//! its own DTOs.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::ids::{
    Assurance, DisplayName, Email, KeyId, ProfileKey, ProfileType, ProfileValue, RoleName,
    ScopeName, SessionId, TenantId, UserId,
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
    /// The address came back through a token mailed to it (an email verification).
    pub email_verified: bool,
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
    /// The user who created the key, while they are a member of its tenant.
    pub created_by: Option<UserId>,
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

/// What a session's owner is shown of it besides its times: its public id and where it
/// was opened from. Kept beside [`Session`], which is what authentication reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDetails {
    pub id: SessionId,
    /// The login request's client address (SPEC §3.6), as text.
    pub client_address: Option<String>,
    /// The login request's `User-Agent`, at most [`SessionDetails::USER_AGENT_MAX`]
    /// characters.
    pub user_agent: Option<String>,
}

impl SessionDetails {
    /// The longest `User-Agent` kept; a longer one is cut at a character boundary.
    pub const USER_AGENT_MAX: usize = 256;

    /// `user_agent` cut to [`SessionDetails::USER_AGENT_MAX`] characters, control
    /// characters dropped; `None` when nothing is left.
    pub fn user_agent(user_agent: &str) -> Option<String> {
        let kept: String = user_agent
            .chars()
            .filter(|c| !c.is_control())
            .take(Self::USER_AGENT_MAX)
            .collect();
        let kept = kept.trim();
        (!kept.is_empty()).then(|| kept.to_owned())
    }
}

/// A password reset token (SPEC §4 `password-reset`): the same single-use shape as an
/// invitation, kept apart from invitations (`password_resets`).
pub type PasswordReset = Invitation;

/// A one-time invitation for an invited user to set a password; also the shape of a
/// [`PasswordReset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub token_hash: String,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// A pending change of a user's email (SPEC §4 `PUT /v1/me/email`): single-use, stored
/// hashed; the new address is applied only when the token mailed to it comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailVerification {
    pub token_hash: String,
    pub user_id: UserId,
    pub email: Email,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]
mod tests {
    use super::*;

    fn key(name: &str) -> ProfileKey {
        ProfileKey::parse(name).unwrap()
    }

    fn text(value: &str) -> ProfileValue {
        ProfileValue::parse(&serde_json::Value::String(value.to_owned())).unwrap()
    }

    fn entry(name: &str, tenant_overridable: bool) -> SchemaEntry {
        SchemaEntry {
            key: key(name),
            value_type: ProfileType::String,
            user_editable: true,
            tenant_overridable,
        }
    }

    /// `locale` and `title` are overridable by tenants; `legal_name` is not.
    fn schema() -> Vec<SchemaEntry> {
        vec![
            entry("locale", true),
            entry("title", true),
            entry("legal_name", false),
        ]
    }

    fn layer(values: &[(&str, &str)]) -> BTreeMap<ProfileKey, ProfileValue> {
        values
            .iter()
            .map(|(name, value)| (key(name), text(value)))
            .collect()
    }

    fn resolved(profile: &ResolvedProfile, name: &str) -> Option<(ProfileValue, ProfileSource)> {
        profile
            .values
            .get(&key(name))
            .map(|resolved| (resolved.value.clone(), resolved.source))
    }

    #[test]
    fn the_member_value_beats_the_platform_value_and_the_tenant_default() {
        let profile = resolve_profile(
            &schema(),
            &layer(&[("locale", "member")]),
            &layer(&[("locale", "platform")]),
            &layer(&[("locale", "default")]),
        );
        assert_eq!(
            resolved(&profile, "locale"),
            Some((text("member"), ProfileSource::TenantMember))
        );
    }

    #[test]
    fn the_platform_value_beats_the_tenant_default() {
        let profile = resolve_profile(
            &schema(),
            &BTreeMap::new(),
            &layer(&[("locale", "platform")]),
            &layer(&[("locale", "default")]),
        );
        assert_eq!(
            resolved(&profile, "locale"),
            Some((text("platform"), ProfileSource::Platform))
        );
    }

    #[test]
    fn the_tenant_default_applies_when_nothing_else_is_set() {
        let profile = resolve_profile(
            &schema(),
            &BTreeMap::new(),
            &BTreeMap::new(),
            &layer(&[("locale", "default")]),
        );
        assert_eq!(
            resolved(&profile, "locale"),
            Some((text("default"), ProfileSource::TenantDefault))
        );
    }

    #[test]
    fn the_member_value_beats_the_tenant_default_without_a_platform_value() {
        let profile = resolve_profile(
            &schema(),
            &layer(&[("locale", "member")]),
            &BTreeMap::new(),
            &layer(&[("locale", "default")]),
        );
        assert_eq!(
            resolved(&profile, "locale"),
            Some((text("member"), ProfileSource::TenantMember))
        );
    }

    #[test]
    fn each_key_resolves_from_its_own_layers() {
        let profile = resolve_profile(
            &schema(),
            &layer(&[("title", "member title")]),
            &layer(&[("locale", "platform locale")]),
            &layer(&[("title", "default title"), ("locale", "default locale")]),
        );
        assert_eq!(
            resolved(&profile, "title"),
            Some((text("member title"), ProfileSource::TenantMember))
        );
        assert_eq!(
            resolved(&profile, "locale"),
            Some((text("platform locale"), ProfileSource::Platform))
        );
    }

    #[test]
    fn a_key_set_in_no_layer_is_absent() {
        let profile = resolve_profile(
            &schema(),
            &layer(&[("locale", "member")]),
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert_eq!(resolved(&profile, "title"), None);
        assert_eq!(profile.values.len(), 1);
    }

    #[test]
    fn a_key_not_overridable_by_tenants_ignores_the_tenant_layers() {
        let tenant_only = resolve_profile(
            &schema(),
            &layer(&[("legal_name", "member")]),
            &BTreeMap::new(),
            &layer(&[("legal_name", "default")]),
        );
        assert_eq!(resolved(&tenant_only, "legal_name"), None);
        let with_platform = resolve_profile(
            &schema(),
            &layer(&[("legal_name", "member")]),
            &layer(&[("legal_name", "platform")]),
            &layer(&[("legal_name", "default")]),
        );
        assert_eq!(
            resolved(&with_platform, "legal_name"),
            Some((text("platform"), ProfileSource::Platform))
        );
    }

    #[test]
    fn keys_not_in_the_schema_are_ignored() {
        let profile = resolve_profile(
            &schema(),
            &layer(&[("nickname", "member")]),
            &layer(&[("nickname", "platform")]),
            &layer(&[("nickname", "default")]),
        );
        assert_eq!(profile, ResolvedProfile::default());
        let no_schema = resolve_profile(
            &[],
            &layer(&[("locale", "member")]),
            &layer(&[("locale", "platform")]),
            &layer(&[("locale", "default")]),
        );
        assert!(no_schema.values.is_empty());
    }

    #[test]
    fn profile_sources_have_their_spec_names() {
        assert_eq!(ProfileSource::TenantMember.as_str(), "tenant_member");
        assert_eq!(ProfileSource::Platform.as_str(), "platform");
        assert_eq!(ProfileSource::TenantDefault.as_str(), "tenant_default");
    }

    // ---- states and roles ----------------------------------------------------------

    #[test]
    fn states_and_platform_roles_round_trip_through_their_names() {
        for state in [TenantState::Active, TenantState::Suspended] {
            assert_eq!(TenantState::parse(state.as_str()), Some(state));
        }
        for state in [UserState::Invited, UserState::Active, UserState::Suspended] {
            assert_eq!(UserState::parse(state.as_str()), Some(state));
        }
        for state in [AccountState::Active, AccountState::Suspended] {
            assert_eq!(AccountState::parse(state.as_str()), Some(state));
        }
        for role in [PlatformRole::Root, PlatformRole::Auditor] {
            assert_eq!(PlatformRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(PlatformRole::Root.as_str(), "platform_root");
        assert_eq!(PlatformRole::Auditor.as_str(), "platform_auditor");
        assert_eq!(TenantState::parse("Active"), None);
        assert_eq!(UserState::parse("deleted"), None);
        assert_eq!(AccountState::parse("invited"), None);
        assert_eq!(PlatformRole::parse("root"), None);
    }

    #[test]
    fn only_an_active_account_holding_tenant_admin_counts_as_an_active_admin() {
        let member = |state: AccountState, roles: &[&str]| Member {
            tenant: TenantId::parse("acme").unwrap(),
            user_id: UserId::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap(),
            email: Email::parse("alice@example.com").unwrap(),
            roles: roles
                .iter()
                .map(|role| RoleName::parse(role).unwrap())
                .collect(),
            state,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            version: 1,
        };
        assert!(member(AccountState::Active, &["tenant_admin"]).is_active_admin());
        assert!(member(AccountState::Active, &["member", "tenant_admin"]).is_active_admin());
        assert!(!member(AccountState::Suspended, &["tenant_admin"]).is_active_admin());
        assert!(!member(AccountState::Active, &["member"]).is_active_admin());
        assert!(!member(AccountState::Active, &[]).is_active_admin());
    }

    #[test]
    fn debug_never_shows_a_totp_secret() {
        let enrolment = TotpEnrolment {
            secret: "JBSWY3DPEHPK3PXP".to_owned(),
            confirmed: true,
            last_used_step: Some(7),
        };
        let shown = format!("{enrolment:?}");
        assert!(!shown.contains("JBSWY3DPEHPK3PXP"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let credentials = Credentials {
            password_hash: None,
            totp: Some(enrolment),
        };
        assert!(!format!("{credentials:?}").contains("JBSWY3DPEHPK3PXP"));
    }
}
