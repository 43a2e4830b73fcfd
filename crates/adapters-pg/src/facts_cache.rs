//! The authorize API's facts cache: the parts a decision is assembled from, each kept
//! with the partition head it was read with and served only while a fresh read of the
//! heads finds that head unchanged.
//!
//! A decision in tenant `t` reads two kinds of facts, and each has its own version:
//! - the tenant's: its state, enabled scopes and bindings ([`TenantFacts`]), its API keys
//!   and its accounts with their roles — all in tables keyed by `t`, changed only by
//!   mutations that append their audit record and event to `t`'s partition;
//! - the platform's: users (state, platform roles) and the scope catalog, changed only by
//!   mutations that append to the platform's partition.
//!
//! Every mutation appends to its partitions in the same transaction as its change (SPEC
//! §3.3), moving those partitions' `(audit_seq, event_position)`; heads never move back.
//! So a part read with head `h` is what the database holds for as long as the head is
//! still `h`: when the heads read at the time of a request equal those of every part the
//! decision uses, the facts assembled from the parts are the database's at that time, on
//! any node sharing the database. The cache never serves a stale allow (SPEC §3.1), and a
//! change takes effect on the very next decision. A session is never cached (its idle
//! clock moves without a mutation): it is read with the heads.
//!
//! Each kind of part lives in its own bounded least-recently-used map ([`Capacity`]), so
//! a working set larger than the bound costs re-reads of the evicted parts, never the
//! whole cache; a part whose head has moved is never served and is replaced when it is
//! read again. Only tenants that exist and keys that were found are kept, so requests
//! with made-up tenants or keys add nothing; users and accounts asked about are kept
//! found or not (a non-member is a fact too), within their bound.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use domain::authz::{AccountFacts, AuthzFacts, SubjectFacts, TargetFacts};
use domain::ids::{RoleName, ScopeName, TenantId, UserId};
use domain::model::{ApiKey, CatalogScope, PlatformRole, Session, TenantState, UserState};
use domain::ports::{AuthorizeSnapshot, Credential, SnapshotQuery};
use lru::LruCache;

/// One partition's head: `(audit_seq, event_position)`, `None` where it has none yet.
pub(crate) type Head = Option<(i64, i64)>;

/// The heads of one read: the tenant's partition and the platform's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Heads {
    pub(crate) tenant: Head,
    pub(crate) platform: Head,
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
    /// dataset the benchmarks seed (about 110 MiB when full, see BENCHMARKS.md).
    fn default() -> Self {
        Self::entries(NonZeroUsize::new(1_000_000).unwrap_or(NonZeroUsize::MIN))
    }
}

/// A tenant's own facts, read with the tenant's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantFacts {
    pub(crate) state: TenantState,
    pub(crate) enabled: HashSet<ScopeName>,
    /// The tenant's roles bound to each scope.
    pub(crate) bound: HashMap<ScopeName, BTreeSet<RoleName>>,
}

/// A user's facts; `None` in the cache when no such user exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserFacts {
    pub(crate) state: UserState,
    pub(crate) platform_roles: BTreeSet<PlatformRole>,
}

/// What one read of `authorize_facts` returned, besides the heads and the session: the
/// parts it was asked for. `None` where it was not asked; `Some(None)` where it was
/// asked and the database has none.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    pub(crate) tenant: Option<Option<TenantFacts>>,
    /// The tenant's key with the token's hash.
    pub(crate) key: Option<Option<ApiKey>>,
    pub(crate) catalog: Option<HashMap<ScopeName, CatalogScope>>,
    pub(crate) users: HashMap<UserId, Option<UserFacts>>,
    pub(crate) accounts: HashMap<UserId, Option<AccountFacts>>,
}

/// What a request needs read, given what the cache holds with the reference heads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Needs {
    pub(crate) tenant: bool,
    pub(crate) key: bool,
    pub(crate) catalog: bool,
    pub(crate) users: Vec<UserId>,
    pub(crate) accounts: Vec<UserId>,
}

impl Needs {
    pub(crate) fn nothing(&self) -> bool {
        !self.tenant
            && !self.key
            && !self.catalog
            && self.users.is_empty()
            && self.accounts.is_empty()
    }

    /// Every part `query` reads (with the session's user, once known).
    pub(crate) fn everything(query: &SnapshotQuery, session_user: Option<UserId>) -> Self {
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
    scopes: HashMap<ScopeName, CatalogScope>,
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
    catalog: Option<Arc<Catalog>>,
    tenants: LruCache<TenantId, TenantEntry>,
    /// A number for every tenant ever kept (tenants are never deleted, and only tenants
    /// that exist are kept, so this grows with the database, not with requests).
    slots: HashMap<TenantId, u32>,
    keys: LruCache<String, (Head, ApiKey)>,
    users: LruCache<UserId, (Head, Option<UserFacts>)>,
    accounts: LruCache<(u32, UserId), (Head, Option<AccountFacts>)>,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct FactsCache {
    entries: Mutex<Entries>,
}

impl Default for FactsCache {
    fn default() -> Self {
        Self::new(Capacity::default())
    }
}

/// Where the parts of one assembly come from: a read just made, then the cache.
struct Source<'a> {
    entries: &'a mut Entries,
    parts: Option<&'a Parts>,
    heads: Heads,
    tenant: &'a TenantId,
}

impl Source<'_> {
    fn tenant(&mut self) -> Option<Option<(u32, Arc<TenantFacts>)>> {
        let slot = self.entries.slots.get(self.tenant).copied();
        if let Some(read) = self.parts.and_then(|parts| parts.tenant.as_ref()) {
            return Some(match (read, slot) {
                (Some(facts), Some(slot)) => Some((slot, Arc::new(facts.clone()))),
                // Not kept (no head): served from the read alone, with no accounts cached.
                (Some(facts), None) => Some((u32::MAX, Arc::new(facts.clone()))),
                (None, _) => None,
            });
        }
        let entry = self.entries.tenants.get(self.tenant)?;
        (entry.head == self.heads.tenant).then(|| Some((entry.slot, entry.facts.clone())))
    }

    fn catalog(&mut self) -> Option<Arc<Catalog>> {
        if let Some(scopes) = self.parts.and_then(|parts| parts.catalog.as_ref()) {
            return Some(Arc::new(Catalog {
                head: self.heads.platform,
                scopes: scopes.clone(),
            }));
        }
        self.entries
            .catalog
            .clone()
            .filter(|catalog| catalog.head == self.heads.platform)
    }

    fn user(&mut self, user: &UserId) -> Option<Option<UserFacts>> {
        if let Some(read) = self.parts.and_then(|parts| parts.users.get(user)) {
            return Some(read.clone());
        }
        let (head, facts) = self.entries.users.get(user)?;
        (*head == self.heads.platform).then(|| facts.clone())
    }

    fn account(&mut self, slot: u32, user: &UserId) -> Option<Option<AccountFacts>> {
        if let Some(read) = self.parts.and_then(|parts| parts.accounts.get(user)) {
            return Some(read.clone());
        }
        let (head, facts) = self.entries.accounts.get(&(slot, *user))?;
        (*head == self.heads.tenant).then(|| facts.clone())
    }

    fn key(&mut self, hash: &str) -> Option<Option<ApiKey>> {
        if let Some(read) = self.parts.and_then(|parts| parts.key.as_ref()) {
            return Some(read.clone());
        }
        let (head, key) = self.entries.keys.get(hash)?;
        (*head == self.heads.tenant && key.tenant == *self.tenant).then(|| Some(key.clone()))
    }
}

impl FactsCache {
    pub(crate) fn new(capacity: Capacity) -> Self {
        Self {
            entries: Mutex::new(Entries {
                catalog: None,
                tenants: LruCache::new(capacity.tenants),
                slots: HashMap::new(),
                keys: LruCache::new(capacity.tenants),
                users: LruCache::new(capacity.users),
                accounts: LruCache::new(capacity.accounts),
            }),
        }
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
    pub(crate) fn needs(
        &self,
        query: &SnapshotQuery,
        heads: Option<Heads>,
        session_user: Option<UserId>,
    ) -> Needs {
        let mut entries = self.lock();
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
        // Look the held parts up once more so the least-recently-used order sees them.
        if tenant_held {
            entries.tenants.promote(&query.tenant);
        }
        Needs {
            tenant: !tenant_held,
            key,
            catalog: !catalog_held,
            users,
            accounts,
        }
    }

    /// Keeps the parts one read returned with `heads`. `needs` is what was asked: users
    /// and accounts asked and not returned are kept as missing. Parts of a tenant that
    /// does not exist are not kept.
    pub(crate) fn keep(&self, query: &SnapshotQuery, heads: Heads, needs: &Needs, parts: &Parts) {
        let mut entries = self.lock();
        let entries = &mut *entries;
        if let Some(scopes) = &parts.catalog {
            let newer = entries
                .catalog
                .as_ref()
                .is_none_or(|catalog| !older(heads.platform, catalog.head));
            if newer {
                entries.catalog = Some(Arc::new(Catalog {
                    head: heads.platform,
                    scopes: scopes.clone(),
                }));
            }
        }
        for user in &needs.users {
            if entries
                .users
                .peek(user)
                .is_some_and(|(head, _)| older(heads.platform, *head))
            {
                continue;
            }
            let facts = parts.users.get(user).cloned().flatten();
            entries.users.put(*user, (heads.platform, facts));
        }
        if heads.tenant.is_none() {
            return;
        }
        if let Some(Some(facts)) = &parts.tenant {
            let next = u32::try_from(entries.slots.len()).unwrap_or(u32::MAX);
            let slot = *entries.slots.entry(query.tenant.clone()).or_insert(next);
            let replace = entries
                .tenants
                .peek(&query.tenant)
                .is_none_or(|entry| !older(heads.tenant, entry.head));
            if replace {
                entries.tenants.put(
                    query.tenant.clone(),
                    TenantEntry {
                        head: heads.tenant,
                        slot,
                        facts: Arc::new(facts.clone()),
                    },
                );
            }
        }
        if let Some(Some(key)) = &parts.key {
            let newer = entries
                .keys
                .peek(&query.token_hash)
                .is_none_or(|(head, _)| !older(heads.tenant, *head));
            if newer {
                entries
                    .keys
                    .put(query.token_hash.clone(), (heads.tenant, key.clone()));
            }
        }
        let Some(slot) = entries.slots.get(&query.tenant).copied() else {
            return;
        };
        for user in &needs.accounts {
            let held = entries.accounts.peek(&(slot, *user));
            if held.is_some_and(|(head, _)| older(heads.tenant, *head)) {
                continue;
            }
            let facts = parts.accounts.get(user).cloned().flatten();
            entries.accounts.put((slot, *user), (heads.tenant, facts));
        }
    }

    /// The snapshot of `query` at `heads` from `parts` (a read made with `heads`) and
    /// from the cache's parts read with the same heads; `None` when a part is missing.
    /// `session` is the session a probe or read found for a session token.
    pub(crate) fn assemble(
        &self,
        query: &SnapshotQuery,
        heads: Heads,
        session: Option<Session>,
        parts: Option<&Parts>,
    ) -> Option<AuthorizeSnapshot> {
        let mut entries = self.lock();
        let mut source = Source {
            entries: &mut entries,
            parts,
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
            Credential::ApiKey(key) => AuthzFacts {
                tenant_state: Some(tenant.state),
                subject: (key.revoked_at.is_none()).then(|| SubjectFacts::ApiKey {
                    key_id: key.id,
                    tenant: key.tenant.clone(),
                    scopes: key.scopes.clone(),
                }),
                account: None,
                scope: catalog.scopes.get(&query.caller_scope).cloned(),
                scope_enabled: tenant.enabled.contains(&query.caller_scope),
                bound_roles: BTreeSet::new(),
                target: None,
            },
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
/// scope are those the account holds among the tenant's roles bound to it.
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
    let bound_roles = match (&account, tenant.bound.get(scope)) {
        (Some(account), Some(bound)) => account.roles.intersection(bound).cloned().collect(),
        _ => BTreeSet::new(),
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
        scope: catalog.scopes.get(scope).cloned(),
        scope_enabled: tenant.enabled.contains(scope),
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

    fn catalog() -> HashMap<ScopeName, CatalogScope> {
        ["authz:check", "docs:read"]
            .into_iter()
            .map(|name| {
                (
                    scope(name),
                    CatalogScope {
                        name: scope(name),
                        description: name.to_owned(),
                        platform_only: false,
                        min_assurance: domain::ids::Assurance::Aal1,
                    },
                )
            })
            .collect()
    }

    /// A read of everything `query` needs: every user an active viewer, `docs:read`
    /// bound to `viewer`.
    fn read_all(query: &SnapshotQuery, key: &ApiKey) -> (Needs, Parts) {
        let needs = Needs::everything(query, None);
        let parts = Parts {
            tenant: Some(Some(TenantFacts {
                state: TenantState::Active,
                enabled: HashSet::from([scope("authz:check"), scope("docs:read")]),
                bound: HashMap::from([(scope("docs:read"), BTreeSet::from([role("viewer")]))]),
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
                    let facts = AccountFacts {
                        state: AccountState::Active,
                        roles: BTreeSet::from([role("viewer")]),
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
        cache.keep(&query, heads(3, 7), &needs, &parts);
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
        cache.keep(&query, heads(5, 5), &needs, &parts);
        cache.keep(&query, heads(4, 4), &needs, &parts);
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
        cache.keep(&first, heads(1, 1), &needs, &parts);
        assert!(cache.assemble(&first, heads(1, 1), None, None).is_some());
        // Nine more users pass through a bound of four.
        for user in &everyone[1..] {
            let query = query(&[*user]);
            let needs = cache.needs(&query, Some(heads(1, 1)), None);
            assert_eq!(needs.users, vec![*user]);
            let (_, parts) = read_all(&query, &key);
            cache.keep(&query, heads(1, 1), &needs, &parts);
        }
        {
            let entries = cache.lock();
            assert!(entries.users.len() <= 4 && entries.accounts.len() <= 4);
        }
        // The first user was evicted: the cache cannot answer, and asks for them again.
        assert_eq!(cache.assemble(&first, heads(1, 1), None, None), None);
        let needs = cache.needs(&first, Some(heads(1, 1)), None);
        assert_eq!(needs.users, vec![everyone[0]]);
        assert_eq!(needs.accounts, vec![everyone[0]]);
        assert!(!needs.tenant && !needs.catalog && !needs.key);
        // The most recent ones are still served.
        assert!(cache
            .assemble(&query(&everyone[9..]), heads(1, 1), None, None)
            .is_some());
    }

    #[test]
    fn a_missing_tenant_and_a_missing_key_are_not_kept() {
        let cache = FactsCache::new(Capacity::default());
        let query = query(&users(1));
        let (needs, mut parts) = read_all(&query, &key());
        parts.tenant = Some(None);
        parts.key = Some(None);
        cache.keep(&query, heads(1, 1), &needs, &parts);
        let needs = cache.needs(&query, None, None);
        assert!(needs.tenant && needs.key);
        let snapshot = cache
            .assemble(&query, heads(1, 1), None, Some(&parts))
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
        cache.keep(&query, heads(2, 2), &needs, &parts);
        // The session's user was not read yet: not enough to answer.
        assert_eq!(
            cache.assemble(&query, heads(2, 2), Some(session.clone()), None),
            None
        );
        let needs = cache.needs(&query, Some(heads(2, 2)), Some(people[0]));
        assert_eq!(needs.users, vec![people[0]]);
        let (_, parts) = read_all(&self::query(&people[..1]), &key());
        cache.keep(&query, heads(2, 2), &needs, &parts);
        let snapshot = cache
            .assemble(&query, heads(2, 2), Some(session.clone()), None)
            .expect("held");
        assert_eq!(snapshot.credential, Some(Credential::Session(session)));
        assert!(snapshot.caller.and_then(|caller| caller.subject).is_some());
    }
}
