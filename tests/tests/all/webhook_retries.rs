//! The webhook delivery pass on the in-memory store with a manual clock and a scripted
//! receiver: a failing event blocks the ones after it (feed order), is retried with
//! growing pauses, and after the give-up time is recorded `failed` while the hook goes
//! on; `delivery.failing` says so; another tenant's events never reach the hook.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_trait::async_trait;
use domain::event::Event;
use domain::mail::DeliveryPolicy;
use domain::webhook::{
    deliver_webhooks_once, DeliveryFailure, DeliveryStatus, LeasedWebhook, WebhookSender,
};
use tests::harness::{email, Harness};

/// Answers 500 to every event of a type in `failing`, records every attempt.
#[derive(Default)]
struct Scripted {
    failing: Mutex<BTreeSet<String>>,
    attempts: Mutex<Vec<(String, u64, String, bool)>>,
}

#[async_trait]
impl WebhookSender for Scripted {
    async fn deliver(&self, hook: &LeasedWebhook, event: &Event) -> Result<u16, DeliveryFailure> {
        let fail = self
            .failing
            .lock()
            .expect("failing")
            .contains(&event.event_type);
        self.attempts.lock().expect("attempts").push((
            hook.hook.tenant.to_string(),
            event.position,
            event.event_type.clone(),
            !fail,
        ));
        if fail {
            Err(DeliveryFailure {
                status: Some(500),
                message: "the receiver answered 500".to_owned(),
            })
        } else {
            Ok(204)
        }
    }
}

#[test]
fn a_failing_event_blocks_the_rest_until_it_is_given_up() {
    futures::executor::block_on(async {
        let (h, store) = Harness::fake();
        let root = h.root().await;
        let (acme, admin) = h.tenant(&root, "acme").await;
        let (globex, globex_admin) = h.tenant(&root, "globex").await;
        let types: BTreeSet<String> = ["*".to_owned()].into_iter().collect();
        h.engine
            .put_webhook(
                &admin,
                &acme,
                "all",
                "https://hooks.example.com/a",
                types.clone(),
            )
            .await
            .expect("hook");
        h.engine
            .put_webhook(
                &globex_admin,
                &globex,
                "all",
                "https://hooks.example.com/g",
                types,
            )
            .await
            .expect("hook");
        let sender = Scripted::default();
        sender
            .failing
            .lock()
            .expect("failing")
            .insert("membership.added".to_owned());
        let policy = DeliveryPolicy {
            first_retry: time::Duration::seconds(10),
            max_retry: time::Duration::seconds(60),
            give_up_after: time::Duration::minutes(5),
            lease: time::Duration::minutes(1),
        };
        // acme: a membership (fails), then a profile default (must wait behind it).
        h.member(&root, &admin, &acme, "m@acme.example", &["member"])
            .await;
        h.engine
            .write_tenant_default(
                &admin,
                &acme,
                &domain::ids::ProfileKey::parse("locale").expect("key"),
                Some(domain::ids::ProfileValue::parse(&serde_json::json!("fr")).expect("value")),
            )
            .await
            .expect("default");
        h.member(
            &root,
            &globex_admin,
            &globex,
            "g@globex.example",
            &["member"],
        )
        .await;
        let _ = email;

        let pass = deliver_webhooks_once(store.as_ref(), &sender, h.clock.as_ref(), &policy, 16)
            .await
            .expect("pass");
        assert_eq!(pass.retrying, 2, "{pass:?}");
        // Not due yet: nothing is attempted.
        let pass = deliver_webhooks_once(store.as_ref(), &sender, h.clock.as_ref(), &policy, 16)
            .await
            .expect("pass");
        assert_eq!(pass.hooks, 0);
        // Retried with growing pauses until the give-up time, never past the blocked event.
        for _ in 0..12 {
            h.clock.advance(time::Duration::seconds(61));
            deliver_webhooks_once(store.as_ref(), &sender, h.clock.as_ref(), &policy, 16)
                .await
                .expect("pass");
        }
        let attempts = sender.attempts.lock().expect("attempts").clone();
        let acme_attempts: Vec<_> = attempts
            .iter()
            .filter(|(tenant, ..)| tenant == "acme")
            .collect();
        let first_blocked = acme_attempts
            .iter()
            .position(|(_, _, kind, _)| kind == "membership.added")
            .expect("attempted");
        let blocked_position = acme_attempts[first_blocked].1;
        let gave_up_at = acme_attempts
            .iter()
            .rposition(|(_, position, ..)| *position == blocked_position)
            .expect("attempted");
        assert!(gave_up_at > first_blocked + 1, "retried: {acme_attempts:?}");
        assert!(
            acme_attempts[first_blocked..=gave_up_at]
                .iter()
                .all(|(_, position, ..)| *position == blocked_position),
            "nothing overtook the failing event: {acme_attempts:?}"
        );
        let after: Vec<_> = acme_attempts[gave_up_at + 1..].iter().collect();
        assert!(
            after
                .iter()
                .any(|(_, _, kind, ok)| kind == "profile.value_set" && *ok),
            "the hook went on after giving up: {acme_attempts:?}"
        );
        let mut positions: Vec<u64> = acme_attempts.iter().map(|(_, p, ..)| *p).collect();
        positions.dedup();
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "{positions:?}"
        );

        // The deliveries and the diagnostic say so.
        let page = h
            .engine
            .list_deliveries(&admin, &acme, "all", None, 200)
            .await
            .expect("deliveries");
        let failed: Vec<_> = page
            .items
            .iter()
            .filter(|delivery| delivery.status == DeliveryStatus::Failed)
            .collect();
        assert_eq!(failed.len(), 1, "{page:?}");
        assert_eq!(failed[0].last_status_code, Some(500));
        assert!(failed[0].attempts > 2);
        let facts = h
            .engine
            .tenant_diagnostics(&root, &acme)
            .await
            .expect("facts");
        let report = diagnostics::evaluate(&facts, &diagnostics::Options::default());
        let check = report
            .check(diagnostics::ids::DELIVERY_FAILING)
            .expect("check");
        assert_eq!(check.status, diagnostics::CheckStatus::Warn, "{check:?}");

        // Only globex's own events reached globex's hook, and only acme's acme's.
        let snapshot = store.snapshot().await;
        for ((tenant, _, _), delivery) in &snapshot.deliveries {
            let event = snapshot
                .events_of(&domain::audit::Partition::Tenant(tenant.clone()))
                .iter()
                .find(|event| event.position == delivery.position)
                .expect("an event of the hook's own tenant");
            assert_eq!(event.id.to_string(), delivery.event_id);
        }
    });
}
