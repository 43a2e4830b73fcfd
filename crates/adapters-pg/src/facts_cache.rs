//! The authorize API's facts cache: what `authorize_snapshot` read, kept with the
//! partition heads it was read with, and served again only while a fresh read of those
//! heads finds them unchanged.
//!
//! Every change to what a decision reads is a mutation, and every mutation appends its
//! audit record and its event to its tenant's partition or to the platform's in the
//! same transaction (SPEC §3.3), moving that partition head's `audit_seq` and
//! `event_position`. So when the tenant's and the platform's heads, read by one
//! statement at the time of a request, equal the heads read by the statement that read
//! some facts, those facts are what the database holds at that time: the cache never
//! serves a stale allow (SPEC §3.1), and a change takes effect on the very next
//! decision, in every process sharing the database. A session is never cached (its idle
//! clock moves without a mutation): the probe reads it with the heads.
//!
//! Entries are grouped by tenant; an entry whose heads have moved is dropped whole at
//! the next read of that tenant. The cache holds at most [`MAX_ENTRIES`] facts and keys
//! and is emptied when a read would pass that (a simple bound, no eviction order).
//! Only tenants that exist and credentials that were found are kept, so requests with
//! made-up tenants or keys add nothing.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use domain::authz::AuthzFacts;
use domain::ids::{ScopeName, TenantId, UserId};
use domain::model::{ApiKey, Session, TenantState};
use domain::ports::{AuthorizeSnapshot, Credential, SnapshotQuery, SubjectRef};

/// Most facts and keys held, over all tenants.
pub(crate) const MAX_ENTRIES: usize = 50_000;

/// The heads of one read: `(audit_seq, event_position)` of the tenant's partition and of
/// the platform's, `None` where the partition has no head yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Heads {
    pub(crate) tenant: Option<(i64, i64)>,
    pub(crate) platform: Option<(i64, i64)>,
}

impl Heads {
    /// Whether these heads were read before `other` (heads only move forward), so facts
    /// read with them must not replace facts read with `other`.
    fn older_than(&self, other: &Self) -> bool {
        fn at_most(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> bool {
            match (a, b) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => a.0 <= b.0 && a.1 <= b.1,
            }
        }
        self != other
            && at_most(self.tenant, other.tenant)
            && at_most(self.platform, other.platform)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FactsKey {
    subject: SubjectRef,
    scope: ScopeName,
    target: Option<UserId>,
}

#[derive(Debug)]
struct TenantEntry {
    heads: Heads,
    state: TenantState,
    /// The tenant's API keys found so far, by the hash of their secret.
    keys: HashMap<String, ApiKey>,
    facts: HashMap<FactsKey, AuthzFacts>,
}

#[derive(Debug, Default)]
struct Entries {
    tenants: HashMap<TenantId, TenantEntry>,
    /// Facts and keys held, over all tenants.
    size: usize,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct FactsCache {
    entries: Mutex<Entries>,
}

fn caller_key(query: &SnapshotQuery, subject: SubjectRef) -> FactsKey {
    FactsKey {
        subject,
        scope: query.caller_scope.clone(),
        target: None,
    }
}

fn check_keys(query: &SnapshotQuery) -> impl Iterator<Item = FactsKey> + '_ {
    query.checks.iter().map(|check| FactsKey {
        subject: SubjectRef::User(check.user),
        scope: check.scope.clone(),
        target: check.target,
    })
}

impl FactsCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The entries are consistent after every statement, so a panic elsewhere while
        // the lock was held leaves nothing half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The heads the query's facts were read with, when the cache holds all of them
    /// (for a session, all but the caller's own, which depend on who the session is):
    /// then a probe of the heads decides whether [`FactsCache::answer`] may serve them.
    pub(crate) fn heads_for(&self, query: &SnapshotQuery) -> Option<Heads> {
        let entries = self.lock();
        let entry = entries.tenants.get(&query.tenant)?;
        if query.api_key {
            let key = entry.keys.get(&query.token_hash)?;
            if !entry
                .facts
                .contains_key(&caller_key(query, SubjectRef::ApiKey(key.id)))
            {
                return None;
            }
        }
        check_keys(query)
            .all(|key| entry.facts.contains_key(&key))
            .then_some(entry.heads)
    }

    /// The snapshot of `query` from the cache, when its facts were read with exactly
    /// `heads` — the heads just read — and it holds them all. `session` is the session
    /// the probe found for a session token (always `None` for an API key).
    pub(crate) fn answer(
        &self,
        query: &SnapshotQuery,
        heads: Heads,
        session: Option<Session>,
    ) -> Option<AuthorizeSnapshot> {
        let entries = self.lock();
        let entry = entries.tenants.get(&query.tenant)?;
        if entry.heads != heads {
            return None;
        }
        let credential = if query.api_key {
            Credential::ApiKey(entry.keys.get(&query.token_hash)?.clone())
        } else {
            Credential::Session(session?)
        };
        let caller = entry
            .facts
            .get(&caller_key(query, credential.subject()))?
            .clone();
        let checks = check_keys(query)
            .map(|key| entry.facts.get(&key).cloned())
            .collect::<Option<Vec<_>>>()?;
        Some(AuthorizeSnapshot {
            tenant: Some(entry.state),
            credential: Some(credential),
            caller: Some(caller),
            checks,
        })
    }

    /// Keeps what one `authorize_snapshot` statement read with `heads`. Nothing is kept
    /// for a missing tenant or credential, or when a newer read has been kept already.
    pub(crate) fn keep(&self, query: &SnapshotQuery, heads: Heads, snapshot: &AuthorizeSnapshot) {
        let (Some(state), Some(credential), Some(caller)) =
            (snapshot.tenant, &snapshot.credential, &snapshot.caller)
        else {
            return;
        };
        if snapshot.checks.len() != query.checks.len() {
            return;
        }
        let mut entries = self.lock();
        let added = 2 + query.checks.len();
        if entries.size + added > MAX_ENTRIES {
            entries.tenants.clear();
            entries.size = 0;
        }
        let Entries { tenants, size } = &mut *entries;
        let entry = tenants
            .entry(query.tenant.clone())
            .or_insert_with(|| TenantEntry {
                heads,
                state,
                keys: HashMap::new(),
                facts: HashMap::new(),
            });
        if entry.heads != heads {
            if heads.older_than(&entry.heads) {
                return;
            }
            *size -= entry.keys.len() + entry.facts.len();
            *entry = TenantEntry {
                heads,
                state,
                keys: HashMap::new(),
                facts: HashMap::new(),
            };
        }
        let before = entry.keys.len() + entry.facts.len();
        if let Credential::ApiKey(key) = credential {
            entry.keys.insert(query.token_hash.clone(), key.clone());
        }
        entry
            .facts
            .insert(caller_key(query, credential.subject()), caller.clone());
        for (key, facts) in check_keys(query).zip(&snapshot.checks) {
            entry.facts.insert(key, facts.clone());
        }
        *size += entry.keys.len() + entry.facts.len() - before;
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "tests")]
mod tests {
    use std::collections::BTreeSet;

    use std::sync::atomic::{AtomicU64, Ordering};

    use domain::ids::{DisplayName, KeyId};
    use domain::ports::CheckFactsQuery;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    fn fresh() -> Uuid {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Uuid::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    fn new_user() -> UserId {
        UserId::from_generated(fresh())
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("tenant")
    }

    fn facts(scope_enabled: bool) -> AuthzFacts {
        AuthzFacts {
            tenant_state: Some(TenantState::Active),
            subject: None,
            account: None,
            scope: None,
            scope_enabled,
            bound_roles: BTreeSet::new(),
            target: None,
        }
    }

    fn key() -> ApiKey {
        ApiKey {
            id: KeyId::from_generated(fresh()),
            tenant: tenant(),
            name: DisplayName::parse("k").expect("name"),
            scopes: BTreeSet::new(),
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
            caller_scope: ScopeName::parse("authz:check").expect("scope"),
            checks: users
                .iter()
                .map(|user| CheckFactsQuery {
                    user: *user,
                    scope: ScopeName::parse("tenant:read").expect("scope"),
                    target: None,
                })
                .collect(),
        }
    }

    fn snapshot(checks: usize, enabled: bool) -> AuthorizeSnapshot {
        AuthorizeSnapshot {
            tenant: Some(TenantState::Active),
            credential: Some(Credential::ApiKey(key())),
            caller: Some(facts(true)),
            checks: vec![facts(enabled); checks],
        }
    }

    fn heads(tenant: i64, platform: i64) -> Heads {
        Heads {
            tenant: Some((tenant, tenant)),
            platform: Some((platform, platform)),
        }
    }

    #[test]
    fn facts_are_served_only_with_the_heads_they_were_read_with() {
        let cache = FactsCache::default();
        let user = new_user();
        let query = query(&[user]);
        assert_eq!(cache.heads_for(&query), None);
        let kept = snapshot(1, true);
        cache.keep(&query, heads(3, 7), &kept);
        assert_eq!(cache.heads_for(&query), Some(heads(3, 7)));
        assert_eq!(cache.answer(&query, heads(3, 7), None), Some(kept));
        // Either head moving is a miss.
        assert_eq!(cache.answer(&query, heads(4, 7), None), None);
        assert_eq!(cache.answer(&query, heads(3, 8), None), None);
        // Another check, another key or another tenant is not held.
        assert_eq!(cache.heads_for(&self::query(&[new_user()])), None);
        let mut other_key = query.clone();
        other_key.token_hash = "other".to_owned();
        assert_eq!(cache.heads_for(&other_key), None);
        let mut other_tenant = query.clone();
        other_tenant.tenant = TenantId::parse("globex").expect("tenant");
        assert_eq!(cache.heads_for(&other_tenant), None);
    }

    #[test]
    fn newer_reads_replace_a_tenants_facts_and_older_ones_do_not() {
        let cache = FactsCache::default();
        let (first, second) = (new_user(), new_user());
        cache.keep(&query(&[first]), heads(3, 7), &snapshot(1, true));
        let newer = snapshot(1, false);
        cache.keep(&query(&[second]), heads(4, 7), &newer);
        // The newer read dropped everything read with the old heads.
        assert_eq!(cache.heads_for(&query(&[first])), None);
        assert_eq!(
            cache.answer(&query(&[second]), heads(4, 7), None),
            Some(newer.clone())
        );
        // A read that finished late, with older heads, is not kept.
        cache.keep(&query(&[first]), heads(3, 7), &snapshot(1, true));
        assert_eq!(cache.heads_for(&query(&[first])), None);
        assert_eq!(cache.heads_for(&query(&[second])), Some(heads(4, 7)));
        assert_eq!(cache.lock().size, 3);
    }

    #[test]
    fn missing_tenants_and_credentials_are_not_kept_and_the_size_is_bounded() {
        let cache = FactsCache::default();
        let user = new_user();
        let mut missing = snapshot(1, true);
        missing.tenant = None;
        cache.keep(&query(&[user]), heads(1, 1), &missing);
        let mut unknown = snapshot(1, true);
        unknown.credential = None;
        unknown.caller = None;
        cache.keep(&query(&[user]), heads(1, 1), &unknown);
        assert_eq!(cache.heads_for(&query(&[user])), None);
        assert_eq!(cache.lock().size, 0);
        for _ in 0..(MAX_ENTRIES / 50 + 10) {
            let users: Vec<UserId> = (0..48).map(|_| new_user()).collect();
            cache.keep(&query(&users), heads(1, 1), &snapshot(48, true));
            assert!(cache.lock().size <= MAX_ENTRIES);
        }
    }

    #[test]
    fn a_session_callers_facts_are_served_with_the_probed_session_only() {
        let cache = FactsCache::default();
        let user = new_user();
        let mut query = query(&[user]);
        query.api_key = false;
        let session = Session {
            token_hash: "hash".to_owned(),
            user_id: user,
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            last_seen_at: OffsetDateTime::UNIX_EPOCH,
            aal2_until: None,
        };
        let kept = AuthorizeSnapshot {
            tenant: Some(TenantState::Active),
            credential: Some(Credential::Session(session.clone())),
            caller: Some(facts(true)),
            checks: vec![facts(true)],
        };
        cache.keep(&query, heads(2, 2), &kept);
        assert_eq!(cache.heads_for(&query), Some(heads(2, 2)));
        assert_eq!(cache.answer(&query, heads(2, 2), None), None);
        assert_eq!(
            cache.answer(&query, heads(2, 2), Some(session.clone())),
            Some(kept)
        );
        let other = Session {
            user_id: new_user(),
            ..session
        };
        assert_eq!(cache.answer(&query, heads(2, 2), Some(other)), None);
    }
}
