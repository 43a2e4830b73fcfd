//! The real `user-engine` binary, run as a process: durability across restarts and
//! SIGKILLs, the bounds of memory and time under hostile traffic, and no secret in any
//! output. One test binary, so cargo links it once and its tests run in parallel.
//!
//! It lives with the binary's package because only there does cargo build the binary
//! for a test (`CARGO_BIN_EXE_user-engine`); the cross-crate tests are in `tests`.

mod bounds;
mod durability;
mod secrets;
