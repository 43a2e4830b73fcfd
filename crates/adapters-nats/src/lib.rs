//! The outbox relay's broker side: a NATS JetStream [`EventPublisher`]. Each event goes
//! out as its CloudEvents 1.0 JSON on `user_engine.<tenant or _platform>.<type>` (SPEC §6),
//! with its id as `Nats-Msg-Id`, so JetStream dedupes a redelivery within the stream's
//! window and consumers can dedupe by id beyond it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use domain::event::Event;
use domain::relay::{EventPublisher, PublishFailure};

mod tls;

/// The stream of SPEC §6.
pub const DEFAULT_STREAM: &str = "USER_ENGINE";
/// The subject root of SPEC §6 (`user_engine.<tenant or _platform>.<type>`).
pub const DEFAULT_SUBJECT_PREFIX: &str = "user_engine";
/// JetStream's dedupe window for `Nats-Msg-Id`.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How to reach NATS: the URL (`nats://` or `tls://`; user and password, or a token, in
/// its user part) and what TLS and authentication need beside it.
#[derive(Clone, Default)]
pub struct NatsOptions {
    pub url: String,
    /// The CA of the server's certificate; TLS is required when it is set.
    pub ca_file: Option<PathBuf>,
    /// A `.creds` file (user JWT and nkey seed).
    pub creds_file: Option<PathBuf>,
    /// A user nkey seed.
    pub nkey_seed: Option<String>,
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOptions")
            .field("url", &redact(&self.url))
            .field("ca_file", &self.ca_file)
            .field("creds_file", &self.creds_file)
            .field("nkey_seed", &self.nkey_seed.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `url` without its user part (a user and password, or a token), for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{host}")
        }
    }
}

/// A user and its password, or a token alone.
type UrlUser = (String, Option<String>);

/// The URL's credentials, and the URL without them: `user:password@` is a user and
/// password, `token@` a token.
///
/// # Errors
/// When the URL cannot be parsed (the message holds no credential).
fn credentials(url: &str) -> Result<(String, Option<UrlUser>), String> {
    let parsed = url::Url::parse(url)
        .map_err(|error| format!("invalid NATS url {}: {error}", redact(url)))?;
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| {
                format!(
                    "invalid NATS url {}: its user part is not UTF-8",
                    redact(url)
                )
            })
    };
    if parsed.username().is_empty() {
        return Ok((url.to_owned(), None));
    }
    let user = decode(parsed.username())?;
    let password = parsed.password().map(decode).transpose()?;
    Ok((redact(url), Some((user, password))))
}

/// Publishes to one JetStream stream: a batch goes out whole, then every PubAck is
/// awaited.
#[derive(Debug)]
pub struct JetStreamPublisher {
    client: async_nats::Client,
    /// What last went wrong with the connection, until it is up again.
    problem: Arc<Mutex<Option<String>>>,
    /// Why the server's certificate was last refused, until one is accepted.
    refusal: tls::Refusal,
    /// The server's URL without credentials, for messages.
    server: String,
    context: jetstream::Context,
    stream: String,
    prefix: String,
    /// Whether the stream is known to exist; cleared after a failure so the next
    /// publish checks again (NATS may have restarted without its store).
    stream_ready: AtomicBool,
}

impl JetStreamPublisher {
    /// Connects to `url` with the SPEC's stream and subjects.
    ///
    /// # Errors
    /// When the URL is invalid. An unreachable server is not an error: the client keeps
    /// reconnecting and publishing fails (and is retried) until it is back.
    pub async fn connect(url: &str) -> Result<Self, String> {
        Self::connect_to(url, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX).await
    }

    /// Connects with another stream name and subject root, so tests can use streams of
    /// their own (JetStream forbids two streams over overlapping subjects).
    ///
    /// # Errors
    /// As [`JetStreamPublisher::connect`].
    pub async fn connect_to(url: &str, stream: &str, prefix: &str) -> Result<Self, String> {
        let options = NatsOptions {
            url: url.to_owned(),
            ..NatsOptions::default()
        };
        Self::connect_with(&options, stream, prefix).await
    }

    /// Connects as `options` say. The connection is made and kept in the background:
    /// while it is down (unreachable, refused by TLS or authentication), publishing
    /// fails and is retried, and [`JetStreamPublisher::health`] says why.
    ///
    /// # Errors
    /// When the URL is invalid or the credentials file cannot be read; the message
    /// never holds the URL's credentials.
    pub async fn connect_with(
        options: &NatsOptions,
        stream: &str,
        prefix: &str,
    ) -> Result<Self, String> {
        let problem = Arc::new(Mutex::new(Some("not connected yet".to_owned())));
        let server = redact(&options.url);
        let seen = problem.clone();
        let mut connect = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .event_callback(move |event| {
                let seen = seen.clone();
                async move {
                    let now = match event {
                        async_nats::Event::Connected => None,
                        async_nats::Event::Disconnected => Some("disconnected".to_owned()),
                        async_nats::Event::Closed => Some("connection closed".to_owned()),
                        async_nats::Event::ClientError(error) => Some(error.to_string()),
                        async_nats::Event::ServerError(error) => Some(error.to_string()),
                        _ => return,
                    };
                    if let Ok(mut problem) = seen.lock() {
                        *problem = now;
                    }
                }
            });
        let refusal = tls::Refusal::default();
        if let Some(ca) = &options.ca_file {
            connect = connect
                .tls_client_config(tls::client_config(ca, refusal.clone())?)
                .require_tls(true);
        }
        if let Some(creds) = &options.creds_file {
            connect = connect.credentials_file(creds).await.map_err(|error| {
                format!(
                    "cannot read the NATS credentials file {}: {error}",
                    creds.display()
                )
            })?;
        }
        if let Some(seed) = &options.nkey_seed {
            connect = connect.nkey(seed.clone());
        }
        let (address, user) = credentials(&options.url)?;
        connect = match user {
            Some((user, Some(password))) => connect.user_and_password(user, password),
            Some((token, None)) => connect.token(token),
            None => connect,
        };
        let client = connect.connect(address.as_str()).await.map_err(|error| {
            format!(
                "cannot connect to NATS at {}: {}",
                redact(&options.url),
                // The error may quote the URL it was given.
                error
                    .to_string()
                    .replace(&options.url, &redact(&options.url))
            )
        })?;
        Ok(Self {
            context: jetstream::new(client.clone()),
            client,
            problem,
            refusal,
            server,
            stream: stream.to_owned(),
            prefix: prefix.to_owned(),
            stream_ready: AtomicBool::new(false),
        })
    }

    /// Whether the connection is up; else what is wrong, for readiness.
    ///
    /// # Errors
    /// The connection's state and the last problem seen (`tls error`, an authorization
    /// violation, `disconnected`, …).
    pub fn health(&self) -> Result<(), String> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => {
                let problem = self
                    .problem
                    .lock()
                    .ok()
                    .and_then(|problem| problem.clone())
                    .unwrap_or_else(|| "not connected".to_owned());
                match self.refusal.lock().ok().and_then(|refusal| refusal.clone()) {
                    Some(refusal) => Err(format!(
                        "NATS at {} {state}: {problem} ({refusal})",
                        self.server
                    )),
                    None => Err(format!("NATS at {} {state}: {problem}", self.server)),
                }
            }
        }
    }

    /// Creates the stream over `<prefix>.>` unless it exists.
    ///
    /// # Errors
    /// When JetStream is unreachable or refuses the stream.
    pub async fn ensure_stream(&self) -> Result<(), String> {
        self.context
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{}.>", self.prefix)],
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|error| format!("cannot create JetStream stream {}: {error}", self.stream))?;
        self.stream_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The event's subject under this publisher's root:
    /// `<prefix>.<tenant or _platform>.<type>` (SPEC §6 with the default prefix).
    pub fn subject(&self, event: &Event) -> String {
        format!(
            "{}.{}.{}",
            self.prefix,
            event.partition.name(),
            event.event_type
        )
    }
}

#[async_trait]
impl EventPublisher for JetStreamPublisher {
    async fn publish(&self, event: &Event) -> Result<(), String> {
        self.publish_batch(std::slice::from_ref(event))
            .await
            .map_err(|failure| failure.message)
    }

    /// Sends the whole batch before awaiting any PubAck, so a batch costs about one
    /// round trip rather than one per event. One connection keeps the publishes in
    /// order, and JetStream stores them in that order.
    async fn publish_batch(&self, events: &[Event]) -> Result<(), PublishFailure> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        if !self.stream_ready.load(Ordering::Acquire) {
            self.ensure_stream()
                .await
                .map_err(|message| PublishFailure {
                    event_id: first.id.to_string(),
                    message,
                })?;
        }
        let failure =
            |event: &Event, subject: &str, error: &dyn std::fmt::Display| PublishFailure {
                event_id: event.id.to_string(),
                message: format!("publishing to {subject} failed: {error}"),
            };
        let acked = async {
            let mut in_flight = Vec::with_capacity(events.len());
            for event in events {
                let subject = self.subject(event);
                let payload = serde_json::to_vec(&cloudevent(event))
                    .map_err(|error| failure(event, &subject, &error))?;
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    event.id.to_string().as_str(),
                );
                let ack = self
                    .context
                    .publish_with_headers(subject.clone(), headers, payload.into())
                    .await
                    .map_err(|error| failure(event, &subject, &error))?;
                in_flight.push((event, subject, ack));
            }
            for (event, subject, ack) in in_flight {
                ack.await
                    .map_err(|error| failure(event, &subject, &error))?;
            }
            Ok(())
        }
        .await;
        if acked.is_err() {
            self.stream_ready.store(false, Ordering::Release);
        }
        acked
    }
}

/// The CloudEvents 1.0 JSON form of SPEC §6 (the domain's, which webhooks send too).
pub use domain::event::cloudevent;

#[cfg(test)]
#[allow(
    clippy::expect_used,
    reason = "tests: a failed expectation aborts the test"
)]
mod tests {
    use super::{credentials, redact};

    #[test]
    fn the_user_part_of_a_url_is_credentials_and_never_shown() {
        assert_eq!(
            redact("nats://relay:p%40ss@localhost:4222"),
            "nats://localhost:4222"
        );
        assert_eq!(redact("tls://token@host:4222"), "tls://host:4222");
        assert_eq!(
            credentials("nats://relay:p%40ss@localhost:4222"),
            Ok((
                "nats://localhost:4222".to_owned(),
                Some(("relay".to_owned(), Some("p@ss".to_owned())))
            ))
        );
        assert_eq!(
            credentials("tls://s3cret-token@host:4222"),
            Ok((
                "tls://host:4222".to_owned(),
                Some(("s3cret-token".to_owned(), None))
            ))
        );
        assert_eq!(
            credentials("nats://127.0.0.1:4222"),
            Ok(("nats://127.0.0.1:4222".to_owned(), None))
        );
        let refused = credentials("nats://relay:s3cret@[bad").expect_err("malformed");
        assert!(!refused.contains("s3cret"), "{refused}");
    }
}
