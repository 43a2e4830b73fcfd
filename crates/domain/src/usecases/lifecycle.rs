//! The account lifecycle a user drives themselves (SPEC §4): a self-service password reset
//! mailed to an active user, an email change applied only once the token mailed to the
//! new address comes back, and recovery codes.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::auth::{AuthStep, NewSessionState};
use super::throttles::{ThrottleKey, ThrottleRule, TOTP_FAILURES};
use super::{hash_token, user_target, Caller, Engine};
use crate::audit::{Actor, ActorType, AuditTarget, Outcome, Partition};
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{Assurance, Email, UserId};
use crate::mail::MailKind;
use crate::model::{EmailVerification, PasswordReset, UserState};
use crate::ports::{StoreError, TxScope};

/// How many recovery codes a user gets at once.
pub const RECOVERY_CODES: usize = 10;

/// A pending email change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChange {
    /// The address that becomes the user's once verified.
    pub email: Email,
    pub expires_at: OffsetDateTime,
    /// The verification token, only when mail is off (the calling service delivers it to
    /// the new address); with mail on it is mailed there and never returned.
    pub verification_token: Option<String>,
}

/// A recovery code as the user types it: case, spaces and dashes do not matter.
fn recovery_code_hash(code: &str) -> Option<String> {
    let normalised: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (normalised.len() == 16 && normalised.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hash_token(&normalised))
}

impl Engine {
    /// Asks for a self-service password reset (SPEC §4 `POST /v1/auth/password-reset`).
    /// When `email` names an active user and mail is on, a single-use token (1 hour) is
    /// mailed to them; whatever the email, the caller learns nothing: the answer is the
    /// same and one platform record is written either way (its target the user, or
    /// `unresolved-email`). Counted per email and per client address first.
    ///
    /// [`Engine::admit_password_reset`] then [`Engine::start_password_reset`]; the HTTP
    /// layer answers between the two, so the time of the answer does not depend on the
    /// email either.
    ///
    /// # Errors
    /// `rate_limited` when the email's or the address's window is full; `internal` when
    /// the store fails.
    pub async fn request_password_reset(
        &self,
        email: &Email,
        address: Option<IpAddr>,
        rule: ThrottleRule,
        request_id: &str,
    ) -> Result<(), Error> {
        self.admit_password_reset(email, address, rule).await?;
        self.start_password_reset(email, address, request_id).await
    }

    /// The part of a reset request the caller waits for: the request counted per email
    /// and per client address. It never looks the email up, so it costs the same
    /// whoever the email names.
    ///
    /// # Errors
    /// `rate_limited` when the email's or the address's window is full; `internal` when
    /// the store fails.
    pub async fn admit_password_reset(
        &self,
        email: &Email,
        address: Option<IpAddr>,
        rule: ThrottleRule,
    ) -> Result<(), Error> {
        self.throttle(ThrottleKey::ResetEmail(email), rule).await?;
        if let Some(address) = address {
            self.throttle(ThrottleKey::ResetAddress(address), rule)
                .await?;
        }
        Ok(())
    }

    /// The rest of an admitted reset request, in one transaction: the email looked up,
    /// the token stored and its mail queued for an active user, the record written
    /// either way.
    ///
    /// # Errors
    /// `internal` when the store fails (nothing is written then).
    pub async fn start_password_reset(
        &self,
        email: &Email,
        address: Option<IpAddr>,
        request_id: &str,
    ) -> Result<(), Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        let user = tx
            .find_user_by_email(email)
            .await?
            .filter(|user| user.state == UserState::Active);
        let actor = Actor {
            kind: ActorType::Anonymous,
            id: address.map_or_else(|| "unknown".to_owned(), |address| address.to_string()),
        };
        let (target, reason, events) = match (&user, self.mails()) {
            (Some(user), true) => {
                let token = self.ports.secrets.token();
                tx.insert_password_reset(&PasswordReset {
                    token_hash: hash_token(&token),
                    user_id: user.id,
                    expires_at: self.now() + self.config.password_reset_ttl,
                    used_at: None,
                })
                .await?;
                self.queue_mail(
                    tx.as_mut(),
                    &MailKind::PasswordReset { token },
                    &user.email,
                    Some(user.id),
                )
                .await?;
                let event = self.event(
                    Partition::Platform,
                    user.id.to_string(),
                    EventData::UserPasswordResetRequested { id: user.id },
                );
                (user_target("user", &user.id), "mailed", vec![event])
            }
            (Some(user), false) => (user_target("user", &user.id), "mail_off", Vec::new()),
            (None, _) => (
                AuditTarget {
                    kind: "user",
                    id: super::UNRESOLVED_EMAIL.to_owned(),
                },
                "no_active_user",
                Vec::new(),
            ),
        };
        self.record_auth(
            tx,
            AuthStep {
                actor,
                action: "user.password_reset.request",
                target,
                request_id,
            },
            Outcome::Allowed,
            reason,
            events,
        )
        .await
    }

    /// Starts a change of the caller's email (SPEC §4 `PUT /v1/me/email`): checks the
    /// current password and that the address is free, and stores a single-use token for
    /// the new address (mailed there when mail is on). Nothing changes until
    /// [`Engine::verify_email`].
    ///
    /// # Errors
    /// `unauthenticated` without a session; `forbidden` (`subject_suspended`) for a
    /// platform-suspended user; `invalid_credentials` (recorded) for a wrong password;
    /// `invalid_request` for the address the user already has; `email_taken` when another
    /// user has it; `overloaded` when the hashing queue is full; `internal` when the store
    /// fails.
    pub async fn request_email_change(
        &self,
        caller: &Caller,
        email: &Email,
        current_password: &str,
    ) -> Result<EmailChange, Error> {
        let (user_id, _) = Self::session_of(caller)?;
        self.refuse_suspended_user(&user_id).await?;
        let target = user_target("user", &user_id);
        let step = |target| AuthStep {
            actor: Self::user_actor(&user_id),
            action: "user.email.change",
            target,
            request_id: &caller.request_id,
        };
        let password_hash = {
            let mut tx = self.begin(TxScope::Platform).await?;
            tx.get_credentials(&user_id).await?.password_hash
        };
        if !self
            .ports
            .passwords
            .verify(current_password, password_hash.as_deref())
            .await?
        {
            self.refuse_auth(step(target), "invalid_credentials")
                .await?;
            return Err(Error::InvalidCredentials);
        }
        let mut tx = self.begin(TxScope::Platform).await?;
        let user = tx.get_user(&user_id).await?.ok_or(Error::Unauthenticated)?;
        if user.email == *email {
            return Err(Error::InvalidRequest(
                "the new email is the account's email already".to_owned(),
            ));
        }
        if tx.find_user_by_email(email).await?.is_some() {
            return Err(Error::EmailTaken);
        }
        let token = self.ports.secrets.token();
        let expires_at = self.now() + self.config.email_verification_ttl;
        tx.insert_email_verification(&EmailVerification {
            token_hash: hash_token(&token),
            user_id,
            email: email.clone(),
            expires_at,
            used_at: None,
        })
        .await?;
        let mailed = self
            .queue_mail(
                tx.as_mut(),
                &MailKind::EmailVerification {
                    token: token.clone(),
                },
                email,
                Some(user_id),
            )
            .await?;
        let event = self.event(
            Partition::Platform,
            user_id.to_string(),
            EventData::UserEmailChangeRequested { id: user_id },
        );
        self.record_auth(tx, step(target), Outcome::Allowed, "self", vec![event])
            .await?;
        Ok(EmailChange {
            email: email.clone(),
            expires_at,
            verification_token: (!mailed).then_some(token),
        })
    }

    /// Applies an email change with its token (SPEC §4 `POST /v1/auth/email-verification`):
    /// used once, also under concurrency (the others get `invalid_credentials`). The user's
    /// email becomes the verified new address, and a notice goes to the old one.
    ///
    /// With `failures`, a wrong token counts against the client address as a failed
    /// bearer authentication, and a full window answers `rate_limited` first.
    ///
    /// # Errors
    /// `invalid_credentials` (recorded) for an unknown, used or expired token;
    /// `email_taken` when another user took the address meanwhile (the token stays
    /// usable); `rate_limited`; `internal` when the store fails.
    pub async fn verify_email(
        &self,
        token: &str,
        request_id: &str,
        failures: Option<(IpAddr, ThrottleRule)>,
    ) -> Result<(), Error> {
        if let Some((address, rule)) = failures {
            self.throttled(ThrottleKey::BearerFailures(address), rule)
                .await?;
        }
        let refused = || AuthStep {
            actor: Actor {
                kind: ActorType::Anonymous,
                id: "email_verification".to_owned(),
            },
            action: "user.email.verify",
            target: AuditTarget {
                kind: "email_verification",
                id: "unknown".to_owned(),
            },
            request_id,
        };
        let mut tx = self.begin(TxScope::Platform).await?;
        tx.lock_partition(&Partition::Platform).await?;
        let now = self.now();
        let Some(pending) = tx
            .consume_email_verification(&hash_token(token), now)
            .await?
        else {
            drop(tx);
            return Err(self.refuse_token(refused(), failures).await);
        };
        let Some(mut user) = tx.get_user(&pending.user_id).await? else {
            drop(tx);
            return Err(self.refuse_token(refused(), failures).await);
        };
        if tx
            .find_user_by_email(&pending.email)
            .await?
            .is_some_and(|holder| holder.id != user.id)
        {
            return Err(Error::EmailTaken);
        }
        let old = user.email.clone();
        user.email = pending.email.clone();
        user.email_verified = true;
        user.updated_at = now;
        tx.update_user(&user).await.map_err(|error| match error {
            StoreError::Duplicate(_) => Error::EmailTaken,
            other => Error::Store(other),
        })?;
        if old != user.email {
            self.queue_mail(tx.as_mut(), &MailKind::EmailChanged, &old, Some(user.id))
                .await?;
        }
        let event = self.event(
            Partition::Platform,
            user.id.to_string(),
            EventData::UserEmailChanged {
                id: user.id,
                email: user.email.clone(),
            },
        );
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user.id),
                action: "user.email.verify",
                target: user_target("user", &user.id),
                request_id,
            },
            Outcome::Allowed,
            "email_verification",
            vec![event],
        )
        .await
    }

    /// Replaces the caller's recovery codes with [`RECOVERY_CODES`] new ones, shown this
    /// once and stored only as hashes (SPEC §4 `POST /v1/me/recovery-codes`). Needs a
    /// session at `aal2`, so a stolen password alone cannot mint a second factor.
    ///
    /// # Errors
    /// `unauthenticated` without a session; `forbidden` (`subject_suspended`) for a
    /// platform-suspended user, (`insufficient_assurance`, recorded) below `aal2`;
    /// `internal` when the store fails.
    pub async fn generate_recovery_codes(&self, caller: &Caller) -> Result<Vec<String>, Error> {
        let (user_id, _) = Self::session_of(caller)?;
        self.refuse_suspended_user(&user_id).await?;
        let step = || AuthStep {
            actor: Self::user_actor(&user_id),
            action: "user.recovery_codes.generate",
            target: user_target("user", &user_id),
            request_id: &caller.request_id,
        };
        if caller.principal.assurance() < Assurance::Aal2 {
            self.refuse_auth(step(), "insufficient_assurance").await?;
            return Err(Error::Forbidden(
                crate::authz::Reason::InsufficientAssurance,
            ));
        }
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| {
                let digest = hash_token(&self.ports.secrets.token());
                let raw: String = digest.chars().take(16).collect();
                let (head, tail) = raw.split_at(raw.len().min(8));
                format!("{head}-{tail}")
            })
            .collect();
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|code| recovery_code_hash(code))
            .collect();
        let mut tx = self.begin(TxScope::Platform).await?;
        tx.replace_recovery_codes(&user_id, &hashes).await?;
        self.notify(
            tx.as_mut(),
            &user_id,
            MailKind::FactorAdded {
                factor: "set of recovery codes",
            },
        )
        .await?;
        let event = self.event(
            Partition::Platform,
            user_id.to_string(),
            EventData::UserRecoveryCodesGenerated {
                id: user_id,
                codes: u64::try_from(hashes.len()).unwrap_or(u64::MAX),
            },
        );
        self.record_auth(tx, step(), Outcome::Allowed, "self", vec![event])
            .await?;
        Ok(codes)
    }

    /// Raises the caller's session to `aal2` with a recovery code (SPEC §4
    /// `POST /v1/auth/recovery`), as a TOTP step would: each code works once, also under
    /// concurrency, and wrong codes count against the user's TOTP failure window.
    ///
    /// # Errors
    /// `unauthenticated` without a session (or once it ended); `forbidden`
    /// (`subject_suspended`); `rate_limited` while the failure window is full;
    /// `invalid_totp` (recorded) for a wrong or used code; `internal` when the store
    /// fails.
    pub async fn use_recovery_code(
        &self,
        caller: &Caller,
        code: &str,
    ) -> Result<NewSessionState, Error> {
        let (user, token_hash) = Self::session_of(caller)?;
        self.refuse_suspended_user(&user).await?;
        let target = user_target("session", &user);
        let step = || AuthStep {
            actor: Self::user_actor(&user),
            action: "session.step_up",
            target: target.clone(),
            request_id: &caller.request_id,
        };
        self.throttled(ThrottleKey::TotpFailures(&user), TOTP_FAILURES)
            .await?;
        let Some(code_hash) = recovery_code_hash(code) else {
            return Err(self.refuse_recovery_code(&user, step()).await);
        };
        let mut tx = self.begin(TxScope::Platform).await?;
        let now = self.now();
        if !tx.consume_recovery_code(&user, &code_hash, now).await? {
            drop(tx);
            return Err(self.refuse_recovery_code(&user, step()).await);
        }
        let mut session = tx
            .find_session(token_hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        session.aal2_until = Some(now + self.config.step_up_ttl);
        session.last_seen_at = now;
        tx.update_session(&session).await?;
        let remaining = tx.count_recovery_codes(&user).await?;
        self.notify(tx.as_mut(), &user, MailKind::RecoveryCodeUsed)
            .await?;
        let event = self.event(
            Partition::Platform,
            user.to_string(),
            EventData::UserRecoveryCodeUsed {
                id: user,
                remaining,
            },
        );
        self.record_auth(tx, step(), Outcome::Allowed, "recovery_code", vec![event])
            .await?;
        Ok(NewSessionState {
            expires_at: session.expires_at,
            assurance: Assurance::Aal2,
            aal2_until: session.aal2_until,
        })
    }

    /// A wrong recovery code counts against the user's TOTP failure window, then its
    /// refusal is recorded; returns the error to answer.
    async fn refuse_recovery_code(&self, user: &UserId, step: AuthStep<'_>) -> Error {
        if let Err(error) = self
            .throttle(ThrottleKey::TotpFailures(user), TOTP_FAILURES)
            .await
        {
            return error;
        }
        match self.refuse_auth(step, "invalid_totp").await {
            Ok(()) => Error::InvalidTotp,
            Err(error) => error,
        }
    }

    /// How many unused recovery codes `user` holds.
    ///
    /// # Errors
    /// `internal` when the store fails.
    pub async fn recovery_codes_left(&self, user: &UserId) -> Result<u64, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        Ok(tx.count_recovery_codes(user).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::recovery_code_hash;

    #[test]
    fn recovery_codes_ignore_case_spaces_and_dashes() {
        let a = recovery_code_hash("0123abcd-4567ef89");
        assert!(a.is_some());
        assert_eq!(a, recovery_code_hash(" 0123ABCD 4567-EF89 "));
        assert_eq!(recovery_code_hash("0123abcd-4567ef8"), None);
        assert_eq!(recovery_code_hash("0123abcd-4567ef8z"), None);
    }
}
