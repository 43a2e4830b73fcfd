//! A relay process for the crash tests: the loop `user-engine relay` runs, on a stream and
//! subject root of the test's own, in a process the test can SIGKILL at any point.
//!
//! Usage: `test-relay <database url> <nats url> <stream> <subject root>`. It prints
//! `ready` once connected to both, relays until killed, and exits by itself when its
//! stdin closes, so a test that dies cannot leave it running.

use std::io::{Read, Write};
use std::process::ExitCode;

use adapters_nats::JetStreamPublisher;
use adapters_pg::relay::Relay;
use adapters_pg::PgStore;
use server::relay::run_relay;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [database_url, nats_url, stream, prefix] = args.as_slice() else {
        eprintln!("usage: test-relay <database url> <nats url> <stream> <subject root>");
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("test-relay: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(relay(database_url, nats_url, stream, prefix)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("test-relay: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn relay(
    database_url: &str,
    nats_url: &str,
    stream: &str,
    prefix: &str,
) -> Result<(), String> {
    let store = PgStore::connect(database_url, 2)
        .await
        .map_err(|error| format!("cannot connect to PostgreSQL: {error}"))?;
    let publisher = JetStreamPublisher::connect_to(nats_url, stream, prefix).await?;
    // The test's stdin pipe closes when the test process goes, however it goes.
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = closed.send(());
    });
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready").map_err(|error| error.to_string())?;
    stdout.flush().map_err(|error| error.to_string())?;
    run_relay(&Relay::new(&store), &publisher, None, async {
        let _ = stdin_closed.await;
    })
    .await;
    Ok(())
}
