//! Tamper tests on PostgreSQL: an audit row updated, deleted or moved behind the engine's
//! back (as the owner, with the append-only trigger switched off for the deed) is caught
//! by chain verification, which names the record, and `user-engine audit verify`'s
//! report says BROKEN for that trail while other tenants' trails stay intact. Also here:
//! platform readers reading any tenant's trail (`GET /v1/audit?tenant=`), which on
//! PostgreSQL crosses row-level security from a platform-scope transaction.

use std::sync::Arc;

use domain::audit::{ChainBreak, ChainBreakKind, Partition};
use domain::error::Error;
use domain::ids::{Assurance, TenantId};
use domain::ports::AuditFilter;
use domain::usecases::Caller;
use sqlx::{Connection, PgConnection};
use tests::harness::{tenant_id, Harness};
use tests::pg::TestDb;
use uuid::Uuid;

/// A tenant whose trail holds at least six records, on a database of its own.
struct Trail {
    harness: Harness,
    root: Caller,
    admin: Caller,
    tenant: TenantId,
    /// An untouched tenant, to show tampering with one trail leaves others intact.
    other: TenantId,
    db: TestDb,
    records: u64,
}

impl Trail {
    async fn create() -> Self {
        let db = TestDb::create().await;
        let harness = Harness::new(Arc::new(db.store(2).await));
        let root = harness.root().await;
        let (tenant, admin) = harness.tenant(&root, "acme").await;
        for n in 0..5 {
            harness
                .member(
                    &root,
                    &admin,
                    &tenant,
                    &format!("m{n}@acme.example"),
                    &["member"],
                )
                .await;
        }
        let (other, other_admin) = harness.tenant(&root, "globex").await;
        harness
            .member(&root, &other_admin, &other, "m@globex.example", &["member"])
            .await;
        let records = harness
            .engine
            .verify_trail(&Partition::Tenant(tenant.clone()))
            .await
            .expect("the trail is readable")
            .expect("an untouched trail is intact");
        assert!(
            records >= 6,
            "the trail holds {records} records, want at least 6"
        );
        Self {
            harness,
            root,
            admin,
            tenant,
            other,
            db,
            records,
        }
    }

    async fn verify(&self) -> Result<u64, ChainBreak> {
        self.harness
            .engine
            .verify_trail(&Partition::Tenant(self.tenant.clone()))
            .await
            .expect("the trail is readable")
    }

    /// The audit id stored at `seq` in the tenant's trail.
    async fn audit_id_at(&self, seq: i64) -> Uuid {
        let mut owner = self.db.owner_connection().await;
        sqlx::query_scalar("select audit_id from audit_records where partition = $1 and seq = $2")
            .bind(self.tenant.as_str())
            .bind(seq)
            .fetch_one(&mut owner)
            .await
            .expect("a record at that seq")
    }

    /// Runs `statements` as the owner with the append-only trigger off, all in one
    /// transaction: the trigger is back on at commit, and no other session ever sees
    /// the table without it.
    async fn tamper(&self, statements: &[&str]) {
        let mut owner: PgConnection = self.db.owner_connection().await;
        let mut tx = owner.begin().await.expect("owner transaction");
        sqlx::query("alter table audit_records disable trigger audit_records_append_only")
            .execute(&mut *tx)
            .await
            .expect("trigger disabled");
        for statement in statements {
            let affected = sqlx::query(statement)
                .bind(self.tenant.as_str())
                .execute(&mut *tx)
                .await
                .expect("tampering statement runs")
                .rows_affected();
            assert_eq!(affected, 1, "{statement} touched {affected} rows");
        }
        sqlx::query("alter table audit_records enable trigger audit_records_append_only")
            .execute(&mut *tx)
            .await
            .expect("trigger enabled");
        tx.commit().await.expect("tampering committed");
    }
}

fn named(broken: &ChainBreak) -> Option<String> {
    broken.record.map(|record| record.to_string())
}

#[test]
fn the_append_only_trigger_still_refuses_an_update_by_the_owner() {
    tests::pg::run(async {
        let trail = Trail::create().await;
        let mut owner = trail.db.owner_connection().await;
        let refused = sqlx::query("update audit_records set reason = 'x' where partition = $1")
            .bind(trail.tenant.as_str())
            .execute(&mut owner)
            .await
            .expect_err("the trigger refuses updates");
        let code = refused
            .as_database_error()
            .and_then(|error| error.code())
            .map(|code| code.into_owned());
        assert_eq!(code.as_deref(), Some("42501"));
        assert_eq!(trail.verify().await, Ok(trail.records));
    });
}

#[test]
fn an_updated_reason_is_reported_as_modified_at_its_seq_naming_the_record() {
    tests::pg::run(async {
        let trail = Trail::create().await;
        let seq = 4;
        let id = trail.audit_id_at(seq).await;
        trail
            .tamper(&["update audit_records set reason = 'nothing to see' \
                       where partition = $1 and seq = 4"])
            .await;
        let broken = trail.verify().await.expect_err("tampering is detected");
        assert_eq!(broken.kind, ChainBreakKind::Modified);
        assert_eq!(broken.seq, 4);
        assert_eq!(named(&broken), Some(id.to_string()));
    });
}

#[test]
fn a_deleted_middle_record_is_reported_as_missing_at_its_seq() {
    tests::pg::run(async {
        let trail = Trail::create().await;
        let next = trail.audit_id_at(4).await;
        trail
            .tamper(&["delete from audit_records where partition = $1 and seq = 3"])
            .await;
        let broken = trail.verify().await.expect_err("the deletion is detected");
        assert_eq!(broken.kind, ChainBreakKind::Missing);
        assert_eq!(broken.seq, 3);
        // The record found where the deleted one should be: its successor.
        assert_eq!(named(&broken), Some(next.to_string()));
    });
}

#[test]
fn two_swapped_records_are_detected_naming_a_record_at_or_before_the_second() {
    tests::pg::run(async {
        let trail = Trail::create().await;
        let second = trail.audit_id_at(2).await;
        let fifth = trail.audit_id_at(5).await;
        // Through a free value, since (partition, seq) is the primary key.
        trail
            .tamper(&[
                "update audit_records set seq = -1 where partition = $1 and seq = 2",
                "update audit_records set seq = 2 where partition = $1 and seq = 5",
                "update audit_records set seq = 5 where partition = $1 and seq = -1",
            ])
            .await;
        let broken = trail.verify().await.expect_err("the swap is detected");
        assert!(
            matches!(
                broken.kind,
                ChainBreakKind::Reordered | ChainBreakKind::Modified
            ),
            "{broken:?}"
        );
        assert!((1..=5).contains(&broken.seq), "{broken:?}");
        let named = named(&broken);
        assert!(
            named == Some(second.to_string()) || named == Some(fifth.to_string()),
            "{broken:?} names neither swapped record"
        );
    });
}

#[test]
fn the_audit_verify_report_says_broken_for_the_tampered_trail_and_intact_for_the_others() {
    tests::pg::run(async {
        let trail = Trail::create().await;
        let engine = &trail.harness.engine;
        let store = trail.harness.store.as_ref();

        let before = api_http::audit::verify(engine, store, None)
            .await
            .expect("verification runs");
        let report = api_http::audit::report(&before);
        assert!(report.intact, "{:?}", report.lines);
        // The platform's trail first, then every tenant's.
        assert_eq!(
            before
                .iter()
                .map(|(partition, _)| partition.clone())
                .collect::<Vec<_>>(),
            vec![
                Partition::Platform,
                Partition::Tenant(trail.tenant.clone()),
                Partition::Tenant(trail.other.clone()),
            ]
        );
        assert!(report
            .lines
            .contains(&format!("acme: {} records, intact", trail.records)));

        let id = trail.audit_id_at(2).await;
        trail
            .tamper(&["update audit_records set actor_id = 'someone-else' \
                       where partition = $1 and seq = 2"])
            .await;

        let after = api_http::audit::verify(engine, store, None)
            .await
            .expect("verification runs");
        let report = api_http::audit::report(&after);
        assert!(!report.intact);
        assert!(
            report
                .lines
                .contains(&format!("acme: BROKEN at seq 2 (record {id}): modified")),
            "{:?}",
            report.lines
        );
        assert!(
            report
                .lines
                .iter()
                .any(|line| line.starts_with("globex: ") && line.ends_with(" records, intact")),
            "{:?}",
            report.lines
        );
        assert!(
            report
                .lines
                .iter()
                .any(|line| line.starts_with("_platform: ") && line.ends_with(", intact")),
            "{:?}",
            report.lines
        );

        // One tenant alone, and a tenant that does not exist.
        let one = api_http::audit::verify(engine, store, Some(&trail.other))
            .await
            .expect("verification runs");
        assert!(api_http::audit::report(&one).intact);
        assert_eq!(one.len(), 1);
        let unknown = api_http::audit::verify(engine, store, Some(&tenant_id("nobody")))
            .await
            .expect_err("an unknown tenant is an error");
        assert!(unknown.contains("no tenant nobody"), "{unknown}");
    });
}

#[test]
fn platform_readers_read_any_tenants_trail_and_tenant_admins_do_not() {
    tests::pg::run(async {
        let trail = Trail::create().await;
        let engine = &trail.harness.engine;
        let filter = AuditFilter::default();

        let page = engine
            .platform_tenant_audit(&trail.root, &trail.tenant, &filter, None, 200)
            .await
            .expect("platform_root reads the tenant's trail");
        assert!(page.items.len() as u64 >= trail.records);
        assert!(page
            .items
            .iter()
            .all(|record| record.partition == Partition::Tenant(trail.tenant.clone())));

        let auditor = trail.harness.user(&trail.root, "auditor@example.com").await;
        engine
            .set_platform_roles(
                &trail.root,
                &auditor,
                [domain::model::PlatformRole::Auditor].into(),
            )
            .await
            .expect("auditor role granted");
        let auditor = Harness::as_user(auditor, Assurance::Aal1);
        let page = engine
            .platform_tenant_audit(&auditor, &trail.other, &filter, None, 200)
            .await
            .expect("platform_auditor reads another tenant's trail");
        assert!(!page.items.is_empty());

        let denied = engine
            .platform_tenant_audit(&trail.admin, &trail.other, &filter, None, 200)
            .await
            .expect_err("a tenant admin has no platform scope");
        assert!(matches!(denied, Error::Forbidden(_)), "{denied:?}");

        let unknown = engine
            .platform_tenant_audit(&trail.root, &tenant_id("nobody"), &filter, None, 200)
            .await
            .expect_err("no such tenant");
        assert!(matches!(unknown, Error::TenantNotFound), "{unknown:?}");
    });
}
