//! SPEC §9 over HTTP on both stores, as a browser and a relying party see it: the hosted
//! pages (CSP and no-store on every answer, CSRF-less posts refused, an unknown email
//! and a wrong password alike, the tenant choice), the redirect URI matched exactly (no
//! open redirect), a code redeemed by 20 concurrent token requests giving one answer,
//! discovery and userinfo, and an access token as `subject.token` of `authorize`
//! answered from the live session: an account suspended or a session ended is refused on
//! the very next decision while the token is still unexpired.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::config::Config;
use tests::http::{
    add_member, assert_status, new_user, spawn_app_configured, tenant_with_admin, text, AppOptions,
    StoreKind, TestApp, PASSWORD,
};

pub(crate) const REDIRECT: &str = "https://rp.example.com/callback";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A key-encryption key file for PostgreSQL apps (the embedded store makes its own),
/// removed with the value.
pub(crate) struct KeyDir(PathBuf);

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl KeyDir {
    /// Gives `config` (a PostgreSQL node's) this key-encryption key.
    fn configure(&self, store: StoreKind, config: &mut Config) {
        if store == StoreKind::Postgres {
            config.key_encryption_key_file = Some(self.0.join("kek"));
        }
    }
}

/// An app whose OpenID provider is on (a key vault on either store).
pub(crate) async fn spawn_provider(store: StoreKind) -> (TestApp, KeyDir) {
    spawn_provider_with(store, AppOptions::default()).await
}

/// [`spawn_provider`] with `options`.
async fn spawn_provider_with(store: StoreKind, options: AppOptions) -> (TestApp, KeyDir) {
    let directory = std::env::temp_dir().join(format!("ue-oidc-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&directory).expect("directory");
    std::fs::write(
        directory.join("kek"),
        adapters_jose::SealingVault::new_key_file_content().expect("key"),
    )
    .expect("key file");
    let keys = KeyDir(directory);
    let (app, _) = spawn_app_configured(store, options, |config: &mut Config| {
        keys.configure(store, config);
    })
    .await;
    (app, keys)
}

/// A browser: no redirects followed, cookies kept.
pub(crate) struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

/// A page or redirect as the browser got it.
pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub(crate) fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The value of the hidden input `name` of the page's (first) form.
    pub(crate) fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).map(|at| at + marker.len());
        let value = start
            .and_then(|start| self.body[start..].split('"').next())
            .unwrap_or_default();
        value
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
    }
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: format!("http://{}", app.address),
            cookies: BTreeMap::new(),
        }
    }

    fn keep_cookies(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let request = if cookie.is_empty() {
            request
        } else {
            request.header(reqwest::header::COOKIE, cookie.join("; "))
        };
        let response = request.send().await.expect("sent");
        let status = response.status();
        let headers = response.headers().clone();
        self.keep_cookies(&headers);
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let request = self.client.get(url);
        self.send(request).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        self.send(request).await
    }

    pub(crate) fn forget(&mut self, name: &str) {
        self.cookies.remove(name);
    }
}

pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// The query parameter `name` of a URL.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| {
            let bytes: Vec<u8> = {
                let mut out = Vec::new();
                let mut input = value.bytes();
                while let Some(byte) = input.next() {
                    if byte == b'%' {
                        let hex: String = input.by_ref().take(2).map(char::from).collect();
                        out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
                    } else if byte == b'+' {
                        out.push(b' ');
                    } else {
                        out.push(byte);
                    }
                }
                out
            };
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
}

fn assert_hardened(page: &Page) {
    let csp = page
        .headers
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "CSP: {csp:?}");
    assert!(csp.contains("frame-ancestors 'none'"), "CSP: {csp:?}");
    assert_eq!(
        page.headers
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|value| value.to_str().ok()),
        Some("no-store")
    );
}

fn authorize_path(client_id: &str, extra: &str) -> String {
    format!(
        "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20email\
         &state=s-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        encode(client_id),
        encode(REDIRECT)
    )
}

/// Signs the browser in through the sign-in page of `path`.
async fn sign_in(browser: &mut Browser, path: &str, email: &str, password: &str) -> Page {
    let page = browser.get(path).await;
    assert_status_page(&page, StatusCode::OK);
    browser
        .post(
            "/oauth2/authorize",
            &[
                ("request", &page.hidden("request")),
                ("csrf", &page.hidden("csrf")),
                ("step", "password"),
                ("email", email),
                ("password", password),
            ],
        )
        .await
}

fn assert_status_page(page: &Page, status: StatusCode) {
    assert_eq!(page.status, status, "{}", page.body);
}

async fn token_request(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let body = form
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let response = app
        .client
        .post(format!("http://{}/oauth2/token", app.address))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Of concurrent uses of one single-use grant: the one answer with tokens, after
/// checking that every other answer is `invalid_grant`.
fn only_winner(answers: &[(StatusCode, Value)]) -> &Value {
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|(status, _)| *status != StatusCode::OK)
            .all(|(status, body)| *status == StatusCode::BAD_REQUEST
                && body["error"] == "invalid_grant"),
        "{answers:?}"
    );
    won[0]
}

async fn decision(app: &TestApp, admin: &str, access_token: &str) -> Value {
    let reply = app
        .post(
            "/v1/tenants/acme/authorize",
            admin,
            json!({ "subject": { "token": access_token }, "scope": "tenant:read" }),
        )
        .await;
    assert_status(&reply, StatusCode::OK);
    reply.body
}

/// What PyJWT (`tests/checkers/verify_jwt.py`) says of each token against the JWKS.
async fn pyjwt_verdicts(
    app: &TestApp,
    issuer: &str,
    audience: &str,
    tokens: Vec<String>,
) -> Vec<String> {
    let (url, issuer, audience) = (
        format!("http://{}/oauth2/jwks", app.address),
        issuer.to_owned(),
        audience.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("checkers")
            .join("verify_jwt.py");
        let output = std::process::Command::new(tests::smtp::python())
            .arg(script)
            .args([url.as_str(), issuer.as_str(), audience.as_str()])
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

/// A provider with tenants `acme` and `globex` and their admins, and ada, an active
/// member of acme (and of globex with `in_globex`).
struct World {
    app: TestApp,
    _keys: KeyDir,
    root: String,
    acme_admin: String,
    globex_admin: String,
    ada: String,
}

async fn world(store: StoreKind, in_globex: bool) -> World {
    let (app, keys) = spawn_provider(store).await;
    let root = app.root_token().await;
    let (acme_admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let (globex_admin, _) = tenant_with_admin(&app, &root, "globex").await;
    let ada = new_user(&app, &root, "ada@example.com", PASSWORD).await;
    add_member(&app, &acme_admin, "acme", &ada, json!([])).await;
    if in_globex {
        add_member(&app, &globex_admin, "globex", &ada, json!([])).await;
    }
    World {
        app,
        _keys: keys,
        root,
        acme_admin,
        globex_admin,
        ada,
    }
}

async fn the_code_flow_runs_through_the_hosted_pages(store: StoreKind) {
    let World {
        app,
        _keys,
        root,
        acme_admin,
        globex_admin,
        ada,
    } = world(store, true).await;
    let client = app
        .post(
            "/v1/oauth-clients",
            &root,
            json!({ "name": "Portal", "type": "public", "redirect_uris": [REDIRECT] }),
        )
        .await;
    assert_status(&client, StatusCode::CREATED);
    let client_id = text(&client.body, "client_id").to_owned();

    // Discovery names this issuer.
    let issuer = format!("http://{}", app.address);
    let discovery = app
        .send(Method::GET, "/.well-known/openid-configuration", None, None)
        .await;
    assert_status(&discovery, StatusCode::OK);
    assert_eq!(discovery.body["issuer"], issuer.as_str());
    assert_eq!(
        discovery.body["token_endpoint"],
        format!("{issuer}/oauth2/token").as_str()
    );

    // A redirect URI that is not registered stops on our page: no redirect at all.
    let mut browser = Browser::new(&app);
    let open = browser
        .get(&authorize_path(&client_id, "").replace(
            &encode(REDIRECT),
            &encode("https://evil.example.com/callback"),
        ))
        .await;
    assert_status_page(&open, StatusCode::BAD_REQUEST);
    assert!(open.headers.get(LOCATION).is_none());
    assert_hardened(&open);

    // The sign-in page; a post without the CSRF token is refused.
    let path = authorize_path(&client_id, "");
    let first = browser.get(&path).await;
    assert_status_page(&first, StatusCode::OK);
    assert_hardened(&first);
    assert!(first.body.contains("<label for=\"email\">"));
    let forged = browser
        .post(
            "/oauth2/authorize",
            &[
                ("request", &first.hidden("request")),
                ("step", "password"),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_status_page(&forged, StatusCode::FORBIDDEN);
    assert!(!forged.headers.get_all(SET_COOKIE).iter().any(|value| {
        value
            .to_str()
            .unwrap_or_default()
            .starts_with("ue_session=")
    }));

    // An unknown email and a wrong password look the same.
    let wrong = sign_in(&mut browser, &path, "ada@example.com", "not the password").await;
    let unknown = sign_in(
        &mut browser,
        &path,
        "nobody@example.com",
        "not the password",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(
        unknown
            .body
            .replace("nobody@example.com", "ada@example.com"),
        wrong.body
    );
    assert!(wrong.body.contains("Incorrect email or password"));

    // Signing in: a session cookie, then the tenant choice (two memberships).
    let signed_in = sign_in(&mut browser, &path, "ada@example.com", PASSWORD).await;
    assert_status_page(&signed_in, StatusCode::SEE_OTHER);
    assert_hardened(&signed_in);
    let cookie = signed_in
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap_or_default().to_owned())
        .find(|value| value.starts_with("ue_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let chooser = browser.get(&signed_in.location()).await;
    assert_status_page(&chooser, StatusCode::OK);
    assert!(chooser.body.contains("value=\"acme\"") && chooser.body.contains("value=\"globex\""));
    let chosen = browser
        .post(
            "/oauth2/authorize",
            &[
                ("request", &chooser.hidden("request")),
                ("csrf", &chooser.hidden("csrf")),
                ("step", "tenant"),
                ("tenant", "acme"),
            ],
        )
        .await;
    assert_status_page(&chosen, StatusCode::SEE_OTHER);
    let back = browser.get(&chosen.location()).await;
    assert_status_page(&back, StatusCode::FOUND);
    assert_hardened(&back);
    let location = back.location();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("s-1"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(issuer.as_str())
    );
    let code = query_param(&location, "code").expect("a code");

    // Twenty token requests with that code at once: one answer with tokens.
    let answers = futures::future::join_all((0..20).map(|_| {
        let (app, code, client_id) = (&app, code.clone(), client_id.clone());
        async move {
            token_request(
                app,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                    ("client_id", &client_id),
                ],
            )
            .await
        }
    }))
    .await;
    let winner = only_winner(&answers);
    let access_token = winner["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    assert_eq!(winner["token_type"], "Bearer");

    // PyJWT, a second library no one here wrote, verifies both tokens against the JWKS.
    let id_token = winner["id_token"].as_str().expect("id token").to_owned();
    let verdicts = pyjwt_verdicts(
        &app,
        &issuer,
        &client_id,
        vec![access_token.clone(), id_token],
    )
    .await;
    assert_eq!(verdicts, [format!("valid {ada}"), format!("valid {ada}")]);

    // userinfo answers for the token's user and tenant.
    let info = app
        .send(Method::GET, "/oauth2/userinfo", Some(&access_token), None)
        .await;
    assert_status(&info, StatusCode::OK);
    assert_eq!(info.body["sub"], ada.as_str());
    assert_eq!(info.body["tenant"], "acme");
    assert_eq!(info.body["email"], "ada@example.com");

    // The access token as `subject.token`: allowed while the account is active, refused
    // on the very next decision once it is suspended, allowed again when reactivated.
    assert_eq!(
        decision(&app, &acme_admin, &access_token).await["decision"],
        "allow"
    );
    let suspend = |state: &'static str| {
        let (app, admin, ada) = (&app, acme_admin.clone(), ada.clone());
        async move {
            let reply = app
                .send(
                    Method::PATCH,
                    &format!("/v1/tenants/acme/members/{ada}"),
                    Some(&admin),
                    Some(json!({ "state": state })),
                )
                .await;
            assert_status(&reply, StatusCode::OK);
        }
    };
    suspend("suspended").await;
    let denied = decision(&app, &acme_admin, &access_token).await;
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["reason"], "account_suspended");
    suspend("active").await;
    assert_eq!(
        decision(&app, &acme_admin, &access_token).await["decision"],
        "allow"
    );

    // Logging out ends the session: the same unexpired token is no subject any more.
    let confirm = browser.get("/oauth2/logout").await;
    assert_status_page(&confirm, StatusCode::OK);
    assert_hardened(&confirm);
    let out = browser
        .post(
            "/oauth2/logout",
            &[("request", ""), ("csrf", &confirm.hidden("csrf"))],
        )
        .await;
    assert_status_page(&out, StatusCode::OK);
    let ended = decision(&app, &acme_admin, &access_token).await;
    assert_eq!(ended["decision"], "deny");
    assert_eq!(ended["reason"], "subject_not_found");
    let info = app
        .send(Method::GET, "/oauth2/userinfo", Some(&access_token), None)
        .await;
    assert_eq!(info.status, StatusCode::UNAUTHORIZED);

    // A tenant client of globex cannot sign in someone who is not globex's member:
    // the page answers as for a wrong password.
    let only_acme = new_user(&app, &root, "bob@example.com", PASSWORD).await;
    add_member(&app, &acme_admin, "acme", &only_acme, json!([])).await;
    let globex_client = app
        .post(
            "/v1/tenants/globex/oauth-clients",
            &globex_admin,
            json!({ "name": "Globex app", "type": "public", "redirect_uris": [REDIRECT] }),
        )
        .await;
    assert_status(&globex_client, StatusCode::CREATED);
    let globex_path = authorize_path(text(&globex_client.body, "client_id"), "");
    browser.forget("ue_session");
    let outsider = sign_in(&mut browser, &globex_path, "bob@example.com", PASSWORD).await;
    assert_eq!(outsider.status, StatusCode::UNAUTHORIZED);
    assert!(outsider.body.contains("Incorrect email or password"));
}

/// What the Authlib relying party (`tests/checkers/oidc_rp.py`) says of a sign-in: its
/// check lines and its summary.
async fn relying_party(app: &TestApp, args: Vec<String>) -> (bool, String) {
    let issuer = format!("http://{}", app.address);
    tokio::task::spawn_blocking(move || {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("checkers")
            .join("oidc_rp.py");
        let output = std::process::Command::new(tests::smtp::python())
            .arg(script)
            .arg(&issuer)
            .args(&args)
            .output()
            .expect("the relying party runs");
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    })
    .await
    .expect("joined")
}

async fn a_relying_party_no_one_here_wrote_signs_in_refreshes_and_revokes(store: StoreKind) {
    let World {
        app,
        _keys,
        root,
        acme_admin,
        ..
    } = world(store, false).await;

    // A confidential platform client, with the TOTP step (acr_values=aal2).
    let session = app.login("ada@example.com", PASSWORD).await;
    let authenticator = tests::http::enrol_totp(&app, &session).await;
    let secret = authenticator.0.get_secret_base32();
    let platform = app
        .post(
            "/v1/oauth-clients",
            &root,
            json!({ "name": "Portal", "type": "confidential", "redirect_uris": [REDIRECT] }),
        )
        .await;
    assert_status(&platform, StatusCode::CREATED);
    let (passed, report) = relying_party(
        &app,
        vec![
            text(&platform.body, "client_id").to_owned(),
            text(&platform.body, "client_secret").to_owned(),
            REDIRECT.to_owned(),
            "ada@example.com".to_owned(),
            PASSWORD.to_owned(),
            "--tenant".to_owned(),
            "acme".to_owned(),
            "--totp-secret".to_owned(),
            secret,
        ],
    )
    .await;
    assert!(passed, "{report}");
    assert!(report.contains("ok acr_aal2"), "{report}");
    assert!(report.contains("ok refresh_family_revoked"), "{report}");

    // A public tenant client: PKCE alone, no secret.
    let public = app
        .post(
            "/v1/tenants/acme/oauth-clients",
            &acme_admin,
            json!({ "name": "Docs", "type": "public", "redirect_uris": [REDIRECT] }),
        )
        .await;
    assert_status(&public, StatusCode::CREATED);
    let (passed, report) = relying_party(
        &app,
        vec![
            text(&public.body, "client_id").to_owned(),
            "-".to_owned(),
            REDIRECT.to_owned(),
            "ada@example.com".to_owned(),
            PASSWORD.to_owned(),
        ],
    )
    .await;
    assert!(passed, "{report}");
    assert!(report.contains("\"tenant\": \"acme\""), "{report}");
}

async fn the_hosted_pages_work_in_a_real_browser_by_keyboard(store: StoreKind) {
    let browser_checks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        browser_checks
            .join("node_modules")
            .join("playwright-core")
            .exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser checks need Chromium and their npm packages: run `cargo xtask checkers` \
         (cargo xtask ci installs them) and `apt-get install chromium`"
    );
    let World {
        app, _keys, root, ..
    } = world(store, true).await;
    let session = app.login("ada@example.com", PASSWORD).await;
    let secret = tests::http::enrol_totp(&app, &session)
        .await
        .0
        .get_secret_base32();
    // A third-party client, so that the consent page is walked and checked too.
    let client = app
        .post(
            "/v1/oauth-clients",
            &root,
            json!({ "name": "Portal", "type": "public", "redirect_uris": [REDIRECT],
                    "first_party": false }),
        )
        .await;
    assert_status(&client, StatusCode::CREATED);
    let screenshots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("browser-screenshots")
        .join(format!("{store:?}").to_lowercase());
    let args = vec![
        browser_checks.join("signin.mjs").display().to_string(),
        "--base".to_owned(),
        format!("http://{}", app.address),
        "--client-id".to_owned(),
        text(&client.body, "client_id").to_owned(),
        "--redirect-uri".to_owned(),
        REDIRECT.to_owned(),
        "--email".to_owned(),
        "ada@example.com".to_owned(),
        "--password".to_owned(),
        PASSWORD.to_owned(),
        "--totp-secret".to_owned(),
        secret,
        "--tenant".to_owned(),
        "acme".to_owned(),
        "--screenshots".to_owned(),
        screenshots.display().to_string(),
        "--consent".to_owned(),
        "allow".to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(&args)
            .output()
            .expect("node runs")
    })
    .await
    .expect("joined");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(report.contains("\"code_received\":true"), "{report}");
    assert!(screenshots.join("01-sign-in.png").exists());
}

/// A token request with HTTP Basic client authentication.
async fn basic_token_request(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    use base64::Engine as _;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(client_id),
        encode(secret)
    ));
    let body = form
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let response = app
        .client
        .post(format!("http://{}/oauth2/token", app.address))
        .header(
            reqwest::header::AUTHORIZATION,
            format!("Basic {credentials}"),
        )
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn a_client_credentials_token_acts_like_its_tenants_api_key(store: StoreKind) {
    let (app, _keys) = spawn_provider(store).await;
    let root = app.root_token().await;
    let (acme_admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let (_globex_admin, _) = tenant_with_admin(&app, &root, "globex").await;
    let service = app
        .post(
            "/v1/tenants/acme/oauth-clients",
            &acme_admin,
            json!({ "name": "Worker", "type": "confidential", "redirect_uris": [REDIRECT],
                    "scopes": ["members:read", "authz:check"] }),
        )
        .await;
    assert_status(&service, StatusCode::CREATED);
    let (id, secret) = (
        text(&service.body, "client_id").to_owned(),
        text(&service.body, "client_secret").to_owned(),
    );

    // A scope it does not hold is refused; a wrong secret is 401.
    let (status, body) = basic_token_request(
        &app,
        &id,
        &secret,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api_keys:write"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, body) = basic_token_request(
        &app,
        &id,
        "uecs_wrong",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // Its token lists members of its tenant, and nothing of another tenant.
    let (status, body) =
        basic_token_request(&app, &id, &secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let token = body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let members = app.get("/v1/tenants/acme/members", &token).await;
    assert_status(&members, StatusCode::OK);
    let outside = app.get("/v1/tenants/globex/members", &token).await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
    assert_eq!(outside.code(), Some("tenant_not_found"));
    // Beyond its scopes: 403 credential_scope_missing, as an API key.
    let key = app
        .post(
            "/v1/tenants/acme/api-keys",
            &token,
            json!({ "name": "k", "scopes": ["members:read"] }),
        )
        .await;
    assert_eq!(key.status, StatusCode::FORBIDDEN);
    assert_eq!(key.body["reason"], "credential_scope_missing");
    // It may ask authorize (authz:check), on both paths.
    let asked = app
        .post(
            "/v1/tenants/acme/authorize",
            &token,
            json!({ "subject": { "user_id": text(&members.body["items"][0], "user_id") },
                    "scope": "tenant:read" }),
        )
        .await;
    assert_status(&asked, StatusCode::OK);
    assert_eq!(asked.body["decision"], "allow");
    // Its refused request is recorded as the client's.
    let audit = app
        .get("/v1/tenants/acme/audit?action=api_key.create", &acme_admin)
        .await;
    assert_status(&audit, StatusCode::OK);
    assert!(
        audit.body["items"].as_array().is_some_and(|items| items
            .iter()
            .any(|item| item["actor"]["type"] == "oauth_client"
                && item["actor"]["id"] == id.as_str())),
        "{}",
        audit.body
    );

    // Deleting the client ends its token on the very next request.
    let deleted = tests::http::delete(
        &app,
        &format!("/v1/tenants/acme/oauth-clients/{id}"),
        &acme_admin,
    )
    .await;
    assert_status(&deleted, StatusCode::NO_CONTENT);
    let after = app.get("/v1/tenants/acme/members", &token).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

/// The types of tenant `tenant`'s events, oldest first.
async fn event_types(app: &TestApp, admin: &str, tenant: &str) -> Vec<String> {
    let feed = app
        .get(&format!("/v1/tenants/{tenant}/events?limit=200"), admin)
        .await;
    assert_status(&feed, StatusCode::OK);
    feed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Posts the consent page's form with `decision`.
async fn answer_consent(browser: &mut Browser, page: &Page, decision: &str) -> Page {
    browser
        .post(
            "/oauth2/authorize",
            &[
                ("request", &page.hidden("request")),
                ("csrf", &page.hidden("csrf")),
                ("step", "consent"),
                ("decision", decision),
            ],
        )
        .await
}

/// Redeems `location`'s code for tokens (a public client with PKCE).
async fn redeem(app: &TestApp, client_id: &str, location: &str) -> Value {
    let code = query_param(location, "code").expect("a code");
    let (status, body) = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn refresh(app: &TestApp, client_id: &str, token: &str) -> (StatusCode, Value) {
    token_request(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ],
    )
    .await
}

async fn a_third_party_client_asks_for_consent_once_and_the_member_can_revoke_it(store: StoreKind) {
    let World {
        app,
        _keys,
        root,
        acme_admin,
        ada,
        ..
    } = world(store, false).await;
    let bob = new_user(&app, &root, "bob@example.com", PASSWORD).await;
    add_member(&app, &acme_admin, "acme", &bob, json!([])).await;
    let registered = app
        .post(
            "/v1/tenants/acme/oauth-clients",
            &acme_admin,
            json!({ "name": "Gadget", "type": "public", "redirect_uris": [REDIRECT],
                    "first_party": false }),
        )
        .await;
    assert_status(&registered, StatusCode::CREATED);
    assert_eq!(registered.body["first_party"], false);
    let client_id = text(&registered.body, "client_id").to_owned();
    let consents_path = format!("/v1/tenants/acme/members/{ada}/consents");

    // After signing in, the consent page names the client and what it may do.
    let mut browser = Browser::new(&app);
    let path = authorize_path(&client_id, "&tenant=acme");
    let signed_in = sign_in(&mut browser, &path, "ada@example.com", PASSWORD).await;
    assert_status_page(&signed_in, StatusCode::SEE_OTHER);
    let consent = browser.get(&signed_in.location()).await;
    assert_status_page(&consent, StatusCode::OK);
    assert_hardened(&consent);
    assert!(consent.body.contains("Gadget") && consent.body.contains("See your email address"));

    // prompt=none cannot ask: consent_required, back at the client.
    let silent = browser
        .get(&authorize_path(&client_id, "&tenant=acme&prompt=none"))
        .await;
    assert_status_page(&silent, StatusCode::FOUND);
    assert_eq!(
        query_param(&silent.location(), "error").as_deref(),
        Some("consent_required")
    );

    // A consent without the CSRF token is refused, and nothing is kept.
    let forged = browser
        .post(
            "/oauth2/authorize",
            &[
                ("request", &consent.hidden("request")),
                ("step", "consent"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_status_page(&forged, StatusCode::FORBIDDEN);
    let none = app.get(&consents_path, &acme_admin).await;
    assert_status(&none, StatusCode::OK);
    assert_eq!(none.body["items"], json!([]));

    // Deny: back at the client with access_denied, no code, nothing kept.
    let denied = answer_consent(&mut browser, &consent, "deny").await;
    assert_status_page(&denied, StatusCode::FOUND);
    assert!(denied.location().starts_with(REDIRECT));
    assert_eq!(
        query_param(&denied.location(), "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&denied.location(), "code").is_none());
    assert_eq!(
        app.get(&consents_path, &acme_admin).await.body["items"],
        json!([])
    );

    // Allow: the code comes at once, and the consent is kept, audited and evented.
    let consent = browser.get(&path).await;
    assert_status_page(&consent, StatusCode::OK);
    let allowed = answer_consent(&mut browser, &consent, "allow").await;
    assert_status_page(&allowed, StatusCode::FOUND);
    assert_eq!(
        query_param(&allowed.location(), "state").as_deref(),
        Some("s-1")
    );
    let first = redeem(&app, &client_id, &allowed.location()).await;
    let kept = app.get(&consents_path, &acme_admin).await;
    assert_status(&kept, StatusCode::OK);
    assert_eq!(kept.body["items"][0]["client_id"], client_id.as_str());
    assert_eq!(kept.body["items"][0]["scopes"], json!(["email", "openid"]));
    assert!(event_types(&app, &acme_admin, "acme")
        .await
        .contains(&"oauth.consent_granted".to_owned()));

    // The next sign-in asks nothing; prompt=consent asks again.
    let again = browser.get(&path).await;
    assert_status_page(&again, StatusCode::FOUND);
    assert!(query_param(&again.location(), "code").is_some());
    let asked = browser
        .get(&authorize_path(&client_id, "&tenant=acme&prompt=consent"))
        .await;
    assert_status_page(&asked, StatusCode::OK);
    assert!(asked.body.contains("Allow access?"));

    // Twenty uses of one refresh token at once: one rotation wins; the others are
    // reuse, which revokes the whole family, the winner's new token included.
    let refresh_token = first["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let answers =
        futures::future::join_all((0..20).map(|_| refresh(&app, &client_id, &refresh_token))).await;
    let winner = only_winner(&answers);
    let rotated = winner["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let (status, body) = refresh(&app, &client_id, &rotated).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // Another member may not revoke ada's consent; ada may, and it ends the client's
    // refresh tokens at once and asks again at the next sign-in.
    let fresh = redeem(&app, &client_id, &again.location()).await;
    let live = fresh["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let bob_token = app.login("bob@example.com", PASSWORD).await;
    let revoke_path = format!("{consents_path}/{client_id}");
    let refused = tests::http::delete(&app, &revoke_path, &bob_token).await;
    assert_status(&refused, StatusCode::FORBIDDEN);
    let ada_token = app.login("ada@example.com", PASSWORD).await;
    let mine = app.get(&consents_path, &ada_token).await;
    assert_status(&mine, StatusCode::OK);
    assert_eq!(mine.body["items"].as_array().map(Vec::len), Some(1));
    let revoked = tests::http::delete(&app, &revoke_path, &ada_token).await;
    assert_status(&revoked, StatusCode::NO_CONTENT);
    let (status, body) = refresh(&app, &client_id, &live).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let asked = browser.get(&path).await;
    assert_status_page(&asked, StatusCode::OK);
    assert!(asked.body.contains("Allow access?"));
    let gone = tests::http::delete(&app, &revoke_path, &ada_token).await;
    assert_status(&gone, StatusCode::NOT_FOUND);
    assert!(event_types(&app, &acme_admin, "acme")
        .await
        .contains(&"oauth.consent_revoked".to_owned()));

    // A first-party client (the default) never asks.
    let own = app
        .post(
            "/v1/tenants/acme/oauth-clients",
            &acme_admin,
            json!({ "name": "Acme app", "type": "public", "redirect_uris": [REDIRECT] }),
        )
        .await;
    assert_status(&own, StatusCode::CREATED);
    assert_eq!(own.body["first_party"], true);
    let straight = browser
        .get(&authorize_path(
            text(&own.body, "client_id"),
            "&prompt=consent",
        ))
        .await;
    assert_status_page(&straight, StatusCode::FOUND);
    assert!(query_param(&straight.location(), "code").is_some());
}

/// The login throttle of SPEC §3.6 holds on the hosted sign-in page, across two nodes:
/// of 20 concurrent attempts at one email, only the allowance is tried; the rest get the
/// 429 page with `Retry-After`, and then even the right password waits.
async fn the_sign_in_page_is_throttled_across_nodes(store: StoreKind) {
    let (app, keys) = spawn_provider_with(
        store,
        AppOptions {
            login_per_minute: 5,
            ..AppOptions::default()
        },
    )
    .await;
    let other = app
        .another_node_configured(|config| keys.configure(store, config))
        .await;
    let root = app.root_token().await;
    new_user(&app, &root, "ada@example.com", PASSWORD).await;
    let client = app
        .post(
            "/v1/oauth-clients",
            &root,
            json!({ "name": "Portal", "type": "public", "redirect_uris": [REDIRECT] }),
        )
        .await;
    assert_status(&client, StatusCode::CREATED);
    let path = authorize_path(text(&client.body, "client_id"), "");
    let attempts = futures::future::join_all((0..20).map(|at| {
        let node = if at % 2 == 0 { &app } else { &other };
        let path = path.clone();
        async move {
            let mut browser = Browser::new(node);
            sign_in(&mut browser, &path, "ada@example.com", "not the password").await
        }
    }))
    .await;
    let statuses: Vec<StatusCode> = attempts.iter().map(|page| page.status).collect();
    let tried = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled: Vec<&Page> = attempts
        .iter()
        .filter(|page| page.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(tried <= 5, "{statuses:?}");
    assert_eq!(tried + throttled.len(), 20, "{statuses:?}");
    for page in &throttled {
        assert_hardened(page);
        let retry: u64 = page
            .headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .expect("Retry-After");
        assert!((1..=60).contains(&retry), "{retry}");
    }
    let mut browser = Browser::new(&other);
    let right = sign_in(&mut browser, &path, "ada@example.com", PASSWORD).await;
    assert_status_page(&right, StatusCode::TOO_MANY_REQUESTS);
}

/// A form post to a provider endpoint as a public client (`client_id` alone).
async fn provider_post(
    app: &TestApp,
    path: &str,
    client_id: &str,
    token: &str,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("http://{}{path}", app.address))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!(
            "token={}&client_id={}",
            encode(token),
            encode(client_id)
        ))
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Whether the store still holds the refresh token `token` of `tenant` (live or not).
async fn grant_kept(app: &TestApp, tenant: &str, token: &str) -> bool {
    let tenant = domain::ids::TenantId::parse(tenant).expect("tenant");
    let mut tx = app
        .store()
        .begin(domain::ports::TxScope::Tenant(tenant.clone()))
        .await
        .expect("tx");
    tx.get_grant(
        &tenant,
        domain::oidc::GrantKind::Refresh,
        &domain::usecases::hash_token(token),
    )
    .await
    .expect("read")
    .is_some()
}

/// A client's tokens are its own: another client's introspection sees nothing and its
/// revocation changes nothing; a platform client's sign-ins in two tenants are two
/// grants, and deleting the client deletes both.
async fn tokens_are_their_clients_own_and_go_with_it(store: StoreKind) {
    let World {
        app,
        _keys,
        root,
        acme_admin,
        ..
    } = world(store, true).await;
    let register = |path: &'static str, token: String| {
        let app = &app;
        async move {
            let reply = app
                .post(
                    path,
                    &token,
                    json!({ "name": "App", "type": "public", "redirect_uris": [REDIRECT] }),
                )
                .await;
            assert_status(&reply, StatusCode::CREATED);
            text(&reply.body, "client_id").to_owned()
        }
    };
    let portal = register("/v1/oauth-clients", root.clone()).await;
    let acme_app = register("/v1/tenants/acme/oauth-clients", acme_admin.clone()).await;

    let mut browser = Browser::new(&app);
    let signed_in = sign_in(
        &mut browser,
        &authorize_path(&portal, "&tenant=acme"),
        "ada@example.com",
        PASSWORD,
    )
    .await;
    let back = browser.get(&signed_in.location()).await;
    let in_acme = redeem(&app, &portal, &back.location()).await;
    let back = browser
        .get(&authorize_path(&portal, "&tenant=globex"))
        .await;
    let in_globex = redeem(&app, &portal, &back.location()).await;
    let token = |tokens: &Value, name: &str| tokens[name].as_str().expect(name).to_owned();
    let (acme_access, acme_refresh) = (
        token(&in_acme, "access_token"),
        token(&in_acme, "refresh_token"),
    );
    let globex_refresh = token(&in_globex, "refresh_token");

    // The client itself sees its tokens; the tenant's client sees nothing of them.
    for owned in [&acme_access, &acme_refresh] {
        let (status, body) = provider_post(&app, "/oauth2/introspect", &portal, owned).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["tenant"], "acme", "{body}");
        let (status, body) = provider_post(&app, "/oauth2/introspect", &acme_app, owned).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({ "active": false }));
    }
    // Another client's revocation is answered 200 (RFC 7009 §2.2) and changes nothing.
    let (status, _) = provider_post(&app, "/oauth2/revoke", &acme_app, &acme_refresh).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = refresh(&app, &portal, &acme_refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let acme_refresh = token(&body, "refresh_token");

    // Deleting the platform client deletes its grants in every tenant.
    assert!(grant_kept(&app, "acme", &acme_refresh).await);
    assert!(grant_kept(&app, "globex", &globex_refresh).await);
    let deleted = tests::http::delete(&app, &format!("/v1/oauth-clients/{portal}"), &root).await;
    assert_status(&deleted, StatusCode::NO_CONTENT);
    assert!(!grant_kept(&app, "acme", &acme_refresh).await);
    assert!(!grant_kept(&app, "globex", &globex_refresh).await);
    let (status, body) = refresh(&app, &portal, &globex_refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
}

tests::on_both_stores!(
    tokens_are_their_clients_own_and_go_with_it,
    a_third_party_client_asks_for_consent_once_and_the_member_can_revoke_it,
    the_sign_in_page_is_throttled_across_nodes,
    the_code_flow_runs_through_the_hosted_pages,
    a_relying_party_no_one_here_wrote_signs_in_refreshes_and_revokes,
    the_hosted_pages_work_in_a_real_browser_by_keyboard,
    a_client_credentials_token_acts_like_its_tenants_api_key
);
