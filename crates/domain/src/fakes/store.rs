//! The in-memory store: one lock, copy-on-begin transactions, tenant scoping like RLS.
//! The capability ports are implemented one module each, in `store/`.

mod api_keys;
mod audit;
mod authentication;
mod catalog;
mod decisions;
mod idempotency;
mod mailbox;
mod members;
mod oauth;
mod outbox;
mod profiles;
mod scim;
mod signing_keys;
mod tenants;
mod users;
mod webhooks;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::lock::{Mutex, OwnedMutexGuard};
use time::OffsetDateTime;

use crate::audit::{AuditDraft, AuditRecord, Partition, GENESIS_HASH};
use crate::authz::{AccountFacts, AuthzFacts, SubjectFacts, TargetFacts};
use crate::catalog::{default_catalog, default_schema};
use crate::event::{Event, EventDraft};
use crate::ids::{
    Email, EventId, KeyId, ProfileKey, ProfileValue, RoleName, ScopeName, SessionId, TenantId,
    UserId,
};
use crate::model::{
    AccountState, ApiKey, CatalogScope, Credentials, Invitation, Member, PasswordReset,
    RoleBinding, SchemaEntry, Session, SessionDetails, Tenant, User,
};
use crate::ports::{
    ApiKeys, AuditFilter, AuditLog, Authentication, Catalog, Decisions, FactsQuery, Members,
    Outbox, OutboxBacklog, Profiles, Store, StoreError, StoreTx, SubjectRef, Tenants,
    ThrottleCount, TxScope, Users,
};

/// A member row as stored: the email is joined from the user on read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub roles: BTreeSet<RoleName>,
    pub state: AccountState,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub version: u64,
}

/// A queued mail and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemMail {
    pub draft: crate::mail::MailDraft,
    pub next_attempt_at: OffsetDateTime,
    pub attempts: u32,
    pub leased_until: Option<OffsetDateTime>,
    pub sent_at: Option<OffsetDateTime>,
    pub gave_up_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// A webhook as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemWebhook {
    pub hook: crate::webhook::Webhook,
    pub secret: String,
    pub cursor: u64,
    pub head_attempts: u32,
    pub head_since: Option<OffsetDateTime>,
    pub next_attempt_at: OffsetDateTime,
    pub leased_until: Option<OffsetDateTime>,
}

/// Everything the store holds; public so tests can inspect it.
#[derive(Debug, Clone, Default)]
pub struct MemState {
    pub tenants: BTreeMap<TenantId, Tenant>,
    /// Every tenant id ever used: ids are never reused.
    pub used_tenant_ids: BTreeSet<TenantId>,
    pub enabled: BTreeMap<TenantId, BTreeSet<ScopeName>>,
    pub bindings: BTreeMap<(TenantId, RoleName), BTreeSet<ScopeName>>,
    pub members: BTreeMap<(TenantId, UserId), MemberRow>,
    pub users: BTreeMap<UserId, User>,
    /// Users erased: their rows stay as tombstones that no lookup finds.
    pub erased: BTreeSet<UserId>,
    pub credentials: BTreeMap<UserId, Credentials>,
    pub catalog: BTreeMap<ScopeName, CatalogScope>,
    pub schema: BTreeMap<ProfileKey, SchemaEntry>,
    pub member_values: BTreeMap<(TenantId, UserId, ProfileKey), ProfileValue>,
    pub tenant_defaults: BTreeMap<(TenantId, ProfileKey), ProfileValue>,
    pub platform_values: BTreeMap<(UserId, ProfileKey), ProfileValue>,
    pub api_keys: BTreeMap<KeyId, (ApiKey, String)>,
    pub sessions: BTreeMap<String, Session>,
    /// Each session's details, by the same token hash.
    pub session_details: BTreeMap<String, SessionDetails>,
    pub invitations: BTreeMap<String, Invitation>,
    pub password_resets: BTreeMap<String, PasswordReset>,
    pub email_verifications: BTreeMap<String, crate::model::EmailVerification>,
    /// Recovery codes by user and hash, with when each was used.
    pub recovery_codes: BTreeMap<(UserId, String), Option<OffsetDateTime>>,
    /// The mail queue, by mail id.
    pub mails: BTreeMap<uuid::Uuid, MemMail>,
    /// Webhooks by tenant and name, with where each stands.
    pub webhooks: BTreeMap<(TenantId, String), MemWebhook>,
    /// Each hook's deliveries by feed position.
    pub deliveries: BTreeMap<(TenantId, String, u64), crate::webhook::Delivery>,
    /// The provider's signing keys by kid.
    pub signing_keys: BTreeMap<String, crate::signing::SigningKey>,
    /// OAuth clients by id, with the hash of the secret of a confidential one.
    pub oauth_clients: BTreeMap<crate::oidc::ClientId, (crate::oidc::OAuthClient, Option<String>)>,
    /// Codes and refresh tokens by tenant and hash.
    pub grants: BTreeMap<(TenantId, String), crate::oidc::Grant>,
    /// Consents to third-party clients by tenant, user and client.
    pub consents: BTreeMap<(TenantId, UserId, crate::oidc::ClientId), crate::oidc::Consent>,
    /// Members' SCIM identities by tenant and user.
    pub scim_identities: BTreeMap<(TenantId, UserId), crate::scim::model::ScimIdentity>,
    /// Groups created through SCIM by tenant and role.
    pub scim_groups: BTreeMap<(TenantId, RoleName), crate::scim::model::ScimGroup>,
    pub audit: BTreeMap<Partition, Vec<AuditRecord>>,
    pub events: BTreeMap<Partition, Vec<Event>>,
    /// Throttle counters: the end of each key's window and its hits.
    pub throttles: BTreeMap<String, (OffsetDateTime, u32)>,
    /// Idempotency records by key, with the time each expires.
    pub idempotency: BTreeMap<String, (crate::ports::IdempotencyRecord, OffsetDateTime)>,
    /// Events a relay has marked published (see [`MemStore::publish_all`]); every other
    /// event waits in the outbox.
    pub published: BTreeSet<EventId>,
}

impl MemState {
    fn seeded() -> Self {
        Self {
            catalog: default_catalog()
                .into_iter()
                .map(|scope| (scope.name.clone(), scope))
                .collect(),
            schema: default_schema()
                .into_iter()
                .map(|entry| (entry.key.clone(), entry))
                .collect(),
            ..Self::default()
        }
    }

    fn member(&self, tenant: &TenantId, user: &UserId) -> Option<Member> {
        let row = self.members.get(&(tenant.clone(), *user))?;
        let email = self.users.get(user)?.email.clone();
        Some(Member {
            tenant: tenant.clone(),
            user_id: *user,
            email,
            roles: row.roles.clone(),
            state: row.state,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }

    /// The audit records of a partition.
    pub fn audit_of(&self, partition: &Partition) -> &[AuditRecord] {
        self.audit.get(partition).map_or(&[], Vec::as_slice)
    }

    /// The events of a partition.
    pub fn events_of(&self, partition: &Partition) -> &[Event] {
        self.events.get(partition).map_or(&[], Vec::as_slice)
    }

    /// The members of a tenant, emails joined.
    pub fn members_of(&self, tenant: &TenantId) -> Vec<Member> {
        self.members
            .keys()
            .filter(|(member_tenant, _)| member_tenant == tenant)
            .filter_map(|(member_tenant, user)| self.member(member_tenant, user))
            .collect()
    }
}

/// The in-memory store.
#[derive(Debug, Clone)]
pub struct MemStore {
    state: Arc<Mutex<MemState>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(MemState::seeded())),
        }
    }

    /// A copy of the committed state.
    pub async fn snapshot(&self) -> MemState {
        self.state.lock().await.clone()
    }

    /// What a relay pass that publishes everything does: marks every committed event of
    /// every feed published; returns how many were waiting.
    pub async fn publish_all(&self) -> usize {
        let mut state = self.state.lock().await;
        let waiting: Vec<EventId> = state
            .events
            .values()
            .flatten()
            .map(|event| event.id)
            .filter(|id| !state.published.contains(id))
            .collect();
        let count = waiting.len();
        state.published.extend(waiting);
        count
    }
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Store for MemStore {
    async fn begin(&self, scope: TxScope) -> Result<Box<dyn StoreTx>, StoreError> {
        let guard = self.state.clone().lock_owned().await;
        let working = guard.clone();
        Ok(Box::new(MemTx {
            guard,
            working,
            scope,
        }))
    }

    async fn throttle_hit(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError> {
        let mut state = self.state.lock().await;
        // Ended windows go, so the map holds only live counters.
        state.throttles.retain(|_, (ends, _)| *ends > now);
        let (ends, hits) = state
            .throttles
            .entry(key.to_owned())
            .or_insert((now + window, 0));
        *hits = hits.saturating_add(1);
        Ok(ThrottleCount {
            hits: *hits,
            window_ends_at: *ends,
        })
    }

    async fn throttle_peek(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError> {
        let state = self.state.lock().await;
        Ok(match state.throttles.get(key) {
            Some((ends, hits)) if *ends > now => ThrottleCount {
                hits: *hits,
                window_ends_at: *ends,
            },
            _ => ThrottleCount {
                hits: 0,
                window_ends_at: now,
            },
        })
    }
}

struct MemTx {
    guard: OwnedMutexGuard<MemState>,
    working: MemState,
    scope: TxScope,
}

fn values_where<K: Ord + Clone, P: Fn(&K) -> Option<ProfileKey>>(
    map: &BTreeMap<K, ProfileValue>,
    select: P,
) -> BTreeMap<ProfileKey, ProfileValue> {
    map.iter()
        .filter_map(|(key, value)| select(key).map(|profile_key| (profile_key, value.clone())))
        .collect()
}

#[async_trait]
impl StoreTx for MemTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let MemTx {
            mut guard, working, ..
        } = *self;
        *guard = working;
        Ok(())
    }
}
