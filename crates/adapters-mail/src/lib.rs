//! Mail delivery (SPEC §6): [`SmtpSender`], the domain's [`MailSender`] over SMTP.
//!
//! `USER_ENGINE_SMTP_URL` says where: `smtps://host[:465]` is SMTP over TLS;
//! `smtp://host[:587]` requires STARTTLS, except to a loopback host, where STARTTLS is
//! used when offered (a local relay or test server); `?tls=required|opportunistic` on
//! the URL says so explicitly. Credentials come from the URL's user part, the password
//! also from a file (`USER_ENGINE_SMTP_PASSWORD_FILE`). No part of the URL is logged.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use domain::mail::{MailSender, QueuedMail, SendError};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long one SMTP exchange may take before it counts as failed (and is retried).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections kept to the server: one per mail a delivery pass has in flight.
const POOL_SIZE: u32 = domain::mail::MAIL_CONCURRENCY as u32;

/// Why the SMTP settings were refused; never shows the URL's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Sends mails through one SMTP server.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Where mails go, for logs: scheme, host and port only.
    endpoint: String,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// A sender for `url` (`smtp://` or `smtps://`), mailing from `from`, with the
    /// password `password` (from a file) replacing any in the URL.
    ///
    /// # Errors
    /// A malformed URL or sender address, or another scheme.
    pub fn new(url: &str, password: Option<&str>, from: &str) -> Result<Self, ConfigError> {
        let mut parsed = url::Url::parse(url)
            .map_err(|error| ConfigError(format!("USER_ENGINE_SMTP_URL is malformed: {error}")))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| ConfigError("USER_ENGINE_SMTP_URL names no host".to_owned()))?
            .to_owned();
        let scheme = parsed.scheme().to_owned();
        if scheme != "smtp" && scheme != "smtps" {
            return Err(ConfigError(format!(
                "USER_ENGINE_SMTP_URL must be smtp:// or smtps://, not {scheme}://"
            )));
        }
        if let Some(password) = password {
            parsed
                .set_password(Some(password.trim_end_matches(['\r', '\n'])))
                .map_err(|()| ConfigError("the SMTP password cannot be set".to_owned()))?;
        }
        let explicit_tls = parsed.query_pairs().any(|(key, _)| key == "tls");
        if scheme == "smtp" && !explicit_tls {
            let loopback = host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<IpAddr>()
                    .is_ok_and(|address| address.is_loopback());
            let tls = if loopback {
                "opportunistic"
            } else {
                "required"
            };
            parsed.query_pairs_mut().append_pair("tls", tls);
        }
        let endpoint = format!(
            "{scheme}://{host}{}",
            parsed
                .port()
                .map(|port| format!(":{port}"))
                .unwrap_or_default()
        );
        let user = parsed.username().to_owned();
        let secret = parsed.password().map(str::to_owned);
        // lettre reads credentials from the URL percent-decoded; set them explicitly so a
        // password from a file needs no encoding.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(parsed.as_str())
            .map_err(|error| ConfigError(format!("USER_ENGINE_SMTP_URL: {error}")))?
            .timeout(Some(SEND_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(POOL_SIZE));
        if !user.is_empty() {
            let user = percent_decode(&user);
            let secret = match (password, secret) {
                (Some(password), _) => password.trim_end_matches(['\r', '\n']).to_owned(),
                (None, Some(secret)) => percent_decode(&secret),
                (None, None) => String::new(),
            };
            builder = builder.credentials(Credentials::new(user, secret));
        }
        let from: Mailbox = from
            .parse()
            .map_err(|error| ConfigError(format!("USER_ENGINE_MAIL_FROM: {error}")))?;
        Ok(Self {
            transport: builder.build(),
            from,
            endpoint,
        })
    }

    /// Scheme, host and port, never credentials.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn message(&self, mail: &QueuedMail) -> Result<Message, SendError> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|error| SendError::Permanent(format!("recipient refused: {error}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{}@{}>", mail.id, self.from.email.domain())))
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|error| SendError::Permanent(format!("mail not built: {error}")))
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[async_trait]
impl MailSender for SmtpSender {
    async fn send(&self, mail: &QueuedMail) -> Result<(), SendError> {
        let message = self.message(mail)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(SendError::Permanent(error.to_string())),
            Err(error) => Err(SendError::Transient(error.to_string())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_endpoint_never_shows_credentials() {
        let sender = SmtpSender::new(
            "smtp://mailer:s3cr%40t@127.0.0.1:2525",
            None,
            "User Engine <no-reply@example.com>",
        )
        .unwrap();
        assert_eq!(sender.endpoint(), "smtp://127.0.0.1:2525");
        assert!(!format!("{sender:?}").contains("s3cr"));
    }

    #[tokio::test]
    async fn other_schemes_and_bad_senders_are_refused() {
        assert!(SmtpSender::new("http://mail.example.com", None, "a@example.com").is_err());
        assert!(SmtpSender::new("smtps://mail.example.com", None, "not an address").is_err());
        assert!(SmtpSender::new("smtps://mail.example.com", Some("pw\n"), "a@example.com").is_ok());
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode("s3cr%40t%2"), "s3cr@t%2");
    }
}
