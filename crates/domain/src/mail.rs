//! Transactional mail (SPEC §6): what is mailed, how it reads, and the delivery pass.
//!
//! A mail is rendered and queued by the use case that causes it, in its transaction
//! ([`crate::ports::Mailbox::queue_mail`]), so a rolled-back change queues nothing. A
//! worker ([`deliver_once`]) leases due mails, sends each through a [`MailSender`] outside
//! any transaction, and records each outcome: sent (the bodies, which may hold a token,
//! are then cleared), retried later with exponential back-off and jitter, or given up
//! after [`DeliveryPolicy::give_up_after`] with the failure kept. A worker that dies
//! mid-send leaves its lease to expire, and another sends the mail again: at least once.

use async_trait::async_trait;
use futures::StreamExt;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::ids::{Email, UserId};
use crate::ports::{Clock, Store, StoreError, TxScope};

/// What a mail is for; each has its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailKind {
    /// An invitation into `tenant` (its display name), with the token that accepts it.
    Invitation {
        tenant: String,
        token: String,
    },
    /// A self-service password reset, with its token.
    PasswordReset {
        token: String,
    },
    /// The token that confirms a new email address, sent to that address.
    EmailVerification {
        token: String,
    },
    /// Security notices.
    PasswordChanged,
    FactorAdded {
        factor: &'static str,
    },
    RecoveryCodeUsed,
    /// Sent to the old address once a change to a new one was verified.
    EmailChanged,
}

impl MailKind {
    /// The kind's name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Invitation { .. } => "invitation",
            Self::PasswordReset { .. } => "password_reset",
            Self::EmailVerification { .. } => "email_verification",
            Self::PasswordChanged => "password_changed",
            Self::FactorAdded { .. } => "factor_added",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::EmailChanged => "email_changed",
        }
    }
}

/// How mails read: the name they sign with and where their links point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// The product name mails speak for when no tenant is concerned.
    pub product: String,
    /// The page links open, e.g. `https://app.example.com/account`: a mail with a token
    /// links to `{link_base}/{invitation|password-reset|email-verification}#token=…`
    /// (a fragment, so the token stays out of web server logs). Without it the mail
    /// carries the token alone.
    pub link_base: Option<String>,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            product: "user-engine".to_owned(),
            link_base: None,
        }
    }
}

/// A mail ready to queue: its recipient and rendered parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailDraft {
    pub id: Uuid,
    /// The user it concerns; erasing the user deletes the mail.
    pub user: Option<UserId>,
    pub recipient: Email,
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub queued_at: OffsetDateTime,
}

/// A leased mail, as the worker sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub queued_at: OffsetDateTime,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    /// Try again at the given time.
    Retry {
        at: OffsetDateTime,
        error: String,
    },
    /// Never again; the error stays visible.
    GaveUp {
        error: String,
    },
}

/// The mail queue's state, for metrics and readiness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailBacklog {
    /// Mails not yet sent nor given up.
    pub waiting: u64,
    /// When the oldest of them was queued.
    pub oldest: Option<OffsetDateTime>,
    /// Mails given up on.
    pub failed: u64,
}

/// Renders `kind` for `recipient` as a draft with a fresh `id`.
pub fn render(
    settings: &MailSettings,
    kind: &MailKind,
    recipient: Email,
    user: Option<UserId>,
    id: Uuid,
    now: OffsetDateTime,
) -> MailDraft {
    let product = settings.product.as_str();
    let link = |page: &str, token: &str| {
        settings
            .link_base
            .as_ref()
            .map(|base| format!("{}/{page}#token={token}", base.trim_end_matches('/')))
    };
    let (subject, lines, token_link) = match kind {
        MailKind::Invitation { tenant, token } => (
            format!("You are invited to {tenant}"),
            vec![
                format!("You have been invited to join {tenant}."),
                "Choose a password to accept the invitation. It is valid for 7 days.".to_owned(),
            ],
            Some(("invitation", token.as_str())),
        ),
        MailKind::PasswordReset { token } => (
            format!("Reset your {product} password"),
            vec![
                "Someone asked to reset the password of this account.".to_owned(),
                "Choose a new password within one hour. If it was not you, ignore this mail."
                    .to_owned(),
            ],
            Some(("password-reset", token.as_str())),
        ),
        MailKind::EmailVerification { token } => (
            format!("Confirm your new {product} email address"),
            vec![
                "Confirm that this address should become your account's email address.".to_owned(),
                "If you did not ask for this, ignore this mail.".to_owned(),
            ],
            Some(("email-verification", token.as_str())),
        ),
        MailKind::PasswordChanged => (
            format!("Your {product} password was changed"),
            vec![
                "The password of your account was changed, and your other sessions ended."
                    .to_owned(),
                "If it was not you, reset your password and contact your administrator.".to_owned(),
            ],
            None,
        ),
        MailKind::FactorAdded { factor } => (
            format!("A sign-in factor was added to your {product} account"),
            vec![
                format!("A new {factor} was set up for your account."),
                "If it was not you, contact your administrator.".to_owned(),
            ],
            None,
        ),
        MailKind::RecoveryCodeUsed => (
            format!("A {product} recovery code was used"),
            vec![
                "One of your recovery codes was used to sign in.".to_owned(),
                "If it was not you, contact your administrator.".to_owned(),
            ],
            None,
        ),
        MailKind::EmailChanged => (
            format!("Your {product} email address was changed"),
            vec![
                "The email address of your account was changed; this address no longer \
                 signs in."
                    .to_owned(),
                "If it was not you, contact your administrator.".to_owned(),
            ],
            None,
        ),
    };
    let mut text = lines.join("\n\n");
    let mut html: String = lines
        .iter()
        .map(|line| format!("<p>{}</p>", escape_html(line)))
        .collect();
    if let Some((page, token)) = token_link {
        match link(page, token) {
            Some(url) => {
                text.push_str(&format!("\n\n{url}\n\nOr enter this code: {token}"));
                html.push_str(&format!(
                    "<p><a href=\"{0}\">{0}</a></p><p>Or enter this code: <code>{1}</code></p>",
                    escape_html(&url),
                    escape_html(token)
                ));
            }
            None => {
                text.push_str(&format!("\n\nYour code: {token}"));
                html.push_str(&format!(
                    "<p>Your code: <code>{}</code></p>",
                    escape_html(token)
                ));
            }
        }
    }
    let signature = match kind {
        MailKind::Invitation { tenant, .. } => format!("{tenant}, via {product}"),
        _ => product.to_owned(),
    };
    text.push_str(&format!("\n\n-- \n{signature}\n"));
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body>{html}<p>&mdash; {}</p></body></html>",
        escape_html(&subject),
        escape_html(&signature)
    );
    MailDraft {
        id,
        user,
        recipient,
        kind: kind.name(),
        subject,
        text,
        html,
        queued_at: now,
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying: the server is away, busy or answered 4xx.
    Transient(String),
    /// The server refused the mail for good (5xx, a malformed address).
    Permanent(String),
}

/// Where mails go (SMTP in production).
#[async_trait]
pub trait MailSender: Send + Sync {
    /// Sends one mail and returns once the server accepted it.
    ///
    /// # Errors
    /// As [`SendError`]; the text is for logs and the queue's `last_error`.
    async fn send(&self, mail: &QueuedMail) -> Result<(), SendError>;
}

/// How deliveries are retried (mail and webhooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// The pause after the first failure; each further failure doubles it.
    pub first_retry: Duration,
    /// The longest pause between attempts.
    pub max_retry: Duration,
    /// A delivery still failing this long after it was queued is given up.
    pub give_up_after: Duration,
    /// How long a worker holds what it leased before another may take it over.
    pub lease: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::seconds(5),
            max_retry: Duration::minutes(15),
            give_up_after: Duration::hours(24),
            lease: Duration::minutes(2),
        }
    }
}

impl DeliveryPolicy {
    /// When to try again after `attempts` failed attempts: `first_retry` doubled per
    /// attempt up to `max_retry`, less a jitter of up to a quarter drawn from `seed`
    /// (so retries of many deliveries spread out rather than arrive together).
    pub fn next_attempt(&self, seed: Uuid, attempts: u32, now: OffsetDateTime) -> OffsetDateTime {
        let doublings = attempts.saturating_sub(1).min(30);
        let pause = self
            .first_retry
            .checked_mul(1_i32 << doublings.min(20))
            .unwrap_or(self.max_retry)
            .min(self.max_retry);
        let bytes = seed.as_bytes();
        let mixed = bytes.iter().fold(
            u64::from(attempts).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            |acc, b| (acc ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3),
        );
        // A fraction in [0, 0.25) of the pause, in whole milliseconds.
        let millis = pause.whole_milliseconds().max(0);
        let jitter = i64::try_from(millis / 4).unwrap_or(0);
        let cut = if jitter > 0 {
            i64::try_from(mixed % u64::try_from(jitter).unwrap_or(1)).unwrap_or(0)
        } else {
            0
        };
        now + pause - Duration::milliseconds(cut)
    }

    /// What a failed attempt leads to.
    pub fn after_failure(
        &self,
        mail: &QueuedMail,
        error: SendError,
        now: OffsetDateTime,
    ) -> MailOutcome {
        match error {
            SendError::Permanent(error) => MailOutcome::GaveUp { error },
            SendError::Transient(error) => {
                let at = self.next_attempt(mail.id, mail.attempts, now);
                if at - mail.queued_at > self.give_up_after {
                    MailOutcome::GaveUp { error }
                } else {
                    MailOutcome::Retry { at, error }
                }
            }
        }
    }
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailPass {
    pub sent: usize,
    pub retried: usize,
    pub gave_up: usize,
}

impl MailPass {
    pub fn leased(&self) -> usize {
        self.sent + self.retried + self.gave_up
    }
}

/// How many mails one pass has in flight at once. An SMTP exchange is a handful of
/// round trips (and, with lettre, a delayed-ACK pause before the final dot), so sending
/// one at a time caps a node near 20 mails/s; the SMTP adapter's connection pool holds
/// at least this many connections.
pub const MAIL_CONCURRENCY: usize = 8;

/// One delivery pass: leases up to `batch` due mails, sends up to [`MAIL_CONCURRENCY`] of
/// them at once, and records each outcome in its own short transaction as soon as it is
/// known (so a mail sent is marked sent even when another one fails or hangs).
///
/// # Errors
/// When the store fails; mails leased and not yet recorded are sent again once their
/// lease expires.
pub async fn deliver_once(
    store: &dyn Store,
    sender: &dyn MailSender,
    clock: &dyn Clock,
    policy: &DeliveryPolicy,
    batch: usize,
) -> Result<MailPass, StoreError> {
    let now = clock.now();
    let mut tx = store.begin(TxScope::Platform).await?;
    let leased = tx.lease_mails(now, now + policy.lease, batch).await?;
    tx.commit().await?;
    let outcomes: Vec<Result<MailOutcome, StoreError>> = futures::stream::iter(leased)
        .map(|mail| async move {
            let outcome = match sender.send(&mail).await {
                Ok(()) => MailOutcome::Sent,
                Err(error) => policy.after_failure(&mail, error, clock.now()),
            };
            let mut tx = store.begin(TxScope::Platform).await?;
            tx.record_mail_outcome(mail.id, &outcome, clock.now())
                .await?;
            tx.commit().await?;
            Ok(outcome)
        })
        .buffer_unordered(MAIL_CONCURRENCY)
        .collect()
        .await;
    let mut pass = MailPass::default();
    for outcome in outcomes {
        match outcome? {
            MailOutcome::Sent => pass.sent += 1,
            MailOutcome::Retry { .. } => pass.retried += 1,
            MailOutcome::GaveUp { .. } => pass.gave_up += 1,
        }
    }
    Ok(pass)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn an_invitation_names_the_tenant_and_links_the_token() {
        let settings = MailSettings {
            product: "Acme ID".to_owned(),
            link_base: Some("https://app.example.com/account/".to_owned()),
        };
        let draft = render(
            &settings,
            &MailKind::Invitation {
                tenant: "Bob & <Co>".to_owned(),
                token: "tok123".to_owned(),
            },
            email("new@example.com"),
            None,
            Uuid::nil(),
            datetime!(2026-12-04 12:00 UTC),
        );
        assert_eq!(draft.subject, "You are invited to Bob & <Co>");
        assert!(draft
            .text
            .contains("https://app.example.com/account/invitation#token=tok123"));
        assert!(draft.html.contains("Bob &amp; &lt;Co&gt;"));
        assert!(!draft.html.contains("<Co>"));
        assert_eq!(draft.kind, "invitation");
    }

    #[test]
    fn without_a_link_base_the_mail_carries_the_code() {
        let draft = render(
            &MailSettings::default(),
            &MailKind::PasswordReset {
                token: "abc".to_owned(),
            },
            email("a@example.com"),
            None,
            Uuid::nil(),
            datetime!(2026-12-04 12:00 UTC),
        );
        assert!(draft.text.contains("Your code: abc"));
        assert!(draft.subject.contains("user-engine"));
    }

    #[test]
    fn back_off_doubles_with_jitter_and_gives_up_in_time() {
        let policy = DeliveryPolicy {
            first_retry: Duration::seconds(4),
            max_retry: Duration::seconds(60),
            give_up_after: Duration::minutes(10),
            lease: Duration::minutes(1),
        };
        let now = datetime!(2026-12-04 12:00 UTC);
        let seed = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
        for (attempts, full) in [(1, 4), (2, 8), (3, 16), (4, 32), (5, 60), (9, 60)] {
            let wait = policy.next_attempt(seed, attempts, now) - now;
            let full = Duration::seconds(full);
            assert!(wait <= full && wait > full * 3 / 4, "{attempts}: {wait}");
        }
        let mail = QueuedMail {
            id: seed,
            recipient: "a@example.com".to_owned(),
            subject: String::new(),
            text: String::new(),
            html: String::new(),
            queued_at: now - Duration::minutes(9) - Duration::seconds(30),
            attempts: 5,
        };
        assert!(matches!(
            policy.after_failure(&mail, SendError::Transient("away".to_owned()), now),
            MailOutcome::GaveUp { .. }
        ));
        let fresh = QueuedMail {
            queued_at: now,
            ..mail.clone()
        };
        assert!(matches!(
            policy.after_failure(&fresh, SendError::Transient("away".to_owned()), now),
            MailOutcome::Retry { .. }
        ));
        assert!(matches!(
            policy.after_failure(&fresh, SendError::Permanent("550".to_owned()), now),
            MailOutcome::GaveUp { .. }
        ));
    }
}
