//! `cargo xtask bench delivery`: the mail and webhook workers against local sinks (an SMTP
//! server and an HTTP receiver of this process that accept everything) on PostgreSQL.
//!
//! - Mails/s: one worker drains a queue of mails, beside the same mails sent straight
//!   through the same SMTP sender with no queue and as many in flight (the baseline).
//! - Webhook deliveries/s: one worker sends a backlog of member-add events to one hook
//!   per tenant, beside the same signed requests sent straight (the baseline).
//! - Lag: while eight clients invite members by email (each add commits a
//!   `membership.added` for the tenant's hook, a `user.created` for the NATS relay and an
//!   invitation mail), the three workers run; commit-to-arrival lag p50/p99 of each.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters_nats::JetStreamPublisher;
use adapters_pg::relay::Relay;
use adapters_pg::PgStore;
use async_nats::jetstream;
use domain::audit::Partition;
use domain::ids::{DisplayName, Email, RoleName, TenantId, UserId};
use domain::mail::{deliver_once, render, DeliveryPolicy, MailKind, MailSender, MailSettings};
use domain::ports::{Store, TxScope};
use domain::relay::RelayOutbox;
use domain::usecases::{AddMember, CreateTenant, Engine, EngineConfig, UserRef};
use domain::webhook::{deliver_webhooks_once, LeasedWebhook, Webhook, WebhookSender};
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::events::{bench_stream, millis, percentile, LagPublisher};
use crate::{database_url, Failure};

const CLIENTS: usize = 8;
/// Mails per drain: one worker keeps `MAIL_CONCURRENCY` SMTP exchanges in flight, each a
/// few round trips, so several hundred take seconds.
const MAILS: usize = 800;
/// Reset requests per kind of email (known, unknown).
const RESETS: usize = 200;

/// Arrival lags, as the sinks saw them.
#[derive(Default)]
struct Lags(Mutex<Vec<Duration>>);

impl Lags {
    fn push(&self, since: OffsetDateTime) {
        let lag = Duration::try_from(OffsetDateTime::now_utc() - since).unwrap_or_default();
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(lag);
    }

    fn take(&self) -> Vec<Duration> {
        let mut lags = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        lags.sort_unstable();
        lags
    }
}

/// An SMTP server that accepts every message; the lag of each is read from its
/// Message-ID (the mail's UUIDv7, made when the mail was queued).
async fn smtp_sink(count: Arc<AtomicU64>, lags: Arc<Lags>) -> Result<SocketAddr, Failure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            let (count, lags) = (count.clone(), lags.clone());
            tokio::spawn(async move {
                let (reader, mut writer) = socket.into_split();
                let mut reader = BufReader::new(reader);
                let _ = writer.write_all(b"220 sink ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let command = line.to_ascii_uppercase();
                    let answer: &[u8] = if command.starts_with("EHLO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if command.starts_with("DATA") {
                        let _ = writer.write_all(b"354 go on\r\n").await;
                        let mut sent = None;
                        loop {
                            line.clear();
                            match reader.read_line(&mut line).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            if let Some(id) = line
                                .strip_prefix("Message-ID: <")
                                .and_then(|rest| rest.split('@').next())
                                .and_then(|id| uuid::Uuid::parse_str(id).ok())
                            {
                                sent = id.get_timestamp().map(|stamp| stamp.to_unix());
                            }
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                        if let Some((seconds, nanos)) = sent {
                            let at = OffsetDateTime::from_unix_timestamp(
                                i64::try_from(seconds).unwrap_or_default(),
                            )
                            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                                + time::Duration::nanoseconds(i64::from(nanos));
                            lags.push(at);
                        }
                        b"250 OK\r\n"
                    } else if command.starts_with("QUIT") {
                        let _ = writer.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    if writer.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(address)
}

/// An HTTP receiver answering 204 to every request; the lag of each is read from the
/// CloudEvent's `time` (stamped in the change's transaction).
async fn http_sink(count: Arc<AtomicU64>, lags: Arc<Lags>) -> Result<SocketAddr, Failure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/{tenant}",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (count, lags) = (count.clone(), lags.clone());
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                if let Some(time) = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|event| {
                        OffsetDateTime::parse(
                            event.get("time")?.as_str()?,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                {
                    lags.push(time);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move {
        use axum::serve::ListenerExt as _;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app).await;
    });
    Ok(address)
}

fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        first_retry: time::Duration::seconds(1),
        max_retry: time::Duration::seconds(1),
        ..DeliveryPolicy::default()
    }
}

/// Queues `count` invitation mails in batches of 200, committed.
async fn queue_mails(store: &dyn Store, count: usize) -> Result<(), Failure> {
    let settings = MailSettings::default();
    let mut queued = 0;
    while queued < count {
        let mut tx = store.begin(TxScope::Platform).await?;
        for _ in 0..200.min(count - queued) {
            let draft = render(
                &settings,
                &MailKind::Invitation {
                    tenant: "Bench".to_owned(),
                    token: uuid::Uuid::now_v7().simple().to_string(),
                },
                Email::parse(&format!("m{queued}@bench.example"))?,
                None,
                uuid::Uuid::now_v7(),
                OffsetDateTime::now_utc(),
            );
            tx.queue_mail(&draft).await?;
            queued += 1;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// The platform root, one tenant per client each with a hook to the HTTP sink.
async fn setup(
    owner: &sqlx::PgPool,
    engine: &Engine,
    store: &dyn Store,
    sink: SocketAddr,
) -> Result<(domain::usecases::Caller, Vec<TenantId>), Failure> {
    let root = crate::insert_root(owner).await?;
    let admin = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into users (user_id, email, state, created_at, updated_at) \
         values ($1, 'admin@bench.example', 'active', now(), now())",
    )
    .bind(admin)
    .execute(owner)
    .await?;
    let mut tenants = Vec::new();
    for client in 0..CLIENTS {
        let tenant = TenantId::parse(&format!("hooks-{client}"))?;
        engine
            .create_tenant(
                &root,
                CreateTenant {
                    id: tenant.clone(),
                    display_name: DisplayName::parse("Bench")?,
                    admin: UserRef::Id(UserId::from_generated(admin)),
                },
            )
            .await?;
        let now = OffsetDateTime::now_utc();
        let mut tx = store.begin(TxScope::Tenant(tenant.clone())).await?;
        tx.insert_webhook(
            &Webhook {
                tenant: tenant.clone(),
                name: "bench".to_owned(),
                url: format!("http://{sink}/{tenant}"),
                types: BTreeSet::from(["*".to_owned()]),
                created_at: now,
                updated_at: now,
            },
            &domain::webhook::secret_from("bench"),
        )
        .await?;
        tx.commit().await?;
        tenants.push(tenant);
    }
    Ok((root, tenants))
}

/// Eight clients inviting new emails into their tenants for `seconds`; how many.
async fn invite(
    engine: &Engine,
    root: &domain::usecases::Caller,
    tenants: &[TenantId],
    phase: &str,
    seconds: u64,
) -> Result<u64, Failure> {
    let added = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (client, tenant) in tenants.iter().enumerate() {
        let (engine, root, tenant, added) =
            (engine.clone(), root.clone(), tenant.clone(), added.clone());
        let phase = phase.to_owned();
        tasks.push(tokio::spawn(async move {
            let roles = BTreeSet::from([RoleName::member()]);
            let mut index = 0_u64;
            while Instant::now() < deadline {
                index += 1;
                let Ok(email) = Email::parse(&format!("{phase}-{client}-{index}@bench.example"))
                else {
                    return;
                };
                let input = AddMember {
                    user: UserRef::Email(email),
                    roles: roles.clone(),
                };
                if engine.add_member(&root, &tenant, input).await.is_ok() {
                    added.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(added.load(Ordering::Relaxed))
}

fn lag_row(what: &str, lags: &[Duration]) -> String {
    format!(
        "| {what} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
        lags.len(),
        millis(percentile(lags, 0.50)),
        millis(percentile(lags, 0.99)),
        millis(lags.last().copied().unwrap_or_default()),
    )
}

/// The API of `engine` on 127.0.0.1 (no login limit), for the reset requests.
async fn serve_api(
    engine: Engine,
    url: &str,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Failure> {
    let readiness = PgStore::connect(url, 1).await?;
    let state = api_http::app::AppState::with_login_limit(
        engine,
        Arc::new(server::store::Backend::Postgres(readiness)),
        std::num::NonZeroU32::MAX,
    );
    crate::http::serve(api_http::app::router_with(state, axum::Router::new())).await
}

pub async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    let url = database_url(name);
    let owner = sqlx::PgPool::connect(&url).await?;
    adapters_pg::migrate(&owner).await?;
    let store: Arc<dyn Store> =
        Arc::new(PgStore::connect(&url, u32::try_from(CLIENTS + 4)?).await?);
    let mut ports = adapters_security::production_ports(store.clone());
    ports.clock = Arc::new(adapters_security::SystemClock);
    let engine = Engine::new(
        ports,
        EngineConfig {
            mail: Some(MailSettings::default()),
            ..EngineConfig::default()
        },
    );
    let clock = adapters_security::SystemClock;
    let (mails, mail_lags) = (Arc::new(AtomicU64::new(0)), Arc::new(Lags::default()));
    let (hooks, hook_lags) = (Arc::new(AtomicU64::new(0)), Arc::new(Lags::default()));
    let smtp = smtp_sink(mails.clone(), mail_lags.clone()).await?;
    let http = http_sink(hooks.clone(), hook_lags.clone()).await?;
    let smtp_sender = Arc::new(
        adapters_mail::SmtpSender::new(&format!("smtp://{smtp}"), None, "bench@bench.example")
            .map_err(|error| error.to_string())?,
    );
    let hook_sender = Arc::new(adapters_webhook::HttpsSender::new(
        domain::webhook::UrlPolicy {
            allow_insecure: true,
        },
    )?);
    let (root, tenants) = setup(&owner, &engine, store.as_ref(), http).await?;
    println!("# delivery benchmark: PostgreSQL, local SMTP and HTTP sinks, {seconds} s of load");

    // Mails: a queue drained by one worker, beside direct sends.
    queue_mails(store.as_ref(), MAILS).await?;
    let started = Instant::now();
    loop {
        let pass =
            deliver_once(store.as_ref(), smtp_sender.as_ref(), &clock, &policy(), 32).await?;
        if pass.leased() == 0 {
            break;
        }
    }
    let worker_rate = MAILS as f64 / started.elapsed().as_secs_f64();
    let sample = {
        let draft = render(
            &MailSettings::default(),
            &MailKind::PasswordChanged,
            Email::parse("direct@bench.example")?,
            None,
            uuid::Uuid::now_v7(),
            OffsetDateTime::now_utc(),
        );
        domain::mail::QueuedMail {
            id: draft.id,
            recipient: draft.recipient.as_str().to_owned(),
            subject: draft.subject,
            text: draft.text,
            html: draft.html,
            queued_at: draft.queued_at,
            attempts: 1,
        }
    };
    // The baseline has as many sends in flight as the worker.
    let started = Instant::now();
    let sent: Vec<_> = futures::stream::iter(0..MAILS)
        .map(|_| smtp_sender.send(&sample))
        .buffer_unordered(domain::mail::MAIL_CONCURRENCY)
        .collect()
        .await;
    if let Some(Err(error)) = sent.into_iter().find(Result::is_err) {
        return Err(format!("{error:?}").into());
    }
    let direct_rate = MAILS as f64 / started.elapsed().as_secs_f64();
    // And one at a time, as the worker sent before it kept several in flight.
    let started = Instant::now();
    for _ in 0..MAILS / 4 {
        smtp_sender
            .send(&sample)
            .await
            .map_err(|error| format!("{error:?}"))?;
    }
    let serial_rate = (MAILS / 4) as f64 / started.elapsed().as_secs_f64();
    mail_lags.take();

    // Webhooks: a backlog of member-add events, drained by one worker, beside direct sends.
    let backlog = invite(&engine, &root, &tenants, "backlog", seconds).await?;
    let before = hooks.load(Ordering::Relaxed);
    let started = Instant::now();
    loop {
        let pass =
            deliver_webhooks_once(store.as_ref(), hook_sender.as_ref(), &clock, &policy(), 16)
                .await?;
        if pass.hooks == 0 {
            break;
        }
    }
    let delivered = hooks.load(Ordering::Relaxed) - before;
    let hook_rate = delivered as f64 / started.elapsed().as_secs_f64();
    let first = tenants.first().ok_or("no tenant")?.clone();
    let events = {
        let mut tx = store.begin(TxScope::Platform).await?;
        tx.list_events(&Partition::Tenant(first.clone()), 0, 2_000)
            .await?
    };
    let leased = LeasedWebhook {
        hook: Webhook {
            tenant: first.clone(),
            name: "direct".to_owned(),
            url: format!("http://{http}/{first}"),
            types: BTreeSet::from(["*".to_owned()]),
            created_at: OffsetDateTime::now_utc(),
            updated_at: OffsetDateTime::now_utc(),
        },
        secret: domain::webhook::secret_from("bench"),
        cursor: 0,
        head_attempts: 0,
        head_since: None,
    };
    let started = Instant::now();
    for event in &events {
        hook_sender
            .deliver(&leased, event)
            .await
            .map_err(|failure| failure.message)?;
    }
    let direct_hook_rate = events.len() as f64 / started.elapsed().as_secs_f64();
    hook_lags.take();
    // The backlog's invitation mails go out before the live run, so its lags are its own.
    while deliver_once(store.as_ref(), smtp_sender.as_ref(), &clock, &policy(), 32)
        .await?
        .leased()
        > 0
    {}
    mail_lags.take();

    println!();
    println!("One worker draining a backlog:");
    println!();
    println!("| what | count | worker /s | direct sends /s (baseline) | worker / direct |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| mails (SMTP, {} in flight) | {MAILS} | {worker_rate:.0} | {direct_rate:.0} | {:.2} |",
        domain::mail::MAIL_CONCURRENCY,
        worker_rate / direct_rate
    );
    println!(
        "\none SMTP sender, one mail at a time: {serial_rate:.0} mails/s ({:.1} ms each)",
        1000.0 / serial_rate
    );
    println!(
        "| webhook deliveries ({CLIENTS} hooks; {backlog} member adds) | {delivered} | \
         {hook_rate:.0} | {direct_hook_rate:.0} | {:.2} |",
        hook_rate / direct_hook_rate
    );

    // A self-service reset asked over HTTP for a known and for an unknown email,
    // alternating: the answer is the same, and so is its time — the handler counts the
    // request and answers; the lookup, the token, the mail and the event come after. The
    // engine's whole work for each (what the answer no longer waits for) beside it.
    let known = Email::parse("admin@bench.example")?;
    let unknown = Email::parse("nobody@bench.example")?;
    let (address, server) = serve_api(engine.clone(), &url).await?;
    let client = reqwest::Client::new();
    let reset_url = format!("http://{address}/v1/auth/password-reset");
    let (mut known_answers, mut unknown_answers) = (Vec::new(), Vec::new());
    for round in 0..RESETS * 2 {
        let (email, times) = if round % 2 == 0 {
            (&known, &mut known_answers)
        } else {
            (&unknown, &mut unknown_answers)
        };
        let started = Instant::now();
        let reply = client
            .post(&reset_url)
            .json(&serde_json::json!({ "email": email.as_str() }))
            .send()
            .await?;
        times.push(started.elapsed());
        if reply.status() != reqwest::StatusCode::ACCEPTED {
            return Err(format!("reset request answered {}", reply.status()).into());
        }
    }
    server.abort();
    let rule = domain::usecases::ThrottleRule {
        limit: u32::MAX,
        window: time::Duration::minutes(1),
    };
    let (mut known_work, mut unknown_work) = (Vec::new(), Vec::new());
    for round in 0..RESETS * 2 {
        let (email, times) = if round % 2 == 0 {
            (&known, &mut known_work)
        } else {
            (&unknown, &mut unknown_work)
        };
        let started = Instant::now();
        engine
            .request_password_reset(email, None, rule, "bench")
            .await?;
        times.push(started.elapsed());
    }
    for times in [
        &mut known_answers,
        &mut unknown_answers,
        &mut known_work,
        &mut unknown_work,
    ] {
        times.sort_unstable();
    }
    while deliver_once(store.as_ref(), smtp_sender.as_ref(), &clock, &policy(), 32)
        .await?
        .leased()
        > 0
    {}
    mail_lags.take();
    let mails_before_live = mails.load(Ordering::Relaxed);
    println!();
    println!(
        "Self-service reset requests, {RESETS} each, alternating (PostgreSQL): the HTTP \
         answer, and the engine's whole work that follows it:"
    );
    println!();
    println!("| email | answer p50 | answer p90 | answer p99 | work p50 | work p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (what, answers, work) in [
        ("known, active (mailed)", &known_answers, &known_work),
        ("unknown", &unknown_answers, &unknown_work),
    ] {
        println!(
            "| {what} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            millis(percentile(answers, 0.50)),
            millis(percentile(answers, 0.90)),
            millis(percentile(answers, 0.99)),
            millis(percentile(work, 0.50)),
            millis(percentile(work, 0.99)),
        );
    }
    println!(
        "\nanswer p50 known / unknown: {:.2}",
        millis(percentile(&known_answers, 0.50)) / millis(percentile(&unknown_answers, 0.50))
    );

    // Live: the three workers while clients invite members.
    let nats = crate::events::nats_url();
    let js = jetstream::new(async_nats::connect(&nats).await?);
    let live = bench_stream(&js, "DELIVERY").await?;
    let relay_store = PgStore::connect(&url, 2).await?;
    let relay = Relay::new(&relay_store);
    let lag_publisher = Arc::new(LagPublisher {
        inner: JetStreamPublisher::connect_to(&nats, &live.name, &live.prefix).await?,
        lags: Mutex::default(),
    });
    // The relay starts from a drained outbox: only the live events count.
    while domain::relay::relay_once(&relay, lag_publisher.as_ref(), 1024).await? > 0 {}
    lag_publisher
        .lags
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    {
        let (relay, publisher, mut stopped) =
            (relay.clone(), lag_publisher.clone(), stopped.clone());
        workers.push(tokio::spawn(async move {
            server::relay::run_relay(&relay, publisher.as_ref(), None, async move {
                let _ = stopped.changed().await;
            })
            .await;
        }));
    }
    {
        let (store, sender, mut stopped) = (store.clone(), smtp_sender.clone(), stopped.clone());
        workers.push(tokio::spawn(async move {
            server::mailer::run_mailer(
                store,
                sender,
                Arc::new(adapters_security::SystemClock),
                policy(),
                None,
                async move {
                    let _ = stopped.changed().await;
                },
            )
            .await;
        }));
    }
    {
        let (store, sender, mut stopped) = (store.clone(), hook_sender.clone(), stopped.clone());
        workers.push(tokio::spawn(async move {
            server::webhooks::run_webhooks(
                store,
                sender,
                Arc::new(adapters_security::SystemClock),
                policy(),
                None,
                async move {
                    let _ = stopped.changed().await;
                },
            )
            .await;
        }));
    }
    drop(stopped);
    let started = Instant::now();
    let added = invite(&engine, &root, &tenants, "live", seconds).await?;
    let load = started.elapsed().as_secs_f64();
    // Let the workers catch up, then stop them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && (mails.load(Ordering::Relaxed) < mails_before_live + added
            || relay.backlog().await?.0 > 0)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);
    for worker in workers {
        worker.await?;
    }
    let nats_lags = {
        let mut lags = lag_publisher
            .lags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        lags.sort_unstable();
        lags
    };
    println!();
    println!(
        "Live: {CLIENTS} clients inviting members by email for {seconds} s ({:.0} adds/s), \
         relay, mail and webhook workers running, one each:",
        added as f64 / load
    );
    println!();
    println!("| commit → arrival | count | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    println!("{}", lag_row("NATS relay (JetStream ack)", &nats_lags));
    println!("{}", lag_row("mail (SMTP sink)", &mail_lags.take()));
    println!("{}", lag_row("webhook (HTTP sink)", &hook_lags.take()));
    js.delete_stream(&live.name).await?;
    relay_store.pool().close().await;
    owner.close().await;
    Ok(())
}
