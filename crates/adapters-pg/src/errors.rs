//! Database errors to store errors, by constraint name (never by message text).

use domain::ports::StoreError;

/// Maps a sqlx error to the store error a use case understands.
pub fn store_error(error: sqlx::Error) -> StoreError {
    let sqlx::Error::Database(database) = &error else {
        return StoreError::Unavailable(error.to_string());
    };
    // serialization_failure and deadlock_detected: the transaction may be retried.
    if matches!(database.code().as_deref(), Some("40001" | "40P01")) {
        return StoreError::Conflict;
    }
    match database.constraint() {
        Some("tenants_pkey" | "tenant_tombstones_pkey") => StoreError::Duplicate("tenant"),
        Some("users_email_key") => StoreError::Duplicate("email"),
        Some("users_pkey") => StoreError::Duplicate("user"),
        Some("accounts_pkey") => StoreError::Duplicate("member"),
        Some("catalog_scopes_pkey") => StoreError::Duplicate("scope"),
        Some("api_keys_pkey" | "api_keys_key_id_key" | "api_keys_secret_hash_key") => {
            StoreError::Duplicate("api_key")
        }
        Some(
            "accounts_tenant_fkey"
            | "tenant_scopes_tenant_fkey"
            | "role_bindings_tenant_fkey"
            | "tenant_profile_defaults_tenant_fkey"
            | "api_keys_tenant_fkey",
        ) => StoreError::Missing("tenant"),
        Some(
            "accounts_user_fkey"
            | "user_credentials_user_fkey"
            | "platform_profile_values_user_fkey"
            | "sessions_user_fkey"
            | "invitations_user_fkey",
        ) => StoreError::Missing("user"),
        Some(
            "memberships_account_fkey"
            | "member_profile_values_account_fkey"
            | "api_keys_creator_fkey",
        ) => StoreError::Missing("member"),
        Some("tenant_scopes_scope_fkey" | "role_binding_scopes_scope_fkey") => {
            StoreError::Missing("scope")
        }
        Some(
            "member_profile_values_key_fkey"
            | "tenant_profile_defaults_key_fkey"
            | "platform_profile_values_key_fkey",
        ) => StoreError::Missing("profile_key"),
        _ => StoreError::Unavailable(error.to_string()),
    }
}
