//! Every setting of the service, once: its TOML key, its `USER_ENGINE_*` variable, its
//! default as shown to operators and its help. `config.rs` loads them; `--help`,
//! unknown-variable detection and the sample file check read [`SETTINGS`].

/// One setting: its TOML key, its variable, its default as shown to operators, and what
/// it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static str,
    pub env: &'static str,
    /// `None` when the setting is unset unless configured.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

pub(crate) const LISTEN: Setting = Setting {
    key: "listen",
    env: "USER_ENGINE_LISTEN",
    default: Some("127.0.0.1:8080"),
    help: "address and port the HTTP API listens on; port 0 picks a free port",
};
pub(crate) const DATABASE_URL: Setting = Setting {
    key: "database_url",
    env: "USER_ENGINE_DATABASE_URL",
    default: None,
    help: "where the data lives: postgres://user:password@host:5432/database selects \
           PostgreSQL (its user must own the schema, since serve, migrate and bootstrap run \
           the migrations), sqlite://path/to/file.db an embedded SQLite file; unset, the \
           embedded store in USER_ENGINE_DATA_DIR (secret, never logged)",
};
pub(crate) const DATABASE_POOLING: Setting = Setting {
    key: "database_pooling",
    env: "USER_ENGINE_DATABASE_POOLING",
    default: Some("session"),
    help: "how the PostgreSQL URL reaches the database: session (straight to PostgreSQL, or \
           a pooler in session mode) or transaction (a transaction pooler such as PgBouncer \
           with pool_mode = transaction: no prepared statement is kept and every statement \
           runs in a transaction; serve then checks the schema instead of migrating it, so \
           run `user-engine migrate` on a URL straight to PostgreSQL first)",
};
pub(crate) const DATA_DIR: Setting = Setting {
    key: "data_dir",
    env: "USER_ENGINE_DATA_DIR",
    default: Some("./user-engine-data"),
    help: "directory of the embedded store, created if missing; its file user-engine.db \
           holds every tenant's data (used only when USER_ENGINE_DATABASE_URL is unset)",
};
pub(crate) const MAX_CONNECTIONS: Setting = Setting {
    key: "max_connections",
    env: "USER_ENGINE_MAX_CONNECTIONS",
    default: Some("16"),
    help: "size of the database connection pool (1 to 10000)",
};
pub(crate) const LOG_FORMAT: Setting = Setting {
    key: "log_format",
    env: "USER_ENGINE_LOG_FORMAT",
    default: Some("text"),
    help: "log format on stderr: text or json",
};
pub(crate) const LOG_LEVEL: Setting = Setting {
    key: "log_level",
    env: "USER_ENGINE_LOG",
    default: Some("info"),
    help: "log filter in tracing's EnvFilter syntax, e.g. info or info,sqlx=warn",
};
pub(crate) const STEP_UP_TTL: Setting = Setting {
    key: "step_up_ttl_seconds",
    env: "USER_ENGINE_STEP_UP_TTL",
    default: Some("900"),
    help: "whole seconds a session counts as aal2 after a TOTP check (plain seconds: 900, not 15m)",
};
pub(crate) const SESSION_TTL: Setting = Setting {
    key: "session_ttl_seconds",
    env: "USER_ENGINE_SESSION_TTL",
    default: Some("43200"),
    help: "absolute session lifetime in whole seconds",
};
pub(crate) const SESSION_IDLE: Setting = Setting {
    key: "session_idle_seconds",
    env: "USER_ENGINE_SESSION_IDLE",
    default: Some("1800"),
    help: "a session unused for this many seconds expires",
};
pub(crate) const INVITATION_TTL: Setting = Setting {
    key: "invitation_ttl_seconds",
    env: "USER_ENGINE_INVITATION_TTL",
    default: Some("604800"),
    help: "seconds an invitation to a tenant stays valid",
};
pub(crate) const BOOTSTRAP_EMAIL: Setting = Setting {
    key: "bootstrap_email",
    env: "USER_ENGINE_BOOTSTRAP_EMAIL",
    default: None,
    help: "email of the first platform_root, created on start when no root exists \
           (idempotent, never overwrites); needs the password too",
};
pub(crate) const BOOTSTRAP_PASSWORD: Setting = Setting {
    key: "bootstrap_password",
    env: "USER_ENGINE_BOOTSTRAP_PASSWORD",
    default: None,
    help: "password of the first platform_root, at least 12 characters (secret, never \
           logged, never a command-line flag)",
};
pub(crate) const LOGIN_RATE: Setting = Setting {
    key: "login_rate_per_minute",
    env: "USER_ENGINE_LOGIN_RATE_PER_MINUTE",
    default: Some("10"),
    help: "login attempts allowed per minute for one email and for one client address",
};
pub(crate) const AUTH_FAILURES: Setting = Setting {
    key: "auth_failures_per_minute",
    env: "USER_ENGINE_AUTH_FAILURES_PER_MINUTE",
    default: Some("60"),
    help: "requests with a missing or invalid bearer token allowed per minute from one client \
           address; beyond it they get 429 with Retry-After (and leave no audit record)",
};
pub(crate) const TRUSTED_PROXIES: Setting = Setting {
    key: "trusted_proxies",
    env: "USER_ENGINE_TRUSTED_PROXIES",
    default: None,
    help: "comma-separated CIDRs of the reverse proxies in front of the service, e.g. \
           10.0.0.0/8,fd00::/8; a request from one of them is attributed to the nearest \
           untrusted hop of its Forwarded or X-Forwarded-For header (for the throttles); \
           unset, the socket peer is the client and those headers are ignored",
};
pub(crate) const NATS_URL: Setting = Setting {
    key: "nats_url",
    env: "USER_ENGINE_NATS_URL",
    default: None,
    help: "NATS server URL, nats://host:4222 (secret, never logged: it may hold credentials); \
           when set, serve relays outbox events to JetStream (stream USER_ENGINE, subjects \
           user_engine.>); unset, events stay available through the feed only",
};

pub(crate) const NATS_CA_FILE: Setting = Setting {
    key: "nats_ca_file",
    env: "USER_ENGINE_NATS_CA_FILE",
    default: None,
    help: "PEM file of the CA that signed the NATS server's certificate; when set, the \
           connection must use TLS (tls:// urls use TLS with the system's trust store \
           otherwise)",
};
pub(crate) const NATS_CREDS_FILE: Setting = Setting {
    key: "nats_creds_file",
    env: "USER_ENGINE_NATS_CREDS_FILE",
    default: None,
    help: "a NATS .creds file (user JWT and nkey seed) to authenticate with; user and \
           password, or a token, go in the URL instead (nats://user:password@host:4222)",
};
pub(crate) const NATS_NKEY_SEED: Setting = Setting {
    key: "nats_nkey_seed",
    env: "USER_ENGINE_NATS_NKEY_SEED",
    default: None,
    help: "a NATS user nkey seed (SU…) to authenticate with (secret, never logged)",
};

pub(crate) const MANAGEMENT_LISTEN: Setting = Setting {
    key: "management_listen",
    env: "USER_ENGINE_MANAGEMENT_LISTEN",
    default: None,
    help: "address and port of a management listener serving /healthz, /readyz and \
           /metrics apart from the API, e.g. 127.0.0.1:9000; when set, /metrics is served \
           there only (the API port answers it 404); unset, the API port serves all three",
};
pub(crate) const REQUEST_TIMEOUT: Setting = Setting {
    key: "request_timeout_seconds",
    env: "USER_ENGINE_REQUEST_TIMEOUT",
    default: Some("30"),
    help: "whole seconds a request may take; past it the request is abandoned and answered \
           503 overloaded with Retry-After",
};
pub(crate) const HASH_QUEUE: Setting = Setting {
    key: "hash_queue",
    env: "USER_ENGINE_HASH_QUEUE",
    default: Some("256"),
    help: "password hashes (logins, password changes) that may wait for a hashing thread \
           (one per core); beyond it such requests get 503 overloaded with Retry-After at \
           once (0 to 100000)",
};

pub(crate) const FACTS_CACHE_ENTRIES: Setting = Setting {
    key: "facts_cache_entries",
    env: "USER_ENGINE_FACTS_CACHE_ENTRIES",
    default: Some("1000000"),
    help: "PostgreSQL only: users and tenant accounts the authorize API's facts cache \
           holds at most, each (tenants and API keys a tenth, at least 1000); beyond it \
           the least recently used are read again (1 to 100000000)",
};

pub(crate) const SMTP_URL: Setting = Setting {
    key: "smtp_url",
    env: "USER_ENGINE_SMTP_URL",
    default: None,
    help: "SMTP server for mail (secret, never logged: it may hold credentials): \
           smtps://[user[:password]@]host[:465] (TLS), or smtp://…[:587] (STARTTLS \
           required; to a loopback host STARTTLS when offered); ?tls=required|opportunistic \
           says so explicitly. When set with USER_ENGINE_MAIL_FROM, invitations, password \
           resets, email verifications and security notices are mailed, and invitation \
           tokens are no longer returned to the calling service",
};
pub(crate) const SMTP_PASSWORD_FILE: Setting = Setting {
    key: "smtp_password_file",
    env: "USER_ENGINE_SMTP_PASSWORD_FILE",
    default: None,
    help: "a file holding the SMTP password (its user in USER_ENGINE_SMTP_URL), read at \
           start; replaces a password in the URL",
};
pub(crate) const KEY_ENCRYPTION_KEY_FILE: Setting = Setting {
    key: "key_encryption_key_file",
    env: "USER_ENGINE_KEY_ENCRYPTION_KEY_FILE",
    default: None,
    help: "a file holding 32 random bytes in base64 (openssl rand -base64 32) that seal the \
           OpenID provider's private signing keys in the database; the same file on every \
           node. Without it the embedded store makes one in USER_ENGINE_DATA_DIR on first \
           start; with PostgreSQL no signing key is made and the JWKS is empty",
};
pub(crate) const PUBLIC_URL: Setting = Setting {
    key: "public_url",
    env: "USER_ENGINE_PUBLIC_URL",
    default: None,
    help: "the URL clients reach this service at (https://id.example.com): the OpenID \
           provider's issuer, and the base of its endpoints and pages; the same on every \
           node. Without it the issuer is http:// and the listening address",
};
pub(crate) const MAIL_FROM: Setting = Setting {
    key: "mail_from",
    env: "USER_ENGINE_MAIL_FROM",
    default: None,
    help: "the sender of mails, e.g. \"Acme Accounts <no-reply@acme.example>\" (needed \
           with USER_ENGINE_SMTP_URL)",
};
pub(crate) const MAIL_LINK_BASE: Setting = Setting {
    key: "mail_link_base",
    env: "USER_ENGINE_MAIL_LINK_BASE",
    default: None,
    help: "https:// address of the page that takes mailed tokens: mails link to \
           {base}/invitation, {base}/password-reset and {base}/email-verification with \
           #token=…; without it mails carry the token to enter",
};
pub(crate) const MAIL_PRODUCT_NAME: Setting = Setting {
    key: "mail_product_name",
    env: "USER_ENGINE_MAIL_PRODUCT_NAME",
    default: Some("user-engine"),
    help: "the name mails speak for when no tenant is concerned (an invitation names its \
           tenant's display name)",
};
pub(crate) const DELIVERY_RETRY_MAX: Setting = Setting {
    key: "delivery_retry_max_seconds",
    env: "USER_ENGINE_DELIVERY_RETRY_MAX",
    default: Some("900"),
    help: "the longest pause, in seconds, between attempts of a failing mail (the pause \
           starts at 5 s and doubles, with jitter)",
};
pub(crate) const DELIVERY_GIVE_UP: Setting = Setting {
    key: "delivery_give_up_seconds",
    env: "USER_ENGINE_DELIVERY_GIVE_UP",
    default: Some("86400"),
    help: "seconds after which a mail still failing is given up (kept, with its last \
           error, and counted in user_engine_mail_failed)",
};

pub(crate) const WEBHOOKS_ALLOW_INSECURE: Setting = Setting {
    key: "webhooks_allow_insecure",
    env: "USER_ENGINE_WEBHOOKS_ALLOW_INSECURE",
    default: Some("false"),
    help: "true lets webhooks use plain http:// and reach loopback, private and link-local \
           addresses (local development only: in production a tenant could make the \
           service call internal endpoints)",
};

pub(crate) const OUTBOX_LAG_WARN: Setting = Setting {
    key: "outbox_lag_warn_seconds",
    env: "USER_ENGINE_OUTBOX_LAG_WARN",
    default: Some("60"),
    help: "whole seconds an outbox event may wait for the relay before the outbox.lag \
           diagnostic warns (checked only when USER_ENGINE_NATS_URL is set)",
};

/// Every setting, in the order `--help` and the sample file list them.
pub const SETTINGS: &[Setting] = &[
    LISTEN,
    DATABASE_URL,
    DATABASE_POOLING,
    DATA_DIR,
    MAX_CONNECTIONS,
    LOG_FORMAT,
    LOG_LEVEL,
    STEP_UP_TTL,
    SESSION_TTL,
    SESSION_IDLE,
    INVITATION_TTL,
    BOOTSTRAP_EMAIL,
    BOOTSTRAP_PASSWORD,
    LOGIN_RATE,
    AUTH_FAILURES,
    TRUSTED_PROXIES,
    NATS_URL,
    NATS_CA_FILE,
    NATS_CREDS_FILE,
    NATS_NKEY_SEED,
    SMTP_URL,
    SMTP_PASSWORD_FILE,
    KEY_ENCRYPTION_KEY_FILE,
    PUBLIC_URL,
    MAIL_FROM,
    MAIL_LINK_BASE,
    MAIL_PRODUCT_NAME,
    DELIVERY_RETRY_MAX,
    DELIVERY_GIVE_UP,
    WEBHOOKS_ALLOW_INSECURE,
    OUTBOX_LAG_WARN,
    MANAGEMENT_LISTEN,
    REQUEST_TIMEOUT,
    HASH_QUEUE,
    FACTS_CACHE_ENTRIES,
];
