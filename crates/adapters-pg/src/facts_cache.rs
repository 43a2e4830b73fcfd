//! The authorize API's facts cache: the parts a decision is assembled from, each kept
//! with the version it was read with and served only while a fresh read of the versions
//! finds that version unchanged.
//!
//! A decision in tenant `t` reads two kinds of facts, and each has its own version:
//! - the tenant's: its state, enabled scopes and bindings ([`TenantFacts`]), its API keys
//!   and its accounts with their roles — all in tables keyed by `t`, changed only by
//!   mutations that append their audit record and event to `t`'s partition, whose head
//!   `(audit_seq, event_position)` is their version: every mutation appends to its
//!   partitions in the same transaction as its change (SPEC §3.3), and heads never move
//!   back;
//! - the platform's: users (state, platform roles) and the scope catalog, versioned by
//!   `platform_facts_version`, which triggers in the changing transaction move whenever
//!   a user's state or platform roles or the catalog change (not the platform trail's
//!   head, which every login moves). A user's creation does not move it, so a user that
//!   was not found is never kept.
//!
//! So a part read with version `v` is what the database holds for as long as the
//! version is still `v`: when the versions read at the time of a request equal those of
//! every part the decision uses, the facts assembled from the parts are the database's at
//! that time, on any node sharing the database. The cache never serves a stale allow
//! (SPEC §3.1), and a change takes effect on the very next decision. A session is never
//! cached (its idle clock moves without a mutation): it is read with the versions.
//!
//! Each kind of part lives in its own bounded map ([`Capacity`]; `quick_cache`'s S3-FIFO
//! policy: a hit only marks the entry, it relinks nothing, so a lookup among a million
//! entries touches the table's slot and the entry and writes nowhere else), so
//! a working set larger than the bound costs re-reads of the evicted parts, never the
//! whole cache; a part whose head has moved is never served and is replaced when it is
//! read again. Only tenants that exist and keys that were found are kept, so requests
//! with made-up tenants or keys add nothing; accounts asked about are kept found or not
//! (a non-member is a fact too; adding one moves the tenant's head), users only when
//! found, within their bound.
//!
//! Names are numbered when parts are kept: scope names by an id the cache gives each name
//! it reads (ids are never reused, and only names read from the database get one, so the
//! numbering grows with the catalog, not with requests); role names by their place in
//! the tenant's table of bound roles. A tenant's enabled scopes are bits over scope ids,
//! each scope's bound roles and each account's roles bits over the tenant's table, so the
//! roles that grant a scope are one AND (see `domain::authz::RoleSet`).

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use domain::authz::{
    AccountFacts, AuthzFacts, Bits, RoleSet, RoleTable, SubjectFacts, TargetFacts,
};
use domain::ids::{RoleName, ScopeName, TenantId, UserId};
use domain::model::{
    AccountState, ApiKey, CatalogScope, PlatformRole, Session, TenantState, UserState,
};
use domain::ports::{AuthorizeSnapshot, Credential, SnapshotQuery};
use quick_cache::unsync::Cache;

/// One partition's head: `(audit_seq, event_position)`, `None` where it has none yet;
/// for the platform, its facts version (twice).
pub type Head = Option<(i64, i64)>;

/// The versions of one read: the tenant partition's head and the platform facts version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heads {
    pub tenant: Head,
    pub platform: Head,
}

/// How many parts of each kind the cache holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Tenants' own facts (state, enabled scopes, bindings).
    pub tenants: NonZeroUsize,
    /// Users (state, platform roles), found or not.
    pub users: NonZeroUsize,
    /// Tenant accounts (state, roles), found or not; also bounds the API keys.
    pub accounts: NonZeroUsize,
}

impl Capacity {
    /// The same bound for users and accounts (tenants and keys: a tenth of it, at least
    /// 1,000).
    pub fn entries(entries: NonZeroUsize) -> Self {
        Self {
            tenants: NonZeroUsize::new((entries.get() / 10).max(1_000)).unwrap_or(entries),
            users: entries,
            accounts: entries,
        }
    }
}

impl Default for Capacity {
    /// A million users and a million accounts: the facts of every member of the largest
    /// dataset the benchmarks seed (`serve` held 328 MiB with it full, see BENCHMARKS.md).
    fn default() -> Self {
        Self::entries(NonZeroUsize::new(1_000_000).unwrap_or(NonZeroUsize::MIN))
    }
}

/// A tenant's own facts as read: state, enabled scopes and bindings by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRead {
    pub state: TenantState,
    pub enabled: Vec<ScopeName>,
    /// `(role, scope)` for each scope each role is bound to.
    pub bindings: Vec<(RoleName, ScopeName)>,
}

/// An account as read: state and role names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRead {
    pub state: AccountState,
    pub roles: Vec<RoleName>,
}

/// A tenant's own facts, read with the tenant's head, with names numbered.
#[derive(Debug)]
struct TenantFacts {
    state: TenantState,
    /// The roles its bindings name and the built-in ones: its accounts' roles and each
    /// scope's bound roles are bits over this table.
    roles: Arc<RoleTable>,
    /// Bits over scope ids.
    enabled: Bits,
    /// The roles bound to each scope, by scope id.
    bound: Vec<RoleSet>,
}

impl TenantFacts {
    fn account(&self, read: &AccountRead) -> AccountFacts {
        let (bits, others) = self.roles.bits(&read.roles);
        AccountFacts {
            state: read.state,
            roles: RoleSet::in_table(&self.roles, bits, others),
        }
    }
}

/// A user's facts; `None` in the cache when no such user exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    pub state: UserState,
    pub platform_roles: BTreeSet<PlatformRole>,
}

/// What one read of `authorize_facts` returned, besides the heads and the session: the
/// parts it was asked for. `None` where it was not asked; `Some(None)` where it was
/// asked and the database has none.
#[derive(Debug, Default, Clone)]
pub struct Parts {
    pub tenant: Option<Option<TenantRead>>,
    /// The tenant's key with the token's hash.
    pub key: Option<Option<ApiKey>>,
    pub catalog: Option<Vec<CatalogScope>>,
    pub users: HashMap<UserId, Option<UserFacts>>,
    pub accounts: HashMap<UserId, Option<AccountRead>>,
}

/// The parts of one read with names numbered, as [`FactsCache::keep`] keeps them: what
/// [`FactsCache::assemble`] takes before the cache's own (which may not have kept them).
#[derive(Debug, Default)]
pub struct Kept {
    tenant: Option<Option<Arc<TenantFacts>>>,
    key: Option<Option<ApiKey>>,
    catalog: Option<Arc<Catalog>>,
    users: HashMap<UserId, Option<UserFacts>>,
    accounts: HashMap<UserId, Option<AccountFacts>>,
}

/// What a request needs read, given what the cache holds with the reference heads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Needs {
    pub tenant: bool,
    pub key: bool,
    pub catalog: bool,
    pub users: Vec<UserId>,
    pub accounts: Vec<UserId>,
}

impl Needs {
    pub fn nothing(&self) -> bool {
        !self.tenant
            && !self.key
            && !self.catalog
            && self.users.is_empty()
            && self.accounts.is_empty()
    }

    /// Every part `query` reads (with the session's user, once known).
    pub fn everything(query: &SnapshotQuery, session_user: Option<UserId>) -> Self {
        let users = users_of(query, session_user);
        Self {
            tenant: true,
            key: query.api_key,
            catalog: true,
            accounts: users.clone(),
            users,
        }
    }
}

/// The users a query's facts are about: the session's, each check's and each target.
fn users_of(query: &SnapshotQuery, session_user: Option<UserId>) -> Vec<UserId> {
    let mut users: Vec<UserId> = session_user
        .into_iter()
        .chain(
            query
                .checks
                .iter()
                .flat_map(|check| std::iter::once(check.user).chain(check.target)),
        )
        .collect();
    users.sort_unstable();
    users.dedup();
    users
}

#[derive(Debug)]
struct Catalog {
    head: Head,
    /// By scope id.
    scopes: Vec<Option<Arc<CatalogScope>>>,
}

#[derive(Debug)]
struct TenantEntry {
    head: Head,
    /// The tenant's number in `Entries::slots`, which keys its accounts.
    slot: u32,
    facts: Arc<TenantFacts>,
}

#[derive(Debug)]
struct Entries {
    /// The id of every scope name read so far.
    scope_ids: HashMap<ScopeName, usize>,
    catalog: Option<Arc<Catalog>>,
    tenants: Cache<TenantId, TenantEntry>,
    /// A number for every tenant ever kept (tenants are never deleted, and only tenants
    /// that exist are kept, so this grows with the database, not with requests).
    slots: HashMap<TenantId, u32>,
    keys: Cache<String, (Head, ApiKey)>,
    users: Cache<UserId, (Head, Option<UserFacts>)>,
    accounts: Cache<(u32, UserId), (Head, Option<AccountFacts>)>,
}

impl Entries {
    fn scope_id(&mut self, name: &ScopeName) -> usize {
        let next = self.scope_ids.len();
        *self.scope_ids.entry(name.clone()).or_insert(next)
    }

    /// `read` with its names numbered.
    fn tenant(&mut self, read: &TenantRead) -> TenantFacts {
        let roles = RoleTable::new(
            read.bindings
                .iter()
                .map(|(role, _)| role.clone())
                .chain([RoleName::tenant_admin(), RoleName::member()]),
        );
        let enabled: Vec<usize> = read
            .enabled
            .iter()
            .map(|scope| self.scope_id(scope))
            .collect();
        let mut by_scope: HashMap<usize, Vec<RoleName>> = HashMap::new();
        for (role, scope) in &read.bindings {
            by_scope
                .entry(self.scope_id(scope))
                .or_default()
                .push(role.clone());
        }
        let mut bound = vec![RoleSet::default(); by_scope.keys().max().map_or(0, |id| id + 1)];
        for (id, names) in by_scope {
            if let Some(slot) = bound.get_mut(id) {
                let (bits, others) = roles.bits(&names);
                *slot = RoleSet::in_table(&roles, bits, others);
            }
        }
        TenantFacts {
            state: read.state,
            enabled: Bits::with(&enabled),
            roles,
            bound,
        }
    }

    fn catalog(&mut self, head: Head, scopes: &[CatalogScope]) -> Catalog {
        let mut by_id = Vec::new();
        for scope in scopes {
            let id = self.scope_id(&scope.name);
            if by_id.len() <= id {
                by_id.resize(id + 1, None);
            }
            if let Some(slot) = by_id.get_mut(id) {
                *slot = Some(Arc::new(scope.clone()));
            }
        }
        Catalog {
            head,
            scopes: by_id,
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct FactsCache {
    entries: Mutex<Entries>,
    /// Reads of parts the cache lacked or held under older versions.
    reads: AtomicU64,
}

impl Default for FactsCache {
    fn default() -> Self {
        Self::new(Capacity::default())
    }
}

/// Where the parts of one assembly come from: a read just made, then the cache.
struct Source<'a> {
    entries: &'a mut Entries,
    kept: Option<&'a Kept>,
    heads: Heads,
    tenant: &'a TenantId,
}

impl Source<'_> {
    fn tenant(&mut self) -> Option<Option<(u32, Arc<TenantFacts>)>> {
        let slot = self.entries.slots.get(self.tenant).copied();
        if let Some(read) = self.kept.and_then(|kept| kept.tenant.as_ref()) {
            // Not kept (no head): served from the read alone, with no accounts cached.
            return Some(read.clone().map(|facts| (slot.unwrap_or(u32::MAX), facts)));
        }
        let entry = self.entries.tenants.get(self.tenant)?;
        (entry.head == self.heads.tenant).then(|| Some((entry.slot, entry.facts.clone())))
    }

    fn catalog(&mut self) -> Option<Arc<Catalog>> {
        if let Some(catalog) = self.kept.and_then(|kept| kept.catalog.as_ref()) {
            return Some(catalog.clone());
        }
        self.entries
            .catalog
            .clone()
            .filter(|catalog| catalog.head == self.heads.platform)
    }

    fn user(&mut self, user: &UserId) -> Option<Option<UserFacts>> {
        if let Some(read) = self.kept.and_then(|kept| kept.users.get(user)) {
            return Some(read.clone());
        }
        let (head, facts) = self.entries.users.get(user)?;
        (*head == self.heads.platform).then(|| facts.clone())
    }

    fn account(&mut self, slot: u32, user: &UserId) -> Option<Option<AccountFacts>> {
        if let Some(read) = self.kept.and_then(|kept| kept.accounts.get(user)) {
            return Some(read.clone());
        }
        let (head, facts) = self.entries.accounts.get(&(slot, *user))?;
        (*head == self.heads.tenant).then(|| facts.clone())
    }

    fn key(&mut self, hash: &str) -> Option<Option<ApiKey>> {
        if let Some(read) = self.kept.and_then(|kept| kept.key.as_ref()) {
            return Some(read.clone());
        }
        let (head, key) = self.entries.keys.get(hash)?;
        (*head == self.heads.tenant && key.tenant == *self.tenant).then(|| Some(key.clone()))
    }
}

impl FactsCache {
    pub fn new(capacity: Capacity) -> Self {
        Self {
            entries: Mutex::new(Entries {
                scope_ids: HashMap::new(),
                catalog: None,
                tenants: Cache::new(capacity.tenants.get()),
                slots: HashMap::new(),
                keys: Cache::new(capacity.tenants.get()),
                users: Cache::new(capacity.users.get()),
                accounts: Cache::new(capacity.accounts.get()),
            }),
            reads: AtomicU64::new(0),
        }
    }

    /// How many reads of missing or outdated parts the cache has needed so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Counts one read of parts (see [`FactsCache::reads`]).
    pub(crate) fn count_read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // The entries are consistent after every statement, so a panic elsewhere while
        // the lock was held leaves nothing half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `query` needs read beyond the cache: with `heads` when a probe has just read
    /// them, else against the heads the cached tenant and catalog were read with (then a
    /// probe decides whether they still hold). `session_user` is the session's user once
    /// a read has found it (a session's own facts are needed then).
    pub fn needs(
        &self,
        query: &SnapshotQuery,
        heads: Option<Heads>,
        session_user: Option<UserId>,
    ) -> Needs {
        let entries = self.lock();
        let catalog_head = entries.catalog.as_ref().map(|catalog| catalog.head);
        let tenant = entries
            .tenants
            .peek(&query.tenant)
            .map(|entry| (entry.head, entry.slot));
        let reference = heads.unwrap_or(Heads {
            tenant: tenant.and_then(|(head, _)| head),
            platform: catalog_head.flatten(),
        });
        let tenant_held = tenant.is_some_and(|(head, _)| head == reference.tenant);
        let catalog_held = catalog_head.is_some_and(|head| head == reference.platform);
        let users = users_of(query, session_user);
        let key = query.api_key
            && !entries
                .keys
                .peek(&query.token_hash)
                .is_some_and(|(head, key)| {
                    tenant_held && *head == reference.tenant && key.tenant == query.tenant
                });
        let accounts = match tenant {
            Some((_, slot)) if tenant_held => users
                .iter()
                .filter(|user| {
                    entries
                        .accounts
                        .peek(&(slot, **user))
                        .is_none_or(|(head, _)| *head != reference.tenant)
                })
                .copied()
                .collect(),
            _ => users.clone(),
        };
        let users = if catalog_held {
            users
                .into_iter()
                .filter(|user| {
                    entries
                        .users
                        .peek(user)
                        .is_none_or(|(head, _)| *head != reference.platform)
                })
                .collect()
        } else {
            users
        };
        // Look the held tenant up once more so the eviction policy sees it used.
        if tenant_held {
            let _: Option<&TenantEntry> = entries.tenants.get(&query.tenant);
        }
        Needs {
            tenant: !tenant_held,
            key,
            catalog: !catalog_held,
            users,
            accounts,
        }
    }

    /// Keeps the parts one read returned with `heads`, and returns them with their names
    /// numbered. `needs` is what was asked: users and accounts asked and not returned are
    /// kept as missing. Parts of a tenant that does not exist are not kept.
    pub fn keep(&self, query: &SnapshotQuery, heads: Heads, needs: &Needs, parts: Parts) -> Kept {
        let mut entries = self.lock();
        let entries = &mut *entries;
        let mut kept = Kept {
            key: parts.key,
            ..Kept::default()
        };
        if let Some(scopes) = &parts.catalog {
            let catalog = Arc::new(entries.catalog(heads.platform, scopes));
            let newer = entries
                .catalog
                .as_ref()
                .is_none_or(|held| !older(heads.platform, held.head));
            if newer {
                entries.catalog = Some(catalog.clone());
            }
            kept.catalog = Some(catalog);
        }
        let mut users = parts.users;
        for user in &needs.users {
            let facts = users.remove(user).flatten();
            // A missing user is not kept: creating one does not move the version.
            let newer = facts.is_some()
                && entries
                    .users
                    .peek(user)
                    .is_none_or(|(head, _)| !older(heads.platform, *head));
            if newer {
                entries.users.insert(*user, (heads.platform, facts.clone()));
            }
            kept.users.insert(*user, facts);
        }
        if let Some(read) = &parts.tenant {
            kept.tenant = Some(read.as_ref().map(|read| Arc::new(entries.tenant(read))));
        }
        // The table the accounts' roles are numbered by: the tenant's at these heads.
        let tenant = match &kept.tenant {
            Some(tenant) => tenant.clone(),
            None => entries
                .tenants
                .peek(&query.tenant)
                .filter(|entry| entry.head == heads.tenant)
                .map(|entry| entry.facts.clone()),
        };
        let mut accounts = parts.accounts;
        for user in &needs.accounts {
            let facts = accounts.remove(user).flatten().map(|read| match &tenant {
                Some(tenant) => tenant.account(&read),
                None => AccountFacts {
                    state: read.state,
                    roles: RoleSet::new(read.roles),
                },
            });
            kept.accounts.insert(*user, facts);
        }
        if heads.tenant.is_none() {
            return kept;
        }
        if let Some(Some(facts)) = &kept.tenant {
            let next = u32::try_from(entries.slots.len()).unwrap_or(u32::MAX);
            let slot = *entries.slots.entry(query.tenant.clone()).or_insert(next);
            let replace = entries
                .tenants
                .peek(&query.tenant)
                .is_none_or(|entry| !older(heads.tenant, entry.head));
            if replace {
                entries.tenants.insert(
                    query.tenant.clone(),
                    TenantEntry {
                        head: heads.tenant,
                        slot,
                        facts: facts.clone(),
                    },
                );
            }
        }
        if let Some(Some(key)) = &kept.key {
            let newer = entries
                .keys
                .peek(&query.token_hash)
                .is_none_or(|(head, _)| !older(heads.tenant, *head));
            if newer {
                entries
                    .keys
                    .insert(query.token_hash.clone(), (heads.tenant, key.clone()));
            }
        }
        let Some(slot) = entries.slots.get(&query.tenant).copied() else {
            return kept;
        };
        for (user, facts) in &kept.accounts {
            let held = entries.accounts.peek(&(slot, *user));
            if held.is_some_and(|(head, _)| older(heads.tenant, *head)) {
                continue;
            }
            entries
                .accounts
                .insert((slot, *user), (heads.tenant, facts.clone()));
        }
        kept
    }

    /// The snapshot of `query` at `heads` from `kept` (a read made with `heads`) and
    /// from the cache's parts read with the same heads; `None` when a part is missing.
    /// `session` is the session a probe or read found for a session token.
    pub fn assemble(
        &self,
        query: &SnapshotQuery,
        heads: Heads,
        session: Option<Session>,
        kept: Option<&Kept>,
    ) -> Option<AuthorizeSnapshot> {
        let mut entries = self.lock();
        let mut source = Source {
            entries: &mut entries,
            kept,
            heads,
            tenant: &query.tenant,
        };
        let credential = if query.api_key {
            source.key(&query.token_hash)?.map(Credential::ApiKey)
        } else {
            session.map(Credential::Session)
        };
        let Some((slot, tenant)) = source.tenant()? else {
            return Some(AuthorizeSnapshot {
                tenant: None,
                credential,
                caller: None,
                checks: Vec::new(),
            });
        };
        let Some(credential) = credential else {
            return Some(AuthorizeSnapshot {
                tenant: Some(tenant.state),
                credential: None,
                caller: None,
                checks: Vec::new(),
            });
        };
        let catalog = source.catalog()?;
        let caller = match &credential {
            Credential::ApiKey(key) => {
                let scope = source.entries.scope_ids.get(&query.caller_scope).copied();
                AuthzFacts {
                    tenant_state: Some(tenant.state),
                    subject: (key.revoked_at.is_none()).then(|| SubjectFacts::ApiKey {
                        key_id: key.id,
                        tenant: key.tenant.clone(),
                        scopes: key.scopes.clone(),
                    }),
                    account: None,
                    scope: scope.and_then(|id| catalog.scopes.get(id).cloned().flatten()),
                    scope_enabled: scope.is_some_and(|id| tenant.enabled.contains(id)),
                    bound_roles: RoleSet::default(),
                    target: None,
                }
            }
            Credential::Session(session) => facts(
                &mut source,
                slot,
                &tenant,
                &catalog,
                session.user_id,
                &query.caller_scope,
                None,
            )?,
        };
        let checks = query
            .checks
            .iter()
            .map(|check| {
                facts(
                    &mut source,
                    slot,
                    &tenant,
                    &catalog,
                    check.user,
                    &check.scope,
                    check.target,
                )
            })
            .collect::<Option<Vec<_>>>()?;
        Some(AuthorizeSnapshot {
            tenant: Some(tenant.state),
            credential: Some(credential),
            caller: Some(caller),
            checks,
        })
    }
}

/// Whether head `a` was read before head `b` (heads only move forward), so a part read
/// with `a` must not replace one read with `b`.
fn older(a: Head, b: Head) -> bool {
    match (a, b) {
        (None, None) => false,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a != b && a.0 <= b.0 && a.1 <= b.1,
    }
}

/// The facts of a decision about `user` for `scope` (and `target`), exactly as
/// `authz_facts_rows` and `FactsRow::into_facts` give them: the roles that grant the
/// scope are those the account holds among the tenant's roles bound to it — one AND.
fn facts(
    source: &mut Source<'_>,
    slot: u32,
    tenant: &TenantFacts,
    catalog: &Catalog,
    user: UserId,
    scope: &ScopeName,
    target: Option<UserId>,
) -> Option<AuthzFacts> {
    let subject = source.user(&user)?.map(|facts| SubjectFacts::User {
        user_id: user,
        state: facts.state,
        platform_roles: facts.platform_roles,
    });
    let account = source.account(slot, &user)?;
    // A name the cache never read is in no catalog, tenant or binding it holds.
    let scope = source.entries.scope_ids.get(scope).copied();
    let bound_roles = match (&account, scope.and_then(|id| tenant.bound.get(id))) {
        (Some(account), Some(bound)) => account.roles.intersection(bound),
        _ => RoleSet::default(),
    };
    let target = match target {
        Some(target) => match source.user(&target)? {
            Some(facts) => Some(TargetFacts {
                user_id: target,
                account_state: source.account(slot, &target)?.map(|account| account.state),
                platform_roles: facts.platform_roles,
            }),
            None => None,
        },
        None => None,
    };
    Some(AuthzFacts {
        tenant_state: Some(tenant.state),
        subject,
        account,
        scope: scope.and_then(|id| catalog.scopes.get(id).cloned().flatten()),
        scope_enabled: scope.is_some_and(|id| tenant.enabled.contains(id)),
        bound_roles,
        target,
    })
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use domain::ids::{DisplayName, KeyId};
    use domain::model::AccountState;
    use domain::ports::CheckFactsQuery;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    fn fresh() -> Uuid {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Uuid::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("tenant")
    }

    fn scope(name: &str) -> ScopeName {
        ScopeName::parse(name).expect("scope")
    }

    fn role(name: &str) -> RoleName {
        RoleName::parse(name).expect("role")
    }

    fn key() -> ApiKey {
        ApiKey {
            id: KeyId::from_generated(fresh()),
            tenant: tenant(),
            name: DisplayName::parse("k").expect("name"),
            scopes: BTreeSet::from([scope("authz:check")]),
            created_by: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
        }
    }

    fn query(users: &[UserId]) -> SnapshotQuery {
        SnapshotQuery {
            tenant: tenant(),
            token_hash: "hash".to_owned(),
            api_key: true,
            caller_scope: scope("authz:check"),
            checks: users
                .iter()
                .map(|user| CheckFactsQuery {
                    user: *user,
                    scope: scope("docs:read"),
                    target: None,
                })
                .collect(),
        }
    }

    fn heads(tenant: i64, platform: i64) -> Heads {
        Heads {
            tenant: Some((tenant, tenant)),
            platform: Some((platform, platform)),
        }
    }

    fn catalog() -> Vec<CatalogScope> {
        ["authz:check", "docs:read"]
            .into_iter()
            .map(|name| CatalogScope {
                name: scope(name),
                description: name.to_owned(),
                platform_only: false,
                min_assurance: domain::ids::Assurance::Aal1,
            })
            .collect()
    }

    /// A read of everything `query` needs: every user an active viewer, `docs:read`
    /// bound to `viewer`.
    fn read_all(query: &SnapshotQuery, key: &ApiKey) -> (Needs, Parts) {
        let needs = Needs::everything(query, None);
        let parts = Parts {
            tenant: Some(Some(TenantRead {
                state: TenantState::Active,
                enabled: vec![scope("authz:check"), scope("docs:read")],
                bindings: vec![(role("viewer"), scope("docs:read"))],
            })),
            key: Some(Some(key.clone())),
            catalog: Some(catalog()),
            users: needs
                .users
                .iter()
                .map(|user| {
                    let facts = UserFacts {
                        state: UserState::Active,
                        platform_roles: BTreeSet::new(),
                    };
                    (*user, Some(facts))
                })
                .collect(),
            accounts: needs
                .accounts
                .iter()
                .map(|user| {
                    let facts = AccountRead {
                        state: AccountState::Active,
                        roles: vec![role("viewer")],
                    };
                    (*user, Some(facts))
                })
                .collect(),
        };
        (needs, parts)
    }

    fn users(count: usize) -> Vec<UserId> {
        (0..count)
            .map(|_| UserId::from_generated(fresh()))
            .collect()
    }

    #[test]
    fn parts_are_served_only_with_the_heads_they_were_read_with() {
        let cache = FactsCache::new(Capacity::default());
        let query = query(&users(2));
        let key = key();
        assert!(!cache.needs(&query, None, None).nothing());
        let (needs, parts) = read_all(&query, &key);
        cache.keep(&query, heads(3, 7), &needs, parts);
        assert!(cache.needs(&query, None, None).nothing());
        let snapshot = cache
            .assemble(&query, heads(3, 7), None, None)
            .expect("held");
        assert_eq!(snapshot.checks.len(), 2);
        assert_eq!(snapshot.credential, Some(Credential::ApiKey(key)));
        assert!(snapshot
            .checks
            .iter()
            .all(|facts| facts.bound_roles.contains(&role("viewer"))));
        // Either head moving is a miss, and says what to read again.
        assert_eq!(cache.assemble(&query, heads(4, 7), None, None), None);
        assert_eq!(cache.assemble(&query, heads(3, 8), None, None), None);
        let tenant_moved = cache.needs(&query, Some(heads(4, 7)), None);
        assert!(tenant_moved.tenant && tenant_moved.key && !tenant_moved.catalog);
        assert_eq!(tenant_moved.accounts.len(), 2);
        assert!(tenant_moved.users.is_empty());
        let platform_moved = cache.needs(&query, Some(heads(3, 8)), None);
        assert!(
            !platform_moved.tenant && platform_moved.catalog && platform_moved.users.len() == 2
        );
        // Another tenant or another key is not held.
        let mut other_tenant = query.clone();
        other_tenant.tenant = TenantId::parse("globex").expect("tenant");
        assert!(cache.needs(&other_tenant, None, None).tenant);
        let mut other_key = query.clone();
        other_key.token_hash = "other".to_owned();
        assert!(cache.needs(&other_key, None, None).key);
    }

    #[test]
    fn a_part_read_with_older_heads_does_not_replace_a_newer_one() {
        let cache = FactsCache::new(Capacity::default());
        let query = query(&users(1));
        let (needs, parts) = read_all(&query, &key());
        cache.keep(&query, heads(5, 5), &needs, parts.clone());
        cache.keep(&query, heads(4, 4), &needs, parts);
        assert!(cache.assemble(&query, heads(5, 5), None, None).is_some());
    }

    #[test]
    fn evicted_parts_are_read_again_never_served() {
        let capacity = NonZeroUsize::new(4).expect("four");
        let cache = FactsCache::new(Capacity::entries(capacity));
        let everyone = users(10);
        let key = key();
        let first = query(&everyone[..1]);
        let (needs, parts) = read_all(&first, &key);
        cache.keep(&first, heads(1, 1), &needs, parts);
        assert!(cache.assemble(&first, heads(1, 1), None, None).is_some());
        // Nine more users pass through a bound of four.
        for user in &everyone[1..] {
            let query = query(&[*user]);
            let needs = cache.needs(&query, Some(heads(1, 1)), None);
            assert_eq!(needs.users, vec![*user]);
            let (_, parts) = read_all(&query, &key);
            cache.keep(&query, heads(1, 1), &needs, parts);
        }
        {
            let entries = cache.lock();
            assert!(entries.users.len() <= 4 && entries.accounts.len() <= 4);
        }
        // Whichever users the policy evicted, the cache cannot answer for them and asks
        // for exactly their parts again; the ones it holds are served.
        let mut evicted = 0;
        for user in &everyone {
            let query = query(&[*user]);
            match cache.assemble(&query, heads(1, 1), None, None) {
                Some(snapshot) => assert_eq!(snapshot.checks.len(), 1),
                None => {
                    evicted += 1;
                    let needs = cache.needs(&query, Some(heads(1, 1)), None);
                    assert!(needs.users == vec![*user] || needs.accounts == vec![*user]);
                    assert!(!needs.tenant && !needs.catalog && !needs.key);
                }
            }
        }
        assert!(
            evicted >= 6,
            "ten users passed a bound of four; {evicted} evicted"
        );
    }

    #[test]
    fn a_missing_user_is_not_kept_since_creating_one_does_not_move_the_version() {
        let cache = FactsCache::new(Capacity::default());
        let people = users(2);
        let query = query(&people);
        let (needs, mut parts) = read_all(&query, &key());
        parts.users.insert(people[0], None);
        let kept = cache.keep(&query, heads(1, 1), &needs, parts);
        // This read answers (the user is missing now)…
        let snapshot = cache
            .assemble(&query, heads(1, 1), None, Some(&kept))
            .expect("read");
        assert!(snapshot.checks[0].subject.is_none());
        // …but the next one reads them again, at the same versions.
        let needs = cache.needs(&query, Some(heads(1, 1)), None);
        assert_eq!(needs.users, vec![people[0]]);
        assert!(!needs.tenant && !needs.catalog && needs.accounts.is_empty());
    }

    #[test]
    fn a_missing_tenant_and_a_missing_key_are_not_kept() {
        let cache = FactsCache::new(Capacity::default());
        let query = query(&users(1));
        let (needs, mut parts) = read_all(&query, &key());
        parts.tenant = Some(None);
        parts.key = Some(None);
        let kept = cache.keep(&query, heads(1, 1), &needs, parts);
        let needs = cache.needs(&query, None, None);
        assert!(needs.tenant && needs.key);
        let snapshot = cache
            .assemble(&query, heads(1, 1), None, Some(&kept))
            .expect("read");
        assert_eq!((snapshot.tenant, snapshot.credential), (None, None));
    }

    #[test]
    fn a_session_callers_facts_are_its_users() {
        let cache = FactsCache::new(Capacity::default());
        let people = users(2);
        let mut query = query(&people[1..]);
        query.api_key = false;
        let session = Session {
            token_hash: "hash".to_owned(),
            user_id: people[0],
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            last_seen_at: OffsetDateTime::UNIX_EPOCH,
            aal2_until: None,
        };
        let (needs, parts) = read_all(&query, &key());
        cache.keep(&query, heads(2, 2), &needs, parts);
        // The session's user was not read yet: not enough to answer.
        assert_eq!(
            cache.assemble(&query, heads(2, 2), Some(session.clone()), None),
            None
        );
        let needs = cache.needs(&query, Some(heads(2, 2)), Some(people[0]));
        assert_eq!(needs.users, vec![people[0]]);
        let (_, parts) = read_all(&self::query(&people[..1]), &key());
        cache.keep(&query, heads(2, 2), &needs, parts);
        let snapshot = cache
            .assemble(&query, heads(2, 2), Some(session.clone()), None)
            .expect("held");
        assert_eq!(snapshot.credential, Some(Credential::Session(session)));
        assert!(snapshot.caller.and_then(|caller| caller.subject).is_some());
    }
}
