//! SPEC §9 on both stores: OAuth clients over HTTP (platform and tenant clients, the
//! secret shown once, isolation between tenants, audit and events), and the provider's
//! grants on the engine — a code redeemed once of 20 concurrent redemptions, PKCE, the
//! redirect URI, refresh rotation where a spent refresh token revokes its family, and a
//! tenant client that cannot sign in another tenant's member.

use adapters_jose::SealingVault;
use domain::ids::TenantId;
use domain::oidc::{ClientId, OAuthClient};
use domain::signing::KeyVault;
use domain::usecases::{
    ClientAuth, CodeRequest, ConsentStep, Engine, EngineConfig, Issuer, OAuthError,
};
use reqwest::StatusCode;
use serde_json::json;
use tests::http::{
    add_member, assert_problem, assert_status, delete, my_id, new_user, spawn_app_on,
    tenant_with_admin, text, StoreKind, TestApp, PASSWORD,
};

const ISSUER: &str = "https://id.engine.test";
const REDIRECT: &str = "https://app.example.com/callback";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn oauth_clients_are_registered_per_owner_and_isolated(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let (acme_admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let (globex_admin, _) = tenant_with_admin(&app, &root, "globex").await;

    // A platform client: confidential, its secret shown once.
    let platform = app
        .post(
            "/v1/oauth-clients",
            &root,
            json!({ "name": "Portal", "type": "confidential", "redirect_uris": [REDIRECT] }),
        )
        .await;
    assert_status(&platform, StatusCode::CREATED);
    let platform_id = text(&platform.body, "client_id").to_owned();
    assert!(ClientId::parse(&platform_id).is_some_and(|id| id.owner().is_none()));
    assert!(text(&platform.body, "client_secret").starts_with("uecs_"));
    // A tenant admin may not register a platform client.
    let refused = app
        .post(
            "/v1/oauth-clients",
            &acme_admin,
            json!({ "name": "Mine", "type": "public", "redirect_uris": [REDIRECT] }),
        )
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");

    // A tenant client: public, no secret; its id names the tenant.
    let tenant = app
        .post(
            "/v1/tenants/acme/oauth-clients",
            &acme_admin,
            json!({ "name": "Docs", "type": "public", "redirect_uris": [REDIRECT],
                    "post_logout_redirect_uris": ["https://app.example.com/bye"] }),
        )
        .await;
    assert_status(&tenant, StatusCode::CREATED);
    let tenant_id = text(&tenant.body, "client_id").to_owned();
    assert!(tenant_id.starts_with("acme."), "{tenant_id}");
    assert!(tenant.body.get("client_secret").is_none());

    // Bad input is a 400 and registers nothing.
    for body in [
        json!({ "name": "X", "type": "public", "redirect_uris": ["http://evil.example/cb"] }),
        json!({ "name": "X", "type": "public", "redirect_uris": [] }),
        json!({ "name": "X", "type": "secretive", "redirect_uris": [REDIRECT] }),
        json!({ "name": "X", "type": "public", "redirect_uris": [REDIRECT], "scopes": ["members:read"] }),
        json!({ "name": "X", "type": "public", "redirect_uris": ["https://app.example.com/callback#frag"] }),
    ] {
        let reply = app
            .post("/v1/tenants/acme/oauth-clients", &acme_admin, body.clone())
            .await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }

    // A confidential tenant client with client_credentials scopes the admin holds.
    let service = app
        .post(
            "/v1/tenants/acme/oauth-clients",
            &acme_admin,
            json!({ "name": "Worker", "type": "confidential", "redirect_uris": [REDIRECT],
                    "scopes": ["members:read"] }),
        )
        .await;
    assert_status(&service, StatusCode::CREATED);
    assert_eq!(service.body["scopes"], json!(["members:read"]));

    // Another tenant's admin learns nothing of acme's clients.
    let listed = app
        .get("/v1/tenants/acme/oauth-clients", &globex_admin)
        .await;
    assert_problem(&listed, StatusCode::NOT_FOUND, "tenant_not_found");
    let probe = app
        .get(
            &format!("/v1/tenants/globex/oauth-clients/{tenant_id}"),
            &globex_admin,
        )
        .await;
    assert_problem(&probe, StatusCode::NOT_FOUND, "not_found");
    let gone = delete(
        &app,
        &format!("/v1/tenants/globex/oauth-clients/{tenant_id}"),
        &globex_admin,
    )
    .await;
    assert_problem(&gone, StatusCode::NOT_FOUND, "not_found");
    let platform_under_tenant = app
        .get(
            &format!("/v1/tenants/acme/oauth-clients/{platform_id}"),
            &acme_admin,
        )
        .await;
    assert_problem(&platform_under_tenant, StatusCode::NOT_FOUND, "not_found");

    // Lists never show a secret.
    let listed = app.get("/v1/tenants/acme/oauth-clients", &acme_admin).await;
    assert_status(&listed, StatusCode::OK);
    let items = listed.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|item| item.get("client_secret").is_none()));
    let platform_list = app.get("/v1/oauth-clients", &root).await;
    assert_status(&platform_list, StatusCode::OK);
    assert_eq!(
        platform_list.body["items"].as_array().map(Vec::len),
        Some(1)
    );

    // Deleting: gone afterwards; recorded and evented in the tenant's trail and feed.
    let deleted = delete(
        &app,
        &format!("/v1/tenants/acme/oauth-clients/{tenant_id}"),
        &acme_admin,
    )
    .await;
    assert_status(&deleted, StatusCode::NO_CONTENT);
    let again = app
        .get(
            &format!("/v1/tenants/acme/oauth-clients/{tenant_id}"),
            &acme_admin,
        )
        .await;
    assert_problem(&again, StatusCode::NOT_FOUND, "not_found");
    let audit = app
        .get(
            "/v1/tenants/acme/audit?action=oauth_client.create",
            &acme_admin,
        )
        .await;
    assert_status(&audit, StatusCode::OK);
    let outcomes: Vec<&str> = audit.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["outcome"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        outcomes
            .iter()
            .filter(|outcome| **outcome == "allowed")
            .count(),
        2
    );
    // Bodies the HTTP layer refuses (an unknown type, scopes on a public client) never
    // reach the engine; the three it refuses are recorded.
    assert_eq!(
        outcomes
            .iter()
            .filter(|outcome| **outcome == "denied")
            .count(),
        3
    );
    let events = app.get("/v1/tenants/acme/events", &acme_admin).await;
    let types: Vec<&str> = events.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["type"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        types
            .iter()
            .filter(|kind| **kind == "oauth_client.created")
            .count(),
        2
    );
    assert_eq!(
        types
            .iter()
            .filter(|kind| **kind == "oauth_client.deleted")
            .count(),
        1
    );
}

/// A client registered through the engine's own HTTP route, as the engine loads it.
async fn register(
    app: &TestApp,
    engine: &Engine,
    path: &str,
    token: &str,
    kind: &str,
) -> (OAuthClient, Option<String>) {
    let reply = app
        .post(
            path,
            token,
            json!({ "name": "App", "type": kind, "redirect_uris": [REDIRECT] }),
        )
        .await;
    assert_status(&reply, StatusCode::CREATED);
    let id = text(&reply.body, "client_id").to_owned();
    let secret = reply.body["client_secret"].as_str().map(str::to_owned);
    let client = engine
        .authenticate_client(&ClientAuth {
            client_id: id,
            secret: secret.clone(),
        })
        .await
        .expect("the client authenticates");
    (client, secret)
}

fn code_request(client: &OAuthClient, tenant: &str, challenge: Option<&str>) -> CodeRequest {
    CodeRequest {
        client: client.id.clone(),
        redirect_uri: REDIRECT.to_owned(),
        tenant: TenantId::parse(tenant).expect("tenant"),
        scope: "openid email".to_owned(),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        code_challenge: challenge.map(str::to_owned),
        consent: if client.first_party {
            ConsentStep::FirstParty
        } else {
            ConsentStep::Stored
        },
    }
}

/// A code for `client` to sign `session`'s user in to `tenant`, with PKCE.
async fn new_code(engine: &Engine, session: &str, client: &OAuthClient, tenant: &str) -> String {
    engine
        .issue_code(
            session,
            &code_request(client, tenant, Some(CHALLENGE)),
            "test",
        )
        .await
        .expect("a code")
        .into_code()
        .expect("no consent needed")
}

async fn codes_and_refresh_tokens_are_single_use(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let (acme_admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let (globex_admin, _) = tenant_with_admin(&app, &root, "globex").await;
    let member_id = new_user(&app, &root, "ada@acme.example", PASSWORD).await;
    add_member(&app, &acme_admin, "acme", &member_id, json!([])).await;
    let session = app.login("ada@acme.example", PASSWORD).await;
    assert_eq!(my_id(&app, &session).await, member_id);

    let engine = Engine::new(
        adapters_security::production_ports(app.store()),
        EngineConfig::default(),
    );
    let vault = SealingVault::random().expect("vault");
    engine
        .ensure_signing_keys(&vault, "test")
        .await
        .expect("keys");
    let keys = engine.signing_keys().await.expect("keys");
    let issuer = Issuer {
        url: ISSUER,
        vault: &vault,
    };
    let (public, _) = register(
        &app,
        &engine,
        "/v1/tenants/acme/oauth-clients",
        &acme_admin,
        "public",
    )
    .await;
    let (confidential, secret) =
        register(&app, &engine, "/v1/oauth-clients", &root, "confidential").await;
    let wrong = engine
        .authenticate_client(&ClientAuth {
            client_id: confidential.id.to_string(),
            secret: Some("uecs_wrong".to_owned()),
        })
        .await;
    assert!(matches!(wrong, Err(OAuthError::InvalidClient)));
    assert!(secret.is_some());

    // A code, redeemed by 20 at once: one set of tokens.
    let code = new_code(&engine, &session, &public, "acme").await;
    let redemptions = futures::future::join_all((0..20).map(|_| {
        engine.redeem_code(
            issuer,
            &public,
            &code,
            Some(REDIRECT),
            Some(VERIFIER),
            "test",
        )
    }))
    .await;
    let mut won: Vec<_> = redemptions.into_iter().filter_map(Result::ok).collect();
    assert_eq!(won.len(), 1);
    let tokens = won.pop().expect("tokens");
    // The tokens verify against the published keys and name tenant, session, acr.
    let access = vault
        .verify(&keys, "at+jwt", &tokens.access_token)
        .expect("access token");
    assert_eq!(access["sub"], member_id.as_str());
    assert_eq!(access["tenant"], "acme");
    assert_eq!(access["acr"], "aal1");
    assert_eq!(access["client_id"], public.id.to_string());
    let id_token = vault
        .verify(&keys, "JWT", tokens.id_token.as_deref().expect("id token"))
        .expect("id token");
    assert_eq!(id_token["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id_token["email"], "ada@acme.example");
    assert_eq!(id_token["sid"], access["sid"]);

    // The code came back after its use: everything issued from it is revoked
    // (RFC 6749 §4.1.2), the winner's refresh token too.
    let revoked = engine
        .refresh_tokens(
            issuer,
            &public,
            tokens.refresh_token.as_deref().expect("refresh"),
            "test",
        )
        .await;
    assert!(
        matches!(revoked, Err(OAuthError::InvalidGrant(_))),
        "{revoked:?}"
    );

    // PKCE: a wrong verifier, or none, fails; so does another redirect URI.
    for (verifier, redirect) in [
        (Some("x".repeat(43)), Some(REDIRECT)),
        (None, Some(REDIRECT)),
        (
            Some(VERIFIER.to_owned()),
            Some("https://app.example.com/other"),
        ),
    ] {
        let code = new_code(&engine, &session, &public, "acme").await;
        let refused = engine
            .redeem_code(
                issuer,
                &public,
                &code,
                redirect,
                verifier.as_deref(),
                "test",
            )
            .await;
        assert!(
            matches!(refused, Err(OAuthError::InvalidGrant(_))),
            "{refused:?}"
        );
    }

    // Refresh rotates; the spent one coming back revokes the family, successor too.
    let code = new_code(&engine, &session, &public, "acme").await;
    let first = engine
        .redeem_code(
            issuer,
            &public,
            &code,
            Some(REDIRECT),
            Some(VERIFIER),
            "test",
        )
        .await
        .expect("tokens")
        .refresh_token
        .expect("a refresh token");
    let second = engine
        .refresh_tokens(issuer, &public, &first, "test")
        .await
        .expect("refreshed")
        .refresh_token
        .expect("a successor");
    let reused = engine.refresh_tokens(issuer, &public, &first, "test").await;
    assert!(matches!(reused, Err(OAuthError::InvalidGrant(_))));
    let successor = engine
        .refresh_tokens(issuer, &public, &second, "test")
        .await;
    assert!(
        matches!(successor, Err(OAuthError::InvalidGrant(_))),
        "{successor:?}"
    );
    let audit = app
        .get(
            "/v1/tenants/acme/audit?action=oauth.grant.revoke",
            &acme_admin,
        )
        .await;
    // One for the replayed code, one for the reused refresh token.
    assert_eq!(audit.body["items"].as_array().map(Vec::len), Some(2));

    // A tenant client of globex cannot sign in acme's member, nor redeem acme's codes.
    let (globex_client, _) = register(
        &app,
        &engine,
        "/v1/tenants/globex/oauth-clients",
        &globex_admin,
        "public",
    )
    .await;
    let refused = engine
        .issue_code(
            &session,
            &code_request(&globex_client, "acme", Some(CHALLENGE)),
            "test",
        )
        .await;
    assert!(
        matches!(refused, Err(domain::Error::InvalidCredentials)),
        "{refused:?}"
    );
    let refused = engine
        .issue_code(
            &session,
            &code_request(&globex_client, "globex", Some(CHALLENGE)),
            "test",
        )
        .await;
    assert!(
        matches!(refused, Err(domain::Error::InvalidCredentials)),
        "{refused:?}"
    );
    let code = new_code(&engine, &session, &public, "acme").await;
    let stolen = engine
        .redeem_code(
            issuer,
            &globex_client,
            &code,
            Some(REDIRECT),
            Some(VERIFIER),
            "test",
        )
        .await;
    assert!(matches!(stolen, Err(OAuthError::InvalidGrant(_))));

    // A platform client signs in a member of any tenant; a suspended account may not.
    let code = engine
        .issue_code(&session, &code_request(&confidential, "acme", None), "test")
        .await
        .expect("a code")
        .into_code()
        .expect("no consent needed");
    let suspended = app
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/tenants/acme/members/{member_id}"),
            Some(&acme_admin),
            Some(json!({ "state": "suspended" })),
        )
        .await;
    assert_status(&suspended, StatusCode::OK);
    let refused = engine
        .redeem_code(issuer, &confidential, &code, Some(REDIRECT), None, "test")
        .await;
    assert!(
        matches!(refused, Err(OAuthError::InvalidGrant(_))),
        "{refused:?}"
    );
}

tests::on_both_stores!(
    oauth_clients_are_registered_per_owner_and_isolated,
    codes_and_refresh_tokens_are_single_use
);
