//! The `user-engine` binary: `serve`, `migrate`, `bootstrap`, `relay`, `openapi`,
//! `audit verify`, `diagnose` and `keys rotate|list`, over one layered configuration (see `server::config`).
//!
//! Failures end the process with status 1 (2 for `audit verify`, whose 1 means a broken
//! trail; 3 for `diagnose`, whose 0, 1 and 2 mean ready, degraded and not ready) and one
//! line on stderr; logs go to stderr too,
//! so what `migrate` and `bootstrap` print on stdout stays machine-readable.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use adapters_pg::PgStore;
use clap::{Parser, Subcommand};
use domain::ids::{Email, TenantId};
use domain::usecases::Engine;
use server::config::{self, Config, LogFormat, Secret};
use server::startup::{bootstrap_root, nats_options, Application};
use server::store::{self, connect_existing, Location};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: with the authorize facts cache full (a
/// million users and accounts, each an allocation of its own) glibc's malloc took 17 % of
/// the machine's CPU time in a profile, walking its bins for every request's small
/// allocations, and authorize at scale ran 1.5–2× slower; mimalloc's per-size pages do
/// not slow down with the heap's size. It keeps more memory at rest (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A multi-tenant user engine: users, tenants, memberships, profiles, authorization.
#[derive(Debug, Parser)]
#[command(name = "user-engine", version, after_help = config::settings_help())]
struct Cli {
    /// TOML configuration file, layered between the defaults and the environment
    /// [env: USER_ENGINE_CONFIG]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the HTTP API
    ///
    /// Migrates the database, creates the first platform_root when
    /// USER_ENGINE_BOOTSTRAP_EMAIL and USER_ENGINE_BOOTSTRAP_PASSWORD are set, then serves
    /// until SIGTERM or Ctrl-C, letting requests in flight finish. Without
    /// USER_ENGINE_DATABASE_URL the data lives in the embedded store,
    /// USER_ENGINE_DATA_DIR/user-engine.db (created on first start).
    #[command(after_help = config::settings_help())]
    Serve,
    /// Applies the pending database migrations and prints which were applied
    ///
    /// Connects as the user of USER_ENGINE_DATABASE_URL, which must own the schema; without
    /// it, creates or migrates the embedded store in USER_ENGINE_DATA_DIR.
    #[command(after_help = config::settings_help())]
    Migrate,
    /// Creates the first platform_root if none exists and prints the result
    ///
    /// Idempotent: when a platform_root exists nothing changes. Migrates first. The
    /// password comes from USER_ENGINE_BOOTSTRAP_PASSWORD (or the config file), never
    /// from a flag, so it stays out of shell history and process listings.
    #[command(after_help = config::settings_help())]
    Bootstrap {
        /// The root's email [default: USER_ENGINE_BOOTSTRAP_EMAIL]
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
    },
    /// Runs only the outbox relay to NATS JetStream (SPEC §6), until SIGTERM or Ctrl-C
    ///
    /// Needs USER_ENGINE_DATABASE_URL (an already migrated PostgreSQL database) and
    /// USER_ENGINE_NATS_URL; several relays may run at once. `serve` runs one too when
    /// USER_ENGINE_NATS_URL is set.
    #[command(after_help = config::settings_help())]
    Relay,
    /// Prints the OpenAPI 3.1 document of the HTTP API (as served at /openapi.json)
    ///
    /// Needs no configuration and no database.
    Openapi,
    /// Audit trail operations
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The OpenID provider's signing keys (SPEC §9)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Checks whether tenants are ready (SPEC §6): admins, scopes, bindings, audit, outbox
    ///
    /// Prints one table per tenant (coloured at a terminal; NO_COLOR turns it off), each
    /// check with what it saw and the exact call or command that fixes it. Exits 0 when
    /// every tenant is ready, 1 when the worst is degraded, 2 when any is not ready, 3
    /// when the diagnosis cannot run. Writes nothing (the audit probe is rolled back);
    /// it does not migrate the database.
    #[command(after_help = config::settings_help())]
    Diagnose {
        /// The tenant to diagnose (or --all)
        // Exactly one of --tenant and --all is checked in `diagnose`, not by clap, whose
        // usage errors exit 2: here that means "not ready".
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Diagnose every tenant, then print a summary
        #[arg(long)]
        all: bool,
        /// Print the report as JSON ({tenant, status, checks}; with --all, {tenants, summary})
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Makes a new RS256 and a new ES256 key and retires the ones signing until now
    ///
    /// Retired keys sign nothing more and stay in the JWKS for an hour, the longest a
    /// token they signed stays valid. Needs the key-encryption key
    /// (USER_ENGINE_KEY_ENCRYPTION_KEY_FILE; the embedded store makes one on first use).
    /// Migrates first. Prints the new key ids.
    #[command(after_help = config::settings_help())]
    Rotate,
    /// Lists every key: id, algorithm, when made, and whether it signs, is still
    /// published, or is retired
    #[command(after_help = config::settings_help())]
    List,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verifies audit hash chains and names the first modified, deleted or reordered record
    ///
    /// Without --tenant, verifies the platform's trail and every tenant's. Prints one
    /// line per trail; exits 0 when all are intact, 1 when any is broken, 2 when the
    /// verification itself fails. Reads only; it does not migrate the database.
    #[command(after_help = config::settings_help())]
    Verify {
        /// Verify only this tenant's trail
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Handled apart from `run` because it has three outcomes, not two: a broken trail
    // (1) must be told apart from a verification that could not run (2).
    if let Command::Audit(AuditCommand::Verify { tenant }) = &cli.command {
        return match audit_verify(cli.config.as_deref(), tenant.as_deref()).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(message) => {
                print_error(&message);
                ExitCode::from(2)
            }
        };
    }
    // Handled apart from `run` too: its exit status is the tenants' readiness.
    if let Command::Diagnose { tenant, all, json } = &cli.command {
        return match diagnose(cli.config.as_deref(), tenant.as_deref(), *all, *json).await {
            Ok(code) => ExitCode::from(code),
            Err(message) => {
                print_error(&message);
                ExitCode::from(server::diagnose::EXIT_ERROR)
            }
        };
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            print_error(&message);
            ExitCode::FAILURE
        }
    }
}

fn print_error(message: &str) {
    // One line, whatever a lower layer's error put in it.
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("user-engine: error: {line}");
}

/// Verifies audit trails and prints the report; `Ok(false)` when any trail is broken.
async fn audit_verify(
    config_file: Option<&std::path::Path>,
    tenant: Option<&str>,
) -> Result<bool, String> {
    let tenant = tenant
        .map(TenantId::parse)
        .transpose()
        .map_err(|error| format!("invalid --tenant: {error}"))?;
    let env = config::process_env().map_err(|error| error.to_string())?;
    let config = Config::load(config_file, &env).map_err(|error| error.to_string())?;
    init_tracing(&config)?;
    warn_unknown_variables(&env);
    // No migration: verifying is read-only, and an unmigrated database has no trail.
    let backend = connect_existing(&config, config.max_connections).await?;
    let store = backend.store();
    let ports = adapters_security::production_ports(store.clone());
    let engine = Engine::new(ports, config.engine_config());
    let verdicts = api_http::audit::verify(&engine, store.as_ref(), tenant.as_ref()).await;
    backend.close().await;
    let report = api_http::audit::report(&verdicts?);
    for line in &report.lines {
        println!("{line}");
    }
    Ok(report.intact)
}

/// Diagnoses one tenant or all, prints the tables (or JSON), and returns the exit
/// status of the worst readiness.
async fn diagnose(
    config_file: Option<&std::path::Path>,
    tenant: Option<&str>,
    all: bool,
    json: bool,
) -> Result<u8, String> {
    use server::diagnose::Target;
    let target = match (tenant, all) {
        (Some(tenant), false) => Target::Tenant(
            TenantId::parse(tenant).map_err(|error| format!("invalid --tenant: {error}"))?,
        ),
        (None, true) => Target::All,
        _ => return Err("give either --tenant TENANT or --all".to_owned()),
    };
    let env = config::process_env().map_err(|error| error.to_string())?;
    let config = Config::load(config_file, &env).map_err(|error| error.to_string())?;
    init_tracing(&config)?;
    warn_unknown_variables(&env);
    // No migration: diagnosing reads (its one append is rolled back).
    let backend = connect_existing(&config, config.max_connections.min(4)).await?;
    let ports = adapters_security::production_ports(backend.store());
    let engine = Engine::new(ports, config.engine_config());
    let reports = server::diagnose::run(&engine, &target, &config.diagnostics_options()).await;
    backend.close().await;
    let reports = reports?;
    let colour = !json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!(
        "{}",
        server::diagnose::render(&reports, &target, json, colour)
    );
    Ok(server::diagnose::exit_code(&reports))
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Command::Openapi = cli.command {
        return print_openapi();
    }
    let env = config::process_env().map_err(|error| error.to_string())?;
    let config = Config::load(cli.config.as_deref(), &env).map_err(|error| error.to_string())?;
    init_tracing(&config)?;
    warn_unknown_variables(&env);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(&config).await,
        Command::Bootstrap { email } => bootstrap(&config, email.as_deref()).await,
        Command::Relay => relay(&config).await,
        Command::Keys(command) => keys(&config, &command).await,
        // Printed above, before the configuration is loaded.
        Command::Openapi => Ok(()),
        // Handled in `main`, which needs its report to choose the exit status.
        Command::Audit(_) | Command::Diagnose { .. } => Ok(()),
    }
}

/// Prints the OpenAPI document; a reader that stops early (`| head`) is not an error.
fn print_openapi() -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{}", api_http::openapi::json()).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the document: {error}"))
        }
        _ => Ok(()),
    }
}

/// Log targets that write credentials at their finest levels, each with the finest level
/// that does not.
const CREDENTIAL_LOGGING_TARGETS: [&str; 1] = ["async_nats::connection=debug"];

fn init_tracing(config: &Config) -> Result<(), String> {
    let mut filter = EnvFilter::try_new(&config.log_level)
        .map_err(|error| format!("invalid setting USER_ENGINE_LOG: {error}"))?;
    // Capped whatever USER_ENGINE_LOG says (a directive for the same target replaces
    // the operator's): at trace, async-nats logs its CONNECT message, password and
    // token included.
    for directive in CREDENTIAL_LOGGING_TARGETS {
        filter = filter.add_directive(
            directive
                .parse()
                .map_err(|error| format!("logging directive {directive}: {error}"))?,
        );
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        // Colours only for a person at a terminal; they garble files and collectors.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    installed.map_err(|error| format!("cannot initialise logging: {error}"))
}

fn warn_unknown_variables(env: &BTreeMap<String, String>) {
    for variable in config::unknown_variables(env.keys()) {
        tracing::warn!(
            %variable,
            "unknown USER_ENGINE_ variable ignored; `user-engine --help` lists the settings"
        );
    }
}

fn log_effective_config(config: &Config) {
    let file = config.file.as_ref().map(|path| path.display().to_string());
    tracing::info!(
        config_file = file.as_deref().unwrap_or("none"),
        listen = %config.listen,
        database_url = config.database_url.as_ref().map_or("unset", |_| "<redacted>"),
        database_pooling = config.database_pooling.as_str(),
        data_dir = %config.data_dir.display(),
        max_connections = config.max_connections,
        log_format = %config.log_format,
        log_level = %config.log_level,
        step_up_ttl_seconds = config.step_up_ttl_seconds,
        session_ttl_seconds = config.session_ttl_seconds,
        session_idle_seconds = config.session_idle_seconds,
        invitation_ttl_seconds = config.invitation_ttl_seconds,
        bootstrap_email = config.bootstrap_email.as_ref().map_or("unset".to_owned(), ToString::to_string),
        bootstrap_password = config.bootstrap_password.as_ref().map_or("unset", |_| "<redacted>"),
        login_rate_per_minute = config.login_rate_per_minute,
        nats_url = config.nats_url.as_ref().map_or("unset", |_| "<redacted>"),
        outbox_lag_warn_seconds = config.outbox_lag_warn_seconds,
        management_listen = config.management_listen.map_or("unset".to_owned(), |address| address.to_string()),
        request_timeout_seconds = config.request_timeout_seconds,
        hash_queue = config.hash_queue,
        facts_cache_entries = config.facts_cache_entries,
        "effective configuration"
    );
}

/// Why `what` cannot run on the embedded store, and what to do.
fn needs_postgres(what: &str) -> String {
    format!(
        "{what} needs PostgreSQL: set USER_ENGINE_DATABASE_URL=postgres://user:password@host:5432/database; \
         with the embedded store, `user-engine serve` relays its events itself when \
         USER_ENGINE_NATS_URL is set"
    )
}

/// The PostgreSQL URL, for what only PostgreSQL supports (the outbox relay).
fn postgres_url(config: &Config, what: &str) -> Result<Secret, String> {
    match Location::of(config)? {
        Location::Postgres(url) => Ok(url),
        Location::Sqlite { .. } => Err(needs_postgres(what)),
    }
}

/// `user-engine serve`: what `startup` builds, until SIGTERM or Ctrl-C.
async fn serve(config: Config) -> Result<(), String> {
    log_effective_config(&config);
    // The handlers go in once the store is open and before "listening": a SIGTERM
    // during a slow start still ends the process at once, as it always did.
    Application::build(&config)
        .await?
        .run_until_stopped(shutdown_signal())
        .await
}

/// `user-engine relay`: the relay alone, so it can be deployed apart from the API.
async fn relay(config: &Config) -> Result<(), String> {
    log_effective_config(config);
    let url = postgres_url(config, "the relay")?;
    let nats = nats_options(config)?;
    // No migration: the API's deployment owns the schema; a relay only reads and marks
    // outbox rows, so a small pool is enough.
    let store = PgStore::connect_pooled(
        url.expose(),
        config.max_connections.min(4),
        config.database_pooling,
    )
    .await
    .map_err(|error| store::pool_error(&error))?;
    let publisher = adapters_nats::JetStreamPublisher::connect_with(
        &nats,
        adapters_nats::DEFAULT_STREAM,
        adapters_nats::DEFAULT_SUBJECT_PREFIX,
    )
    .await?;
    let stop = shutdown_signal();
    tracing::info!("relaying outbox events to NATS JetStream");
    server::relay::run_relay(
        &adapters_pg::relay::Relay::new(&store),
        &publisher,
        None,
        stop,
    )
    .await;
    store.pool().close().await;
    Ok(())
}

/// Installs the handlers of SIGTERM (what orchestrators send) and Ctrl-C now, and
/// returns what resolves on either; axum then stops accepting and lets requests in
/// flight finish. Installed before the process says it is ready ("listening",
/// "relaying …"): a signal sent right after that line is a graceful stop, never the
/// signal's default action of ending the process on the spot.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, Signal, SignalKind};
        async fn received(signal: std::io::Result<Signal>, name: &str) {
            match signal {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    // Without this handler the other signal still stops the process
                    // gracefully, so wait on that one instead of exiting.
                    tracing::error!(%error, "cannot listen for {name}");
                    std::future::pending::<()>().await;
                }
            }
        }
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            tokio::select! {
                () = received(interrupt, "ctrl-c") => tracing::info!("ctrl-c received, shutting down"),
                () = received(terminate, "sigterm") => tracing::info!("sigterm received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("ctrl-c received, shutting down");
        } else {
            std::future::pending::<()>().await;
        }
    }
}

async fn migrate(config: &Config) -> Result<(), String> {
    let applied = match Location::of(config)? {
        Location::Postgres(url) => {
            store::refuse_through_transaction_pooler(config)?;
            store::migrate_postgres(&url).await?
        }
        Location::Sqlite { options, path } => {
            let (store, applied) = store::open_sqlite(options, 1).await?;
            store.close().await;
            println!("embedded store at {}", store::absolute(&path).display());
            applied
        }
    };
    if applied.is_empty() {
        println!("database already up to date; no migration applied");
    } else {
        for migration in &applied {
            println!("applied {migration}");
        }
    }
    println!("default scope catalog and profile schema present");
    Ok(())
}

/// `keys rotate` and `keys list`.
async fn keys(config: &Config, command: &KeysCommand) -> Result<(), String> {
    // Only a rotation needs (and, for the embedded store, makes) the key-encryption key.
    let vault = match command {
        KeysCommand::Rotate => server::startup::key_vault(config)?,
        KeysCommand::List => None,
    };
    let (backend, _) = store::open(config).await?;
    let ports = adapters_security::production_ports(backend.store());
    let clock = ports.clock.clone();
    let engine = Engine::new(ports, config.engine_config());
    let outcome = match command {
        KeysCommand::Rotate => match &vault {
            Some(vault) => engine
                .rotate_signing_keys(vault, "keys-rotate")
                .await
                .map(|made| {
                    for key in made {
                        println!("{} {} signs from now on", key.kid, key.algorithm.as_str());
                    }
                })
                .map_err(|error| error.to_string()),
            None => Err("no key-encryption key to seal the keys with: set \
                 USER_ENGINE_KEY_ENCRYPTION_KEY_FILE to a file holding 32 random bytes in \
                 base64 (openssl rand -base64 32), the same on every node"
                .to_owned()),
        },
        KeysCommand::List => engine
            .signing_keys()
            .await
            .map(|keys| {
                let now = clock.now();
                for key in keys {
                    let state = match key.retired_at {
                        None => "signing".to_owned(),
                        Some(_) if key.is_published(now) => format!(
                            "published until {}",
                            domain::audit::format_timestamp(
                                key.retired_at.unwrap_or(now) + domain::signing::TOKEN_LIFETIME_MAX
                            )
                        ),
                        Some(_) => "retired".to_owned(),
                    };
                    println!(
                        "{} {} {} {state}",
                        key.kid,
                        key.algorithm.as_str(),
                        domain::audit::format_timestamp(key.created_at),
                    );
                }
            })
            .map_err(|error| error.to_string()),
    };
    backend.close().await;
    outcome
}

async fn bootstrap(config: &Config, email_flag: Option<&str>) -> Result<(), String> {
    let email = match email_flag {
        Some(text) => Email::parse(text).map_err(|error| format!("invalid --email: {error}"))?,
        None => config.bootstrap_email.clone().ok_or_else(|| {
            "no email for the first platform_root: pass --email or set USER_ENGINE_BOOTSTRAP_EMAIL".to_owned()
        })?,
    };
    let password = config.bootstrap_password.as_ref().ok_or_else(|| {
        "no password for the first platform_root: set USER_ENGINE_BOOTSTRAP_PASSWORD \
         (never a flag, so it stays out of shell history and process listings)"
            .to_owned()
    })?;
    let (backend, _) = store::open(config).await?;
    let engine = Engine::new(
        adapters_security::production_ports(backend.store()),
        config.engine_config(),
    );
    let created = bootstrap_root(&engine, email, password).await;
    backend.close().await;
    match created? {
        Some(user) => println!("created platform_root {} (user id {})", user.email, user.id),
        None => println!("a platform_root already exists; nothing changed"),
    }
    Ok(())
}
