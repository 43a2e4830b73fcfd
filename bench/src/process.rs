//! The memory of `user-engine` processes, for the benchmarks that measure the binary
//! itself: the peak resident set of a command run to its end, and the resident set of a
//! running server.
//!
//! A finished child's peak is only known to its parent, through `getrusage` of its
//! reaped children, which reports the largest one ever reaped. So each measured command
//! runs under a fresh `bench peak-rss` process of its own whose only child it is: that
//! process's figure is exactly the command's.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::Failure;

/// A measured run: its exit status, output and peak resident set.
#[derive(Debug)]
pub struct Measured {
    pub code: Option<i32>,
    pub output: String,
    pub peak_kib: u64,
    pub elapsed: Duration,
}

impl Measured {
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// Runs `program args…` with exactly the environment `env` under `bench peak-rss`, and
/// returns its status, output and peak resident set.
///
/// # Errors
/// When the bench binary cannot start itself or its report is unreadable.
pub fn run_measured(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Measured, Failure> {
    let started = Instant::now();
    let output = Command::new(std::env::current_exe()?)
        .arg("peak-rss")
        .arg(program)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()?;
    let elapsed = started.elapsed();
    let report: Value = serde_json::from_slice(&output.stdout).map_err(|error| {
        format!(
            "bench peak-rss gave no report ({error}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok(Measured {
        code: report
            .get("code")
            .and_then(Value::as_i64)
            .and_then(|code| i32::try_from(code).ok()),
        output: report
            .get("output")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        peak_kib: report
            .get("peak_kib")
            .and_then(Value::as_u64)
            .unwrap_or_default(),
        elapsed,
    })
}

/// `bench peak-rss <program> <args…>`: runs the program to its end with this process's
/// environment, then prints one JSON object: its exit code, its output, and the peak
/// resident set of the only child this process ever reaped.
///
/// # Errors
/// When the program cannot start or the usage cannot be read.
pub fn peak_rss_main(args: &[String]) -> Result<(), Failure> {
    let (program, rest) = args
        .split_first()
        .ok_or("usage: bench peak-rss <program> [args…]")?;
    let output = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .output()?;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    // Linux reports `ru_maxrss` in KiB.
    let peak_kib = u64::try_from(usage.max_rss()).unwrap_or_default();
    println!(
        "{}",
        json!({
            "code": output.status.code(),
            "output": format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            "peak_kib": peak_kib,
        })
    );
    Ok(())
}

/// A running process's resident set (`VmRSS`) and its peak so far (`VmHWM`), in KiB.
///
/// # Errors
/// When `/proc` has no such process.
pub fn resident_kib(pid: u32) -> Result<(u64, u64), Failure> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or_default()
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}
