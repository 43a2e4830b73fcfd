//! The relay loop: [`domain::relay::relay_once`] pass after pass, run inside `serve` or
//! alone as `user-engine relay`.
//!
//! Nothing is dropped: a pass that fails leaves its events unpublished and the loop backs
//! off and retries, however long the broker stays away.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use api_http::metrics::Metrics;
use domain::relay::{relay_once, EventPublisher, RelayOutbox};

/// Events per pass: enough that its commit and the acknowledgement round trip are shared
/// by many events (a backlog drains 1.2 to 1.5 times as fast as with batches of 256;
/// BENCHMARKS.md).
pub const BATCH: usize = 1024;
/// Pause when the outbox is empty. It bounds the lag of an event committed into an idle
/// outbox, and an empty pass costs one index probe, so it is short.
const IDLE: Duration = Duration::from_millis(50);
/// Pause after a short batch: the relay has caught up, and letting events gather for a
/// moment makes the next pass carry many rather than spend a transaction on a handful,
/// which took the database from the writers (BENCHMARKS.md).
const GATHER: Duration = Duration::from_millis(10);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Drains the outbox into `publisher` until `shutdown` resolves: idles briefly when the
/// outbox is empty and backs off exponentially (100 ms to 5 s) while passes fail.
pub async fn run_relay(
    outbox: &dyn RelayOutbox,
    publisher: &dyn EventPublisher,
    metrics: Option<Arc<Metrics>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let work = async {
        let mut backoff = BACKOFF_MIN;
        loop {
            let pass = relay_once(outbox, publisher, BATCH).await;
            if let Some(metrics) = &metrics {
                metrics.relay_pass(pass.as_ref().map(|published| *published).map_err(|_| ()));
                if let Ok((unpublished, oldest)) = outbox.backlog().await {
                    let age = oldest.map_or(0.0, |oldest| {
                        (time::OffsetDateTime::now_utc() - oldest)
                            .as_seconds_f64()
                            .max(0.0)
                    });
                    metrics.relay_backlog(unpublished, age);
                }
            }
            match pass {
                Ok(0) => {
                    backoff = BACKOFF_MIN;
                    tokio::time::sleep(IDLE).await;
                }
                Ok(published) => {
                    backoff = BACKOFF_MIN;
                    tracing::debug!(published, "relayed outbox events");
                    if published < BATCH {
                        tokio::time::sleep(GATHER).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "relay pass failed; the events stay in the outbox and will be retried"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    };
    // Stopping mid-pass is safe: the dropped claim releases its events unpublished.
    tokio::select! {
        () = work => {}
        () = shutdown => tracing::info!("relay stopped"),
    }
}
