//! The real `user-engine` binary, run as a process: durability across restarts and
//! SIGKILLs, the bounds of memory and time under hostile traffic, and no secret in any
//! output. One test binary, so cargo links it once and its tests run in parallel.
//!
//! It lives with the binary's package because only there does cargo build the binary
//! for a test (`CARGO_BIN_EXE_user-engine`); the cross-crate tests are in `tests`.
#![allow(
    clippy::expect_used,
    reason = "tests: a failed expectation aborts the test"
)]

mod bounds;
mod durability;
mod secrets;

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Sends SIGTERM to `child` and waits for it to end; `None` if it still runs after
/// `within`.
fn terminate(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(signalled.success(), "kill -TERM {} failed", child.id());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if started.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
