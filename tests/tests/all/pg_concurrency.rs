//! Concurrency on PostgreSQL: the races of `tests::races` with PostgreSQL's own checks
//! (the last-admin race itself runs in the behaviour suite, on every store); and no
//! tenant's rows in another tenant's responses when many tenants share two connections.

use std::collections::BTreeSet;
use std::sync::Arc;

use domain::audit::Partition;
use domain::ids::{ProfileKey, ProfileValue, TenantId, UserId};
use domain::ports::AuditFilter;
use domain::usecases::Caller;
use domain::Error;
use serde_json::json;
use tests::harness::{user_of, Harness};
use tests::pg::TestDb;
use tests::races::{assert_gapless, concurrent_writers, mix, with_request_id};

#[test]
fn eight_concurrent_writers_in_one_tenant_leave_a_verified_trail_and_a_gapless_feed() {
    tests::pg::run(async {
        let db = TestDb::create().await;
        let h = Harness::new(Arc::new(db.store(8).await));
        let adds = concurrent_writers(&h).await;

        // The tenant transactions also appended user.created to the platform feed, whose
        // head they locked too: that feed has no gaps either, and the platform chain holds.
        let mut owner = db.owner_connection().await;
        let platform_positions: Vec<i64> = sqlx::query_scalar(
            "select position from outbox_events where partition = '_platform' order by position",
        )
        .fetch_all(&mut owner)
        .await
        .expect("platform feed read as the owner");
        let platform_positions: Vec<u64> = platform_positions
            .into_iter()
            .map(|position| u64::try_from(position).expect("positive position"))
            .collect();
        assert_gapless("platform feed positions", &platform_positions);
        let invited: i64 = sqlx::query_scalar(
            "select count(*) from outbox_events where partition = '_platform' \
             and event_type = 'user.created' and data->>'email' like 'w%@busy.example'",
        )
        .fetch_one(&mut owner)
        .await
        .expect("platform events counted");
        assert_eq!(invited as usize, adds, "one user.created per new email");
        assert!(
            matches!(h.engine.verify_trail(&Partition::Platform).await, Ok(Ok(_))),
            "the platform chain verifies"
        );
    });
}

// ---------------------------------------------------------------------------------------
// 3. Many tenants over two pooled connections
// ---------------------------------------------------------------------------------------

const LEAK_TENANTS: usize = 6;
const MEMBERS_PER_TENANT: usize = 4;
const INTERLEAVED_READS: u64 = 300;

/// One tenant of the pool-leak test and what its responses may contain.
#[derive(Debug, Clone)]
struct Fixture {
    tenant: TenantId,
    admin: Caller,
    /// Every user of the tenant (admin first) and the title it was given, if any.
    users: Vec<(UserId, Option<String>)>,
}

impl Fixture {
    fn domain(&self) -> String {
        format!("@{}.example", self.tenant)
    }
}

fn title_key() -> ProfileKey {
    ProfileKey::parse("title").expect("valid key")
}

async fn leak_fixture(h: &Harness, root: &Caller, index: usize) -> Fixture {
    let id = format!("leak-{index}");
    let (tenant, admin) = h.tenant(root, &id).await;
    let mut users = vec![(user_of(&admin), None)];
    for member in 0..MEMBERS_PER_TENANT {
        let user = user_of(
            &h.member(
                root,
                &admin,
                &tenant,
                &format!("m{member}@{id}.example"),
                &["member"],
            )
            .await,
        );
        let title = format!("m{member} of {id}");
        h.engine
            .write_member_value(
                &admin,
                &tenant,
                &user,
                &title_key(),
                Some(ProfileValue::parse(&json!(title)).expect("a string value")),
                None,
            )
            .await
            .expect("title set");
        users.push((user, Some(title)));
    }
    Fixture {
        tenant,
        admin,
        users,
    }
}

/// One interleaved request by a tenant's admin; `Err` describes a response that held
/// something it must not.
async fn read_and_check(h: Harness, fixtures: Arc<Vec<Fixture>>, index: u64) -> Result<(), String> {
    let own = &fixtures[(mix(index) % LEAK_TENANTS as u64) as usize];
    let pick = mix(index + 1_000_000);
    let (user, title) = &own.users[(pick % own.users.len() as u64) as usize];
    let caller = with_request_id(&own.admin, format!("read-{index}"));
    let tenant = &own.tenant;
    let domain = own.domain();
    let context = |what: &str| format!("read-{index}: {what} in {tenant}");
    match mix(index + 2_000_000) % 6 {
        0 => {
            let page = h
                .engine
                .list_members(&caller, tenant, None, 200)
                .await
                .map_err(|error| context(&format!("list_members failed: {error:?}")))?;
            let listed: BTreeSet<UserId> = page.items.iter().map(|member| member.user_id).collect();
            let expected: BTreeSet<UserId> = own.users.iter().map(|(user, _)| *user).collect();
            if page
                .items
                .iter()
                .any(|member| member.tenant != *tenant || !member.email.as_str().ends_with(&domain))
                || listed != expected
            {
                return Err(context(&format!("list_members returned {:?}", page.items)));
            }
        }
        1 => {
            let member = h
                .engine
                .get_member(&caller, tenant, user)
                .await
                .map_err(|error| context(&format!("get_member failed: {error:?}")))?;
            if member.tenant != *tenant
                || member.user_id != *user
                || !member.email.as_str().ends_with(&domain)
            {
                return Err(context(&format!("get_member returned {member:?}")));
            }
        }
        2 => {
            let profile = h
                .engine
                .member_profile(&caller, tenant, user)
                .await
                .map_err(|error| context(&format!("member_profile failed: {error:?}")))?;
            let seen = profile
                .values
                .get(&title_key())
                .map(|resolved| resolved.value.as_json().clone());
            if seen != title.as_ref().map(|title| json!(title)) {
                return Err(context(&format!("member_profile returned {profile:?}")));
            }
        }
        3 => {
            let page = h
                .engine
                .tenant_events(&caller, tenant, None, 200)
                .await
                .map_err(|error| context(&format!("tenant_events failed: {error:?}")))?;
            let foreign = page.items.iter().find(|event| {
                event.partition != Partition::Tenant(tenant.clone())
                    || (event.subject != tenant.as_str()
                        && !own
                            .users
                            .iter()
                            .any(|(user, _)| user.to_string() == event.subject))
                    || event.data.get("value").is_some_and(|value| {
                        !value
                            .as_str()
                            .is_some_and(|title| title.ends_with(&format!(" of {tenant}")))
                    })
            });
            if let Some(event) = foreign {
                return Err(context(&format!("tenant_events returned {event:?}")));
            }
            if page.items.is_empty() {
                return Err(context("tenant_events returned nothing"));
            }
        }
        4 => {
            let page = h
                .engine
                .tenant_audit(&caller, tenant, &AuditFilter::default(), None, 200)
                .await
                .map_err(|error| context(&format!("tenant_audit failed: {error:?}")))?;
            if let Some(record) = page.items.iter().find(|record| {
                record.tenant() != Some(tenant)
                    || record.partition != Partition::Tenant(tenant.clone())
            }) {
                return Err(context(&format!("tenant_audit returned {record:?}")));
            }
        }
        _ => {
            // An admin asking another tenant is refused as if it did not exist; the
            // refused transaction must give its connection back like any other.
            let other = &fixtures[((mix(index) + 1 + pick % (LEAK_TENANTS as u64 - 1))
                % LEAK_TENANTS as u64) as usize];
            let (other_user, _) = &other.users[(pick % other.users.len() as u64) as usize];
            let refused = if pick % 2 == 0 {
                h.engine
                    .list_members(&caller, &other.tenant, None, 200)
                    .await
                    .map(|page| format!("{:?}", page.items))
            } else {
                h.engine
                    .get_member(&caller, &other.tenant, other_user)
                    .await
                    .map(|member| format!("{member:?}"))
            };
            if refused != Err(Error::TenantNotFound) {
                return Err(context(&format!(
                    "asking {} gave {refused:?} instead of tenant_not_found",
                    other.tenant
                )));
            }
        }
    }
    Ok(())
}

#[test]
fn interleaved_tenants_over_two_pooled_connections_never_see_each_others_rows() {
    tests::pg::run(async {
        let db = TestDb::create().await;
        let store = db.store(2).await;
        let h = Harness::new(Arc::new(store.clone()));
        let root = h.root().await;
        let mut fixtures = Vec::new();
        for index in 0..LEAK_TENANTS {
            fixtures.push(leak_fixture(&h, &root, index).await);
        }
        let fixtures = Arc::new(fixtures);

        let handles: Vec<_> = (0..INTERLEAVED_READS)
            .map(|index| tokio::spawn(read_and_check(h.clone(), fixtures.clone(), index)))
            .collect();
        let mut failures = Vec::new();
        for handle in handles {
            if let Err(failure) = handle.await.expect("a reader ran to the end") {
                failures.push(failure);
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");

        // Both pooled connections came back, and neither carries a tenant (or platform
        // mode) outside a transaction: the settings never outlive their transaction, and
        // row-level security shows such a connection nothing.
        assert!(store.pool().size() <= 2, "the pool never grew");
        let mut first = store.pool().acquire().await.expect("first connection back");
        let mut second = store
            .pool()
            .acquire()
            .await
            .expect("second connection back");
        for connection in [&mut first, &mut second] {
            let (tenant_setting, platform_setting, role): (Option<String>, Option<String>, String) =
                sqlx::query_as(
                    "select current_setting('app.tenant_id', true), \
                        current_setting('app.platform', true), current_user::text",
                )
                .fetch_one(&mut **connection)
                .await
                .expect("settings read");
            assert_eq!(
                tenant_setting.unwrap_or_default(),
                "",
                "app.tenant_id leaked"
            );
            assert_eq!(
                platform_setting.unwrap_or_default(),
                "",
                "app.platform leaked"
            );
            assert_eq!(role, adapters_pg::SERVICE_ROLE);
            let visible: i64 = sqlx::query_scalar("select count(*) from accounts")
                .fetch_one(&mut **connection)
                .await
                .expect("accounts counted");
            assert_eq!(visible, 0, "a connection without a tenant sees no accounts");
        }
    });
}
