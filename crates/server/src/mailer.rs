//! The mail worker: [`domain::mail::deliver_once`] pass after pass, inside `serve` when
//! SMTP is configured. Every node may run one: leases keep two workers off one mail.
//!
//! Nothing is dropped: a pass that fails leaves its mails queued, and a mail whose
//! worker died is sent by another once its lease expires.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use api_http::metrics::Metrics;
use domain::mail::{deliver_once, DeliveryPolicy, MailSender};
use domain::ports::{Clock, Store, TxScope};

/// Mails leased per pass.
pub const BATCH: usize = 32;
/// Pause when nothing is due: it bounds the lag of a mail queued into an idle queue.
const IDLE: Duration = Duration::from_millis(100);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Sends queued mails through `sender` until `shutdown` resolves.
pub async fn run_mailer(
    store: Arc<dyn Store>,
    sender: Arc<dyn MailSender>,
    clock: Arc<dyn Clock>,
    policy: DeliveryPolicy,
    metrics: Option<Arc<Metrics>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let work = async {
        let mut backoff = BACKOFF_MIN;
        loop {
            let pass = deliver_once(
                store.as_ref(),
                sender.as_ref(),
                clock.as_ref(),
                &policy,
                BATCH,
            )
            .await;
            if let Some(metrics) = &metrics {
                if let Ok(pass) = &pass {
                    metrics.mail_pass(pass.sent, pass.retried);
                }
                if let Ok(backlog) = backlog(store.as_ref()).await {
                    let age = backlog.oldest.map_or(0.0, |oldest| {
                        (clock.now() - oldest).as_seconds_f64().max(0.0)
                    });
                    metrics.mail_queue(backlog.waiting, age, backlog.failed);
                }
            }
            match pass {
                Ok(pass) if pass.leased() == 0 => {
                    backoff = BACKOFF_MIN;
                    tokio::time::sleep(IDLE).await;
                }
                Ok(pass) => {
                    backoff = BACKOFF_MIN;
                    if pass.retried > 0 || pass.gave_up > 0 {
                        tracing::warn!(
                            sent = pass.sent,
                            retried = pass.retried,
                            gave_up = pass.gave_up,
                            "some mails were not accepted by the SMTP server"
                        );
                    } else {
                        tracing::debug!(sent = pass.sent, "sent mails");
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "mail pass failed; the mails stay queued and will be retried"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    };
    // Stopping mid-send is safe: what was leased and not recorded is sent again once its
    // lease expires.
    tokio::select! {
        () = work => {}
        () = shutdown => tracing::info!("mail worker stopped"),
    }
}

async fn backlog(
    store: &dyn Store,
) -> Result<domain::mail::MailBacklog, domain::ports::StoreError> {
    let mut tx = store.begin(TxScope::Platform).await?;
    tx.mail_backlog().await
}
