//! `cargo xtask schemathesis`: the real `user-engine serve` binary on a fresh store,
//! fuzzed through its own OpenAPI document by schemathesis, once per kind of caller.
//!
//! Schemathesis lives in a virtualenv under `target/` (created on first use, from the
//! pinned `xtask/schemathesis-requirements.txt`); `xtask/schemathesis.toml` says which
//! answers depend on state the generator cannot know (see its comments). Everything
//! listens on 127.0.0.1 only, every run is bounded in time, and the servers are stopped
//! (and a PostgreSQL database dropped) whatever happens.

use std::env;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Test cases per operation and run in `cargo xtask ci`.
pub const CI_EXAMPLES: u32 = 30;
/// No run of schemathesis may take longer than this (raised with the examples).
const RUN_SECONDS_PER_EXAMPLE: u64 = 6;
const RUN_SECONDS_MIN: u64 = 180;

const ROOT_EMAIL: &str = "root@schemathesis.test";
const ADMIN_EMAIL: &str = "admin@schemathesis.test";
/// Only ever used on a throwaway store on 127.0.0.1.
const PASSWORD: &str = "schemathesis-password-1";
const TENANT: &str = "fuzz";

/// Which store a run starts the server on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "pg",
        }
    }
}

/// What `cargo xtask schemathesis` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub examples: u32,
    pub stores: Vec<Store>,
}

impl Options {
    /// `[--examples N] [--store pg|sqlite|both]`; `SCHEMATHESIS_EXAMPLES` sets the
    /// default number of examples (for long local runs through `cargo xtask ci`).
    pub fn parse(args: &[String], default_stores: &[Store]) -> Result<Self, String> {
        let mut examples = match env::var("SCHEMATHESIS_EXAMPLES") {
            Ok(text) if !text.is_empty() => text
                .parse()
                .map_err(|_| format!("SCHEMATHESIS_EXAMPLES must be a number, not {text:?}"))?,
            _ => CI_EXAMPLES,
        };
        let mut stores = default_stores.to_vec();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match arg.as_str() {
                "--examples" => {
                    let text = rest.next().ok_or("--examples needs a number")?;
                    examples = text
                        .parse()
                        .map_err(|_| format!("--examples must be a number, not {text:?}"))?;
                }
                "--store" => {
                    stores = match rest.next().map(String::as_str) {
                        Some("sqlite") => vec![Store::Sqlite],
                        Some("pg") => vec![Store::Postgres],
                        Some("both") => vec![Store::Sqlite, Store::Postgres],
                        other => {
                            return Err(format!("--store takes pg, sqlite or both, not {other:?}"))
                        }
                    };
                }
                other => return Err(format!("schemathesis: unknown argument {other}")),
            }
        }
        if examples == 0 {
            return Err("--examples must be at least 1".to_owned());
        }
        Ok(Self { examples, stores })
    }
}

/// The figures of one schemathesis run.
#[derive(Debug, Clone, Default)]
struct Figures {
    operations: u64,
    test_cases: u64,
    requests: u64,
    failures: u64,
    errors: u64,
    by_check: Vec<(String, u64)>,
}

pub(crate) fn workspace_root() -> PathBuf {
    let xtask = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().map_or(xtask.clone(), Path::to_path_buf)
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Runs the whole step: the virtualenv, the binary, then per store a fresh server and
/// a run per caller. Counts the runs that passed and failed; `Err` only when the step
/// itself could not run.
pub fn run(options: &Options) -> Result<crate::Counts, String> {
    let schemathesis = virtualenv()?;
    crate::run(
        "schemathesis: build user-engine",
        crate::cargo().args([
            "build",
            "--quiet",
            "--package",
            "user-engine",
            "--bin",
            "user-engine",
        ]),
    )?;
    let binary = target_dir().join("debug").join("user-engine");
    let work = target_dir().join("schemathesis");
    fs::create_dir_all(&work)
        .map_err(|error| format!("schemathesis: {}: {error}", work.display()))?;
    let mut summary = Vec::new();
    let mut counts = crate::Counts::default();
    // The stores' runs are independent (a server and a database each) and each is one
    // Python process at a time, so on two cores they run side by side.
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = options
            .stores
            .iter()
            .map(|store| {
                let (binary, schemathesis, work) = (&binary, &schemathesis, &work);
                let store = *store;
                scope.spawn(move || {
                    (
                        store,
                        run_store(store, binary, schemathesis, work, options.examples),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| "schemathesis: a store's run panicked".to_owned())
            })
            .collect()
    });
    for run in runs {
        let (store, results) = run?;
        for (caller, figures, passed) in results? {
            if passed {
                counts.passed += 1;
            } else {
                counts.failed += 1;
            }
            summary.push(format!(
                "schemathesis: {:<6} {:<13} {:>3} operations, {:>6} test cases, {:>6} requests, {} failures{}{}",
                store.name(),
                caller,
                figures.operations,
                figures.test_cases,
                figures.requests,
                figures.failures,
                if figures.errors > 0 {
                    format!(", {} errors", figures.errors)
                } else {
                    String::new()
                },
                if figures.by_check.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        figures
                            .by_check
                            .iter()
                            .map(|(check, count)| format!("{check}: {count}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            ));
        }
    }
    for line in &summary {
        eprintln!("{line}");
    }
    if counts.failed > 0 {
        eprintln!(
            "xtask: schemathesis found failures; the reports are in {}",
            work.display()
        );
    }
    Ok(counts)
}

/// A Python of at least 3.11 (schemathesis 4.32 requires it): `SCHEMATHESIS_PYTHON`,
/// else the newest `python3.1x` on the PATH or under pyenv, else `python3`.
fn python() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(explicit) = env::var_os("SCHEMATHESIS_PYTHON") {
        candidates.push(PathBuf::from(explicit));
    }
    for minor in (11..=14).rev() {
        candidates.push(PathBuf::from(format!("python3.{minor}")));
        let pyenv_root = env::var_os("PYENV_ROOT")
            .map(PathBuf::from)
            .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")));
        if let Some(versions) = pyenv_root.map(|root| root.join("versions")) {
            if let Ok(entries) = fs::read_dir(&versions) {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| {
                        path.file_name()
                            .and_then(|name| name.to_str())
                            .is_some_and(|name| name.starts_with(&format!("3.{minor}.")))
                    })
                    .map(|path| path.join("bin").join("python"))
                    .collect();
                found.sort();
                candidates.extend(found.into_iter().rev());
            }
        }
    }
    candidates.push(PathBuf::from("python3"));
    for candidate in candidates {
        let Ok(output) = Command::new(&candidate)
            .args([
                "-c",
                "import sys, venv; print(sys.version_info[0] * 100 + sys.version_info[1])",
            ])
            .output()
        else {
            continue;
        };
        let version: u32 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if output.status.success() && version >= 311 {
            return Ok(candidate);
        }
    }
    Err(
        "schemathesis needs Python 3.11 or newer with venv: install one (Debian: apt-get \
         install python3 python3-venv) or point SCHEMATHESIS_PYTHON at it"
            .to_owned(),
    )
}

/// The virtualenv under `target/` with the pinned schemathesis, created or refreshed
/// when the requirements file changed. Returns the `schemathesis` executable.
fn virtualenv() -> Result<PathBuf, String> {
    let venv = pinned_virtualenv("schemathesis", "schemathesis-requirements.txt")?;
    Ok(venv.join("bin").join("schemathesis"))
}

/// The virtualenv `target/{name}-venv` with exactly the packages `xtask/{requirements}`
/// pins, created or refreshed when that file changed. Returns the virtualenv.
pub(crate) fn pinned_virtualenv(name: &str, requirements: &str) -> Result<PathBuf, String> {
    let requirements_path = workspace_root().join("xtask").join(requirements);
    let pinned = fs::read_to_string(&requirements_path)
        .map_err(|error| format!("{name}: {}: {error}", requirements_path.display()))?;
    let venv = target_dir().join(format!("{name}-venv"));
    let stamp = venv.join("requirements.installed");
    if venv.join("bin").join("python").exists()
        && fs::read_to_string(&stamp).is_ok_and(|installed| installed == pinned)
    {
        return Ok(venv);
    }
    let python = python()?;
    if venv.exists() {
        fs::remove_dir_all(&venv)
            .map_err(|error| format!("{name}: removing {}: {error}", venv.display()))?;
    }
    crate::run(
        &format!("{name}: virtualenv with {}", python.display()),
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
    )?;
    crate::run(
        &format!("{name}: pip install (pinned)"),
        Command::new(venv.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-virtualenv",
                "-r",
            ])
            .arg(&requirements_path),
    )?;
    fs::write(&stamp, pinned).map_err(|error| format!("{name}: {}: {error}", stamp.display()))?;
    Ok(venv)
}

/// A child process killed (and waited for) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A PostgreSQL database dropped when dropped.
struct Database(String);

impl Database {
    fn create() -> Result<Self, String> {
        crate::db()?;
        let name = format!("ue_schemathesis_{}", std::process::id());
        let database = Self(name.clone());
        database.psql(&format!("drop database if exists {name} with (force)"))?;
        database.psql(&format!("create database {name}"))?;
        Ok(database)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.0)
    }

    fn psql(&self, sql: &str) -> Result<(), String> {
        let output = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .map_err(|error| format!("schemathesis: psql: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "schemathesis: psql {sql:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.psql(&format!("drop database if exists {} with (force)", self.0));
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("schemathesis: no free port: {error}"))
}

/// One store: a fresh server, the callers set up, and a run as each of them.
fn run_store(
    store: Store,
    binary: &Path,
    schemathesis: &Path,
    work: &Path,
    examples: u32,
) -> Result<Vec<(&'static str, Figures, bool)>, String> {
    let dir = work.join(store.name());
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .map_err(|error| format!("schemathesis: {}: {error}", dir.display()))?;
    }
    fs::create_dir_all(&dir)
        .map_err(|error| format!("schemathesis: {}: {error}", dir.display()))?;
    let database = match store {
        Store::Postgres => Some(Database::create()?),
        Store::Sqlite => None,
    };
    let port = free_port()?;
    let log = fs::File::create(dir.join("server.log"))
        .map_err(|error| format!("schemathesis: server log: {error}"))?;
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env_clear()
        .env("PATH", env::var_os("PATH").unwrap_or_default())
        .env("USER_ENGINE_LISTEN", format!("127.0.0.1:{port}"))
        .env("USER_ENGINE_BOOTSTRAP_EMAIL", ROOT_EMAIL)
        .env("USER_ENGINE_BOOTSTRAP_PASSWORD", PASSWORD)
        .env("USER_ENGINE_LOG", "warn")
        // The fuzzer sends its stream of unauthenticated requests and logins from one
        // address, which the address throttles of SPEC §3.6 would soon answer with 429
        // alone. They have tests of their own (http_secrets); here they are out of reach,
        // so every operation is checked for what it answers itself.
        .env("USER_ENGINE_AUTH_FAILURES_PER_MINUTE", "100000")
        .env("USER_ENGINE_LOGIN_RATE_PER_MINUTE", "100000")
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|error| format!("schemathesis: server log: {error}"))?,
        )
        .stderr(log);
    match &database {
        Some(database) => command.env("USER_ENGINE_DATABASE_URL", database.url()),
        None => command.env("USER_ENGINE_DATA_DIR", dir.join("data")),
    };
    eprintln!(
        "xtask: schemathesis: {} server on 127.0.0.1:{port}",
        store.name()
    );
    let server = Guard(
        command
            .spawn()
            .map_err(|error| format!("schemathesis: starting user-engine: {error}"))?,
    );
    wait_until_up(port, &server)?;
    let callers = set_up(port)?;
    let mut results = Vec::new();
    for caller in callers {
        let (figures, passed) = fuzz(schemathesis, &dir, port, &caller, examples, store)?;
        results.push((caller.name, figures, passed));
    }
    drop(server);
    drop(database);
    Ok(results)
}

fn wait_until_up(port: u16, server: &Guard) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let _ = server;
    while Instant::now() < deadline {
        if let Ok((200, _)) = request(port, "GET", "/readyz", None, None) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err("schemathesis: the server did not become ready in 60 s (see server.log)".to_owned())
}

/// Logs the platform root in, creates the tenant with an invited admin who accepts and
/// logs in, and a tenant API key with every enabled scope. Returns the three callers,
/// in the order they run: the API key and the tenant admin first, the platform root
/// last (it may suspend the tenant, which the others would then meet).
fn set_up(port: u16) -> Result<Vec<Caller>, String> {
    let root = login(port, ROOT_EMAIL)?;
    let tenant = expect(
        request(
            port,
            "POST",
            "/v1/tenants",
            Some(&root),
            Some(&json!({"id": TENANT, "display_name": "Fuzz", "admin": {"email": ADMIN_EMAIL}})),
        ),
        201,
        "create the tenant",
    )?;
    let invitation = field(&tenant, "invitation_token")
        .as_str()
        .ok_or("schemathesis: the new tenant's admin has no invitation token")?;
    expect(
        request(
            port,
            "POST",
            "/v1/auth/invitation",
            None,
            Some(&json!({"token": invitation, "password": PASSWORD})),
        ),
        204,
        "accept the admin's invitation",
    )?;
    let admin = login(port, ADMIN_EMAIL)?;
    let enabled = expect(
        request(
            port,
            "GET",
            &format!("/v1/tenants/{TENANT}/scopes"),
            Some(&admin),
            None,
        ),
        200,
        "read the enabled scopes",
    )?;
    let catalog = expect(
        request(port, "GET", "/v1/catalog/scopes", Some(&admin), None),
        200,
        "read the catalog",
    )?;
    // Every enabled scope a key can use: keys act at aal1, and nobody at aal1 may hand
    // out a scope that needs aal2 (`roles:write`).
    let needs_aal2: Vec<&Value> = field(&catalog, "items")
        .as_array()
        .into_iter()
        .flatten()
        .filter(|scope| field(scope, "min_assurance") == "aal2")
        .map(|scope| field(scope, "name"))
        .collect();
    let scopes: Vec<&Value> = field(&enabled, "scopes")
        .as_array()
        .into_iter()
        .flatten()
        .filter(|scope| !needs_aal2.contains(scope))
        .collect();
    let key = expect(
        request(
            port,
            "POST",
            &format!("/v1/tenants/{TENANT}/api-keys"),
            Some(&admin),
            Some(&json!({"name": "schemathesis", "scopes": scopes})),
        ),
        201,
        "create the API key",
    )?;
    let key = field(&key, "key")
        .as_str()
        .ok_or("schemathesis: the API key answer has no key")?
        .to_owned();
    // The sessions' runs leave out logging out, which would end the very session the
    // rest of the run uses; a last run logs a session of its own out.
    let logout = login(port, ROOT_EMAIL)?;
    Ok(vec![
        Caller::new("api-key", key, &[]),
        Caller::new("tenant-admin", admin, &["--exclude-name", LOGOUT]),
        Caller::new("platform-root", root, &["--exclude-name", LOGOUT]),
        Caller::new("logout", logout, &["--include-name", LOGOUT]),
    ])
}

const LOGOUT: &str = "DELETE /v1/auth/session";

/// Who a run acts as: a name, a bearer token, and which operations it takes.
struct Caller {
    name: &'static str,
    token: String,
    filter: Vec<String>,
}

impl Caller {
    fn new(name: &'static str, token: String, filter: &[&str]) -> Self {
        Self {
            name,
            token,
            filter: filter.iter().map(|arg| (*arg).to_owned()).collect(),
        }
    }
}

fn login(port: u16, email: &str) -> Result<String, String> {
    let session = expect(
        request(
            port,
            "POST",
            "/v1/auth/password",
            None,
            Some(&json!({"email": email, "password": PASSWORD})),
        ),
        200,
        &format!("log in as {email}"),
    )?;
    field(&session, "token")
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "schemathesis: the session has no token".to_owned())
}

/// A field of a JSON object (null when absent).
fn field<'a>(value: &'a Value, name: &str) -> &'a Value {
    value.get(name).unwrap_or(&Value::Null)
}

fn expect(answer: Result<(u16, Value), String>, status: u16, what: &str) -> Result<Value, String> {
    match answer? {
        (got, body) if got == status => Ok(body),
        (got, body) => Err(format!(
            "schemathesis: {what}: expected {status}, got {got}: {body}"
        )),
    }
}

/// One HTTP/1.1 request to 127.0.0.1 (`Connection: close`); the status and the JSON
/// body (null when there is none).
fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .map_err(|error| format!("connect: {error}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|error| format!("timeout: {error}"))?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if body.is_some() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(payload.as_bytes()))
        .map_err(|error| format!("send: {error}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|error| format!("receive: {error}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, content) = text.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or("no status")?;
    let chunked = head.lines().any(|line| {
        line.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let content = if chunked {
        dechunk(content)
    } else {
        content.to_owned()
    };
    let value = if content.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&content).unwrap_or(Value::String(content))
    };
    Ok((status, value))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(after.get(..size).unwrap_or_default());
        rest = after.get(size + 2..).unwrap_or_default();
    }
    out
}

/// One schemathesis run as one caller, bounded in time. Returns its figures and whether
/// it passed.
fn fuzz(
    schemathesis: &Path,
    dir: &Path,
    port: u16,
    caller: &Caller,
    examples: u32,
    store: Store,
) -> Result<(Figures, bool), String> {
    let store = store.name();
    let (token, caller_name) = (&caller.token, caller.name);
    let report = dir.join(format!("{caller_name}.ndjson"));
    let output_path = dir.join(format!("{caller_name}.log"));
    let output =
        fs::File::create(&output_path).map_err(|error| format!("schemathesis: {error}"))?;
    let config = workspace_root().join("xtask").join("schemathesis.toml");
    let mut command = Command::new(schemathesis);
    command
        .current_dir(dir)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args(["--checks", "all", "--max-examples", &examples.to_string()])
        .args(["--workers", "1", "--request-timeout", "20", "--no-color"])
        .args(["--generation-database", "none", "--seed", "1"])
        .args(["--report", "ndjson", "--report-ndjson-path"])
        .arg(&report)
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .args(&caller.filter)
        .env(
            "SCHEMATHESIS_HOOKS",
            workspace_root().join("xtask").join("schemathesis_hooks.py"),
        )
        .env("SCHEMATHESIS_TENANT", TENANT)
        // No `__pycache__` beside the hooks in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(
            output
                .try_clone()
                .map_err(|error| format!("schemathesis: {error}"))?,
        )
        .stderr(output);
    let limit =
        Duration::from_secs(RUN_SECONDS_MIN.max(RUN_SECONDS_PER_EXAMPLE * u64::from(examples)));
    eprintln!(
        "xtask: schemathesis: {store} as {caller_name}, {examples} examples per operation (at most {} s; log {})",
        limit.as_secs(),
        output_path.display()
    );
    let started = Instant::now();
    let mut child = Guard(
        command
            .spawn()
            .map_err(|error| format!("schemathesis: could not start: {error}"))?,
    );
    let status = loop {
        if let Some(status) = child
            .0
            .try_wait()
            .map_err(|error| format!("schemathesis: {error}"))?
        {
            break Some(status);
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    drop(child);
    let log = fs::read_to_string(&output_path).unwrap_or_default();
    let mut figures = figures(&log);
    figures.requests = requests(&fs::read_to_string(&report).unwrap_or_default());
    match status {
        None => {
            eprintln!(
                "xtask: schemathesis: {store} as {caller_name}: stopped after {} s",
                limit.as_secs()
            );
            Ok((figures, false))
        }
        Some(status) => {
            let passed = status.success();
            if !passed {
                // The failures, as schemathesis printed them, so CI's log shows them.
                eprintln!("{log}");
            }
            eprintln!(
                "xtask: schemathesis: {store} as {caller_name}: {} in {} s",
                if passed { "passed" } else { "FAILED" },
                started.elapsed().as_secs()
            );
            Ok((figures, passed))
        }
    }
}

/// The requests a run sent: the answered interactions its NDJSON report records.
fn requests(report: &str) -> u64 {
    report
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|event| {
            let interactions = event
                .get("ScenarioFinished")?
                .get("recorder")?
                .get("interactions")?
                .as_object()?
                .values()
                .filter(|interaction| interaction.get("response").is_some_and(|r| !r.is_null()))
                .count();
            u64::try_from(interactions).ok()
        })
        .sum()
}

/// The figures of schemathesis's closing summary: `API Operations:` (`Tested: N`),
/// `Failures:` (one `❌ <check>: N` line each) and `Test cases:` (`N generated, …`).
fn figures(log: &str) -> Figures {
    let mut figures = Figures::default();
    let first_number = |text: &str| -> u64 {
        text.split(|c: char| !c.is_ascii_digit())
            .find(|part| !part.is_empty())
            .and_then(|part| part.parse().ok())
            .unwrap_or(0)
    };
    let summary = log
        .rsplit_once("SUMMARY")
        .map_or("", |(_, summary)| summary);
    let mut section = "";
    for line in summary.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            section = trimmed;
            continue;
        }
        match section {
            "API Operations:" if trimmed.starts_with("Tested:") => {
                figures.operations = first_number(trimmed);
            }
            "Failures:" => {
                if let Some((check, count)) =
                    trimmed.trim_start_matches('❌').trim().rsplit_once(':')
                {
                    let count = first_number(count);
                    figures.failures += count;
                    figures.by_check.push((check.trim().to_owned(), count));
                }
            }
            "Errors:" => figures.errors += first_number(trimmed).max(1),
            "Test cases:" => figures.test_cases = first_number(trimmed),
            _ => {}
        }
    }
    figures
}
