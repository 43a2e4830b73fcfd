//! SPEC §9's signing keys on both stores: the first JWKS fetch makes one RS256 and one
//! ES256 key (one set of 20 concurrent first fetches); a rotation adds a new set and the
//! retired keys stay published, so PyJWT (`tests/checkers/verify_jwt.py`, not our code)
//! still verifies what they signed against the served JWKS; the private parts are stored
//! sealed, open only under the key-encryption key, and every change leaves one platform
//! record.

use std::path::PathBuf;
use std::process::Command;

use adapters_jose::SealingVault;
use domain::ports::TxScope;
use domain::signing::{KeyVault, SigningAlgorithm, SigningKey};
use domain::usecases::{Engine, EngineConfig};
use reqwest::{Method, StatusCode};
use server::config::Config;
use tests::http::{assert_status, spawn_app_configured, AppDb, AppOptions, StoreKind, TestApp};

/// The kids of the JWK Set the app serves, in order.
async fn published(app: &TestApp) -> Vec<(String, String)> {
    let reply = app.send(Method::GET, "/oauth2/jwks", None, None).await;
    assert_status(&reply, StatusCode::OK);
    assert_eq!(
        reply
            .headers
            .get("cache-control")
            .and_then(|value| value.to_str().ok()),
        Some("public, max-age=300")
    );
    reply.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| {
            assert!(key.get("d").is_none() && key.get("p").is_none(), "{key}");
            assert_eq!(key["use"], "sig");
            (
                key["kid"].as_str().expect("kid").to_owned(),
                key["alg"].as_str().expect("alg").to_owned(),
            )
        })
        .collect()
}

const ISSUER: &str = "https://id.engine.test";
const AUDIENCE: &str = "app-1";

/// What PyJWT says of each token, verified against the app's JWKS.
async fn pyjwt_verdicts(app: &TestApp, tokens: Vec<String>) -> Vec<String> {
    let url = format!("http://{}/oauth2/jwks", app.address);
    tokio::task::spawn_blocking(move || {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("checkers")
            .join("verify_jwt.py");
        let output = Command::new(tests::smtp::python())
            .arg(script)
            .args([url.as_str(), ISSUER, AUDIENCE])
            .args(&tokens)
            .output()
            .expect("PyJWT runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    })
    .await
    .expect("joined")
}

/// A token for `sub` signed by `key`, expiring `lifetime` seconds from now.
fn token(vault: &SealingVault, key: &SigningKey, sub: &str, lifetime: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    vault
        .sign(
            key,
            "JWT",
            &serde_json::json!({
                "iss": ISSUER, "aud": AUDIENCE, "sub": sub,
                "iat": now, "exp": now + lifetime,
            }),
        )
        .expect("signed")
}

async fn the_jwks_publishes_a_key_per_algorithm_and_keeps_rotated_ones(store: StoreKind) {
    let directory = std::env::temp_dir().join(format!("ue-kek-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&directory).expect("directory");
    let configured = directory.join("kek");
    std::fs::write(
        &configured,
        SealingVault::new_key_file_content().expect("key"),
    )
    .expect("key file");
    let file = configured.clone();
    let (app, _) =
        spawn_app_configured(store, AppOptions::default(), move |config: &mut Config| {
            // The embedded store makes its own beside its file; PostgreSQL needs one.
            if store == StoreKind::Postgres {
                config.key_encryption_key_file = Some(file);
            }
        })
        .await;
    let key_file: PathBuf = match &app.db {
        AppDb::Sqlite(file) => file.directory().join(server::startup::EMBEDDED_KEY_FILE),
        AppDb::Postgres(_) => configured,
    };

    // Twenty first fetches at once: one set of keys, the same for all.
    let first = futures::future::join_all((0..20).map(|_| published(&app))).await;
    assert!(first.windows(2).all(|pair| pair[0] == pair[1]), "{first:?}");
    let first = first.into_iter().next().expect("a reply");
    let mut algorithms: Vec<&str> = first.iter().map(|(_, alg)| alg.as_str()).collect();
    algorithms.sort_unstable();
    assert_eq!(algorithms, ["ES256", "RS256"]);

    // Tokens signed by the first keys, before the rotation.
    let vault = SealingVault::from_file(&key_file).expect("the key-encryption key");
    let mut tx = app.store().begin(TxScope::Platform).await.expect("tx");
    let first_keys = tx.list_signing_keys().await.expect("keys");
    drop(tx);
    let before: Vec<String> = first_keys
        .iter()
        .map(|key| token(&vault, key, &format!("old-{}", key.algorithm.as_str()), 300))
        .collect();

    // A rotation: new keys first, the retired ones still published.
    let engine = Engine::new(
        adapters_security::production_ports(app.store()),
        EngineConfig::default(),
    );
    let made = engine
        .rotate_signing_keys(&vault, "test")
        .await
        .expect("rotated");
    assert_eq!(
        made.iter().map(|key| key.algorithm).collect::<Vec<_>>(),
        SigningAlgorithm::ALL
    );
    let after = published(&app).await;
    assert_eq!(after.len(), 4, "{after:?}");
    let mut newest: Vec<&String> = after.iter().take(2).map(|(kid, _)| kid).collect();
    let mut new_kids: Vec<&String> = made.iter().map(|key| &key.kid).collect();
    newest.sort_unstable();
    new_kids.sort_unstable();
    assert_eq!(newest, new_kids);
    assert!(first.iter().all(|old| after.contains(old)));

    // PyJWT verifies against the served JWKS what the retired keys signed and what the
    // new ones sign; it refuses an expired token and one whose payload was changed.
    let new_key = made.first().expect("a new key");
    let fresh = token(&vault, new_key, "new", 300);
    let expired = token(&vault, new_key, "late", -120);
    let tampered = {
        let parts: Vec<&str> = fresh.split('.').collect();
        let other = token(&vault, new_key, "someone-else", 300);
        let payload = other.split('.').nth(1).expect("payload");
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let mut tokens = before.clone();
    tokens.extend([fresh, expired, tampered]);
    assert_eq!(
        pyjwt_verdicts(&app, tokens).await,
        [
            format!("valid old-{}", first_keys[0].algorithm.as_str()),
            format!("valid old-{}", first_keys[1].algorithm.as_str()),
            "valid new".to_owned(),
            "invalid ExpiredSignatureError".to_owned(),
            "invalid InvalidSignatureError".to_owned(),
        ]
    );

    // Stored sealed: each opens under the key-encryption key only, and its bytes do not
    // hold the private key.
    let mut tx = app.store().begin(TxScope::Platform).await.expect("tx");
    let stored = tx.list_signing_keys().await.expect("keys");
    drop(tx);
    assert_eq!(stored.len(), 4);
    assert_eq!(stored.iter().filter(|key| key.is_active()).count(), 2);
    let stranger = SealingVault::new(&[42; 32]).expect("vault");
    for key in &stored {
        let private = vault.open(key).expect("opens");
        assert!(
            !key.sealed_private
                .windows(16)
                .any(|window| private.windows(16).any(|part| part == window)),
            "{} is stored in the clear",
            key.kid
        );
        assert!(stranger.open(key).is_err());
    }

    // One platform record per change: the first keys and the rotation.
    let root = app.root_token().await;
    let audit = app.get("/v1/audit?action=signing_keys.rotate", &root).await;
    assert_status(&audit, StatusCode::OK);
    let records = audit.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 2, "{records:?}");
    std::fs::remove_dir_all(&directory).expect("cleaned up");
}

tests::on_both_stores!(the_jwks_publishes_a_key_per_algorithm_and_keeps_rotated_ones);
