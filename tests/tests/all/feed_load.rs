//! The event feed under load (SPEC §6, issue 5): readers polling
//! `GET /v1/tenants/{t}/events?after=` while eight writers commit across two tenants see
//! every event of their tenant, in feed order, none skipped and none of the other
//! tenant's, and end with exactly the tenant's outbox.
//!
//! A plain sequence column would fail this: a reader can see position 11 committed
//! before 10, move its cursor past 10 and never see it. Feed positions are taken under
//! the partition lock held to commit, so they follow commit order.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::ids::{Assurance, ProfileKey, ProfileValue, TenantId, UserId};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;
use tests::harness::Harness;
use tests::http::{spawn_app, TestApp};

const TENANTS: [&str; 2] = ["feed-a", "feed-b"];
const WRITERS_PER_TENANT: usize = 4;
/// 2 tenants × 4 writers × 1250 = 10,000 events, beside the tenants' own first events.
const WRITES_PER_WRITER: usize = 1250;
const PASSWORD: &str = "feed load password";

/// Creates a tenant whose admin is a new user; returns the admin's id and token.
async fn tenant_with_admin(app: &TestApp, root: &str, tenant: &str) -> (UserId, String) {
    let email = format!("admin@{tenant}.example");
    let created = app
        .post(
            "/v1/users",
            root,
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let admin = created.body["id"].as_str().unwrap().to_owned();
    let tenant_created = app
        .post(
            "/v1/tenants",
            root,
            json!({ "id": tenant, "display_name": "Feed", "admin": { "user_id": admin } }),
        )
        .await;
    assert_eq!(
        tenant_created.status,
        StatusCode::CREATED,
        "{tenant_created:?}"
    );
    (
        UserId::parse(&admin).unwrap(),
        app.login(&email, PASSWORD).await,
    )
}

/// What one reader saw of its tenant's feed.
#[derive(Debug, Default)]
struct Seen {
    ids: Vec<String>,
    polls: u64,
}

/// Polls the feed from the start until the writers are done and a poll after that
/// finds nothing new; checks every page as it comes.
async fn read_feed(
    app: Arc<TestApp>,
    token: String,
    tenant: String,
    done: Arc<AtomicBool>,
) -> Seen {
    let mut seen = Seen::default();
    let mut after: Option<String> = None;
    let mut last_position = 0_u64;
    loop {
        // Read before polling: a poll that starts after the writers finished and finds
        // nothing new proves the reader has everything.
        let finished = done.load(Ordering::Acquire);
        let path = match &after {
            Some(cursor) => format!("/v1/tenants/{tenant}/events?limit=200&after={cursor}"),
            None => format!("/v1/tenants/{tenant}/events?limit=200"),
        };
        let page = app.get(&path, &token).await;
        seen.polls += 1;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        let items = page.body["items"].as_array().unwrap();
        for event in items {
            assert_eq!(event["tenant"], tenant.as_str(), "{event}");
            let position = event["sequence"].as_u64().unwrap();
            assert_eq!(
                position,
                last_position + 1,
                "{tenant}: after position {last_position} the feed served {position}"
            );
            last_position = position;
            seen.ids.push(event["id"].as_str().unwrap().to_owned());
        }
        // Every page carries the cursor to resume from, the last page too (SPEC §4).
        after = Some(
            page.body["next_cursor"]
                .as_str()
                .expect("the feed always gives a cursor")
                .to_owned(),
        );
        if items.is_empty() && finished {
            return seen;
        }
        // A short page means the reader is at the tail: it waits a little for more,
        // as a poller would, rather than spin against the writers for the cores.
        if items.len() < 200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[test]
fn feed_readers_polling_during_eight_writers_see_every_event_of_their_tenant_in_order() {
    tests::pg::run(async {
        let app = Arc::new(spawn_app().await);
        let root = app.root_token().await;
        let mut tenants = Vec::new();
        for tenant in TENANTS {
            let (admin, token) = tenant_with_admin(&app, &root, tenant).await;
            tenants.push((TenantId::parse(tenant).unwrap(), admin, token));
        }
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = tenants
            .iter()
            .map(|(tenant, _, token)| {
                tokio::spawn(read_feed(
                    app.clone(),
                    token.clone(),
                    tenant.to_string(),
                    done.clone(),
                ))
            })
            .collect();

        let started = Instant::now();
        let title = ProfileKey::parse("title").unwrap();
        let mut writers = Vec::new();
        for (tenant, admin, _) in &tenants {
            for writer in 0..WRITERS_PER_TENANT {
                let engine = app.engine.clone();
                let caller = Harness::as_user(*admin, Assurance::Aal1);
                let (tenant, admin, title) = (tenant.clone(), *admin, title.clone());
                writers.push(tokio::spawn(async move {
                    for n in 0..WRITES_PER_WRITER {
                        // Distinct values, so every write changes the profile and
                        // publishes one `profile.value_set`.
                        let value = ProfileValue::parse(&json!(format!("w{writer}-{n}"))).unwrap();
                        engine
                            .write_member_value(&caller, &tenant, &admin, &title, Some(value), None)
                            .await
                            .unwrap();
                    }
                }));
            }
        }
        for writer in writers {
            writer.await.unwrap();
        }
        let written = started.elapsed();
        done.store(true, Ordering::Release);
        let mut seen = Vec::new();
        for reader in readers {
            seen.push(reader.await.unwrap());
        }

        let mut owner = app.db.owner_connection().await;
        let mut all = BTreeSet::new();
        for ((tenant, _, _), seen) in tenants.iter().zip(&seen) {
            let feed: Vec<String> = sqlx::query(
                "select event_id::text as id from outbox_events where partition = $1 \
                 order by position",
            )
            .bind(tenant.as_str())
            .fetch_all(&mut owner)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.get("id"))
            .collect();
            assert!(
                feed.len() >= WRITERS_PER_TENANT * WRITES_PER_WRITER,
                "{tenant}: {} events",
                feed.len()
            );
            assert_eq!(
                seen.ids, feed,
                "{tenant}: the reader saw the whole feed in order"
            );
            all.extend(feed);
            println!(
                "{tenant}: {} events seen in {} polls",
                seen.ids.len(),
                seen.polls
            );
        }
        assert!(all.len() >= 10_000);
        println!(
            "{} events written by {} writers in {:.1} s",
            all.len(),
            TENANTS.len() * WRITERS_PER_TENANT,
            written.as_secs_f64()
        );
    });
}
