//! Signed webhooks (SPEC §6): a tenant's hooks, which URLs they may name, and the
//! delivery pass that sends each hook its tenant's events in feed order.
//!
//! A delivery is derived from the outbox: a hook keeps a cursor into its tenant's feed.
//! A worker leases hooks with events past their cursor, sends the events it wants one by
//! one in feed order (an event it does not want just moves the cursor), and records each
//! attempt. A failed event blocks the ones after it (order holds) and is retried with
//! back-off and jitter until [`DeliveryPolicy::give_up_after`] from its first attempt;
//! then it is recorded `failed` and the hook goes on. A worker that dies leaves its lease
//! to expire: the next one sends from the cursor again (at least once).

use std::collections::BTreeSet;
use std::net::IpAddr;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event::{types, Event};
use crate::ids::TenantId;
use crate::mail::DeliveryPolicy;
use crate::ports::{Clock, Store, StoreError, TxScope};

/// What `types` may name besides the event types: every event of the tenant.
pub const ALL_TYPES: &str = "*";

/// A tenant's webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub tenant: TenantId,
    /// `^[a-z0-9][a-z0-9_-]{0,62}$`.
    pub name: String,
    pub url: String,
    /// Event types, or `*` alone for all.
    pub types: BTreeSet<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Webhook {
    /// Whether the hook is sent events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.types.contains(ALL_TYPES) || self.types.contains(event_type)
    }
}

/// Checks a hook name.
///
/// # Errors
/// The message says what a name must look like.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if first_ok
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err("a webhook name must match ^[a-z0-9][a-z0-9_-]{0,62}$".to_owned())
    }
}

/// Checks the event types a hook asks for: `*` alone, or known tenant event types.
///
/// # Errors
/// The message names the first type refused.
pub fn check_types(types: &BTreeSet<String>) -> Result<(), String> {
    if types.is_empty() {
        return Err("types must name at least one event type, or \"*\"".to_owned());
    }
    if types.contains(ALL_TYPES) {
        return if types.len() == 1 {
            Ok(())
        } else {
            Err("\"*\" stands alone in types".to_owned())
        };
    }
    match types
        .iter()
        .find(|name| !types::ALL.contains(&name.as_str()))
    {
        Some(unknown) => Err(format!("unknown event type {unknown:?}")),
        None => Ok(()),
    }
}

/// Where hooks may send (server-side request forgery): the operator setting
/// `allow_insecure` admits `http://` and private, loopback and link-local addresses, for
/// local use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_insecure: bool,
}

/// Whether `address` is one a hook may never reach unless the operator allows it:
/// loopback, private, link-local, unique-local, unspecified, multicast, broadcast,
/// documentation and shared (CGNAT) ranges.
pub fn forbidden_address(address: IpAddr) -> bool {
    match address.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
        }
    }
}

impl UrlPolicy {
    /// Checks a hook URL as given: `https://` (or `http://` when allowed), a host, no
    /// credentials or fragment, and no forbidden address written as the host (names are
    /// checked again when resolved, at each delivery).
    ///
    /// # Errors
    /// The message says what is refused.
    pub fn check(&self, url: &str) -> Result<(), String> {
        if url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("the url must be at most 2048 characters, without spaces".to_owned());
        }
        let rest = if let Some(rest) = url.strip_prefix("https://") {
            rest
        } else if let Some(rest) = url.strip_prefix("http://") {
            if !self.allow_insecure {
                return Err(
                    "the url must be https:// (plain http only with USER_ENGINE_WEBHOOKS_ALLOW_INSECURE)"
                        .to_owned(),
                );
            }
            rest
        } else {
            return Err("the url must be an https:// url".to_owned());
        };
        if url.contains('#') {
            return Err("the url must have no fragment".to_owned());
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err("the url must carry no credentials".to_owned());
        }
        let host = match authority.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        if host.is_empty() {
            return Err("the url names no host".to_owned());
        }
        if !self.allow_insecure {
            let lowered = host.to_ascii_lowercase();
            let local_name = lowered == "localhost" || lowered.ends_with(".localhost");
            let forbidden = host.parse::<IpAddr>().is_ok_and(forbidden_address);
            if local_name || forbidden {
                return Err(format!(
                    "the url names a loopback, private or link-local host ({host}); only \
                     USER_ENGINE_WEBHOOKS_ALLOW_INSECURE admits those"
                ));
            }
        }
        Ok(())
    }
}

/// A new webhook secret: `whsec_` and the base64 of 32 random bytes (the Standard
/// Webhooks form), from a token of the secret generator.
pub fn secret_from(token: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest;
    let key = sha2::Sha256::digest(token.as_bytes());
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// A hook as the worker leased it, with what it needs to sign and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedWebhook {
    pub hook: Webhook,
    pub secret: String,
    /// The feed position up to which every event was delivered, skipped or given up.
    pub cursor: u64,
    /// Attempts so far on the event after the cursor, and when the first was made.
    pub head_attempts: u32,
    pub head_since: Option<OffsetDateTime>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Delivered,
    /// Failed; tried again later.
    Retrying,
    /// Given up after the policy's time; the hook went on.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }

    /// # Errors
    /// An unknown name.
    pub fn parse(name: &str) -> Result<Self, StoreError> {
        match name {
            "delivered" => Ok(Self::Delivered),
            "retrying" => Ok(Self::Retrying),
            "failed" => Ok(Self::Failed),
            _ => Err(StoreError::Unavailable(format!(
                "unknown delivery status {name}"
            ))),
        }
    }
}

/// One event's delivery to one hook, as `GET …/webhooks/{name}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub position: u64,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The receiver's last HTTP status, if it answered.
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub first_attempt_at: OffsetDateTime,
    pub last_attempt_at: OffsetDateTime,
}

/// Where a hook stands after a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookProgress {
    pub cursor: u64,
    pub head_attempts: u32,
    pub head_since: Option<OffsetDateTime>,
    /// When the worker should look at the hook again.
    pub next_attempt_at: OffsetDateTime,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// The receiver's status, when it answered (not 2xx).
    pub status: Option<u16>,
    pub message: String,
}

/// Where webhook requests go (HTTPS in production).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Sends `event` to the hook, signed with its secret, and returns the receiver's
    /// 2xx status.
    ///
    /// # Errors
    /// A refused address, no answer in time, or a status other than 2xx.
    async fn deliver(&self, hook: &LeasedWebhook, event: &Event) -> Result<u16, DeliveryFailure>;
}

/// What one webhook pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookPass {
    pub hooks: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Events read per hook per pass.
const EVENTS_PER_HOOK: usize = 100;

/// One pass: leases up to `batch` hooks with events past their cursor and sends each its
/// events in feed order, recording every attempt and the hook's new cursor. The hooks of
/// a pass are served concurrently, so a slow receiver delays only its own hook.
///
/// # Errors
/// When the store fails; a hook leased and not recorded is taken up again once its lease
/// expires, from its cursor.
pub async fn deliver_webhooks_once(
    store: &dyn Store,
    sender: &dyn WebhookSender,
    clock: &dyn Clock,
    policy: &DeliveryPolicy,
    batch: usize,
) -> Result<WebhookPass, StoreError> {
    let now = clock.now();
    let mut tx = store.begin(TxScope::Platform).await?;
    let leased = tx.lease_webhooks(now, now + policy.lease, batch).await?;
    tx.commit().await?;
    let hooks = leased.len();
    let served = futures::future::join_all(
        leased
            .into_iter()
            .map(|hook| serve_hook(store, sender, clock, policy, hook)),
    )
    .await;
    let mut pass = WebhookPass {
        hooks,
        ..WebhookPass::default()
    };
    for result in served {
        let one = result?;
        pass.delivered += one.delivered;
        pass.retrying += one.retrying;
        pass.failed += one.failed;
    }
    Ok(pass)
}

/// Sends one leased hook the events past its cursor, in order, and records the outcome.
async fn serve_hook(
    store: &dyn Store,
    sender: &dyn WebhookSender,
    clock: &dyn Clock,
    policy: &DeliveryPolicy,
    hook: LeasedWebhook,
) -> Result<WebhookPass, StoreError> {
    let mut pass = WebhookPass::default();
    let events = {
        let mut tx = store.begin(TxScope::Platform).await?;
        tx.list_events(
            &crate::audit::Partition::Tenant(hook.hook.tenant.clone()),
            hook.cursor,
            EVENTS_PER_HOOK,
        )
        .await?
    };
    let full = events.len() == EVENTS_PER_HOOK;
    let mut progress = WebhookProgress {
        cursor: hook.cursor,
        head_attempts: hook.head_attempts,
        head_since: hook.head_since,
        next_attempt_at: clock.now(),
    };
    let mut records = Vec::new();
    let mut blocked = false;
    for event in &events {
        if !hook.hook.wants(&event.event_type) {
            progress.cursor = event.position;
            continue;
        }
        let attempted_at = clock.now();
        let since = progress.head_since.unwrap_or(attempted_at);
        let attempts = progress.head_attempts + 1;
        let outcome = sender.deliver(&hook, event).await;
        let done_at = clock.now();
        let (status, code, error) = match outcome {
            Ok(code) => (DeliveryStatus::Delivered, Some(code), None),
            Err(failure) if done_at - since >= policy.give_up_after => (
                DeliveryStatus::Failed,
                failure.status,
                Some(failure.message),
            ),
            Err(failure) => (
                DeliveryStatus::Retrying,
                failure.status,
                Some(failure.message),
            ),
        };
        records.push(Delivery {
            position: event.position,
            event_id: event.id.to_string(),
            event_type: event.event_type.clone(),
            status,
            attempts,
            last_status_code: code,
            last_error: error,
            first_attempt_at: since,
            last_attempt_at: done_at,
        });
        match status {
            DeliveryStatus::Delivered | DeliveryStatus::Failed => {
                if status == DeliveryStatus::Delivered {
                    pass.delivered += 1;
                } else {
                    pass.failed += 1;
                }
                progress.cursor = event.position;
                progress.head_attempts = 0;
                progress.head_since = None;
            }
            DeliveryStatus::Retrying => {
                pass.retrying += 1;
                progress.head_attempts = attempts;
                progress.head_since = Some(since);
                progress.next_attempt_at = policy.next_attempt(
                    uuid::Uuid::from_u128(u128::from(event.position)),
                    attempts,
                    done_at,
                );
                blocked = true;
                break;
            }
        }
    }
    if !blocked && !full {
        progress.next_attempt_at = clock.now();
    }
    let mut tx = store.begin(TxScope::Platform).await?;
    tx.record_webhook_progress(&hook.hook.tenant, &hook.hook.name, &progress, &records)
        .await?;
    tx.commit().await?;
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn names_and_types_are_checked() {
        assert!(check_name("billing-sync_2").is_ok());
        for bad in ["", "-x", "Billing", "a b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_types(&set(&["*"])).is_ok());
        assert!(check_types(&set(&["membership.added", "user.created"])).is_ok());
        assert!(check_types(&set(&[])).is_err());
        assert!(check_types(&set(&["*", "user.created"])).is_err());
        assert!(check_types(&set(&["membership.adde"])).is_err());
    }

    #[test]
    fn urls_must_be_https_to_public_hosts_unless_allowed() {
        let strict = UrlPolicy::default();
        let open = UrlPolicy {
            allow_insecure: true,
        };
        assert!(strict.check("https://hooks.example.com/in?x=1").is_ok());
        for refused in [
            "http://hooks.example.com/in",
            "https://127.0.0.1/in",
            "https://[::1]:8443/in",
            "https://10.1.2.3/in",
            "https://169.254.169.254/latest/meta-data",
            "https://192.168.0.1/",
            "https://[fd00::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://localhost:8443/in",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#x",
            "ftp://hooks.example.com/",
            "https:///path",
        ] {
            assert!(strict.check(refused).is_err(), "{refused}");
        }
        assert!(open.check("http://127.0.0.1:9000/in").is_ok());
        assert!(open.check("https://user:pw@hooks.example.com/").is_err());
        assert!(!forbidden_address(
            "93.184.216.34".parse().unwrap_or(IpAddr::from([0; 4]))
        ));
    }

    #[test]
    fn secrets_take_the_standard_webhooks_form() {
        let secret = secret_from("token");
        assert!(secret.starts_with("whsec_"));
        assert_eq!(secret.len(), "whsec_".len() + 44);
        assert_ne!(secret, secret_from("other"));
    }
}
