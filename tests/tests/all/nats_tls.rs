//! NATS over TLS with authentication (SPEC §7, issue 14), on a private `nats-server` with
//! a `tls {}` block and users, its certificate from a CA the test makes: events reach
//! JetStream with a password, an nkey or a `.creds` file (an operator-mode server); a CA that did not sign the server's certificate
//! leaves the node alive and not ready, naming the server and the failure, never a panic;
//! no message echoes a credential.

use std::time::{Duration, Instant};

use adapters_nats::{JetStreamPublisher, NatsOptions};
use domain::audit::Partition;
use domain::event::Event;
use domain::ids::EventId;
use domain::relay::EventPublisher;
use server::config::{Config, Secret};
use server::startup::Application;
use tests::cluster::{TempDir, TestCa};
use tests::nats::{Operator, PrivateNats};

const PASSWORD: &str = "relay-password-7f3a91";

/// A TLS server for `localhost` signed by `ca`, with a password user and an nkey user.
fn tls_server(ca: &TestCa, certs: &TempDir, nkey_public: &str) -> PrivateNats {
    let (cert, key) = ca.server_cert("localhost", &certs.0);
    PrivateNats::start_configured(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", timeout: 2 }}\n\
         authorization {{ users = [ {{ user: \"relay\", password: \"{PASSWORD}\" }}, \
         {{ nkey: \"{nkey_public}\" }} ] }}",
        cert.display(),
        key.display()
    ))
}

/// The publisher's health once it settles (up to 10 s), or the last problem.
async fn settled(publisher: &JetStreamPublisher) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = publisher.health();
        if health.is_ok() || Instant::now() > deadline {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The problem a publisher connected with `options` settles on, which must be a refusal
/// (`why` says which); its subject prefix is the stream's name in lower case.
async fn refused(options: &NatsOptions, stream: &str, why: &str) -> String {
    let prefix = stream.to_lowercase().replace('_', "");
    let publisher = JetStreamPublisher::connect_with(options, stream, &prefix)
        .await
        .expect("the connection is made in the background");
    settled(&publisher).await.expect_err(why)
}

fn event(tenant: &str) -> Event {
    Event {
        id: EventId::from_generated(uuid::Uuid::now_v7()),
        partition: Partition::Tenant(domain::ids::TenantId::parse(tenant).expect("tenant")),
        position: 1,
        time: time::OffsetDateTime::now_utc(),
        event_type: "tenant.created".to_owned(),
        subject: format!("tenants/{tenant}"),
        data: serde_json::json!({ "tenant_id": tenant }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_password_or_an_nkey_gets_events_acknowledged_by_jetstream() {
    let ca = TestCa::new("user-engine NATS CA");
    let certs = TempDir::new("nats-certs");
    let user = nkeys::KeyPair::new_user();
    let nats = tls_server(&ca, &certs, &user.public_key());
    let with_password = NatsOptions {
        url: format!("nats://relay:{PASSWORD}@localhost:{}", nats.port),
        ca_file: Some(ca.cert.clone()),
        ..NatsOptions::default()
    };
    let with_nkey = NatsOptions {
        url: format!("tls://localhost:{}", nats.port),
        ca_file: Some(ca.cert.clone()),
        nkey_seed: Some(user.seed().expect("a seed")),
        ..NatsOptions::default()
    };
    for (n, options) in [with_password, with_nkey].iter().enumerate() {
        let publisher =
            JetStreamPublisher::connect_with(options, &format!("UE_TLS_{n}"), &format!("uetls{n}"))
                .await
                .expect("connects");
        settled(&publisher)
            .await
            .unwrap_or_else(|problem| panic!("options {n}: the connection is up: {problem}"));
        publisher.ensure_stream().await.expect("the stream");
        // `publish` returns once JetStream acknowledged the event.
        publisher
            .publish(&event("acme"))
            .await
            .expect("JetStream acknowledges the event");
    }

    // A wrong password: refused, and the problem says so without the password.
    let problem = refused(
        &NatsOptions {
            url: format!("nats://relay:wrong-{PASSWORD}@localhost:{}", nats.port),
            ca_file: Some(ca.cert.clone()),
            ..NatsOptions::default()
        },
        "UE_TLS_WRONG",
        "a wrong password is refused",
    )
    .await;
    assert!(!problem.contains(PASSWORD), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_creds_file_gets_events_acknowledged_and_a_strangers_is_refused() {
    let ca = TestCa::new("user-engine NATS CA");
    let certs = TempDir::new("nats-creds");
    let (cert, key) = ca.server_cert("localhost", &certs.0);
    let operator = Operator::new();
    let nats = PrivateNats::start_configured(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", timeout: 2 }}\n{}",
        cert.display(),
        key.display(),
        operator.server_config
    ));
    let creds = certs.0.join("relay.creds");
    std::fs::write(&creds, &operator.creds).expect("the creds file");
    let publisher = JetStreamPublisher::connect_with(
        &NatsOptions {
            url: format!("tls://localhost:{}", nats.port),
            ca_file: Some(ca.cert.clone()),
            creds_file: Some(creds),
            ..NatsOptions::default()
        },
        "UE_CREDS",
        "uecreds",
    )
    .await
    .expect("connects");
    settled(&publisher)
        .await
        .unwrap_or_else(|problem| panic!("the connection is up: {problem}"));
    publisher.ensure_stream().await.expect("the stream");
    publisher
        .publish(&event("acme"))
        .await
        .expect("JetStream acknowledges the event");

    // Credentials of another operator's user: refused, without the seed in the problem.
    let stranger = Operator::new();
    let strangers = certs.0.join("stranger.creds");
    std::fs::write(&strangers, &stranger.creds).expect("the creds file");
    let problem = refused(
        &NatsOptions {
            url: format!("tls://localhost:{}", nats.port),
            ca_file: Some(ca.cert.clone()),
            creds_file: Some(strangers),
            ..NatsOptions::default()
        },
        "UE_CREDS_STRANGER",
        "another operator's user is refused",
    )
    .await;
    assert!(problem.contains("authorization violation"), "{problem}");
    assert!(!problem.contains(&stranger.user_seed), "{problem}");
    assert!(!problem.contains(&operator.user_seed), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_that_did_not_sign_the_server_leaves_the_node_alive_and_not_ready_saying_why() {
    let ca = TestCa::new("user-engine NATS CA");
    let stranger = TestCa::new("another CA");
    let certs = TempDir::new("nats-certs");
    let user = nkeys::KeyPair::new_user();
    let nats = tls_server(&ca, &certs, &user.public_key());
    let data = TempDir::new("nats-node");
    let url = format!("nats://relay:{PASSWORD}@localhost:{}", nats.port);
    let config = Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data.0.clone(),
        nats_url: Some(Secret::new(url.clone())),
        nats_ca_file: Some(stranger.cert.clone()),
        ..Config::default()
    };
    let app = Application::build(&config)
        .await
        .expect("a broker it cannot reach does not stop the node");
    let address = app.address();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let detail = loop {
        let ready = client
            .get(format!("http://{address}/readyz"))
            .send()
            .await
            .expect("readyz answers");
        let status = ready.status();
        let body: serde_json::Value = ready.json().await.unwrap_or_default();
        assert_eq!(status, 503, "not ready while NATS refuses the connection");
        let detail = body["detail"].as_str().unwrap_or_default().to_owned();
        if !detail.contains("not connected yet") || Instant::now() > deadline {
            break detail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // async-nats reports a refused handshake as an I/O error; the detail names the
    // server (without credentials) and the certificate's fault.
    assert!(
        detail.contains(&format!("NATS at nats://localhost:{}", nats.port))
            && detail.contains("not signed by a CA of USER_ENGINE_NATS_CA_FILE"),
        "{detail}"
    );
    assert!(!detail.contains(PASSWORD), "{detail}");
    let alive = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(alive.status(), 200, "the process lives on");
    let _ = stop.send(());
    let _ = server.await;
    drop(nats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_certificate_does_not_carry_is_refused_saying_so() {
    let ca = TestCa::new("user-engine NATS CA");
    let certs = TempDir::new("nats-certs");
    let user = nkeys::KeyPair::new_user();
    let nats = tls_server(&ca, &certs, &user.public_key());
    // The certificate names localhost; 127.0.0.1 is the same server under another name.
    let problem = refused(
        &NatsOptions {
            url: format!("nats://relay:{PASSWORD}@127.0.0.1:{}", nats.port),
            ca_file: Some(ca.cert.clone()),
            ..NatsOptions::default()
        },
        "UE_TLS_NAME",
        "a name not on the certificate is refused",
    )
    .await;
    assert!(
        problem.contains("the server's certificate was refused")
            && problem.contains("not valid for name"),
        "{problem}"
    );
    assert!(!problem.contains(PASSWORD), "{problem}");
}

#[tokio::test]
async fn a_bad_nats_url_is_refused_without_echoing_its_password() {
    let Err(message) = JetStreamPublisher::connect_with(
        &NatsOptions {
            url: format!("nats://relay:{PASSWORD}@[not a host"),
            ..NatsOptions::default()
        },
        "UE_BAD",
        "uebad",
    )
    .await
    else {
        panic!("a malformed URL is refused")
    };
    assert!(!message.contains(PASSWORD), "{message}");
}
