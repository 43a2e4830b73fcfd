//! `cargo xtask`: the project's task runner (`ci` runs every check CI runs).

use std::env;
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

/// Crates `crates/domain` must never depend on (normal dependencies, any feature set).
const DOMAIN_BANNED: &[&str] = &["tokio", "sqlx", "axum", "anyhow"];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("deps") => domain_dependency_ban(),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  \
                 ci     fmt check, clippy (warnings denied), the domain dependency ban, all tests\n  \
                 deps   only the domain dependency ban\n\n\
                 PROPTEST_CASES raises the property-test case counts for long local runs."
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

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn run(step: &str, command: &mut Command) -> Result<(), String> {
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
    domain_dependency_ban()?;
    test()
}

/// Runs every test, echoing cargo's output, and ends with one summary line over all
/// test binaries (`ci: N passed, M failed`), so the last line speaks for the whole run.
fn test() -> Result<(), String> {
    eprintln!("xtask: test");
    let mut child = cargo()
        .args(["test", "--workspace", "--all-features"])
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
    println!("ci: {passed} passed, {failed} failed");
    if status.success() && failed == 0 {
        Ok(())
    } else {
        Err(format!("test failed ({status})"))
    }
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
