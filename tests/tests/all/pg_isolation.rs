//! Tenant isolation enforced by PostgreSQL itself, below the domain: named constraints that
//! refuse rows pointing into another tenant, row-level security as the service role, the
//! catalog facts both rely on, and change + audit + event committed or rolled back together.
//!
//! The constraint tests run as the owner, a superuser that bypasses row-level security, so
//! they prove the constraints alone; the RLS tests run as the service role, with the owner
//! checking behind its back that the rows it must not see really exist.

use std::collections::BTreeSet;
use std::sync::Arc;

use domain::ids::{TenantId, UserId};
use domain::ports::StoreError;
use domain::usecases::{AddMember, UserRef};
use sqlx::{Connection, PgConnection};
use tests::harness::Harness;
use tests::pg::TestDb;
use uuid::Uuid;

/// Every tenant-scoped table and the column naming its tenant.
const TENANT_TABLES: [(&str, &str); 20] = [
    ("tenants", "tenant_id"),
    ("tenant_tombstones", "tenant_id"),
    ("tenant_scopes", "tenant_id"),
    ("role_bindings", "tenant_id"),
    ("role_binding_scopes", "tenant_id"),
    ("accounts", "tenant_id"),
    ("memberships", "tenant_id"),
    ("member_profile_values", "tenant_id"),
    ("tenant_profile_defaults", "tenant_id"),
    ("api_keys", "tenant_id"),
    ("webhooks", "tenant_id"),
    ("webhook_deliveries", "tenant_id"),
    ("oauth_clients", "tenant_id"),
    ("oauth_grants", "tenant_id"),
    ("oauth_consents", "tenant_id"),
    ("scim_users", "tenant_id"),
    ("scim_groups", "tenant_id"),
    ("audit_records", "tenant_id"),
    ("outbox_events", "tenant_id"),
    ("partition_heads", "partition"),
];

/// `insufficient_privilege`: row-level security's refusal, a missing table privilege and
/// the append-only trigger all answer with it.
const INSUFFICIENT_PRIVILEGE: &str = "42501";
const UNIQUE_VIOLATION: &str = "23505";

/// [`tests::fixtures::TwoTenants`] on a database of its own.
struct TwoTenants {
    a: TenantId,
    b: TenantId,
    /// A member of tenant B only.
    b_member: UserId,
    db: TestDb,
}

impl TwoTenants {
    async fn create() -> Self {
        let db = TestDb::create().await;
        let shared =
            tests::fixtures::TwoTenants::create(Harness::new(Arc::new(db.store(2).await))).await;
        // Rows the fixture's engine calls do not make: a webhook with a delivery, and an
        // OAuth client with a grant and a consent, in each tenant (written as the owner).
        let mut owner = db.owner_connection().await;
        for tenant in [&shared.a, &shared.b] {
            let member: Uuid = sqlx::query_scalar(
                "select user_id from accounts where tenant_id = $1 order by user_id limit 1",
            )
            .bind(tenant.as_str())
            .fetch_one(&mut owner)
            .await
            .expect("a member");
            for sql in planted_rows(tenant.as_str(), &member.to_string()) {
                execute(&mut owner, &sql).await.expect(&sql);
            }
        }
        Self {
            a: shared.a,
            b: shared.b,
            b_member: shared.b_member,
            db,
        }
    }
}

/// The database error behind a result that must have failed.
fn database_error<T: std::fmt::Debug>(
    result: Result<T, sqlx::Error>,
) -> Box<dyn sqlx::error::DatabaseError> {
    match result {
        Err(sqlx::Error::Database(error)) => error,
        other => panic!("expected a database error, got {other:?}"),
    }
}

/// The constraint a statement that must have failed violated.
fn violated<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    let error = database_error(result);
    error
        .constraint()
        .unwrap_or_else(|| panic!("no constraint named in {error:?}"))
        .to_owned()
}

/// The SQLSTATE of a statement that must have failed.
fn sqlstate<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    let error = database_error(result);
    error
        .code()
        .unwrap_or_else(|| panic!("no SQLSTATE in {error:?}"))
        .into_owned()
}

async fn execute(connection: &mut PgConnection, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql)
        .execute(connection)
        .await
        .map(|done| done.rows_affected())
}

async fn count(connection: &mut PgConnection, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(connection)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// Rows of `table` whose tenant column names `tenant`.
async fn tenant_rows(
    connection: &mut PgConnection,
    table: &str,
    column: &str,
    tenant: &str,
) -> i64 {
    count(
        connection,
        &format!("select count(*) from {table} where {column} = $1"),
        tenant,
    )
    .await
}

/// Counts the rows of `table` that are not tenant `$1`'s: other tenants' and the
/// platform's. The platform's partition head is the one exception: every transaction may
/// append to the platform trail (a tenant transaction does when it creates a user), so the
/// policy shows that row to all.
fn rows_not_of_sql(table: &str, column: &str) -> String {
    if table == "partition_heads" {
        format!(
            "select count(*) from {table} where {column} is distinct from $1 \
             and {column} <> '_platform'"
        )
    } else {
        format!("select count(*) from {table} where {column} is distinct from $1")
    }
}

/// Sets a setting for the current transaction only, as the store does.
async fn set_local(connection: &mut PgConnection, name: &str, value: &str) {
    sqlx::query("select set_config($1, $2, true)")
        .bind(name)
        .bind(value)
        .execute(connection)
        .await
        .expect("setting set");
}

/// An insert of one valid row of `tenant` into each tenant-scoped table; every row but
/// those of `tenants`, `tenant_tombstones` and `partition_heads` (which exist already for
/// a live tenant) would be accepted in the tenant's own transaction.
fn tenant_row_inserts(tenant: &str, member: &UserId, root: &UserId) -> Vec<(&'static str, String)> {
    let key_id = Uuid::now_v7();
    let audit_id = Uuid::now_v7();
    let event_id = Uuid::now_v7();
    vec![
        (
            "tenants",
            format!(
                "insert into tenants (tenant_id, display_name, state, created_at, updated_at) \
                 values ('{tenant}', 'again', 'active', now(), now())"
            ),
        ),
        (
            "tenant_tombstones",
            format!("insert into tenant_tombstones (tenant_id) values ('{tenant}')"),
        ),
        (
            "tenant_scopes",
            format!(
                "insert into tenant_scopes (tenant_id, scope) values ('{tenant}', 'docs:edit')"
            ),
        ),
        (
            "role_bindings",
            format!("insert into role_bindings (tenant_id, role) values ('{tenant}', 'auditor')"),
        ),
        (
            "role_binding_scopes",
            format!(
                "insert into role_binding_scopes (tenant_id, role, scope) \
                 values ('{tenant}', 'member', 'audit:read')"
            ),
        ),
        (
            "accounts",
            format!(
                "insert into accounts (tenant_id, user_id, state, version, created_at, updated_at) \
                 values ('{tenant}', '{root}', 'active', 1, now(), now())"
            ),
        ),
        (
            "memberships",
            format!(
                "insert into memberships (tenant_id, user_id, role) \
                 values ('{tenant}', '{member}', 'extra')"
            ),
        ),
        (
            "member_profile_values",
            format!(
                "insert into member_profile_values (tenant_id, user_id, key, value) \
                 values ('{tenant}', '{member}', 'department', '\"sales\"')"
            ),
        ),
        (
            "tenant_profile_defaults",
            format!(
                "insert into tenant_profile_defaults (tenant_id, key, value) \
                 values ('{tenant}', 'title', '\"staff\"')"
            ),
        ),
        (
            "api_keys",
            format!(
                "insert into api_keys (tenant_id, key_id, name, scopes, secret_hash, created_by, \
                     created_at) \
                 values ('{tenant}', '{key_id}', 'planted', '{{tenant:read}}', 'hash-{key_id}', \
                     '{member}', now())"
            ),
        ),
        ("webhooks", webhook_insert(tenant, "planted")),
        ("webhook_deliveries", delivery_insert(tenant, "hook", 2)),
        ("oauth_clients", client_insert(tenant, &Uuid::now_v7())),
        (
            "oauth_grants",
            grant_insert(tenant, &member.to_string(), &format!("{tenant}.planted")),
        ),
        (
            "oauth_consents",
            consent_insert(tenant, &member.to_string(), &format!("{tenant}.planted")),
        ),
        (
            "scim_users",
            scim_user_insert(tenant, &member.to_string(), "planted"),
        ),
        (
            "scim_groups",
            scim_group_insert(tenant, "member", "Planted"),
        ),
        (
            "audit_records",
            format!(
                "insert into audit_records (partition, seq, tenant_id, audit_id, at, actor_type, \
                     actor_id, action, target_type, target_id, outcome, reason, request_id, \
                     prev_hash, hash) \
                 values ('{tenant}', 1000000, '{tenant}', '{audit_id}', now(), 'system', 'x', \
                     'planted', 'tenant', '{tenant}', 'allowed', 'allowed', 'req', 'p', 'h')"
            ),
        ),
        (
            "outbox_events",
            format!(
                "insert into outbox_events (partition, position, tenant_id, event_id, event_type, \
                     subject, time, data) \
                 values ('{tenant}', 1000000, '{tenant}', '{event_id}', 'planted', 'x', now(), \
                     '{{}}')"
            ),
        ),
        (
            "partition_heads",
            format!("insert into partition_heads (partition) values ('{tenant}')"),
        ),
    ]
}

/// A webhook `hook` with one delivery, an OAuth client with a grant and a consent of
/// `member`'s, `member`'s SCIM identity and a SCIM group, in `tenant`.
fn planted_rows(tenant: &str, member: &str) -> Vec<String> {
    let client = Uuid::now_v7();
    vec![
        webhook_insert(tenant, "hook"),
        delivery_insert(tenant, "hook", 1),
        client_insert(tenant, &client),
        grant_insert(tenant, member, &format!("{tenant}.{client}")),
        consent_insert(tenant, member, &format!("{tenant}.{client}")),
        scim_user_insert(tenant, member, "login"),
        format!("insert into role_bindings (tenant_id, role) values ('{tenant}', 'provisioned')"),
        scim_group_insert(tenant, "provisioned", "Provisioned"),
    ]
}

fn scim_user_insert(tenant: &str, member: &str, user_name: &str) -> String {
    format!(
        "insert into scim_users (tenant_id, user_id, user_name, user_name_key) \
         values ('{tenant}', '{member}', '{user_name}', '{user_name}')"
    )
}

fn scim_group_insert(tenant: &str, role: &str, name: &str) -> String {
    format!(
        "insert into scim_groups (tenant_id, role, display_name, display_name_key, created_at, \
             updated_at, version) \
         values ('{tenant}', '{role}', '{name}', lower('{name}'), now(), now(), 1)"
    )
}

fn webhook_insert(tenant: &str, name: &str) -> String {
    format!(
        "insert into webhooks (tenant_id, name, url, types, secret, created_at, updated_at, \
             cursor_position, next_attempt_at) \
         values ('{tenant}', '{name}', 'https://hooks.example.com/x', '[]', 'secret', now(), \
             now(), 0, now())"
    )
}

fn delivery_insert(tenant: &str, hook: &str, position: i64) -> String {
    format!(
        "insert into webhook_deliveries (tenant_id, name, position, event_id, event_type, \
             status, attempts, first_attempt_at, last_attempt_at) \
         values ('{tenant}', '{hook}', {position}, '{}', 'planted', 'delivered', 1, now(), \
             now())",
        Uuid::now_v7()
    )
}

fn client_insert(tenant: &str, client: &Uuid) -> String {
    format!(
        "insert into oauth_clients (tenant_id, client_id, name, client_type, redirect_uris, \
             post_logout_redirect_uris, scopes, created_at) \
         values ('{tenant}', '{client}', 'planted', 'public', \
             '[\"https://rp.example.com/cb\"]', '[]', '[]', now())"
    )
}

fn grant_insert(tenant: &str, member: &str, client: &str) -> String {
    format!(
        "insert into oauth_grants (tenant_id, token_hash, kind, family_id, client_id, user_id, \
             session_id, scope, acr, auth_time, created_at, expires_at) \
         values ('{tenant}', 'hash-{}', 'refresh', '{}', '{client}', '{member}', '{}', \
             'openid', 'aal1', now(), now(), now() + interval '1 hour')",
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7()
    )
}

fn consent_insert(tenant: &str, member: &str, client: &str) -> String {
    format!(
        "insert into oauth_consents (tenant_id, user_id, client_id, scope, granted_at) \
         values ('{tenant}', '{member}', '{client}', 'openid', now())"
    )
}

/// The root user's id, read as the owner (it belongs to no tenant).
async fn root_user(owner: &mut PgConnection) -> UserId {
    let root: Uuid = sqlx::query_scalar("select user_id from users where email = $1")
        .bind("root@example.com")
        .fetch_one(owner)
        .await
        .expect("root user");
    UserId::from_generated(root)
}

// ---------------------------------------------------------------------------------------
// Constraints, as a superuser (row-level security does not apply).
// ---------------------------------------------------------------------------------------

#[test]
fn rows_pointing_at_another_tenants_account_or_binding_fail_on_their_named_foreign_keys() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut owner = setup.db.owner_connection().await;
        let (a, b, user) = (setup.a.as_str(), setup.b.as_str(), setup.b_member);
        let creates_key = |tenant: &str| {
            let key_id = Uuid::now_v7();
            format!(
                "insert into api_keys (tenant_id, key_id, name, scopes, secret_hash, created_by, \
                     created_at) \
                 values ('{tenant}', '{key_id}', 'k', '{{tenant:read}}', 'hash-{key_id}', \
                     '{user}', now())"
            )
        };
        let cross_tenant = [
            (
                format!(
                    "insert into memberships (tenant_id, user_id, role) \
                     values ('{a}', '{user}', 'member')"
                ),
                "memberships_account_fkey",
            ),
            (
                format!(
                    "insert into member_profile_values (tenant_id, user_id, key, value) \
                     values ('{a}', '{user}', 'title', '\"x\"')"
                ),
                "member_profile_values_account_fkey",
            ),
            (creates_key(a), "api_keys_creator_fkey"),
            (
                format!(
                    "insert into role_binding_scopes (tenant_id, role, scope) \
                     values ('{a}', 'editor', 'tenant:read')"
                ),
                "role_binding_scopes_binding_fkey",
            ),
        ];
        for (sql, constraint) in &cross_tenant {
            assert_eq!(
                violated(execute(&mut owner, sql).await),
                *constraint,
                "{sql}"
            );
        }
        // The same rows in the tenant the account and binding belong to are accepted: the
        // refusals above are about the tenant, nothing else.
        let same_tenant = [
            format!(
                "insert into memberships (tenant_id, user_id, role) \
                 values ('{b}', '{user}', 'extra')"
            ),
            format!(
                "insert into member_profile_values (tenant_id, user_id, key, value) \
                 values ('{b}', '{user}', 'department', '\"x\"')"
            ),
            creates_key(b),
            format!(
                "insert into role_binding_scopes (tenant_id, role, scope) \
                 values ('{b}', 'editor', 'members:read')"
            ),
        ];
        for sql in &same_tenant {
            assert_eq!(execute(&mut owner, sql).await.expect(sql), 1, "{sql}");
        }
    });
}

#[test]
fn an_email_differing_only_in_case_is_a_duplicate_on_users_email_key() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut owner = setup.db.owner_connection().await;
        let insert = |address: &str| {
            format!(
                "insert into users (user_id, email, state, created_at, updated_at) \
                 values ('{}', '{address}', 'active', now(), now())",
                Uuid::now_v7()
            )
        };
        assert_eq!(
            violated(execute(&mut owner, &insert("member@tenant-b.example")).await),
            "users_email_key"
        );
        // Stored emails are lowercase (a CHECK), so a mixed-case copy fails on the format…
        assert_eq!(
            violated(execute(&mut owner, &insert("Member@Tenant-B.example")).await),
            "users_email_format"
        );
        // …and the unique key alone is case-insensitive too: without the format check the
        // mixed-case copy is still a duplicate.
        let mut tx = owner.begin().await.expect("transaction");
        execute(
            &mut tx,
            "alter table users drop constraint users_email_format",
        )
        .await
        .expect("format check dropped for this transaction");
        assert_eq!(
            violated(execute(&mut tx, &insert("Member@Tenant-B.example")).await),
            "users_email_key"
        );
        tx.rollback().await.expect("rolled back");
        assert_eq!(
            execute(&mut owner, &insert("someone-else@tenant-b.example"))
                .await
                .expect("a new email is accepted"),
            1
        );
    });
}

#[test]
fn malformed_tenant_ids_fail_on_tenants_id_format_and_used_ids_are_never_reused() {
    tests::pg::run(async {
        let db = TestDb::create().await;
        let mut owner = db.owner_connection().await;
        let insert = |tenant: &str| {
            format!(
                "insert into tenants (tenant_id, display_name, state, created_at, updated_at) \
                 values ('{tenant}', 'T', 'active', now(), now())"
            )
        };
        for malformed in [
            "Tenant-A",
            "a",
            "tenant_a",
            "tenant--a",
            "tenant-",
            "1tenant",
        ] {
            assert_eq!(
                violated(execute(&mut owner, &insert(malformed)).await),
                "tenants_id_format",
                "{malformed}"
            );
        }
        assert_eq!(
            execute(&mut owner, &insert("tenant-c"))
                .await
                .expect("a well-formed new id is accepted"),
            1
        );
        // A live tenant's id: the tombstone written on first use refuses it.
        assert_eq!(
            violated(execute(&mut owner, &insert("tenant-c")).await),
            "tenant_tombstones_pkey"
        );
        // A deleted tenant's id stays taken.
        assert_eq!(
            execute(
                &mut owner,
                "delete from tenants where tenant_id = 'tenant-c'"
            )
            .await
            .expect("tenant deleted"),
            1
        );
        assert_eq!(
            violated(execute(&mut owner, &insert("tenant-c")).await),
            "tenant_tombstones_pkey"
        );
        assert_eq!(
            count(
                &mut owner,
                "select count(*) from tenants where tenant_id = $1",
                "tenant-c"
            )
            .await,
            0
        );
    });
}

#[test]
fn audit_records_cannot_be_updated_deleted_or_truncated_even_by_a_superuser() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut owner = setup.db.owner_connection().await;
        let trail = "select count(*), md5(coalesce(string_agg(r::text, ',' \
                     order by r.partition, r.seq), '')) from audit_records r";
        let before: (i64, String) = sqlx::query_as(trail)
            .fetch_one(&mut owner)
            .await
            .expect("audit trail digest");
        assert!(before.0 > 0, "the trail has records");
        for sql in [
            "update audit_records set reason = 'rewritten'",
            "delete from audit_records",
            "truncate audit_records",
        ] {
            let error = database_error(execute(&mut owner, sql).await);
            assert_eq!(
                error.code().as_deref(),
                Some(INSUFFICIENT_PRIVILEGE),
                "{sql}"
            );
            assert_eq!(error.message(), "audit records are append-only", "{sql}");
        }
        let after: (i64, String) = sqlx::query_as(trail)
            .fetch_one(&mut owner)
            .await
            .expect("audit trail digest");
        assert_eq!(before, after);
    });
}

// ---------------------------------------------------------------------------------------
// Row-level security, as the service role.
// ---------------------------------------------------------------------------------------

#[test]
fn with_tenant_a_set_the_service_role_sees_no_row_of_tenant_b_in_any_table() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut owner = setup.db.owner_connection().await;
        let service = setup.db.store(1).await;
        let mut connection = service.pool().acquire().await.expect("service connection");
        let mut tx = connection.begin().await.expect("transaction");
        set_local(&mut tx, "app.tenant_id", setup.a.as_str()).await;
        for (table, column) in TENANT_TABLES {
            assert!(
                tenant_rows(&mut owner, table, column, setup.b.as_str()).await > 0,
                "tenant b has rows in {table}"
            );
            assert_eq!(
                tenant_rows(&mut tx, table, column, setup.b.as_str()).await,
                0,
                "{table} shows tenant b's rows to tenant a"
            );
            // Not a blind connection: tenant a's own rows are there.
            assert!(
                tenant_rows(&mut tx, table, column, setup.a.as_str()).await > 0,
                "{table} hides tenant a's own rows"
            );
            // Nor any row of the platform's or of any other tenant, whatever the filter.
            assert_eq!(
                count(&mut tx, &rows_not_of_sql(table, column), setup.a.as_str()).await,
                0,
                "{table} shows rows that are not tenant a's to tenant a"
            );
        }
        tx.rollback().await.expect("rolled back");
    });
}

#[test]
fn with_tenant_a_set_the_service_role_cannot_insert_change_or_delete_rows_of_tenant_b() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut owner = setup.db.owner_connection().await;
        // An application scope, so that enabling it is a valid insert into tenant_scopes.
        execute(
            &mut owner,
            "insert into catalog_scopes (name, description, platform_only, min_assurance) \
             values ('docs:edit', 'edit documents', false, 'aal1')",
        )
        .await
        .expect("catalog scope added");
        let root = root_user(&mut owner).await;
        let service = setup.db.store(1).await;
        let mut connection = service.pool().acquire().await.expect("service connection");
        let inserts = tenant_row_inserts(setup.b.as_str(), &setup.b_member, &root);
        assert_eq!(inserts.len(), TENANT_TABLES.len());
        for (table, sql) in &inserts {
            let mut tx = connection.begin().await.expect("transaction");
            set_local(&mut tx, "app.tenant_id", setup.a.as_str()).await;
            assert_eq!(
                sqlstate(execute(&mut tx, sql).await),
                INSUFFICIENT_PRIVILEGE,
                "tenant a inserted a row of tenant b into {table}"
            );
            tx.rollback().await.expect("rolled back");
            // In tenant b's own transaction the same statement passes row-level security:
            // it is accepted, or hits the unique key of a row tenant b already has.
            let mut tx = connection.begin().await.expect("transaction");
            set_local(&mut tx, "app.tenant_id", setup.b.as_str()).await;
            let own = execute(&mut tx, sql).await;
            if matches!(*table, "tenants" | "tenant_tombstones" | "partition_heads") {
                assert_eq!(sqlstate(own), UNIQUE_VIOLATION, "{table}");
            } else {
                assert_eq!(own.expect(sql), 1, "{table}");
            }
            tx.rollback().await.expect("rolled back");
        }

        // Append-only tables: the service role may not even try to change them.
        for table in ["audit_records", "tenant_tombstones"] {
            for sql in [
                format!(
                    "update {table} set tenant_id = tenant_id where tenant_id = '{}'",
                    setup.b
                ),
                format!("delete from {table} where tenant_id = '{}'", setup.b),
            ] {
                let mut tx = connection.begin().await.expect("transaction");
                set_local(&mut tx, "app.tenant_id", setup.a.as_str()).await;
                assert_eq!(
                    sqlstate(execute(&mut tx, &sql).await),
                    INSUFFICIENT_PRIVILEGE,
                    "{sql}"
                );
                tx.rollback().await.expect("rolled back");
            }
        }
        let changeable = || {
            TENANT_TABLES
                .into_iter()
                .filter(|(table, _)| !matches!(*table, "audit_records" | "tenant_tombstones"))
        };
        // A registered client is never changed in place: the role may not update it.
        let mut tx = connection.begin().await.expect("transaction");
        set_local(&mut tx, "app.tenant_id", setup.a.as_str()).await;
        let sql = format!(
            "update oauth_clients set tenant_id = tenant_id where tenant_id = '{}'",
            setup.b
        );
        assert_eq!(
            sqlstate(execute(&mut tx, &sql).await),
            INSUFFICIENT_PRIVILEGE,
            "{sql}"
        );
        tx.rollback().await.expect("rolled back");
        let before = b_row_counts(&mut owner, setup.b.as_str()).await;
        let mut tx = connection.begin().await.expect("transaction");
        set_local(&mut tx, "app.tenant_id", setup.a.as_str()).await;
        for (table, column) in changeable().filter(|(table, _)| *table != "oauth_clients") {
            let sql = format!(
                "update {table} set {column} = {column} where {column} = '{}'",
                setup.b
            );
            let updated = execute(&mut tx, &sql).await.expect(&sql);
            assert_eq!(updated, 0, "tenant a updated tenant b's rows in {table}");
        }
        // Referencing tables first, so that each delete could succeed if the rows were
        // visible.
        for (table, column) in changeable().rev() {
            let sql = format!("delete from {table} where {column} = '{}'", setup.b);
            let deleted = execute(&mut tx, &sql).await.expect(&sql);
            assert_eq!(deleted, 0, "tenant a deleted tenant b's rows in {table}");
        }
        tx.commit().await.expect("committed");
        assert_eq!(b_row_counts(&mut owner, setup.b.as_str()).await, before);
    });
}

async fn b_row_counts(owner: &mut PgConnection, tenant: &str) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for (table, column) in TENANT_TABLES {
        counts.push((table, tenant_rows(owner, table, column, tenant).await));
    }
    counts
}

#[test]
fn with_no_tenant_set_the_service_role_sees_no_tenant_rows_and_gets_no_error() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let service = setup.db.store(1).await;
        let mut connection = service.pool().acquire().await.expect("service connection");
        // Twice on the same connection: before any setting was ever defined on it (the
        // setting is missing), and after a tenant transaction ended (the setting is '').
        for round in ["never set", "after a tenant transaction"] {
            let mut tx = connection.begin().await.expect("transaction");
            for (table, column) in TENANT_TABLES {
                let visible = count(&mut tx, &rows_not_of_sql(table, column), "").await;
                assert_eq!(visible, 0, "{round}: {table} shows tenant rows");
            }
            tx.rollback().await.expect("rolled back");

            let mut tx = connection.begin().await.expect("transaction");
            set_local(&mut tx, "app.tenant_id", setup.a.as_str()).await;
            assert!(tenant_rows(&mut tx, "accounts", "tenant_id", setup.a.as_str()).await > 0);
            tx.commit().await.expect("committed");
        }
    });
}

#[test]
fn in_platform_mode_the_service_role_sees_both_tenants() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let service = setup.db.store(1).await;
        let mut connection = service.pool().acquire().await.expect("service connection");
        let mut tx = connection.begin().await.expect("transaction");
        set_local(&mut tx, "app.platform", "on").await;
        for (table, column) in TENANT_TABLES {
            for tenant in [&setup.a, &setup.b] {
                assert!(
                    tenant_rows(&mut tx, table, column, tenant.as_str()).await > 0,
                    "platform mode hides {tenant}'s rows in {table}"
                );
            }
        }
        tx.rollback().await.expect("rolled back");
        // Platform mode lasts one transaction only.
        let mut tx = connection.begin().await.expect("transaction");
        assert_eq!(
            tenant_rows(&mut tx, "tenants", "tenant_id", setup.b.as_str()).await,
            0
        );
        tx.rollback().await.expect("rolled back");
    });
}

// ---------------------------------------------------------------------------------------
// The catalog facts row-level security relies on.
// ---------------------------------------------------------------------------------------

#[test]
fn every_table_with_a_tenant_id_column_has_row_level_security_enabled_and_forced() {
    tests::pg::run(async {
        let db = TestDb::create().await;
        let mut owner = db.owner_connection().await;
        let tables: Vec<(String, bool, bool)> = sqlx::query_as(
            "select c.relname::text, c.relrowsecurity, c.relforcerowsecurity \
             from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = 'public' and c.relkind in ('r', 'p') \
               and exists (select 1 from pg_attribute a where a.attrelid = c.oid \
                           and a.attname = 'tenant_id' and not a.attisdropped) \
             order by c.relname",
        )
        .fetch_all(&mut owner)
        .await
        .expect("catalog query");
        let names: BTreeSet<&str> = tables.iter().map(|(name, _, _)| name.as_str()).collect();
        for (table, column) in TENANT_TABLES {
            if column == "tenant_id" {
                assert!(names.contains(table), "the catalog query misses {table}");
            }
        }
        for (table, enabled, forced) in &tables {
            assert!(
                *enabled && *forced,
                "{table}: row level security enabled {enabled}, forced {forced}"
            );
        }
        let (enabled, forced): (bool, bool) = sqlx::query_as(
            "select relrowsecurity, relforcerowsecurity from pg_class \
             where oid = 'public.partition_heads'::regclass",
        )
        .fetch_one(&mut owner)
        .await
        .expect("partition_heads");
        assert!(enabled && forced, "partition_heads");
    });
}

#[test]
fn the_service_role_is_not_superuser_has_no_bypassrls_and_owns_no_table() {
    tests::pg::run(async {
        let db = TestDb::create().await;
        let mut owner = db.owner_connection().await;
        let (superuser, bypass_rls): (bool, bool) =
            sqlx::query_as("select rolsuper, rolbypassrls from pg_roles where rolname = $1")
                .bind(adapters_pg::SERVICE_ROLE)
                .fetch_one(&mut owner)
                .await
                .expect("the service role exists");
        assert!(!superuser, "the service role is a superuser");
        assert!(!bypass_rls, "the service role has BYPASSRLS");
        let owned = count(
            &mut owner,
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = 'public' \
               and c.relowner = (select oid from pg_roles where rolname = $1)",
            adapters_pg::SERVICE_ROLE,
        )
        .await;
        assert_eq!(owned, 0, "the service role owns relations in public");
        // Nor can it become a role that could: it is a member of no other role.
        let memberships = count(
            &mut owner,
            "select count(*) from pg_auth_members \
             where member = (select oid from pg_roles where rolname = $1)",
            adapters_pg::SERVICE_ROLE,
        )
        .await;
        assert_eq!(memberships, 0, "the service role is granted other roles");

        let service = db.store(1).await;
        let current: String = sqlx::query_scalar("select current_user::text")
            .fetch_one(service.pool())
            .await
            .expect("current user");
        assert_eq!(current, adapters_pg::SERVICE_ROLE);
    });
}

#[test]
fn the_service_role_may_not_update_or_delete_audit_records_or_tombstones() {
    tests::pg::run(async {
        let db = TestDb::create().await;
        let mut owner = db.owner_connection().await;
        for table in ["audit_records", "tenant_tombstones"] {
            for privilege in ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
                let held: bool = sqlx::query_scalar("select has_table_privilege($1, $2, $3)")
                    .bind(adapters_pg::SERVICE_ROLE)
                    .bind(table)
                    .bind(privilege)
                    .fetch_one(&mut owner)
                    .await
                    .expect("privilege query");
                let expected = matches!(privilege, "SELECT" | "INSERT");
                assert_eq!(held, expected, "{privilege} on {table}");
            }
        }
        let service = db.store(1).await;
        let mut connection = service.pool().acquire().await.expect("service connection");
        for sql in [
            "update audit_records set reason = 'rewritten'",
            "delete from audit_records",
        ] {
            let mut tx = connection.begin().await.expect("transaction");
            set_local(&mut tx, "app.platform", "on").await;
            let error = database_error(execute(&mut tx, sql).await);
            assert_eq!(
                error.code().as_deref(),
                Some(INSUFFICIENT_PRIVILEGE),
                "{sql}"
            );
            assert!(
                error.message().starts_with("permission denied"),
                "{sql}: {}",
                error.message()
            );
            tx.rollback().await.expect("rolled back");
        }
    });
}

// ---------------------------------------------------------------------------------------
// Atomicity of change, audit record and event.
// ---------------------------------------------------------------------------------------

/// What one add-member transaction may change, read as the owner.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    accounts: i64,
    memberships: i64,
    tenant_audit_records: i64,
    outbox_events: i64,
    membership_added_events: i64,
    /// The tenant's head: audit seq, audit hash, event position.
    head: (i64, String, i64),
}

/// One count, with its parameters bound as text.
async fn scalar(owner: &mut PgConnection, sql: &str, binds: &[&str]) -> i64 {
    let mut query = sqlx::query_scalar(sql);
    for bind in binds {
        query = query.bind(*bind);
    }
    query
        .fetch_one(owner)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

async fn footprint(owner: &mut PgConnection, tenant: &TenantId, user: &UserId) -> Footprint {
    let (tenant, user) = (tenant.as_str(), user.to_string());
    Footprint {
        accounts: scalar(
            owner,
            "select count(*) from accounts where tenant_id = $1 and user_id = $2::uuid",
            &[tenant, &user],
        )
        .await,
        memberships: scalar(
            owner,
            "select count(*) from memberships where tenant_id = $1 and user_id = $2::uuid",
            &[tenant, &user],
        )
        .await,
        tenant_audit_records: scalar(
            owner,
            "select count(*) from audit_records where partition = $1",
            &[tenant],
        )
        .await,
        outbox_events: scalar(owner, "select count(*) from outbox_events", &[]).await,
        membership_added_events: scalar(
            owner,
            "select count(*) from outbox_events where partition = $1 and subject = $2 \
             and event_type = 'membership.added'",
            &[tenant, &user],
        )
        .await,
        head: sqlx::query_as(
            "select audit_seq, audit_hash, event_position from partition_heads \
             where partition = $1",
        )
        .bind(tenant)
        .fetch_one(owner)
        .await
        .expect("tenant head"),
    }
}

#[test]
fn a_failure_injected_after_the_change_but_before_commit_leaves_no_change_no_audit_record_and_no_event(
) {
    tests::pg::run(async {
        let db = TestDb::create().await;
        let harness = Harness::new(Arc::new(db.store(2).await));
        let mut owner = db.owner_connection().await;
        let root = harness.root().await;
        let (tenant, admin) = harness.tenant(&root, "tenant-a").await;
        let user = harness.user(&root, "newcomer@example.com").await;
        let add = AddMember {
            user: UserRef::Id(user),
            roles: BTreeSet::new(),
        };

        // The event is the last insert of the transaction. The trigger runs inside it, as
        // the service role, and says whether the account, its membership and the audit
        // record were already written when it failed the transaction.
        execute(
            &mut owner,
            "create function inject_failure() returns trigger language plpgsql as $$ \
             begin \
                 if new.event_type = 'membership.added' then \
                     if exists (select 1 from accounts a join memberships m \
                                    on m.tenant_id = a.tenant_id and m.user_id = a.user_id \
                                where a.tenant_id = new.tenant_id \
                                  and a.user_id = new.subject::uuid) \
                        and exists (select 1 from audit_records r \
                                    where r.partition = new.partition \
                                      and r.action = 'member.add' \
                                      and r.target_id = new.subject) then \
                         raise exception 'injected failure after the change'; \
                     end if; \
                     raise exception 'injected failure before the change'; \
                 end if; \
                 return new; \
             end $$",
        )
        .await
        .expect("failure function");
        execute(
            &mut owner,
            "create trigger inject_failure before insert on outbox_events \
             for each row execute function inject_failure()",
        )
        .await
        .expect("failure trigger");

        let before = footprint(&mut owner, &tenant, &user).await;
        assert_eq!((before.accounts, before.memberships), (0, 0));
        let failed = harness
            .engine
            .add_member(&admin, &tenant, add.clone())
            .await;
        assert!(
            matches!(
                &failed,
                Err(domain::Error::Store(StoreError::Unavailable(message)))
                    if message.contains("injected failure after the change")
            ),
            "expected the injected store error, got {failed:?}"
        );
        assert_eq!(footprint(&mut owner, &tenant, &user).await, before);

        execute(&mut owner, "drop trigger inject_failure on outbox_events")
            .await
            .expect("trigger dropped");
        let added = harness
            .engine
            .add_member(&admin, &tenant, add)
            .await
            .expect("member added once the failure is gone");
        assert_eq!(added.member.user_id, user);
        let after = footprint(&mut owner, &tenant, &user).await;
        assert_eq!(
            after,
            Footprint {
                accounts: 1,
                memberships: 1,
                tenant_audit_records: before.tenant_audit_records + 1,
                outbox_events: before.outbox_events + 1,
                membership_added_events: 1,
                // The failed attempt used no audit seq and no feed position.
                head: (before.head.0 + 1, after.head.1.clone(), before.head.2 + 1),
            }
        );
        assert_ne!(after.head.1, before.head.1, "the chain head moved");
    });
}

#[test]
fn reserved_platform_role_names_are_refused_as_tenant_roles_by_the_schema() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut owner = setup.db.owner_connection().await;
        let (b, user) = (setup.b.as_str(), setup.b_member);
        for role in ["platform_root", "platformer"] {
            assert_eq!(
                violated(
                    execute(
                        &mut owner,
                        &format!(
                            "insert into memberships (tenant_id, user_id, role) \
                             values ('{b}', '{user}', '{role}')"
                        )
                    )
                    .await
                ),
                "memberships_role_not_reserved"
            );
            assert_eq!(
                violated(
                    execute(
                        &mut owner,
                        &format!(
                            "insert into role_bindings (tenant_id, role) values ('{b}', '{role}')"
                        )
                    )
                    .await
                ),
                "role_bindings_role_not_reserved"
            );
        }
    });
}

#[test]
fn the_authorize_probe_shows_the_service_role_positions_only_never_another_tenants_hashes() {
    tests::pg::run(async {
        let db = TestDb::create().await;
        let harness = Harness::new(Arc::new(db.store(2).await));
        let root = harness.root().await;
        harness.tenant(&root, "tenant-a").await;
        harness.tenant(&root, "tenant-b").await;
        let mut connection = db.owner_connection().await;
        let mut tx = connection.begin().await.expect("tx");
        sqlx::query("set local role user_engine_app")
            .execute(&mut *tx)
            .await
            .expect("role");
        set_local(&mut tx, "app.tenant_id", "tenant-a").await;
        // The view the probe reads has positions and nothing else.
        let columns: Vec<String> = sqlx::query_scalar(
            "select column_name::text from information_schema.columns \
             where table_name = 'partition_versions' order by ordinal_position",
        )
        .fetch_all(&mut *tx)
        .await
        .expect("columns");
        assert_eq!(columns, ["partition", "audit_seq", "event_position"]);
        let seen: i64 = sqlx::query_scalar(
            "select count(*) from partition_versions where partition = 'tenant-b'",
        )
        .fetch_one(&mut *tx)
        .await
        .expect("positions");
        assert_eq!(seen, 1, "the probe reads every partition's position");
        // The table itself still shows tenant A nothing of tenant B's head, hash included.
        let hashes: i64 = sqlx::query_scalar(
            "select count(audit_hash) from partition_heads where partition = 'tenant-b'",
        )
        .fetch_one(&mut *tx)
        .await
        .expect("heads");
        assert_eq!(hashes, 0);
        // Nor can the view be written through.
        let write = sqlx::query(
            "update partition_versions set audit_seq = audit_seq + 1 where partition = 'tenant-b'",
        )
        .execute(&mut *tx)
        .await;
        assert!(write.is_err(), "the view is read-only: {write:?}");
    });
}
