//! Issue 14's proof on many nodes: two `user-engine serve` processes and two relays on
//! one PostgreSQL through PgBouncer in transaction pooling mode share every piece of
//! state a node could keep (decisions' facts, idempotency keys, throttles, the last-admin
//! invariant, audit chains, feed order, the outbox), and a SIGKILL of one node under
//! load loses nothing acknowledged. One test, so the cluster starts once; the checks are
//! `tests::nodes::prove`, which `cargo xtask cluster` runs too.

use std::time::Instant;

use tests::nodes::{prove, Cluster, ClusterOptions};

#[test]
fn two_nodes_and_two_relays_behind_pgbouncer_share_all_state_and_survive_a_sigkill() {
    let started = Instant::now();
    let mut cluster = Cluster::start(&ClusterOptions::default());
    println!("cluster up in {:?}", started.elapsed());
    tests::pg::run(async {
        prove(&mut cluster, &mut |check, detail| {
            println!("ok: {check}: {detail} ({:?})", started.elapsed());
        })
        .await;
    });
}
