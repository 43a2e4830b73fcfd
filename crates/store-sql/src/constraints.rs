//! What a violated constraint means to a use case, by the schema's constraint name (both
//! schemas name their constraints alike; never by an error message's text).

use domain::ports::StoreError;

/// The store error a violated constraint stands for, or `None` for a constraint no
/// contract names (a CHECK, an append-only trigger): the adapter reports that as
/// `Unavailable` with the database's own words.
///
/// A store that checks its foreign keys itself before writing (SQLite, which does not
/// say which key failed) never reaches the `Missing` entries; PostgreSQL does.
pub fn constraint_error(name: &str) -> Option<StoreError> {
    Some(match name {
        "tenants_pkey" | "tenant_tombstones_pkey" => StoreError::Duplicate("tenant"),
        "users_email_key" => StoreError::Duplicate("email"),
        "users_pkey" => StoreError::Duplicate("user"),
        "accounts_pkey" => StoreError::Duplicate("member"),
        "catalog_scopes_pkey" => StoreError::Duplicate("scope"),
        "signing_keys_pkey" => StoreError::Duplicate("signing key"),
        "platform_oauth_clients_pkey" | "oauth_clients_pkey" | "oauth_clients_client_id_key" => {
            StoreError::Duplicate("oauth client")
        }
        "oauth_grants_pkey" => StoreError::Duplicate("grant"),
        "scim_users_user_name_unique" => StoreError::Duplicate("scim user name"),
        "scim_groups_display_name_unique" => StoreError::Duplicate("scim group name"),
        "scim_groups_binding_fkey" => StoreError::Missing("role"),
        "oauth_clients_tenant_fkey" => StoreError::Missing("tenant"),
        "oauth_grants_account_fkey" | "oauth_consents_account_fkey" | "scim_users_account_fkey" => {
            StoreError::Missing("member")
        }
        "api_keys_pkey" | "api_keys_key_id_key" | "api_keys_secret_hash_key" => {
            StoreError::Duplicate("api_key")
        }
        "accounts_tenant_fkey"
        | "tenant_scopes_tenant_fkey"
        | "role_bindings_tenant_fkey"
        | "tenant_profile_defaults_tenant_fkey"
        | "api_keys_tenant_fkey" => StoreError::Missing("tenant"),
        "accounts_user_fkey"
        | "user_credentials_user_fkey"
        | "platform_profile_values_user_fkey"
        | "sessions_user_fkey"
        | "invitations_user_fkey" => StoreError::Missing("user"),
        "memberships_account_fkey"
        | "member_profile_values_account_fkey"
        | "api_keys_creator_fkey" => StoreError::Missing("member"),
        "tenant_scopes_scope_fkey" | "role_binding_scopes_scope_fkey" => {
            StoreError::Missing("scope")
        }
        "member_profile_values_key_fkey"
        | "tenant_profile_defaults_key_fkey"
        | "platform_profile_values_key_fkey" => StoreError::Missing("profile_key"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_keys_are_duplicates_and_foreign_keys_are_missing_rows() {
        assert_eq!(
            constraint_error("tenant_tombstones_pkey"),
            Some(StoreError::Duplicate("tenant"))
        );
        assert_eq!(
            constraint_error("api_keys_creator_fkey"),
            Some(StoreError::Missing("member"))
        );
        assert_eq!(constraint_error("foreign_key"), None);
        assert_eq!(constraint_error("audit_records_pkey"), None);
    }
}
