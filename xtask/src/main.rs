//! `cargo xtask`: the project's task runner (`ci` runs every check CI runs).

use std::env;
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

mod schemathesis;
#[cfg(test)]
mod tidy;

/// Crates `crates/domain` must never depend on (normal dependencies, any feature set).
const DOMAIN_BANNED: &[&str] = &["tokio", "sqlx", "axum", "anyhow"];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("db") => db(),
        Some("bench") => bench(args.get(1..).unwrap_or_default()),
        Some("cluster") => cluster(args.get(1..).unwrap_or_default()),
        Some("seed") => seed(args.get(1..).unwrap_or_default()),
        Some("deps") => domain_dependency_ban(),
        Some("checkers") => checkers().map(|python| println!("{}", python.display())),
        Some("schemathesis") => schemathesis::Options::parse(
            args.get(1..).unwrap_or_default(),
            &[schemathesis::Store::Sqlite, schemathesis::Store::Postgres],
        )
        .and_then(|options| schemathesis::run(&options))
        .and_then(|runs| match runs.failed {
            0 => Ok(()),
            failed => Err(format!("{failed} schemathesis runs failed")),
        }),
        // Its own exit status is the answer (0 ready, 1 degraded, 2 not ready, 3 error).
        Some("diagnose") => return diagnose(args.get(1..).unwrap_or_default()),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  \
                 ci     a database (as db), fmt check, clippy (warnings denied), the domain\n         \
                        dependency ban, all tests, schemathesis (as below, both stores)\n  \
                 db     make sure a PostgreSQL is there for the tests, starting the local cluster\n  \
                 checkers\n         \
                        the pinned Python checkers the tests drive (aiosmtpd) in target/checkers-venv\n  \
                 bench store [--store sqlite] [seconds]\n         \
                        member-add transactions/s on PostgreSQL beside pgbench, same run\n         \
                        (on SQLite beside the same inserts as raw SQL)\n  \
                 bench http [--seeded] [seconds]\n         \
                        authorize requests/s beside hello and select routes; logins beside argon2;\n         \
                        --seeded: random questions on 10x10 and 10,000x100 seeded datasets\n  \
                 bench decide [--members N]\n         \
                        the decision in process with its facts from the store's facts cache,\n         \
                        ns per decision beside the decision alone (no database)\n  \
                 bench events [seconds]\n         \
                        outbox relay events/s beside raw JetStream publishes; commit-to-ack lag\n  \
                 bench delivery [seconds]\n         \
                        mails/s and webhook deliveries/s of one worker beside direct sends;\n         \
                        commit-to-arrival lag of mail, webhooks and the NATS relay under load\n  \
                 bench oidc [seconds]\n         \
                        the OpenID provider: token endpoint (code, refresh) beside logins,\n         \
                        JWKS and discovery beside hello, authorize with an access token vs\n         \
                        a session token as subject\n  \
                 bench scim [seconds]\n         \
                        SCIM user creates/s and userName-eq lookups/s on a tenant of 100,000\n         \
                        members beside /v1 member adds; one unindexed filter for context\n  \
                 bench audit [records]\n         \
                        peak RSS of audit verify and diagnose on 1,000 records and on 1,000,000\n  \
                 bench rss [seconds]\n         \
                        serve's memory on each store: idle, after setup, under authorize load\n  \
                 bench connections [seconds]\n         \
                        authorize and member adds over TLS, transaction pooling and PgBouncer,\n         \
                        as ratios to a direct plaintext connection\n  \
                 cluster [--hold] [--no-checks] [--direct]\n         \
                        two user-engine serve nodes and two relays on a fresh database through\n         \
                        PgBouncer (transaction pooling) and a private NATS, all on 127.0.0.1;\n         \
                        runs the many-node checks across them (as the cluster test does);\n         \
                        --hold keeps it running until Ctrl-C, printing every URL; --direct\n         \
                        skips PgBouncer\n  \
                 seed --tenants N --members-per-tenant M [--multi-tenant-users K] [--store sqlite]\n         \
                        fills the database of USER_ENGINE_DATABASE_URL (else the development\n         \
                        server's postgres database) through COPY: tenants, users, accounts,\n         \
                        roles, keys and audit chains that verify (bench/src/seed.rs); with\n         \
                        --store sqlite the embedded store of USER_ENGINE_DATA_DIR, through\n         \
                        batched inserts (bench/src/seed_sqlite.rs)\n  \
                 deps   only the domain dependency ban\n  \
                 schemathesis [--examples N] [--store pg|sqlite|both]\n         \
                        the real server on a fresh store, fuzzed through its OpenAPI document\n         \
                        as a tenant API key, a tenant admin and the platform root (default\n         \
                        30 examples per operation, both stores)\n  \
                 diagnose [--tenant T | --all] [--json]\n         \
                        user-engine diagnose against the development database (default --all)\n\n\
                 PROPTEST_CASES raises the property-test case counts and SCHEMATHESIS_EXAMPLES\n\
                 the schemathesis examples per operation, for long local runs."
            );
            Err("unknown task".to_owned())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

pub(crate) fn run(step: &str, command: &mut Command) -> Result<(), String> {
    eprintln!("xtask: {step}");
    let status = command
        .status()
        .map_err(|error| format!("{step}: could not start: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    db()?;
    nats()?;
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // The repository rules (the domain dependency ban among them) are tests: `tidy.rs`.
    let tests = test()?;
    // Schemathesis runs only on a green test suite, each run counted as one test; the
    // one summary line comes last, so the last line speaks for the whole run.
    let fuzzed = if tests.failed == 0 {
        schemathesis::run(&schemathesis::Options::parse(
            &[],
            &[schemathesis::Store::Sqlite, schemathesis::Store::Postgres],
        )?)
    } else {
        Ok(Counts::default())
    };
    let (passed, failed) = match &fuzzed {
        Ok(runs) => (tests.passed + runs.passed, tests.failed + runs.failed),
        Err(_) => (tests.passed, tests.failed + 1),
    };
    println!("ci: {passed} passed, {failed} failed");
    fuzzed?;
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} failed"))
    }
}

/// Passed and failed tests (or schemathesis runs).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub passed: u64,
    pub failed: u64,
}

/// Runs every test, echoing cargo's output; the counts over all test binaries (a test
/// binary that fails to build or crashes counts as one failure).
/// The Python with the outside checkers the tests drive (`aiosmtpd`, pinned in
/// `xtask/checkers-requirements.txt`); the tests find it through `USER_ENGINE_TEST_PYTHON`.
fn checkers() -> Result<std::path::PathBuf, String> {
    let venv = schemathesis::pinned_virtualenv("checkers", "checkers-requirements.txt")?;
    Ok(venv.join("bin").join("python"))
}

/// Installs the browser checks' pinned npm packages (`tests/browser/package-lock.json`:
/// playwright-core, axe-core) into `tests/browser/node_modules` (ignored by git) when the
/// lock changed; the tests drive Debian's Chromium with them.
fn browser_checks() -> Result<(), String> {
    let directory = schemathesis::workspace_root().join("tests").join("browser");
    let lock = std::fs::read_to_string(directory.join("package-lock.json"))
        .map_err(|error| format!("browser checks: package-lock.json: {error}"))?;
    let stamp = directory.join("node_modules").join(".lock.installed");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    run(
        "browser checks: npm ci (pinned)",
        std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&directory),
    )?;
    std::fs::write(&stamp, lock).map_err(|error| format!("browser checks: {error}"))
}

fn test() -> Result<Counts, String> {
    let python = checkers()?;
    browser_checks()?;
    eprintln!("xtask: test");
    let mut child = cargo()
        .args(["test", "--workspace", "--all-features"])
        .env("USER_ENGINE_TEST_PYTHON", python)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| format!("test: could not start: {error}"))?;
    let (mut passed, mut failed) = (0_u64, 0_u64);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|error| format!("test: reading output: {error}"))?;
            println!("{line}");
            if let Some(counts) = line.strip_prefix("test result: ") {
                passed += count_of(counts, "passed");
                failed += count_of(counts, "failed");
            }
        }
    }
    let status = child
        .wait()
        .map_err(|error| format!("test: waiting: {error}"))?;
    if !status.success() && failed == 0 {
        eprintln!("xtask: test failed ({status})");
        failed = 1;
    }
    Ok(Counts { passed, failed })
}

/// The number before `label` in a cargo summary such as `ok. 3 passed; 0 failed; …`.
fn count_of(counts: &str, label: &str) -> u64 {
    counts
        .split(';')
        .filter_map(|part| part.trim().strip_suffix(label))
        .filter_map(|number| number.trim().rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// `crates/domain` stays pure: none of the banned crates in its normal dependency tree.
fn domain_dependency_ban() -> Result<(), String> {
    eprintln!("xtask: domain dependency ban");
    let output = cargo()
        .args([
            "tree",
            "--package",
            "user-engine-domain",
            "--edges",
            "normal",
            "--all-features",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .map_err(|error| format!("cargo tree: could not start: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let found: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| DOMAIN_BANNED.contains(name))
        .collect();
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "crates/domain depends on {} (banned: it must stay free of runtimes, SQL and HTTP)",
            found.join(", ")
        ))
    }
}

/// The database URL the tests use, if one is configured (same order as the tests).
fn configured_database_url() -> Option<String> {
    ["USER_ENGINE_TEST_DATABASE_URL", "DATABASE_URL"]
        .into_iter()
        .find_map(|name| env::var(name).ok().filter(|url| !url.is_empty()))
}

fn local_postgres_listening() -> bool {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], 5432));
    std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(1)).is_ok()
}

/// Makes sure a PostgreSQL is there: a configured URL, else 127.0.0.1:5432, else the
/// installed local cluster started with `pg_ctlcluster`, else a message saying what to do.
pub(crate) fn db() -> Result<(), String> {
    if let Some(url) = configured_database_url() {
        eprintln!(
            "xtask: db: using the configured database server ({} set)",
            redact(&url)
        );
        return Ok(());
    }
    if local_postgres_listening() {
        eprintln!("xtask: db: PostgreSQL is listening on 127.0.0.1:5432");
        return Ok(());
    }
    let clusters = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .map_err(|_| {
            "no PostgreSQL on 127.0.0.1:5432 and pg_lsclusters is not installed: install \
         PostgreSQL (Debian: apt-get install postgresql) or set USER_ENGINE_TEST_DATABASE_URL"
                .to_owned()
        })?;
    let listing = String::from_utf8_lossy(&clusters.stdout);
    let mut columns = listing
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.get(2) == Some(&"5432"))
        .or_else(|| listing.lines().next().map(|line| line.split_whitespace().collect()))
        .ok_or("pg_lsclusters lists no cluster: create one (pg_createcluster) or set USER_ENGINE_TEST_DATABASE_URL")?
        .into_iter();
    let (Some(version), Some(cluster)) = (columns.next(), columns.next()) else {
        return Err(format!("cannot read pg_lsclusters output: {listing}"));
    };
    run(
        "db: start the local cluster",
        Command::new("pg_ctlcluster").args([
            "--skip-systemctl-redirect",
            version,
            cluster,
            "start",
        ]),
    )?;
    for _ in 0..60 {
        if local_postgres_listening() {
            eprintln!("xtask: db: PostgreSQL {version}/{cluster} is up");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    Err(format!(
        "PostgreSQL {version}/{cluster} started but does not listen on 127.0.0.1:5432"
    ))
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The development database of the README: `USER_ENGINE_DATABASE_URL` when set.
const DEV_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/user_engine";

/// `user-engine diagnose` against the development database, passing its exit status
/// through: 0 ready, 1 degraded, 2 not ready, 3 the diagnosis could not run.
fn diagnose(args: &[String]) -> ExitCode {
    if let Err(message) = db() {
        eprintln!("xtask: {message}");
        return ExitCode::from(3);
    }
    let args: Vec<String> = if args.is_empty() {
        vec!["--all".to_owned()]
    } else {
        args.to_vec()
    };
    let mut command = cargo();
    command
        .args(["run", "--quiet", "--package", "user-engine"])
        .args(["--", "diagnose"])
        .args(&args);
    let configured = env::var("USER_ENGINE_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    if configured.is_none() {
        command.env("USER_ENGINE_DATABASE_URL", DEV_DATABASE_URL);
    }
    eprintln!(
        "xtask: diagnose on {}",
        redact(configured.as_deref().unwrap_or(DEV_DATABASE_URL))
    );
    match command.status() {
        Ok(status) => {
            let code = status.code().and_then(|code| u8::try_from(code).ok());
            if code == Some(3) {
                eprintln!(
                    "xtask: diagnose could not run; the development database must exist and be \
                     migrated (README, Quickstart: create database user_engine, then \
                     user-engine migrate), or set USER_ENGINE_DATABASE_URL"
                );
            }
            ExitCode::from(code.unwrap_or(3))
        }
        Err(error) => {
            eprintln!("xtask: diagnose: could not start cargo: {error}");
            ExitCode::from(3)
        }
    }
}

/// Runs a benchmark of `bench/` in release mode against the development database.
fn bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some(
            which @ ("store" | "http" | "events" | "delivery" | "oidc" | "scim" | "audit"
            | "rss" | "connections" | "decide"),
        ) => {
            // The embedded store and the in-process decision need no PostgreSQL.
            if which != "decide" && !args.windows(2).any(|pair| pair == ["--store", "sqlite"]) {
                db()?;
            }
            if which == "events" || which == "delivery" {
                nats()?;
            }
            // These measure the release binary itself, found beside the bench's (`http
            // --seeded` reads `serve`'s memory on the large dataset).
            let seeded = which == "http" && args.iter().any(|arg| arg == "--seeded");
            if matches!(which, "audit" | "rss") || seeded {
                run(
                    &format!("bench {which}: build user-engine"),
                    cargo().args(["build", "--release", "--quiet", "--package", "user-engine"]),
                )?;
            }
            run(
                &format!("bench {which}"),
                bench_binary()
                    .arg(which)
                    .args(args.get(1..).unwrap_or_default()),
            )
        }
        _ => Err(
            "usage: cargo xtask bench store [--store sqlite]|http|events|delivery|oidc|scim|rss|connections \
             [seconds per run] | bench audit [records] | bench decide [--members N]"
                .to_owned(),
        ),
    }
}

/// `cargo run` of the release `bench` binary, its arguments to follow.
fn bench_binary() -> Command {
    let mut command = cargo();
    command.args(["run", "--release", "--quiet", "--package", "bench", "--"]);
    command
}

/// Seeds a database with a large dataset (the `seed` command of `bench/`): PostgreSQL, or
/// the embedded store with `--store sqlite`.
fn seed(args: &[String]) -> Result<(), String> {
    let sqlite = args.windows(2).any(|pair| pair == ["--store", "sqlite"]);
    if !sqlite && env::var_os("USER_ENGINE_DATABASE_URL").is_none() {
        db()?;
    }
    run("seed", bench_binary().arg("seed").args(args))
}

/// Builds `user-engine` and runs the many-node cluster of `tests::nodes` (the `cluster`
/// binary of `tests`), passing its arguments through. It starts a private NATS and
/// PgBouncer of its own, so it needs their programs but no shared server beyond
/// PostgreSQL; like the rest of xtask it installs nothing.
fn cluster(args: &[String]) -> Result<(), String> {
    db()?;
    let installed = |program: &str| {
        Command::new(program).arg("--version").output().is_ok()
            || Command::new(format!("/usr/sbin/{program}"))
                .arg("--version")
                .output()
                .is_ok()
    };
    for program in ["pgbouncer", "nats-server"] {
        if !installed(program) {
            return Err(format!(
                "{program} is not installed; the cluster runs a private one: install it \
                 (Debian: apt-get install {program}) or run .ci/run, which does"
            ));
        }
    }
    run(
        "cluster: build user-engine",
        cargo().args(["build", "--package", "user-engine"]),
    )?;
    run(
        "cluster",
        cargo()
            .args([
                "run",
                "--quiet",
                "--package",
                "tests",
                "--bin",
                "cluster",
                "--",
            ])
            .args(args),
    )
}

fn nats_listening() -> bool {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], 4222));
    std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(1)).is_ok()
}

/// Makes sure NATS with JetStream listens on 127.0.0.1:4222 for the relay tests: starts
/// `nats-server -js` in the background with a store directory of its own when none
/// listens. The binary is needed even when a server already listens: the outage test runs
/// a private server it kills and restarts. xtask installs nothing: `.ci/run` installs the
/// Debian package on a CI machine, and the message says how to get it elsewhere.
fn nats() -> Result<(), String> {
    let has_server = ["nats-server", "/usr/sbin/nats-server"]
        .into_iter()
        .any(|program| Command::new(program).arg("--version").output().is_ok());
    if !has_server {
        return Err(
            "nats-server is not installed; the relay tests run it: install it \
             (Debian: apt-get install nats-server; elsewhere: https://docs.nats.io) or run \
             .ci/run, which does"
                .to_owned(),
        );
    }
    if nats_listening() {
        eprintln!("xtask: nats: listening on 127.0.0.1:4222");
        return Ok(());
    }
    let store = env::temp_dir().join("user-engine-nats");
    std::fs::create_dir_all(&store).map_err(|error| format!("nats: store directory: {error}"))?;
    let log = std::fs::File::create(store.join("nats.log"))
        .map_err(|error| format!("nats: log file: {error}"))?;
    Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", "4222", "-js", "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|error| format!("nats: could not start nats-server: {error}"))?;
    for _ in 0..40 {
        if nats_listening() {
            eprintln!("xtask: nats: started nats-server with JetStream");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    Err("nats-server started but does not listen on 127.0.0.1:4222".to_owned())
}
