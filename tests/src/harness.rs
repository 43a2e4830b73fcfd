//! A test harness over any store: the engine with fake clock, ids, secrets, hashing and
//! TOTP, and helpers that build callers, tenants and members through the public use cases.

use std::collections::BTreeSet;
use std::sync::Arc;

use domain::fakes::{
    CountingSecrets, FakeTotp, FastPasswordHasher, ManualClock, MemStore, SequentialIds,
};
use domain::ids::{Assurance, DisplayName, Email, Password, RoleName, TenantId, UserId};
use domain::ports::Store;
use domain::usecases::{
    AddMember, Caller, CreateTenant, Engine, EngineConfig, NewUser, Ports, Principal, UserRef,
};

/// The password every harness user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// An engine over one store with a manual clock.
#[derive(Clone)]
pub struct Harness {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
    /// Whatever must live as long as the harness (a test database, say).
    pub keep_alive: Option<Arc<dyn std::any::Any + Send + Sync>>,
    /// Another node's engine over the same database (a store of its own, so caches of
    /// its own), on the same clock: where the differential test asks the authorize API's
    /// common path, so a change made through `engine` must be seen there at once.
    pub other_node: Option<Engine>,
    /// Shared by both nodes' engines, so what either writes has ids of its own.
    ids: Arc<SequentialIds>,
    secrets: Arc<CountingSecrets>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

/// An engine over `store` with the harness's fake ports.
fn engine(
    store: Arc<dyn Store>,
    clock: &Arc<ManualClock>,
    ids: &Arc<SequentialIds>,
    secrets: &Arc<CountingSecrets>,
) -> Engine {
    Engine::new(
        Ports {
            store,
            clock: clock.clone(),
            ids: ids.clone(),
            secrets: secrets.clone(),
            passwords: Arc::new(FastPasswordHasher),
            totp: Arc::new(FakeTotp),
        },
        EngineConfig::default(),
    )
}

impl Harness {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new(ManualClock::default_start()));
        let ids = Arc::new(SequentialIds::default());
        let secrets = Arc::new(CountingSecrets::default());
        Self {
            engine: engine(store.clone(), &clock, &ids, &secrets),
            clock,
            store,
            keep_alive: None,
            other_node: None,
            ids,
            secrets,
        }
    }

    fn engine_over(&self, store: Arc<dyn Store>) -> Engine {
        engine(store, &self.clock, &self.ids, &self.secrets)
    }

    /// This harness's engine with mail on (default mail settings): what it mails is
    /// queued in the store, where [`Harness::take_mails`] reads it.
    pub fn mailing(&self) -> Engine {
        Engine::new(
            Ports {
                store: self.store.clone(),
                clock: self.clock.clone(),
                ids: self.ids.clone(),
                secrets: self.secrets.clone(),
                passwords: Arc::new(FastPasswordHasher),
                totp: Arc::new(FakeTotp),
            },
            EngineConfig {
                mail: Some(domain::mail::MailSettings::default()),
                ..EngineConfig::default()
            },
        )
    }

    /// Leases every mail due now and marks it sent: the mails queued since the last call,
    /// oldest first.
    pub async fn take_mails(&self) -> Vec<domain::mail::QueuedMail> {
        use domain::mail::MailOutcome;
        let now = self.clock_now();
        let mut tx = self
            .store
            .begin(domain::ports::TxScope::Platform)
            .await
            .expect("platform transaction");
        let mails = tx
            .lease_mails(now, now + time::Duration::minutes(1), 1000)
            .await
            .expect("lease");
        for mail in &mails {
            tx.record_mail_outcome(mail.id, &MailOutcome::Sent, now)
                .await
                .expect("record");
        }
        tx.commit().await.expect("commit");
        mails
    }

    /// Adds another node: an engine over `store` (the same database through a store of
    /// its own) on this harness's clock and id generator.
    pub fn with_other_node(mut self, store: Arc<dyn Store>) -> Self {
        self.other_node = Some(self.engine_over(store));
        self
    }

    /// The harness clock's current time.
    pub fn clock_now(&self) -> time::OffsetDateTime {
        domain::ports::Clock::now(self.clock.as_ref())
    }

    /// A harness over a fresh in-memory store, and the store for inspection.
    pub fn fake() -> (Self, Arc<MemStore>) {
        let store = Arc::new(MemStore::new());
        (Self::new(store.clone()), store)
    }

    /// A caller acting as `user` at `assurance`, as authentication would produce.
    pub fn as_user(user: UserId, assurance: Assurance) -> Caller {
        Caller {
            principal: Principal::User {
                user_id: user,
                assurance,
                session: None,
            },
            request_id: format!("req-{user}"),
        }
    }

    /// Bootstraps the platform root and returns it as an `aal2` caller.
    pub async fn root(&self) -> Caller {
        let user = self
            .engine
            .bootstrap(email("root@example.com"), password(), "bootstrap")
            .await
            .expect("bootstrap succeeds")
            .expect("no root existed");
        Self::as_user(user.id, Assurance::Aal2)
    }

    /// Creates an active user with the harness password.
    pub async fn user(&self, root: &Caller, address: &str) -> UserId {
        self.engine
            .create_user(
                root,
                NewUser {
                    email: email(address),
                    password: Some(password()),
                },
            )
            .await
            .expect("user created")
            .user
            .id
    }

    /// Creates a tenant whose first admin is a new active user; returns the admin at aal2.
    pub async fn tenant(&self, root: &Caller, id: &str) -> (TenantId, Caller) {
        let admin = self.user(root, &format!("admin@{id}.example")).await;
        let tenant = tenant_id(id);
        self.engine
            .create_tenant(
                root,
                CreateTenant {
                    id: tenant.clone(),
                    display_name: DisplayName::parse(&format!("Tenant {id}")).expect("name"),
                    admin: UserRef::Id(admin),
                },
            )
            .await
            .expect("tenant created");
        (tenant, Self::as_user(admin, Assurance::Aal2))
    }

    /// Adds a new active user to a tenant with `roles`; returns them at aal1.
    pub async fn member(
        &self,
        root: &Caller,
        admin: &Caller,
        tenant: &TenantId,
        address: &str,
        roles: &[&str],
    ) -> Caller {
        let user = self.user(root, address).await;
        self.engine
            .add_member(
                admin,
                tenant,
                AddMember {
                    user: UserRef::Id(user),
                    roles: roles.iter().map(|role| role_name(role)).collect(),
                },
            )
            .await
            .expect("member added");
        Self::as_user(user, Assurance::Aal1)
    }
}

pub fn email(address: &str) -> Email {
    Email::parse(address).expect("valid email")
}

pub fn password() -> Password {
    Password::parse(PASSWORD).expect("valid password")
}

pub fn tenant_id(id: &str) -> TenantId {
    TenantId::parse(id).expect("valid tenant id")
}

pub fn role_name(role: &str) -> RoleName {
    RoleName::parse(role).expect("valid role")
}

pub fn roles(names: &[&str]) -> BTreeSet<RoleName> {
    names.iter().map(|name| role_name(name)).collect()
}

pub fn scope(name: &str) -> domain::ids::ScopeName {
    domain::ids::ScopeName::parse(name).expect("valid scope")
}

/// The user id behind a user caller.
pub fn user_of(caller: &Caller) -> UserId {
    *caller.principal.user_id().expect("a user caller")
}

/// The same caller at another assurance.
pub fn at(caller: &Caller, assurance: Assurance) -> Caller {
    Harness::as_user(user_of(caller), assurance)
}
