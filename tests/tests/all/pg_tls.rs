//! PostgreSQL over TLS (SPEC §7, issue 14), on a private cluster with `ssl = on` and a
//! certificate for `localhost` from a CA the test makes: the service starts through
//! `Application::build` (as `serve` does) with each `sslmode` of libpq and reports, when
//! it cannot connect, why.

use server::config::{Config, Secret};
use server::startup::Application;
use sqlx::{Connection, PgConnection};
use tests::cluster::{PrivateCluster, TempDir, TestCa};

/// Whether the connection `url` opens runs over TLS, as the server sees it.
async fn uses_tls(url: &str) -> bool {
    let mut connection = PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .fetch_one(&mut connection)
        .await
        .expect("pg_stat_ssl")
}

/// `Application::build` on `url`: the service, or the message it would exit with.
async fn build(url: &str) -> Result<Application, String> {
    let config = Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: Some(Secret::new(url.to_owned())),
        max_connections: 2,
        ..Config::default()
    };
    Application::build(&config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sslmode_connects_as_libpq_would_and_a_refusal_says_why() {
    let ca = TestCa::new("user-engine test CA");
    let stranger = TestCa::new("another CA");
    let certs = TempDir::new("certs");
    let (cert, key) = ca.server_cert("localhost", &certs.0);
    let cluster = PrivateCluster::start("", Some((&cert, &key)));
    let root = ca.cert.to_string_lossy().into_owned();

    // verify-full against the right CA and name: the service starts, over TLS.
    let verified = cluster.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    );
    let app = build(&verified).await.expect("verify-full connects");
    drop(app);
    assert!(uses_tls(&verified).await);

    // A name the certificate does not carry, and a CA that did not sign it: refused,
    // saying which.
    let wrong_name = cluster.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    );
    let Err(refused) = build(&wrong_name).await else {
        panic!("a wrong name is refused")
    };
    assert!(
        refused.to_lowercase().contains("not valid for name"),
        "the refusal names the cause: {refused}"
    );
    let unknown_ca = cluster.url(
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            stranger.cert.display()
        ),
    );
    let Err(refused) = build(&unknown_ca).await else {
        panic!("an unknown CA is refused")
    };
    assert!(
        refused.to_lowercase().contains("unknownissuer")
            || refused.to_lowercase().contains("unknown issuer"),
        "the refusal names the cause: {refused}"
    );

    // verify-ca checks the CA (sqlx with this rustls checks the name as well: never
    // weaker than libpq, see README); require and prefer encrypt without checking;
    // disable does not encrypt.
    let verify_ca = cluster.url(
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={root}"),
    );
    build(&verify_ca).await.expect("verify-ca connects");
    assert!(uses_tls(&verify_ca).await);
    let stranger_ca = cluster.url(
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={}", stranger.cert.display()),
    );
    assert!(
        build(&stranger_ca).await.is_err(),
        "verify-ca checks the CA"
    );
    for mode in ["require", "prefer"] {
        let url = cluster.url("127.0.0.1", &format!("sslmode={mode}"));
        build(&url).await.expect("connects");
        assert!(
            uses_tls(&url).await,
            "{mode} uses TLS when the server offers it"
        );
    }
    assert!(!uses_tls(&cluster.url("127.0.0.1", "sslmode=disable")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_against_a_server_without_tls_is_refused_and_prefer_falls_back() {
    let cluster = PrivateCluster::start("", None);
    let Err(refused) = build(&cluster.url("127.0.0.1", "sslmode=require")).await else {
        panic!("require needs TLS")
    };
    assert!(
        refused.to_lowercase().contains("tls") || refused.to_lowercase().contains("ssl"),
        "the refusal names the cause: {refused}"
    );
    let prefer = cluster.url("127.0.0.1", "sslmode=prefer");
    build(&prefer)
        .await
        .expect("prefer falls back to plaintext");
    assert!(!uses_tls(&prefer).await);
}
