//! No secret is ever logged or echoed (SPEC §7): the real `user-engine` binary runs
//! through every path a secret takes — the bootstrap password, logins right and wrong,
//! password changes, invitations, session tokens, API keys (made, used, revoked, made
//! up), TOTP enrolment and codes; a PostgreSQL URL with a password for `migrate`,
//! `bootstrap`, `serve`, `relay`, `audit verify` and `diagnose --all`, and passwords on
//! URLs that fail (an unreachable port, a missing database, a malformed URL, a missing
//! CA file); NATS URLs with a user and password (right, wrong, unreachable), a token, an
//! invalid nkey seed; invalid secret settings (too short, not UTF-8, a wrong scheme, a
//! misspelt name) and config files full of secrets that do not parse —
//! logging at `trace` in JSON. Everything each process wrote (stdout and stderr) and
//! every HTTP answer (status, headers, body) is then searched for every secret, raw,
//! percent-encoded, form-encoded and JSON-escaped, and for the random core of each
//! (which survives any encoding); only the one answer that hands a secret out may
//! carry it. Each run also asserts it did what it should, so a process that said
//! nothing cannot pass for one that kept a secret.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation aborts the test"
)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{ConnectOptions, Connection, Executor};

const ROOT_EMAIL: &str = "root@example.com";
const ADMIN_EMAIL: &str = "boss@acme.example";
const TENANT: &str = "acme";
/// The log filter of every process: everything, from every crate. (async-nats logs its
/// CONNECT message, password included, at trace; the binary caps that target whatever
/// this says, which this test proves.)
const LOG: &str = "trace";
/// How long any one process may run.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);
/// PostgreSQL with trust authentication, as CI and `cargo xtask db` run it.
const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A random core no log or answer could hold by chance: 16 hex digits.
fn core() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// A secret to search for: what it is, its value, and its core when the test made it.
#[derive(Debug, Clone)]
struct Secret {
    what: String,
    value: String,
    core: Option<String>,
    /// A few digits (a TOTP code), which could occur by chance inside a longer number
    /// or a timestamp: searched for as a token of its own only.
    short: bool,
}

impl Secret {
    /// The texts whose presence would reveal it.
    fn forms(&self) -> Vec<String> {
        let mut forms = vec![
            self.value.clone(),
            percent_encode(&self.value),
            percent_encode(&self.value).replace("%20", "+"),
        ];
        let json = serde_json::to_string(&self.value).expect("a JSON string");
        forms.push(json[1..json.len() - 1].to_owned());
        forms.extend(self.core.clone());
        // A server-made token may leak in part (a prefix in a log line).
        if self.core.is_none() && !self.short && self.value.len() >= 32 {
            forms.push(self.value[..16].to_owned());
            forms.push(self.value[self.value.len() - 16..].to_owned());
        }
        forms.sort();
        forms.dedup();
        forms
    }

    /// Where in `text` it occurs, if anywhere.
    fn found_in(&self, text: &str) -> Option<String> {
        if self.short {
            let bytes = text.as_bytes();
            return text.match_indices(&self.value).find_map(|(at, _)| {
                let before = at.checked_sub(1).map(|index| bytes[index]);
                let after = bytes.get(at + self.value.len()).copied();
                let standalone = matches!(before, Some(b'"' | b'=' | b' ' | b'\'' | b'`'))
                    && !after.is_some_and(|byte| byte.is_ascii_digit());
                standalone.then(|| self.value.clone())
            });
        }
        self.forms().into_iter().find(|form| text.contains(form))
    }
}

/// Everything the test saw: each process's output and each HTTP answer, with the
/// secrets an answer hands out (and so may carry), and every secret used.
#[derive(Debug, Default)]
struct Transcript {
    entries: Mutex<Vec<Entry>>,
    secrets: Mutex<Vec<Secret>>,
}

#[derive(Debug)]
struct Entry {
    label: String,
    text: String,
    hands_out: Vec<String>,
}

impl Transcript {
    fn record(&self, label: impl Into<String>, text: String, hands_out: Vec<String>) {
        self.entries.lock().unwrap().push(Entry {
            label: label.into(),
            text,
            hands_out,
        });
    }

    /// A secret the test makes: `prefix`, a random core, `suffix`.
    fn make(&self, what: &str, prefix: &str, suffix: &str) -> String {
        let core = core();
        let value = format!("{prefix}{core}{suffix}");
        self.secrets.lock().unwrap().push(Secret {
            what: what.to_owned(),
            value: value.clone(),
            core: Some(core),
            short: false,
        });
        value
    }

    /// A secret the server made, or one without a core.
    fn learn(&self, what: &str, value: &str) {
        assert!(!value.is_empty(), "{what} is empty");
        self.secrets.lock().unwrap().push(Secret {
            what: what.to_owned(),
            value: value.to_owned(),
            core: None,
            short: value.len() < 12 && value.bytes().all(|byte| byte.is_ascii_digit()),
        });
    }

    /// Every place a secret shows where it may not: any process output, any answer
    /// but the one that handed it out.
    fn leaks(&self) -> Vec<String> {
        let entries = self.entries.lock().unwrap();
        let secrets = self.secrets.lock().unwrap();
        let mut leaks = Vec::new();
        for secret in secrets.iter() {
            for entry in entries.iter() {
                if entry.hands_out.contains(&secret.value) {
                    continue;
                }
                if let Some(form) = secret.found_in(&entry.text) {
                    let at = entry.text.find(&form).unwrap_or(0);
                    let context: String = entry
                        .text
                        .chars()
                        .skip(entry.text[..at].chars().count().saturating_sub(200))
                        .take(form.chars().count() + 400)
                        .collect();
                    leaks.push(format!(
                        "{} ({form:?}) in {}: …{context}…",
                        secret.what, entry.label
                    ));
                }
            }
        }
        leaks
    }
}

/// A temporary directory, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "user-engine-secrets-{what}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The binary with only the settings given, JSON logs at `LOG`, on 127.0.0.1.
fn binary(args: &[&str], settings: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_user-engine"));
    command
        .args(args)
        .env_clear()
        .env("USER_ENGINE_LISTEN", "127.0.0.1:0")
        .env("USER_ENGINE_LOG_FORMAT", "json")
        .env("USER_ENGINE_LOG", LOG)
        .envs(settings.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Reads a pipe to its end into `sink`, line by line; when a log line with the awaited
/// message comes, sends its `address` field (empty when it has none).
fn drain(
    pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    awaited: Option<(&'static str, mpsc::Sender<String>)>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some((message, sender)) = &awaited {
                if let Ok(log) = serde_json::from_str::<Value>(&line) {
                    if log["fields"]["message"] == *message {
                        let address = log["fields"]["address"].as_str().unwrap_or_default();
                        let _ = sender.send(address.to_owned());
                    }
                }
            }
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    })
}

/// A process run to its end: its exit code and everything it wrote (recorded).
fn run(transcript: &Transcript, label: &str, mut command: Command) -> (Option<i32>, String) {
    let mut child = command.spawn().expect("the binary starts");
    let output = Arc::new(Mutex::new(String::new()));
    let readers = [
        drain(child.stdout.take().expect("stdout"), output.clone(), None),
        drain(child.stderr.take().expect("stderr"), output.clone(), None),
    ];
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > PROCESS_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{label} ran past {PROCESS_TIMEOUT:?}: {}",
                output.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    for reader in readers {
        reader.join().expect("reader");
    }
    let text = output.lock().unwrap().clone();
    println!(
        "{label}: {:?} in {:?}: {}",
        status.code(),
        started.elapsed(),
        text.lines().last().unwrap_or_default()
    );
    transcript.record(format!("output of {label}"), text.clone(), Vec::new());
    (status.code(), text)
}

/// Asserts a failed run exited with `code` and said `needles`.
fn assert_fails(outcome: &(Option<i32>, String), code: i32, needles: &[&str], label: &str) {
    let (status, output) = outcome;
    assert_eq!(*status, Some(code), "{label}: {output}");
    for needle in needles {
        assert!(
            output.contains(needle),
            "{label} does not say {needle:?}: {output}"
        );
    }
}

/// A running `serve`, killed if the test ends early.
struct Serve {
    label: String,
    child: Child,
    base: String,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Serve {
    /// Starts `serve` and waits until it listens.
    fn start(label: &str, settings: &[(&str, &str)]) -> Self {
        Self::start_until(label, &["serve"], settings, "listening")
    }

    /// Starts the binary with `args` and waits for a log line saying `message`.
    fn start_until(
        label: &str,
        args: &[&str],
        settings: &[(&str, &str)],
        message: &'static str,
    ) -> Self {
        let mut child = binary(args, settings).spawn().expect("the binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = mpsc::channel();
        let readers = vec![
            drain(child.stdout.take().expect("stdout"), output.clone(), None),
            drain(
                child.stderr.take().expect("stderr"),
                output.clone(),
                Some((message, sender)),
            ),
        ];
        let mut serve = Self {
            label: label.to_owned(),
            child,
            base: String::new(),
            output,
            readers,
        };
        match receiver.recv_timeout(PROCESS_TIMEOUT) {
            Ok(address) => serve.base = format!("http://{address}"),
            Err(_) => panic!(
                "{label} did not log {message:?}: {}",
                serve.output.lock().unwrap()
            ),
        }
        serve
    }

    /// SIGTERM, then the output (recorded); asserts a graceful stop.
    fn stop(mut self, transcript: &Transcript) -> String {
        let status = crate::terminate(&mut self.child, PROCESS_TIMEOUT)
            .unwrap_or_else(|| panic!("{} does not stop", self.label));
        for reader in self.readers.drain(..) {
            reader.join().expect("reader");
        }
        let text = self.output.lock().unwrap().clone();
        assert!(
            status.success(),
            "{} stopped with {status:?}: {text}",
            self.label
        );
        transcript.record(
            format!("output of {}", self.label),
            text.clone(),
            Vec::new(),
        );
        text
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

/// A request body: JSON, or raw text sent as JSON.
enum Body {
    Json(Value),
    Raw(String),
}

/// A client of one server that records every answer.
struct Http<'a> {
    client: reqwest::Client,
    base: String,
    transcript: &'a Transcript,
}

impl<'a> Http<'a> {
    fn new(serve: &Serve, transcript: &'a Transcript) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            base: serve.base.clone(),
            transcript,
        }
    }

    /// Sends a request and records its answer; `hands_out` names the JSON fields of the
    /// body that are secrets this answer gives (and so may carry).
    async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Body>,
        hands_out: &[&str],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        match body {
            Some(Body::Json(value)) => request = request.json(&value),
            Some(Body::Raw(text)) => {
                request = request
                    .header("content-type", "application/json")
                    .body(text);
            }
            None => {}
        }
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.expect("a body");
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let mut given = Vec::new();
        for field in hands_out {
            let value = &body[field];
            if let Some(secret) = value.as_str() {
                given.push(secret.to_owned());
            }
            for secret in value.as_array().into_iter().flatten() {
                given.extend(secret.as_str().map(str::to_owned));
            }
        }
        // The otpauth URI holds the TOTP secret it comes with.
        if let Some(uri) = body["otpauth_uri"].as_str() {
            given.push(uri.to_owned());
        }
        self.transcript.record(
            format!("answer to {method} {path}"),
            format!("{status}\n{headers}\n{text}"),
            given,
        );
        Reply { status, body }
    }

    async fn json(&self, method: &str, path: &str, bearer: Option<&str>, body: Value) -> Reply {
        self.call(method, path, bearer, Some(Body::Json(body)), &[])
            .await
    }

    async fn login(&self, email: &str, password: &str) -> Reply {
        self.call(
            "POST",
            "/v1/auth/password",
            None,
            Some(Body::Json(json!({"email": email, "password": password}))),
            &["token"],
        )
        .await
    }

    /// Logs in, expecting success; the token is a secret from then on.
    async fn session(&self, email: &str, password: &str) -> String {
        let reply = self.login(email, password).await;
        assert_eq!(reply.status, 200, "{email}: {reply:?}");
        let token = reply.body["token"].as_str().expect("a token").to_owned();
        self.transcript
            .learn(&format!("session token of {email}"), &token);
        token
    }

    /// Polls `path` until `done` holds of its status and text, for up to 15 s.
    async fn wait_for(&self, path: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
        let started = Instant::now();
        loop {
            let response = self
                .client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("answered");
            let status = response.status().as_u16();
            let headers = format!("{:?}", response.headers());
            let text = response.text().await.expect("text");
            if done(status, &text) || started.elapsed() > Duration::from_secs(15) {
                self.transcript.record(
                    format!("answer to GET {path}"),
                    format!("{status}\n{headers}\n{text}"),
                    Vec::new(),
                );
                return (status, text);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A `nats-server` of this test's own, with a user and password; killed and its
/// directory removed on drop.
struct PrivateNats {
    port: u16,
    child: Child,
    _dir: TempDir,
}

impl PrivateNats {
    fn start(user: &str, password: &str) -> Self {
        let dir = TempDir::new("nats");
        let port = closed_port();
        let config = dir.0.join("server.conf");
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n\
                 authorization {{ user: {user:?}, password: {password:?} }}\n",
                dir.0.join("js").display().to_string()
            ),
        )
        .expect("server.conf");
        let spawn = |program: &str| {
            Command::new(program)
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        // Debian installs it in /usr/sbin, which is not on every PATH.
        let child = spawn("nats-server")
            .or_else(|_| spawn("/usr/sbin/nats-server"))
            .expect("nats-server is installed");
        let nats = Self {
            port,
            child,
            _dir: dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nats-server does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nats
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL database of this test's own, dropped at the end.
struct Database {
    name: String,
}

impl Database {
    async fn create() -> Self {
        let name = format!("ue_secrets_{}", uuid::Uuid::now_v7().simple());
        let mut server = server_connection().await;
        server
            .execute(format!("create database {name}").as_str())
            .await
            .expect("database created");
        server.close().await.ok();
        Self { name }
    }

    async fn drop_now(self) {
        let mut server = server_connection().await;
        server
            .execute(format!("drop database if exists {} with (force)", self.name).as_str())
            .await
            .expect("database dropped");
        server.close().await.ok();
        std::mem::forget(self);
    }
}

impl Drop for Database {
    /// A test that fails midway still drops its database, from a thread of its own
    /// (`Drop` cannot await).
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut server = server_connection().await;
                let _ = server
                    .execute(format!("drop database if exists {name} with (force)").as_str())
                    .await;
            });
        })
        .join();
    }
}

async fn server_connection() -> sqlx::PgConnection {
    PG_SERVER
        .parse::<sqlx::postgres::PgConnectOptions>()
        .expect("a URL")
        .disable_statement_logging()
        .connect()
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (cargo xtask db starts it)")
}

/// The TOTP code of now + `offset` seconds for a base32 secret.
fn totp_code(secret: &str, offset: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("a base32 secret");
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, bytes).expect("a generator");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + offset;
    totp.generate(u64::try_from(now).expect("after 1970"))
}

/// Every path a secret takes through a running `serve`: passwords, sessions,
/// invitations, TOTP, API keys; and what the relay did with events.
async fn exercise(http: &Http<'_>, transcript: &Transcript, root_password: &str) {
    // Logins: a wrong password, then the right one.
    let wrong = transcript.make("a wrong root password", "wrong root pw ", " ü");
    let refused = http.login(ROOT_EMAIL, &wrong).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    let root = http.session(ROOT_EMAIL, root_password).await;

    // A tenant with an invited admin: the invitation token is handed out once.
    let created = http
        .call(
            "POST",
            "/v1/tenants",
            Some(&root),
            Some(Body::Json(json!({
                "id": TENANT, "display_name": "Acme", "admin": {"email": ADMIN_EMAIL}
            }))),
            &["invitation_token"],
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let invitation = created.body["invitation_token"]
        .as_str()
        .expect("an invitation token")
        .to_owned();
    transcript.learn("an invitation token", &invitation);
    let admin_password = transcript.make("the admin's first password", "admin pw/", "@x");
    let accepted = http
        .json(
            "POST",
            "/v1/auth/invitation",
            None,
            json!({"token": invitation, "password": admin_password}),
        )
        .await;
    assert_eq!(accepted.status, 204, "{accepted:?}");
    let again = transcript.make("a password sent with a used invitation", "again pw ", "");
    let reused = http
        .json(
            "POST",
            "/v1/auth/invitation",
            None,
            json!({"token": invitation, "password": again}),
        )
        .await;
    assert!(matches!(reused.status, 400..=499), "{reused:?}");
    let forged = transcript.make("a made-up invitation token", "inv", "");
    let reply = http
        .json(
            "POST",
            "/v1/auth/invitation",
            None,
            json!({"token": forged, "password": again}),
        )
        .await;
    assert!(matches!(reply.status, 400..=499), "{reply:?}");
    let admin = http.session(ADMIN_EMAIL, &admin_password).await;

    // A password change: a wrong current password, then the right one.
    let new_password = transcript.make("the admin's new password", "new \"admin\" pw \\", "");
    let wrong_current = transcript.make("a wrong current password", "not current ", "");
    let reply = http
        .json(
            "PUT",
            "/v1/me/password",
            Some(&admin),
            json!({"current_password": wrong_current, "new_password": new_password}),
        )
        .await;
    assert!(matches!(reply.status, 400..=403), "{reply:?}");
    let short = transcript.make("a too short new password", "s", "");
    let short = &short[..9];
    transcript.learn("a too short new password (cut)", short);
    let reply = http
        .json(
            "PUT",
            "/v1/me/password",
            Some(&admin),
            json!({"current_password": admin_password, "new_password": short}),
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reply = http
        .json(
            "PUT",
            "/v1/me/password",
            Some(&admin),
            json!({"current_password": admin_password, "new_password": new_password}),
        )
        .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let refused = http.login(ADMIN_EMAIL, &admin_password).await;
    assert_eq!(refused.status, 401, "the old password is gone: {refused:?}");
    let admin = http.session(ADMIN_EMAIL, &new_password).await;

    // TOTP: enrolment hands out the secret once; codes right and wrong.
    let enrolment = http
        .call("POST", "/v1/me/totp", Some(&admin), None, &["secret"])
        .await;
    assert_eq!(enrolment.status, 200, "{enrolment:?}");
    let totp_secret = enrolment.body["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    transcript.learn("the TOTP secret", &totp_secret);
    let code = totp_code(&totp_secret, 0);
    transcript.learn("a TOTP code", &code);
    let confirmed = http
        .json(
            "POST",
            "/v1/me/totp/confirm",
            Some(&admin),
            json!({"code": code}),
        )
        .await;
    assert_eq!(confirmed.status, 204, "{confirmed:?}");
    let old = totp_code(&totp_secret, -3600);
    transcript.learn("an old TOTP code", &old);
    let refused = http
        .json("POST", "/v1/auth/totp", Some(&admin), json!({"code": old}))
        .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    let next = totp_code(&totp_secret, 30);
    transcript.learn("the next TOTP code", &next);
    let raised = http
        .json("POST", "/v1/auth/totp", Some(&admin), json!({"code": next}))
        .await;
    assert!(matches!(raised.status, 200 | 401), "{raised:?}");

    // An API key: made (handed out once), used, used as an authorize subject, revoked,
    // used again; a made-up key.
    let made = http
        .call(
            "POST",
            &format!("/v1/tenants/{TENANT}/api-keys"),
            Some(&admin),
            Some(Body::Json(
                json!({"name": "ci", "scopes": ["members:read", "authz:check"]}),
            )),
            &["key"],
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let key = made.body["key"].as_str().expect("a key").to_owned();
    let key_id = made.body["id"].as_str().expect("an id").to_owned();
    transcript.learn("an API key", &key);
    let members = http
        .call(
            "GET",
            &format!("/v1/tenants/{TENANT}/members"),
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(members.status, 200, "{members:?}");
    let decision = http
        .json(
            "POST",
            &format!("/v1/tenants/{TENANT}/authorize"),
            Some(&key),
            json!({"subject": {"token": admin}, "scope": "members:read"}),
        )
        .await;
    assert_eq!(decision.status, 200, "{decision:?}");
    let decision = http
        .json(
            "POST",
            &format!("/v1/tenants/{TENANT}/authorize"),
            Some(&key),
            json!({"subject": {"token": key}, "scope": "members:read"}),
        )
        .await;
    assert_eq!(decision.body["reason"], "subject_not_found", "{decision:?}");
    let revoked = http
        .call(
            "DELETE",
            &format!("/v1/tenants/{TENANT}/api-keys/{key_id}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 204, "{revoked:?}");
    let refused = http
        .call(
            "GET",
            &format!("/v1/tenants/{TENANT}/members"),
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    let made_up = transcript.make("a made-up API key", "uek_", "");
    let refused = http
        .call(
            "GET",
            &format!("/v1/tenants/{TENANT}/members"),
            Some(&made_up),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    let made_up_session = transcript.make("a made-up session token", "tok", "");
    let refused = http
        .call("GET", "/v1/me", Some(&made_up_session), None, &[])
        .await;
    assert_eq!(refused.status, 401, "{refused:?}");

    // A platform user created with a password.
    let user_password = transcript.make("a new user's password", "user pw ", "");
    let created = http
        .json(
            "POST",
            "/v1/users",
            Some(&root),
            json!({"email": "dev@example.com", "password": user_password}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    http.session("dev@example.com", &user_password).await;

    // Malformed bodies that carry a password: each refused without echoing it.
    let in_body = transcript.make("a password in a malformed body", "body pw ", "");
    for raw in [
        format!("{{\"email\":\"{ROOT_EMAIL}\",\"password\":\"{in_body}\",\"extra\":1}}"),
        format!("{{\"email\":\"{ROOT_EMAIL}\",\"password\":\"{in_body}\""),
        format!("{{\"email\":\"{ROOT_EMAIL}\",\"password\":[\"{in_body}\"]}}"),
        format!("[\"{in_body}\"]"),
        format!("{{\"email\":\"{ROOT_EMAIL}\",\"password\":\"{in_body}\",\"password\":\"x\"}}"),
    ] {
        let reply = http
            .call(
                "POST",
                "/v1/auth/password",
                None,
                Some(Body::Raw(raw.clone())),
                &[],
            )
            .await;
        // A duplicate key may be read as its last value: a wrong password, then.
        assert!(matches!(reply.status, 400 | 401), "{raw}: {reply:?}");
    }
    // A password as an email, and a bearer token in odd shapes.
    let as_email = transcript.make("a password typed as the email", "pw", "@example.com");
    let reply = http.login(&as_email, "whatever password").await;
    assert!(matches!(reply.status, 400 | 401), "{reply:?}");
    let odd = transcript.make("a token with spaces", "odd", "");
    let reply = http
        .call("GET", "/v1/me", Some(&format!("{odd} {odd}")), None, &[])
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");

    // Logging out ends the session.
    let out = http
        .call("DELETE", "/v1/auth/session", Some(&root), None, &[])
        .await;
    assert_eq!(out.status, 204, "{out:?}");
    let refused = http.call("GET", "/v1/me", Some(&root), None, &[]).await;
    assert_eq!(refused.status, 401, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_ever_logged_or_echoed() {
    let started = Instant::now();
    let transcript = Transcript::default();
    let data = TempDir::new("data");
    let data_dir = data.0.join("embedded");
    let data_dir = data_dir.to_str().expect("utf-8 path");

    // ---- PostgreSQL with a password in its URL, NATS with a user and password --------
    let database = Database::create().await;
    let pg_password = transcript.make("the PostgreSQL password", "pg pw@", "/:");
    let pg_url = format!(
        "postgres://postgres:{}@127.0.0.1:5432/{}",
        percent_encode(&pg_password),
        database.name
    );
    let nats_password = transcript.make("the NATS password", "nats pw@", "");
    let nats = PrivateNats::start("relay", &nats_password);
    let nats_url = format!(
        "nats://relay:{}@127.0.0.1:{}",
        percent_encode(&nats_password),
        nats.port
    );
    let root_password = transcript.make("the bootstrap password", "root \"pw\" ", " ü/");
    let pg = [
        ("USER_ENGINE_DATABASE_URL", pg_url.as_str()),
        ("USER_ENGINE_BOOTSTRAP_EMAIL", ROOT_EMAIL),
        ("USER_ENGINE_BOOTSTRAP_PASSWORD", root_password.as_str()),
    ];

    let migrated = run(
        &transcript,
        "migrate on PostgreSQL",
        binary(&["migrate"], &pg),
    );
    assert_eq!(migrated.0, Some(0), "{}", migrated.1);
    assert!(migrated.1.contains("applied"), "{}", migrated.1);
    let bootstrapped = run(
        &transcript,
        "bootstrap on PostgreSQL",
        binary(&["bootstrap"], &pg),
    );
    assert_eq!(bootstrapped.0, Some(0), "{}", bootstrapped.1);
    assert!(
        bootstrapped.1.contains("created platform_root"),
        "{}",
        bootstrapped.1
    );

    let mut settings = pg.to_vec();
    settings.extend([
        ("USER_ENGINE_NATS_URL", nats_url.as_str()),
        ("USER_ENGINE_LOGIN_RATE_PER_MINUTE", "1000"),
    ]);
    let serve = Serve::start("serve on PostgreSQL with NATS", &settings);
    {
        let http = Http::new(&serve, &transcript);
        let (status, ready) = http.wait_for("/readyz", |status, _| status == 200).await;
        assert_eq!(
            status, 200,
            "the node connects to NATS with its password: {ready}"
        );
        exercise(&http, &transcript, &root_password).await;
        // The relay published the tenant's events over the authenticated connection.
        let (_, metrics) = http
            .wait_for("/metrics", |_, text| {
                text.lines().any(|line| {
                    line.strip_prefix("user_engine_relay_published_total ")
                        .and_then(|count| count.parse::<f64>().ok())
                        .is_some_and(|count| count > 0.0)
                })
            })
            .await;
        assert!(
            !metrics.contains("user_engine_relay_published_total 0\n"),
            "no event was relayed: {metrics}"
        );
    }
    let logs = serve.stop(&transcript);
    assert!(
        logs.contains("\"level\":\"TRACE\"") && logs.contains("\"level\":\"DEBUG\""),
        "the run logged at trace level"
    );

    // The relay alone, on the same database and broker.
    let relay = Serve::start_until(
        "relay on PostgreSQL with NATS",
        &["relay"],
        &settings,
        "relaying outbox events to NATS JetStream",
    );
    relay.stop(&transcript);

    for (args, codes) in [
        (&["audit", "verify"][..], &[0][..]),
        (&["diagnose", "--all"][..], &[0, 1, 2][..]),
        (&["diagnose", "--all", "--json"][..], &[0, 1, 2][..]),
    ] {
        let label = format!("{} on PostgreSQL", args.join(" "));
        let (code, output) = run(&transcript, &label, binary(args, &pg));
        assert!(codes.contains(&code.unwrap_or(-1)), "{label}: {output}");
        assert!(output.contains(TENANT), "{label}: {output}");
    }

    // ---- PostgreSQL URLs with a password that fail ---------------------------------
    let unreachable_password =
        transcript.make("an unreachable database's password", "gone pw ", "");
    let unreachable = format!(
        "postgres://postgres:{}@127.0.0.1:{}/{}",
        percent_encode(&unreachable_password),
        closed_port(),
        database.name
    );
    let missing_password = transcript.make("a missing database's password", "missing pw ", "");
    let missing = format!(
        "postgres://postgres:{}@127.0.0.1:5432/ue_missing_{}",
        percent_encode(&missing_password),
        core()
    );
    let malformed_password = transcript.make("a malformed URL's password", "bad", "");
    let malformed = format!("postgres://postgres:{malformed_password}@127.0.0.1:notaport/db");
    let tls_password = transcript.make("a TLS database URL's password", "tls pw ", "");
    let tls = format!(
        "postgres://postgres:{}@127.0.0.1:5432/{}?sslmode=verify-full&sslrootcert=/nonexistent/ca-{}.pem",
        percent_encode(&tls_password),
        database.name,
        core()
    );
    // At once: a pool gives an unreachable server its 10 s acquire timeout.
    let runs: Vec<(String, Command, i32)> = [
        ("an unreachable database", unreachable.as_str()),
        ("a missing database", missing.as_str()),
        ("a malformed database URL", malformed.as_str()),
        ("a database URL with a missing CA file", tls.as_str()),
    ]
    .into_iter()
    .flat_map(|(what, url)| {
        let settings = [
            ("USER_ENGINE_DATABASE_URL", url),
            ("USER_ENGINE_BOOTSTRAP_EMAIL", ROOT_EMAIL),
            ("USER_ENGINE_BOOTSTRAP_PASSWORD", root_password.as_str()),
        ];
        [
            (&["migrate"][..], 1),
            (&["serve"][..], 1),
            (&["bootstrap"][..], 1),
            (&["audit", "verify"][..], 2),
            (&["diagnose", "--all"][..], 3),
        ]
        .map(|(args, code)| {
            (
                format!("{} on {what}", args.join(" ")),
                binary(args, &settings),
                code,
            )
        })
    })
    .collect();
    std::thread::scope(|scope| {
        for (label, command, code) in runs {
            let transcript = &transcript;
            scope.spawn(move || {
                let outcome = run(transcript, &label, command);
                assert_fails(&outcome, code, &["user-engine: error:"], &label);
                assert!(
                    outcome.1.to_lowercase().contains("database"),
                    "{label} does not say the database is the problem: {}",
                    outcome.1
                );
            });
        }
    });

    // ---- NATS that refuses, is unreachable, or is misconfigured --------------------
    let wrong_nats = transcript.make("a wrong NATS password", "wrong nats ", "");
    let closed = closed_port();
    let unreachable_nats_password =
        transcript.make("an unreachable NATS password", "gone nats ", "");
    let nats_token = transcript.make("a NATS token", "tok", "");
    let nkey_seed = format!("SU{}", core().to_ascii_uppercase());
    transcript.learn("a made-up nkey seed", &nkey_seed);
    let wrong_url = format!(
        "nats://relay:{}@127.0.0.1:{}",
        percent_encode(&wrong_nats),
        nats.port
    );
    let unreachable_url = format!(
        "nats://relay:{}@127.0.0.1:{closed}",
        percent_encode(&unreachable_nats_password)
    );
    let token_url = format!("nats://{nats_token}@127.0.0.1:{closed}");
    let plain_url = format!("nats://127.0.0.1:{}", nats.port);
    let cases = [
        (
            "a wrong NATS password",
            vec![("USER_ENGINE_NATS_URL", wrong_url.as_str())],
            "authorization",
        ),
        (
            "an unreachable NATS with a password",
            vec![("USER_ENGINE_NATS_URL", unreachable_url.as_str())],
            "NATS at nats://127.0.0.1",
        ),
        (
            "an unreachable NATS with a token",
            vec![("USER_ENGINE_NATS_URL", token_url.as_str())],
            "NATS at nats://127.0.0.1",
        ),
    ];
    for (what, nats_settings, says) in cases {
        let mut settings = vec![("USER_ENGINE_DATA_DIR", data_dir)];
        settings.extend(nats_settings);
        let label = format!("serve with {what}");
        let serve = Serve::start(&label, &settings);
        {
            let http = Http::new(&serve, &transcript);
            let (status, readiness) = http
                .wait_for("/readyz", |status, text| {
                    status == 503 && text.contains(says)
                })
                .await;
            assert_eq!(status, 503, "{label}: {readiness}");
            assert!(readiness.contains(says), "{label}: {readiness}");
        }
        serve.stop(&transcript);
    }
    let invalid_nats_password = transcript.make("a malformed NATS URL's password", "bad nats ", "");
    let invalid_nats = format!(
        "nats://relay:{}@127.0.0.1:99999",
        percent_encode(&invalid_nats_password)
    );
    let outcome = run(
        &transcript,
        "serve with a malformed NATS URL",
        binary(
            &["serve"],
            &[
                ("USER_ENGINE_DATA_DIR", data_dir),
                ("USER_ENGINE_NATS_URL", &invalid_nats),
            ],
        ),
    );
    assert_fails(&outcome, 1, &["invalid NATS url"], "a malformed NATS URL");
    let outcome = run(
        &transcript,
        "serve with a made-up nkey seed",
        binary(
            &["serve"],
            &[
                ("USER_ENGINE_DATA_DIR", data_dir),
                ("USER_ENGINE_NATS_URL", &plain_url),
                ("USER_ENGINE_NATS_NKEY_SEED", &nkey_seed),
            ],
        ),
    );
    assert_fails(
        &outcome,
        1,
        &["USER_ENGINE_NATS_NKEY_SEED"],
        "a made-up nkey seed",
    );

    // ---- settings that are secrets, invalid; a config file of secrets that does not
    // parse ------------------------------------------------------------------------
    let short_password = transcript.make("a too short bootstrap password", "", "");
    let short_password = &short_password[..10];
    transcript.learn("a too short bootstrap password (cut)", short_password);
    let mysql_password = transcript.make("a MySQL URL's password", "my pw ", "");
    let mysql = format!("mysql://root:{}@db/app", percent_encode(&mysql_password));
    let typo_password = transcript.make("a misspelt variable's password", "typo pw ", "");
    let typo = format!("postgres://u:{}@db/app", percent_encode(&typo_password));
    for (what, settings, needle) in [
        (
            "a too short bootstrap password",
            vec![
                ("USER_ENGINE_BOOTSTRAP_EMAIL", ROOT_EMAIL),
                ("USER_ENGINE_BOOTSTRAP_PASSWORD", short_password),
            ],
            "USER_ENGINE_BOOTSTRAP_PASSWORD",
        ),
        (
            "a MySQL database URL",
            vec![("USER_ENGINE_DATABASE_URL", mysql.as_str())],
            "USER_ENGINE_DATABASE_URL",
        ),
    ] {
        let outcome = run(&transcript, what, binary(&["migrate"], &settings));
        assert_fails(&outcome, 1, &[needle], what);
    }
    // A password that is not UTF-8: refused by name, its bytes never shown.
    let binary_password = transcript.make("a password that is not UTF-8", "bin pw ", "");
    let mut bytes = binary_password.clone().into_bytes();
    bytes.push(0xff);
    let mut command = binary(&["migrate"], &[("USER_ENGINE_BOOTSTRAP_EMAIL", ROOT_EMAIL)]);
    command.env(
        "USER_ENGINE_BOOTSTRAP_PASSWORD",
        std::ffi::OsString::from_vec(bytes),
    );
    let outcome = run(&transcript, "a password that is not UTF-8", command);
    assert_fails(
        &outcome,
        1,
        &["USER_ENGINE_BOOTSTRAP_PASSWORD is not valid UTF-8"],
        "a password that is not UTF-8",
    );
    let outcome = run(
        &transcript,
        "a misspelt database variable",
        binary(
            &["migrate"],
            &[
                ("USER_ENGINE_DATA_DIR", data_dir),
                ("USER_ENGINE_DATABSE_URL", typo.as_str()),
            ],
        ),
    );
    assert_eq!(outcome.0, Some(0), "{}", outcome.1);
    assert!(
        outcome.1.contains("USER_ENGINE_DATABSE_URL"),
        "{}",
        outcome.1
    );

    let config_dir = TempDir::new("config");
    let file_password = transcript.make("a config file's bootstrap password", "file pw ", "");
    let file_db_password = transcript.make("a config file's database password", "file db ", "");
    let file_nats_password = transcript.make("a config file's NATS password", "file nats ", "");
    let file_seed = format!("SU{}", core().to_ascii_uppercase());
    transcript.learn("a config file's nkey seed", &file_seed);
    let secrets_block = format!(
        "bootstrap_email = \"{ROOT_EMAIL}\"\n\
         bootstrap_password = {:?}\n\
         database_url = \"postgres://u:{}@db/app\"\n\
         nats_url = \"nats://u:{}@127.0.0.1:4222\"\n\
         nats_nkey_seed = \"{file_seed}\"\n",
        file_password,
        percent_encode(&file_db_password),
        percent_encode(&file_nats_password),
    );
    let cut_password = transcript.make("a config file's unterminated password", "cut pw ", "");
    let typo_file_password = transcript.make("a misspelt key's password", "typo file ", "");
    // An unquoted number: serde's own wrong-type message would quote it. Kept below
    // 2^62, inside TOML's 64-bit signed integers: a larger one is refused by the TOML
    // parser itself ("number too large"), before the setting is ever read.
    let unquoted_password = ((rand::random::<u64>() >> 3) | (1 << 61)).to_string();
    transcript.learn("a config file's unquoted password", &unquoted_password);
    for (what, contents, needles) in [
        (
            "a config file of secrets with a syntax error",
            format!("{secrets_block}max_connections = 16 17\n"),
            &["at line 6"][..],
        ),
        (
            "a config file with an unterminated secret",
            format!("listen = \"127.0.0.1:0\"\nbootstrap_password = \"{cut_password}\nmax_connections = 4\n"),
            &["at line 2"][..],
        ),
        (
            "a config file with a misspelt secret key",
            format!("bootstrap_pasword = {typo_file_password:?}\n"),
            &["unknown field `bootstrap_pasword`"][..],
        ),
        (
            "a config file with an unquoted secret",
            format!("listen = \"127.0.0.1:0\"\nbootstrap_password = {unquoted_password}\n"),
            &["at line 2", "must be a quoted string"][..],
        ),
        (
            "a config file with a MySQL URL",
            format!("database_url = \"mysql://root:{}@db/app\"\n", percent_encode(&file_db_password)),
            &["database_url"][..],
        ),
    ] {
        let path = config_dir.0.join(format!("{}.toml", core()));
        std::fs::write(&path, contents).expect("config file");
        let path = path.to_str().expect("utf-8 path");
        let outcome = run(&transcript, what, binary(&["--config", path, "migrate"], &[]));
        let mut expected = vec!["invalid", path];
        expected.extend(needles);
        assert_fails(&outcome, 1, &expected, what);
    }
    database.drop_now().await;
    drop(nats);

    // ---- the search -----------------------------------------------------------------
    let entries = transcript.entries.lock().unwrap().len();
    let bytes: usize = transcript
        .entries
        .lock()
        .unwrap()
        .iter()
        .map(|entry| entry.text.len())
        .sum();
    let secrets = transcript.secrets.lock().unwrap().len();
    let leaks = transcript.leaks();
    println!(
        "searched {entries} outputs and answers ({bytes} bytes) for {secrets} secrets in {:?}",
        started.elapsed()
    );
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}
