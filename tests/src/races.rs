//! Races every store must survive, shared by the behaviour suite and the per-store
//! tests: the last-admin invariant under racing demotions, suspensions and removals, and
//! gapless audit sequences and feed positions under concurrent writers in one tenant.
//! They spawn tokio tasks, so they run on a multi-threaded runtime (`crate::pg::run`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use domain::audit::{AuditRecord, Outcome, Partition};
use domain::event::types;
use domain::ids::{TenantId, UserId};
use domain::model::{AccountState, Member};
use domain::usecases::{AddMember, Caller, MemberChange, UserRef};
use domain::Error;
use tokio::sync::Barrier;

use crate::behaviour::{tenant_feed, tenant_trail};
use crate::harness::{email, roles, user_of, Harness};

/// A deterministic, well-mixed pseudo-random number for a seed (splitmix64), so every
/// run makes the same choices and a failure can be replayed.
pub fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The same caller with a request id of its own, so its audit records can be found.
pub fn with_request_id(caller: &Caller, request_id: String) -> Caller {
    Caller {
        principal: caller.principal.clone(),
        request_id,
    }
}

/// Every member of a tenant, read by a platform root (one page is enough here).
pub async fn all_members(h: &Harness, root: &Caller, tenant: &TenantId) -> Vec<Member> {
    let page = h
        .engine
        .list_members(root, tenant, None, 200)
        .await
        .expect("root lists the members");
    assert!(
        page.next_cursor.is_none(),
        "fewer than 200 members expected"
    );
    page.items
}

/// Positions or sequence numbers must be exactly 1..=n, in order.
pub fn assert_gapless(what: &str, numbers: &[u64]) {
    let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert_eq!(
        numbers,
        expected.as_slice(),
        "{what} must be 1..=n without gaps"
    );
}

pub fn count_type(events: &[domain::event::Event], event_type: &str) -> usize {
    events
        .iter()
        .filter(|event| event.event_type == event_type)
        .count()
}

// ---------------------------------------------------------------------------------------
// 1. The last admin under concurrency
// ---------------------------------------------------------------------------------------

/// What one racing task tries to do to its admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// `update_member` with roles {member}.
    Demote,
    /// `update_member` with state suspended.
    Suspend,
    /// `remove_member`.
    Remove,
}

#[derive(Debug)]
struct Attempt {
    request_id: String,
    target: UserId,
    attack: Attack,
    result: Result<(), Error>,
}

/// One admin as the model sees it while replaying the successful attempts in commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModelAdmin {
    present: bool,
    admin_role: bool,
    active: bool,
}

impl ModelAdmin {
    fn is_active_admin(self) -> bool {
        self.present && self.admin_role && self.active
    }
}

const RACING_TASKS: u64 = 50;
pub const RACE_ROUNDS: u64 = 3;

/// Runs one round: a fresh tenant with three active admins (and two plain members),
/// fifty tasks attacking them at once, then every check of the round.
pub async fn race_round(h: &Harness, root: &Caller, round: u64) {
    let id = format!("race-{round}");
    let (tenant, first_admin) = h.tenant(root, &id).await;
    let second = h
        .member(
            root,
            root,
            &tenant,
            &format!("second@{id}.example"),
            &["tenant_admin"],
        )
        .await;
    let third = h
        .member(
            root,
            root,
            &tenant,
            &format!("third@{id}.example"),
            &["tenant_admin"],
        )
        .await;
    for plain in 0..2 {
        h.member(
            root,
            root,
            &tenant,
            &format!("m{plain}@{id}.example"),
            &["member"],
        )
        .await;
    }
    let admins = [user_of(&first_admin), user_of(&second), user_of(&third)];
    let before = all_members(h, root, &tenant).await;
    assert_eq!(
        before
            .iter()
            .filter(|member| member.is_active_admin())
            .count(),
        3,
        "round {round} starts with three active admins"
    );
    let feed_before = tenant_feed(h, root, &tenant).await.len();

    // Every task waits at the barrier, so all fifty ask for a connection at once and the
    // pool of eight keeps several of them inside the invariant check together.
    let barrier = Arc::new(Barrier::new(RACING_TASKS as usize));
    let mut handles = Vec::new();
    for index in 0..RACING_TASKS {
        // Each admin is attacked by a third of the tasks, so every admin is attacked.
        let target = admins[(index % 3) as usize];
        let attack = match mix(round * 1_000 + index) % 3 {
            0 => Attack::Demote,
            1 => Attack::Suspend,
            _ => Attack::Remove,
        };
        let request_id = format!("race-{round}-{index}");
        let caller = with_request_id(root, request_id.clone());
        let engine = h.engine.clone();
        let tenant = tenant.clone();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let result = match attack {
                Attack::Demote => engine
                    .update_member(
                        &caller,
                        &tenant,
                        &target,
                        MemberChange {
                            roles: Some(roles(&["member"])),
                            ..MemberChange::default()
                        },
                    )
                    .await
                    .map(|_| ()),
                Attack::Suspend => engine
                    .update_member(
                        &caller,
                        &tenant,
                        &target,
                        MemberChange {
                            state: Some(AccountState::Suspended),
                            ..MemberChange::default()
                        },
                    )
                    .await
                    .map(|_| ()),
                Attack::Remove => engine.remove_member(&caller, &tenant, &target, None).await,
            };
            Attempt {
                request_id,
                target,
                attack,
                result,
            }
        }));
    }
    let mut attempts = Vec::new();
    for handle in handles {
        attempts.push(handle.await.expect("a racing task ran to the end"));
    }

    // Only two refusals are legitimate: the last admin, and a target already removed.
    // Anything else (a store error above all: a deadlock, a serialization failure, a
    // pool timeout) is a bug.
    for attempt in &attempts {
        match &attempt.result {
            Ok(()) | Err(Error::LastTenantAdmin | Error::MemberNotFound) => {}
            Err(other) => panic!(
                "round {round}: {} ({:?} of {}) failed with {other:?}",
                attempt.request_id, attempt.attack, attempt.target
            ),
        }
    }

    // The invariant: at least one active admin remains. Every admin was attacked, and
    // an attack on an active admin succeeds unless it is the last, so exactly one is left.
    let after = all_members(h, root, &tenant).await;
    let survivors: Vec<UserId> = after
        .iter()
        .filter(|member| member.is_active_admin())
        .map(|member| member.user_id)
        .collect();
    assert!(
        !survivors.is_empty(),
        "round {round}: the tenant lost its last active admin"
    );
    assert_eq!(
        survivors.len(),
        1,
        "round {round}: every admin was attacked, so exactly one active admin remains"
    );
    let survivor = survivors[0];
    for attempt in &attempts {
        let refused_as_last = matches!(attempt.result, Err(Error::LastTenantAdmin));
        assert_eq!(
            refused_as_last,
            attempt.target == survivor,
            "round {round}: {} ({:?}): last_tenant_admin is the answer for, and only for, \
             every attack on the admin that survived; got {:?}",
            attempt.request_id,
            attempt.attack,
            attempt.result
        );
    }

    // Replay the successes in commit order (their audit seq) on a model of the three
    // admins: each must have been legal when it committed, exactly two of them took an
    // active admin away, and the model ends where the database ends.
    let trail = tenant_trail(h, root, &tenant).await;
    let records_of = |request_id: &str, outcome: Outcome| -> Vec<&AuditRecord> {
        trail
            .iter()
            .filter(|record| record.request_id == request_id && record.outcome == outcome)
            .collect()
    };
    let mut committed: Vec<(u64, &Attempt)> = Vec::new();
    let mut refused: Vec<(u64, &Attempt)> = Vec::new();
    for attempt in &attempts {
        let allowed = records_of(&attempt.request_id, Outcome::Allowed);
        let denied = records_of(&attempt.request_id, Outcome::Denied);
        match &attempt.result {
            Ok(()) => {
                assert_eq!(
                    allowed.len(),
                    1,
                    "{} commits one record",
                    attempt.request_id
                );
                assert!(denied.is_empty(), "{} is not denied", attempt.request_id);
                committed.push((allowed[0].seq, attempt));
            }
            Err(error) => {
                assert!(allowed.is_empty(), "{} commits nothing", attempt.request_id);
                assert_eq!(
                    denied.len(),
                    1,
                    "{} leaves one denied record",
                    attempt.request_id
                );
                assert_eq!(denied[0].reason, error.code(), "{}", attempt.request_id);
                refused.push((denied[0].seq, attempt));
            }
        }
    }
    committed.sort_by_key(|(seq, _)| *seq);
    let mut model: BTreeMap<UserId, ModelAdmin> = admins
        .iter()
        .map(|admin| {
            (
                *admin,
                ModelAdmin {
                    present: true,
                    admin_role: true,
                    active: true,
                },
            )
        })
        .collect();
    let mut reductions = 0;
    let mut last_reduction_seq = 0;
    let mut removed_at: BTreeMap<UserId, u64> = BTreeMap::new();
    let mut expected_events: BTreeMap<&str, usize> = BTreeMap::new();
    for (seq, attempt) in &committed {
        let active_admins = model
            .values()
            .filter(|admin| admin.is_active_admin())
            .count();
        let state = model[&attempt.target];
        assert!(
            state.present,
            "round {round}: {} succeeded on a member removed earlier",
            attempt.request_id
        );
        if state.is_active_admin() {
            assert!(
                active_admins >= 2,
                "round {round}: {} ({:?}) took away the last active admin (seq {seq})",
                attempt.request_id,
                attempt.attack
            );
            reductions += 1;
            last_reduction_seq = *seq;
        }
        let next = match attempt.attack {
            Attack::Demote => ModelAdmin {
                admin_role: false,
                ..state
            },
            Attack::Suspend => ModelAdmin {
                active: false,
                ..state
            },
            Attack::Remove => {
                removed_at.insert(attempt.target, *seq);
                ModelAdmin {
                    present: false,
                    ..state
                }
            }
        };
        let event_type = match attempt.attack {
            Attack::Demote => types::MEMBERSHIP_ROLES_CHANGED,
            Attack::Suspend => types::ACCOUNT_STATE_CHANGED,
            Attack::Remove => types::MEMBERSHIP_REMOVED,
        };
        if next != state {
            *expected_events.entry(event_type).or_default() += 1;
        }
        model.insert(attempt.target, next);
    }
    assert_eq!(
        reductions, 2,
        "round {round}: exactly two successes reduced the active admins from three to one"
    );
    for (seq, attempt) in &refused {
        match attempt.result {
            // The refusal read the state after the second reduction had committed.
            Err(Error::LastTenantAdmin) => assert!(
                *seq > last_reduction_seq,
                "round {round}: {} was refused as last admin before two admins were gone",
                attempt.request_id
            ),
            // The refusal read the state after the target's removal had committed.
            Err(Error::MemberNotFound) => assert!(
                removed_at
                    .get(&attempt.target)
                    .is_some_and(|removed| removed < seq),
                "round {round}: {} found no member that no committed removal had removed",
                attempt.request_id
            ),
            _ => unreachable!("only the two legitimate refusals are left"),
        }
    }
    for admin in &admins {
        let expected = model[admin];
        let actual = after.iter().find(|member| member.user_id == *admin);
        assert_eq!(
            actual.is_some(),
            expected.present,
            "round {round}: admin {admin} present"
        );
        if let Some(member) = actual {
            assert_eq!(
                member.roles.iter().any(|role| role.is_tenant_admin()),
                expected.admin_role,
                "round {round}: admin {admin} keeps tenant_admin"
            );
            assert_eq!(
                member.state == AccountState::Active,
                expected.active,
                "round {round}: admin {admin} active"
            );
        }
    }
    // One event per effective change, none for changes that changed nothing.
    let feed = tenant_feed(h, root, &tenant).await;
    let new_events = &feed[feed_before..];
    for event_type in [
        types::MEMBERSHIP_ROLES_CHANGED,
        types::ACCOUNT_STATE_CHANGED,
        types::MEMBERSHIP_REMOVED,
    ] {
        assert_eq!(
            count_type(new_events, event_type),
            expected_events.get(event_type).copied().unwrap_or(0),
            "round {round}: {event_type} events"
        );
    }
    assert_eq!(
        new_events.len(),
        expected_events.values().sum::<usize>(),
        "round {round}: no other events"
    );
    let positions: Vec<u64> = feed.iter().map(|event| event.position).collect();
    assert_gapless("feed positions", &positions);
    assert_eq!(
        h.engine
            .verify_trail(&Partition::Tenant(tenant.clone()))
            .await,
        Ok(Ok(trail.len() as u64)),
        "round {round}: the audit chain verifies"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Concurrent writers in one tenant
// ---------------------------------------------------------------------------------------

const WRITERS: usize = 8;
const ADDS_PER_WRITER: usize = 15;

#[derive(Debug, Default)]
struct Tally {
    adds: usize,
    updates: usize,
    effective_role_changes: usize,
}

/// One writer: adds new emails as members and changes some of their roles, one request
/// after another; some changes are effective (a tenant_admin grant), some change nothing.
async fn write_members(
    h: Harness,
    admin: Caller,
    tenant: TenantId,
    writer: usize,
    barrier: Arc<Barrier>,
) -> Result<Tally, String> {
    barrier.wait().await;
    let mut tally = Tally::default();
    for index in 0..ADDS_PER_WRITER {
        let caller = with_request_id(&admin, format!("writer-{writer}-add-{index}"));
        let address = format!("w{writer}-m{index}@{tenant}.example");
        let added = h
            .engine
            .add_member(
                &caller,
                &tenant,
                AddMember {
                    user: UserRef::Email(email(&address)),
                    roles: BTreeSet::new(),
                },
            )
            .await
            .map_err(|error| format!("adding {address}: {error:?}"))?;
        tally.adds += 1;
        let user = added.member.user_id;
        let change = if index % 3 == 0 {
            Some((roles(&["member", "tenant_admin"]), true))
        } else if index % 5 == 1 {
            Some((roles(&["member"]), false))
        } else {
            None
        };
        if let Some((new_roles, effective)) = change {
            let caller = with_request_id(&admin, format!("writer-{writer}-roles-{index}"));
            let updated = h
                .engine
                .update_member(
                    &caller,
                    &tenant,
                    &user,
                    MemberChange {
                        roles: Some(new_roles.clone()),
                        ..MemberChange::default()
                    },
                )
                .await
                .map_err(|error| format!("changing the roles of {address}: {error:?}"))?;
            if updated.roles != new_roles {
                return Err(format!("{address} has roles {:?}", updated.roles));
            }
            tally.updates += 1;
            if effective {
                tally.effective_role_changes += 1;
            }
        }
    }
    Ok(tally)
}

/// Eight writers add members to one new tenant `busy` at once and change some of their
/// roles; then the tenant's trail, feed and members are checked. Returns the number of
/// members added (each a new user, so one `user.created` each in the platform feed).
pub async fn concurrent_writers(h: &Harness) -> usize {
    let h = h.clone();
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "busy").await;
    let trail_before = tenant_trail(&h, &root, &tenant).await.len();

    let barrier = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|writer| {
            tokio::spawn(write_members(
                h.clone(),
                admin.clone(),
                tenant.clone(),
                writer,
                barrier.clone(),
            ))
        })
        .collect();
    let mut total = Tally::default();
    for handle in handles {
        let tally = handle
            .await
            .expect("a writer ran to the end")
            .unwrap_or_else(|failure| panic!("a writer failed: {failure}"));
        total.adds += tally.adds;
        total.updates += tally.updates;
        total.effective_role_changes += tally.effective_role_changes;
    }
    assert_eq!(total.adds, WRITERS * ADDS_PER_WRITER);

    // The trail: every committed request has its record, seq 1..=n, and the chain holds.
    let trail = tenant_trail(&h, &root, &tenant).await;
    let seqs: Vec<u64> = trail.iter().map(|record| record.seq).collect();
    assert_gapless("audit seqs", &seqs);
    assert_eq!(
        trail.len(),
        trail_before + total.adds + total.updates,
        "one audit record per committed add and role change"
    );
    assert!(trail
        .iter()
        .all(|record| record.outcome == Outcome::Allowed));
    assert_eq!(
        h.engine
            .verify_trail(&Partition::Tenant(tenant.clone()))
            .await,
        Ok(Ok(trail.len() as u64)),
        "the audit chain verifies over every record"
    );

    // The feed: positions 1..=m, one event per membership change that changed something.
    let feed = tenant_feed(&h, &root, &tenant).await;
    let positions: Vec<u64> = feed.iter().map(|event| event.position).collect();
    assert_gapless("feed positions", &positions);
    assert_eq!(count_type(&feed, types::TENANT_CREATED), 1);
    assert_eq!(
        count_type(&feed, types::MEMBERSHIP_ADDED),
        1 + total.adds,
        "the first admin and every add"
    );
    assert_eq!(
        count_type(&feed, types::MEMBERSHIP_ROLES_CHANGED),
        total.effective_role_changes,
        "every effective role change and no other"
    );
    assert_eq!(
        feed.len(),
        2 + total.adds + total.effective_role_changes,
        "tenant.created, the first admin, every add and every effective role change"
    );

    let members = all_members(&h, &root, &tenant).await;
    assert_eq!(members.len(), 1 + total.adds);
    assert_eq!(
        members
            .iter()
            .filter(|member| member.is_active_admin())
            .count(),
        1 + total.effective_role_changes
    );
    total.adds
}
