//! SCIM 2.0 on both stores as an outside checker sees it: scim2-tester 0.5.2
//! (`tests/checkers/scim_check_server.py`, pinned in `xtask/checkers-requirements.txt`,
//! no code of ours) discovers a tenant's `/scim/v2/tenants/{t}` base through its own
//! ServiceProviderConfig, ResourceTypes and Schemas, then creates, reads, queries,
//! replaces, patches and deletes Users and Groups there with a tenant API key holding
//! `scim:write`. No check may end in ERROR or CRITICAL, and Users and Groups must both
//! have been exercised; every skipped (and SHOULD-deviating) check is named in the run
//! log.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::http::{enrol_totp, spawn_app_on, tenant_with_admin, StoreKind};

const TENANT: &str = "acme";
/// How long the whole checker may run before it is killed and the test fails.
const CHECKER_TIMEOUT: Duration = Duration::from_secs(120);

/// The Python the checkers are installed in: `USER_ENGINE_TEST_PYTHON` (set by `cargo
/// xtask ci`), else `target/checkers-venv/bin/python` (as `tests::smtp::python`).
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("USER_ENGINE_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("checkers-venv")
        .join("bin")
        .join("python");
    assert!(
        venv.exists(),
        "the pinned scim2-tester is not installed: run `cargo xtask checkers` (cargo xtask \
         ci does it before the tests), or point USER_ENGINE_TEST_PYTHON at a Python with \
         xtask/checkers-requirements.txt installed"
    );
    venv
}

/// One check as scim2-tester reported it.
#[derive(Debug, Clone)]
struct Check {
    status: String,
    title: String,
    reason: String,
    resource_type: Option<String>,
    data: String,
}

impl Check {
    fn from_json(value: &Value) -> Self {
        let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        Self {
            status: field("status"),
            title: field("title"),
            reason: field("reason"),
            resource_type: value["resource_type"].as_str().map(str::to_owned),
            data: field("data"),
        }
    }

    fn describe(&self) -> String {
        let mut data: String = self.data.chars().take(400).collect();
        if data.len() < self.data.len() {
            data.push('…');
        }
        format!(
            "{} {} [{}]: {}{}",
            self.status,
            self.title,
            self.resource_type.as_deref().unwrap_or("-"),
            if self.reason.is_empty() {
                "(no reason given)"
            } else {
                &self.reason
            },
            if data.is_empty() {
                String::new()
            } else {
                format!("\n      data: {data}")
            }
        )
    }
}

/// A line on the process's stderr, past the test harness's capture (which takes
/// `eprintln!`), so that a passing run's log names the skipped checks too.
fn log(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs the checker against `base` with `token` (blocking), killed after
/// [`CHECKER_TIMEOUT`]; its results, or a panic naming why it could not run.
fn run_checker(base: &str, token: &str) -> Vec<Check> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("checkers")
        .join("scim_check_server.py");
    let python = python();
    let mut child = Command::new(&python)
        .arg(&script)
        .args(["--base", base, "--token", token])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{} could not start: {error}", python.display()));
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the checker is waited for") {
            break Some(status);
        }
        if started.elapsed() > CHECKER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    let Some(status) = status else {
        panic!(
            "scim2-tester ran longer than {CHECKER_TIMEOUT:?} against {base} and was \
             killed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    };
    assert!(
        status.success(),
        "scim2-tester could not run against {base} ({status})\nstdout:\n{stdout}\nstderr:\n\
         {stderr}"
    );
    let results: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!("scim2-tester's output is not JSON ({error})\nstdout:\n{stdout}\nstderr:\n{stderr}")
    });
    results
        .as_array()
        .unwrap_or_else(|| panic!("scim2-tester's output is not a list: {results}"))
        .iter()
        .map(Check::from_json)
        .collect()
}

async fn scim2_tester_finds_no_error_in_a_tenants_scim_base(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let _ = tenant_with_admin(&app, &root, TENANT).await;
    // The platform root may grant any tenant scope; at aal2, whatever assurance the
    // catalog asks of scim:write.
    let _ = enrol_totp(&app, &root).await;
    let key = app
        .post(
            &format!("/v1/tenants/{TENANT}/api-keys"),
            &root,
            json!({ "name": "scim2-tester", "scopes": ["scim:write"] }),
        )
        .await;
    assert_eq!(
        key.status,
        StatusCode::CREATED,
        "a tenant API key holding scim:write: {key:?}"
    );
    let token = key.body["key"]
        .as_str()
        .expect("the key, shown once")
        .to_owned();

    let base = format!("http://{}/scim/v2/tenants/{TENANT}", app.address);
    let checks = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || run_checker(&base, &token))
            .await
            .expect("the checker's thread is joined")
    };

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for check in &checks {
        *counts.entry(check.status.as_str()).or_default() += 1;
    }
    log(&format!(
        "scim2-tester on {store:?} ({base}): {} checks, {counts:?}",
        checks.len()
    ));
    for check in checks
        .iter()
        .filter(|check| matches!(check.status.as_str(), "SKIPPED" | "DEVIATION"))
    {
        log(&format!(
            "scim2-tester {store:?}: {} {} [{}]: {}",
            check.status,
            check.title,
            check.resource_type.as_deref().unwrap_or("-"),
            check.reason
        ));
    }

    let failed: Vec<String> = checks
        .iter()
        .filter(|check| matches!(check.status.as_str(), "ERROR" | "CRITICAL"))
        .map(Check::describe)
        .collect();
    assert!(
        failed.is_empty(),
        "scim2-tester found {} errors on {store:?} ({base}):\n  {}",
        failed.len(),
        failed.join("\n  ")
    );
    for resource_type in ["User", "Group"] {
        assert!(
            checks.iter().any(|check| check.status == "SUCCESS"
                && check.resource_type.as_deref() == Some(resource_type)),
            "scim2-tester exercised no {resource_type} on {store:?} ({base}): {counts:?}"
        );
    }
}

tests::on_both_stores!(scim2_tester_finds_no_error_in_a_tenants_scim_base);
