//! What `user-engine serve` starts, as one value tests start too: the store opened and
//! migrated, the first platform root when the configuration asks for it, the engine over
//! the production ports, the HTTP state and router, the outbox relay when a broker is
//! configured, and the bound listeners (the API's, and the management listener's when
//! one is configured).

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;

use api_http::app::{management_router, router, AppState, PoolStats, Readiness};
use api_http::metrics::Metrics;
use domain::ids::{Email, Password};
use domain::model::User;
use domain::usecases::{Engine, ThrottleRule};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, Secret};
use crate::store::{self, Backend};

/// The relay task beside the API and what stops it.
type RelayTask = (oneshot::Sender<()>, JoinHandle<()>);

/// A built service, bound to its address and ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    /// The management listener and its address, when configured.
    management: Option<(TcpListener, SocketAddr)>,
    state: AppState,
    backend: Backend,
    relay: Option<RelayTask>,
    mailer: Option<RelayTask>,
    webhooks: RelayTask,
}

impl Application {
    /// Builds what `serve` runs from the configuration: opens and migrates the store, then
    /// as [`Application::build_on`].
    ///
    /// # Errors
    /// When a setting is inconsistent, the store cannot be opened or migrated, the first
    /// root cannot be created, the broker URL is invalid or the address cannot be bound;
    /// the message says what to do.
    pub async fn build(config: &Config) -> Result<Self, String> {
        let bootstrap = bootstrap_settings(config)?;
        let (backend, applied) = store::open(config).await?;
        tracing::info!(
            applied_count = applied.len(),
            applied = %applied.join(", "),
            "database migrated"
        );
        Self::assemble(config, backend, bootstrap).await
    }

    /// Builds a service over a store already open in this process: a second node of an
    /// embedded store, which has one process and so one store.
    ///
    /// # Errors
    /// As [`Application::build`], but for the store.
    pub async fn build_on(config: &Config, backend: Backend) -> Result<Self, String> {
        let bootstrap = bootstrap_settings(config)?;
        Self::assemble(config, backend, bootstrap).await
    }

    async fn assemble(
        config: &Config,
        backend: Backend,
        bootstrap: Option<(Email, &Secret)>,
    ) -> Result<Self, String> {
        let hash_queue = usize::try_from(config.hash_queue).unwrap_or(usize::MAX);
        let ports = adapters_security::production_ports_with_queue(backend.store(), hash_queue);
        let sender = smtp_sender(config)?;
        let (store, clock) = (ports.store.clone(), ports.clock.clone());
        let engine = Engine::new(ports, config.engine_config());
        if let Some((email, password)) = bootstrap {
            match bootstrap_root(&engine, email, password).await? {
                Some(user) => tracing::info!(
                    user_id = %user.id,
                    email = %user.email,
                    "created the first platform_root"
                ),
                None => tracing::info!(
                    "a platform_root already exists; bootstrap left everything unchanged"
                ),
            }
        }
        if !store::platform_root_exists(backend.store().as_ref()).await? {
            tracing::warn!(
                "first start: no platform_root exists yet, so no one can log in; stop, set \
                 USER_ENGINE_BOOTSTRAP_EMAIL and USER_ENGINE_BOOTSTRAP_PASSWORD (at least 12 \
                 characters) and start again, or run `user-engine bootstrap --email EMAIL` \
                 with USER_ENGINE_BOOTSTRAP_PASSWORD set"
            );
        }
        let publisher = connect_broker(config).await?;
        let readiness = Arc::new(NodeReadiness {
            backend: backend.clone(),
            broker: publisher.clone(),
        });
        let mut state = app_state(config, engine, readiness);
        let vault = key_vault(config)?;
        let relay = spawn_relay(publisher, &backend, state.metrics.clone());
        let webhooks = {
            let (stop, stopped) = oneshot::channel::<()>();
            let sender: Arc<dyn domain::webhook::WebhookSender> = Arc::new(
                adapters_webhook::HttpsSender::new(domain::webhook::UrlPolicy {
                    allow_insecure: config.webhooks_allow_insecure,
                })?,
            );
            let (store, clock) = (store.clone(), clock.clone());
            let policy = config.delivery_policy();
            let metrics = state.metrics.clone();
            let task = tokio::spawn(async move {
                crate::webhooks::run_webhooks(store, sender, clock, policy, Some(metrics), async {
                    let _ = stopped.await;
                })
                .await;
            });
            (stop, task)
        };
        let mailer = sender.map(|sender| {
            let (stop, stopped) = oneshot::channel::<()>();
            let policy = config.delivery_policy();
            let metrics = state.metrics.clone();
            let task = tokio::spawn(async move {
                crate::mailer::run_mailer(store, sender, clock, policy, Some(metrics), async {
                    let _ = stopped.await;
                })
                .await;
            });
            (stop, task)
        });
        let listener = TcpListener::bind(config.listen).await.map_err(|error| {
            format!(
                "cannot listen on {} ({error}); set USER_ENGINE_LISTEN to a free address",
                config.listen
            )
        })?;
        let address = listener
            .local_addr()
            .map_err(|error| format!("cannot read the bound address: {error}"))?;
        let issuer = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        state.signing =
            vault.map(|vault| Arc::new(api_http::app::SigningSetup::new(Arc::new(vault), issuer)));
        let management = match config.management_listen {
            Some(management_address) => {
                let listener = TcpListener::bind(management_address)
                    .await
                    .map_err(|error| {
                        format!(
                            "cannot listen on {management_address} ({error}); set \
                         USER_ENGINE_MANAGEMENT_LISTEN to a free address, or unset it to \
                         serve /metrics on the API port"
                        )
                    })?;
                let bound = listener
                    .local_addr()
                    .map_err(|error| format!("cannot read the bound address: {error}"))?;
                Some((listener, bound))
            }
            None => None,
        };
        Ok(Self {
            listener,
            address,
            management,
            state,
            backend,
            relay,
            mailer,
            webhooks,
        })
    }

    /// The address the listener is bound to (the port the system chose for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The management listener's address, when one is configured.
    pub fn management_address(&self) -> Option<SocketAddr> {
        self.management.as_ref().map(|(_, address)| *address)
    }

    /// The engine the handlers call.
    pub fn engine(&self) -> &Engine {
        &self.state.engine
    }

    /// The store the service runs on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Serves until `shutdown` resolves, letting requests in flight finish, then stops
    /// the management listener and the relay and closes the store.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        tracing::info!(address = %self.address, "listening");
        let management = self.management.map(|(listener, address)| {
            tracing::info!(address = %address, "management listener: /healthz, /readyz, /metrics");
            let (stop, stopped) = oneshot::channel::<()>();
            let app = management_router(self.state.clone())
                .into_make_service_with_connect_info::<SocketAddr>();
            let task = tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "the management listener failed");
                }
            });
            (stop, task)
        });
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|error| format!("the http server failed: {error}"));
        // The management listener answers until the API has drained, so an orchestrator
        // sees the node until then; it stops with the API, failed or not.
        if let Some((stop, task)) = management {
            let _ = stop.send(());
            let _ = task.await;
        }
        served?;
        // The relay may hold a claim mid-pass, the mailer a lease: stop both before
        // closing the store.
        for (stop, task) in [self.relay, self.mailer, Some(self.webhooks)]
            .into_iter()
            .flatten()
        {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.backend.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The bootstrap settings: both or neither. With only one, the operator meant to
/// bootstrap and would otherwise find out only when no one can log in.
fn bootstrap_settings(config: &Config) -> Result<Option<(Email, &Secret)>, String> {
    match (&config.bootstrap_email, &config.bootstrap_password) {
        (Some(email), Some(password)) => Ok(Some((email.clone(), password))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(
            "USER_ENGINE_BOOTSTRAP_EMAIL is set but USER_ENGINE_BOOTSTRAP_PASSWORD is not; \
             set both to create the first platform_root, or neither"
                .to_owned(),
        ),
        (None, Some(_)) => Err(
            "USER_ENGINE_BOOTSTRAP_PASSWORD is set but USER_ENGINE_BOOTSTRAP_EMAIL is not; \
             set both to create the first platform_root, or neither"
                .to_owned(),
        ),
    }
}

/// Creates the first platform root unless one exists (`None` then).
///
/// # Errors
/// When the password is not acceptable or the store fails.
pub async fn bootstrap_root(
    engine: &Engine,
    email: Email,
    password: &Secret,
) -> Result<Option<User>, String> {
    let password = Password::parse(password.expose())
        .map_err(|error| format!("invalid setting USER_ENGINE_BOOTSTRAP_PASSWORD: {error}"))?;
    let request_id = uuid::Uuid::now_v7().to_string();
    engine
        .bootstrap(email, password, &request_id)
        .await
        .map_err(|error| format!("creating the first platform_root failed: {error}"))
}

/// The SMTP sender when mail is configured; the password file is read now, so a missing
/// one fails the start.
fn smtp_sender(config: &Config) -> Result<Option<Arc<dyn domain::mail::MailSender>>, String> {
    let (Some(url), Some(from)) = (&config.smtp_url, &config.mail_from) else {
        tracing::info!(
            "USER_ENGINE_SMTP_URL is unset: nothing is mailed; invitation tokens are returned \
             to the calling service and notices are events only"
        );
        return Ok(None);
    };
    let password = match &config.smtp_password_file {
        Some(file) => Some(std::fs::read_to_string(file).map_err(|error| {
            format!(
                "USER_ENGINE_SMTP_PASSWORD_FILE names {}, which cannot be read: {error}",
                file.display()
            )
        })?),
        None => None,
    };
    let sender = adapters_mail::SmtpSender::new(url.expose(), password.as_deref(), from)
        .map_err(|error| error.to_string())?;
    tracing::info!(endpoint = %sender.endpoint(), "mailing through SMTP");
    Ok(Some(Arc::new(sender)))
}

/// The handlers' shared state, with the configured throttles and proxies.
fn app_state(config: &Config, engine: Engine, readiness: Arc<NodeReadiness>) -> AppState {
    let login_rate = NonZeroU32::new(config.login_rate_per_minute).unwrap_or(NonZeroU32::MIN);
    let mut state = AppState::with_login_limit(engine, readiness, login_rate);
    state.diagnostics = config.diagnostics_options();
    state.auth_failure_rate = ThrottleRule::per_minute(
        NonZeroU32::new(config.auth_failures_per_minute).unwrap_or(NonZeroU32::MIN),
    );
    state.trusted_proxies = config.trusted_proxies.clone().into();
    state.request_timeout = config.request_timeout();
    state.public_metrics = config.management_listen.is_none();
    state
}

/// The file the embedded store keeps its key-encryption key in when none is configured.
pub const EMBEDDED_KEY_FILE: &str = "key-encryption-key";

/// The vault of the provider's signing keys: under `USER_ENGINE_KEY_ENCRYPTION_KEY_FILE`;
/// without it, for the embedded store, under a key made on first start in the data
/// directory beside the store's file (readable by its owner only); with PostgreSQL and no file, none (the JWKS
/// stays empty until the operator configures one, the same on every node).
///
/// # Errors
/// When the file cannot be read or made, or does not hold a key.
pub fn key_vault(config: &Config) -> Result<Option<adapters_jose::SealingVault>, String> {
    let path = match (
        &config.key_encryption_key_file,
        store::Location::of(config)?,
    ) {
        (Some(path), _) => path.clone(),
        (None, store::Location::Postgres(_)) => return Ok(None),
        (None, store::Location::Sqlite { path, .. }) => {
            let path = path.parent().map_or_else(
                || EMBEDDED_KEY_FILE.into(),
                |dir| dir.join(EMBEDDED_KEY_FILE),
            );
            if !path.exists() {
                make_key_file(&path)?;
                tracing::info!(
                    path = %path.display(),
                    "made the key-encryption key of the signing keys; keep it with the data"
                );
            }
            path
        }
    };
    adapters_jose::SealingVault::from_file(&path)
        .map(Some)
        .map_err(|error| error.to_string())
}

fn make_key_file(path: &std::path::Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let content =
        adapters_jose::SealingVault::new_key_file_content().map_err(|error| error.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot make {}: {error}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(content.as_bytes()))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// A node is ready when its database answers and, when it relays, its NATS connection
/// is up; otherwise `/readyz` says which and why.
struct NodeReadiness {
    backend: Backend,
    broker: Option<Arc<adapters_nats::JetStreamPublisher>>,
}

impl Readiness for NodeReadiness {
    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            self.backend.ready().await?;
            match &self.broker {
                Some(broker) => broker
                    .health()
                    .map_err(|problem| format!("the relay cannot publish: {problem}")),
                None => Ok(()),
            }
        })
    }

    fn pool(&self) -> Option<PoolStats> {
        self.backend.pool()
    }
}

/// How to reach the broker, for what relays.
///
/// # Errors
/// When none is configured.
pub fn nats_options(config: &Config) -> Result<adapters_nats::NatsOptions, String> {
    let url = config.nats_url.as_ref().ok_or_else(|| {
        "no NATS server configured: set USER_ENGINE_NATS_URL=nats://host:4222 \
         (or nats_url in the config file)"
            .to_owned()
    })?;
    Ok(adapters_nats::NatsOptions {
        url: url.expose().to_owned(),
        ca_file: config.nats_ca_file.clone(),
        creds_file: config.nats_creds_file.clone(),
        nkey_seed: config
            .nats_nkey_seed
            .as_ref()
            .map(|seed| seed.expose().to_owned()),
    })
}

/// Connects the relay's publisher when NATS is configured. The connection is kept in
/// the background: a server that is down or refuses TLS or the credentials makes the
/// node not ready (and is retried), never a failed start.
async fn connect_broker(
    config: &Config,
) -> Result<Option<Arc<adapters_nats::JetStreamPublisher>>, String> {
    if config.nats_url.is_none() {
        tracing::info!(
            "USER_ENGINE_NATS_URL is unset: events are not relayed to NATS and stay \
             available through the event feed only"
        );
        return Ok(None);
    }
    let options = nats_options(config)?;
    for (setting, file) in [
        ("USER_ENGINE_NATS_CA_FILE", &options.ca_file),
        ("USER_ENGINE_NATS_CREDS_FILE", &options.creds_file),
    ] {
        if let Some(file) = file.as_ref().filter(|file| !file.is_file()) {
            return Err(format!(
                "{setting} names {}, which is not a readable file",
                file.display()
            ));
        }
    }
    let publisher = adapters_nats::JetStreamPublisher::connect_with(
        &options,
        adapters_nats::DEFAULT_STREAM,
        adapters_nats::DEFAULT_SUBJECT_PREFIX,
    )
    .await?;
    Ok(Some(Arc::new(publisher)))
}

/// Starts the outbox relay beside the HTTP API when there is a publisher; returns what
/// stops it.
fn spawn_relay(
    publisher: Option<Arc<adapters_nats::JetStreamPublisher>>,
    backend: &Backend,
    metrics: Arc<Metrics>,
) -> Option<RelayTask> {
    let publisher = publisher?;
    let outbox = backend.outbox();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        crate::relay::run_relay(outbox.as_ref(), publisher.as_ref(), Some(metrics), async {
            let _ = stopped.await;
        })
        .await;
    });
    tracing::info!("relaying outbox events to NATS JetStream");
    Some((stop, task))
}
