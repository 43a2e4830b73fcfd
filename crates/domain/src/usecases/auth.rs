//! Authentication use cases: password login, sessions, TOTP enrolment and step-up,
//! password change, invitations, and resolving a bearer token to a principal.

use time::OffsetDateTime;

use super::api_keys::API_KEY_PREFIX;
use std::net::IpAddr;

use super::throttles::{ThrottleKey, ThrottleRule, TOTP_FAILURES};
use super::{hash_token, user_target, Caller, Engine, Principal};
use crate::audit::{Actor, ActorType, AuditDraft, AuditTarget, Outcome, Partition};
use crate::error::Error;
use crate::event::{EventData, EventDraft};
use crate::ids::{Assurance, Email, Password, SessionId, UserId};
use crate::model::{Session, SessionDetails, TotpEnrolment, User, UserState};
use crate::ports::{ApiKeys, Authentication, StoreTx, TxScope};

/// A new session: the token (shown once) and its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token: String,
    pub expires_at: OffsetDateTime,
    pub assurance: Assurance,
}

/// Where a login comes from: kept with the session it opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOrigin {
    /// The client address (SPEC §3.6).
    pub client_address: Option<String>,
    /// The request's `User-Agent` (cut to 256 characters when kept).
    pub user_agent: Option<String>,
}

/// A started TOTP enrolment: the secret and the URI an authenticator app reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpEnrolmentStart {
    pub secret: String,
    pub otpauth_uri: String,
}

/// Sessions touched more recently than this are not written back on every request.
pub(super) const LAST_SEEN_GRANULARITY: time::Duration = time::Duration::seconds(60);

impl Engine {
    /// Writes one platform-trail record of an authentication step (and its events) and
    /// commits the transaction it was given.
    pub(super) async fn record_auth(
        &self,
        mut tx: Box<dyn StoreTx>,
        step: AuthStep<'_>,
        outcome: Outcome,
        reason: &str,
        events: Vec<EventDraft>,
    ) -> Result<(), Error> {
        tx.append_audit(AuditDraft {
            id: self.audit_id(),
            partition: Partition::Platform,
            at: self.now(),
            actor: step.actor,
            action: step.action,
            target: step.target,
            outcome,
            reason: reason.to_owned(),
            request_id: step.request_id.to_owned(),
        })
        .await?;
        for event in events {
            tx.append_event(event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a refused authentication step in a fresh transaction.
    pub(super) async fn refuse_auth(&self, step: AuthStep<'_>, reason: &str) -> Result<(), Error> {
        let tx = self.begin(TxScope::Platform).await?;
        self.record_auth(tx, step, Outcome::Denied, reason, Vec::new())
            .await
    }

    pub(super) fn user_actor(user: &UserId) -> Actor {
        Actor {
            kind: ActorType::User,
            id: user.to_string(),
        }
    }

    /// Logs in with email and password. An unknown email, an invited or suspended user
    /// and a wrong password all give `invalid_credentials` after the same hashing work.
    ///
    /// # Errors
    /// `invalid_credentials` for an unknown email, a user who is not active, or a wrong (or
    /// unset) password; `internal` when the store fails. It does not throttle: see
    /// [`Engine::throttle_login`].
    pub async fn login(
        &self,
        email: &Email,
        password: &str,
        request_id: &str,
    ) -> Result<NewSession, Error> {
        self.login_from(email, password, request_id, &SessionOrigin::default())
            .await
    }

    /// [`Engine::login`] from a client: the session keeps `origin` (shown to its owner in
    /// the session list).
    ///
    /// # Errors
    /// As [`Engine::login`].
    pub async fn login_from(
        &self,
        email: &Email,
        password: &str,
        request_id: &str,
        origin: &SessionOrigin,
    ) -> Result<NewSession, Error> {
        // Read, then hash with no transaction open: hashing takes milliseconds of CPU,
        // and a transaction held meanwhile would pin a pooled connection and a snapshot.
        let (user, hash) = match self.ports.store.find_login(email).await? {
            Some(record) => (Some(record.user), record.password_hash),
            None => (None, None),
        };
        let hash = hash.as_deref();
        let verified = self.ports.passwords.verify(password, hash).await?;
        // A record names ids, never an email (SPEC §6): the user when the email is
        // theirs, else no one; the refused caller by its client address.
        let target = AuditTarget {
            kind: "user",
            id: user.as_ref().map_or_else(
                || super::UNRESOLVED_EMAIL.to_owned(),
                |user| user.id.to_string(),
            ),
        };
        let actor = Actor {
            kind: ActorType::Anonymous,
            id: origin
                .client_address
                .clone()
                .unwrap_or_else(|| "unknown".to_owned()),
        };
        let user = match user {
            Some(user) if verified && hash.is_some() && user.state == UserState::Active => user,
            _ => {
                self.refuse_auth(
                    AuthStep {
                        actor,
                        action: "session.create",
                        target,
                        request_id,
                    },
                    "invalid_credentials",
                )
                .await?;
                return Err(Error::InvalidCredentials);
            }
        };
        let token = self.ports.secrets.token();
        let now = self.now();
        let session = Session {
            token_hash: hash_token(&token),
            user_id: user.id,
            created_at: now,
            expires_at: now + self.config.session_ttl,
            last_seen_at: now,
            aal2_until: None,
        };
        let details = SessionDetails {
            id: SessionId::from_generated(self.new_uuid()),
            client_address: origin.client_address.clone(),
            user_agent: origin
                .user_agent
                .as_deref()
                .and_then(SessionDetails::user_agent),
        };
        let mut tx = self.begin(TxScope::Platform).await?;
        tx.insert_session(&session, &details).await?;
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user.id),
                action: "session.create",
                target,
                request_id,
            },
            Outcome::Allowed,
            "password",
            Vec::new(),
        )
        .await?;
        Ok(NewSession {
            token,
            expires_at: session.expires_at,
            assurance: Assurance::Aal1,
        })
    }

    /// Resolves a bearer token without side effects: a live session (with its current
    /// assurance) or an unrevoked API key; `None` for anything else.
    pub(super) async fn resolve_token(
        &self,
        tx: &mut (impl ApiKeys + Authentication + ?Sized),
        token: &str,
    ) -> Result<Option<Principal>, Error> {
        let token_hash = hash_token(token);
        if token.starts_with(API_KEY_PREFIX) {
            return Ok(tx
                .find_api_key_by_hash(&token_hash)
                .await?
                .filter(|key| key.revoked_at.is_none())
                .map(|key| Principal::ApiKey {
                    key_id: key.id,
                    tenant: key.tenant,
                }));
        }
        let now = self.now();
        Ok(tx
            .find_session(&token_hash)
            .await?
            .filter(|session| self.session_alive(session, now))
            .map(|session| Principal::User {
                user_id: session.user_id,
                assurance: session_assurance(&session, now),
                session: Some(session.token_hash),
            }))
    }

    pub(super) fn session_alive(&self, session: &Session, now: OffsetDateTime) -> bool {
        now < session.expires_at && now - session.last_seen_at < self.config.session_idle_timeout
    }

    /// Authenticates a bearer token for a request, keeping the session's idle clock
    /// running. Fails with `unauthenticated` for anything but a live session or key.
    ///
    /// # Errors
    /// `unauthenticated` for anything but a live session or an unrevoked API key;
    /// `internal` when the store fails.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        let principal = self
            .resolve_token(tx.as_mut(), token)
            .await?
            .ok_or(Error::Unauthenticated)?;
        self.touch_session(tx, &principal).await?;
        Ok(principal)
    }

    /// Resolves a tenant request's tenant and token in one transaction, in the order of
    /// SPEC §3.1: a missing tenant is `tenant_not_found` before the token is looked at,
    /// then anything but a live session or key is `unauthenticated`.
    ///
    /// # Errors
    /// `tenant_not_found` when the tenant does not exist, whatever the token;
    /// `unauthenticated` for no token, or anything but a live session or an unrevoked API
    /// key; `internal` when the store fails.
    pub async fn authenticate_for_tenant(
        &self,
        tenant: &crate::ids::TenantId,
        token: Option<&str>,
    ) -> Result<Principal, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        if tx.get_tenant(tenant).await?.is_none() {
            return Err(Error::TenantNotFound);
        }
        let token = token.ok_or(Error::Unauthenticated)?;
        let principal = self
            .resolve_token(tx.as_mut(), token)
            .await?
            .ok_or(Error::Unauthenticated)?;
        self.touch_session(tx, &principal).await?;
        Ok(principal)
    }

    /// Keeps a session's idle clock running, writing at most once a minute.
    async fn touch_session(
        &self,
        mut tx: Box<dyn StoreTx>,
        principal: &Principal,
    ) -> Result<(), Error> {
        if let Principal::User {
            session: Some(token_hash),
            ..
        } = principal
        {
            if let Some(mut session) = tx.find_session(token_hash).await? {
                let now = self.now();
                if now - session.last_seen_at >= LAST_SEEN_GRANULARITY {
                    session.last_seen_at = now;
                    tx.update_session(&session).await?;
                    tx.commit().await?;
                }
            }
        }
        Ok(())
    }

    /// Ends the caller's session.
    ///
    /// # Errors
    /// `unauthenticated` when the caller has no session (an API key); `internal` when the
    /// store fails.
    pub async fn logout(&self, caller: &Caller) -> Result<(), Error> {
        let Principal::User {
            session: Some(token_hash),
            ..
        } = &caller.principal
        else {
            return Err(Error::Unauthenticated);
        };
        let mut tx = self.begin(TxScope::Platform).await?;
        tx.delete_session(token_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    /// SPEC §3.2 step 1 for the operations on the caller's own account and session that
    /// name no scope (`me`, the tenant list, step-up, TOTP enrolment, the password): a
    /// platform-suspended user is refused them as `decide` refuses them everything else,
    /// on the very next request after the suspension. Ending the session stays allowed.
    pub(super) fn refuse_suspended(user: &crate::model::User) -> Result<(), Error> {
        if user.state == UserState::Suspended {
            Err(Error::Forbidden(crate::authz::Reason::SubjectSuspended))
        } else {
            Ok(())
        }
    }

    /// [`Engine::refuse_suspended`] for a user read in a transaction of its own.
    pub(super) async fn refuse_suspended_user(&self, user: &UserId) -> Result<(), Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        let user = tx.get_user(user).await?.ok_or(Error::Unauthenticated)?;
        Self::refuse_suspended(&user)
    }

    pub(super) fn session_of(caller: &Caller) -> Result<(UserId, &str), Error> {
        match &caller.principal {
            Principal::User {
                user_id,
                session: Some(token_hash),
                ..
            } => Ok((*user_id, token_hash.as_str())),
            _ => Err(Error::Unauthenticated),
        }
    }

    /// Checks a TOTP code of `user` against their enrolment (confirmed or pending, as
    /// `confirmed` says) and the failure throttle, with no transaction open (the
    /// throttle's counter commits on its own). Returns the matching time step and the
    /// secret it matched, or `None` for a wrong code.
    ///
    /// A wrong code counts against the user's failure throttle before it is answered,
    /// so of any number of concurrent wrong codes at most [`TOTP_FAILURES`] get an
    /// answer other than `rate_limited`; a right code is answered only while the window
    /// is not full and does not count (a user's own double submit is not a guess).
    async fn check_totp(
        &self,
        user: &UserId,
        code: &str,
        confirmed: bool,
    ) -> Result<Option<(u64, String)>, Error> {
        let enrolment = {
            let mut tx = self.begin(TxScope::Platform).await?;
            tx.get_credentials(user)
                .await?
                .totp
                .filter(|enrolment| enrolment.confirmed == confirmed)
        };
        let key = ThrottleKey::TotpFailures(user);
        let step = enrolment.as_ref().and_then(|enrolment| {
            self.ports
                .totp
                .verify(&enrolment.secret, code, self.now())
                .map(|step| (step, enrolment.secret.clone()))
        });
        match step {
            Some(step) => {
                self.throttled(key, TOTP_FAILURES).await?;
                Ok(Some(step))
            }
            None => {
                self.throttle(key, TOTP_FAILURES).await?;
                Ok(None)
            }
        }
    }

    /// Records a refused TOTP code of `user` and returns `invalid_totp` (or the store's
    /// failure to record it).
    async fn refuse_totp(&self, step: AuthStep<'_>) -> Error {
        match self.refuse_auth(step, "invalid_totp").await {
            Ok(()) => Error::InvalidTotp,
            Err(error) => error,
        }
    }

    /// Raises the caller's session to `aal2` for the step-up TTL with a TOTP code.
    ///
    /// # Errors
    /// `forbidden` (`subject_suspended`) when the caller's user is platform-suspended;
    /// `unauthenticated` when the caller has no session (an API key) or the session ended
    /// meanwhile; `rate_limited` while the user's TOTP failure window is full (a wrong code
    /// counts); `invalid_totp` for a wrong code, no confirmed enrolment, or a code already
    /// used; `internal` when the store fails.
    pub async fn step_up(&self, caller: &Caller, code: &str) -> Result<NewSessionState, Error> {
        let (user, token_hash) = Self::session_of(caller)?;
        self.refuse_suspended_user(&user).await?;
        let target = user_target("session", &user);
        let refused = || AuthStep {
            actor: Self::user_actor(&user),
            action: "session.step_up",
            target: target.clone(),
            request_id: &caller.request_id,
        };
        let Some((step, _)) = self.check_totp(&user, code, true).await? else {
            return Err(self.refuse_totp(refused()).await);
        };
        let mut tx = self.begin(TxScope::Platform).await?;
        // Of concurrent uses of one code (on any sessions) exactly one burns its step.
        if !tx.burn_totp_step(&user, step).await? {
            drop(tx);
            return Err(self.refuse_totp(refused()).await);
        }
        let mut session = tx
            .find_session(token_hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let now = self.now();
        session.aal2_until = Some(now + self.config.step_up_ttl);
        session.last_seen_at = now;
        tx.update_session(&session).await?;
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user),
                action: "session.step_up",
                target,
                request_id: &caller.request_id,
            },
            Outcome::Allowed,
            "totp",
            Vec::new(),
        )
        .await?;
        Ok(NewSessionState {
            expires_at: session.expires_at,
            assurance: Assurance::Aal2,
            aal2_until: session.aal2_until,
        })
    }

    /// Starts TOTP enrolment with a fresh secret. Replacing a confirmed factor needs an
    /// `aal2` session, so a stolen password alone cannot move the second factor.
    ///
    /// # Errors
    /// `forbidden` (`subject_suspended`) when the caller's user is platform-suspended;
    /// `unauthenticated` when the caller has no session (an API key) or their user is gone;
    /// `forbidden` (`insufficient_assurance`) to replace a confirmed factor below `aal2`;
    /// `internal` when the store fails.
    pub async fn enroll_totp(&self, caller: &Caller) -> Result<TotpEnrolmentStart, Error> {
        let (user_id, _) = Self::session_of(caller)?;
        let mut tx = self.begin(TxScope::Platform).await?;
        let user = tx.get_user(&user_id).await?.ok_or(Error::Unauthenticated)?;
        Self::refuse_suspended(&user)?;
        let mut credentials = tx.get_credentials(&user_id).await?;
        // Whether the user has a confirmed factor, not whether the enrolment on file is
        // confirmed: once a re-enrolment is pending, the latter is false, and an `aal1`
        // session could replace the factor again.
        let has_factor =
            user.has_totp || credentials.totp.as_ref().is_some_and(|totp| totp.confirmed);
        let target = user_target("user", &user_id);
        if has_factor && caller.principal.assurance() < Assurance::Aal2 {
            drop(tx);
            self.refuse_auth(
                AuthStep {
                    actor: Self::user_actor(&user_id),
                    action: "user.totp.enroll",
                    target,
                    request_id: &caller.request_id,
                },
                "insufficient_assurance",
            )
            .await?;
            return Err(Error::Forbidden(
                crate::authz::Reason::InsufficientAssurance,
            ));
        }
        let secret = self.ports.secrets.totp_secret();
        credentials.totp = Some(TotpEnrolment {
            secret: secret.clone(),
            confirmed: false,
            last_used_step: None,
        });
        tx.set_credentials(&user_id, &credentials).await?;
        let otpauth_uri = self
            .ports
            .totp
            .provisioning_uri(&secret, user.email.as_str());
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user_id),
                action: "user.totp.enroll",
                target,
                request_id: &caller.request_id,
            },
            Outcome::Allowed,
            "self",
            Vec::new(),
        )
        .await?;
        Ok(TotpEnrolmentStart {
            secret,
            otpauth_uri,
        })
    }

    /// Confirms a pending enrolment with a first code; the session becomes `aal2`.
    ///
    /// # Errors
    /// `forbidden` (`subject_suspended`) when the caller's user is platform-suspended;
    /// `unauthenticated` when the caller has no session (an API key) or their user is gone;
    /// `rate_limited` while the user's TOTP failure window is full (a wrong code counts);
    /// `invalid_totp` for a wrong code, no pending enrolment, a code already used, or an
    /// enrolment replaced meanwhile; `internal` when the store fails.
    pub async fn confirm_totp(&self, caller: &Caller, code: &str) -> Result<(), Error> {
        let (user_id, token_hash) = Self::session_of(caller)?;
        self.refuse_suspended_user(&user_id).await?;
        let target = user_target("user", &user_id);
        let refused = || AuthStep {
            actor: Self::user_actor(&user_id),
            action: "user.totp.confirm",
            target: target.clone(),
            request_id: &caller.request_id,
        };
        let Some((step, secret)) = self.check_totp(&user_id, code, false).await? else {
            return Err(self.refuse_totp(refused()).await);
        };
        let mut tx = self.begin(TxScope::Platform).await?;
        if !tx.burn_totp_step(&user_id, step).await? {
            drop(tx);
            return Err(self.refuse_totp(refused()).await);
        }
        // Read again after the burn, which holds the row: the enrolment confirmed is the
        // one whose secret the code matched, not one a concurrent enrolment put there.
        let mut credentials = tx.get_credentials(&user_id).await?;
        match credentials.totp.as_mut() {
            Some(enrolment) if enrolment.secret == secret && !enrolment.confirmed => {
                enrolment.confirmed = true;
            }
            _ => {
                drop(tx);
                return Err(self.refuse_totp(refused()).await);
            }
        }
        tx.set_credentials(&user_id, &credentials).await?;
        let mut user = tx.get_user(&user_id).await?.ok_or(Error::Unauthenticated)?;
        user.has_totp = true;
        user.updated_at = self.now();
        tx.update_user(&user).await?;
        if let Some(mut session) = tx.find_session(token_hash).await? {
            session.aal2_until = Some(self.now() + self.config.step_up_ttl);
            tx.update_session(&session).await?;
        }
        self.notify(
            tx.as_mut(),
            &user_id,
            crate::mail::MailKind::FactorAdded {
                factor: "authenticator app (TOTP)",
            },
        )
        .await?;
        let event = self.event(
            Partition::Platform,
            user_id.to_string(),
            EventData::UserTotpEnrolled { id: user_id },
        );
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user_id),
                action: "user.totp.confirm",
                target,
                request_id: &caller.request_id,
            },
            Outcome::Allowed,
            "self",
            vec![event],
        )
        .await
    }

    /// Changes the caller's password after checking the current one, and ends every
    /// other session of the user.
    ///
    /// # Errors
    /// `forbidden` (`subject_suspended`) when the caller's user is platform-suspended;
    /// `unauthenticated` when the caller has no session (an API key); `invalid_credentials`
    /// when `current` is wrong; `internal` when the store or the password hasher fails.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: &str,
        new_password: &Password,
    ) -> Result<(), Error> {
        let (user_id, own_session) = Self::session_of(caller)?;
        self.refuse_suspended_user(&user_id).await?;
        let mut tx = self.begin(TxScope::Platform).await?;
        let mut credentials = tx.get_credentials(&user_id).await?;
        let target = user_target("user", &user_id);
        if !self
            .ports
            .passwords
            .verify(current, credentials.password_hash.as_deref())
            .await?
        {
            drop(tx);
            self.refuse_auth(
                AuthStep {
                    actor: Self::user_actor(&user_id),
                    action: "user.password.change",
                    target,
                    request_id: &caller.request_id,
                },
                "invalid_credentials",
            )
            .await?;
            return Err(Error::InvalidCredentials);
        }
        credentials.password_hash = Some(self.ports.passwords.hash(new_password.expose()).await?);
        tx.set_credentials(&user_id, &credentials).await?;
        // Whoever else holds a session of this user (perhaps the one who learned the old
        // password) is logged out; the caller's own session goes on (SPEC §3.6).
        tx.delete_sessions_of(&user_id, Some(own_session.to_owned()))
            .await?;
        self.notify(
            tx.as_mut(),
            &user_id,
            crate::mail::MailKind::PasswordChanged,
        )
        .await?;
        let event = self.event(
            Partition::Platform,
            user_id.to_string(),
            EventData::UserPasswordChanged { id: user_id },
        );
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user_id),
                action: "user.password.change",
                target,
                request_id: &caller.request_id,
            },
            Outcome::Allowed,
            "self",
            vec![event],
        )
        .await
    }

    /// The steps every use of a password-setting token shares: a first look (a token that
    /// cannot work costs no password hashing), the hashing with no transaction open (as
    /// for a login), then the token consumed in the transaction that will set the
    /// password, which it returns with the token's user and the new hash. Of concurrent
    /// uses exactly one consumes the token.
    ///
    /// With `failures` (a client address and its rule), a failure counts against the
    /// address's failed-credential window before its refusal is recorded, and a full
    /// window is `rate_limited` at once: so of any number of concurrent wrong tokens at
    /// most the rule's limit leave a record (SPEC §3.6).
    ///
    /// # Errors
    /// `invalid_credentials`, its refusal recorded, for an unknown, used or expired token,
    /// one consumed first by a concurrent use, or one whose user is gone (or, for a
    /// reset, still invited); `rate_limited` (nothing recorded) while or once the
    /// address's window is full; `internal` when the store or the password hasher fails.
    pub(super) async fn use_password_token(
        &self,
        kind: PasswordToken,
        token: &str,
        password: &Password,
        request_id: &str,
        failures: Option<(IpAddr, ThrottleRule)>,
    ) -> Result<(Box<dyn StoreTx>, User, String), Error> {
        if let Some((address, rule)) = failures {
            self.throttled(ThrottleKey::BearerFailures(address), rule)
                .await?;
        }
        let token_hash = hash_token(token);
        let (action, target_kind) = kind.names();
        let refused = || AuthStep {
            actor: Actor {
                kind: ActorType::Anonymous,
                id: target_kind.to_owned(),
            },
            action,
            target: AuditTarget {
                kind: target_kind,
                id: "unknown".to_owned(),
            },
            request_id,
        };
        let plausible = {
            let mut tx = self.begin(TxScope::Platform).await?;
            let now = self.now();
            let found = match kind {
                PasswordToken::Invitation => tx.find_invitation(&token_hash).await?,
                PasswordToken::PasswordReset => tx.find_password_reset(&token_hash).await?,
            };
            found.is_some_and(|token| token.used_at.is_none() && now < token.expires_at)
        };
        if !plausible {
            return Err(self.refuse_token(refused(), failures).await);
        }
        let password_hash = self.ports.passwords.hash(password.expose()).await?;
        let mut tx = self.begin(TxScope::Platform).await?;
        let now = self.now();
        let consumed = match kind {
            PasswordToken::Invitation => tx.consume_invitation(&token_hash, now).await?,
            PasswordToken::PasswordReset => tx.consume_password_reset(&token_hash, now).await?,
        };
        let user = match &consumed {
            Some(consumed) => tx.get_user(&consumed.user_id).await?,
            None => None,
        };
        let user = user
            .filter(|user| kind == PasswordToken::Invitation || user.state != UserState::Invited);
        let Some(user) = user else {
            drop(tx);
            return Err(self.refuse_token(refused(), failures).await);
        };
        Ok((tx, user, password_hash))
    }

    /// Refuses a password-setting token: counts the failure against `failures`' window
    /// first (`rate_limited`, nothing recorded, once it is over), then records the
    /// refusal; returns the error to answer.
    pub(super) async fn refuse_token(
        &self,
        step: AuthStep<'_>,
        failures: Option<(IpAddr, ThrottleRule)>,
    ) -> Error {
        if let Some((address, rule)) = failures {
            if let Err(error) = self
                .throttle(ThrottleKey::BearerFailures(address), rule)
                .await
            {
                return error;
            }
        }
        match self.refuse_auth(step, "invalid_credentials").await {
            Ok(()) => Error::InvalidCredentials,
            Err(error) => error,
        }
    }

    /// An invited user sets a password with their one-time token and becomes active.
    ///
    /// The token is used once, also under concurrency: of concurrent acceptances exactly
    /// one consumes the invitation ([`StoreTx::consume_invitation`]) and sets its
    /// password; the others get what a used token gets, `invalid_credentials`.
    ///
    /// # Errors
    /// `invalid_credentials` for an unknown, used or expired token (also one a concurrent
    /// acceptance consumed first); `internal` when the store or the password hasher fails.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: &Password,
        request_id: &str,
    ) -> Result<(), Error> {
        let (mut tx, mut user, password_hash) = self
            .use_password_token(PasswordToken::Invitation, token, password, request_id, None)
            .await?;
        let now = self.now();
        let mut credentials = tx.get_credentials(&user.id).await?;
        credentials.password_hash = Some(password_hash);
        tx.set_credentials(&user.id, &credentials).await?;
        let mut events = Vec::new();
        if user.state == UserState::Invited {
            user.state = UserState::Active;
            user.updated_at = now;
            tx.update_user(&user).await?;
            events.push(self.event(
                Partition::Platform,
                user.id.to_string(),
                EventData::UserStateChanged {
                    id: user.id,
                    state: UserState::Active,
                },
            ));
        }
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user.id),
                action: "invitation.accept",
                target: user_target("user", &user.id),
                request_id,
            },
            Outcome::Allowed,
            "invitation",
            events,
        )
        .await
    }
}

/// A session's state after a step-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSessionState {
    pub expires_at: OffsetDateTime,
    pub assurance: Assurance,
    pub aal2_until: Option<OffsetDateTime>,
}

/// `aal2` while the last TOTP check is fresh, `aal1` after.
pub fn session_assurance(session: &Session, now: OffsetDateTime) -> Assurance {
    if session.aal2_until.is_some_and(|until| now < until) {
        Assurance::Aal2
    } else {
        Assurance::Aal1
    }
}

/// Which single-use token sets a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PasswordToken {
    Invitation,
    PasswordReset,
}

impl PasswordToken {
    /// The action and target kind of its records.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Invitation => ("invitation.accept", "invitation"),
            Self::PasswordReset => ("user.password.reset", "password_reset"),
        }
    }
}

/// What the audit record of an authentication step names.
pub(super) struct AuthStep<'a> {
    pub(super) actor: Actor,
    pub(super) action: &'static str,
    pub(super) target: AuditTarget,
    pub(super) request_id: &'a str,
}
