//! Webhook delivery (SPEC §6): [`HttpsSender`], the domain's [`WebhookSender`] over HTTP.
//!
//! Each request is a `POST` of the event's CloudEvents JSON, signed per the Standard
//! Webhooks scheme: `webhook-id` (the event id, the same on every retry, for the
//! receiver to dedupe on), `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,` and the base64 HMAC-SHA256, keyed by the secret's base64 part, of
//! `{id}.{timestamp}.{body}`). Redirects are not followed; a request has 10 seconds.
//!
//! Server-side request forgery: unless the operator allows it, a hook's host must
//! resolve only to public addresses — the resolver refuses a name with any loopback,
//! private, link-local or otherwise internal address — and a URL naming such an
//! address is refused before any connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use domain::event::{cloudevent, Event};
use domain::webhook::{
    forbidden_address, DeliveryFailure, LeasedWebhook, UrlPolicy, WebhookSender,
};
use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The Standard Webhooks signature of `body` sent as message `id` at `timestamp`.
///
/// # Errors
/// A secret that is not `whsec_` and base64.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "the webhook secret is not base64".to_owned())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| "the webhook secret is not a key".to_owned())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Resolves names with the system resolver and refuses internal addresses.
#[derive(Debug, Clone, Copy)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() {
                return Err(format!("{host} resolves to no address").into());
            }
            if let Some(internal) = addresses
                .iter()
                .find(|address| forbidden_address(address.ip()))
            {
                return Err(format!(
                    "{host} resolves to {} (loopback, private or link-local): refused",
                    internal.ip()
                )
                .into());
            }
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

/// Sends webhook requests.
#[derive(Debug, Clone)]
pub struct HttpsSender {
    client: reqwest::Client,
    policy: UrlPolicy,
}

impl HttpsSender {
    /// A sender under `policy` (whether internal addresses and plain HTTP are allowed).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(policy: UrlPolicy) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("user-engine-webhooks/", env!("CARGO_PKG_VERSION")));
        if !policy.allow_insecure {
            builder = builder.dns_resolver(Arc::new(PublicOnly)).https_only(true);
        }
        let client = builder
            .build()
            .map_err(|error| format!("the webhook HTTP client cannot be built: {error}"))?;
        Ok(Self { client, policy })
    }
}

#[async_trait]
impl WebhookSender for HttpsSender {
    async fn deliver(&self, hook: &LeasedWebhook, event: &Event) -> Result<u16, DeliveryFailure> {
        let refused = |message: String| DeliveryFailure {
            status: None,
            message,
        };
        // The URL was checked when put; check again (the policy may have tightened).
        self.policy.check(&hook.hook.url).map_err(refused)?;
        let body = serde_json::to_vec(&cloudevent(event))
            .map_err(|error| refused(format!("the event cannot be written: {error}")))?;
        let id = event.id.to_string();
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(&hook.secret, &id, timestamp, &body).map_err(refused)?;
        let response = self
            .client
            .post(&hook.hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|error| {
                let error = error.without_url();
                let mut message = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    message.push_str(": ");
                    message.push_str(&cause.to_string());
                    source = cause.source();
                }
                refused(message)
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(DeliveryFailure {
                status: Some(status.as_u16()),
                message: format!("the receiver answered {status}"),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signatures_match_the_specification_example() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[tokio::test]
    async fn internal_names_are_refused_when_resolved() {
        let resolved = PublicOnly.resolve("localhost".parse().unwrap()).await;
        assert!(resolved.is_err());
    }
}
