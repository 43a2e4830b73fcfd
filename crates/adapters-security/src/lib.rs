//! Production adapters of the domain's ports: argon2id password hashing, RFC 6238 TOTP,
//! random secrets, the system clock and UUID v7 ids.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Argon2, Block, Params};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use domain::ports::{
    Clock, HashError, IdGenerator, PasswordHasher, SecretGenerator, Store, TotpVerifier,
};
use domain::usecases::Ports;
use rand::rngs::OsRng;
use rand::RngCore as _;
use time::OffsetDateTime;
use uuid::Uuid;

/// The wall clock in UTC, truncated to microseconds like every stored timestamp, so a
/// value read back from PostgreSQL equals the one the use case saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        domain::audit::truncate_to_micros(OffsetDateTime::now_utc())
    }
}

/// UUID v7 values from the system clock and OS randomness.
#[derive(Debug, Default, Clone, Copy)]
pub struct V7Ids;

impl IdGenerator for V7Ids {
    fn new_v7(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Secrets from the operating system's CSPRNG.
///
/// The port cannot fail, so if the OS refuses randomness `OsRng` panics inside `rand`:
/// failing the request is the only safe outcome, a weak token never is.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsSecrets;

/// Bytes of a session, invitation or API key token (256 bits).
const TOKEN_BYTES: usize = 32;
/// Bytes of a TOTP secret: the 160 bits RFC 4226 §4 recommends.
const TOTP_SECRET_BYTES: usize = 20;

impl SecretGenerator for OsSecrets {
    fn token(&self) -> String {
        let mut bytes = [0_u8; TOKEN_BYTES];
        OsRng.fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn totp_secret(&self) -> String {
        let mut bytes = [0_u8; TOTP_SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        base32_encode(&bytes)
    }
}

/// RFC 4648 base32 without padding, the form authenticator apps expect in `otpauth://`
/// URIs. Small enough to keep here rather than add a crate for it.
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(base32_digit(buffer >> bits));
        }
        // Only the bits not yet emitted are kept, so the buffer never overflows.
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(base32_digit(buffer << (5 - bits)));
    }
    out
}

/// The RFC 4648 alphabet symbol of the low five bits of `value`.
fn base32_digit(value: u32) -> char {
    let value = value & 0x1f;
    let (base, offset) = if value < 26 {
        (b'A', value)
    } else {
        (b'2', value - 26)
    };
    // `offset` is below 26, so the sum stays inside the alphabet.
    char::from(base + u8::try_from(offset).unwrap_or(0))
}

/// A unit of hashing work, given the working memory of the thread that runs it.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// One thread per core that does nothing but hash, each with its own working memory
/// (19 MiB at the OWASP parameters) kept for its lifetime. Hashing is pure CPU and
/// memory bandwidth, so running more at once than there are cores only makes each slower
/// and evicts the others' memory from the caches; waiting jobs queue without holding a
/// thread, and a thread that finishes one takes the next at once, without a round trip
/// through the async runtime. The threads end when the last hasher is dropped.
///
/// The queue is bounded: at most `queue` jobs wait beyond the one each thread runs. A
/// job past that is refused at once ([`HashError::Overloaded`]) rather than queued, so
/// a burst of logins costs neither unbounded memory nor an unbounded wait; a job whose
/// caller gave up (a request past its deadline) still counts until it has run.
#[derive(Debug)]
struct HashingThreads {
    /// `None` when no thread could be started: jobs then run on tokio's blocking pool.
    jobs: Option<Mutex<std::sync::mpsc::Sender<Job>>>,
    /// Jobs accepted and not yet finished, waiting or running.
    pending: Arc<AtomicUsize>,
    /// The most jobs pending at once: one per thread plus the queue's bound.
    capacity: usize,
}

/// A job's place in the bound, given back when the job is dropped: after it has run,
/// or unrun when it could not be sent.
#[derive(Debug)]
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashingThreads {
    fn start(count: usize, queue_bound: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut started = 0;
        for index in 0..count {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        // One idle thread waits on the queue, the others on its lock.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else {
                            // Every sender is gone: the hasher was dropped.
                            return;
                        };
                        // A job that panics loses its answer (the caller sees a failed
                        // task), not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&mut memory);
                        }));
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        Self {
            jobs: (started > 0).then(|| Mutex::new(jobs)),
            pending: Arc::new(AtomicUsize::new(0)),
            capacity: started.max(1).saturating_add(queue_bound),
        }
    }

    /// A place for one more job, or `Overloaded` when every place is taken.
    fn admit(&self) -> Result<Admitted, HashError> {
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |pending| {
                (pending < self.capacity).then_some(pending + 1)
            })
            .map(|_| Admitted(Arc::clone(&self.pending)))
            .map_err(|_| HashError::Overloaded)
    }

    /// Runs `work` on a hashing thread.
    ///
    /// # Errors
    /// `Overloaded` when the queue is full; `Failed` if the work could not run or
    /// panicked.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let admitted = self.admit()?;
        let failed = || HashError::Failed("the hashing task did not finish".to_owned());
        let Some(jobs) = &self.jobs else {
            // No thread: fresh working memory on the blocking pool, as a last resort.
            return tokio::task::spawn_blocking(move || {
                let _admitted = admitted;
                work(&mut Vec::new())
            })
            .await
            .map_err(|_| failed());
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // The job's place is given back before the caller hears the answer, so a
            // caller that goes on at once finds it free; a panicking job gives it back
            // too and answers a failure.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(memory)))
                .map_err(|_| HashError::Failed("a hashing job panicked".to_owned()));
            drop(admitted);
            let _ = answer.send(outcome);
        });
        jobs.lock()
            .map_err(|_| failed())?
            .send(job)
            .map_err(|_| failed())?;
        answered.await.map_err(|_| failed())?
    }
}

/// argon2id password hashing, PHC string output, on threads of its own (one per core).
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
    /// A hash of a fixed password with the same parameters, computed on first need; an
    /// unknown user is verified against it so the response costs the same work.
    dummy: Arc<OnceLock<Option<String>>>,
    threads: Arc<HashingThreads>,
}

impl Argon2Hasher {
    /// OWASP's argon2id recommendation: 19 MiB of memory, 2 passes, 1 lane.
    pub const OWASP_M_COST_KIB: u32 = 19_456;
    pub const OWASP_T_COST: u32 = 2;
    pub const OWASP_P_COST: u32 = 1;

    /// How many hashing jobs may wait for a thread unless configured
    /// (`USER_ENGINE_HASH_QUEUE`): at tens of milliseconds a hash, a full queue drains in
    /// seconds even on one core, well inside a request's deadline.
    pub const DEFAULT_QUEUE: usize = 256;

    /// A hasher with `params` and the default queue bound.
    pub fn new(params: Params) -> Self {
        Self::with_queue(params, Self::DEFAULT_QUEUE)
    }

    /// A hasher with `params` on one thread per core, where at most `queue` jobs wait
    /// beyond those running; more are refused with [`HashError::Overloaded`].
    pub fn with_queue(params: Params, queue: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            params,
            dummy: Arc::new(OnceLock::new()),
            threads: Arc::new(HashingThreads::start(cores, queue)),
        }
    }

    /// The production parameters (OWASP: m=19456 KiB, t=2, p=1) and the default queue.
    pub fn owasp() -> Self {
        Self::owasp_with_queue(Self::DEFAULT_QUEUE)
    }

    /// The production parameters with at most `queue` jobs waiting.
    pub fn owasp_with_queue(queue: usize) -> Self {
        // These constants are valid argon2 parameters; the fallback is argon2's own
        // default, which has the same values.
        let params = Params::new(
            Self::OWASP_M_COST_KIB,
            Self::OWASP_T_COST,
            Self::OWASP_P_COST,
            None,
        )
        .unwrap_or(Params::DEFAULT);
        Self::with_queue(params, queue)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
    }

    fn hash_blocking(
        params: Params,
        password: &[u8],
    ) -> Result<String, argon2::password_hash::Error> {
        let salt = SaltString::generate(&mut OsRng);
        Ok(Self::argon2(params)
            .hash_password(password, &salt)?
            .to_string())
    }

    /// Constant-time check of `password` against a parsed PHC string, in the hashing
    /// thread's working memory. The algorithm, version and parameters come from the
    /// string, so hashes made with older parameters keep verifying.
    fn verify_in(blocks: &mut Vec<Block>, password: &[u8], phc: &PasswordHash<'_>) -> Option<bool> {
        let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
            return Some(false);
        };
        let algorithm = argon2::Algorithm::try_from(phc.algorithm).ok()?;
        let version = phc
            .version
            .map(argon2::Version::try_from)
            .transpose()
            .ok()?
            .unwrap_or_default();
        let params = Params::try_from(phc).ok()?;
        let mut salt_buffer = [0_u8; 64];
        let salt = salt.decode_b64(&mut salt_buffer).ok()?;
        blocks.resize(params.block_count(), Block::default());
        let mut output = [0_u8; 64];
        let output = output.get_mut(..expected.len())?;
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, output, blocks.as_mut_slice())
            .ok()?;
        // `Output`'s equality is constant-time.
        Some(Output::new(output).ok()? == expected)
    }
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self::owasp()
    }
}

/// The password the dummy hash is made of. Matching it grants nothing: a verification
/// against the dummy always answers `false`.
const DUMMY_PASSWORD: &str = "user-engine dummy password for unknown users";

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &str) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.threads
            .run(move |_| Self::hash_blocking(params, password.as_bytes()))
            .await?
            .map_err(|error| HashError::Failed(format!("password hashing: {error}")))
    }

    async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let params = self.params.clone();
        let password = password.to_owned();
        let stored = hash.map(str::to_owned);
        let dummy = Arc::clone(&self.dummy);
        self.threads
            .run(move |memory| {
                let parsed = stored
                    .as_deref()
                    .and_then(|phc| PasswordHash::new(phc).ok());
                if let Some(parsed) = parsed {
                    return Self::verify_in(memory, password.as_bytes(), &parsed).unwrap_or(false);
                }
                // No (usable) hash: do the same work against the dummy, then refuse. The
                // first call computes the dummy, which is itself one hash's worth of work,
                // so it skips the verification to keep the cost equal.
                let mut computed_now = false;
                let dummy = dummy.get_or_init(|| {
                    computed_now = true;
                    Self::hash_blocking(params.clone(), DUMMY_PASSWORD.as_bytes()).ok()
                });
                if !computed_now {
                    let parsed = dummy.as_deref().and_then(|phc| PasswordHash::new(phc).ok());
                    if let Some(parsed) = parsed {
                        // The outcome is irrelevant: only the work is wanted.
                        let _ = Self::verify_in(memory, password.as_bytes(), &parsed);
                    }
                }
                false
            })
            .await
    }
}

/// RFC 6238 TOTP: HMAC-SHA-1, 6 digits, 30-second steps, one step of drift either way.
#[derive(Debug, Default, Clone, Copy)]
pub struct RfcTotp;

impl RfcTotp {
    pub const DIGITS: usize = 6;
    pub const STEP_SECONDS: u64 = 30;
    const ISSUER: &'static str = "user-engine";

    /// The generator for a base32 secret, or `None` when the secret is not valid base32
    /// or shorter than RFC 4226's 128-bit minimum.
    fn generator(secret: &str) -> Option<totp_rs::TOTP> {
        let bytes = totp_rs::Secret::Encoded(secret.to_owned())
            .to_bytes()
            .ok()?;
        // Skew 0: drift is handled here, step by step, so the matched step is known.
        totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            Self::DIGITS,
            0,
            Self::STEP_SECONDS,
            bytes,
        )
        .ok()
    }

    /// The code of one time step.
    fn code_at_step(generator: &totp_rs::TOTP, step: u64) -> String {
        generator.generate(step.saturating_mul(Self::STEP_SECONDS))
    }
}

impl TotpVerifier for RfcTotp {
    fn verify(&self, secret: &str, code: &str, now: OffsetDateTime) -> Option<u64> {
        if code.len() != Self::DIGITS || !code.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        let generator = Self::generator(secret)?;
        let current = u64::try_from(now.unix_timestamp()).ok()? / Self::STEP_SECONDS;
        // Every candidate is computed and compared, matched or not, so the time taken
        // says nothing about which step (if any) matched.
        let mut matched = None;
        for step in [
            current.checked_sub(1),
            Some(current),
            current.checked_add(1),
        ]
        .into_iter()
        .flatten()
        {
            let expected = Self::code_at_step(&generator, step);
            if constant_time_eq(expected.as_bytes(), code.as_bytes()) && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }

    fn provisioning_uri(&self, secret: &str, account: &str) -> String {
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={digits}&period={period}",
            issuer = Self::ISSUER,
            account = percent_encode(account),
            digits = Self::DIGITS,
            period = Self::STEP_SECONDS,
        )
    }
}

/// Compares two byte strings without an early exit on the first difference, so the
/// time taken does not reveal how much of a guess was right.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        // Lengths are public (a TOTP code is always six digits).
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0_u8, |acc, (left, right)| acc | (left ^ right));
    std::hint::black_box(difference) == 0
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so an email address
/// (or anything else) is safe in the URI's label.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Every production port around `store`, with OWASP argon2id parameters and the
/// default hashing queue.
pub fn production_ports(store: Arc<dyn Store>) -> Ports {
    production_ports_with_queue(store, Argon2Hasher::DEFAULT_QUEUE)
}

/// Every production port around `store`, with OWASP argon2id parameters and at most
/// `hash_queue` password hashes waiting for a thread.
pub fn production_ports_with_queue(store: Arc<dyn Store>, hash_queue: usize) -> Ports {
    Ports {
        store,
        clock: Arc::new(SystemClock),
        ids: Arc::new(V7Ids),
        secrets: Arc::new(OsSecrets),
        passwords: Arc::new(Argon2Hasher::owasp_with_queue(hash_queue)),
        totp: Arc::new(RfcTotp),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// RFC 6238 appendix B's SHA-1 seed, "12345678901234567890", in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn at(unix_seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap()
    }

    fn code(secret: &str, step: u64) -> String {
        RfcTotp::code_at_step(&RfcTotp::generator(secret).unwrap(), step)
    }

    /// The cheapest parameters argon2 accepts, so tests stay fast.
    fn cheap_hasher() -> Argon2Hasher {
        Argon2Hasher::new(Params::new(Params::MIN_M_COST, 1, 1, None).unwrap())
    }

    #[test]
    fn base32_of_the_rfc_seed_is_the_known_secret() {
        assert_eq!(base32_encode(b"12345678901234567890"), RFC_SECRET);
        assert_eq!(base32_encode(b""), "");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn rfc_6238_sha1_vectors_verify_and_return_their_step() {
        let totp = RfcTotp;
        // The 8-digit RFC codes 94287082, 07081804 and 89005924, cut to six digits.
        assert_eq!(totp.verify(RFC_SECRET, "287082", at(59)), Some(1));
        assert_eq!(
            totp.verify(RFC_SECRET, "081804", at(1_111_111_109)),
            Some(37_037_036)
        );
        assert_eq!(
            totp.verify(RFC_SECRET, "005924", at(1_234_567_890)),
            Some(41_152_263)
        );
    }

    #[test]
    fn one_step_of_drift_is_accepted_either_way_and_two_are_not() {
        let totp = RfcTotp;
        let now = at(1_234_567_890);
        let current = 1_234_567_890 / 30;
        for step in [current - 1, current, current + 1] {
            assert_eq!(
                totp.verify(RFC_SECRET, &code(RFC_SECRET, step), now),
                Some(step)
            );
        }
        for step in [current - 2, current + 2] {
            assert_eq!(totp.verify(RFC_SECRET, &code(RFC_SECRET, step), now), None);
        }
    }

    #[test]
    fn codes_that_are_not_six_ascii_digits_are_rejected() {
        let totp = RfcTotp;
        for code in [
            "",
            "28708",
            "2870822",
            "28708a",
            " 287082",
            "287082 ",
            "+28708",
            "２８７０８２",
        ] {
            assert_eq!(totp.verify(RFC_SECRET, code, at(59)), None, "{code:?}");
        }
    }

    #[test]
    fn a_wrong_code_or_an_unusable_secret_is_rejected() {
        let totp = RfcTotp;
        assert_eq!(totp.verify(RFC_SECRET, "287083", at(59)), None);
        assert_eq!(totp.verify("not base32!", "287082", at(59)), None);
        // 80 bits: below RFC 4226's minimum.
        assert_eq!(totp.verify("GEZDGNBVGY3TQOJQ", "287082", at(59)), None);
        assert_eq!(totp.verify(RFC_SECRET, "287082", at(-59)), None);
    }

    #[test]
    fn the_first_step_has_no_earlier_neighbour() {
        let totp = RfcTotp;
        assert_eq!(
            totp.verify(RFC_SECRET, &code(RFC_SECRET, 0), at(0)),
            Some(0)
        );
        assert_eq!(
            totp.verify(RFC_SECRET, &code(RFC_SECRET, 1), at(0)),
            Some(1)
        );
    }

    #[test]
    fn the_provisioning_uri_names_issuer_account_and_parameters() {
        assert_eq!(
            RfcTotp.provisioning_uri(RFC_SECRET, "alice+mfa@example.com"),
            "otpauth://totp/user-engine:alice%2Bmfa%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=user-engine&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"123456", b"123456"));
        assert!(!constant_time_eq(b"123456", b"123457"));
        assert!(!constant_time_eq(b"123456", b"12345"));
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_not_another() {
        let hasher = cheap_hasher();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"));
        assert!(hasher
            .verify("correct horse battery", Some(&hash))
            .await
            .unwrap());
        assert!(!hasher
            .verify("correct horse battery!", Some(&hash))
            .await
            .unwrap());
        // A fresh salt every time.
        assert_ne!(hasher.hash("correct horse battery").await.unwrap(), hash);
    }

    #[tokio::test]
    async fn hashes_of_other_variants_and_parameters_verify_in_reused_memory() {
        use argon2::password_hash::PasswordVerifier as _;
        let hasher = cheap_hasher();
        let salt = SaltString::encode_b64(b"a fixed test salt").unwrap();
        for (algorithm, m_cost, t_cost, output_len) in [
            (argon2::Algorithm::Argon2id, 64, 1, 32),
            (argon2::Algorithm::Argon2i, 256, 2, 16),
            (argon2::Algorithm::Argon2d, 128, 3, 64),
            (argon2::Algorithm::Argon2id, 64, 1, 32),
        ] {
            let params = Params::new(m_cost, t_cost, 1, Some(output_len)).unwrap();
            let reference = Argon2::new(algorithm, argon2::Version::V0x13, params);
            let phc = reference
                .hash_password(b"legacy password", &salt)
                .unwrap()
                .to_string();
            assert!(
                hasher.verify("legacy password", Some(&phc)).await.unwrap(),
                "{phc}"
            );
            assert!(
                !hasher.verify("legacy password?", Some(&phc)).await.unwrap(),
                "{phc}"
            );
            // The reference implementation agrees.
            let parsed = PasswordHash::new(&phc).unwrap();
            assert!(reference
                .verify_password(b"legacy password", &parsed)
                .is_ok());
        }
    }

    #[tokio::test]
    async fn a_missing_or_malformed_hash_never_verifies() {
        let hasher = cheap_hasher();
        // Twice: the first call computes the dummy, the second verifies against it.
        assert!(!hasher.verify("anything", None).await.unwrap());
        assert!(!hasher.verify("anything", None).await.unwrap());
        assert!(!hasher.verify(DUMMY_PASSWORD, None).await.unwrap());
        assert!(!hasher
            .verify("anything", Some("not a phc string"))
            .await
            .unwrap());
        assert!(!hasher.verify("anything", Some("")).await.unwrap());
    }

    #[tokio::test]
    async fn owasp_parameters_appear_in_the_phc_string() {
        let hasher = Argon2Hasher::owasp();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(hasher
            .verify("correct horse battery", Some(&hash))
            .await
            .unwrap());
        // A hash made with other parameters still verifies: they come from the string.
        assert!(cheap_hasher()
            .verify("correct horse battery", Some(&hash))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_job_past_the_queue_bound_is_refused_at_once_and_the_bound_frees_up() {
        // One thread, no waiting room: while one job runs, the next is refused.
        let threads = Arc::new(HashingThreads::start(1, 0));
        let (started, running) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let threads = Arc::clone(&threads);
            async move {
                threads
                    .run(move |_| {
                        started.send(()).unwrap();
                        released.recv().unwrap();
                        "first"
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || running.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(threads.run(|_| "second").await, Err(HashError::Overloaded));
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok("first"));
        assert_eq!(threads.run(|_| "third").await, Ok("third"));
        assert_eq!(threads.pending.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_job_that_panics_fails_and_gives_its_place_back() {
        let threads = HashingThreads::start(1, 0);
        let failed = threads
            .run(|_| {
                #[allow(clippy::panic, reason = "the failure under test")]
                if threads_panic() {
                    panic!("a hashing job failed");
                }
            })
            .await;
        assert!(matches!(failed, Err(HashError::Failed(_))), "{failed:?}");
        assert_eq!(threads.run(|_| 7).await, Ok(7));
    }

    /// Always true; keeps the panicking closure's type `()` without an unreachable tail.
    fn threads_panic() -> bool {
        std::hint::black_box(true)
    }

    #[test]
    fn tokens_are_43_url_safe_chars_and_distinct() {
        let tokens: HashSet<String> = (0..64).map(|_| OsSecrets.token()).collect();
        assert_eq!(tokens.len(), 64);
        for token in &tokens {
            assert_eq!(token.len(), 43);
            assert!(token
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'));
            assert_eq!(URL_SAFE_NO_PAD.decode(token).unwrap().len(), 32);
        }
    }

    #[test]
    fn totp_secrets_are_32_base32_chars_of_160_bits_and_distinct() {
        let secrets: HashSet<String> = (0..64).map(|_| OsSecrets.totp_secret()).collect();
        assert_eq!(secrets.len(), 64);
        for secret in &secrets {
            assert_eq!(secret.len(), 32);
            assert!(secret
                .bytes()
                .all(|byte| byte.is_ascii_uppercase() || (b'2'..=b'7').contains(&byte)));
            let bytes = totp_rs::Secret::Encoded(secret.clone()).to_bytes().unwrap();
            assert_eq!(bytes.len(), 20);
            // And usable: a code made from it verifies.
            let now = at(1_767_225_600);
            let step = 1_767_225_600 / 30;
            assert_eq!(RfcTotp.verify(secret, &code(secret, step), now), Some(step));
        }
    }

    #[test]
    fn the_clock_is_utc_in_whole_microseconds() {
        let now = SystemClock.now();
        assert_eq!(now.offset(), time::UtcOffset::UTC);
        assert_eq!(now.nanosecond() % 1_000, 0);
    }

    #[test]
    fn ids_are_distinct_version_7_uuids() {
        let first = V7Ids.new_v7();
        let second = V7Ids.new_v7();
        assert_eq!(first.get_version_num(), 7);
        assert_ne!(first, second);
    }
}
