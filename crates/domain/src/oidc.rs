//! The OpenID provider's clients and grants (SPEC §9): what a client is, how its redirect
//! URIs are checked, the single-use codes and rotating refresh tokens the store keeps
//! (hashed), PKCE, and the claims of the tokens the provider signs.
//!
//! A client belongs to the platform (it may sign in members of any tenant) or to one
//! tenant (only that tenant's members). Its id says which: a platform client's id is a
//! UUID, a tenant client's is `<tenant>.<uuid>`, so every lookup names the tenant it
//! reads, as every tenant-scoped statement does. Codes and refresh tokens are tenant
//! rows for the same reason, and their values start with the tenant they belong to.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::ids::{Assurance, ScopeName, SessionId, TenantId, UserId};

/// How long an authorization code may be redeemed (RFC 6749 §4.1.2: short).
pub const CODE_TTL: Duration = Duration::seconds(60);
/// The lifetime of access and ID tokens (SPEC §9: 5 minutes).
pub const TOKEN_TTL: Duration = Duration::minutes(5);
/// The longest a client's name may be.
pub const CLIENT_NAME_MAX: usize = 200;
/// How many redirect URIs a client may register.
pub const REDIRECT_URIS_MAX: usize = 20;
/// The longest `state` and `nonce` the provider keeps or echoes.
pub const PARAMETER_MAX: usize = 512;
/// The OpenID scopes the provider knows; others are refused (`invalid_scope`).
pub const OPENID_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// A client's id: which owner it belongs to, and its UUID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId {
    tenant: Option<TenantId>,
    id: Uuid,
}

impl ClientId {
    /// A platform client's id.
    pub fn platform(id: Uuid) -> Self {
        Self { tenant: None, id }
    }

    /// A tenant client's id.
    pub fn tenant(tenant: TenantId, id: Uuid) -> Self {
        Self {
            tenant: Some(tenant),
            id,
        }
    }

    /// Parses `<uuid>` or `<tenant>.<uuid>` (the UUID lowercase and hyphenated, as this
    /// provider writes it); `None` for anything else.
    pub fn parse(input: &str) -> Option<Self> {
        let (tenant, id) = match input.split_once('.') {
            Some((tenant, id)) => (Some(TenantId::parse(tenant).ok()?), id),
            None => (None, input),
        };
        let uuid = Uuid::parse_str(id).ok()?;
        (uuid.hyphenated().to_string() == id).then_some(Self { tenant, id: uuid })
    }

    /// The tenant of a tenant client; `None` for a platform client.
    pub fn owner(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    pub fn uuid(&self) -> Uuid {
        self.id
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tenant {
            Some(tenant) => write!(f, "{tenant}.{}", self.id.hyphenated()),
            None => write!(f, "{}", self.id.hyphenated()),
        }
    }
}

/// RFC 6749 §2.1 client types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    /// Holds a secret (a server-side application); PKCE optional.
    Confidential,
    /// Holds no secret (a browser or native application); PKCE required.
    Public,
}

impl ClientType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "confidential" => Some(Self::Confidential),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    /// Where codes may be sent: compared exactly, character for character.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to.
    pub post_logout_redirect_uris: Vec<String>,
    /// What a tenant client's `client_credentials` tokens may do, like a tenant API
    /// key's scopes; empty: the client has no `client_credentials` grant.
    pub scopes: BTreeSet<ScopeName>,
    /// The platform's or the tenant's own application: its sign-ins need no consent.
    /// A third-party client (`false`) is allowed by each user, per tenant, on a consent
    /// page, and the answer is kept as a [`Consent`] until revoked.
    pub first_party: bool,
    pub created_at: OffsetDateTime,
}

impl OAuthClient {
    /// Whether `uri` is one of the client's redirect URIs, exactly.
    pub fn redirects_to(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|known| known == uri)
    }

    /// Whether the client may use the `client_credentials` grant: a confidential tenant
    /// client with scopes.
    pub fn has_client_credentials(&self) -> bool {
        self.client_type == ClientType::Confidential
            && self.id.owner().is_some()
            && !self.scopes.is_empty()
    }
}

/// Checks a client's name: a display name (1 to [`CLIENT_NAME_MAX`] characters, no
/// control characters, no surrounding whitespace).
///
/// # Errors
/// What is wrong, for a 400 `invalid_request`.
pub fn check_client_name(name: &str) -> Result<(), String> {
    crate::ids::DisplayName::parse(name)
        .map(|_| ())
        .map_err(|error| format!("name {error}"))
}

/// The characters a host name of a redirect URI may hold (RFC 3986 `reg-name`, without
/// percent-decoding).
fn host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"._~%!$&'()*+,;=-".contains(&c)
}

/// Checks a redirect (or post-logout redirect) URI: printable ASCII without spaces or
/// `#` (no fragment, RFC 6749 §3.1.2), at most 2048 characters; `https://` with a host
/// (a name or an IPv4 address; no credentials; of IPv6 literals only `[::1]`), or
/// `http://` to the loopback
/// interface (`localhost`, `127.0.0.1`, `[::1]`; RFC 8252 §7.3); then an optional port of
/// digits, then an optional path or query. Exactly what [`REDIRECT_URI_PATTERN`] says.
///
/// # Errors
/// What is wrong, for a 400 `invalid_request`.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > 2048 || !uri.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'#') {
        return Err(
            "a redirect uri must be at most 2048 printable ASCII characters, without spaces or a fragment"
                .to_owned(),
        );
    }
    let (rest, loopback_only) = if let Some(rest) = uri.strip_prefix("https://") {
        (rest, false)
    } else if let Some(rest) = uri.strip_prefix("http://") {
        (rest, true)
    } else {
        return Err("a redirect uri must be https:// (http:// only to localhost)".to_owned());
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or_default();
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(close) => (
                authority.get(..=close).unwrap_or_default(),
                authority.get(close + 1..).unwrap_or_default(),
            ),
            None => return Err("a redirect uri's IPv6 host must be closed by ]".to_owned()),
        }
    } else {
        match authority.find(':') {
            Some(colon) => (
                authority.get(..colon).unwrap_or_default(),
                authority.get(colon..).unwrap_or_default(),
            ),
            None => (authority, ""),
        }
    };
    // A bracketed host is only ever the loopback `[::1]` (below): IPv6 literals other
    // than loopback are not redirect targets here.
    let host_ok = host == "[::1]" || (!host.is_empty() && host.bytes().all(host_char));
    if !host_ok {
        return Err("a redirect uri must name a host, without credentials".to_owned());
    }
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return Err("a redirect uri's port must be digits".to_owned());
    }
    if loopback_only && !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
        return Err("a redirect uri must be https:// (http:// only to localhost)".to_owned());
    }
    Ok(())
}

/// [`check_redirect_uri`] as a regular expression, for the OpenAPI document.
pub const REDIRECT_URI_PATTERN: &str = r#"^(?:https://(?:[A-Za-z0-9._~%!$&'()*+,;=-]+|\[::1\])|http://(?:localhost|127\.0\.0\.1|\[::1\]))(?::[0-9]*)?(?:[/?][!-"$-~]*)?$"#;

/// Checks a list of redirect URIs: each one valid, no duplicates, at most
/// [`REDIRECT_URIS_MAX`]; `required` says whether the list may be empty.
///
/// # Errors
/// What is wrong, for a 400 `invalid_request`.
pub fn check_redirect_uris(uris: &[String], what: &str, required: bool) -> Result<(), String> {
    if required && uris.is_empty() {
        return Err(format!("{what} must name at least one uri"));
    }
    if uris.len() > REDIRECT_URIS_MAX {
        return Err(format!("{what} may name at most {REDIRECT_URIS_MAX} uris"));
    }
    let distinct: BTreeSet<&String> = uris.iter().collect();
    if distinct.len() != uris.len() {
        return Err(format!("{what} must not repeat a uri"));
    }
    for uri in uris {
        check_redirect_uri(uri).map_err(|error| format!("{what}: {error}"))?;
    }
    Ok(())
}

/// The OpenID scopes of a request (`scope`, space-separated): `openid` required, each
/// one known, none repeated.
///
/// # Errors
/// What is wrong, for an `invalid_scope` answer.
pub fn parse_openid_scopes(scope: &str) -> Result<BTreeSet<String>, String> {
    let mut scopes = BTreeSet::new();
    for name in scope.split(' ').filter(|name| !name.is_empty()) {
        if !OPENID_SCOPES.contains(&name) {
            return Err(format!("unknown scope {name:?}"));
        }
        scopes.insert(name.to_owned());
    }
    if !scopes.contains("openid") {
        return Err("the scope must include openid".to_owned());
    }
    Ok(scopes)
}

/// A user's consent to a third-party client in one tenant: the OpenID scopes they
/// allowed it. A sign-in asking for no more needs no new consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub tenant: TenantId,
    pub user: UserId,
    pub client: ClientId,
    /// The OpenID scopes allowed, space-separated.
    pub scope: String,
    pub granted_at: OffsetDateTime,
}

impl Consent {
    /// The OpenID scopes allowed.
    pub fn scopes(&self) -> BTreeSet<String> {
        self.scope.split(' ').map(str::to_owned).collect()
    }

    /// Whether the consent covers every scope of `scope` (space-separated).
    pub fn covers(&self, scope: &str) -> bool {
        let allowed = self.scopes();
        scope
            .split(' ')
            .filter(|name| !name.is_empty())
            .all(|name| allowed.contains(name))
    }
}

/// What a code or refresh token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    /// An authorization code: redeemed once.
    Code,
    /// A refresh token: used once, replaced by the next of its family.
    Refresh,
}

impl GrantKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Refresh => "refresh",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "code" => Some(Self::Code),
            "refresh" => Some(Self::Refresh),
            _ => None,
        }
    }
}

/// A code or refresh token as stored (its secret only as a hash). A code and every
/// refresh token that follows from it form one family, revoked together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub tenant: TenantId,
    pub token_hash: String,
    pub kind: GrantKind,
    pub family: Uuid,
    pub client: ClientId,
    pub user: UserId,
    /// The provider session it came from: it ends with that session.
    pub session: SessionId,
    /// A code's redirect URI, which the redemption must repeat.
    pub redirect_uri: Option<String>,
    /// A code's PKCE challenge (`S256`).
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// The OpenID scopes granted, space-separated.
    pub scope: String,
    pub acr: Assurance,
    pub auth_time: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl Grant {
    /// Whether the grant may be used at `now`: not used, not revoked, not expired.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.used_at.is_none() && self.revoked_at.is_none() && now < self.expires_at
    }

    /// The OpenID scopes granted.
    pub fn scopes(&self) -> BTreeSet<String> {
        self.scope.split(' ').map(str::to_owned).collect()
    }
}

/// What using a grant found (a store's atomic take).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// It was live and is now used: the caller holds the only use.
    Fresh(Grant),
    /// It exists but was used, revoked or has expired.
    Spent(Grant),
    /// No such grant.
    Unknown,
}

/// A code or refresh token's value: `<tenant>.<secret>`, so the tenant it belongs to is
/// named before anything is read.
pub fn grant_token(tenant: &TenantId, secret: &str) -> String {
    format!("{tenant}.{secret}")
}

/// The tenant a code or refresh token names; `None` when the value has no valid tenant.
pub fn grant_tenant(token: &str) -> Option<TenantId> {
    let (tenant, secret) = token.split_once('.')?;
    if secret.is_empty() {
        return None;
    }
    TenantId::parse(tenant).ok()
}

/// Whether `verifier` answers the `S256` `challenge` (RFC 7636 §4.6): the verifier 43 to
/// 128 unreserved characters, its SHA-256 in base64url without padding equal to the
/// challenge.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine as _;
    use sha2::Digest;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let digest = sha2::Sha256::digest(verifier.as_bytes());
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

/// Whether a `code_challenge` is well formed for `S256`: 43 base64url characters.
pub fn challenge_well_formed(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The authentication methods (RFC 8176) an assurance level stands for.
pub fn amr(acr: Assurance) -> Vec<&'static str> {
    match acr {
        Assurance::Aal1 => vec!["pwd"],
        Assurance::Aal2 => vec!["pwd", "otp", "mfa"],
    }
}

/// The `at_hash` of an access token signed with a SHA-256 algorithm (OpenID Connect
/// Core §3.1.3.6): the left half of its SHA-256, base64url without padding.
pub fn at_hash(access_token: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.get(..16).unwrap_or_default())
}

/// Who a token was issued to and for what: the common part of its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    pub issuer: String,
    pub client: ClientId,
    pub tenant: TenantId,
    pub user: UserId,
    pub session: SessionId,
    pub acr: Assurance,
    pub auth_time: OffsetDateTime,
    pub scope: String,
}

/// The claims of an RFC 9068 access token for a user.
pub fn access_claims(subject: &TokenSubject, jti: Uuid, now: OffsetDateTime) -> Value {
    json!({
        "iss": subject.issuer,
        "sub": subject.user.to_string(),
        "aud": subject.client.to_string(),
        "client_id": subject.client.to_string(),
        "iat": now.unix_timestamp(),
        "exp": (now + TOKEN_TTL).unix_timestamp(),
        "jti": jti.hyphenated().to_string(),
        "scope": subject.scope,
        "tenant": subject.tenant.as_str(),
        "sid": subject.session.to_string(),
        "acr": subject.acr.as_str(),
        "amr": amr(subject.acr),
        "auth_time": subject.auth_time.unix_timestamp(),
    })
}

/// The claims of an RFC 9068 access token a tenant client got for itself
/// (`client_credentials`): `sub` is the client.
pub fn client_access_claims(
    issuer: &str,
    client: &ClientId,
    tenant: &TenantId,
    scopes: &BTreeSet<ScopeName>,
    jti: Uuid,
    now: OffsetDateTime,
) -> Value {
    let scope = scopes
        .iter()
        .map(ScopeName::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "iss": issuer,
        "sub": client.to_string(),
        "aud": client.to_string(),
        "client_id": client.to_string(),
        "iat": now.unix_timestamp(),
        "exp": (now + TOKEN_TTL).unix_timestamp(),
        "jti": jti.hyphenated().to_string(),
        "scope": scope,
        "tenant": tenant.as_str(),
    })
}

/// The claims of an ID token; `email` when the `email` scope was granted.
pub fn id_claims(
    subject: &TokenSubject,
    nonce: Option<&str>,
    access_token: &str,
    email: Option<(&str, bool)>,
    now: OffsetDateTime,
) -> Value {
    let mut claims = Map::new();
    let mut put = |name: &str, value: Value| {
        claims.insert(name.to_owned(), value);
    };
    put("iss", json!(subject.issuer));
    put("sub", json!(subject.user.to_string()));
    put("aud", json!(subject.client.to_string()));
    put("azp", json!(subject.client.to_string()));
    put("iat", json!(now.unix_timestamp()));
    put("exp", json!((now + TOKEN_TTL).unix_timestamp()));
    put("auth_time", json!(subject.auth_time.unix_timestamp()));
    put("tenant", json!(subject.tenant.as_str()));
    put("sid", json!(subject.session.to_string()));
    put("acr", json!(subject.acr.as_str()));
    put("amr", json!(amr(subject.acr)));
    put("at_hash", json!(at_hash(access_token)));
    if let Some(nonce) = nonce {
        put("nonce", json!(nonce));
    }
    if let Some((address, verified)) = email {
        put("email", json!(address));
        put("email_verified", json!(verified));
    }
    Value::Object(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::expect_used, reason = "a literal that parses")]
    fn a_consent_covers_the_scopes_it_allowed_and_no_more() {
        let consent = Consent {
            tenant: TenantId::parse("acme").expect("tenant"),
            user: UserId::from_generated(Uuid::from_u128(7)),
            client: ClientId::platform(Uuid::from_u128(8)),
            scope: "email openid".to_owned(),
            granted_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(consent.covers("openid"));
        assert!(consent.covers("openid email"));
        assert!(!consent.covers("openid profile"));
        assert!(!consent.covers("openid email profile"));
    }

    #[test]
    fn a_client_id_names_its_owner_and_round_trips() {
        let id = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
        let tenant = TenantId::parse("acme").ok();
        let platform = ClientId::platform(id);
        assert_eq!(
            ClientId::parse(&platform.to_string()),
            Some(platform.clone())
        );
        assert_eq!(platform.owner(), None);
        if let Some(tenant) = tenant {
            let scoped = ClientId::tenant(tenant.clone(), id);
            assert!(scoped.to_string().starts_with("acme."));
            assert_eq!(ClientId::parse(&scoped.to_string()), Some(scoped.clone()));
            assert_eq!(scoped.owner(), Some(&tenant));
        }
        for bad in [
            "",
            "acme.",
            "Acme.01930000-0000-7000-8000-000000000001",
            "01930000000070008000000000000001",
            "01930000-0000-7000-8000-00000000000A",
            "a.b.01930000-0000-7000-8000-000000000001",
        ] {
            assert_eq!(ClientId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn redirect_uris_are_https_or_loopback_without_fragments() {
        for good in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://localhost:8000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:9000/cb",
        ] {
            assert_eq!(check_redirect_uri(good), Ok(()), "{good}");
        }
        for bad in [
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "https:///cb",
            "javascript:alert(1)",
            "https://app.example.com/a b",
            "/relative",
            "https://[::1/cb",
            "https://host:80x/cb",
            "https://:443/cb",
            "https://h\u{e9}.example/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
        let twice = vec!["https://a.example/cb".to_owned(); 2];
        assert!(check_redirect_uris(&twice, "redirect_uris", true).is_err());
        assert!(check_redirect_uris(&[], "redirect_uris", true).is_err());
        assert_eq!(
            check_redirect_uris(&[], "post_logout_redirect_uris", false),
            Ok(())
        );
    }

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(challenge_well_formed(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
        assert!(!challenge_well_formed("plain-challenge"));
    }

    #[test]
    fn openid_scopes_need_openid_and_known_names() {
        assert_eq!(parse_openid_scopes("openid  email").map(|s| s.len()), Ok(2));
        assert!(parse_openid_scopes("email").is_err());
        assert!(parse_openid_scopes("openid admin").is_err());
    }

    #[test]
    fn a_grant_token_names_its_tenant() {
        let tenant = TenantId::parse("acme").ok();
        if let Some(tenant) = tenant {
            let token = grant_token(&tenant, "s3cret");
            assert_eq!(grant_tenant(&token), Some(tenant));
        }
        assert_eq!(grant_tenant("nodot"), None);
        assert_eq!(grant_tenant("acme."), None);
        assert_eq!(grant_tenant("ACME.x"), None);
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OpenID Connect Core, A.3 example (access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
