//! Throttles (SPEC §3.6): password logins per email and per client address, failed
//! TOTP codes per user, failed bearer authentications per client address, and the
//! record an unauthenticated request on an existing tenant leaves in that tenant's trail.
//!
//! Every counter lives in the store ([`crate::ports::Store::throttle_hit`]), so a limit
//! holds across every API node; a node keeps no count of its own.

use std::net::IpAddr;
use std::num::NonZeroU32;

use time::{Duration, OffsetDateTime};

use super::{hash_token, tenant_target, Engine};
use crate::audit::{Actor, ActorType, AuditDraft, Outcome, Partition};
use crate::error::Error;
use crate::ids::{Email, TenantId, UserId};
use crate::ports::{ThrottleCount, TxScope};

/// How many attempts a throttle lets through per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    pub limit: u32,
    pub window: Duration,
}

impl ThrottleRule {
    /// `limit` attempts a minute.
    pub fn per_minute(limit: NonZeroU32) -> Self {
        Self {
            limit: limit.get(),
            window: Duration::minutes(1),
        }
    }
}

/// Failed TOTP codes per user: at most 5 per 5 minutes (SPEC §3.6). A six-digit code
/// guessed at this rate takes about a year to find with even odds.
pub const TOTP_FAILURES: ThrottleRule = ThrottleRule {
    limit: 5,
    window: Duration::minutes(5),
};

/// What a throttle counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleKey<'a> {
    /// Password logins naming this email, whoever sends them.
    LoginEmail(&'a Email),
    /// Password logins from this client address, whatever email they name.
    LoginAddress(IpAddr),
    /// Wrong TOTP codes of this user, on any session.
    TotpFailures(&'a UserId),
    /// Requests from this client address whose bearer token authenticated nobody.
    BearerFailures(IpAddr),
    /// Self-service password reset requests naming this email.
    ResetEmail(&'a Email),
    /// Self-service password reset requests from this client address.
    ResetAddress(IpAddr),
}

impl ThrottleKey<'_> {
    /// The store's key: the kind, then the subject. An email is stored hashed, so the
    /// throttle table holds no address book; a client address is kept as its bucket.
    pub fn store_key(&self) -> String {
        match self {
            Self::LoginEmail(email) => format!("login-email:{}", hash_token(email.as_str())),
            Self::LoginAddress(address) => format!("login-address:{}", address_bucket(*address)),
            Self::TotpFailures(user) => format!("totp-failures:{user}"),
            Self::BearerFailures(address) => {
                format!("bearer-failures:{}", address_bucket(*address))
            }
            Self::ResetEmail(email) => format!("reset-email:{}", hash_token(email.as_str())),
            Self::ResetAddress(address) => format!("reset-address:{}", address_bucket(*address)),
        }
    }
}

/// The bucket an address counts in: an IPv4 address itself (an IPv4-mapped IPv6
/// address as the IPv4 one), an IPv6 address by its /64, the smallest network one
/// subscriber usually gets — counting single IPv6 addresses would give every client
/// 2^64 fresh buckets.
pub fn address_bucket(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// Whole seconds from `now` to `until`, at least 1, for `Retry-After`.
fn retry_after(now: OffsetDateTime, until: OffsetDateTime) -> u64 {
    let wait = until - now;
    let seconds = wait.whole_seconds() + i64::from(wait.subsec_nanoseconds() > 0);
    u64::try_from(seconds).unwrap_or(0).max(1)
}

impl Engine {
    fn over(&self, count: ThrottleCount, rule: ThrottleRule) -> Result<(), Error> {
        if count.hits > rule.limit {
            Err(Error::RateLimited {
                retry_after_secs: retry_after(self.now(), count.window_ends_at),
            })
        } else {
            Ok(())
        }
    }

    /// Counts one attempt against `key`; `rate_limited` once the window holds more
    /// than the rule allows. Call it before the attempt is checked, so that concurrent
    /// attempts cannot all be checked before any is counted.
    ///
    /// # Errors
    /// `RateLimited` with the seconds until the window ends; `Store` when the store fails.
    pub async fn throttle(&self, key: ThrottleKey<'_>, rule: ThrottleRule) -> Result<(), Error> {
        let count = self
            .ports
            .store
            .throttle_hit(&key.store_key(), rule.window, self.now())
            .await?;
        self.over(count, rule)
    }

    /// `rate_limited` when the window of `key` is already full, without counting.
    pub(super) async fn throttled(
        &self,
        key: ThrottleKey<'_>,
        rule: ThrottleRule,
    ) -> Result<(), Error> {
        let count = self
            .ports
            .store
            .throttle_peek(&key.store_key(), self.now())
            .await?;
        // A full window (`limit` hits) refuses the next attempt, counted or not.
        self.over(
            ThrottleCount {
                hits: count.hits.saturating_add(1),
                ..count
            },
            rule,
        )
    }

    /// Counts a password login attempt for its email and its client address (when
    /// known), before the password is checked.
    ///
    /// # Errors
    /// `RateLimited` when either window is over `rule`; `Store` when the store fails.
    pub async fn throttle_login(
        &self,
        email: &Email,
        address: Option<IpAddr>,
        rule: ThrottleRule,
    ) -> Result<(), Error> {
        self.throttle(ThrottleKey::LoginEmail(email), rule).await?;
        if let Some(address) = address {
            self.throttle(ThrottleKey::LoginAddress(address), rule)
                .await?;
        }
        Ok(())
    }

    /// What a request whose bearer token authenticated nobody (none, garbage, a forged
    /// key, an ended session) gets: the failure counts against its client address, and
    /// `rate_limited` once the address is over `rule`; otherwise `unauthenticated`,
    /// and on an existing `tenant` one `denied` record in that tenant's trail (actor
    /// `anonymous`, reason `unauthenticated`) so its admins see who probed them (SPEC
    /// §3.6, §6). The throttle comes first, so it bounds how many records one address
    /// can cause. Pass `tenant` only once the tenant is known to exist.
    pub async fn refuse_unauthenticated(
        &self,
        tenant: Option<&TenantId>,
        address: Option<IpAddr>,
        rule: ThrottleRule,
        request_id: &str,
    ) -> Error {
        if let Some(address) = address {
            if let Err(error) = self
                .throttle(ThrottleKey::BearerFailures(address), rule)
                .await
            {
                return error;
            }
        }
        let Some(tenant) = tenant else {
            return Error::Unauthenticated;
        };
        let draft = AuditDraft {
            id: self.audit_id(),
            partition: Partition::Tenant(tenant.clone()),
            at: self.now(),
            actor: Actor {
                kind: ActorType::Anonymous,
                id: address.map_or_else(|| "unknown".to_owned(), |address| address.to_string()),
            },
            action: "request.authenticate",
            target: tenant_target(tenant),
            outcome: Outcome::Denied,
            reason: "unauthenticated".to_owned(),
            request_id: request_id.to_owned(),
        };
        let recorded = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            tx.append_audit(draft).await?;
            tx.commit().await?;
            Ok::<(), Error>(())
        };
        match recorded.await {
            Ok(()) => Error::Unauthenticated,
            Err(error) => error,
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed expectation aborts the test"
)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_bucket(one), "2001:db8:1:2::/64");
        assert_eq!(address_bucket(one), address_bucket(other));
        assert_ne!(address_bucket(one), address_bucket(elsewhere));
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_the_ipv4_address() {
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_bucket(mapped), "192.0.2.7");
    }

    #[test]
    fn email_keys_hold_no_email() {
        let email = Email::parse("Someone@Example.com").unwrap();
        let key = ThrottleKey::LoginEmail(&email).store_key();
        assert!(key.starts_with("login-email:"), "{key}");
        assert!(!key.contains("example"), "{key}");
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(retry_after(now, now + Duration::milliseconds(1500)), 2);
        assert_eq!(retry_after(now, now), 1);
        assert_eq!(retry_after(now, now - Duration::seconds(3)), 1);
        assert_eq!(retry_after(now, now + Duration::minutes(5)), 300);
    }
}
