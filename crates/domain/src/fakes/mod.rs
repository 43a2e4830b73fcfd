//! In-memory implementations of every port, for tests and benchmarks (feature `fakes`).
//!
//! [`MemStore`] is transactional: a transaction works on a copy of the state taken under
//! a store-wide lock and publishes it only on commit, so a failing use case leaves no
//! trace, and transactions are serialised like the partition locks of a real store.
//! Like row-level security, a tenant-scoped transaction refuses to touch another
//! tenant's rows (here loudly, with an error, so a leak fails the test that caused it).

mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

pub use store::{MemState, MemStore, MemberRow};

use crate::ports::{Clock, HashError, IdGenerator, PasswordHasher, SecretGenerator, TotpVerifier};
use crate::usecases::{Engine, EngineConfig, Ports};

/// A clock that stands still until told to move.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Mutex::new(crate::audit::truncate_to_micros(start)))
    }

    /// 2026-01-01T00:00:00Z.
    pub fn default_start() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub fn advance(&self, by: time::Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        self.0
            .lock()
            .map(|now| *now)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// UUID v7 values from a counter: deterministic, unique, increasing.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn new_v7(&self) -> Uuid {
        let counter = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        // 48-bit millisecond field from the counter keeps values ordered; the rest
        // carries the counter again so every value is distinct.
        let millis = 1_767_225_600_000_u64 + counter;
        let mut bytes = [0_u8; 16];
        for (slot, byte) in bytes.iter_mut().zip(millis.to_be_bytes().iter().skip(2)) {
            *slot = *byte;
        }
        for (slot, byte) in bytes.iter_mut().skip(8).zip(counter.to_be_bytes()) {
            *slot = byte;
        }
        uuid::Builder::from_bytes(bytes)
            .with_version(uuid::Version::SortRand)
            .with_variant(uuid::Variant::RFC4122)
            .into_uuid()
    }
}

/// Secrets from a counter: unique and predictable, never for production.
#[derive(Debug, Default)]
pub struct CountingSecrets(AtomicU64);

impl SecretGenerator for CountingSecrets {
    fn token(&self) -> String {
        let counter = self.0.fetch_add(1, Ordering::Relaxed);
        hex::encode(Sha256::digest(counter.to_be_bytes()))
    }

    fn totp_secret(&self) -> String {
        let counter = self.0.fetch_add(1, Ordering::Relaxed);
        format!("FAKESECRET{counter:022}")
    }
}

/// A password "hash" that is the SHA-256 of the password: fast, for tests only.
#[derive(Debug, Default)]
pub struct FastPasswordHasher;

#[async_trait]
impl PasswordHasher for FastPasswordHasher {
    async fn hash(&self, password: &str) -> Result<String, HashError> {
        Ok(format!(
            "fake${}",
            hex::encode(Sha256::digest(password.as_bytes()))
        ))
    }

    async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let expected = format!("fake${}", hex::encode(Sha256::digest(password.as_bytes())));
        Ok(hash.is_some_and(|hash| hash == expected))
    }
}

/// A TOTP stand-in: the code of a 30-second step is six digits derived from the secret
/// and the step, so tests can compute it with [`FakeTotp::code`].
#[derive(Debug, Default)]
pub struct FakeTotp;

impl FakeTotp {
    pub fn step(now: OffsetDateTime) -> u64 {
        u64::try_from(now.unix_timestamp() / 30).unwrap_or(0)
    }

    pub fn code(secret: &str, step: u64) -> String {
        let digest = Sha256::digest(format!("{secret}:{step}").as_bytes());
        let number = digest
            .iter()
            .take(4)
            .fold(0_u32, |acc, byte| (acc << 8) | u32::from(*byte));
        format!("{:06}", number % 1_000_000)
    }
}

impl TotpVerifier for FakeTotp {
    fn verify(&self, secret: &str, code: &str, now: OffsetDateTime) -> Option<u64> {
        let step = Self::step(now);
        [step.saturating_sub(1), step, step + 1]
            .into_iter()
            .find(|candidate| Self::code(secret, *candidate) == code)
    }

    fn provisioning_uri(&self, secret: &str, account: &str) -> String {
        format!("otpauth://totp/user-engine:{account}?secret={secret}&issuer=user-engine")
    }
}

/// An engine over in-memory fakes, with handles to the store and clock.
#[derive(Debug, Clone)]
pub struct FakeEngine {
    pub engine: Engine,
    pub store: Arc<MemStore>,
    pub clock: Arc<ManualClock>,
}

impl FakeEngine {
    pub fn new() -> Self {
        let store = Arc::new(MemStore::new());
        let clock = Arc::new(ManualClock::new(ManualClock::default_start()));
        let engine = Engine::new(
            Ports {
                store: store.clone(),
                clock: clock.clone(),
                ids: Arc::new(SequentialIds::default()),
                secrets: Arc::new(CountingSecrets::default()),
                passwords: Arc::new(FastPasswordHasher),
                totp: Arc::new(FakeTotp),
            },
            EngineConfig::default(),
        );
        Self {
            engine,
            store,
            clock,
        }
    }
}

impl Default for FakeEngine {
    fn default() -> Self {
        Self::new()
    }
}
