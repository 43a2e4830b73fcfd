//! `bench decide`: the authorize API's decision in process, with no database and no HTTP:
//! the facts of each request assembled by the PostgreSQL store's facts cache (the
//! `adapters_pg::facts_cache` the store itself uses, filled as its reads fill it) and
//! decided by `domain::authz`, as `Engine::authorize_fast` does for one check: the
//! caller's verdict, then the check's decision with its facts.
//!
//! The dataset is one seeded tenant's (`seed.rs`: the default enabled scopes and
//! bindings plus `viewer`, `editor`, `billing`; members with the seed's roles) with
//! `--members` accounts (default 100,000); questions are random members and random
//! scopes among every catalog scope. Reported, in ns per decision: the median and p99 of
//! facts + decision (one request of one check), of the decision alone over facts built
//! beforehand (the baseline the facts cost is measured against), and the mean per check
//! of batches of 100 checks.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use adapters_pg::facts_cache::{
    AccountRead, Capacity, FactsCache, Heads, Kept, Needs, Parts, TenantRead, UserFacts,
};
use domain::authz::{decide, verdict, AuthzFacts, AuthzRequest};
use domain::catalog::default_catalog;
use domain::ids::{Assurance, DisplayName, KeyId, RoleName, ScopeName, TenantId, UserId};
use domain::model::{AccountState, ApiKey, CatalogScope, TenantState, UserState};
use domain::ports::{AuthorizeSnapshot, CheckFactsQuery, SnapshotQuery};
use time::OffsetDateTime;

use crate::seed::{member_roles, tenant_setup, user_id, APP_SCOPES};
use crate::Failure;

/// Questions asked per measured pass, and how many differently drawn questions there are.
const QUESTIONS: usize = 200_000;
/// Users (and accounts) kept per `keep` call while filling.
const FILL_CHUNK: usize = 10_000;

/// A small deterministic generator (xorshift64*): the same questions on every run.
struct Draw(u64);

impl Draw {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        usize::try_from(value % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

fn parse<T, E: std::fmt::Display>(
    value: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, Failure> {
    parse(value).map_err(|error| format!("{value}: {error}").into())
}

/// Nanoseconds at quantile `q` of sorted `samples`.
fn quantile(samples: &[u64], q: f64) -> u64 {
    let last = samples.len().saturating_sub(1);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a sample of at most millions"
    )]
    let index = ((last as f64) * q).round() as usize;
    samples.get(index.min(last)).copied().unwrap_or(0)
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

struct Setup {
    cache: FactsCache,
    caller_scope: ScopeName,
    heads: Heads,
    tenant: TenantId,
    members: Vec<UserId>,
    scopes: Vec<ScopeName>,
}

/// A cache holding the tenant, its key, the catalog and every member, as reads at one
/// pair of heads leave it.
fn fill(members: usize) -> Result<Setup, Failure> {
    let tenant = parse("seed-00000", TenantId::parse)?;
    let (enabled, bindings) = tenant_setup();
    let mut catalog = default_catalog();
    for (name, description, assurance) in APP_SCOPES {
        catalog.push(CatalogScope {
            name: parse(name, ScopeName::parse)?,
            description: description.to_owned(),
            platform_only: false,
            min_assurance: parse(assurance, Assurance::parse)?,
        });
    }
    let read = TenantRead {
        state: TenantState::Active,
        enabled: enabled
            .iter()
            .map(|scope| parse(scope, ScopeName::parse))
            .collect::<Result<_, _>>()?,
        bindings: bindings
            .iter()
            .flat_map(|(role, scopes)| scopes.iter().map(move |scope| (role, scope)))
            .map(|(role, scope)| {
                Ok((
                    parse(role, RoleName::parse)?,
                    parse(scope, ScopeName::parse)?,
                ))
            })
            .collect::<Result<_, Failure>>()?,
    };
    let caller_scope = parse(domain::catalog::scopes::AUTHZ_CHECK, ScopeName::parse)?;
    let key = ApiKey {
        id: KeyId::from_generated(uuid::Uuid::from_u128(1)),
        tenant: tenant.clone(),
        name: parse("bench", DisplayName::parse)?,
        scopes: BTreeSet::from([caller_scope.clone()]),
        created_by: None,
        created_at: OffsetDateTime::UNIX_EPOCH,
        revoked_at: None,
    };
    let heads = Heads {
        tenant: Some((7, 7)),
        platform: Some((3, 3)),
    };
    let capacity =
        Capacity::entries(NonZeroUsize::new(members.max(1)).unwrap_or(NonZeroUsize::MIN));
    let cache = FactsCache::new(capacity);
    let members: Vec<UserId> = (0..members as u64).map(user_id).collect();
    let scopes: Vec<ScopeName> = catalog.iter().map(|scope| scope.name.clone()).collect();
    for (index, chunk) in members.chunks(FILL_CHUNK).enumerate() {
        let first = index == 0;
        let query = query(
            &tenant,
            &caller_scope,
            chunk.iter().map(|user| (*user, caller_scope.clone())),
        );
        let mut parts = Parts {
            tenant: first.then(|| Some(read.clone())),
            key: first.then(|| Some(key.clone())),
            catalog: first.then(|| catalog.clone()),
            ..Parts::default()
        };
        for (offset, user) in chunk.iter().enumerate() {
            let number = (index * FILL_CHUNK + offset) as u64;
            let (roles, suspended) = member_roles(number);
            parts.users.insert(
                *user,
                Some(UserFacts {
                    state: UserState::Active,
                    platform_roles: BTreeSet::new(),
                }),
            );
            parts.accounts.insert(
                *user,
                Some(AccountRead {
                    state: if suspended {
                        AccountState::Suspended
                    } else {
                        AccountState::Active
                    },
                    roles: roles
                        .iter()
                        .map(|role| parse(role, RoleName::parse))
                        .collect::<Result<_, _>>()?,
                }),
            );
        }
        let needs = Needs {
            tenant: first,
            key: first,
            catalog: first,
            users: chunk.to_vec(),
            accounts: chunk.to_vec(),
        };
        let _: Kept = cache.keep(&query, heads, &needs, parts);
    }
    Ok(Setup {
        cache,
        caller_scope,
        heads,
        tenant,
        members,
        scopes,
    })
}

fn query(
    tenant: &TenantId,
    caller_scope: &ScopeName,
    checks: impl Iterator<Item = (UserId, ScopeName)>,
) -> SnapshotQuery {
    SnapshotQuery {
        tenant: tenant.clone(),
        token_hash: "bench key hash".to_owned(),
        api_key: true,
        caller_scope: caller_scope.clone(),
        checks: checks
            .map(|(user, scope)| CheckFactsQuery {
                user,
                scope,
                target: None,
            })
            .collect(),
    }
}

fn request(tenant: &TenantId, scope: &ScopeName) -> AuthzRequest {
    AuthzRequest {
        tenant: Some(tenant.clone()),
        scope: scope.clone(),
        assurance: Assurance::Aal1,
        target: None,
        self_service: false,
    }
}

/// The caller's verdict and every check's decision, as `authorize_fast` takes them.
fn decide_snapshot(setup: &Setup, query: &SnapshotQuery, snapshot: &AuthorizeSnapshot) -> usize {
    let caller_allowed = snapshot.caller.as_ref().is_some_and(|caller| {
        verdict(caller, &request(&setup.tenant, &query.caller_scope)).allowed
    });
    let mut allowed = usize::from(caller_allowed);
    for (check, facts) in query.checks.iter().zip(&snapshot.checks) {
        allowed += usize::from(decide(facts, &request(&setup.tenant, &check.scope)).allowed);
    }
    allowed
}

pub async fn run(args: &[String]) -> Result<(), Failure> {
    let members = args
        .windows(2)
        .find(|pair| pair.first().is_some_and(|flag| flag == "--members"))
        .and_then(|pair| pair.get(1))
        .map_or(Ok(100_000), |count| count.parse::<usize>())?;
    let started = Instant::now();
    let setup = fill(members)?;
    println!(
        "bench decide: one tenant, {members} members held in the facts cache (filled in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
    let questions: Vec<SnapshotQuery> = (0..QUESTIONS)
        .filter_map(|_| {
            let user = *setup.members.get(draw.below(setup.members.len()))?;
            let scope = setup.scopes.get(draw.below(setup.scopes.len()))?.clone();
            Some(query(
                &setup.tenant,
                &setup.caller_scope,
                std::iter::once((user, scope)),
            ))
        })
        .collect();
    let mut allowed = 0usize;

    // Facts assembled and decided, one request of one check at a time.
    let mut with_facts = Vec::with_capacity(QUESTIONS);
    for question in &questions {
        let at = Instant::now();
        let snapshot = setup
            .cache
            .assemble(question, setup.heads, None, None)
            .ok_or("the cache holds every part")?;
        allowed += decide_snapshot(&setup, question, &snapshot);
        with_facts.push(elapsed_ns(at));
    }

    // The decision alone, over the same facts built beforehand.
    let built: Vec<(AuthzFacts, AuthzRequest)> = questions
        .iter()
        .filter_map(|question| {
            let snapshot = setup.cache.assemble(question, setup.heads, None, None)?;
            let check = question.checks.first()?;
            Some((
                snapshot.checks.into_iter().next()?,
                request(&setup.tenant, &check.scope),
            ))
        })
        .collect();
    let mut alone = Vec::with_capacity(built.len());
    for (facts, request) in &built {
        let at = Instant::now();
        allowed += usize::from(decide(facts, request).allowed);
        alone.push(elapsed_ns(at));
    }

    // Batches of 100 checks, as the batch route sends them.
    let batches: Vec<SnapshotQuery> = questions
        .chunks(100)
        .map(|chunk| {
            query(
                &setup.tenant,
                &setup.caller_scope,
                chunk
                    .iter()
                    .filter_map(|question| question.checks.first())
                    .map(|check| (check.user, check.scope.clone())),
            )
        })
        .collect();
    let at = Instant::now();
    for batch in &batches {
        let snapshot = setup
            .cache
            .assemble(batch, setup.heads, None, None)
            .ok_or("the cache holds every part")?;
        allowed += decide_snapshot(&setup, batch, &snapshot);
    }
    let batch_time = at.elapsed();

    with_facts.sort_unstable();
    alone.sort_unstable();
    println!("  (allowed {allowed} of the decisions, so none was optimised away)");
    println!(
        "  facts + decision (1 check): median {} ns, p99 {} ns",
        quantile(&with_facts, 0.5),
        quantile(&with_facts, 0.99)
    );
    println!(
        "  decision alone (baseline): median {} ns, p99 {} ns",
        quantile(&alone, 0.5),
        quantile(&alone, 0.99)
    );
    println!(
        "  batches of 100: {:.0} ns per check (facts + decision)",
        per_check(batch_time, QUESTIONS)
    );
    Ok(())
}

fn per_check(time: Duration, checks: usize) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "a count of at most millions")]
    let checks = checks.max(1) as f64;
    time.as_secs_f64() * 1e9 / checks
}
