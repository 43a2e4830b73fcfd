//! SQLite errors to store errors.
//!
//! SQLite names a failed CHECK (`CHECK constraint failed: <name>`) but not a failed
//! key: a unique or primary key names its columns (`UNIQUE constraint failed:
//! tenants.tenant_id`), an expression index its name, a foreign key nothing at all. So
//! [`constraint`] turns what SQLite does say into the schema's constraint names, the
//! one place that reads error messages, and the adapter checks foreign keys itself
//! before writing (its writes are serialised, so nothing changes in between).

use domain::ports::StoreError;

/// SQLite's extended result codes (<https://www.sqlite.org/rescode.html>).
pub mod codes {
    pub const BUSY: i64 = 5;
    pub const LOCKED: i64 = 6;
    pub const BUSY_SNAPSHOT: i64 = 517;
    pub const CONSTRAINT_CHECK: i64 = 275;
    /// A STRICT table's column given a value of another type.
    pub const CONSTRAINT_DATATYPE: i64 = 3091;
    pub const CONSTRAINT_FOREIGNKEY: i64 = 787;
    pub const CONSTRAINT_NOTNULL: i64 = 1299;
    pub const CONSTRAINT_PRIMARYKEY: i64 = 1555;
    pub const CONSTRAINT_TRIGGER: i64 = 1811;
    pub const CONSTRAINT_UNIQUE: i64 = 2067;
}

/// Unique keys by the columns SQLite names, as `table.column, …`.
const UNIQUE_KEYS: &[(&str, &str)] = &[
    ("tenants.tenant_id", "tenants_pkey"),
    ("tenant_tombstones.tenant_id", "tenant_tombstones_pkey"),
    ("users.user_id", "users_pkey"),
    (
        "user_platform_roles.user_id, user_platform_roles.role",
        "user_platform_roles_pkey",
    ),
    ("user_credentials.user_id", "user_credentials_pkey"),
    ("catalog_scopes.name", "catalog_scopes_pkey"),
    ("profile_schema.key", "profile_schema_pkey"),
    (
        "tenant_scopes.tenant_id, tenant_scopes.scope",
        "tenant_scopes_pkey",
    ),
    (
        "role_bindings.tenant_id, role_bindings.role",
        "role_bindings_pkey",
    ),
    (
        "role_binding_scopes.tenant_id, role_binding_scopes.role, role_binding_scopes.scope",
        "role_binding_scopes_pkey",
    ),
    ("accounts.tenant_id, accounts.user_id", "accounts_pkey"),
    (
        "scim_users.tenant_id, scim_users.user_name_key",
        "scim_users_user_name_unique",
    ),
    (
        "scim_groups.tenant_id, scim_groups.display_name_key",
        "scim_groups_display_name_unique",
    ),
    (
        "memberships.tenant_id, memberships.user_id, memberships.role",
        "memberships_pkey",
    ),
    (
        "member_profile_values.tenant_id, member_profile_values.user_id, member_profile_values.key",
        "member_profile_values_pkey",
    ),
    (
        "tenant_profile_defaults.tenant_id, tenant_profile_defaults.key",
        "tenant_profile_defaults_pkey",
    ),
    (
        "platform_profile_values.user_id, platform_profile_values.key",
        "platform_profile_values_pkey",
    ),
    ("api_keys.tenant_id, api_keys.key_id", "api_keys_pkey"),
    ("api_keys.key_id", "api_keys_key_id_key"),
    ("api_keys.secret_hash", "api_keys_secret_hash_key"),
    (
        "api_key_scopes.tenant_id, api_key_scopes.key_id, api_key_scopes.scope",
        "api_key_scopes_pkey",
    ),
    ("sessions.token_hash", "sessions_pkey"),
    ("invitations.token_hash", "invitations_pkey"),
    (
        "audit_records.partition, audit_records.seq",
        "audit_records_pkey",
    ),
    ("audit_records.audit_id", "audit_records_audit_id_key"),
    (
        "outbox_events.partition, outbox_events.position",
        "outbox_events_pkey",
    ),
    ("outbox_events.event_id", "outbox_events_event_id_key"),
];

/// The extended result code of a database error.
pub fn code(error: &sqlx::Error) -> Option<i64> {
    match error {
        sqlx::Error::Database(database) => database.code()?.parse().ok(),
        _ => None,
    }
}

/// The schema's name for the constraint a statement violated, where SQLite says enough
/// to tell: a CHECK's own name, a unique key's name by its columns or index, and
/// `foreign_key` for any foreign key (SQLite does not say which).
pub fn constraint(error: &sqlx::Error) -> Option<&str> {
    let sqlx::Error::Database(database) = error else {
        return None;
    };
    let message = database.message();
    match code(error)? {
        codes::CONSTRAINT_CHECK => message.strip_prefix("CHECK constraint failed: "),
        codes::CONSTRAINT_UNIQUE | codes::CONSTRAINT_PRIMARYKEY => {
            let columns = message.strip_prefix("UNIQUE constraint failed: ")?;
            if let Some(index) = columns
                .strip_prefix("index '")
                .and_then(|rest| rest.strip_suffix('\''))
            {
                return Some(index);
            }
            UNIQUE_KEYS
                .iter()
                .find(|(named, _)| *named == columns)
                .map(|(_, name)| *name)
        }
        codes::CONSTRAINT_FOREIGNKEY => Some("foreign_key"),
        _ => None,
    }
}

/// Whether a `ROLLBACK` failed because no transaction was open (SQLite had already
/// ended it); SQLite gives this only the generic error code.
pub(crate) fn no_transaction(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database)
        if database.message().contains("no transaction is active"))
}

/// Maps a sqlx error to the store error a use case understands, by the constraint name
/// [`constraint`] recovers (`store_sql::constraint_error` says what each means). Foreign
/// keys are checked by the adapter before it writes, and SQLite does not name them, so
/// one failing here is a bug or a change made behind the adapter's back, reported as
/// `Unavailable` with SQLite's words.
pub fn store_error(error: sqlx::Error) -> StoreError {
    if matches!(
        code(&error),
        Some(codes::BUSY | codes::LOCKED | codes::BUSY_SNAPSHOT)
    ) {
        // Another process held the database longer than the busy timeout; the
        // transaction may be retried.
        return StoreError::Conflict;
    }
    constraint(&error)
        .and_then(store_sql::constraint_error)
        .unwrap_or_else(|| StoreError::Unavailable(error.to_string()))
}
