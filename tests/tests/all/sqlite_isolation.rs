//! Tenant isolation and integrity enforced by the SQLite schema and adapter: composite
//! foreign keys that refuse rows pointing into another tenant, named CHECKs, the
//! append-only and chain triggers on the audit trail, the adapter confining a tenant
//! transaction to its tenant (SQLite has no row-level security), change + audit + event
//! committed or rolled back together, and the last-admin invariant and gapless feeds
//! under concurrent writers.
//!
//! Raw SQL runs on a plain connection to the test's file, outside the adapter, so the
//! constraint tests prove the schema alone.

use std::collections::BTreeSet;
use std::sync::Arc;

use adapters_sqlite::codes;
use domain::audit::{Actor, ActorType, AuditDraft, AuditTarget, Outcome, Partition};
use domain::authz::SubjectFacts;
use domain::ids::{AuditId, KeyId, ProfileKey, ProfileValue, TenantId, UserId};
use domain::model::{AccountState, Member, RoleBinding};
use domain::ports::{AuditFilter, FactsQuery, StoreError, StoreTx, SubjectRef, TxScope};
use domain::usecases::{AddMember, UserRef};
use serde_json::json;
use sqlx::SqliteConnection;
use tests::harness::{role_name, scope, Harness};
use tests::sqlite::TestFile;
use uuid::Uuid;

/// [`tests::fixtures::TwoTenants`] in a file of its own.
struct TwoTenants {
    a: TenantId,
    b: TenantId,
    /// A member of tenant B only.
    b_member: UserId,
    harness: Harness,
    file: Arc<TestFile>,
}

impl TwoTenants {
    async fn create() -> Self {
        let file = Arc::new(TestFile::new());
        let mut harness = Harness::new(Arc::new(file.store().await));
        harness.keep_alive = Some(file.clone());
        let shared = tests::fixtures::TwoTenants::create(harness).await;
        Self {
            a: shared.a,
            b: shared.b,
            b_member: shared.b_member,
            harness: shared.harness,
            file,
        }
    }
}

fn profile_key(key: &str) -> ProfileKey {
    ProfileKey::parse(key).expect("profile key")
}

fn text(value: &str) -> ProfileValue {
    ProfileValue::parse(&json!(value)).expect("profile value")
}

async fn execute(connection: &mut SqliteConnection, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql)
        .execute(connection)
        .await
        .map(|done| done.rows_affected())
}

async fn count(connection: &mut SqliteConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(connection)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// The extended result code of a statement that must have failed.
fn failure_code<T: std::fmt::Debug>(result: &Result<T, sqlx::Error>) -> i64 {
    match result {
        Err(error) => adapters_sqlite::result_code(error)
            .unwrap_or_else(|| panic!("no result code in {error:?}")),
        Ok(value) => panic!("expected a failure, got {value:?}"),
    }
}

/// The schema's name of the constraint a statement that must have failed violated.
fn violated<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    match result {
        Err(error) => adapters_sqlite::constraint(&error)
            .unwrap_or_else(|| panic!("no constraint named in {error:?}"))
            .to_owned(),
        Ok(value) => panic!("expected a constraint violation, got {value:?}"),
    }
}

/// The message of a statement that must have failed.
fn message<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    match result {
        Err(sqlx::Error::Database(error)) => error.message().to_owned(),
        other => panic!("expected a database error, got {other:?}"),
    }
}

/// Whether the store refused an access outside the transaction's tenant.
fn refused<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(&result, Err(StoreError::Unavailable(message)) if message.contains("tenant scope"))
}

// ---------------------------------------------------------------------------------------
// The schema, on a plain connection.
// ---------------------------------------------------------------------------------------

#[test]
fn rows_pointing_at_another_tenants_account_binding_or_key_fail_on_composite_foreign_keys() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut connection = setup.file.connection().await;
        let (a, b, user) = (setup.a.as_str(), setup.b.as_str(), setup.b_member);
        let b_key: String =
            sqlx::query_scalar("select key_id from api_keys where tenant_id = 'tenant-b'")
                .fetch_one(&mut connection)
                .await
                .expect("tenant b's key");
        let creates_key = |tenant: &str| {
            let key_id = Uuid::now_v7();
            format!(
                "insert into api_keys (tenant_id, key_id, name, secret_hash, created_by, \
                     created_at) \
                 values ('{tenant}', '{key_id}', 'k', 'hash-{key_id}', '{user}', 0)"
            )
        };
        let cross_tenant = [
            format!(
                "insert into memberships (tenant_id, user_id, role) \
                 values ('{a}', '{user}', 'member')"
            ),
            format!(
                "insert into member_profile_values (tenant_id, user_id, key, value) \
                 values ('{a}', '{user}', 'title', '\"x\"')"
            ),
            creates_key(a),
            format!(
                "insert into role_binding_scopes (tenant_id, role, scope) \
                 values ('{a}', 'editor', 'tenant:read')"
            ),
            format!(
                "insert into api_key_scopes (tenant_id, key_id, scope) \
                 values ('{a}', '{b_key}', 'members:read')"
            ),
        ];
        for sql in &cross_tenant {
            let result = execute(&mut connection, sql).await;
            assert_eq!(
                failure_code(&result),
                codes::CONSTRAINT_FOREIGNKEY,
                "{sql}: {result:?}"
            );
            assert_eq!(violated(result), "foreign_key", "{sql}");
        }
        // The same rows in the tenant the account, binding and key belong to are
        // accepted: the refusals above are about the tenant, nothing else.
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
            format!(
                "insert into api_key_scopes (tenant_id, key_id, scope) \
                 values ('{b}', '{b_key}', 'members:read')"
            ),
        ];
        for sql in &same_tenant {
            assert_eq!(execute(&mut connection, sql).await.expect(sql), 1, "{sql}");
        }
    });
}

#[test]
fn every_tenant_scoped_table_is_keyed_by_tenant_first_and_refers_to_accounts_with_both_columns() {
    tests::pg::run(async {
        let file = TestFile::new();
        let _store = file.store().await;
        let mut connection = file.connection().await;
        let tables: Vec<String> = sqlx::query_scalar(
            "select m.name from sqlite_master m where m.type = 'table' \
             and exists (select 1 from pragma_table_info(m.name) c where c.name = 'tenant_id') \
             order by m.name",
        )
        .fetch_all(&mut connection)
        .await
        .expect("tables");
        assert_eq!(
            tables,
            [
                "accounts",
                "api_key_scopes",
                "api_keys",
                "audit_records",
                "member_profile_values",
                "memberships",
                "oauth_clients",
                "oauth_consents",
                "oauth_grants",
                "outbox_events",
                "role_binding_scopes",
                "role_bindings",
                "scim_groups",
                "scim_users",
                "tenant_profile_defaults",
                "tenant_scopes",
                "tenant_tombstones",
                "tenants",
                "webhook_deliveries",
                "webhooks",
            ]
        );
        for table in &tables {
            let first_key: String =
                sqlx::query_scalar("select name from pragma_table_info(?1) where pk = 1")
                    .bind(table)
                    .fetch_one(&mut connection)
                    .await
                    .expect("primary key");
            // Trails and feeds are keyed by partition: the tenant id, or `_platform`
            // (checked by their *_partition_matches constraints).
            let expected = if matches!(table.as_str(), "audit_records" | "outbox_events") {
                "partition"
            } else {
                "tenant_id"
            };
            assert_eq!(first_key, expected, "{table}");
            // A reference to an account or a binding names the tenant too.
            let references: Vec<(i64, String, String)> = sqlx::query_as(
                "select id, \"table\", group_concat(\"from\", ',') from pragma_foreign_key_list(?1) \
                 group by id, \"table\"",
            )
            .bind(table)
            .fetch_all(&mut connection)
            .await
            .expect("foreign keys");
            for (_, parent, columns) in references {
                if matches!(parent.as_str(), "accounts" | "role_bindings" | "api_keys") {
                    assert!(
                        columns.split(',').next() == Some("tenant_id"),
                        "{table} refers to {parent} by {columns}"
                    );
                }
            }
        }
    });
}

#[test]
fn an_email_differing_only_in_case_is_a_duplicate_on_users_email_key() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut connection = setup.file.connection().await;
        let insert = |address: &str| {
            format!(
                "insert into users (user_id, email, state, created_at, updated_at) \
                 values ('{}', '{address}', 'active', 0, 0)",
                Uuid::now_v7()
            )
        };
        assert_eq!(
            violated(execute(&mut connection, &insert("member@tenant-b.example")).await),
            "users_email_key"
        );
        // Stored emails are lowercase (a CHECK), so a mixed-case copy fails on the format.
        assert_eq!(
            violated(execute(&mut connection, &insert("Member@Tenant-B.example")).await),
            "users_email_format"
        );
        for malformed in ["no-at-sign", "two@at@signs", "@nobody", "nobody@"] {
            assert_eq!(
                violated(execute(&mut connection, &insert(malformed)).await),
                "users_email_format",
                "{malformed}"
            );
        }
        assert_eq!(
            execute(&mut connection, &insert("someone-else@tenant-b.example"))
                .await
                .expect("a new email is accepted"),
            1
        );
    });
}

#[test]
fn malformed_tenant_ids_fail_on_tenants_id_format_and_used_ids_are_never_reused() {
    tests::pg::run(async {
        let file = TestFile::new();
        let _store = file.store().await;
        let mut connection = file.connection().await;
        let insert = |tenant: &str| {
            format!(
                "insert into tenants (tenant_id, display_name, state, created_at, updated_at) \
                 values ('{tenant}', 'T', 'active', 0, 0)"
            )
        };
        for malformed in [
            "Tenant-A",
            "a",
            "tenant_a",
            "tenant--a",
            "tenant-",
            "1tenant",
            "ten ant",
            "tenant-é",
        ] {
            assert_eq!(
                violated(execute(&mut connection, &insert(malformed)).await),
                "tenants_id_format",
                "{malformed}"
            );
        }
        assert_eq!(
            count(&mut connection, "select count(*) from tenant_tombstones").await,
            0,
            "a refused insert leaves no tombstone"
        );
        assert_eq!(
            execute(&mut connection, &insert("tenant-c"))
                .await
                .expect("a well-formed new id is accepted"),
            1
        );
        // A live tenant's id: the tombstone written on first use refuses it.
        assert_eq!(
            violated(execute(&mut connection, &insert("tenant-c")).await),
            "tenant_tombstones_pkey"
        );
        // A deleted tenant's id stays taken.
        assert_eq!(
            execute(
                &mut connection,
                "delete from tenants where tenant_id = 'tenant-c'"
            )
            .await
            .expect("tenant deleted"),
            1
        );
        assert_eq!(
            violated(execute(&mut connection, &insert("tenant-c")).await),
            "tenant_tombstones_pkey"
        );
    });
}

#[test]
fn checks_refuse_malformed_rows_and_say_which_constraint() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut connection = setup.file.connection().await;
        let (b, user) = (setup.b.as_str(), setup.b_member);
        let scope = |name: &str| {
            format!(
                "insert into catalog_scopes (name, description, platform_only, min_assurance) \
                 values ('{name}', 'd', 0, 'aal1')"
            )
        };
        for malformed in [
            "docs",
            "Docs:edit",
            "docs:",
            ":edit",
            "docs::edit",
            "docs:1edit",
            "a:b:c:d:e",
            "docs:ed-it",
        ] {
            assert_eq!(
                violated(execute(&mut connection, &scope(malformed)).await),
                "catalog_scopes_name_format",
                "{malformed}"
            );
        }
        for valid in ["docs:edit", "docs:page:edit", "a:b:c:d", "x1_y:z_2"] {
            assert_eq!(
                execute(&mut connection, &scope(valid)).await.expect(valid),
                1,
                "{valid}"
            );
        }
        let refused = [
            (
                format!(
                    "insert into member_profile_values (tenant_id, user_id, key, value) \
                     values ('{b}', '{user}', 'department', '{{\"nested\":1}}')"
                ),
                "member_profile_values_value_valid",
            ),
            (
                format!(
                    "insert into tenant_profile_defaults (tenant_id, key, value) \
                     values ('{b}', 'title', 'not json')"
                ),
                "tenant_profile_defaults_value_valid",
            ),
            (
                format!(
                    "insert into role_bindings (tenant_id, role) values ('{b}', 'tenant_admin')"
                ),
                "role_bindings_not_tenant_admin",
            ),
            (
                format!("insert into role_bindings (tenant_id, role) values ('{b}', 'Editor')"),
                "role_bindings_role_format",
            ),
            (
                format!(
                    "update accounts set state = 'deleted' where tenant_id = '{b}' \
                     and user_id = '{user}'"
                ),
                "accounts_state_valid",
            ),
            (
                format!("update tenants set state = 'gone' where tenant_id = '{b}'"),
                "tenants_state_valid",
            ),
            (
                format!("insert into user_platform_roles (user_id, role) values ('{user}', 'god')"),
                "user_platform_roles_role_valid",
            ),
        ];
        for (sql, constraint) in &refused {
            assert_eq!(
                violated(execute(&mut connection, sql).await),
                *constraint,
                "{sql}"
            );
        }
        // Strict tables: a column holds its declared type only.
        assert_eq!(
            failure_code(
                &execute(
                    &mut connection,
                    &format!("update tenants set created_at = 'yesterday' where tenant_id = '{b}'")
                )
                .await
            ),
            codes::CONSTRAINT_DATATYPE
        );
    });
}

#[test]
fn audit_records_cannot_be_updated_or_deleted_and_must_extend_their_chain() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut connection = setup.file.connection().await;
        let digest = "select count(*) || ':' || coalesce(group_concat(hash, ','), '') \
                      from (select hash from audit_records order by partition, seq)";
        let before: String = sqlx::query_scalar(digest)
            .fetch_one(&mut connection)
            .await
            .expect("audit digest");
        for sql in [
            "update audit_records set reason = 'rewritten'",
            "update audit_records set hash = hash where seq = 1",
            "delete from audit_records where seq = 1",
            "delete from audit_records",
        ] {
            let result = execute(&mut connection, sql).await;
            assert_eq!(failure_code(&result), codes::CONSTRAINT_TRIGGER, "{sql}");
            assert_eq!(message(result), "audit records are append-only", "{sql}");
        }
        let after: String = sqlx::query_scalar(digest)
            .fetch_one(&mut connection)
            .await
            .expect("audit digest");
        assert_eq!(before, after);

        // A record planted anywhere but at the end of its chain is refused.
        let (seq, hash): (i64, String) = sqlx::query_as(
            "select seq, hash from audit_records where partition = 'tenant-b' \
             order by seq desc limit 1",
        )
        .fetch_one(&mut connection)
        .await
        .expect("last record");
        let plant = |seq: i64, prev_hash: &str| {
            format!(
                "insert into audit_records (partition, seq, tenant_id, audit_id, at, actor_type, \
                     actor_id, action, target_type, target_id, outcome, reason, request_id, \
                     prev_hash, hash) \
                 values ('tenant-b', {seq}, 'tenant-b', '{}', 0, 'system', 'x', 'planted', \
                     'tenant', 'tenant-b', 'allowed', 'allowed', 'req', '{prev_hash}', 'h')",
                Uuid::now_v7()
            )
        };
        for sql in [
            plant(seq + 2, &hash),
            plant(seq + 1, "forged"),
            plant(seq, &hash),
        ] {
            assert_eq!(
                message(execute(&mut connection, &sql).await),
                "audit records must extend their chain",
                "{sql}"
            );
        }
        let position: i64 = count(
            &mut connection,
            "select max(position) from outbox_events where partition = 'tenant-b'",
        )
        .await;
        assert_eq!(
            message(
                execute(
                    &mut connection,
                    &format!(
                        "insert into outbox_events (partition, position, tenant_id, event_id, \
                             event_type, subject, time, data) \
                         values ('tenant-b', {}, 'tenant-b', '{}', 'planted', 'x', 0, '{{}}')",
                        position + 2,
                        Uuid::now_v7()
                    )
                )
                .await
            ),
            "events must take the next position of their feed"
        );
        // The trail still verifies.
        assert!(matches!(
            setup
                .harness
                .engine
                .verify_trail(&Partition::Tenant(setup.b.clone()))
                .await,
            Ok(Ok(_))
        ));
    });
}

// ---------------------------------------------------------------------------------------
// The adapter's tenant scope: what row-level security does in PostgreSQL.
// ---------------------------------------------------------------------------------------

/// Row counts of tenant B in every tenant-scoped table, read outside the adapter.
async fn b_rows(connection: &mut SqliteConnection) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for table in [
        "tenants",
        "tenant_scopes",
        "role_bindings",
        "role_binding_scopes",
        "accounts",
        "memberships",
        "member_profile_values",
        "tenant_profile_defaults",
        "api_keys",
        "api_key_scopes",
        "audit_records",
        "outbox_events",
    ] {
        counts.push((
            table.to_owned(),
            count(
                connection,
                &format!("select count(*) from {table} where tenant_id = 'tenant-b'"),
            )
            .await,
        ));
    }
    counts
}

#[test]
fn a_tenant_transaction_can_neither_read_nor_write_another_tenants_rows() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut connection = setup.file.connection().await;
        let (a, b, user) = (&setup.a, &setup.b, setup.b_member);
        let (b_key, b_hash): (String, String) =
            sqlx::query_as("select key_id, secret_hash from api_keys where tenant_id = 'tenant-b'")
                .fetch_one(&mut connection)
                .await
                .expect("tenant b's key");
        let b_key = KeyId::parse(&b_key).expect("key id");
        let before = b_rows(&mut connection).await;
        assert!(before.iter().all(|(_, rows)| *rows > 0), "{before:?}");

        let mut tx: Box<dyn StoreTx> = setup
            .harness
            .store
            .begin(TxScope::Tenant(a.clone()))
            .await
            .expect("tenant a transaction");
        // Lookups that name tenant B find nothing, or are refused outright.
        assert_eq!(tx.get_tenant(b).await, Ok(None));
        assert_eq!(tx.find_api_key_by_hash(&b_hash).await, Ok(None));
        assert!(refused(tx.get_member(b, &user).await));
        assert!(refused(tx.list_members(b, None, 10).await));
        assert!(refused(tx.count_active_admins(b).await));
        assert!(refused(tx.enabled_scopes(b).await));
        assert!(refused(tx.list_bindings(b).await));
        assert!(refused(tx.member_values(b, &user).await));
        assert!(refused(tx.tenant_defaults(b).await));
        assert!(refused(tx.list_api_keys(b).await));
        assert!(refused(tx.get_api_key(b, &b_key).await));
        assert!(refused(tx.outbox_backlog(b).await));
        assert!(refused(
            tx.list_audit(
                &Partition::Tenant(b.clone()),
                &AuditFilter::default(),
                0,
                10
            )
            .await
        ));
        assert!(refused(
            tx.list_events(&Partition::Tenant(b.clone()), 0, 10).await
        ));
        assert!(refused(tx.list_tenants(None, 10).await));
        assert!(refused(tx.memberships_of(&user).await));
        assert!(refused(
            tx.authz_facts(&FactsQuery {
                tenant: Some(b.clone()),
                subject: SubjectRef::User(user),
                scope: scope("tenant:read"),
                target: None,
            })
            .await
        ));
        // B's key is no subject in tenant A's transaction.
        let facts = tx
            .authz_facts(&FactsQuery {
                tenant: Some(a.clone()),
                subject: SubjectRef::ApiKey(b_key),
                scope: scope("tenant:read"),
                target: None,
            })
            .await
            .expect("facts in tenant a");
        assert!(
            !matches!(facts.subject, Some(SubjectFacts::ApiKey { .. })),
            "{facts:?}"
        );

        // Writes into tenant B are refused before they reach the database.
        let now = setup.harness.clock_now();
        assert!(refused(
            tx.lock_partition(&Partition::Tenant(b.clone())).await
        ));
        assert!(refused(
            tx.put_binding(
                b,
                &RoleBinding {
                    role: role_name("editor"),
                    scopes: BTreeSet::new(),
                },
            )
            .await
        ));
        assert!(refused(tx.delete_binding(b, &role_name("editor")).await));
        assert!(refused(tx.delete_member(b, &user).await));
        assert!(refused(
            tx.update_member(&Member {
                tenant: b.clone(),
                user_id: user,
                email: tests::harness::email("member@tenant-b.example"),
                roles: BTreeSet::new(),
                state: AccountState::Suspended,
                created_at: now,
                updated_at: now,
                version: 99,
            })
            .await
        ));
        assert!(refused(
            tx.put_tenant_default(b, &profile_key("title"), &text("x"))
                .await
        ));
        assert!(refused(
            tx.delete_member_value(b, &user, &profile_key("title"))
                .await
        ));
        assert!(refused(tx.revoke_api_key(b, &b_key, now).await));
        assert!(refused(tx.set_enabled_scopes(b, &BTreeSet::new()).await));
        assert!(refused(
            tx.append_audit(AuditDraft {
                id: AuditId::from_generated(Uuid::now_v7()),
                partition: Partition::Tenant(b.clone()),
                at: now,
                actor: Actor {
                    kind: ActorType::System,
                    id: "x".to_owned(),
                },
                action: "planted",
                target: AuditTarget {
                    kind: "tenant",
                    id: b.to_string(),
                },
                outcome: Outcome::Allowed,
                reason: "allowed".to_owned(),
                request_id: "req".to_owned(),
            })
            .await
        ));
        tx.commit().await.expect("tenant a's transaction commits");
        assert_eq!(b_rows(&mut connection).await, before);

        // Tenant B's own transaction sees its rows: the refusals are about the tenant.
        let mut tx: Box<dyn StoreTx> = setup
            .harness
            .store
            .begin(TxScope::Tenant(b.clone()))
            .await
            .expect("tenant b transaction");
        assert!(tx.get_member(b, &user).await.expect("member").is_some());
        assert!(tx
            .find_api_key_by_hash(&b_hash)
            .await
            .expect("key")
            .is_some());
    });
}

// ---------------------------------------------------------------------------------------
// Atomicity.
// ---------------------------------------------------------------------------------------

/// What one member add leaves behind, read outside the adapter.
async fn footprint(
    connection: &mut SqliteConnection,
    tenant: &TenantId,
    user: &UserId,
) -> Vec<i64> {
    let (tenant, user) = (tenant.as_str(), user.to_string());
    let mut counts = Vec::new();
    for sql in [
        format!(
            "select count(*) from accounts where tenant_id = '{tenant}' and user_id = '{user}'"
        ),
        format!(
            "select count(*) from memberships where tenant_id = '{tenant}' and user_id = '{user}'"
        ),
        format!("select count(*) from audit_records where partition = '{tenant}'"),
        format!("select coalesce(max(seq), 0) from audit_records where partition = '{tenant}'"),
        "select count(*) from outbox_events".to_owned(),
        format!(
            "select coalesce(max(position), 0) from outbox_events where partition = '{tenant}'"
        ),
    ] {
        counts.push(count(connection, &sql).await);
    }
    counts
}

#[test]
fn a_failure_injected_after_the_change_but_before_commit_leaves_no_change_no_audit_record_and_no_event(
) {
    tests::pg::run(async {
        let file = TestFile::new();
        let harness = Harness::new(Arc::new(file.store().await));
        let mut connection = file.connection().await;
        let root = harness.root().await;
        let (tenant, admin) = harness.tenant(&root, "tenant-a").await;
        let user = harness.user(&root, "newcomer@example.com").await;
        let add = AddMember {
            user: UserRef::Id(user),
            roles: BTreeSet::new(),
        };
        // The event is the last insert of the transaction. The triggers run inside it and
        // say whether the account, its membership and the audit record were already
        // written when they failed the transaction.
        let written = "exists (select 1 from accounts a join memberships m \
                           on m.tenant_id = a.tenant_id and m.user_id = a.user_id \
                       where a.tenant_id = new.tenant_id and a.user_id = new.subject) \
                       and exists (select 1 from audit_records r \
                       where r.partition = new.partition and r.action = 'member.add' \
                       and r.target_id = new.subject)";
        for (trigger, condition, when) in [
            ("inject_failure_after", written.to_owned(), "after"),
            (
                "inject_failure_before",
                format!("not ({written})"),
                "before",
            ),
        ] {
            execute(
                &mut connection,
                &format!(
                    "create trigger {trigger} before insert on outbox_events \
                     when new.event_type = 'membership.added' and {condition} \
                     begin select raise(abort, 'injected failure {when} the change'); end"
                ),
            )
            .await
            .expect("failure trigger");
        }

        let before = footprint(&mut connection, &tenant, &user).await;
        assert_eq!((before[0], before[1]), (0, 0));
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
        assert_eq!(footprint(&mut connection, &tenant, &user).await, before);

        for trigger in ["inject_failure_after", "inject_failure_before"] {
            execute(&mut connection, &format!("drop trigger {trigger}"))
                .await
                .expect("trigger dropped");
        }
        let added = harness
            .engine
            .add_member(&admin, &tenant, add)
            .await
            .expect("member added once the failure is gone");
        assert_eq!(added.member.user_id, user);
        let after = footprint(&mut connection, &tenant, &user).await;
        assert_eq!(
            after,
            vec![
                1,
                1,
                before[2] + 1,
                // The failed attempt used no audit seq and no feed position.
                before[3] + 1,
                before[4] + 1,
                before[5] + 1,
            ]
        );
    });
}

// ---------------------------------------------------------------------------------------
// Concurrency: the same races as on PostgreSQL.
// ---------------------------------------------------------------------------------------

#[test]
fn eight_concurrent_writers_in_one_tenant_leave_a_verified_trail_and_a_gapless_feed_on_sqlite() {
    tests::pg::run(async {
        let file = Arc::new(TestFile::new());
        let mut h = Harness::new(Arc::new(file.store().await));
        h.keep_alive = Some(file.clone());
        let adds = tests::races::concurrent_writers(&h).await;
        // The tenant transactions also appended user.created to the platform feed: no
        // gaps there either, and the platform chain holds.
        let mut connection = file.connection().await;
        let positions: Vec<i64> = sqlx::query_scalar(
            "select position from outbox_events where partition = '_platform' order by position",
        )
        .fetch_all(&mut connection)
        .await
        .expect("platform feed");
        let expected: Vec<i64> = (1..=positions.len() as i64).collect();
        assert_eq!(positions, expected);
        let invited = count(
            &mut connection,
            "select count(*) from outbox_events where partition = '_platform' \
             and event_type = 'user.created' \
             and json_extract(data, '$.email') like 'w%@busy.example'",
        )
        .await;
        assert_eq!(invited as usize, adds, "one user.created per new email");
        assert!(matches!(
            h.engine.verify_trail(&Partition::Platform).await,
            Ok(Ok(_))
        ));
    });
}

#[test]
fn reserved_platform_role_names_are_refused_as_tenant_roles_by_the_schema() {
    tests::pg::run(async {
        let setup = TwoTenants::create().await;
        let mut connection = setup.file.connection().await;
        let (b, user) = (setup.b.as_str(), setup.b_member);
        for role in ["platform_root", "platformer"] {
            let membership = message(
                execute(
                    &mut connection,
                    &format!(
                        "insert into memberships (tenant_id, user_id, role) \
                         values ('{b}', '{user}', '{role}')"
                    ),
                )
                .await,
            );
            assert!(
                membership.contains("memberships_role_not_reserved"),
                "{membership}"
            );
            let binding = message(
                execute(
                    &mut connection,
                    &format!(
                        "insert into role_bindings (tenant_id, role) values ('{b}', '{role}')"
                    ),
                )
                .await,
            );
            assert!(
                binding.contains("role_bindings_role_not_reserved"),
                "{binding}"
            );
        }
    });
}
