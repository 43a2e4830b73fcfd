//! The webhook worker: [`domain::webhook::deliver_webhooks_once`] pass after pass, inside
//! every `serve`. Leases keep two nodes' workers off one hook, so each hook's events go
//! out in feed order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use api_http::metrics::Metrics;
use domain::mail::DeliveryPolicy;
use domain::ports::{Clock, Store};
use domain::webhook::{deliver_webhooks_once, WebhookSender};

/// Hooks leased per pass.
pub const BATCH: usize = 16;
/// Pause when no hook has anything due: it bounds the lag of an event into an idle hook.
const IDLE: Duration = Duration::from_millis(100);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Delivers webhook events through `sender` until `shutdown` resolves.
pub async fn run_webhooks(
    store: Arc<dyn Store>,
    sender: Arc<dyn WebhookSender>,
    clock: Arc<dyn Clock>,
    policy: DeliveryPolicy,
    metrics: Option<Arc<Metrics>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let work = async {
        let mut backoff = BACKOFF_MIN;
        loop {
            let pass = deliver_webhooks_once(
                store.as_ref(),
                sender.as_ref(),
                clock.as_ref(),
                &policy,
                BATCH,
            )
            .await;
            match pass {
                Ok(pass) => {
                    backoff = BACKOFF_MIN;
                    if let Some(metrics) = &metrics {
                        metrics.webhook_pass(pass.delivered, pass.retrying, pass.failed);
                    }
                    if pass.failed > 0 {
                        tracing::warn!(
                            failed = pass.failed,
                            "webhook deliveries were given up after failing for the give-up time"
                        );
                    }
                    if pass.hooks == 0 {
                        tokio::time::sleep(IDLE).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "webhook pass failed; the events stay pending and will be retried"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = shutdown => tracing::info!("webhook worker stopped"),
    }
}
