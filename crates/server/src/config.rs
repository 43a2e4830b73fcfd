//! The service's configuration: one typed [`Config`], layered as defaults → optional TOML
//! file → `USER_ENGINE_*` environment variables, and loaded only by the binary.
//!
//! The loader takes the environment as a map instead of reading the process environment,
//! so tests exercise precedence without mutating global state. [`SETTINGS`] is the one
//! list of settings: the loader, `--help`, unknown-variable detection and the sample file
//! check all read it, so a setting cannot be documented in one place and missing in another.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use domain::ids::{Email, Password};
use domain::mail::{DeliveryPolicy, MailSettings};
use domain::usecases::EngineConfig;
use serde::Deserialize;
use time::Duration;

/// Every variable the binary reads starts with this.
pub const ENV_PREFIX: &str = "USER_ENGINE_";

/// The variable naming the TOML file (the `--config` flag wins over it).
pub const CONFIG_FILE_ENV: &str = "USER_ENGINE_CONFIG";

/// Variables with our prefix that belong to other tools of this repository (the test
/// harness and the benchmark), so seeing them is not a sign of an operator's typo.
const FOREIGN_VARIABLES: &[&str] = &["USER_ENGINE_TEST_DATABASE_URL"];

/// TTLs are capped at a year: longer is certainly a mistake (minutes typed as seconds
/// the other way round), and the cap keeps every timestamp computation far from overflow.
const MAX_TTL_SECONDS: i64 = 365 * 24 * 60 * 60;

use crate::settings::*;
pub use crate::settings::{Setting, SETTINGS};

/// A value that must never reach a log: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that needs it (a connection, a hash).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// The effective configuration. `Debug` is safe to log: secrets are [`Secret`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The TOML file the settings were layered from, if any.
    pub file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub database_url: Option<Secret>,
    /// How the PostgreSQL URL reaches the database.
    pub database_pooling: adapters_pg::Pooling,
    /// The embedded store's directory, used when `database_url` is unset.
    pub data_dir: PathBuf,
    pub max_connections: u32,
    pub log_format: LogFormat,
    pub log_level: String,
    pub step_up_ttl_seconds: u32,
    pub session_ttl_seconds: u32,
    pub session_idle_seconds: u32,
    pub invitation_ttl_seconds: u32,
    pub bootstrap_email: Option<Email>,
    pub bootstrap_password: Option<Secret>,
    pub login_rate_per_minute: u32,
    pub auth_failures_per_minute: u32,
    /// The proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub nats_url: Option<Secret>,
    /// The CA of the NATS server's certificate (TLS required when set).
    pub nats_ca_file: Option<PathBuf>,
    /// A `.creds` file to authenticate to NATS with.
    pub nats_creds_file: Option<PathBuf>,
    /// A user nkey seed to authenticate to NATS with.
    pub nats_nkey_seed: Option<Secret>,
    pub outbox_lag_warn_seconds: u32,
    /// The management listener's address (`/healthz`, `/readyz`, `/metrics`), if any.
    pub management_listen: Option<SocketAddr>,
    pub request_timeout_seconds: u32,
    /// Password hashes that may wait for a hashing thread.
    pub hash_queue: u32,
    /// Users and accounts the PostgreSQL store's facts cache holds at most, each.
    pub facts_cache_entries: u32,
    /// The SMTP server mails go through; mail is on when set (with `mail_from`).
    pub smtp_url: Option<Secret>,
    /// A file holding the SMTP password.
    pub smtp_password_file: Option<PathBuf>,
    /// The key-encryption key of the provider's signing keys
    /// (`USER_ENGINE_KEY_ENCRYPTION_KEY_FILE`).
    pub key_encryption_key_file: Option<PathBuf>,
    /// The OpenID provider's issuer (`USER_ENGINE_PUBLIC_URL`), without a trailing `/`.
    pub public_url: Option<String>,
    /// The sender of mails.
    pub mail_from: Option<String>,
    /// Where mailed links point.
    pub mail_link_base: Option<String>,
    /// The name mails speak for.
    pub mail_product_name: String,
    pub delivery_retry_max_seconds: u32,
    pub delivery_give_up_seconds: u32,
    /// Webhooks may use plain HTTP and internal addresses.
    pub webhooks_allow_insecure: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            file: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            database_pooling: adapters_pg::Pooling::Session,
            data_dir: PathBuf::from("./user-engine-data"),
            max_connections: 16,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            step_up_ttl_seconds: 900,
            session_ttl_seconds: 43_200,
            session_idle_seconds: 1_800,
            invitation_ttl_seconds: 604_800,
            bootstrap_email: None,
            bootstrap_password: None,
            login_rate_per_minute: 10,
            auth_failures_per_minute: 60,
            trusted_proxies: Vec::new(),
            nats_url: None,
            nats_ca_file: None,
            nats_creds_file: None,
            nats_nkey_seed: None,
            outbox_lag_warn_seconds: diagnostics::DEFAULT_OUTBOX_LAG_WARN_SECONDS,
            management_listen: None,
            request_timeout_seconds: 30,
            hash_queue: 256,
            facts_cache_entries: 1_000_000,
            smtp_url: None,
            smtp_password_file: None,
            key_encryption_key_file: None,
            public_url: None,
            mail_from: None,
            mail_link_base: None,
            mail_product_name: "user-engine".to_owned(),
            delivery_retry_max_seconds: 900,
            delivery_give_up_seconds: 86_400,
            webhooks_allow_insecure: false,
        }
    }
}

/// Why the configuration could not be loaded; the message names the setting and says
/// what to do, and never contains a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The TOML file's shape. Unknown keys are rejected so a typo is reported, not ignored.
/// Numbers are read as `i64` (TOML's integer) and range-checked by the same code that
/// checks environment values, so both give the same message.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    #[serde(default, deserialize_with = "secret_text")]
    database_url: Option<String>,
    database_pooling: Option<String>,
    data_dir: Option<String>,
    max_connections: Option<i64>,
    log_format: Option<String>,
    log_level: Option<String>,
    step_up_ttl_seconds: Option<i64>,
    session_ttl_seconds: Option<i64>,
    session_idle_seconds: Option<i64>,
    invitation_ttl_seconds: Option<i64>,
    bootstrap_email: Option<String>,
    #[serde(default, deserialize_with = "secret_text")]
    bootstrap_password: Option<String>,
    login_rate_per_minute: Option<i64>,
    auth_failures_per_minute: Option<i64>,
    trusted_proxies: Option<String>,
    #[serde(default, deserialize_with = "secret_text")]
    nats_url: Option<String>,
    nats_ca_file: Option<String>,
    nats_creds_file: Option<String>,
    #[serde(default, deserialize_with = "secret_text")]
    nats_nkey_seed: Option<String>,
    outbox_lag_warn_seconds: Option<i64>,
    management_listen: Option<String>,
    request_timeout_seconds: Option<i64>,
    hash_queue: Option<i64>,
    facts_cache_entries: Option<i64>,
    #[serde(default, deserialize_with = "secret_text")]
    smtp_url: Option<String>,
    smtp_password_file: Option<String>,
    key_encryption_key_file: Option<String>,
    public_url: Option<String>,
    mail_from: Option<String>,
    mail_link_base: Option<String>,
    mail_product_name: Option<String>,
    delivery_retry_max_seconds: Option<i64>,
    delivery_give_up_seconds: Option<i64>,
    webhooks_allow_insecure: Option<bool>,
}

/// A secret of the file: a string, whose value no error repeats (serde's own message
/// for a wrong type, such as an unquoted number, quotes the value).
fn secret_text<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Option::<toml::Value>::deserialize(deserializer)? {
        None => Ok(None),
        Some(toml::Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "must be a quoted string, not {} {} (the value is a secret and is not shown)",
            if other.type_str().starts_with(['a', 'i']) {
                "an"
            } else {
                "a"
            },
            other.type_str()
        ))),
    }
}

/// Where a value came from, for error messages.
enum Origin<'a> {
    Env,
    File(&'a Path),
}

/// The layers above the defaults.
struct Layers<'a> {
    env: &'a BTreeMap<String, String>,
    file_path: Option<&'a Path>,
}

impl Layers<'_> {
    /// The variable's value; an empty variable counts as unset, so `VAR=` lines in
    /// compose files and unit files do not override the TOML file with nothing.
    fn env_value(&self, setting: &Setting) -> Option<&str> {
        self.env
            .get(setting.env)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// Resolves one setting: the variable wins over the file. `from_env` turns the
    /// variable's text into the file's type; `check` validates either into the final
    /// type. Returns `None` when neither layer sets it.
    fn resolve<T: fmt::Display, R>(
        &self,
        setting: &Setting,
        secret: bool,
        file_value: Option<T>,
        from_env: impl Fn(&str) -> Result<T, String>,
        check: impl Fn(T) -> Result<R, String>,
    ) -> Result<Option<R>, ConfigError> {
        if let Some(text) = self.env_value(setting) {
            let checked = from_env(text).and_then(&check);
            return checked
                .map(Some)
                .map_err(|problem| invalid(setting, secret, &Origin::Env, text, &problem));
        }
        match (file_value, self.file_path) {
            (Some(value), Some(path)) => {
                let shown = value.to_string();
                check(value).map(Some).map_err(|problem| {
                    invalid(setting, secret, &Origin::File(path), &shown, &problem)
                })
            }
            _ => Ok(None),
        }
    }
}

/// The message for a rejected value: which setting, where, why, and what to do. A
/// secret's value is left out, since error messages end up in logs.
fn invalid(
    setting: &Setting,
    secret: bool,
    origin: &Origin<'_>,
    value: &str,
    problem: &str,
) -> ConfigError {
    let fallback = match setting.default {
        Some(default) => format!("the default ({default})"),
        None => "no value".to_owned(),
    };
    let message = match origin {
        Origin::Env if secret => format!(
            "invalid setting {}: {problem}; fix it or unset it to use {fallback}",
            setting.env
        ),
        Origin::Env => format!(
            "invalid setting {}={value:?}: {problem}; fix it or unset it to use {fallback}",
            setting.env
        ),
        Origin::File(path) if secret => format!(
            "invalid setting {} in {}: {problem}; fix it or remove the line to use {fallback}",
            setting.key,
            path.display()
        ),
        Origin::File(path) => format!(
            "invalid setting {} = {value:?} in {}: {problem}; fix it or remove the line to use {fallback}",
            setting.key,
            path.display()
        ),
    };
    ConfigError(message)
}

const CONNECTIONS: Range = Range {
    min: 1,
    max: 10_000,
    unit: "",
};
const TTL: Range = Range {
    min: 1,
    max: MAX_TTL_SECONDS,
    unit: " of seconds",
};
const RATE: Range = Range {
    min: 1,
    max: 100_000,
    unit: "",
};
const REQUEST_SECONDS: Range = Range {
    min: 1,
    max: 3_600,
    unit: " of seconds",
};
const CACHE_ENTRIES: Range = Range {
    min: 1,
    max: 100_000_000,
    unit: "",
};
const QUEUE: Range = Range {
    min: 0,
    max: 100_000,
    unit: "",
};

/// An address and port, as `listen` and `management_listen` take them.
fn socket_address(value: String) -> Result<SocketAddr, String> {
    value.trim().parse::<SocketAddr>().map_err(|_| {
        "must be an ip address and port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080".to_owned()
    })
}

/// An integer setting's range; the variable's text and the file's integer are checked
/// against it with the same message, so `15m` for a TTL is told it must be seconds.
#[derive(Clone, Copy)]
struct Range {
    min: i64,
    max: i64,
    /// Inserted after "whole number", e.g. " of seconds".
    unit: &'static str,
}

impl Range {
    fn problem(self) -> String {
        format!(
            "must be a whole number{} from {} to {}",
            self.unit, self.min, self.max
        )
    }

    fn parse(self, text: &str) -> Result<i64, String> {
        text.trim().parse::<i64>().map_err(|_| self.problem())
    }

    fn check(self, value: i64) -> Result<u32, String> {
        if (self.min..=self.max).contains(&value) {
            u32::try_from(value).map_err(|_| self.problem())
        } else {
            Err(self.problem())
        }
    }
}

fn text(value: &str) -> Result<String, String> {
    Ok(value.to_owned())
}

fn seconds(value: u32) -> Duration {
    Duration::seconds(i64::from(value))
}

impl Config {
    /// Loads defaults → the TOML file (`config_flag`, else `USER_ENGINE_CONFIG` in `env`)
    /// → the `USER_ENGINE_*` variables of `env`.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or any value is invalid; the message says
    /// which setting and what to do.
    pub fn load(
        config_flag: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let path = config_flag.map(Path::to_path_buf).or_else(|| {
            env.get(CONFIG_FILE_ENV)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        });
        match path {
            Some(path) => {
                let contents = std::fs::read_to_string(&path).map_err(|error| {
                    ConfigError(format!(
                        "cannot read config file {} ({error}); fix the path given by --config or {CONFIG_FILE_ENV}",
                        path.display()
                    ))
                })?;
                Self::from_sources(Some((&path, &contents)), env)
            }
            None => Self::from_sources(None, env),
        }
    }

    /// Layers already-read sources: `file` is the TOML file's path and contents.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let parsed = match file {
            Some((path, contents)) => toml::from_str::<FileConfig>(contents).map_err(|error| {
                // The error's own Display spans several lines with a source excerpt;
                // operators get one line with the line number instead.
                let line = error
                    .span()
                    // An unknown top-level key is reported over the whole document,
                    // where a line number would mislead; the message names the key.
                    .filter(|span| !(span.start == 0 && span.end >= contents.trim_end().len()))
                    .map(|span| contents.get(..span.start).unwrap_or_default().matches('\n').count() + 1);
                let at = line.map(|line| format!(" at line {line}")).unwrap_or_default();
                ConfigError(format!(
                    "invalid config file {}{at}: {}; fix the file (see user-engine.example.toml) or point --config elsewhere",
                    path.display(),
                    error.message()
                ))
            })?,
            None => FileConfig::default(),
        };
        let layers = Layers {
            env,
            file_path: file.map(|(path, _)| path),
        };
        let defaults = Self::default();
        let listen = layers
            .resolve(&LISTEN, false, parsed.listen, text, socket_address)?
            .unwrap_or(defaults.listen);
        let management_listen = layers.resolve(
            &MANAGEMENT_LISTEN,
            false,
            parsed.management_listen,
            text,
            |value| {
                let address = socket_address(value)?;
                // Port 0 picks a free port for each, so only a fixed port can clash.
                if address == listen && address.port() != 0 {
                    Err(format!(
                        "must differ from the API's address (USER_ENGINE_LISTEN={listen})"
                    ))
                } else {
                    Ok(address)
                }
            },
        )?;
        let request_timeout_seconds = layers
            .resolve(
                &REQUEST_TIMEOUT,
                false,
                parsed.request_timeout_seconds,
                |text| REQUEST_SECONDS.parse(text),
                |value| REQUEST_SECONDS.check(value),
            )?
            .unwrap_or(defaults.request_timeout_seconds);
        let hash_queue = layers
            .resolve(
                &HASH_QUEUE,
                false,
                parsed.hash_queue,
                |text| QUEUE.parse(text),
                |value| QUEUE.check(value),
            )?
            .unwrap_or(defaults.hash_queue);
        let facts_cache_entries = layers
            .resolve(
                &FACTS_CACHE_ENTRIES,
                false,
                parsed.facts_cache_entries,
                |text| CACHE_ENTRIES.parse(text),
                |value| CACHE_ENTRIES.check(value),
            )?
            .unwrap_or(defaults.facts_cache_entries);
        let database_url =
            layers.resolve(&DATABASE_URL, true, parsed.database_url, text, |value| {
                if value.starts_with("postgres://")
                    || value.starts_with("postgresql://")
                    || value.starts_with("sqlite://")
                {
                    Ok(Secret::new(value))
                } else {
                    Err("must be a postgres://, postgresql:// or sqlite:// url".to_owned())
                }
            })?;
        let database_pooling = layers
            .resolve(
                &DATABASE_POOLING,
                false,
                parsed.database_pooling,
                text,
                |value| adapters_pg::Pooling::parse(value.trim()),
            )?
            .unwrap_or(defaults.database_pooling);
        let data_dir = layers
            .resolve(&DATA_DIR, false, parsed.data_dir, text, |value| {
                if value.trim().is_empty() {
                    Err("must name a directory".to_owned())
                } else {
                    Ok(PathBuf::from(value))
                }
            })?
            .unwrap_or(defaults.data_dir.clone());
        let max_connections = layers
            .resolve(
                &MAX_CONNECTIONS,
                false,
                parsed.max_connections,
                |text| CONNECTIONS.parse(text),
                |value| CONNECTIONS.check(value),
            )?
            .unwrap_or(defaults.max_connections);
        let log_format = layers
            .resolve(
                &LOG_FORMAT,
                false,
                parsed.log_format,
                text,
                |value| match value.trim().to_ascii_lowercase().as_str() {
                    "text" => Ok(LogFormat::Text),
                    "json" => Ok(LogFormat::Json),
                    _ => Err("must be text or json".to_owned()),
                },
            )?
            .unwrap_or(defaults.log_format);
        let log_level = layers
            .resolve(&LOG_LEVEL, false, parsed.log_level, text, |value| {
                tracing_subscriber::EnvFilter::try_new(&value)
                    .map(|_| value.trim().to_owned())
                    .map_err(|error| {
                        format!(
                            "is not a log filter ({error}); use e.g. info, debug or info,sqlx=warn"
                        )
                    })
            })?
            .unwrap_or(defaults.log_level);
        let ttl = |setting: &Setting, value: Option<i64>, default: u32| {
            layers
                .resolve(
                    setting,
                    false,
                    value,
                    |text| TTL.parse(text),
                    |value| TTL.check(value),
                )
                .map(|resolved| resolved.unwrap_or(default))
        };
        let step_up_ttl_seconds = ttl(
            &STEP_UP_TTL,
            parsed.step_up_ttl_seconds,
            defaults.step_up_ttl_seconds,
        )?;
        let session_ttl_seconds = ttl(
            &SESSION_TTL,
            parsed.session_ttl_seconds,
            defaults.session_ttl_seconds,
        )?;
        let session_idle_seconds = ttl(
            &SESSION_IDLE,
            parsed.session_idle_seconds,
            defaults.session_idle_seconds,
        )?;
        let invitation_ttl_seconds = ttl(
            &INVITATION_TTL,
            parsed.invitation_ttl_seconds,
            defaults.invitation_ttl_seconds,
        )?;
        let bootstrap_email = layers.resolve(
            &BOOTSTRAP_EMAIL,
            false,
            parsed.bootstrap_email,
            text,
            |value| Email::parse(&value).map_err(|error| error.to_string()),
        )?;
        let bootstrap_password = layers.resolve(
            &BOOTSTRAP_PASSWORD,
            true,
            parsed.bootstrap_password,
            text,
            |value| {
                // Checked here so a too-short password fails at start with the setting's
                // name, not later inside the bootstrap use case.
                Password::parse(&value)
                    .map(|_| Secret::new(value))
                    .map_err(|error| error.to_string())
            },
        )?;
        let login_rate_per_minute = layers
            .resolve(
                &LOGIN_RATE,
                false,
                parsed.login_rate_per_minute,
                |text| RATE.parse(text),
                |value| RATE.check(value),
            )?
            .unwrap_or(defaults.login_rate_per_minute);
        let auth_failures_per_minute = layers
            .resolve(
                &AUTH_FAILURES,
                false,
                parsed.auth_failures_per_minute,
                |text| RATE.parse(text),
                |value| RATE.check(value),
            )?
            .unwrap_or(defaults.auth_failures_per_minute);
        let trusted_proxies = layers
            .resolve(
                &TRUSTED_PROXIES,
                false,
                parsed.trusted_proxies,
                text,
                |value| api_http::forwarded::parse_proxies(&value),
            )?
            .unwrap_or(defaults.trusted_proxies);
        let nats_url = layers.resolve(&NATS_URL, true, parsed.nats_url, text, |value| {
            let value = value.trim().to_owned();
            // nats:// (TLS when the server asks for it or a CA file is set) or tls://
            // (always TLS); websockets are not built in.
            if value.starts_with("nats://") || value.starts_with("tls://") {
                Ok(Secret::new(value))
            } else {
                Err("must be a nats:// or tls:// url, e.g. nats://127.0.0.1:4222".to_owned())
            }
        })?;
        // Whether the files exist is checked when the relay connects, so a sample
        // configuration and a configuration check need not see them.
        let existing_file = |value: String| {
            let path = PathBuf::from(value.trim());
            if path.as_os_str().is_empty() {
                Err("must name a file".to_owned())
            } else {
                Ok(path)
            }
        };
        let nats_ca_file = layers.resolve(
            &NATS_CA_FILE,
            false,
            parsed.nats_ca_file,
            text,
            existing_file,
        )?;
        let nats_creds_file = layers.resolve(
            &NATS_CREDS_FILE,
            false,
            parsed.nats_creds_file,
            text,
            existing_file,
        )?;
        let nats_nkey_seed = layers.resolve(
            &NATS_NKEY_SEED,
            true,
            parsed.nats_nkey_seed,
            text,
            |value| {
                let value = value.trim().to_owned();
                if value.starts_with("SU") && value.len() > 50 {
                    Ok(Secret::new(value))
                } else {
                    Err("must be a user nkey seed (SU…)".to_owned())
                }
            },
        )?;
        let outbox_lag_warn_seconds = ttl(
            &OUTBOX_LAG_WARN,
            parsed.outbox_lag_warn_seconds,
            defaults.outbox_lag_warn_seconds,
        )?;
        let smtp_url = layers.resolve(&SMTP_URL, true, parsed.smtp_url, text, |value| {
            let value = value.trim().to_owned();
            if value.starts_with("smtp://") || value.starts_with("smtps://") {
                Ok(Secret::new(value))
            } else {
                Err("must be an smtp:// or smtps:// url, e.g. smtps://mail.example.com".to_owned())
            }
        })?;
        let smtp_password_file = layers.resolve(
            &SMTP_PASSWORD_FILE,
            false,
            parsed.smtp_password_file,
            text,
            existing_file,
        )?;
        let key_encryption_key_file = layers.resolve(
            &KEY_ENCRYPTION_KEY_FILE,
            false,
            parsed.key_encryption_key_file,
            text,
            existing_file,
        )?;
        let public_url = layers.resolve(&PUBLIC_URL, false, parsed.public_url, text, |value| {
            check_public_url(&value)
        })?;
        let mail_from = layers.resolve(&MAIL_FROM, false, parsed.mail_from, text, |value| {
            let value = value.trim().to_owned();
            if value.contains('@') && !value.chars().any(char::is_control) {
                Ok(value)
            } else {
                Err("must be a mail address, e.g. \"Accounts <no-reply@example.com>\"".to_owned())
            }
        })?;
        if smtp_url.is_some() != mail_from.is_some() {
            return Err(ConfigError(
                "USER_ENGINE_SMTP_URL and USER_ENGINE_MAIL_FROM go together: set both to mail, \
                 or neither"
                    .to_owned(),
            ));
        }
        let mail_link_base = layers.resolve(
            &MAIL_LINK_BASE,
            false,
            parsed.mail_link_base,
            text,
            |value| {
                let value = value.trim().trim_end_matches('/').to_owned();
                if (value.starts_with("https://") || value.starts_with("http://"))
                    && !value.contains('#')
                    && !value.chars().any(|c| c.is_control() || c.is_whitespace())
                {
                    Ok(value)
                } else {
                    Err("must be an https:// address without a fragment".to_owned())
                }
            },
        )?;
        let mail_product_name = layers
            .resolve(
                &MAIL_PRODUCT_NAME,
                false,
                parsed.mail_product_name,
                text,
                |value| {
                    let value = value.trim().to_owned();
                    if value.is_empty()
                        || value.chars().count() > 100
                        || value.chars().any(char::is_control)
                    {
                        Err("must be 1 to 100 printable characters".to_owned())
                    } else {
                        Ok(value)
                    }
                },
            )?
            .unwrap_or(defaults.mail_product_name);
        let delivery_retry_max_seconds = ttl(
            &DELIVERY_RETRY_MAX,
            parsed.delivery_retry_max_seconds,
            defaults.delivery_retry_max_seconds,
        )?;
        let webhooks_allow_insecure = layers
            .resolve(
                &WEBHOOKS_ALLOW_INSECURE,
                false,
                parsed.webhooks_allow_insecure,
                |text| match text.trim() {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => Err("must be true or false".to_owned()),
                },
                Ok,
            )?
            .unwrap_or(defaults.webhooks_allow_insecure);
        let delivery_give_up_seconds = ttl(
            &DELIVERY_GIVE_UP,
            parsed.delivery_give_up_seconds,
            defaults.delivery_give_up_seconds,
        )?;
        Ok(Self {
            file: file.map(|(path, _)| path.to_path_buf()),
            listen,
            database_url,
            database_pooling,
            data_dir,
            max_connections,
            log_format,
            log_level,
            step_up_ttl_seconds,
            session_ttl_seconds,
            session_idle_seconds,
            invitation_ttl_seconds,
            bootstrap_email,
            bootstrap_password,
            login_rate_per_minute,
            auth_failures_per_minute,
            trusted_proxies,
            nats_url,
            nats_ca_file,
            nats_creds_file,
            nats_nkey_seed,
            outbox_lag_warn_seconds,
            management_listen,
            request_timeout_seconds,
            hash_queue,
            facts_cache_entries,
            smtp_url,
            smtp_password_file,
            key_encryption_key_file,
            public_url,
            mail_from,
            mail_link_base,
            mail_product_name,
            delivery_retry_max_seconds,
            delivery_give_up_seconds,
            webhooks_allow_insecure,
        })
    }

    /// A request's deadline.
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.request_timeout_seconds))
    }

    /// What the diagnostics are told: the `outbox.lag` threshold, and whether a relay is
    /// expected (NATS configured; without it events are served by the feed only).
    pub fn diagnostics_options(&self) -> diagnostics::Options {
        diagnostics::Options {
            outbox_lag_warn: seconds(self.outbox_lag_warn_seconds),
            relay_expected: self.nats_url.is_some(),
        }
    }

    /// How mail deliveries are retried.
    pub fn delivery_policy(&self) -> DeliveryPolicy {
        DeliveryPolicy {
            max_retry: seconds(self.delivery_retry_max_seconds),
            give_up_after: seconds(self.delivery_give_up_seconds),
            first_retry: seconds(5).min(seconds(self.delivery_retry_max_seconds)),
            ..DeliveryPolicy::default()
        }
    }

    /// The domain's view of the TTLs.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            step_up_ttl: seconds(self.step_up_ttl_seconds),
            session_ttl: seconds(self.session_ttl_seconds),
            session_idle_timeout: seconds(self.session_idle_seconds),
            invitation_ttl: seconds(self.invitation_ttl_seconds),
            mail: self.smtp_url.as_ref().map(|_| MailSettings {
                product: self.mail_product_name.clone(),
                link_base: self.mail_link_base.clone(),
            }),
            webhooks: domain::webhook::UrlPolicy {
                allow_insecure: self.webhooks_allow_insecure,
            },
            ..EngineConfig::default()
        }
    }
}

/// The `USER_ENGINE_*` variables of the process.
///
/// # Errors
/// When one of them is not valid UTF-8 (the process environment is otherwise read as is).
pub fn process_env() -> Result<BTreeMap<String, String>, ConfigError> {
    let mut variables = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        // A name that is not UTF-8 cannot be one of ours.
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        let value = value.into_string().map_err(|_| {
            ConfigError(format!(
                "{name} is not valid UTF-8; set it to a UTF-8 value or unset it"
            ))
        })?;
        variables.insert(name.to_owned(), value);
    }
    Ok(variables)
}

/// The names of `USER_ENGINE_*` variables the binary does not read, most likely typos;
/// the binary logs a warning for each.
pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| name.starts_with(ENV_PREFIX))
        .filter(|name| name.as_str() != CONFIG_FILE_ENV)
        .filter(|name| !FOREIGN_VARIABLES.contains(&name.as_str()))
        .filter(|name| !SETTINGS.iter().any(|setting| setting.env == name.as_str()))
        .cloned()
        .collect()
}

/// The settings as `--help` shows them.
pub fn settings_help() -> String {
    let mut help = format!(
        "Settings: defaults < TOML file (--config PATH or {CONFIG_FILE_ENV}) < environment.\n\
         An empty variable counts as unset. Durations are whole seconds.\n\
         See user-engine.example.toml for a commented file.\n"
    );
    for setting in SETTINGS {
        let default = setting.default.unwrap_or("unset");
        help.push_str(&format!(
            "\n  {}  (toml: {}, default: {default})\n      {}\n",
            setting.env, setting.key, setting.help
        ));
    }
    help
}

/// The public URL: `https://` or `http://`, a host, an optional path, no query or
/// fragment; kept without a trailing `/` (the issuer must match to the letter).
fn check_public_url(value: &str) -> Result<String, String> {
    let value = value.trim().trim_end_matches('/');
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or("must start with https:// (or http://)")?;
    if rest.is_empty()
        || rest.starts_with('/')
        || value.contains(['?', '#', '@'])
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("must be a URL with a host and no query, fragment or credentials".to_owned());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn path() -> &'static Path {
        Path::new("/etc/user-engine.toml")
    }

    fn load(file: Option<&str>, variables: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_sources(file.map(|contents| (path(), contents)), &env(variables))
    }

    /// The message of a rejected configuration, or nothing when it was accepted (so the
    /// `contains` assertions fail and show the empty message).
    fn rejection(result: Result<Config, ConfigError>) -> String {
        result
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default()
    }

    const FILE: &str = r#"
listen = "0.0.0.0:9000"
max_connections = 32
log_format = "json"
step_up_ttl_seconds = 300
database_url = "postgres://file:filepass@db/file"
"#;

    #[test]
    fn without_file_or_variables_the_defaults_apply() {
        assert_eq!(load(None, &[]), Ok(Config::default()));
    }

    #[test]
    fn the_file_overrides_the_defaults() -> Result<(), ConfigError> {
        let config = load(Some(FILE), &[])?;
        assert_eq!(config.listen, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(config.max_connections, 32);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.step_up_ttl_seconds, 300);
        assert_eq!(config.file.as_deref(), Some(path()));
        // What the file leaves out keeps its default.
        assert_eq!(config.session_ttl_seconds, 43_200);
        assert_eq!(config.log_level, "info");
        Ok(())
    }

    #[test]
    fn the_database_url_takes_postgres_or_sqlite_and_the_data_dir_has_a_default(
    ) -> Result<(), ConfigError> {
        let defaults = load(None, &[])?;
        assert_eq!(defaults.database_url, None);
        assert_eq!(defaults.data_dir, PathBuf::from("./user-engine-data"));
        for url in [
            "postgres://u@db/x",
            "postgresql://u@db/x",
            "sqlite://data/x.db",
        ] {
            let config = load(None, &[("USER_ENGINE_DATABASE_URL", url)])?;
            assert_eq!(config.database_url.as_ref().map(Secret::expose), Some(url));
        }
        let config = load(Some("data_dir = \"/var/lib/user-engine\"\n"), &[])?;
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/user-engine"));
        let config = load(None, &[("USER_ENGINE_DATA_DIR", "/srv/ue")])?;
        assert_eq!(config.data_dir, PathBuf::from("/srv/ue"));
        let refused = rejection(load(None, &[("USER_ENGINE_DATABASE_URL", "mysql://x")]));
        assert!(refused.contains("sqlite://"), "{refused}");
        assert!(
            !refused.contains("mysql"),
            "a secret is not echoed: {refused}"
        );
        assert!(rejection(load(None, &[("USER_ENGINE_DATA_DIR", "  ")]))
            .contains("USER_ENGINE_DATA_DIR"));
        Ok(())
    }

    #[test]
    fn variables_override_the_file() -> Result<(), ConfigError> {
        let config = load(
            Some(FILE),
            &[
                ("USER_ENGINE_LISTEN", "127.0.0.1:7000"),
                ("USER_ENGINE_MAX_CONNECTIONS", "4"),
                ("USER_ENGINE_STEP_UP_TTL", "60"),
                ("USER_ENGINE_DATABASE_URL", "postgres://env@db/env"),
                ("USER_ENGINE_LOG", "debug,sqlx=warn"),
            ],
        )?;
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 7000)));
        assert_eq!(config.max_connections, 4);
        assert_eq!(config.step_up_ttl_seconds, 60);
        assert_eq!(
            config.database_url.as_ref().map(Secret::expose),
            Some("postgres://env@db/env")
        );
        assert_eq!(config.log_level, "debug,sqlx=warn");
        // What the environment leaves out still comes from the file.
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.engine_config().step_up_ttl, Duration::seconds(60));
        Ok(())
    }

    #[test]
    fn an_empty_variable_counts_as_unset() -> Result<(), ConfigError> {
        let config = load(
            Some(FILE),
            &[
                ("USER_ENGINE_MAX_CONNECTIONS", ""),
                ("USER_ENGINE_LOG_FORMAT", ""),
            ],
        )?;
        assert_eq!(config.max_connections, 32);
        assert_eq!(config.log_format, LogFormat::Json);
        Ok(())
    }

    #[test]
    fn the_engine_config_carries_every_ttl() -> Result<(), ConfigError> {
        let config = load(
            None,
            &[
                ("USER_ENGINE_SESSION_TTL", "100"),
                ("USER_ENGINE_SESSION_IDLE", "50"),
                ("USER_ENGINE_INVITATION_TTL", "25"),
            ],
        )?;
        let engine = config.engine_config();
        assert_eq!(engine.step_up_ttl, Duration::minutes(15));
        assert_eq!(engine.session_ttl, Duration::seconds(100));
        assert_eq!(engine.session_idle_timeout, Duration::seconds(50));
        assert_eq!(engine.invitation_ttl, Duration::seconds(25));
        Ok(())
    }

    #[test]
    fn the_diagnostics_expect_a_relay_only_with_nats_and_take_the_lag_threshold(
    ) -> Result<(), ConfigError> {
        let defaults = load(None, &[])?.diagnostics_options();
        assert_eq!(defaults.outbox_lag_warn, Duration::seconds(60));
        assert!(!defaults.relay_expected);
        let relayed = load(
            Some("outbox_lag_warn_seconds = 30\n"),
            &[("USER_ENGINE_NATS_URL", "nats://127.0.0.1:4222")],
        )?
        .diagnostics_options();
        assert_eq!(relayed.outbox_lag_warn, Duration::seconds(30));
        assert!(relayed.relay_expected);
        assert!(
            rejection(load(None, &[("USER_ENGINE_OUTBOX_LAG_WARN", "1m")]))
                .contains("USER_ENGINE_OUTBOX_LAG_WARN")
        );
        Ok(())
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_display() -> Result<(), ConfigError> {
        let config = load(
            None,
            &[
                (
                    "USER_ENGINE_DATABASE_URL",
                    "postgres://app:hunter2hunter2@db/app",
                ),
                ("USER_ENGINE_BOOTSTRAP_EMAIL", "root@example.com"),
                ("USER_ENGINE_BOOTSTRAP_PASSWORD", "correct horse battery"),
            ],
        )?;
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("correct horse"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let secret = Secret::new("s3cret");
        assert_eq!(secret.to_string(), "<redacted>");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "s3cret");
        assert_eq!(
            config.bootstrap_password.as_ref().map(Secret::expose),
            Some("correct horse battery")
        );
        Ok(())
    }

    #[test]
    fn an_invalid_variable_names_the_variable_and_the_fix() {
        let message = rejection(load(None, &[("USER_ENGINE_STEP_UP_TTL", "15m")]));
        assert!(
            message.contains("USER_ENGINE_STEP_UP_TTL=\"15m\""),
            "{message}"
        );
        assert!(message.contains("whole number of seconds"), "{message}");
        assert!(
            message.contains("unset it to use the default (900)"),
            "{message}"
        );
    }

    #[test]
    fn an_invalid_file_value_names_the_key_and_the_file() {
        let message = rejection(load(Some("max_connections = 0\n"), &[]));
        assert!(message.contains("max_connections = \"0\""), "{message}");
        assert!(message.contains("/etc/user-engine.toml"), "{message}");
        assert!(message.contains("from 1 to 10000"), "{message}");
    }

    #[test]
    fn an_invalid_secret_is_not_echoed() {
        let message = rejection(load(
            None,
            &[("USER_ENGINE_BOOTSTRAP_PASSWORD", "short-pw")],
        ));
        assert!(
            message.contains("USER_ENGINE_BOOTSTRAP_PASSWORD"),
            "{message}"
        );
        assert!(message.contains("at least 12 characters"), "{message}");
        assert!(!message.contains("short-pw"), "{message}");
        let message = rejection(load(
            None,
            &[("USER_ENGINE_DATABASE_URL", "mysql://root:pw@db")],
        ));
        assert!(message.contains("USER_ENGINE_DATABASE_URL"), "{message}");
        assert!(!message.contains("root:pw"), "{message}");
    }

    #[test]
    fn other_invalid_values_are_rejected() {
        for (name, value) in [
            ("USER_ENGINE_LISTEN", "localhost"),
            ("USER_ENGINE_LOG_FORMAT", "yaml"),
            ("USER_ENGINE_LOG", "info,[[["),
            ("USER_ENGINE_SESSION_TTL", "0"),
            ("USER_ENGINE_SESSION_IDLE", "-5"),
            ("USER_ENGINE_INVITATION_TTL", "99999999999"),
            ("USER_ENGINE_LOGIN_RATE_PER_MINUTE", "ten"),
            ("USER_ENGINE_AUTH_FAILURES_PER_MINUTE", "0"),
            ("USER_ENGINE_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("USER_ENGINE_BOOTSTRAP_EMAIL", "not-an-email"),
            ("USER_ENGINE_DATABASE_POOLING", "statement"),
        ] {
            let message = rejection(load(None, &[(name, value)]));
            assert!(message.contains(name), "{name}={value} gave {message:?}");
        }
    }

    #[test]
    fn pooling_is_session_unless_a_transaction_pooler_is_named() -> Result<(), ConfigError> {
        assert_eq!(
            load(None, &[])?.database_pooling,
            adapters_pg::Pooling::Session
        );
        let config = load(
            Some("database_pooling = \"session\"\n"),
            &[("USER_ENGINE_DATABASE_POOLING", "transaction")],
        )?;
        assert_eq!(config.database_pooling, adapters_pg::Pooling::Transaction);
        Ok(())
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_its_value() {
        for (contents, shown) in [
            ("bootstrap_password = 987654321987654321\n", "an integer"),
            ("database_url = 12.5e3\n", "a float"),
            ("nats_url = [\"nats://u:pw@h\"]\n", "an array"),
            ("nats_nkey_seed = true\n", "a boolean"),
        ] {
            let message = rejection(load(Some(contents), &[]));
            assert!(message.contains("must be a quoted string"), "{message}");
            assert!(message.contains(shown), "{message}");
            for secret in ["987654321987654321", "12.5", "12500", "pw@h", "true"] {
                assert!(!message.contains(secret), "{secret} in {message}");
            }
        }
    }

    #[test]
    fn unknown_file_keys_and_bad_toml_are_reported_on_one_line() {
        let message = rejection(load(
            Some("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n"),
            &[],
        ));
        assert!(message.contains("unknown field `listen_addr`"), "{message}");
        assert!(!message.contains('\n'), "{message}");
        let message = rejection(load(
            Some("listen = \"127.0.0.1:1\"\nmax_connections = \"many\"\n"),
            &[],
        ));
        assert!(message.contains("at line 2"), "{message}");
        assert!(message.contains("invalid type"), "{message}");
        let message = rejection(load(
            Some("listen = \"127.0.0.1:1\"\n\nmax_connections = 16 17\n"),
            &[],
        ));
        assert!(message.contains("at line 3"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn a_missing_config_file_says_which_path() {
        let missing = Path::new("/nonexistent/user-engine.toml");
        let message = rejection(Config::load(Some(missing), &BTreeMap::new()));
        assert!(
            message.contains("/nonexistent/user-engine.toml"),
            "{message}"
        );
        let variables = env(&[(CONFIG_FILE_ENV, "/nonexistent/from-env.toml")]);
        let message = rejection(Config::load(None, &variables));
        assert!(message.contains("from-env.toml"), "{message}");
    }

    #[test]
    fn unknown_variables_are_listed_and_known_ones_are_not() {
        let variables = env(&[
            ("USER_ENGINE_LISTEN", "127.0.0.1:1"),
            ("USER_ENGINE_LISTEN_ADDR", "127.0.0.1:1"),
            ("USER_ENGINE_CONFIG", "/etc/user-engine.toml"),
            ("USER_ENGINE_TEST_DATABASE_URL", "postgres://x"),
            ("USER_ENGINE_DATABSE_URL", "postgres://x"),
            ("PATH", "/bin"),
            ("USER_ENGINEERING", "1"),
        ]);
        assert_eq!(
            unknown_variables(variables.keys()),
            vec![
                "USER_ENGINE_DATABSE_URL".to_owned(),
                "USER_ENGINE_LISTEN_ADDR".to_owned()
            ]
        );
        let all_known: Vec<String> = SETTINGS
            .iter()
            .map(|setting| setting.env.to_owned())
            .collect();
        assert!(unknown_variables(&all_known).is_empty());
    }

    #[test]
    fn the_bounds_settings_default_parse_and_are_range_checked() -> Result<(), ConfigError> {
        let defaults = load(None, &[])?;
        assert_eq!(defaults.management_listen, None);
        assert_eq!(
            defaults.request_timeout(),
            std::time::Duration::from_secs(30)
        );
        assert_eq!(defaults.hash_queue, 256);
        let set = load(
            Some("management_listen = \"127.0.0.1:9000\"\nhash_queue = 0\n"),
            &[("USER_ENGINE_REQUEST_TIMEOUT", "5")],
        )?;
        assert_eq!(
            set.management_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9000)))
        );
        assert_eq!(set.hash_queue, 0);
        assert_eq!(set.request_timeout(), std::time::Duration::from_secs(5));
        let message = rejection(load(None, &[("USER_ENGINE_REQUEST_TIMEOUT", "0")]));
        assert!(message.contains("USER_ENGINE_REQUEST_TIMEOUT"), "{message}");
        assert!(
            message.contains("whole number of seconds from 1 to 3600"),
            "{message}"
        );
        let message = rejection(load(None, &[("USER_ENGINE_HASH_QUEUE", "-1")]));
        assert!(message.contains("from 0 to 100000"), "{message}");
        assert_eq!(defaults.facts_cache_entries, 1_000_000);
        let set = load(
            Some("facts_cache_entries = 5000\n"),
            &[("USER_ENGINE_HASH_QUEUE", "3")],
        )?;
        assert_eq!((set.facts_cache_entries, set.hash_queue), (5_000, 3));
        let message = rejection(load(None, &[("USER_ENGINE_FACTS_CACHE_ENTRIES", "0")]));
        assert!(message.contains("from 1 to 100000000"), "{message}");
        let message = rejection(load(
            None,
            &[
                ("USER_ENGINE_LISTEN", "127.0.0.1:8080"),
                ("USER_ENGINE_MANAGEMENT_LISTEN", "127.0.0.1:8080"),
            ],
        ));
        assert!(
            message.contains("USER_ENGINE_MANAGEMENT_LISTEN") && message.contains("must differ"),
            "{message}"
        );
        let message = rejection(load(None, &[("USER_ENGINE_MANAGEMENT_LISTEN", "9000")]));
        assert!(message.contains("ip address and port"), "{message}");
        Ok(())
    }

    #[test]
    fn the_help_lists_every_setting() {
        let help = settings_help();
        for setting in SETTINGS {
            assert!(help.contains(setting.env), "{}", setting.env);
            assert!(help.contains(setting.key), "{}", setting.key);
        }
        assert!(help.contains(CONFIG_FILE_ENV));
    }

    #[test]
    fn mail_needs_an_smtp_url_and_a_sender_and_never_echoes_the_password() -> Result<(), ConfigError>
    {
        let alone = rejection(load(
            None,
            &[(
                "USER_ENGINE_SMTP_URL",
                "smtps://u:hunter2secret@mail.example.com",
            )],
        ));
        assert!(alone.contains("USER_ENGINE_MAIL_FROM"), "{alone}");
        assert!(!alone.contains("hunter2secret"), "{alone}");
        let scheme = rejection(load(
            None,
            &[(
                "USER_ENGINE_SMTP_URL",
                "http://u:hunter2secret@mail.example.com",
            )],
        ));
        assert!(scheme.contains("USER_ENGINE_SMTP_URL"), "{scheme}");
        assert!(!scheme.contains("hunter2secret"), "{scheme}");
        let link = rejection(load(None, &[("USER_ENGINE_MAIL_LINK_BASE", "ftp://x#y")]));
        assert!(link.contains("USER_ENGINE_MAIL_LINK_BASE"), "{link}");
        let config = load(
            None,
            &[
                (
                    "USER_ENGINE_SMTP_URL",
                    "smtps://u:hunter2secret@mail.example.com",
                ),
                ("USER_ENGINE_MAIL_FROM", "Accounts <a@example.com>"),
                (
                    "USER_ENGINE_MAIL_LINK_BASE",
                    "https://app.example.com/account/",
                ),
                ("USER_ENGINE_DELIVERY_RETRY_MAX", "2"),
            ],
        )?;
        assert!(!format!("{config:?}").contains("hunter2secret"));
        assert_eq!(
            config
                .engine_config()
                .mail
                .and_then(|mail| mail.link_base)
                .as_deref(),
            Some("https://app.example.com/account")
        );
        assert_eq!(config.delivery_policy().max_retry, Duration::seconds(2));
        assert_eq!(load(None, &[])?.engine_config().mail, None);
        Ok(())
    }

    /// The sample file documents every setting with its variable, and its commented-out
    /// lines, once uncommented, parse and carry exactly the documented defaults.
    #[test]
    fn the_sample_file_documents_every_setting_with_its_default() -> Result<(), ConfigError> {
        let sample = include_str!("../../../user-engine.example.toml");
        for setting in SETTINGS {
            assert!(sample.contains(setting.env), "sample lacks {}", setting.env);
        }
        assert!(sample.contains(CONFIG_FILE_ENV));
        let mut uncommented = String::new();
        for line in sample.lines() {
            let assignment = line.strip_prefix("# ").filter(|rest| {
                SETTINGS
                    .iter()
                    .any(|setting| rest.starts_with(&format!("{} = ", setting.key)))
            });
            if let Some(assignment) = assignment {
                uncommented.push_str(assignment);
                uncommented.push('\n');
            }
        }
        for setting in SETTINGS {
            let line = uncommented
                .lines()
                .find(|line| line.starts_with(&format!("{} = ", setting.key)));
            assert!(line.is_some(), "sample has no `# {} = …` line", setting.key);
            if let (Some(line), Some(default)) = (line, setting.default) {
                let value = line
                    .split_once(" = ")
                    .map(|(_, value)| value.trim_matches('"'));
                assert_eq!(value, Some(default), "sample default of {}", setting.key);
            }
        }
        let config = load(Some(&uncommented), &[])?;
        let defaults = Config::default();
        assert_eq!(
            Config {
                file: None,
                database_url: None,
                bootstrap_email: None,
                bootstrap_password: None,
                trusted_proxies: Vec::new(),
                nats_url: None,
                nats_ca_file: None,
                nats_creds_file: None,
                nats_nkey_seed: None,
                management_listen: None,
                smtp_url: None,
                smtp_password_file: None,
                key_encryption_key_file: None,
                public_url: None,
                mail_from: None,
                mail_link_base: None,
                ..config
            },
            defaults
        );
        Ok(())
    }
}
