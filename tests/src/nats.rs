//! NATS test support: streams of a test's own on the shared server, a private
//! `nats-server -js` that a test may stop and restart, child processes killed on drop,
//! and reading back everything a stream holds.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

/// The shared server `cargo xtask nats` starts (and CI runs).
pub const SHARED_URL: &str = "nats://127.0.0.1:4222";

/// A JetStream stream and subject root no other test uses; JetStream forbids two streams
/// over overlapping subjects.
#[derive(Debug)]
pub struct TestStream {
    pub name: String,
    pub prefix: String,
    pub js: jetstream::Context,
}

impl TestStream {
    /// Creates the stream on the server at `url`, with a max age so a test that dies
    /// midway leaves nothing for long. The publisher under test later finds it and uses
    /// it as it is, `duplicate_window` included.
    pub async fn create(url: &str, duplicate_window: Duration) -> Self {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        Self::create_named(
            url,
            &format!("UE_TEST_{unique}"),
            &format!("uetest{unique}"),
            duplicate_window,
        )
        .await
    }

    pub async fn create_named(
        url: &str,
        name: &str,
        prefix: &str,
        duplicate_window: Duration,
    ) -> Self {
        let client = async_nats::connect(url)
            .await
            .unwrap_or_else(|error| panic!("NATS at {url} (cargo xtask nats starts it): {error}"));
        let js = jetstream::new(client);
        js.create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{prefix}.>")],
            max_age: Duration::from_secs(600),
            duplicate_window,
            ..Default::default()
        })
        .await
        .expect("test stream");
        Self {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            js,
        }
    }

    /// Every message the stream holds, in stream order.
    pub async fn messages(&self) -> Vec<Delivered> {
        let mut stream = self.js.get_stream(&self.name).await.expect("stream");
        let total = stream.info().await.expect("stream info").state.messages;
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(1000)
            .messages()
            .await
            .expect("consumer messages");
        let mut delivered = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while (delivered.len() as u64) < total {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, messages.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("only {} of {total} messages read back", delivered.len())
                })
                .expect("the consumer stays open")
                .expect("a message");
            let event: serde_json::Value =
                serde_json::from_slice(&message.payload).expect("CloudEvents JSON");
            delivered.push(Delivered {
                msg_id: message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|value| value.as_str().to_owned()),
                subject: message.subject.to_string(),
                event,
            });
        }
        delivered
    }

    pub async fn delete(&self) {
        self.js
            .delete_stream(&self.name)
            .await
            .expect("stream deleted");
    }
}

/// One message as a consumer sees it.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub msg_id: Option<String>,
    pub subject: String,
    pub event: serde_json::Value,
}

impl Delivered {
    /// The CloudEvent's `id`, which consumers dedupe on.
    pub fn id(&self) -> &str {
        self.event["id"].as_str().expect("a CloudEvent id")
    }
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing test leaves
/// no process behind.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// SIGKILL, then wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `nats-server -js` of one test's own, on a free port with a store directory that
/// survives restarts and is removed on drop.
#[derive(Debug)]
pub struct PrivateNats {
    pub port: u16,
    store: PathBuf,
    /// The configuration file it runs with, when it has one.
    config: Option<PathBuf>,
    server: Option<KillOnDrop>,
}

impl PrivateNats {
    pub fn start() -> Self {
        let mut nats = Self::unstarted();
        nats.restart();
        nats
    }

    /// A private server from a configuration file: listening on 127.0.0.1 at a free
    /// port, JetStream in its store directory, and `extra` (a `tls {}` block, an
    /// `authorization {}` block) as given. Returns once it accepts connections.
    pub fn start_configured(extra: &str) -> Self {
        let mut nats = Self::unstarted();
        let config = nats.store.join("server.conf");
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:{}\"\njetstream {{ store_dir: \"{}\" }}\n{extra}\n",
                nats.port,
                nats.store.join("js").display()
            ),
        )
        .expect("server.conf");
        nats.config = Some(config);
        nats.restart();
        nats
    }

    /// A free port and a fresh store directory.
    fn unstarted() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let store = std::env::temp_dir().join(format!(
            "user-engine-test-nats-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&store).expect("store directory");
        Self {
            port,
            store,
            config: None,
            server: None,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to clients, as in a crash).
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill();
        }
    }

    /// Starts the server on the same port and store; returns once it accepts
    /// connections.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let spawn = |program: &str| {
            let mut command = Command::new(program);
            match &self.config {
                Some(config) => command.arg("-c").arg(config),
                None => command
                    .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd"])
                    .arg(&self.store),
            };
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        // Debian installs it in /usr/sbin, which is not on every PATH.
        let child = spawn("nats-server")
            .or_else(|_| spawn("/usr/sbin/nats-server"))
            .expect("nats-server is installed (cargo xtask nats installs it)");
        self.server = Some(KillOnDrop(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server does not listen on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A NATS decentralised-auth setup of the test's own: an operator, its system account,
/// an account with JetStream, and a user of it, as `nsc` would make them (JWTs signed with nkeys).
#[derive(Debug)]
pub struct Operator {
    /// The server's configuration lines: the operator JWT and a memory resolver
    /// preloaded with the account JWT.
    pub server_config: String,
    /// A `.creds` file's contents for the user: its JWT and its nkey seed.
    pub creds: String,
    /// The user's seed, a secret the tests look for in messages.
    pub user_seed: String,
}

impl Operator {
    pub fn new() -> Self {
        let operator = nkeys::KeyPair::new_operator();
        let account = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let operator_jwt = jwt(
            &operator,
            &operator.public_key(),
            "test-operator",
            serde_json::json!({ "type": "operator", "version": 2 }),
        );
        let account_jwt = jwt(
            &operator,
            &account.public_key(),
            "test-account",
            serde_json::json!({
                "limits": {
                    "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                    "wildcards": true, "conn": -1, "leaf": -1,
                    "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1
                },
                "default_permissions": { "pub": {}, "sub": {} },
                "type": "account",
                "version": 2
            }),
        );
        let user_jwt = jwt(
            &account,
            &user.public_key(),
            "test-user",
            serde_json::json!({
                "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                "type": "user", "version": 2
            }),
        );
        // JetStream in operator mode needs a system account.
        let system = nkeys::KeyPair::new_account();
        let system_jwt = jwt(
            &operator,
            &system.public_key(),
            "SYS",
            serde_json::json!({ "type": "account", "version": 2 }),
        );
        let user_seed = user.seed().expect("a user seed");
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{user_seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        );
        let server_config = format!(
            "operator: \"{operator_jwt}\"\nresolver: MEMORY\nsystem_account: {system}\n\
             resolver_preload: {{ {account}: \"{account_jwt}\", {system}: \"{system_jwt}\" }}\n",
            account = account.public_key(),
            system = system.public_key(),
        );
        Self {
            server_config,
            creds,
            user_seed,
        }
    }
}

impl Default for Operator {
    fn default() -> Self {
        Self::new()
    }
}

/// A NATS JWT (header `ed25519-nkey`) with these claims, signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine as _;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({
        "jti": uuid::Uuid::now_v7().simple().to_string().to_ascii_uppercase(),
        "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let payload = encode(claims.to_string().as_bytes());
    let signed = format!("{header}.{payload}");
    let signature = issuer.sign(signed.as_bytes()).expect("signed");
    format!("{signed}.{}", encode(&signature))
}
