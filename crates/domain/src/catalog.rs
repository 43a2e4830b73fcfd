//! The default scope catalog, default bindings and default profile schema (SPEC §3.4, §3.5).
//!
//! Every store seeds itself from these functions, so the defaults have one source.

use crate::ids::{Assurance, ProfileKey, ProfileType, RoleName, ScopeName};
use crate::model::{CatalogScope, RoleBinding, SchemaEntry};

/// Engine scope names, used by the use cases to say what each operation needs.
pub mod scopes {
    pub const TENANT_READ: &str = "tenant:read";
    pub const TENANT_WRITE: &str = "tenant:write";
    pub const MEMBERS_READ: &str = "members:read";
    pub const MEMBERS_WRITE: &str = "members:write";
    pub const ACCOUNTS_WRITE: &str = "accounts:write";
    pub const PROFILES_READ: &str = "profiles:read";
    pub const PROFILES_WRITE: &str = "profiles:write";
    pub const ROLES_READ: &str = "roles:read";
    pub const ROLES_WRITE: &str = "roles:write";
    pub const API_KEYS_WRITE: &str = "api_keys:write";
    pub const AUDIT_READ: &str = "audit:read";
    pub const EVENTS_READ: &str = "events:read";
    pub const AUTHZ_CHECK: &str = "authz:check";
    pub const DIAGNOSTICS_READ: &str = "diagnostics:read";
    pub const SCIM_WRITE: &str = "scim:write";
    pub const PLATFORM_TENANTS_WRITE: &str = "platform:tenants:write";
    pub const PLATFORM_USERS_READ: &str = "platform:users:read";
    pub const PLATFORM_USERS_WRITE: &str = "platform:users:write";
    pub const PLATFORM_ROLES_WRITE: &str = "platform:roles:write";
    pub const PLATFORM_CATALOG_WRITE: &str = "platform:catalog:write";
    pub const PLATFORM_AUDIT_READ: &str = "platform:audit:read";
}

/// (name, description, min assurance) of the tenant-assignable engine scopes.
const TENANT_ENGINE_SCOPES: &[(&str, &str, Assurance)] = &[
    (scopes::TENANT_READ, "read the tenant", Assurance::Aal1),
    (
        scopes::TENANT_WRITE,
        "change the tenant's name and defaults",
        Assurance::Aal1,
    ),
    (
        scopes::MEMBERS_READ,
        "list and read members",
        Assurance::Aal1,
    ),
    (
        scopes::MEMBERS_WRITE,
        "add, change and remove members",
        Assurance::Aal1,
    ),
    (
        scopes::ACCOUNTS_WRITE,
        "suspend and reactivate tenant accounts",
        Assurance::Aal1,
    ),
    (
        scopes::PROFILES_READ,
        "read member profiles",
        Assurance::Aal1,
    ),
    (
        scopes::PROFILES_WRITE,
        "write member profile values",
        Assurance::Aal1,
    ),
    (
        scopes::ROLES_READ,
        "read enabled scopes and role bindings",
        Assurance::Aal1,
    ),
    (scopes::ROLES_WRITE, "change role bindings", Assurance::Aal2),
    (
        scopes::API_KEYS_WRITE,
        "manage the tenant's API keys",
        Assurance::Aal1,
    ),
    (
        scopes::AUDIT_READ,
        "read the tenant's audit trail",
        Assurance::Aal1,
    ),
    (
        scopes::EVENTS_READ,
        "read the tenant's event feed",
        Assurance::Aal1,
    ),
    (
        scopes::AUTHZ_CHECK,
        "ask the authorize API for decisions",
        Assurance::Aal1,
    ),
    (
        scopes::DIAGNOSTICS_READ,
        "read the onboarding diagnostics",
        Assurance::Aal1,
    ),
    (
        scopes::SCIM_WRITE,
        "provision users and groups through SCIM 2.0",
        Assurance::Aal1,
    ),
];

const PLATFORM_ENGINE_SCOPES: &[(&str, &str, Assurance)] = &[
    (
        scopes::PLATFORM_TENANTS_WRITE,
        "create tenants and change their lifecycle",
        Assurance::Aal1,
    ),
    (
        scopes::PLATFORM_USERS_READ,
        "read platform users",
        Assurance::Aal1,
    ),
    (
        scopes::PLATFORM_USERS_WRITE,
        "create users and change their platform state",
        Assurance::Aal1,
    ),
    (
        scopes::PLATFORM_ROLES_WRITE,
        "grant and revoke platform roles",
        Assurance::Aal2,
    ),
    (
        scopes::PLATFORM_CATALOG_WRITE,
        "change the scope catalog and profile schema",
        Assurance::Aal1,
    ),
    (
        scopes::PLATFORM_AUDIT_READ,
        "read the platform audit trail",
        Assurance::Aal1,
    ),
];

fn scope(name: &str) -> Option<ScopeName> {
    ScopeName::parse(name).ok()
}

fn entries(list: &[(&str, &str, Assurance)], platform_only: bool) -> Vec<CatalogScope> {
    list.iter()
        .filter_map(|(name, description, min_assurance)| {
            Some(CatalogScope {
                name: scope(name)?,
                description: (*description).to_owned(),
                platform_only,
                min_assurance: *min_assurance,
            })
        })
        .collect()
}

/// The catalog every store starts with: engine scopes, tenant-assignable then platform-only.
pub fn default_catalog() -> Vec<CatalogScope> {
    let mut catalog = entries(TENANT_ENGINE_SCOPES, false);
    catalog.extend(entries(PLATFORM_ENGINE_SCOPES, true));
    catalog
}

/// Whether a scope is one of the engine's own (these cannot be redefined).
pub fn is_engine_scope(name: &ScopeName) -> bool {
    TENANT_ENGINE_SCOPES
        .iter()
        .chain(PLATFORM_ENGINE_SCOPES)
        .any(|(engine, _, _)| *engine == name.as_str())
}

/// The scopes a new tenant starts with enabled: every tenant-assignable engine scope.
pub fn default_enabled_scopes() -> Vec<ScopeName> {
    TENANT_ENGINE_SCOPES
        .iter()
        .filter_map(|(name, _, _)| scope(name))
        .collect()
}

/// The bindings a new tenant starts with: `member` → `tenant:read`, `profiles:read`,
/// `roles:read` (`tenant_admin` is bound implicitly to every enabled scope).
pub fn default_bindings() -> Vec<RoleBinding> {
    vec![RoleBinding {
        role: RoleName::member(),
        scopes: [
            scopes::TENANT_READ,
            scopes::PROFILES_READ,
            scopes::ROLES_READ,
        ]
        .into_iter()
        .filter_map(scope)
        .collect(),
    }]
}

/// The profile schema every store starts with (`given_name`, `family_name` and
/// `formatted_name` hold SCIM's `name`, SPEC §8).
pub fn default_schema() -> Vec<SchemaEntry> {
    [
        ("display_name", true),
        ("given_name", true),
        ("family_name", true),
        ("formatted_name", true),
        ("locale", true),
        ("timezone", true),
        ("title", false),
        ("department", false),
    ]
    .into_iter()
    .filter_map(|(key, user_editable)| {
        Some(SchemaEntry {
            key: ProfileKey::parse(key).ok()?,
            value_type: ProfileType::String,
            user_editable,
            tenant_overridable: true,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_name_parses() {
        assert_eq!(
            default_catalog().len(),
            TENANT_ENGINE_SCOPES.len() + PLATFORM_ENGINE_SCOPES.len()
        );
        assert_eq!(default_schema().len(), 8);
        assert_eq!(default_enabled_scopes().len(), 15);
        assert_eq!(
            default_bindings()
                .first()
                .map(|binding| binding.scopes.len()),
            Some(3)
        );
    }

    #[test]
    fn role_and_platform_role_writes_need_aal2() {
        let catalog = default_catalog();
        for name in [scopes::ROLES_WRITE, scopes::PLATFORM_ROLES_WRITE] {
            let entry = catalog.iter().find(|entry| entry.name.as_str() == name);
            assert_eq!(
                entry.map(|entry| entry.min_assurance),
                Some(Assurance::Aal2)
            );
        }
    }
}
