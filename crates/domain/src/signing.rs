//! The OpenID provider's signing keys (SPEC §9): what the store keeps of each key, which
//! keys sign and which the JWKS publishes, and the [`KeyVault`] port that makes them.
//!
//! A key is made by the vault (an adapter: key generation and the key-encryption key are
//! not the domain's), stored with its private part sealed under the key-encryption key,
//! and retired by the next rotation. A retired key signs nothing more but stays in the
//! JWKS for [`TOKEN_LIFETIME_MAX`], so every token it signed verifies until it expires.

use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime};

/// The longest a token signed by a key stays valid (ID tokens; access tokens live 5
/// minutes): how long a retired key stays published.
pub const TOKEN_LIFETIME_MAX: Duration = Duration::hours(1);

/// The JWS algorithms the provider signs with (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl SigningAlgorithm {
    /// Every algorithm, in the order a rotation makes them.
    pub const ALL: [Self; 2] = [Self::Rs256, Self::Es256];

    /// The JOSE name (`alg`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }

    /// The algorithm named `name` (`RS256`, `ES256`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == name)
    }
}

/// One signing key as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// The key id (`kid`): unique, never reused.
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    /// The public key as a JWK's key members (`kty`, `n`/`e` or `crv`/`x`/`y`).
    pub public_jwk: Value,
    /// The private key, sealed by the [`KeyVault`] under the key-encryption key: the
    /// store never holds it in the clear.
    pub sealed_private: Vec<u8>,
    pub created_at: OffsetDateTime,
    /// When a rotation replaced it; a retired key signs nothing more.
    pub retired_at: Option<OffsetDateTime>,
}

impl SigningKey {
    /// Whether the key signs new tokens.
    pub fn is_active(&self) -> bool {
        self.retired_at.is_none()
    }

    /// Whether the JWKS lists the key at `now`: while it signs, and for
    /// [`TOKEN_LIFETIME_MAX`] after it was retired.
    pub fn is_published(&self, now: OffsetDateTime) -> bool {
        self.retired_at
            .is_none_or(|retired| now < retired + TOKEN_LIFETIME_MAX)
    }

    /// The key as a member of a JWK Set (RFC 7517): its public members, `kid`, `alg` and
    /// `use: sig`; never anything private.
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.public_jwk {
            Value::Object(members) => members.clone(),
            _ => Map::new(),
        };
        jwk.insert("kid".to_owned(), Value::String(self.kid.clone()));
        jwk.insert(
            "alg".to_owned(),
            Value::String(self.algorithm.as_str().to_owned()),
        );
        jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
        Value::Object(jwk)
    }
}

/// The JWK Set of `keys` at `now`: the published ones, newest first.
pub fn jwks(keys: &[SigningKey], now: OffsetDateTime) -> Value {
    let mut published: Vec<&SigningKey> = keys.iter().filter(|key| key.is_published(now)).collect();
    published.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.kid.cmp(&b.kid)));
    json!({ "keys": published.iter().map(|key| key.jwk()).collect::<Vec<_>>() })
}

/// A key the vault made: its public JWK members and its sealed private part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub public_jwk: Value,
    pub sealed_private: Vec<u8>,
}

/// Why the vault could not make or open a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// Makes signing keys, seals their private parts under the key-encryption key, and signs
/// with them.
pub trait KeyVault: Send + Sync {
    /// A new key pair for `algorithm`, its private part sealed and bound to `kid` (a
    /// sealed key moved to another id does not open).
    ///
    /// # Errors
    /// When generation or sealing fails.
    fn generate(&self, algorithm: SigningAlgorithm, kid: &str) -> Result<NewKey, KeyError>;

    /// `claims` as a JWT (RFC 7519, JWS compact serialisation) signed by `key`, its
    /// header naming the key's `alg` and `kid` and the type `typ` (`JWT`, `at+jwt`).
    ///
    /// # Errors
    /// When the key does not open (another key-encryption key, altered bytes) or
    /// signing fails.
    fn sign(&self, key: &SigningKey, typ: &str, claims: &Value) -> Result<String, KeyError>;

    /// The claims of `token` when it is a JWS compact token of type `typ` signed by the
    /// one of `keys` its header's `kid` names, with that key's `alg`. It checks only the
    /// signature and header: the claims (`iss`, `exp`, …) are the caller's to check.
    ///
    /// # Errors
    /// For anything else: malformed, unknown `kid`, another `alg` or `typ`, a signature
    /// that does not verify.
    fn verify(&self, keys: &[SigningKey], typ: &str, token: &str) -> Result<Value, KeyError>;
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key(kid: &str, created: OffsetDateTime, retired: Option<OffsetDateTime>) -> SigningKey {
        SigningKey {
            kid: kid.to_owned(),
            algorithm: SigningAlgorithm::Es256,
            public_jwk: json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "BB"}),
            sealed_private: vec![1, 2, 3],
            created_at: created,
            retired_at: retired,
        }
    }

    #[test]
    fn a_retired_key_stays_published_for_the_longest_token_lifetime() {
        let t0 = datetime!(2026-12-04 12:00 UTC);
        let retired = t0 + Duration::minutes(10);
        let old = key("old", t0, Some(retired));
        let new = key("new", retired, None);
        let keys = [old.clone(), new];
        let listed = |at| {
            jwks(&keys, at)["keys"]
                .as_array()
                .map(|keys| {
                    keys.iter()
                        .map(|key| key["kid"].as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        assert_eq!(listed(retired), ["new", "old"]);
        assert_eq!(
            listed(retired + TOKEN_LIFETIME_MAX - Duration::seconds(1)),
            ["new", "old"]
        );
        assert_eq!(listed(retired + TOKEN_LIFETIME_MAX), ["new"]);
        assert!(!old.is_active());
    }

    #[test]
    fn a_jwk_carries_the_public_members_and_nothing_sealed() {
        let jwk = key("k1", datetime!(2026-12-04 12:00 UTC), None).jwk();
        assert_eq!(jwk["kid"], "k1");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["crv"], "P-256");
        assert!(jwk.get("d").is_none());
        assert_eq!(
            SigningAlgorithm::parse("RS256"),
            Some(SigningAlgorithm::Rs256)
        );
        assert_eq!(SigningAlgorithm::parse("none"), None);
    }
}
