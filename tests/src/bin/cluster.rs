//! `cargo xtask cluster`: starts the many-node cluster of `tests::nodes` (two
//! `user-engine serve` nodes and two relays on a fresh database through PgBouncer in
//! transaction pooling mode, and a private NATS), runs the same checks as the `cluster`
//! test, printing each as it passes, and with `--hold` keeps the cluster running until
//! Ctrl-C, so an operator can try it by hand.
//!
//! Usage: `cluster [--hold] [--no-checks] [--direct]`. `--direct` points the nodes at
//! PostgreSQL itself instead of PgBouncer. The `user-engine` binary must be built
//! (`cargo xtask cluster` builds it). Exits non-zero, with the failed check's message,
//! when a check fails.

use std::process::ExitCode;
use std::time::Instant;

use tests::nodes::{prove, Cluster, ClusterOptions};

const USAGE: &str = "usage: cluster [--hold] [--no-checks] [--direct]";

fn main() -> ExitCode {
    let (mut hold, mut checks, mut options) = (false, true, ClusterOptions::default());
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--hold" => hold = true,
            "--no-checks" => checks = false,
            "--direct" => options.through_pgbouncer = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("cluster: unknown argument {other:?}\n{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cluster: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    // A failed check panics with what it saw; the unwinding drop tears the cluster down.
    let mut cluster = Cluster::start(&options);
    println!(
        "cluster up in {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        cluster.describe()
    );
    if checks {
        runtime.block_on(prove(&mut cluster, &mut |check, detail| {
            println!(
                "ok   {check}\n     {detail} ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }));
        println!(
            "cluster: every check passed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    if hold {
        cluster.restart_stopped_nodes();
        println!(
            "\nholding the cluster until Ctrl-C:\n{}",
            cluster.describe()
        );
        if let Err(error) = runtime.block_on(tokio::signal::ctrl_c()) {
            eprintln!("cluster: cannot wait for Ctrl-C: {error}");
            return ExitCode::FAILURE;
        }
        println!("cluster: stopping");
    }
    ExitCode::SUCCESS
}
