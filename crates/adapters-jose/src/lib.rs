//! The OpenID provider's keys (SPEC §9): [`SealingVault`], the domain's
//! [`KeyVault`], makes RS256 (RSA 2048) and ES256 (P-256) key pairs, gives their public
//! halves as JWK members and seals their private halves (PKCS#8 DER) with
//! ChaCha20-Poly1305 under the key-encryption key, bound to the key's id and algorithm,
//! and signs JWTs with them (JWS compact serialisation; RS256 as RSASSA-PKCS1-v1_5
//! SHA-256, ES256 as the fixed-length `r || s` of RFC 7518 §3.4).
//!
//! The key-encryption key is 32 random bytes, base64 in a file
//! (`USER_ENGINE_KEY_ENCRYPTION_KEY_FILE`; `openssl rand -base64 32`). Without it a sealed
//! key cannot be opened: the database alone never yields a private key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use domain::signing::{KeyError, KeyVault, NewKey, SigningAlgorithm, SigningKey};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;

/// The first byte of a sealed key: the sealing format, so it can change later.
const SEAL_VERSION: u8 = 1;
/// RSA modulus size (RFC 7518 §3.3 asks for at least 2048).
const RSA_BITS: usize = 2048;

/// How many opened key pairs a vault keeps (two sign at a time; retired ones verify
/// only, with their public halves).
const OPENED_MAX: usize = 16;

/// A private key opened and parsed, ready to sign.
enum Opened {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// Makes keys and seals their private parts under one key-encryption key. Opened key
/// pairs are kept in memory by id and sealed content, so a signature does not unseal
/// and parse its key again (parsing an RSA key costs more than signing with it).
pub struct SealingVault {
    key: LessSafeKey,
    random: SystemRandom,
    opened: Mutex<HashMap<SealedId, Arc<Opened>>>,
}

/// A stored key's id and sealed private part: what an opened pair is kept under.
type SealedId = (String, Vec<u8>);

impl std::fmt::Debug for SealingVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingVault").finish_non_exhaustive()
    }
}

impl SealingVault {
    /// A vault sealing under `key` (32 bytes).
    ///
    /// # Errors
    /// When `key` is not 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, KeyError> {
        if key.len() != 32 {
            return Err(KeyError(format!(
                "the key-encryption key must be 32 bytes, not {}",
                key.len()
            )));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, key)
            .map_err(|_| KeyError("the key-encryption key was refused".to_owned()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            random: SystemRandom::new(),
            opened: Mutex::new(HashMap::new()),
        })
    }

    /// A vault with the key-encryption key read from `path`: 32 bytes in base64 (what
    /// `openssl rand -base64 32` writes), surrounding whitespace ignored.
    ///
    /// # Errors
    /// When the file cannot be read or does not hold 32 bytes in base64; the message
    /// names the file, never its content.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            KeyError(format!(
                "the key-encryption key file {} cannot be read: {error}",
                path.display()
            ))
        })?;
        let key = STANDARD.decode(text.trim()).map_err(|_| {
            KeyError(format!(
                "the key-encryption key file {} must hold 32 random bytes in base64 \
                 (openssl rand -base64 32)",
                path.display()
            ))
        })?;
        Self::new(&key)
    }

    /// A vault under a fresh random key-encryption key that nothing else knows (a
    /// benchmark's, a test's).
    ///
    /// # Errors
    /// When the system's randomness fails.
    pub fn random() -> Result<Self, KeyError> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| KeyError("no randomness".to_owned()))?;
        Self::new(&key)
    }

    /// A new key-encryption key, in the file's form (base64 of 32 random bytes).
    ///
    /// # Errors
    /// When the system's randomness fails.
    pub fn new_key_file_content() -> Result<String, KeyError> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| KeyError("no randomness".to_owned()))?;
        Ok(format!("{}\n", STANDARD.encode(key)))
    }

    /// The private key (PKCS#8 DER) of a stored key.
    ///
    /// # Errors
    /// When the key was sealed under another key-encryption key, for another id or
    /// algorithm, or was altered.
    pub fn open(&self, key: &SigningKey) -> Result<Vec<u8>, KeyError> {
        let refused = || KeyError(format!("signing key {} does not open", key.kid));
        let (version, rest) = key.sealed_private.split_first().ok_or_else(refused)?;
        if *version != SEAL_VERSION {
            return Err(refused());
        }
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN).ok_or_else(refused)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut buffer = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(
                nonce,
                Aad::from(additional_data(key.algorithm, &key.kid)),
                &mut buffer,
            )
            .map_err(|_| refused())?;
        Ok(plain.to_vec())
    }

    /// `key`'s pair, opened and parsed once and then kept.
    fn opened_pair(&self, key: &SigningKey) -> Result<Arc<Opened>, KeyError> {
        let id = (key.kid.clone(), key.sealed_private.clone());
        if let Some(pair) = self
            .opened
            .lock()
            .ok()
            .and_then(|kept| kept.get(&id).cloned())
        {
            return Ok(pair);
        }
        let private = self.open(key)?;
        let failed = || KeyError(format!("signing key {} does not parse", key.kid));
        let pair = Arc::new(match key.algorithm {
            SigningAlgorithm::Rs256 => {
                Opened::Rsa(RsaKeyPair::from_pkcs8(&private).map_err(|_| failed())?)
            }
            SigningAlgorithm::Es256 => Opened::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &private, &self.random)
                    .map_err(|_| failed())?,
            ),
        });
        if let Ok(mut kept) = self.opened.lock() {
            if kept.len() >= OPENED_MAX {
                kept.clear();
            }
            kept.insert(id, Arc::clone(&pair));
        }
        Ok(pair)
    }

    fn seal(
        &self,
        algorithm: SigningAlgorithm,
        kid: &str,
        private: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| KeyError("no randomness".to_owned()))?;
        let mut buffer = private.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(additional_data(algorithm, kid)),
                &mut buffer,
            )
            .map_err(|_| KeyError("the key could not be sealed".to_owned()))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + buffer.len());
        sealed.push(SEAL_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&buffer);
        Ok(sealed)
    }
}

/// What a seal is bound to: a sealed key copied to another id or algorithm does not open.
fn additional_data(algorithm: SigningAlgorithm, kid: &str) -> Vec<u8> {
    format!("user-engine signing key\n{}\n{kid}", algorithm.as_str()).into_bytes()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl KeyVault for SealingVault {
    fn generate(&self, algorithm: SigningAlgorithm, kid: &str) -> Result<NewKey, KeyError> {
        let (public_jwk, private) = match algorithm {
            SigningAlgorithm::Rs256 => {
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                    .map_err(|error| KeyError(format!("RSA key generation: {error}")))?;
                let public = json!({
                    "kty": "RSA",
                    "n": b64(&key.n().to_bytes_be()),
                    "e": b64(&key.e().to_bytes_be()),
                });
                let der = key
                    .to_pkcs8_der()
                    .map_err(|error| KeyError(format!("RSA key encoding: {error}")))?;
                (public, der.as_bytes().to_vec())
            }
            SigningAlgorithm::Es256 => {
                let document =
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.random)
                        .map_err(|_| KeyError("P-256 key generation failed".to_owned()))?;
                let pair = EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    document.as_ref(),
                    &self.random,
                )
                .map_err(|_| KeyError("P-256 key refused".to_owned()))?;
                // An uncompressed point: 0x04, then x and y, 32 bytes each.
                let point = pair.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .and_then(|coordinates| coordinates.split_at_checked(32))
                    .ok_or_else(|| KeyError("P-256 public key malformed".to_owned()))?;
                let public = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
                (public, document.as_ref().to_vec())
            }
        };
        Ok(NewKey {
            public_jwk,
            sealed_private: self.seal(algorithm, kid, &private)?,
        })
    }

    fn sign(
        &self,
        key: &SigningKey,
        typ: &str,
        claims: &serde_json::Value,
    ) -> Result<String, KeyError> {
        let header = json!({"alg": key.algorithm.as_str(), "kid": key.kid, "typ": typ});
        let encode = |value: &serde_json::Value| {
            serde_json::to_vec(value)
                .map(|bytes| b64(&bytes))
                .map_err(|error| KeyError(format!("claims not encoded: {error}")))
        };
        let input = format!("{}.{}", encode(&header)?, encode(claims)?);
        let failed = || KeyError(format!("signing with key {} failed", key.kid));
        let opened = self.opened_pair(key)?;
        let signature = match opened.as_ref() {
            Opened::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &self.random,
                    input.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| failed())?;
                signature
            }
            Opened::Ec(pair) => pair
                .sign(&self.random, input.as_bytes())
                .map_err(|_| failed())?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{input}.{}", b64(&signature)))
    }

    fn verify(
        &self,
        keys: &[SigningKey],
        typ: &str,
        token: &str,
    ) -> Result<serde_json::Value, KeyError> {
        let refused = |why: &str| KeyError(format!("token refused: {why}"));
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused("not a JWS compact token"));
        };
        let decode = |part: &str| -> Result<serde_json::Value, KeyError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| refused("not base64url"))?;
            serde_json::from_slice(&bytes).map_err(|_| refused("not JSON"))
        };
        let head = decode(header)?;
        let key = keys
            .iter()
            .find(|key| member_str(&head, "kid") == Some(key.kid.as_str()))
            .ok_or_else(|| refused("unknown kid"))?;
        if member_str(&head, "alg") != Some(key.algorithm.as_str())
            || member_str(&head, "typ") != Some(typ)
        {
            return Err(refused("unexpected alg or typ"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| refused("signature not base64url"))?;
        let input = format!("{header}.{payload}");
        if !verify_signature(key, input.as_bytes(), &signature) {
            return Err(refused("bad signature"));
        }
        decode(payload)
    }
}

/// The string member `name` of a JSON object, if there is one.
fn member_str<'a>(object: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    object.get(name).and_then(serde_json::Value::as_str)
}

/// Verifies `signature` over `input` with the public key of `key`'s JWK.
fn verify_signature(key: &SigningKey, input: &[u8], signature: &[u8]) -> bool {
    let member = |name: &str| {
        member_str(&key.public_jwk, name).and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
    };
    match key.algorithm {
        SigningAlgorithm::Rs256 => {
            let (Some(n), Some(e)) = (member("n"), member("e")) else {
                return false;
            };
            ring::signature::RsaPublicKeyComponents { n, e }
                .verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    input,
                    signature,
                )
                .is_ok()
        }
        SigningAlgorithm::Es256 => {
            let (Some(x), Some(y)) = (member("x"), member("y")) else {
                return false;
            };
            let mut point = vec![4u8];
            point.extend(x);
            point.extend(y);
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .verify(input, signature)
            .is_ok()
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]
mod tests {
    use super::*;
    use ring::signature::{
        RsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256,
        RSA_PKCS1_SHA256,
    };

    fn stored(algorithm: SigningAlgorithm, kid: &str, key: NewKey) -> SigningKey {
        SigningKey {
            kid: kid.to_owned(),
            algorithm,
            public_jwk: key.public_jwk,
            sealed_private: key.sealed_private,
            created_at: time_zero(),
            retired_at: None,
        }
    }

    fn time_zero() -> time::OffsetDateTime {
        time::OffsetDateTime::UNIX_EPOCH
    }

    #[test]
    fn an_es256_key_signs_what_its_jwk_verifies_once_opened() {
        let vault = SealingVault::new(&[7; 32]).unwrap();
        let key = stored(
            SigningAlgorithm::Es256,
            "k1",
            vault.generate(SigningAlgorithm::Es256, "k1").unwrap(),
        );
        let private = vault.open(&key).unwrap();
        let random = SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &private, &random).unwrap();
        let signature = pair.sign(&random, b"header.payload").unwrap();
        let jwk = &key.public_jwk;
        let mut point = vec![4u8];
        point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(b"header.payload", signature.as_ref())
            .unwrap();
    }

    #[test]
    fn an_rs256_key_signs_what_its_jwk_verifies_once_opened() {
        let vault = SealingVault::new(&[9; 32]).unwrap();
        let key = stored(
            SigningAlgorithm::Rs256,
            "k2",
            vault.generate(SigningAlgorithm::Rs256, "k2").unwrap(),
        );
        let pair = RsaKeyPair::from_pkcs8(&vault.open(&key).unwrap()).unwrap();
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            b"header.payload",
            &mut signature,
        )
        .unwrap();
        let n = URL_SAFE_NO_PAD
            .decode(key.public_jwk["n"].as_str().unwrap())
            .unwrap();
        let e = URL_SAFE_NO_PAD
            .decode(key.public_jwk["e"].as_str().unwrap())
            .unwrap();
        assert_eq!(n.len(), 256);
        ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, b"header.payload", &signature)
            .unwrap();
    }

    #[test]
    fn a_sealed_key_opens_only_under_its_kek_id_and_algorithm() {
        let vault = SealingVault::new(&[1; 32]).unwrap();
        let key = stored(
            SigningAlgorithm::Es256,
            "k3",
            vault.generate(SigningAlgorithm::Es256, "k3").unwrap(),
        );
        let private = vault.open(&key).unwrap();
        // The sealed bytes do not hold the private key in the clear.
        assert!(!key
            .sealed_private
            .windows(private.len().min(32))
            .any(|window| private.windows(window.len()).any(|part| part == window)));
        assert!(SealingVault::new(&[2; 32]).unwrap().open(&key).is_err());
        let moved = SigningKey {
            kid: "k4".to_owned(),
            ..key.clone()
        };
        assert!(vault.open(&moved).is_err());
        let mut altered = key.clone();
        if let Some(last) = altered.sealed_private.last_mut() {
            *last ^= 1;
        }
        assert!(vault.open(&altered).is_err());
        assert!(SealingVault::new(&[1; 16]).is_err());
    }

    fn verify(key: &SigningKey, input: &[u8], signature: &[u8]) -> bool {
        verify_signature(key, input, signature)
    }

    #[test]
    fn a_signed_jwt_names_its_key_and_verifies_with_its_jwk_only() {
        let vault = SealingVault::new(&[3; 32]).unwrap();
        let claims = json!({"iss": "https://id.example", "sub": "u1", "exp": 2_000_000_000});
        let keys: Vec<SigningKey> = SigningAlgorithm::ALL
            .into_iter()
            .enumerate()
            .map(|(index, algorithm)| {
                let kid = format!("k{index}");
                stored(algorithm, &kid, vault.generate(algorithm, &kid).unwrap())
            })
            .collect();
        for (key, other) in keys.iter().zip(keys.iter().rev()) {
            let token = vault.sign(key, "JWT", &claims).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            assert_eq!(
                header,
                json!({"alg": key.algorithm.as_str(), "kid": key.kid, "typ": "JWT"})
            );
            let payload: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            assert_eq!(payload, claims);
            let input = format!("{}.{}", parts[0], parts[1]);
            let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
            assert!(verify(key, input.as_bytes(), &signature));
            assert!(!verify(other, input.as_bytes(), &signature));
            assert!(!verify(key, b"another.input", &signature));
        }
        let stranger = SealingVault::new(&[4; 32]).unwrap();
        assert!(stranger.sign(&keys[0], "JWT", &claims).is_err());
        // The vault's own verification: the right key and type only.
        for key in &keys {
            let token = vault.sign(key, "at+jwt", &claims).unwrap();
            assert_eq!(vault.verify(&keys, "at+jwt", &token).unwrap(), claims);
            assert!(vault.verify(&keys, "JWT", &token).is_err());
            assert!(vault.verify(&[], "at+jwt", &token).is_err());
            let mut forged = token.clone();
            forged.push('A');
            assert!(vault.verify(&keys, "at+jwt", &forged).is_err());
            let parts: Vec<&str> = token.split('.').collect();
            let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), parts[1]);
            assert!(vault.verify(&keys, "at+jwt", &none).is_err());
        }
    }

    #[test]
    fn a_key_file_holds_32_bytes_in_base64() {
        let dir = std::env::temp_dir().join(format!("kek-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kek");
        std::fs::write(&path, SealingVault::new_key_file_content().unwrap()).unwrap();
        assert!(SealingVault::from_file(&path).is_ok());
        std::fs::write(&path, "not base64 at all").unwrap();
        let refused = SealingVault::from_file(&path).unwrap_err();
        assert!(refused.0.contains("openssl rand -base64 32"), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
