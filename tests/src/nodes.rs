//! Many nodes of the real binary on one PostgreSQL, for issue 14's proof that API nodes
//! are stateless (SPEC §7): a fresh database migrated by `user-engine migrate`, a private
//! PgBouncer in transaction pooling mode in front of it, a private NATS, two
//! `user-engine serve` nodes and two `user-engine relay` processes, all on 127.0.0.1 —
//! and [`prove`], the scenario that `cargo xtask cluster` and the `cluster` test both
//! run across them.
//!
//! They are real processes, not in-process apps, because what is proven is what a
//! deployment gets: nodes that share nothing but the database (through the pooler) and
//! the broker, and a node that can be SIGKILLed mid-write. Everything is torn down on
//! drop: processes killed, temporary directories removed, the database dropped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection, Row};

use crate::cluster::{free_port, TempDir};
use crate::http::{reply, Authenticator, Reply, ROOT_EMAIL, ROOT_PASSWORD};
use crate::nats::{PrivateNats, TestStream};
use crate::pg::{server_url, TestDb};
use crate::races::mix;

/// How long a process may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Log lines of each process kept for failure messages.
const LOG_LINES_KEPT: usize = 300;
/// Server connections PgBouncer opens to PostgreSQL for the database: fewer than the
/// nodes' and relays' pools together, so clients really do share them.
const POOLER_SERVER_CONNECTIONS: u32 = 8;
/// Each node's own pool (of connections to PgBouncer).
const NODE_CONNECTIONS: u32 = 8;
/// The password of every user the scenario creates.
pub const PASSWORD: &str = "cluster password 123";

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// A child process killed (SIGKILL) and reaped on drop, whose stderr a thread keeps
/// draining so it never blocks on a full pipe; the last lines are kept for failure
/// messages.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
    logs: Arc<Mutex<VecDeque<String>>>,
    counts: Arc<LogCounts>,
}

/// What a process's JSON log said, counted as it is drained.
#[derive(Debug, Default)]
pub struct LogCounts {
    /// Lines at WARN or ERROR.
    pub warnings: AtomicU64,
    /// Events a relay said it published (its debug line "relayed outbox events").
    pub relayed: AtomicU64,
}

impl LogCounts {
    fn count(&self, line: &str) {
        let Ok(log) = serde_json::from_str::<Value>(line) else {
            return;
        };
        if matches!(log["level"].as_str(), Some("WARN" | "ERROR")) {
            self.warnings.fetch_add(1, Ordering::Relaxed);
        }
        if log["fields"]["message"] == "relayed outbox events" {
            let published = log["fields"]["published"].as_u64().unwrap_or_default();
            self.relayed.fetch_add(published, Ordering::Relaxed);
        }
    }
}

impl Process {
    /// Spawns `command` with stderr piped; returns the process and the stream of its
    /// stderr lines, for whoever waits for it to be ready (dropped once it is).
    fn spawn(name: &str, command: &mut Command) -> (Self, mpsc::Receiver<String>) {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{name} does not start: {error}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let kept = logs.clone();
        let counts = Arc::new(LogCounts::default());
        let counted = counts.clone();
        let (lines, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                counted.count(&line);
                {
                    let mut kept = kept.lock().expect("the log lines");
                    if kept.len() == LOG_LINES_KEPT {
                        kept.pop_front();
                    }
                    kept.push_back(line.clone());
                }
                // Nobody listens once the process is ready; the lines are only kept.
                let _ = lines.send(line);
            }
        });
        let process = Self {
            name: name.to_owned(),
            child: Some(child),
            logs,
            counts,
        };
        (process, receiver)
    }

    /// Waits (at most [`START_TIMEOUT`]) for the JSON log line whose message is
    /// `message`, and returns its fields; fails with the process's log when it stops or
    /// never says it.
    fn wait_for_log(&mut self, lines: &mpsc::Receiver<String>, message: &str) -> Value {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Ok(log) = serde_json::from_str::<Value>(&line) {
                        if log["fields"]["message"] == message {
                            return log["fields"].clone();
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{} logged no {message:?} within {START_TIMEOUT:?}; its log:\n{}",
                    self.name,
                    self.logs()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().and_then(|child| child.wait().ok());
                    panic!(
                        "{} stopped ({status:?}) before logging {message:?}; its log:\n{}",
                        self.name,
                        self.logs()
                    );
                }
            }
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash or an OOM killer would end it, then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What its log said so far.
    pub fn counts(&self) -> &LogCounts {
        &self.counts
    }

    /// The last lines it wrote on stderr.
    pub fn logs(&self) -> String {
        self.logs
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a future to its end on a runtime of its own, in a thread of its own, so it can
/// be called from synchronous code whether or not a runtime is running there; a panic
/// inside is the caller's panic.
fn block_on<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The `user-engine` binary: `USER_ENGINE_BIN`, else the one cargo built beside the
/// running executable (a test runs in `target/<profile>/deps`, a binary of this package
/// in `target/<profile>`). `cargo test --workspace` builds it before any test runs.
pub fn user_engine_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("USER_ENGINE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the running executable");
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("user-engine"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no user-engine binary near {}: build it: cargo build -p user-engine \
                 (or set USER_ENGINE_BIN)",
                exe.display()
            )
        })
}

/// The uid and gid of the `postgres` user when this process runs as root (PgBouncer
/// refuses to run as root), else `None`.
fn postgres_ids_when_root() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let output = Command::new("id").args(args).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    if id(&["-u"])? != 0 {
        return None;
    }
    Some((
        id(&["-u", "postgres"]).expect("a postgres user (PgBouncer refuses root)"),
        id(&["-g", "postgres"]).expect("a postgres group"),
    ))
}

// ---------------------------------------------------------------------------------------
// The database and its pooler
// ---------------------------------------------------------------------------------------

/// Creates a fresh, empty database on the shared server; dropped (`with (force)`) when
/// the returned handle goes.
fn create_database() -> TestDb {
    let name = format!("ue_cluster_{}", uuid::Uuid::now_v7().simple());
    let server = server_url()
        .parse::<PgConnectOptions>()
        .expect("a valid database URL")
        .disable_statement_logging();
    let (create, options) = (name.clone(), server.clone());
    block_on(async move {
        let mut connection = PgConnection::connect_with(&options)
            .await
            .expect("PostgreSQL is reachable (cargo xtask db starts it)");
        connection
            .execute(format!("create database {create}").as_str())
            .await
            .expect("the database is created");
        connection.close().await.ok();
    });
    TestDb {
        owner: server.database(&name),
        name,
    }
}

/// A PgBouncer of the cluster's own (Debian's `pgbouncer`) in transaction pooling mode,
/// listening on 127.0.0.1 at a free port, in front of one database of the shared server.
#[derive(Debug)]
pub struct PgBouncer {
    pub port: u16,
    /// The user clients connect as (the shared server's).
    user: String,
    database: String,
    _process: Process,
    _dir: TempDir,
}

impl PgBouncer {
    /// Starts it and returns once a query through it is answered.
    pub fn start(database: &str) -> Self {
        let server = reqwest::Url::parse(&server_url()).expect("a valid database URL");
        let host = server.host_str().unwrap_or("127.0.0.1").to_owned();
        let server_port = server.port().unwrap_or(5432);
        let user = match server.username() {
            "" => "postgres".to_owned(),
            user => user.to_owned(),
        };
        let password = server
            .password()
            .map(|password| format!(" password={password}"))
            .unwrap_or_default();
        let dir = TempDir::new("pgbouncer");
        let port = free_port();
        let auth_file = dir.0.join("userlist.txt");
        std::fs::write(&auth_file, format!("\"{user}\" \"\"\n")).expect("the auth file");
        let config = dir.0.join("pgbouncer.ini");
        // No Unix socket (its path would be shared by every pooler on the machine).
        // sqlx sends `extra_float_digits` at startup, which PgBouncer refuses unless told
        // to ignore it.
        std::fs::write(
            &config,
            format!(
                "[databases]\n\
                 {database} = host={host} port={server_port} dbname={database} user={user}{password}\n\
                 \n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {}\n\
                 pool_mode = transaction\n\
                 default_pool_size = {POOLER_SERVER_CONNECTIONS}\n\
                 max_client_conn = 200\n\
                 ignore_startup_parameters = extra_float_digits,options\n\
                 log_connections = 0\n\
                 log_disconnections = 0\n",
                auth_file.display()
            ),
        )
        .expect("pgbouncer.ini");
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(PathBuf::from)
            .chain(which("pgbouncer"))
            .find(|path| path.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "pgbouncer is not installed: apt-get install pgbouncer (.ci/run installs it)"
                )
            });
        let mut command = Command::new(program);
        command.arg(&config);
        // Set on the child itself rather than through `runuser`, whose watching parent
        // would outlive a SIGKILL of the process we hold and orphan the pooler.
        if let Some((uid, gid)) = postgres_ids_when_root() {
            command.uid(uid).gid(gid);
        }
        let (mut process, _lines) = Process::spawn("pgbouncer", &mut command);
        let url = format!("postgres://{user}@127.0.0.1:{port}/{database}");
        let deadline = Instant::now() + START_TIMEOUT;
        while !block_on(answers(url.clone())) {
            assert!(
                process.running(),
                "pgbouncer stopped; its log:\n{}",
                process.logs()
            );
            assert!(
                Instant::now() < deadline,
                "pgbouncer answers no query within {START_TIMEOUT:?}; its log:\n{}",
                process.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            user,
            database: database.to_owned(),
            _process: process,
            _dir: dir,
        }
    }

    /// The URL clients use: the pooler's address, the database's name.
    pub fn url(&self) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{}",
            self.user, self.port, self.database
        )
    }
}

/// Where `program` is on `PATH`, if it is.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Whether a query through `url` is answered (without a named prepared statement, which
/// PgBouncer's transaction pooling cannot keep).
async fn answers(url: String) -> bool {
    let Ok(options) = url.parse::<PgConnectOptions>() else {
        return false;
    };
    let options = options
        .statement_cache_capacity(0)
        .disable_statement_logging();
    match PgConnection::connect_with(&options).await {
        Ok(mut connection) => {
            let answered = connection.execute("select 1").await.is_ok();
            connection.close().await.ok();
            answered
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------

/// What the cluster is started with.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `USER_ENGINE_LOGIN_RATE_PER_MINUTE` of both nodes (per email and per address).
    pub login_per_minute: u32,
    /// Nodes and relays connect through PgBouncer (transaction pooling); `false` points
    /// them at PostgreSQL itself, to tell a pooler problem from any other.
    pub through_pgbouncer: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            login_per_minute: 5,
            through_pgbouncer: true,
        }
    }
}

/// One `user-engine serve` process.
#[derive(Debug)]
pub struct Node {
    pub name: &'static str,
    /// The address it logged it listens on.
    pub address: SocketAddr,
    process: Process,
}

impl Node {
    /// `user-engine serve` alone, with the JSON log settings of every process here and
    /// `env` (the store, the listen address, …); returns once it logged where it listens.
    pub fn serve(name: &'static str, env: &[(&str, &str)]) -> Self {
        let mut command = base_command(&user_engine_bin(), &["serve"]);
        command.envs(env.iter().copied());
        Self::spawn(name, &mut command)
    }

    fn spawn(name: &'static str, command: &mut Command) -> Self {
        let (mut process, lines) = Process::spawn(name, command);
        let listening = process.wait_for_log(&lines, "listening");
        let address = listening["address"]
            .as_str()
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("{name} logged no address: {listening}"));
        Self {
            name,
            address,
            process,
        }
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// SIGKILL: no graceful stop, requests in flight cut.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    pub fn running(&mut self) -> bool {
        self.process.running()
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

/// Two API nodes and two relays on one fresh database through one PgBouncer, and a
/// private NATS. Fields drop in order: processes first, then the pooler, the broker,
/// and last the database.
#[derive(Debug)]
pub struct Cluster {
    /// Node A (which bootstrapped the platform root), then node B.
    pub nodes: Vec<Node>,
    relays: Vec<Process>,
    pgbouncer: Option<PgBouncer>,
    pub nats: PrivateNats,
    pub db: TestDb,
    bin: PathBuf,
    options: ClusterOptions,
}

impl Cluster {
    /// Creates the database and migrates it with `user-engine migrate` against
    /// PostgreSQL itself (a pooler in transaction mode cannot hold a migration's session
    /// lock), then starts PgBouncer, NATS, node A (bootstrapping the platform root
    /// [`ROOT_EMAIL`]), node B and the two relays; returns once each is ready.
    pub fn start(options: &ClusterOptions) -> Self {
        let bin = user_engine_bin();
        let db = create_database();
        let migrated = base_command(&bin, &["migrate"])
            .env("USER_ENGINE_DATABASE_URL", db.url())
            .output()
            .expect("user-engine migrate runs");
        assert!(
            migrated.status.success(),
            "user-engine migrate failed ({}): {}{}",
            migrated.status,
            String::from_utf8_lossy(&migrated.stdout),
            String::from_utf8_lossy(&migrated.stderr)
        );
        let pgbouncer = options
            .through_pgbouncer
            .then(|| PgBouncer::start(&db.name));
        let nats = PrivateNats::start();
        let mut cluster = Self {
            nodes: Vec::new(),
            relays: Vec::new(),
            pgbouncer,
            nats,
            db,
            bin,
            options: options.clone(),
        };
        // A first, alone: it creates the platform root, which B then finds.
        let a = cluster.serve("node A", true);
        cluster.nodes.push(a);
        let b = cluster.serve("node B", false);
        cluster.nodes.push(b);
        for name in ["relay 1", "relay 2"] {
            let relay = cluster.relay(name);
            cluster.relays.push(relay);
        }
        cluster
    }

    /// The URL of the database itself (for migrations, `audit verify` and the checks).
    pub fn direct_url(&self) -> String {
        self.db.url()
    }

    /// The URL nodes and relays use: PgBouncer's, or the database's without it.
    pub fn app_url(&self) -> String {
        self.pgbouncer
            .as_ref()
            .map_or_else(|| self.direct_url(), PgBouncer::url)
    }

    /// The binary with the database settings of a node or relay.
    fn app_command(&self, args: &[&str]) -> Command {
        let mut command = base_command(&self.bin, args);
        command.env("USER_ENGINE_DATABASE_URL", self.app_url());
        if self.pgbouncer.is_some() {
            command.env("USER_ENGINE_DATABASE_POOLING", "transaction");
        }
        command
    }

    /// Starts one `serve` node and waits for its "listening" line. No NATS URL: the
    /// relays publish, not the nodes. The nodes trust 127.0.0.1 as a proxy, so a client
    /// names its address in `X-Forwarded-For` and the throttles count per named address.
    fn serve(&self, name: &'static str, bootstrap: bool) -> Node {
        let mut command = self.app_command(&["serve"]);
        command
            .env("USER_ENGINE_LISTEN", "127.0.0.1:0")
            .env("USER_ENGINE_MAX_CONNECTIONS", NODE_CONNECTIONS.to_string())
            .env(
                "USER_ENGINE_LOGIN_RATE_PER_MINUTE",
                self.options.login_per_minute.to_string(),
            )
            .env("USER_ENGINE_AUTH_FAILURES_PER_MINUTE", "100000")
            .env("USER_ENGINE_TRUSTED_PROXIES", "127.0.0.1/32");
        if bootstrap {
            command
                .env("USER_ENGINE_BOOTSTRAP_EMAIL", ROOT_EMAIL)
                .env("USER_ENGINE_BOOTSTRAP_PASSWORD", ROOT_PASSWORD);
        }
        Node::spawn(name, &mut command)
    }

    /// Starts one `user-engine relay` and waits until it is connected to both sides.
    fn relay(&self, name: &str) -> Process {
        let mut command = self.app_command(&["relay"]);
        // Its debug line per published batch is how the report splits the work.
        command
            .env("USER_ENGINE_NATS_URL", self.nats.url())
            .env("USER_ENGINE_LOG", "info,sqlx=warn,server::relay=debug");
        let (mut process, lines) = Process::spawn(name, &mut command);
        process.wait_for_log(&lines, "relaying outbox events to NATS JetStream");
        process
    }

    /// SIGKILLs node `index` (0 is A).
    pub fn kill_node(&mut self, index: usize) {
        self.nodes
            .get_mut(index)
            .unwrap_or_else(|| panic!("no node {index}"))
            .kill();
    }

    /// Starts a fresh process in place of every node that is no longer running (on a
    /// new port).
    pub fn restart_stopped_nodes(&mut self) {
        for index in 0..self.nodes.len() {
            if !self.nodes[index].running() {
                let name = self.nodes[index].name;
                self.nodes[index] = self.serve(name, false);
            }
        }
    }

    /// `user-engine audit verify` against PostgreSQL itself: its exit code and output.
    pub fn audit_verify(&self) -> (Option<i32>, String) {
        let output = base_command(&self.bin, &["audit", "verify"])
            .env("USER_ENGINE_DATABASE_URL", self.direct_url())
            .output()
            .expect("user-engine audit verify runs");
        (
            output.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// Where everything listens, one line each.
    pub fn describe(&mut self) -> String {
        let mut lines = Vec::new();
        for node in &mut self.nodes {
            let state = if node.running() { "" } else { " (stopped)" };
            lines.push(format!("{}: {}{state}", node.name, node.base_url()));
        }
        for relay in &self.relays {
            lines.push(format!(
                "{}: pid {}",
                relay.name,
                relay
                    .pid()
                    .map_or_else(|| "-".to_owned(), |pid| pid.to_string())
            ));
        }
        if let Some(pgbouncer) = &self.pgbouncer {
            lines.push(format!(
                "pgbouncer (transaction pooling): {}",
                pgbouncer.url()
            ));
        }
        lines.push(format!("postgresql: {}", self.direct_url()));
        lines.push(format!(
            "nats: {} (stream {})",
            self.nats.url(),
            adapters_nats::DEFAULT_STREAM
        ));
        lines.push(format!("platform root: {ROOT_EMAIL} / {ROOT_PASSWORD}"));
        lines.join("\n")
    }

    /// Each relay's name, the events it said it published and its warnings.
    pub fn relay_counts(&self) -> Vec<(String, u64, u64)> {
        self.relays
            .iter()
            .map(|relay| {
                (
                    relay.name.clone(),
                    relay.counts().relayed.load(Ordering::Relaxed),
                    relay.counts().warnings.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Warnings (and errors) each node logged so far.
    pub fn node_warnings(&self) -> Vec<(&'static str, u64)> {
        self.nodes
            .iter()
            .map(|node| {
                (
                    node.name,
                    node.process.counts().warnings.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// A connection to the database itself as its owner, for the checks.
    pub async fn owner_connection(&self) -> PgConnection {
        self.db.owner_connection().await
    }
}

/// The binary with nothing but a JSON log: every setting is the caller's.
fn base_command(bin: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin);
    command
        .args(args)
        .env_clear()
        .env("USER_ENGINE_LOG_FORMAT", "json")
        .env("USER_ENGINE_LOG", "info,sqlx=warn");
    command
}

// ---------------------------------------------------------------------------------------
// A client of the nodes
// ---------------------------------------------------------------------------------------

/// An HTTP client of the nodes. Logins name a client address of their own in
/// `X-Forwarded-For` unless told which, so only the throttle checks share a bucket.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    addresses: Arc<AtomicU32>,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            addresses: Arc::new(AtomicU32::new(0)),
        }
    }
}

impl Api {
    /// A client address no request has named yet.
    pub fn fresh_address(&self) -> String {
        let n = self.addresses.fetch_add(1, Ordering::Relaxed) + 1;
        format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
    }

    /// Sends one request; `Err` when no answer came (the node is gone).
    ///
    /// # Errors
    /// When the request cannot be sent or its answer read.
    pub async fn try_send(
        &self,
        base: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self.http.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Ok(reply(request.send().await?).await)
    }

    /// Sends one request, which must be answered.
    pub async fn send(
        &self,
        base: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.try_send(base, method.clone(), path, token, body, headers)
            .await
            .unwrap_or_else(|error| panic!("{method} {base}{path} is not answered: {error}"))
    }

    pub async fn get(&self, base: &str, path: &str, token: &str) -> Reply {
        self.send(base, Method::GET, path, Some(token), None, &[])
            .await
    }

    pub async fn post(&self, base: &str, path: &str, token: &str, body: &Value) -> Reply {
        self.send(base, Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    /// A password login from `address`.
    pub async fn login_from(
        &self,
        base: &str,
        email: &str,
        password: &str,
        address: &str,
    ) -> Reply {
        self.send(
            base,
            Method::POST,
            "/v1/auth/password",
            None,
            Some(&json!({ "email": email, "password": password })),
            &[("x-forwarded-for", address)],
        )
        .await
    }

    /// Logs in from a fresh address and returns the session token.
    pub async fn login(&self, base: &str, email: &str, password: &str) -> String {
        let address = self.fresh_address();
        let reply = self.login_from(base, email, password, &address).await;
        expect_status(&reply, StatusCode::OK, &format!("login of {email}"));
        text(&reply.body, "token")
    }

    /// Enrols and confirms TOTP for the session's user (enrolled on `enrol_on`,
    /// confirmed on `confirm_on`): the session becomes `aal2`.
    pub async fn enrol_totp(&self, enrol_on: &str, confirm_on: &str, token: &str) -> Authenticator {
        let enrolment = self
            .send(
                enrol_on,
                Method::POST,
                "/v1/me/totp",
                Some(token),
                None,
                &[],
            )
            .await;
        expect_status(&enrolment, StatusCode::OK, "TOTP enrolment");
        let secret = totp_rs::Secret::Encoded(text(&enrolment.body, "secret"))
            .to_bytes()
            .expect("a base32 secret");
        let authenticator = Authenticator(
            totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, secret).expect("a generator"),
        );
        let confirmed = self
            .post(
                confirm_on,
                "/v1/me/totp/confirm",
                token,
                &json!({ "code": authenticator.code(0) }),
            )
            .await;
        expect_status(&confirmed, StatusCode::NO_CONTENT, "TOTP confirmation");
        authenticator
    }

    /// Every item of a cursor-paginated list.
    pub async fn all(&self, base: &str, path: &str, token: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut after = String::new();
        for _page in 0..1000 {
            let reply = self
                .get(base, &format!("{path}?limit=200{after}"), token)
                .await;
            expect_status(&reply, StatusCode::OK, path);
            let page = reply.body["items"].as_array().expect("items");
            if page.is_empty() {
                return items;
            }
            items.extend(page.iter().cloned());
            match reply.body["next_cursor"].as_str() {
                Some(cursor) => after = format!("&after={cursor}"),
                None => return items,
            }
        }
        panic!("{path} has more than 1000 pages")
    }
}

fn expect_status(reply: &Reply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {reply:?}");
}

fn expect_success(reply: &Reply, what: &str) {
    assert!(reply.status.is_success(), "{what}: {reply:?}");
}

/// A problem answer with this status and code (and `Retry-After` on a 429).
fn expect_problem(reply: &Reply, status: StatusCode, code: &str, what: &str) {
    assert_eq!(
        (reply.status, reply.code()),
        (status, Some(code)),
        "{what}: {reply:?}"
    );
    if status == StatusCode::TOO_MANY_REQUESTS {
        assert!(
            reply.headers.contains_key("retry-after"),
            "{what}: a 429 carries Retry-After: {reply:?}"
        );
    }
}

/// A string field of a JSON object, owned.
fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
        .to_owned()
}

mod prove;
pub use prove::prove;
