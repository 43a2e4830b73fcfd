//! Interaction tests with mocked ports: what a use case does when the store fails.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::OffsetDateTime;

use super::*;
use crate::audit::AuditRecord;
use crate::authz::{AuthzFacts, SubjectFacts};
use crate::event::Event;
use crate::ids::{Assurance, DisplayName, Email, TenantId, UserId};
use crate::model::{PlatformRole, User, UserState};
use crate::ports::{HashError, MockStore, MockStoreTx, StoreError};

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }
}

struct Counter(std::sync::atomic::AtomicU64);

impl IdGenerator for Counter {
    fn new_v7(&self) -> uuid::Uuid {
        let next = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        uuid::Builder::from_unix_timestamp_millis(next, &[7; 10]).into_uuid()
    }
}

struct NoSecrets;

impl SecretGenerator for NoSecrets {
    fn token(&self) -> String {
        "token".to_owned()
    }
    fn totp_secret(&self) -> String {
        "SECRET".to_owned()
    }
}

struct NoPasswords;

#[async_trait::async_trait]
impl PasswordHasher for NoPasswords {
    async fn hash(&self, password: &str) -> Result<String, HashError> {
        Ok(password.to_owned())
    }
    async fn verify(&self, _password: &str, _hash: Option<&str>) -> Result<bool, HashError> {
        Ok(false)
    }
}

struct NoTotp;

impl TotpVerifier for NoTotp {
    fn verify(&self, _secret: &str, _code: &str, _now: OffsetDateTime) -> Option<u64> {
        None
    }
    fn provisioning_uri(&self, _secret: &str, _account: &str) -> String {
        String::new()
    }
}

fn engine(store: MockStore) -> Engine {
    Engine::new(
        Ports {
            store: Arc::new(store),
            clock: Arc::new(FixedClock),
            ids: Arc::new(Counter(std::sync::atomic::AtomicU64::new(1))),
            secrets: Arc::new(NoSecrets),
            passwords: Arc::new(NoPasswords),
            totp: Arc::new(NoTotp),
        },
        EngineConfig::default(),
    )
}

fn user_id(tail: u64) -> UserId {
    UserId::from_generated(uuid::Builder::from_unix_timestamp_millis(tail, &[1; 10]).into_uuid())
}

fn root_caller() -> Caller {
    Caller {
        principal: Principal::User {
            user_id: user_id(1),
            assurance: Assurance::Aal2,
            session: None,
        },
        request_id: "request".to_owned(),
    }
}

fn root_facts() -> AuthzFacts {
    let catalog = crate::catalog::default_catalog();
    AuthzFacts {
        tenant_state: None,
        subject: Some(SubjectFacts::User {
            user_id: user_id(1),
            state: UserState::Active,
            platform_roles: BTreeSet::from([PlatformRole::Root]),
        }),
        account: None,
        scope: catalog
            .into_iter()
            .find(|scope| scope.name.as_str() == crate::catalog::scopes::PLATFORM_TENANTS_WRITE)
            .map(std::sync::Arc::new),
        scope_enabled: false,
        bound_roles: crate::authz::RoleSet::default(),
        target: None,
    }
}

fn create_acme() -> CreateTenant {
    CreateTenant {
        id: TenantId::parse("acme").unwrap_or_else(|_| unreachable!()),
        display_name: DisplayName::parse("Acme").unwrap_or_else(|_| unreachable!()),
        admin: UserRef::Id(user_id(2)),
    }
}

/// A transaction that accepts every step of tenant creation and then fails to commit.
fn tx_failing_at_commit() -> MockStoreTx {
    let mut tx = MockStoreTx::new();
    tx.expect_authz_facts().returning(|_| Ok(root_facts()));
    tx.expect_lock_partition().returning(|_| Ok(()));
    tx.expect_get_tenant().returning(|_| Ok(None));
    tx.expect_insert_tenant().times(1).returning(|_| Ok(()));
    tx.expect_get_user().returning(|id| {
        Ok(Some(User {
            id: *id,
            email: Email::parse("admin@acme.example").unwrap_or_else(|_| unreachable!()),
            state: UserState::Active,
            platform_roles: BTreeSet::new(),
            has_totp: false,
            email_verified: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }))
    });
    tx.expect_insert_member().times(1).returning(|_| Ok(()));
    tx.expect_set_enabled_scopes()
        .times(1)
        .returning(|_, _| Ok(()));
    tx.expect_put_binding().returning(|_, _| Ok(()));
    tx.expect_append_audit()
        .times(1)
        .returning(|draft| Ok(AuditRecord::seal(draft, 1, crate::audit::GENESIS_HASH)));
    tx.expect_append_event()
        .times(2)
        .returning(|draft| Ok(Event::place(draft, 1)));
    tx.expect_commit()
        .times(1)
        .returning(|| Err(StoreError::Unavailable("disk full".to_owned())));
    tx
}

#[test]
fn a_failed_commit_returns_the_store_error_and_writes_nothing_else() {
    let mut store = MockStore::new();
    let mut tx = Some(tx_failing_at_commit());
    // Exactly one transaction: no denied record is written after an infrastructure
    // failure, so the failed change leaves no audit record or event anywhere.
    store
        .expect_begin()
        .times(1)
        .returning(move |_| match tx.take() {
            Some(tx) => Ok(Box::new(tx)),
            None => Err(StoreError::Unavailable("second transaction".to_owned())),
        });
    let result =
        futures::executor::block_on(engine(store).create_tenant(&root_caller(), create_acme()));
    assert_eq!(
        result.map(|_| ()),
        Err(Error::Store(StoreError::Unavailable(
            "disk full".to_owned()
        )))
    );
}

#[test]
fn a_failed_fact_read_aborts_before_any_write() {
    let mut tx = MockStoreTx::new();
    tx.expect_authz_facts()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("connection reset".to_owned())));
    tx.expect_insert_tenant().never();
    tx.expect_append_audit().never();
    tx.expect_append_event().never();
    tx.expect_commit().never();
    let mut store = MockStore::new();
    let mut tx = Some(tx);
    store
        .expect_begin()
        .times(1)
        .returning(move |_| match tx.take() {
            Some(tx) => Ok(Box::new(tx)),
            None => Err(StoreError::Unavailable("second transaction".to_owned())),
        });
    let result =
        futures::executor::block_on(engine(store).create_tenant(&root_caller(), create_acme()));
    assert_eq!(
        result.map(|_| ()),
        Err(Error::Store(StoreError::Unavailable(
            "connection reset".to_owned()
        )))
    );
}
