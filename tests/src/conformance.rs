//! The store conformance scenarios of the behaviour suite: what every store MUST do at
//! the level of its ports, run on the in-memory fake, PostgreSQL and SQLite alike.
//! Tenant scope (another tenant's rows are out of reach of a tenant transaction, whether
//! the store hides them or refuses loudly), the rollback footprint of a dropped
//! transaction, single-use secrets under concurrent transactions, and the last-admin
//! race. Only row-level security and trigger tests stay per store.

use std::collections::BTreeSet;

use domain::audit::{Actor, ActorType, AuditDraft, AuditTarget, Outcome, Partition};
use domain::ids::{AuditId, ProfileKey, ProfileValue};
use domain::model::{AccountState, Credentials, Invitation, Member, TotpEnrolment};
use domain::ports::{AuditFilter, StoreError, StoreTx, TxScope};
use domain::usecases::{AddMember, UserRef};
use uuid::Uuid;

use crate::behaviour::tenant_trail;
use crate::harness::{email, role_name, roles, scope, user_of, Harness};

/// How many transactions race for one single-use secret.
const RIVALS: usize = 10;

fn profile_key(key: &str) -> ProfileKey {
    ProfileKey::parse(key).expect("profile key")
}

fn text(value: &str) -> ProfileValue {
    ProfileValue::parse(&serde_json::Value::String(value.to_owned())).expect("profile value")
}

async fn begin(h: &Harness, scope: TxScope) -> Box<dyn StoreTx> {
    h.store.begin(scope).await.expect("transaction begins")
}

/// A read of another tenant's rows: hidden (empty, as under row-level security) or
/// refused (`Unavailable`, as a store without it does); never a row.
fn hidden_or_refused<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>, empty: bool) {
    match result {
        Ok(_) if empty => {}
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{what}: another tenant's rows reached: {other:?}"),
    }
}

pub async fn a_tenant_transaction_reaches_no_other_tenants_rows(h: Harness) {
    let root = h.root().await;
    let (a, _) = h.tenant(&root, "tenant-a").await;
    let (b, admin_b) = h.tenant(&root, "tenant-b").await;
    let member = h
        .member(&root, &admin_b, &b, "member@tenant-b.example", &[])
        .await;
    let member = user_of(&member);
    h.engine
        .write_tenant_default(&admin_b, &b, &profile_key("locale"), Some(text("de-DE")))
        .await
        .expect("tenant default written");
    h.engine
        .put_role(
            &admin_b,
            &b,
            &role_name("editor"),
            BTreeSet::from([scope("tenant:read")]),
        )
        .await
        .expect("editor bound in tenant b");

    // Reads naming tenant B, in one transaction of tenant A.
    let mut tx = begin(&h, TxScope::Tenant(a.clone())).await;
    let tenant = tx.get_tenant(&b).await;
    hidden_or_refused("tenant", tenant.clone(), matches!(tenant, Ok(None)));
    let found = tx.get_member(&b, &member).await;
    hidden_or_refused("member", found.clone(), matches!(found, Ok(None)));
    let listed = tx.list_members(&b, None, 100).await;
    hidden_or_refused(
        "members",
        listed.clone(),
        listed.as_ref().is_ok_and(Vec::is_empty),
    );
    let enabled = tx.enabled_scopes(&b).await;
    hidden_or_refused(
        "enabled scopes",
        enabled.clone(),
        enabled.as_ref().is_ok_and(BTreeSet::is_empty),
    );
    let bindings = tx.list_bindings(&b).await;
    hidden_or_refused(
        "bindings",
        bindings.clone(),
        bindings.as_ref().is_ok_and(Vec::is_empty),
    );
    let defaults = tx.tenant_defaults(&b).await;
    hidden_or_refused(
        "defaults",
        defaults.clone(),
        defaults.as_ref().is_ok_and(|map| map.is_empty()),
    );
    let values = tx.member_values(&b, &member).await;
    hidden_or_refused(
        "member values",
        values.clone(),
        values.as_ref().is_ok_and(|map| map.is_empty()),
    );
    let keys = tx.list_api_keys(&b).await;
    hidden_or_refused(
        "api keys",
        keys.clone(),
        keys.as_ref().is_ok_and(Vec::is_empty),
    );
    let partition = Partition::Tenant(b.clone());
    let trail = tx
        .list_audit(&partition, &AuditFilter::default(), 0, 100)
        .await;
    hidden_or_refused(
        "trail",
        trail.clone(),
        trail.as_ref().is_ok_and(Vec::is_empty),
    );
    let feed = tx.list_events(&partition, 0, 100).await;
    hidden_or_refused("feed", feed.clone(), feed.as_ref().is_ok_and(Vec::is_empty));
    drop(tx);

    // Writes naming tenant B, each in a transaction of its own that commits when the
    // store let the write through (it must then have changed nothing).
    let suspended = Member {
        tenant: b.clone(),
        user_id: member,
        email: email("member@tenant-b.example"),
        roles: roles(&["tenant_admin"]),
        state: AccountState::Suspended,
        created_at: h.clock_now(),
        updated_at: h.clock_now(),
        version: 99,
    };
    for attempt in 0..5 {
        let mut tx = begin(&h, TxScope::Tenant(a.clone())).await;
        let result = match attempt {
            0 => tx.update_member(&suspended).await,
            1 => tx.delete_member(&b, &member).await,
            2 => {
                tx.put_tenant_default(&b, &profile_key("locale"), &text("fr-FR"))
                    .await
            }
            3 => tx
                .delete_binding(&b, &role_name("editor"))
                .await
                .and_then(|existed| {
                    if existed {
                        Err(StoreError::Duplicate(
                            "a binding of another tenant was deleted",
                        ))
                    } else {
                        Ok(())
                    }
                }),
            _ => {
                tx.set_enabled_scopes(&b, &BTreeSet::from([scope("tenant:read")]))
                    .await
            }
        };
        assert!(
            !matches!(result, Err(StoreError::Duplicate(_))),
            "write {attempt}: {result:?}"
        );
        if result.is_ok() {
            tx.commit()
                .await
                .expect("a write that changed nothing commits");
        }
    }

    // Tenant B, seen by its own transaction, is as it was.
    let mut tx = begin(&h, TxScope::Tenant(b.clone())).await;
    let kept = tx
        .get_member(&b, &member)
        .await
        .expect("member read")
        .expect("member kept");
    assert_eq!(kept.state, AccountState::Active);
    assert_eq!(
        tx.tenant_defaults(&b)
            .await
            .expect("defaults")
            .get(&profile_key("locale")),
        Some(&text("de-DE"))
    );
    assert!(tx
        .list_bindings(&b)
        .await
        .expect("bindings")
        .iter()
        .any(|binding| binding.role == role_name("editor")));
}

pub async fn a_dropped_transaction_leaves_no_change_and_no_audit_record(h: Harness) {
    let root = h.root().await;
    let (tenant, _) = h.tenant(&root, "acme").await;
    let user = h.user(&root, "newcomer@example.com").await;
    let trail_before = tenant_trail(&h, &root, &tenant).await;

    let mut tx = begin(&h, TxScope::Tenant(tenant.clone())).await;
    let partition = Partition::Tenant(tenant.clone());
    tx.lock_partition(&partition)
        .await
        .expect("partition locked");
    tx.insert_member(&Member {
        tenant: tenant.clone(),
        user_id: user,
        email: email("newcomer@example.com"),
        roles: roles(&["tenant_admin"]),
        state: AccountState::Active,
        created_at: h.clock_now(),
        updated_at: h.clock_now(),
        version: 1,
    })
    .await
    .expect("member inserted");
    tx.put_tenant_default(&tenant, &profile_key("locale"), &text("de-DE"))
        .await
        .expect("default written");
    tx.append_audit(AuditDraft {
        id: AuditId::from_generated(Uuid::now_v7()),
        partition: partition.clone(),
        at: h.clock_now(),
        actor: Actor {
            kind: ActorType::System,
            id: "conformance".to_owned(),
        },
        action: "member.add",
        target: AuditTarget {
            kind: "member",
            id: user.to_string(),
        },
        outcome: Outcome::Allowed,
        reason: "ok".to_owned(),
        request_id: "dropped".to_owned(),
    })
    .await
    .expect("record appended");
    drop(tx);

    let mut tx = begin(&h, TxScope::Tenant(tenant.clone())).await;
    assert_eq!(
        tx.get_member(&tenant, &user).await.expect("member read"),
        None
    );
    assert!(tx
        .tenant_defaults(&tenant)
        .await
        .expect("defaults")
        .is_empty());
    drop(tx);
    assert_eq!(tenant_trail(&h, &root, &tenant).await, trail_before);
    // The next change takes the next seq: the dropped record used none.
    h.engine
        .add_member(
            &root,
            &tenant,
            AddMember {
                user: UserRef::Id(user),
                roles: BTreeSet::new(),
            },
        )
        .await
        .expect("member added");
    let trail = tenant_trail(&h, &root, &tenant).await;
    assert_eq!(trail.len(), trail_before.len() + 1);
    assert!(matches!(h.engine.verify_trail(&partition).await, Ok(Ok(_))));
}

pub async fn single_use_secrets_are_used_once_by_concurrent_transactions(h: Harness) {
    let root = h.root().await;
    let user = h.user(&root, "invitee@example.com").await;
    let now = h.clock_now();
    let mut tx = begin(&h, TxScope::Platform).await;
    tx.insert_invitation(&Invitation {
        token_hash: "conformance-invitation".to_owned(),
        user_id: user,
        expires_at: now + time::Duration::hours(1),
        used_at: None,
    })
    .await
    .expect("invitation stored");
    let mut credentials = tx.get_credentials(&user).await.expect("credentials");
    credentials.totp = Some(TotpEnrolment {
        secret: "JBSWY3DPEHPK3PXP".to_owned(),
        confirmed: true,
        last_used_step: None,
    });
    tx.set_credentials(&user, &credentials)
        .await
        .expect("totp enrolled");
    tx.commit().await.expect("setup committed");

    // Every rival uses the invitation and burns step 100 in one transaction of its own,
    // all at once; each commits what it won.
    let rivals: Vec<_> = (0..RIVALS)
        .map(|_| {
            let store = h.store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin(TxScope::Platform).await?;
                let invitation = tx
                    .consume_invitation("conformance-invitation", now)
                    .await?
                    .is_some();
                let step = tx.burn_totp_step(&user, 100).await?;
                tx.commit().await?;
                Ok::<_, StoreError>((invitation, step))
            })
        })
        .collect();
    let mut invitations = 0;
    let mut steps = 0;
    for rival in rivals {
        let (invitation, step) = rival
            .await
            .expect("rival ran")
            .expect("rival's store calls");
        invitations += usize::from(invitation);
        steps += usize::from(step);
    }
    assert_eq!(invitations, 1, "the invitation is used exactly once");
    assert_eq!(steps, 1, "step 100 is burned exactly once");

    let mut tx = begin(&h, TxScope::Platform).await;
    assert_eq!(
        tx.consume_invitation("conformance-invitation", now)
            .await
            .expect("consume"),
        None
    );
    assert!(!tx.burn_totp_step(&user, 100).await.expect("burn"));
    assert!(!tx.burn_totp_step(&user, 99).await.expect("burn"));
    assert!(tx.burn_totp_step(&user, 101).await.expect("burn"));
    let stored: Credentials = tx.get_credentials(&user).await.expect("credentials");
    assert_eq!(stored.totp.and_then(|totp| totp.last_used_step), Some(101));
}

pub async fn racing_demotions_suspensions_and_removals_leave_exactly_one_active_admin(h: Harness) {
    let root = h.root().await;
    for round in 0..crate::races::RACE_ROUNDS {
        crate::races::race_round(&h, &root, round).await;
    }
}
