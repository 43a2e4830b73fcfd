//! The real `user-engine` binary on its embedded store, with no database configured:
//! data survives a graceful restart, and a SIGKILL in the middle of a write load loses
//! no acknowledged change and leaves no half-written one — after the restart every
//! member a 2xx answer acknowledged is there with its audit record and its event, every
//! member there has exactly both, the audit chain verifies (`user-engine audit verify`)
//! and audit seqs and feed positions have no gaps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation aborts the test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ROOT_EMAIL: &str = "root@example.com";
const ROOT_PASSWORD: &str = "root password 123";
const TENANT: &str = "acme";
const WRITERS: usize = 6;
/// Acknowledged adds to wait for in each round before the kill; the load keeps going
/// meanwhile.
const ACKNOWLEDGED_BEFORE_KILL: usize = 100;
/// Write loads ended by a SIGKILL, each followed by a restart.
const KILL_ROUNDS: usize = 3;

/// A temporary directory, removed at the end.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server, killed if the test ends early.
struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with only the settings given: no database URL, so the embedded store in
/// the data directory.
fn command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_user-engine"));
    command
        .args(args)
        .env_clear()
        .env("USER_ENGINE_DATA_DIR", data_dir)
        .env("USER_ENGINE_LISTEN", "127.0.0.1:0")
        .env("USER_ENGINE_LOG_FORMAT", "json")
        .env("USER_ENGINE_LOGIN_RATE_PER_MINUTE", "1000")
        .env("USER_ENGINE_BOOTSTRAP_EMAIL", ROOT_EMAIL)
        .env("USER_ENGINE_BOOTSTRAP_PASSWORD", ROOT_PASSWORD);
    command
}

/// Starts `serve` and waits for its "listening" log line; returns it with every log
/// line before that one.
fn start(data_dir: &Path) -> (Server, Vec<Value>) {
    let mut child = command(data_dir, &["serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("user-engine serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut logs = Vec::new();
    let address = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!("serve stopped before listening: {logs:?}");
        };
        let log: Value = serde_json::from_str(&line).unwrap_or(Value::String(line));
        let fields = &log["fields"];
        if fields["message"] == "listening" {
            break fields["address"].as_str().expect("an address").to_owned();
        }
        logs.push(log);
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (Server { child, address }, logs)
}

/// Whether any log line has this message.
fn logged(logs: &[Value], needle: &str) -> bool {
    logs.iter().any(|log| {
        log["fields"]["message"]
            .as_str()
            .is_some_and(|message| message.contains(needle))
    })
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(server: &Server) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            base: format!("http://{}", server.address),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn login(&self) -> String {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/v1/auth/password",
                None,
                Some(json!({"email": ROOT_EMAIL, "password": ROOT_PASSWORD})),
            )
            .await
            .expect("login answered");
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
            .expect("answered")
    }

    /// Every item of a cursor-paginated list.
    async fn all(&self, path: &str, token: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut after = String::new();
        loop {
            let (status, body) = self.get(&format!("{path}?limit=200{after}"), token).await;
            assert_eq!(status, 200, "{path}: {body}");
            let page = body["items"].as_array().expect("items");
            // The event feed gives a cursor on its last page too: an empty page ends it.
            if page.is_empty() {
                return items;
            }
            items.extend(page.iter().cloned());
            match body["next_cursor"].as_str() {
                Some(cursor) => after = format!("&after={cursor}"),
                None => return items,
            }
        }
    }
}

/// One writer: adds members by new emails until the server dies, and records the user
/// ids of the adds answered 201.
async fn write(
    client: Arc<Client>,
    token: String,
    writer: usize,
    acknowledged: Arc<Mutex<BTreeSet<String>>>,
) {
    for index in 0.. {
        let body = json!({"email": format!("w{writer}-{index}@acme.example"), "roles": ["member"]});
        match client
            .send(
                reqwest::Method::POST,
                &format!("/v1/tenants/{TENANT}/members"),
                Some(&token),
                Some(body),
            )
            .await
        {
            Ok((201, body)) => {
                let user = body["user_id"].as_str().expect("a user id").to_owned();
                acknowledged.lock().unwrap().insert(user);
            }
            Ok((status, body)) => panic!("an add failed with {status}: {body}"),
            // The server is gone (killed): what was in flight is unknown, not acknowledged.
            Err(_) => return,
        }
    }
}

/// `user-engine audit verify` on the data directory: its exit status and output.
fn audit_verify(data_dir: &Path) -> (Option<i32>, String) {
    let output = command(data_dir, &["audit", "verify"])
        .output()
        .expect("audit verify runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn gapless(what: &str, numbers: &[u64]) {
    let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert_eq!(numbers, expected.as_slice(), "{what} must be 1..=n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_a_restart_and_a_sigkill_under_load_with_their_audit_and_events(
) {
    let temp = TempDir(
        std::env::temp_dir().join(format!("ue-durability-{}", uuid::Uuid::now_v7().simple())),
    );
    let data_dir = temp.0.join("data");

    // First start: the store is created, the root bootstrapped; then a graceful stop.
    let (server, logs) = start(&data_dir);
    assert!(
        data_dir.join("user-engine.db").is_file(),
        "the file is created"
    );
    assert!(
        logged(&logs, "embedded store"),
        "the data's location is logged: {logs:?}"
    );
    assert!(logged(&logs, "created the first platform_root"), "{logs:?}");
    let client = Client::new(&server);
    let root = client.login().await;
    let (status, body) = client
        .send(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(&root),
            Some(json!({"id": TENANT, "display_name": "Acme", "admin": {"email": "boss@acme.example"}})),
        )
        .await
        .expect("answered");
    assert_eq!(status, 201, "{body}");
    let mut server = server;
    let exit = crate::terminate(&mut server.child, Duration::from_secs(30))
        .expect("serve stops on SIGTERM");
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");

    // Second start: everything is there; the bootstrap changes nothing. Then rounds of
    // write load, each ended by a SIGKILL once enough adds were acknowledged, each
    // followed by a restart on the file as the kill left it.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    for round in 1..=KILL_ROUNDS {
        let (server, logs) = start(&data_dir);
        assert!(logged(&logs, "a platform_root already exists"), "{logs:?}");
        let client = Arc::new(Client::new(&server));
        let root = client.login().await;
        let (status, tenant) = client.get(&format!("/v1/tenants/{TENANT}"), &root).await;
        assert_eq!(
            (status, tenant["id"].as_str()),
            (200, Some(TENANT)),
            "{tenant}"
        );
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                tokio::spawn(write(
                    client.clone(),
                    root.clone(),
                    round * WRITERS + writer,
                    acknowledged.clone(),
                ))
            })
            .collect();
        let started = Instant::now();
        while acknowledged.lock().unwrap().len() < round * ACKNOWLEDGED_BEFORE_KILL {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the load is too slow"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut server = server;
        server.child.kill().expect("SIGKILL sent");
        let _ = server.child.wait();
        for writer in writers {
            writer.await.expect("a writer ended");
        }
        // The chain verifies on the file as the kill left it (recovery is SQLite's job).
        let (code, report) = audit_verify(&data_dir);
        assert_eq!(code, Some(0), "audit verify after kill {round}: {report}");
        assert!(report.contains(&format!("{TENANT}: ")), "{report}");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    // Third start, after the kill.
    let (server, _) = start(&data_dir);
    let client = Client::new(&server);
    let root = client.login().await;
    let members: BTreeSet<String> = client
        .all(&format!("/v1/tenants/{TENANT}/members"), &root)
        .await
        .iter()
        .map(|member| member["user_id"].as_str().expect("user id").to_owned())
        .collect();
    let trail = client
        .all(&format!("/v1/tenants/{TENANT}/audit"), &root)
        .await;
    let feed = client
        .all(&format!("/v1/tenants/{TENANT}/events"), &root)
        .await;
    gapless(
        "audit seqs",
        &trail
            .iter()
            .map(|record| record["seq"].as_u64().expect("seq"))
            .collect::<Vec<_>>(),
    );
    gapless(
        "feed positions",
        &feed
            .iter()
            .map(|event| event["sequence"].as_u64().expect("sequence"))
            .collect::<Vec<_>>(),
    );
    let mut adds: BTreeMap<String, usize> = BTreeMap::new();
    for record in &trail {
        if record["action"] == "member.add" && record["outcome"] == "allowed" {
            *adds
                .entry(record["target"]["id"].as_str().expect("target").to_owned())
                .or_default() += 1;
        }
    }
    let mut added: BTreeMap<String, usize> = BTreeMap::new();
    for event in &feed {
        if event["type"] == "membership.added" {
            *added
                .entry(event["subject"].as_str().expect("subject").to_owned())
                .or_default() += 1;
        }
    }
    // Every acknowledged add is there, with its record and its event.
    for user in &acknowledged {
        assert!(
            members.contains(user),
            "acknowledged member {user} is missing"
        );
        assert_eq!(adds.get(user), Some(&1), "audit record of {user}");
        assert_eq!(added.get(user), Some(&1), "event of {user}");
    }
    // Nothing half-written: the members (the first admin and every add that committed,
    // acknowledged or not) are exactly those with one record and one event.
    let with_record: BTreeSet<String> = adds.keys().cloned().collect();
    let with_event: BTreeSet<String> = added.keys().cloned().collect();
    assert!(adds.values().all(|count| *count == 1) && added.values().all(|count| *count == 1));
    assert_eq!(
        with_event, members,
        "one membership.added event per member and no other"
    );
    let admin: BTreeSet<String> = members.difference(&with_record).cloned().collect();
    assert_eq!(
        admin.len(),
        1,
        "only the first admin was added without member.add: {admin:?}"
    );
    assert!(with_record.is_subset(&members));
    let in_flight = members.len() - 1 - acknowledged.len();
    println!(
        "{} adds acknowledged before the kills, {in_flight} more committed unanswered, \
         {} audit records, {} events",
        acknowledged.len(),
        trail.len(),
        feed.len()
    );
    assert!(
        in_flight <= WRITERS,
        "{in_flight} committed adds were never answered"
    );

    let mut server = server;
    server.child.kill().expect("stopped");
    let _ = server.child.wait();
    let (code, report) = audit_verify(&data_dir);
    assert_eq!(code, Some(0), "audit verify at the end: {report}");
    let expected = format!("{TENANT}: {} records, intact", trail.len());
    assert!(report.lines().any(|line| line == expected), "{report}");
}

/// Runs the binary to its end (at most 30 s): its exit code and what it printed.
fn run_to_end(mut command: Command) -> (Option<i32>, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the second process kept running on a file another one holds");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("its output");
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_embedded_store_refuses_to_start_and_names_the_holder() {
    let data_dir = TempDir(std::env::temp_dir().join(format!(
        "user-engine-lock-{}",
        uuid::Uuid::now_v7().simple()
    )));
    let (server, _) = start(&data_dir.0);
    let holder = server.child.id();

    for args in [&["serve"][..], &["audit", "verify"][..]] {
        let (code, output) = run_to_end(command(&data_dir.0, args));
        assert_ne!(code, Some(0), "{args:?} ran beside serve: {output}");
        assert!(
            output.contains(&format!("in use by process {holder}")),
            "{args:?} does not name the holder: {output}"
        );
    }
    // The first keeps serving.
    let client = Client::new(&server);
    let (status, _) = client
        .send(reqwest::Method::GET, "/healthz", None, None)
        .await
        .expect("the first still answers");
    assert_eq!(status, 200);

    // However the holder ends, the lock goes with it.
    let mut server = server;
    server.child.kill().expect("SIGKILL sent");
    let _ = server.child.wait();
    let (restarted, _) = start(&data_dir.0);
    drop(restarted);
}

/// How many times `serve` is sent SIGTERM the moment it says it is listening.
const SIGTERM_ROUNDS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_the_moment_serve_says_it_listens_is_a_graceful_stop() {
    let data_dir = TempDir(std::env::temp_dir().join(format!(
        "user-engine-sigterm-{}",
        uuid::Uuid::now_v7().simple()
    )));
    for round in 0..SIGTERM_ROUNDS {
        let (mut server, _) = start(&data_dir.0);
        let status = crate::terminate(&mut server.child, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("round {round}: serve does not stop on SIGTERM"));
        // Killed by the signal's default action, the status would carry no exit code.
        assert_eq!(
            status.code(),
            Some(0),
            "round {round}: SIGTERM right after \"listening\" ended serve with {status:?}, \
             not a graceful stop"
        );
    }
}
