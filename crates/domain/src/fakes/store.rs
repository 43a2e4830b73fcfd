//! The in-memory store: one lock, copy-on-begin transactions, tenant scoping like RLS.

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
    Email, EventId, KeyId, ProfileKey, ProfileValue, RoleName, ScopeName, TenantId, UserId,
};
use crate::model::{
    AccountState, ApiKey, CatalogScope, Credentials, Invitation, Member, RoleBinding, SchemaEntry,
    Session, Tenant, User,
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
    pub credentials: BTreeMap<UserId, Credentials>,
    pub catalog: BTreeMap<ScopeName, CatalogScope>,
    pub schema: BTreeMap<ProfileKey, SchemaEntry>,
    pub member_values: BTreeMap<(TenantId, UserId, ProfileKey), ProfileValue>,
    pub tenant_defaults: BTreeMap<(TenantId, ProfileKey), ProfileValue>,
    pub platform_values: BTreeMap<(UserId, ProfileKey), ProfileValue>,
    pub api_keys: BTreeMap<KeyId, (ApiKey, String)>,
    pub sessions: BTreeMap<String, Session>,
    pub invitations: BTreeMap<String, Invitation>,
    pub audit: BTreeMap<Partition, Vec<AuditRecord>>,
    pub events: BTreeMap<Partition, Vec<Event>>,
    /// Throttle counters: the end of each key's window and its hits.
    pub throttles: BTreeMap<String, (OffsetDateTime, u32)>,
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
impl Tenants for MemTx {
    async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError> {
        if matches!(&self.scope, TxScope::Tenant(scoped) if scoped != tenant) {
            // RLS hides other tenants' rows.
            return Ok(None);
        }
        Ok(self.working.tenants.get(tenant).cloned())
    }

    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        if !self.working.used_tenant_ids.insert(tenant.id.clone()) {
            return Err(StoreError::Duplicate("tenant"));
        }
        self.working
            .tenants
            .insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }

    async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        match self.working.tenants.get_mut(&tenant.id) {
            Some(stored) => {
                *stored = tenant.clone();
                Ok(())
            }
            None => Err(StoreError::Missing("tenant")),
        }
    }

    async fn list_tenants(
        &mut self,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Vec<Tenant>, StoreError> {
        self.scope.require_platform()?;
        Ok(self
            .working
            .tenants
            .values()
            .filter(|tenant| after.as_ref().is_none_or(|after| &tenant.id > after))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn enabled_scopes(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .enabled
            .get(tenant)
            .cloned()
            .unwrap_or_default())
    }

    async fn set_enabled_scopes(
        &mut self,
        tenant: &TenantId,
        scopes: &BTreeSet<ScopeName>,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if !self.working.tenants.contains_key(tenant) {
            return Err(StoreError::Missing("tenant"));
        }
        self.working.enabled.insert(tenant.clone(), scopes.clone());
        Ok(())
    }

    async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .bindings
            .iter()
            .filter(|((binding_tenant, _), _)| binding_tenant == tenant)
            .map(|((_, role), scopes)| RoleBinding {
                role: role.clone(),
                scopes: scopes.clone(),
            })
            .collect())
    }

    async fn put_binding(
        &mut self,
        tenant: &TenantId,
        binding: &RoleBinding,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if !self.working.tenants.contains_key(tenant) {
            return Err(StoreError::Missing("tenant"));
        }
        self.working.bindings.insert(
            (tenant.clone(), binding.role.clone()),
            binding.scopes.clone(),
        );
        Ok(())
    }

    async fn delete_binding(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .bindings
            .remove(&(tenant.clone(), role.clone()))
            .is_some())
    }
}

#[async_trait]
impl Members for MemTx {
    async fn get_member(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self.working.member(tenant, user))
    }

    async fn list_members(
        &mut self,
        tenant: &TenantId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .members_of(tenant)
            .into_iter()
            .filter(|member| after.is_none_or(|after| member.user_id > after))
            .take(limit)
            .collect())
    }

    async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        if !self.working.tenants.contains_key(&member.tenant) {
            return Err(StoreError::Missing("tenant"));
        }
        if !self.working.users.contains_key(&member.user_id) {
            return Err(StoreError::Missing("user"));
        }
        let key = (member.tenant.clone(), member.user_id);
        if self.working.members.contains_key(&key) {
            return Err(StoreError::Duplicate("member"));
        }
        self.working.members.insert(
            key,
            MemberRow {
                roles: member.roles.clone(),
                state: member.state,
                created_at: member.created_at,
                updated_at: member.updated_at,
                version: member.version,
            },
        );
        Ok(())
    }

    async fn update_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        match self
            .working
            .members
            .get_mut(&(member.tenant.clone(), member.user_id))
        {
            Some(row) => {
                row.roles.clone_from(&member.roles);
                row.state = member.state;
                row.updated_at = member.updated_at;
                row.version = member.version;
                Ok(())
            }
            None => Err(StoreError::Missing("member")),
        }
    }

    async fn delete_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if self
            .working
            .members
            .remove(&(tenant.clone(), *user))
            .is_none()
        {
            return Err(StoreError::Missing("member"));
        }
        self.working
            .member_values
            .retain(|(value_tenant, value_user, _), _| {
                !(value_tenant == tenant && value_user == user)
            });
        // A key outlives its creator's membership; it only forgets who made it.
        for (key, _) in self.working.api_keys.values_mut() {
            if &key.tenant == tenant && key.created_by.as_ref() == Some(user) {
                key.created_by = None;
            }
        }
        Ok(())
    }

    async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .members
            .iter()
            .filter(|((member_tenant, _), row)| {
                member_tenant == tenant
                    && row.state == AccountState::Active
                    && row.roles.iter().any(RoleName::is_tenant_admin)
            })
            .count() as u64)
    }

    async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError> {
        self.scope.require_platform()?;
        Ok(self
            .working
            .members
            .keys()
            .filter(|(_, member_user)| member_user == user)
            .filter_map(|(tenant, member_user)| self.working.member(tenant, member_user))
            .collect())
    }
}

#[async_trait]
impl Users for MemTx {
    async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.working.users.get(user).cloned())
    }

    async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self
            .working
            .users
            .values()
            .find(|user| &user.email == email)
            .cloned())
    }

    async fn insert_user(
        &mut self,
        user: &User,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        if self
            .working
            .users
            .values()
            .any(|other| other.email == user.email)
        {
            return Err(StoreError::Duplicate("email"));
        }
        if self.working.users.contains_key(&user.id) {
            return Err(StoreError::Duplicate("user"));
        }
        self.working.users.insert(user.id, user.clone());
        self.working
            .credentials
            .insert(user.id, credentials.clone());
        Ok(())
    }

    async fn update_user(&mut self, user: &User) -> Result<(), StoreError> {
        match self.working.users.get_mut(&user.id) {
            Some(stored) => {
                *stored = user.clone();
                Ok(())
            }
            None => Err(StoreError::Missing("user")),
        }
    }

    async fn count_platform_roots(&mut self) -> Result<u64, StoreError> {
        Ok(self
            .working
            .users
            .values()
            .filter(|user| {
                user.platform_roles
                    .contains(&crate::model::PlatformRole::Root)
            })
            .count() as u64)
    }

    async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError> {
        Ok(self
            .working
            .users
            .values()
            .filter(|user| {
                user.state == crate::model::UserState::Active
                    && user
                        .platform_roles
                        .contains(&crate::model::PlatformRole::Root)
            })
            .count() as u64)
    }
}

#[async_trait]
impl Authentication for MemTx {
    async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError> {
        Ok(self
            .working
            .credentials
            .get(user)
            .cloned()
            .unwrap_or_default())
    }

    async fn set_credentials(
        &mut self,
        user: &UserId,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        if !self.working.users.contains_key(user) {
            return Err(StoreError::Missing("user"));
        }
        self.working.credentials.insert(*user, credentials.clone());
        Ok(())
    }

    async fn insert_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.working
            .sessions
            .insert(session.token_hash.clone(), session.clone());
        Ok(())
    }

    async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.working.sessions.get(token_hash).cloned())
    }

    async fn update_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.working
            .sessions
            .insert(session.token_hash.clone(), session.clone());
        Ok(())
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(self.working.sessions.remove(token_hash).is_some())
    }

    async fn delete_sessions_of(
        &mut self,
        user: &UserId,
        keep: Option<String>,
    ) -> Result<u64, StoreError> {
        let before = self.working.sessions.len();
        self.working.sessions.retain(|token_hash, session| {
            session.user_id != *user || keep.as_deref() == Some(token_hash.as_str())
        });
        Ok(u64::try_from(before - self.working.sessions.len()).unwrap_or(u64::MAX))
    }

    async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError> {
        self.working
            .invitations
            .insert(invitation.token_hash.clone(), invitation.clone());
        Ok(())
    }

    async fn find_invitation(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        Ok(self.working.invitations.get(token_hash).cloned())
    }

    async fn consume_invitation(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError> {
        // Transactions are serialised by the store-wide lock, so the check and the mark
        // cannot interleave with another transaction's.
        Ok(self
            .working
            .invitations
            .get_mut(token_hash)
            .filter(|invitation| invitation.used_at.is_none() && now < invitation.expires_at)
            .map(|invitation| {
                invitation.used_at = Some(now);
                invitation.clone()
            }))
    }

    async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let Some(enrolment) = self
            .working
            .credentials
            .get_mut(user)
            .and_then(|credentials| credentials.totp.as_mut())
        else {
            return Ok(false);
        };
        if enrolment.last_used_step.is_some_and(|last| last >= step) {
            return Ok(false);
        }
        enrolment.last_used_step = Some(step);
        Ok(true)
    }
}

#[async_trait]
impl Catalog for MemTx {
    async fn list_catalog(&mut self) -> Result<Vec<CatalogScope>, StoreError> {
        Ok(self.working.catalog.values().cloned().collect())
    }

    async fn get_catalog_scope(
        &mut self,
        name: &ScopeName,
    ) -> Result<Option<CatalogScope>, StoreError> {
        Ok(self.working.catalog.get(name).cloned())
    }

    async fn insert_catalog_scope(&mut self, scope: &CatalogScope) -> Result<(), StoreError> {
        if self.working.catalog.contains_key(&scope.name) {
            return Err(StoreError::Duplicate("scope"));
        }
        self.working
            .catalog
            .insert(scope.name.clone(), scope.clone());
        Ok(())
    }

    async fn list_schema(&mut self) -> Result<Vec<SchemaEntry>, StoreError> {
        Ok(self.working.schema.values().cloned().collect())
    }

    async fn put_schema_entry(&mut self, entry: &SchemaEntry) -> Result<(), StoreError> {
        self.working.schema.insert(entry.key.clone(), entry.clone());
        Ok(())
    }
}

#[async_trait]
impl Profiles for MemTx {
    async fn member_values(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(values_where(
            &self.working.member_values,
            |(value_tenant, value_user, key)| {
                (value_tenant == tenant && value_user == user).then(|| key.clone())
            },
        ))
    }

    async fn put_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if !self.working.members.contains_key(&(tenant.clone(), *user)) {
            return Err(StoreError::Missing("member"));
        }
        self.working
            .member_values
            .insert((tenant.clone(), *user, key.clone()), value.clone());
        Ok(())
    }

    async fn delete_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .member_values
            .remove(&(tenant.clone(), *user, key.clone()))
            .is_some())
    }

    async fn tenant_defaults(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(values_where(
            &self.working.tenant_defaults,
            |(value_tenant, key)| (value_tenant == tenant).then(|| key.clone()),
        ))
    }

    async fn put_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if !self.working.tenants.contains_key(tenant) {
            return Err(StoreError::Missing("tenant"));
        }
        self.working
            .tenant_defaults
            .insert((tenant.clone(), key.clone()), value.clone());
        Ok(())
    }

    async fn delete_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .tenant_defaults
            .remove(&(tenant.clone(), key.clone()))
            .is_some())
    }

    async fn platform_values(
        &mut self,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        Ok(values_where(
            &self.working.platform_values,
            |(value_user, key)| (value_user == user).then(|| key.clone()),
        ))
    }

    async fn put_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        if !self.working.users.contains_key(user) {
            return Err(StoreError::Missing("user"));
        }
        self.working
            .platform_values
            .insert((*user, key.clone()), value.clone());
        Ok(())
    }

    async fn delete_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        Ok(self
            .working
            .platform_values
            .remove(&(*user, key.clone()))
            .is_some())
    }
}

#[async_trait]
impl ApiKeys for MemTx {
    async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError> {
        self.scope.allow(&key.tenant)?;
        if self.working.api_keys.contains_key(&key.id) {
            return Err(StoreError::Duplicate("api_key"));
        }
        if let Some(creator) = &key.created_by {
            if !self
                .working
                .members
                .contains_key(&(key.tenant.clone(), *creator))
            {
                return Err(StoreError::Missing("member"));
            }
        }
        self.working
            .api_keys
            .insert(key.id, (key.clone(), secret_hash.to_owned()));
        Ok(())
    }

    async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .api_keys
            .values()
            .filter(|(key, _)| &key.tenant == tenant)
            .map(|(key, _)| key.clone())
            .collect())
    }

    async fn get_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .api_keys
            .get(key)
            .filter(|(stored, _)| &stored.tenant == tenant)
            .map(|(stored, _)| stored.clone()))
    }

    async fn revoke_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        match self.working.api_keys.get_mut(key) {
            Some((stored, _)) if &stored.tenant == tenant => {
                stored.revoked_at = Some(at);
                Ok(())
            }
            _ => Err(StoreError::Missing("api_key")),
        }
    }

    async fn find_api_key_by_hash(
        &mut self,
        secret_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        Ok(self
            .working
            .api_keys
            .values()
            .find(|(key, hash)| hash == secret_hash && self.scope.sees(&key.tenant))
            .map(|(key, _)| key.clone()))
    }
}

#[async_trait]
impl Decisions for MemTx {
    async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError> {
        if let Some(tenant) = &query.tenant {
            self.scope.allow(tenant)?;
        }
        let state = &self.working;
        let tenant_state = query
            .tenant
            .as_ref()
            .and_then(|tenant| state.tenants.get(tenant))
            .map(|tenant| tenant.state);
        let (subject, subject_user) = match &query.subject {
            SubjectRef::User(user_id) => (
                state.users.get(user_id).map(|user| SubjectFacts::User {
                    user_id: *user_id,
                    state: user.state,
                    platform_roles: user.platform_roles.clone(),
                }),
                Some(*user_id),
            ),
            SubjectRef::ApiKey(key_id) => (
                state
                    .api_keys
                    .get(key_id)
                    .filter(|(key, _)| key.revoked_at.is_none() && self.scope.sees(&key.tenant))
                    .map(|(key, _)| SubjectFacts::ApiKey {
                        key_id: key.id,
                        tenant: key.tenant.clone(),
                        scopes: key.scopes.clone(),
                    }),
                None,
            ),
        };
        let account = match (&query.tenant, subject_user) {
            (Some(tenant), Some(user)) => {
                state
                    .members
                    .get(&(tenant.clone(), user))
                    .map(|row| AccountFacts {
                        state: row.state,
                        roles: row.roles.clone(),
                    })
            }
            _ => None,
        };
        let bound_roles = match (&query.tenant, &account) {
            (Some(tenant), Some(account)) => account
                .roles
                .iter()
                .filter(|role| {
                    state
                        .bindings
                        .get(&(tenant.clone(), (*role).clone()))
                        .is_some_and(|scopes| scopes.contains(&query.scope))
                })
                .cloned()
                .collect(),
            _ => BTreeSet::new(),
        };
        let scope_enabled = query.tenant.as_ref().is_some_and(|tenant| {
            state
                .enabled
                .get(tenant)
                .is_some_and(|scopes| scopes.contains(&query.scope))
        });
        let target = query.target.and_then(|target| {
            let user = state.users.get(&target)?;
            Some(TargetFacts {
                user_id: target,
                account_state: query.tenant.as_ref().and_then(|tenant| {
                    state
                        .members
                        .get(&(tenant.clone(), target))
                        .map(|row| row.state)
                }),
                platform_roles: user.platform_roles.clone(),
            })
        });
        Ok(AuthzFacts {
            tenant_state,
            subject,
            account,
            scope: state.catalog.get(&query.scope).cloned(),
            scope_enabled,
            bound_roles,
            target,
        })
    }
}

#[async_trait]
impl AuditLog for MemTx {
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        // The store-wide lock is already held for the whole transaction.
        self.scope.allow_partition(partition)
    }

    async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let trail = self
            .working
            .audit
            .entry(draft.partition.clone())
            .or_default();
        let prev_hash = trail
            .last()
            .map_or_else(|| GENESIS_HASH.to_owned(), |last| last.hash.clone());
        let record = AuditRecord::seal(draft, trail.len() as u64 + 1, &prev_hash);
        trail.push(record.clone());
        Ok(record)
    }

    async fn list_audit(
        &mut self,
        partition: &Partition,
        filter: &AuditFilter,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.scope.allow_partition(partition)?;
        Ok(self
            .working
            .audit_of(partition)
            .iter()
            .filter(|record| record.seq > after_seq)
            .filter(|record| {
                filter
                    .actor_id
                    .as_ref()
                    .is_none_or(|actor| &record.actor.id == actor)
                    && filter
                        .action
                        .as_ref()
                        .is_none_or(|action| &record.action == action)
                    && filter
                        .outcome
                        .is_none_or(|outcome| record.outcome == outcome)
                    && filter.from.is_none_or(|from| record.at >= from)
                    && filter.until.is_none_or(|until| record.at < until)
            })
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Outbox for MemTx {
    async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let feed = self
            .working
            .events
            .entry(draft.partition.clone())
            .or_default();
        let event = Event::place(draft, feed.len() as u64 + 1);
        feed.push(event.clone());
        Ok(event)
    }

    async fn list_events(
        &mut self,
        partition: &Partition,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.scope.allow_partition(partition)?;
        Ok(self
            .working
            .events_of(partition)
            .iter()
            .filter(|event| event.position > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError> {
        self.scope.allow(tenant)?;
        let mut backlog = OutboxBacklog::default();
        for event in self
            .working
            .events_of(&Partition::Tenant(tenant.clone()))
            .iter()
            .filter(|event| !self.working.published.contains(&event.id))
        {
            backlog.waiting += 1;
            backlog.oldest = Some(backlog.oldest.map_or(event.time, |at| at.min(event.time)));
        }
        Ok(backlog)
    }
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
