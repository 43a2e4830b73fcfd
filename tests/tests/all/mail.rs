//! SPEC §6 mail against a real SMTP server (aiosmtpd, `tests::smtp`): invitations,
//! self-service resets and security notices arrive once, to the right recipient, with a
//! subject naming the tenant and a token that works; with the server down during a burst
//! every mail arrives once it is back; a rolled-back change sends nothing; a worker
//! killed mid-send loses no mail; a pass keeps several mails in flight and records each.

use std::sync::Arc;
use std::time::Duration;

use domain::mail::{
    deliver_once, render, DeliveryPolicy, MailKind, MailSender, QueuedMail, SendError,
};
use domain::ports::{Clock, TxScope};
use reqwest::StatusCode;
use serde_json::json;
use server::config::{Config, Secret};
use tests::http::{
    assert_status, spawn_app_configured, AppOptions, StoreKind, TestApp, ROOT_EMAIL,
};
use tests::smtp::SmtpSink;

const LINK_BASE: &str = "https://app.example.test/account";

fn mailing(url: String) -> impl FnOnce(&mut Config) {
    move |config: &mut Config| {
        config.smtp_url = Some(Secret::new(url));
        config.mail_from = Some("Accounts <accounts@engine.test>".to_owned());
        config.mail_link_base = Some(LINK_BASE.to_owned());
        // Retries every second or so, so an outage's mails come soon after it ends.
        config.delivery_retry_max_seconds = 1;
    }
}

async fn mailing_app(store: StoreKind, sink: &SmtpSink) -> TestApp {
    spawn_app_configured(store, AppOptions::default(), mailing(sink.url()))
        .await
        .0
}

async fn mails_arrive_once_with_a_working_token_and_the_tenant_name(store: StoreKind) {
    let sink = SmtpSink::start();
    let app = mailing_app(store, &sink).await;
    let root = app.root_token().await;

    // An invitation names its tenant and carries a working token; the 201 no longer does.
    let created = app
        .post(
            "/v1/tenants",
            &root,
            json!({"id": "acme", "display_name": "Acme Widgets", "admin": {"email": "ada@acme.test"}}),
        )
        .await;
    assert_status(&created, StatusCode::CREATED);
    assert!(
        created
            .body
            .get("invitation_token")
            .is_none_or(serde_json::Value::is_null),
        "{}",
        created.body
    );
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let invitation = &mails[0];
    assert_eq!(invitation.rcpt_tos, ["ada@acme.test"]);
    assert_eq!(invitation.mail_from, "accounts@engine.test");
    assert_eq!(invitation.subject(), "You are invited to Acme Widgets");
    let text = invitation.text();
    assert!(text.contains("multipart/alternative"), "{text}");
    assert!(text.contains("text/html"), "{text}");
    let token = invitation.token().expect("a token");
    assert!(
        text.contains(&format!("{LINK_BASE}/invitation#token={token}")),
        "{text}"
    );
    let accepted = app
        .post(
            "/v1/auth/invitation",
            "",
            json!({"token": token, "password": "ada's long passphrase"}),
        )
        .await;
    assert_status(&accepted, StatusCode::NO_CONTENT);

    // A self-service reset is mailed to an active user only; the answers are the same.
    let mut answers = Vec::new();
    for email in ["ada@acme.test", "nobody@acme.test"] {
        let reply = app
            .post("/v1/auth/password-reset", "", json!({"email": email}))
            .await;
        assert_status(&reply, StatusCode::ACCEPTED);
        answers.push((
            reply.body.clone(),
            reply.headers.get("content-type").cloned(),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    let mails = sink.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    let reset = &mails[1];
    assert_eq!(reset.rcpt_tos, ["ada@acme.test"]);
    assert_eq!(reset.subject(), "Reset your user-engine password");
    let confirmed = app
        .post(
            "/v1/auth/password-reset/confirm",
            "",
            json!({"token": reset.token().expect("a token"), "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_status(&confirmed, StatusCode::NO_CONTENT);
    app.login("ada@acme.test", "a brand new passphrase").await;

    // The notice of the change goes to the same address.
    let mails = sink.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert_eq!(mails[2].rcpt_tos, ["ada@acme.test"]);
    assert_eq!(mails[2].subject(), "Your user-engine password was changed");
    assert_eq!(mails[2].token(), None);

    // Each once: nothing more arrives, and the queue kept no body of a sent mail.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), 3);
    let mut tx = app.store().begin(TxScope::Platform).await.expect("tx");
    let backlog = tx.mail_backlog().await.expect("backlog");
    assert_eq!((backlog.waiting, backlog.failed), (0, 0));
    let _ = ROOT_EMAIL;
}

async fn every_mail_of_a_burst_arrives_after_an_smtp_outage(store: StoreKind) {
    let mut sink = SmtpSink::start();
    let app = mailing_app(store, &sink).await;
    let root = app.root_token().await;
    sink.stop();
    for index in 0..10 {
        let reply = app
            .post(
                "/v1/users",
                &root,
                json!({"email": format!("u{index}@burst.test")}),
            )
            .await;
        assert_status(&reply, StatusCode::CREATED);
    }
    // Attempts fail meanwhile (connection refused) and are retried.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sink.restart();
    let mails = sink.wait_for(10, Duration::from_secs(30)).await;
    let mut recipients: Vec<String> = mails
        .iter()
        .flat_map(|mail| mail.rcpt_tos.clone())
        .collect();
    recipients.sort();
    let expected: Vec<String> = {
        let mut all: Vec<String> = (0..10)
            .map(|index| format!("u{index}@burst.test"))
            .collect();
        all.sort();
        all
    };
    assert_eq!(recipients, expected);

    // A server that is up but answers 451 for a while: the mails wait and arrive.
    sink.tempfail(true);
    for index in 0..3 {
        let reply = app
            .post(
                "/v1/users",
                &root,
                json!({"email": format!("t{index}@burst.test")}),
            )
            .await;
        assert_status(&reply, StatusCode::CREATED);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), 10);
    sink.tempfail(false);
    let mails = sink.wait_for(13, Duration::from_secs(30)).await;
    assert_eq!(mails.len(), 13);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(sink.received().len(), 13, "each mail once");
}

/// A sender that never answers: a worker stuck mid-send.
struct Hanging;

#[async_trait::async_trait]
impl MailSender for Hanging {
    async fn send(&self, _mail: &QueuedMail) -> Result<(), SendError> {
        std::future::pending().await
    }
}

async fn a_rolled_back_change_sends_nothing_and_a_killed_worker_loses_no_mail(store: StoreKind) {
    let sink = SmtpSink::start();
    // No mail worker of the app's own: the workers here are the only ones.
    let app = tests::http::spawn_app_on(store).await;
    let store = app.store();
    let clock = adapters_security::SystemClock;
    let draft = |to: &str| {
        render(
            &domain::mail::MailSettings::default(),
            &MailKind::PasswordChanged,
            domain::ids::Email::parse(to).expect("email"),
            None,
            uuid::Uuid::now_v7(),
            clock.now(),
        )
    };
    // Queued in a transaction that is dropped: never leased, never sent.
    {
        let mut tx = store.begin(TxScope::Platform).await.expect("tx");
        tx.queue_mail(&draft("rolled-back@example.test"))
            .await
            .expect("queued");
        drop(tx);
    }
    // Committed, then leased by a worker that hangs mid-send and is killed.
    {
        let mut tx = store.begin(TxScope::Platform).await.expect("tx");
        tx.queue_mail(&draft("survivor@example.test"))
            .await
            .expect("queued");
        tx.commit().await.expect("commit");
    }
    let policy = DeliveryPolicy {
        lease: time::Duration::seconds(2),
        ..DeliveryPolicy::default()
    };
    // The worker leases the mail, hangs mid-send and is killed.
    let killed = tokio::time::timeout(
        Duration::from_millis(300),
        deliver_once(store.as_ref(), &Hanging, &clock, &policy, 10),
    )
    .await;
    assert!(killed.is_err(), "the hanging worker was stopped mid-send");
    let smtp: Arc<dyn MailSender> = Arc::new(
        adapters_mail::SmtpSender::new(&sink.url(), None, "accounts@engine.test").expect("sender"),
    );
    // Its lease holds the mail a while: another worker leases nothing yet.
    let early = deliver_once(store.as_ref(), smtp.as_ref(), &clock, &policy, 10)
        .await
        .expect("pass");
    assert_eq!(early.leased(), 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sink.received().is_empty() && std::time::Instant::now() < deadline {
        let _ = deliver_once(store.as_ref(), smtp.as_ref(), &clock, &policy, 10).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = sink.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].rcpt_tos, ["survivor@example.test"]);
}

/// A sender that takes a while and counts how many of its sends overlap; one address
/// is refused for now.
#[derive(Default)]
struct Overlapping {
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl MailSender for Overlapping {
    async fn send(&self, mail: &QueuedMail) -> Result<(), SendError> {
        use std::sync::atomic::Ordering;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if mail.recipient == "busy@example.test" {
            Err(SendError::Transient("451 try later".to_owned()))
        } else {
            Ok(())
        }
    }
}

async fn a_pass_keeps_several_mails_in_flight_and_records_each(store: StoreKind) {
    let app = tests::http::spawn_app_on(store).await;
    let store = app.store();
    let clock = adapters_security::SystemClock;
    {
        let mut tx = store.begin(TxScope::Platform).await.expect("tx");
        for index in 0..20 {
            let to = if index == 7 {
                "busy@example.test".to_owned()
            } else {
                format!("m{index}@example.test")
            };
            let draft = render(
                &domain::mail::MailSettings::default(),
                &MailKind::PasswordChanged,
                domain::ids::Email::parse(&to).expect("email"),
                None,
                uuid::Uuid::now_v7(),
                clock.now(),
            );
            tx.queue_mail(&draft).await.expect("queued");
        }
        tx.commit().await.expect("commit");
    }
    let sender = Overlapping::default();
    let pass = || async {
        deliver_once(
            store.as_ref(),
            &sender,
            &clock,
            &DeliveryPolicy::default(),
            20,
        )
        .await
        .expect("pass")
    };
    let first = pass().await;
    assert_eq!((first.sent, first.retried, first.gave_up), (19, 1, 0));
    assert_eq!(
        sender.most.load(std::sync::atomic::Ordering::SeqCst),
        domain::mail::MAIL_CONCURRENCY
    );
    // Each outcome was recorded: only the refused mail waits, for its retry.
    let mut tx = store.begin(TxScope::Platform).await.expect("tx");
    let backlog = tx.mail_backlog().await.expect("backlog");
    assert_eq!((backlog.waiting, backlog.failed), (1, 0));
    drop(tx);
    assert_eq!(pass().await.leased(), 0, "the retry is not due yet");
}

tests::on_both_stores!(
    a_pass_keeps_several_mails_in_flight_and_records_each,
    mails_arrive_once_with_a_working_token_and_the_tenant_name,
    every_mail_of_a_burst_arrives_after_an_smtp_outage,
    a_rolled_back_change_sends_nothing_and_a_killed_worker_loses_no_mail,
);
