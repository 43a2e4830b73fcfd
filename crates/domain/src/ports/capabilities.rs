//! The capabilities of a store transaction, one port each; [`super::StoreTx`] is their
//! union plus `commit`. A use case helper takes the narrowest one it needs.
//!
//! The split follows what the use cases ask together, and the tables behind it:
//! [`Tenants`] (a tenant, its enabled scopes and role bindings: what a tenant admin
//! configures), [`Members`] (tenant accounts and their roles), [`Users`] (platform
//! users), [`Authentication`] (what a sign-in proves or uses up: credentials, sessions,
//! invitations, reset and verification tokens, TOTP steps, recovery codes), [`Catalog`] (the platform's scopes and profile schema),
//! [`Profiles`] (profile values at their three layers), [`ApiKeys`], [`Decisions`] (the
//! facts of one decision, the hot path), [`AuditLog`] (the partition lock and the hash
//! chained trail), [`Outbox`] (the event feed and what waits for the relay),
//! [`Idempotency`] (the records that make a POST's retry replay its first answer) and
//! [`Mailbox`] (the mail queue).
//!
//! Rules every method keeps, stated once here:
//! - **Tenant scope.** In a transaction begun with [`TxScope::Tenant`](super::TxScope)
//!   a method MUST NOT read or change another tenant's rows. It MUST refuse a
//!   tenant-scoped call naming another tenant with `Unavailable`
//!   ([`TxScope::allow`](super::TxScope::allow)), and filter lookups that name no tenant
//!   ([`TxScope::sees`](super::TxScope::sees)). Every store does so before touching
//!   data (the SQL stores in their shared core); PostgreSQL's row-level security hides
//!   the rows again beneath it.
//! - **Errors.** Every method returns `Unavailable` when the store cannot be reached or
//!   holds a value the domain refuses, and MAY return `Conflict` when the transaction
//!   lost a race the store cannot serialise (the caller may retry). The `# Errors`
//!   sections name what else a method MUST return. A write naming a row that does not
//!   exist (an unknown user, scope or profile key) fails with `Missing(<what>)` in the
//!   SQL stores, whose foreign keys or checks refuse it; the in-memory fake checks only
//!   what an `# Errors` section says MUST be checked, because the use cases check the
//!   rest before they write.
//! - **Unit of work.** Nothing a method writes is visible to another transaction before
//!   commit, and all of it is gone when the transaction is dropped.
//! - **Order.** Lists are ordered as their docs say, byte-wise (`collate "C"`), never by
//!   a locale.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::oidc::{ClientId, Consent, Grant, GrantKind, OAuthClient, Taken};
use crate::scim::model::{ScimGroup, ScimIdentity, UserQuery};

use super::{AuditFilter, FactsQuery, OutboxBacklog, StoreError};
use crate::audit::{AuditDraft, AuditRecord, Partition};
use crate::authz::AuthzFacts;
use crate::event::{Event, EventDraft};
use crate::ids::{
    Email, KeyId, ProfileKey, ProfileValue, RoleName, ScopeName, SessionId, TenantId, UserId,
};
use crate::mail::{MailBacklog, MailDraft, MailOutcome, QueuedMail};
use crate::model::{
    ApiKey, CatalogScope, Credentials, EmailVerification, Invitation, Member, PasswordReset,
    RoleBinding, SchemaEntry, Session, SessionDetails, Tenant, User,
};
use crate::signing::SigningKey;
use crate::webhook::{Delivery, LeasedWebhook, Webhook, WebhookProgress};

/// A tenant, its enabled scopes and its role bindings.
#[async_trait]
pub trait Tenants: Send {
    /// The tenant, when it exists (and, in a tenant transaction, is the scope's own).
    async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Creates a tenant. Ids are never reused: a deleted tenant's id stays taken.
    ///
    /// # Errors
    /// MUST return `Duplicate("tenant")` when the id was ever used.
    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError>;

    /// Replaces the tenant's display name, state and `updated_at`.
    ///
    /// # Errors
    /// MUST return `Missing("tenant")` when there is no such tenant.
    async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError>;

    /// At most `limit` tenants ordered by id, after `after`. A platform-wide read: a
    /// store refuses it in a tenant transaction.
    async fn list_tenants(
        &mut self,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Vec<Tenant>, StoreError>;

    /// The catalog scopes the tenant enabled (empty for an unknown tenant).
    async fn enabled_scopes(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, StoreError>;

    /// Replaces the tenant's enabled scopes with `scopes`.
    ///
    /// # Errors
    /// MUST return `Missing("tenant")` for an unknown tenant when `scopes` is not empty
    /// (the fake and SQLite also for an empty set). The SQL stores return
    /// `Missing("scope")` for a scope not in the catalog.
    async fn set_enabled_scopes(
        &mut self,
        tenant: &TenantId,
        scopes: &BTreeSet<ScopeName>,
    ) -> Result<(), StoreError>;

    /// The tenant's bindings ordered by role name, each with its scopes.
    async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError>;

    /// Creates or replaces the binding of `binding.role` with exactly its scopes.
    ///
    /// # Errors
    /// MUST return `Missing("tenant")` for an unknown tenant. The SQL stores return
    /// `Missing("scope")` for a scope not in the catalog.
    async fn put_binding(
        &mut self,
        tenant: &TenantId,
        binding: &RoleBinding,
    ) -> Result<(), StoreError>;

    /// Deletes the binding of `role` with its scopes; returns whether one existed.
    async fn delete_binding(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<bool, StoreError>;
}

/// Tenant accounts (members) with their roles.
#[async_trait]
pub trait Members: Send {
    /// The user's account in the tenant, with the user's email and the account's roles.
    async fn get_member(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Member>, StoreError>;

    /// At most `limit` members of the tenant ordered by user id, after `after`.
    async fn list_members(
        &mut self,
        tenant: &TenantId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError>;

    /// Creates an account with its roles.
    ///
    /// # Errors
    /// MUST return `Duplicate("member")` when the user already has an account there,
    /// `Missing("tenant")` for an unknown tenant and `Missing("user")` for an unknown
    /// user.
    async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError>;

    /// Replaces the account's state, version, `updated_at` and roles.
    ///
    /// # Errors
    /// MUST return `Missing("member")` when there is no such account.
    async fn update_member(&mut self, member: &Member) -> Result<(), StoreError>;

    /// Deletes the account, its roles and its tenant profile values; API keys it created
    /// forget their creator.
    ///
    /// # Errors
    /// MUST return `Missing("member")` when there is no such account.
    async fn delete_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError>;

    /// How many `active` accounts of the tenant hold `tenant_admin`. Callers lock the
    /// tenant's partition first, so concurrent changes count one after the other.
    async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError>;

    /// Every account of a user, in any tenant, ordered by tenant id. A platform-wide
    /// read: a store refuses it in a tenant transaction.
    async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError>;
}

/// Platform users (no tenant: visible to every transaction).
#[async_trait]
pub trait Users: Send {
    /// The user, when it exists.
    async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError>;

    /// The user whose email equals `email` ignoring case.
    async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Creates a user with their credentials.
    ///
    /// # Errors
    /// MUST return `Duplicate("email")` when the email is taken (ignoring case), and
    /// `Duplicate("user")` when the id is.
    async fn insert_user(
        &mut self,
        user: &User,
        credentials: &Credentials,
    ) -> Result<(), StoreError>;

    /// Replaces the user's email, state, platform roles, TOTP flag and `updated_at`.
    ///
    /// # Errors
    /// MUST return `Missing("user")` when there is no such user.
    async fn update_user(&mut self, user: &User) -> Result<(), StoreError>;

    /// Erases the user (SPEC §4 `DELETE /v1/users/{user}`): writes `tombstone` (an address
    /// derived from the id, no roles, suspended) over the user and marks the row erased
    /// at `now`. From then on [`Users::get_user`] and [`Users::find_user_by_email`] find
    /// no such user, and the id is never used again.
    ///
    /// # Errors
    /// MUST return `Missing("user")` when there is no such user (erased ones included).
    async fn erase_user(&mut self, tombstone: &User, now: OffsetDateTime)
        -> Result<(), StoreError>;

    /// How many users hold `platform_root`, in any state.
    async fn count_platform_roots(&mut self) -> Result<u64, StoreError>;

    /// Platform roots whose user is `active`: the `last_platform_root` invariant keeps
    /// this at one or more. Callers lock the platform partition first, so concurrent
    /// changes count one after the other.
    async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError>;
}

/// What a sign-in proves or uses up: credentials, sessions, invitations, TOTP steps.
/// Sessions and invitations are platform rows (no tenant).
#[async_trait]
pub trait Authentication: Send {
    /// The user's credentials; the default (none) when the user has none stored.
    async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError>;

    /// Creates or replaces the user's credentials.
    ///
    /// # Errors
    /// MUST return `Missing("user")` for an unknown user.
    async fn set_credentials(
        &mut self,
        user: &UserId,
        credentials: &Credentials,
    ) -> Result<(), StoreError>;

    /// Burns a TOTP time step of `user` (RFC 6238 §5.2: a code is accepted once): records
    /// `step` as the last used one, and returns `true`, unless the user has no TOTP
    /// enrolment or a step at or after `step` is already recorded.
    ///
    /// It MUST return `false` when another transaction burned this step (or a later one),
    /// committed or not yet: of concurrent calls with one step exactly one returns `true`.
    /// As with [`Authentication::consume_invitation`], an adapter waits for the other
    /// transaction and re-checks, or serialises writers.
    async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError>;

    /// Stores a new session with its details.
    ///
    /// # Errors
    /// The SQL stores return `Missing("user")` for an unknown user.
    async fn insert_session(
        &mut self,
        session: &Session,
        details: &SessionDetails,
    ) -> Result<(), StoreError>;

    /// Every session of `user`, expired or not, with its details, oldest first (by
    /// creation, then id).
    async fn list_sessions_of(
        &mut self,
        user: &UserId,
    ) -> Result<Vec<(Session, SessionDetails)>, StoreError>;

    /// Deletes the session of `user` with the public id `id`; returns whether one was
    /// deleted (`false` for another user's session, which stays).
    async fn delete_session_by_id(
        &mut self,
        user: &UserId,
        id: &SessionId,
    ) -> Result<bool, StoreError>;

    /// The session whose token hashes to `token_hash`, expired or not.
    async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError>;

    /// [`Authentication::find_session`] with the session's details (its public id).
    async fn find_session_details(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<(Session, SessionDetails)>, StoreError>;

    /// Replaces the expiry, last-seen time and `aal2_until` of the session
    /// `session.token_hash` names.
    async fn update_session(&mut self, session: &Session) -> Result<(), StoreError>;

    /// Deletes the session; returns whether it existed.
    async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError>;

    /// Deletes every session of `user` except the one whose token hash is `keep` (all of
    /// them when `keep` is `None`); returns how many it deleted.
    async fn delete_sessions_of(
        &mut self,
        user: &UserId,
        keep: Option<String>,
    ) -> Result<u64, StoreError>;

    /// Stores a new invitation.
    ///
    /// # Errors
    /// The SQL stores return `Missing("user")` for an unknown user.
    async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError>;

    /// The invitation whose token hashes to `token_hash`, used or not.
    async fn find_invitation(&mut self, token_hash: &str)
        -> Result<Option<Invitation>, StoreError>;

    /// Uses the invitation `token_hash` names: marks it used at `now` and returns it as
    /// it now stands, when it exists, is unused and `now` is before its expiry.
    ///
    /// This is the one step of an acceptance that only one transaction may win (SPEC
    /// §3.6: a single-use secret is used once, also under concurrency). It MUST return
    /// `None` when another transaction used the invitation, committed or not yet: an
    /// adapter either waits for that transaction and re-checks (PostgreSQL's read
    /// committed re-evaluates a conditional update's `where` on the row's newest
    /// version) or serialises writers so the check and the mark cannot interleave.
    async fn consume_invitation(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError>;

    /// Stores a new password reset token.
    ///
    /// # Errors
    /// The SQL stores return `Missing("user")` for an unknown user.
    async fn insert_password_reset(&mut self, reset: &PasswordReset) -> Result<(), StoreError>;

    /// The password reset token whose hash is `token_hash`, used or not.
    async fn find_password_reset(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<PasswordReset>, StoreError>;

    /// Uses the password reset token `token_hash` names, exactly as
    /// [`Authentication::consume_invitation`] uses an invitation: of concurrent calls
    /// exactly one gets it.
    async fn consume_password_reset(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PasswordReset>, StoreError>;

    /// Marks every unused password reset token of `user` used at `now` (a reset that
    /// succeeded voids the others); returns how many.
    async fn void_password_resets_of(
        &mut self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Stores a new email verification token (the new address waits in it).
    ///
    /// # Errors
    /// The SQL stores return `Missing("user")` for an unknown user.
    async fn insert_email_verification(
        &mut self,
        verification: &EmailVerification,
    ) -> Result<(), StoreError>;

    /// Uses the email verification token `token_hash` names, exactly as
    /// [`Authentication::consume_invitation`] uses an invitation: of concurrent calls
    /// exactly one gets it.
    async fn consume_email_verification(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<EmailVerification>, StoreError>;

    /// Deletes every email verification of `user` (each holds an address); returns how
    /// many.
    async fn delete_email_verifications_of(&mut self, user: &UserId) -> Result<u64, StoreError>;

    /// Replaces every recovery code of `user` with `code_hashes` (unused).
    async fn replace_recovery_codes(
        &mut self,
        user: &UserId,
        code_hashes: &[String],
    ) -> Result<(), StoreError>;

    /// Uses the unused recovery code of `user` that hashes to `code_hash`: true when
    /// this call marked it used. Of concurrent calls with one code exactly one gets true,
    /// as [`Authentication::consume_invitation`].
    async fn consume_recovery_code(
        &mut self,
        user: &UserId,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Deletes every recovery code of `user`; returns how many there were.
    async fn delete_recovery_codes(&mut self, user: &UserId) -> Result<u64, StoreError>;

    /// How many unused recovery codes `user` holds.
    async fn count_recovery_codes(&mut self, user: &UserId) -> Result<u64, StoreError>;
}

/// A tenant's webhooks and their deliveries (SPEC §6): tenant rows; the worker's lease
/// and progress need a platform transaction.
#[async_trait]
pub trait Webhooks: Send {
    /// Stores a new hook with its secret, its cursor at the end of the tenant's feed now
    /// (it is sent the events committed after it).
    ///
    /// # Errors
    /// MUST return `Duplicate("webhook")` when the tenant has a hook of that name.
    async fn insert_webhook(&mut self, hook: &Webhook, secret: &str) -> Result<(), StoreError>;

    /// Replaces a hook's url, types and `updated_at`.
    ///
    /// # Errors
    /// MUST return `Missing("webhook")` when there is no such hook.
    async fn update_webhook(&mut self, hook: &Webhook) -> Result<(), StoreError>;

    async fn get_webhook(
        &mut self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<Webhook>, StoreError>;

    /// The tenant's hooks by name.
    async fn list_webhooks(&mut self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError>;

    /// Deletes a hook and its deliveries; false when there was none.
    async fn delete_webhook(&mut self, tenant: &TenantId, name: &str) -> Result<bool, StoreError>;

    /// Replaces a hook's secret; false when there is no such hook.
    async fn set_webhook_secret(
        &mut self,
        tenant: &TenantId,
        name: &str,
        secret: &str,
    ) -> Result<bool, StoreError>;

    /// A hook's deliveries by feed position, after `after`.
    async fn list_deliveries(
        &mut self,
        tenant: &TenantId,
        name: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// The tenant's hooks with deliveries given up (how many), and when the oldest
    /// retrying delivery was first tried, by hook name (the `delivery.failing`
    /// diagnostic).
    async fn webhook_health(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, u64, Option<OffsetDateTime>)>, StoreError>;

    /// Leases up to `limit` hooks that have events past their cursor and are due at
    /// `now` (no live lease), until `until`. Platform transactions only; an adapter MUST
    /// NOT lease a hook to two transactions at once.
    async fn lease_webhooks(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<LeasedWebhook>, StoreError>;

    /// Records a pass over a hook: each attempt (one row per event, replaced by the next
    /// attempt) and where the hook stands; ends its lease.
    async fn record_webhook_progress(
        &mut self,
        tenant: &TenantId,
        name: &str,
        progress: &WebhookProgress,
        attempts: &[Delivery],
    ) -> Result<(), StoreError>;
}

/// The mail queue (SPEC §6): platform rows, no tenant; any transaction may queue, only a
/// platform transaction leases or records.
#[async_trait]
pub trait Mailbox: Send {
    /// Queues a rendered mail, due at once; it is sent only if the transaction commits.
    async fn queue_mail(&mut self, mail: &MailDraft) -> Result<(), StoreError>;

    /// Leases up to `limit` mails that are due at `now` (not sent, not given up, next
    /// attempt reached, no live lease) until `until`, counting an attempt on each;
    /// oldest due first.
    ///
    /// An adapter MUST NOT lease a mail to two transactions at once (PostgreSQL:
    /// `FOR UPDATE SKIP LOCKED`; one writer: serialised).
    async fn lease_mails(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<QueuedMail>, StoreError>;

    /// Records what an attempt on mail `id` came to, and ends its lease. A sent or given up
    /// mail keeps no body (a body may hold a token).
    async fn record_mail_outcome(
        &mut self,
        id: uuid::Uuid,
        outcome: &MailOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The queue's state: waiting mails, the oldest's time, given up mails.
    async fn mail_backlog(&mut self) -> Result<MailBacklog, StoreError>;

    /// Deletes every mail concerning `user` (erasure); returns how many.
    async fn delete_mails_of(&mut self, user: &UserId) -> Result<u64, StoreError>;
}

/// The platform's scope catalog and profile schema (no tenant).
#[async_trait]
pub trait Catalog: Send {
    /// The catalog ordered by name.
    async fn list_catalog(&mut self) -> Result<Vec<CatalogScope>, StoreError>;

    /// The catalog scope `name`, when it exists.
    async fn get_catalog_scope(
        &mut self,
        name: &ScopeName,
    ) -> Result<Option<CatalogScope>, StoreError>;

    /// Adds a scope to the catalog.
    ///
    /// # Errors
    /// MUST return `Duplicate("scope")` when the name exists.
    async fn insert_catalog_scope(&mut self, scope: &CatalogScope) -> Result<(), StoreError>;

    /// The profile schema ordered by key.
    async fn list_schema(&mut self) -> Result<Vec<SchemaEntry>, StoreError>;

    /// Creates or replaces the schema entry of `entry.key`.
    async fn put_schema_entry(&mut self, entry: &SchemaEntry) -> Result<(), StoreError>;
}

/// Profile values at their three layers (SPEC §3.4): a member's in a tenant, a tenant's
/// defaults, and a user's platform values. Each `delete_*` returns whether a value
/// existed.
#[async_trait]
pub trait Profiles: Send {
    /// The member's values in the tenant, by key.
    async fn member_values(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError>;

    /// Creates or replaces the member's value of `key`.
    ///
    /// # Errors
    /// MUST return `Missing("member")` when the user has no account in the tenant. The
    /// SQL stores return `Missing("profile_key")` for a key not in the schema.
    async fn put_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError>;

    /// Deletes the member's value of `key`.
    async fn delete_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError>;

    /// The tenant's defaults, by key.
    async fn tenant_defaults(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError>;

    /// Creates or replaces the tenant's default of `key`.
    ///
    /// # Errors
    /// MUST return `Missing("tenant")` for an unknown tenant. The SQL stores return
    /// `Missing("profile_key")` for a key not in the schema.
    async fn put_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError>;

    /// Deletes the tenant's default of `key`.
    async fn delete_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError>;

    /// The user's platform values, by key.
    async fn platform_values(
        &mut self,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError>;

    /// Creates or replaces the user's platform value of `key`.
    ///
    /// # Errors
    /// MUST return `Missing("user")` for an unknown user. The SQL stores return
    /// `Missing("profile_key")` for a key not in the schema.
    async fn put_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError>;

    /// Deletes the user's platform value of `key`.
    async fn delete_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError>;
}

/// A tenant's API keys; the secret is kept only as its hash.
#[async_trait]
pub trait ApiKeys: Send {
    /// Stores a new key with the hash of its secret.
    ///
    /// # Errors
    /// MUST return `Duplicate("api_key")` when the id or the secret hash exists and
    /// `Missing("member")` when the creator has no account in the tenant. The SQL
    /// stores return `Missing("tenant")` for an unknown tenant, and SQLite
    /// `Missing("scope")` for a scope not in the catalog (PostgreSQL keeps a key's
    /// scopes as an array, which no foreign key covers).
    async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError>;

    /// The tenant's keys, revoked ones included, ordered by id.
    async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError>;

    /// The tenant's key `key`, revoked or not.
    async fn get_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
    ) -> Result<Option<ApiKey>, StoreError>;

    /// Marks the key revoked at `at` (again, when it already was).
    ///
    /// # Errors
    /// MUST return `Missing("api_key")` when the tenant has no such key.
    async fn revoke_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Looks a key up by the hash of its secret (platform scope: the tenant is not known
    /// yet). In a tenant transaction, another tenant's key is not found.
    async fn find_api_key_by_hash(
        &mut self,
        secret_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError>;
}

/// The facts of a decision (the authorize hot path).
#[async_trait]
pub trait Decisions: Send {
    /// Every fact one decision needs, in one call: the tenant's state, the subject (a
    /// user, or an unrevoked key this transaction may see), its account and roles in the
    /// tenant, the scope's catalog entry and whether the tenant enabled it, the roles of
    /// the account bound to the scope, and the target user. Something that does not
    /// exist is `None` (or empty), never an error.
    async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError>;
}

/// The partition lock and the hash-chained audit trail of each partition.
#[async_trait]
pub trait AuditLog: Send {
    /// Takes the write lock of a partition (tenant or platform), held until commit or
    /// rollback.
    ///
    /// Adapters MUST serialise mutating transactions of one partition from their first
    /// call to commit, so invariant checks (last tenant admin, last platform root)
    /// cannot race, and audit `seq` and feed positions follow commit order. A tenant
    /// transaction may lock its own partition and the platform's.
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError>;

    /// Appends a record at the end of its partition's chain: the next `seq` (from 1), the
    /// previous record's hash (the genesis hash first), sealed with
    /// [`AuditRecord::seal`]. Records are never changed or deleted.
    async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError>;

    /// At most `limit` records of a trail matching `filter`, in `seq` order, after
    /// `after_seq`.
    async fn list_audit(
        &mut self,
        partition: &Partition,
        filter: &AuditFilter,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// The event feed of each partition, which is also the relay's outbox.
#[async_trait]
pub trait Outbox: Send {
    /// Appends an event at the next position of its partition's feed (from 1), its time
    /// truncated to microseconds.
    async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError>;

    /// At most `limit` events of a feed in position order, after `after`.
    async fn list_events(
        &mut self,
        partition: &Partition,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// The tenant's outbox backlog: how many events of its feed (partition
    /// `Tenant(tenant)` only, never the platform's) no relay has marked published yet,
    /// and the `time` the oldest of them carries. It writes nothing.
    ///
    /// An event counts as waiting from its commit until a relay marks it published; an
    /// adapter that has no relay at all MUST still report every event of the feed as
    /// waiting (the diagnostics decide whether a relay is expected, not the store).
    async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError>;

    /// Every event of every feed this transaction sees whose `subject` is `subject`, in
    /// partition and position order (erasure finds a user's events by it).
    async fn events_with_subject(&mut self, subject: &str) -> Result<Vec<Event>, StoreError>;

    /// Replaces the `data` of the event at `position` of `partition` (erasure's
    /// redaction); nothing else of the event changes.
    ///
    /// # Errors
    /// MUST return `Missing("event")` when there is no such event.
    async fn replace_event_data(
        &mut self,
        partition: &Partition,
        position: u64,
        data: &serde_json::Value,
    ) -> Result<(), StoreError>;
}

/// What the store holds for one `Idempotency-Key` (SPEC §4): the tag of the first
/// request's body, and its response once it finished. Both are opaque to the store: the
/// API derives the tag and seals the response with secrets the store never sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub body_tag: String,
    /// `None` while the first request still runs.
    pub response: Option<Vec<u8>>,
}

/// Idempotency records, shared by every node (SPEC §4, §7): a retry that reaches
/// another node finds what the first node stored. Keys are platform-wide (a hash of the
/// caller, the path and the client's key), never a tenant's rows.
#[async_trait]
pub trait Idempotency: Send {
    /// Claims `key` for a request whose body has `body_tag`, unless a record of it is
    /// live at `now` (a record whose `expires_at` has passed counts as absent and is
    /// replaced). Returns `None` when this transaction now holds the key as running,
    /// live until `running_until`; else the live record. Of concurrent claims of one
    /// key, exactly one gets `None`. It also removes a few records that have expired.
    async fn claim_idempotency_key(
        &mut self,
        key: &str,
        body_tag: &str,
        now: OffsetDateTime,
        running_until: OffsetDateTime,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Finishes a claim: stores `response`, live until `keep_until`; with `None`, frees
    /// the key for a retry.
    async fn finish_idempotency_key(
        &mut self,
        key: &str,
        response: Option<Vec<u8>>,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// The OpenID provider's signing keys (a platform table; SPEC §9). Their private parts
/// arrive sealed: an adapter stores and returns the bytes as they are.
#[async_trait]
pub trait SigningKeys: Send {
    /// Stores a new key.
    ///
    /// An adapter MUST refuse a `kid` already stored (`Duplicate`), so a key id is never
    /// reused.
    async fn insert_signing_key(&mut self, key: &SigningKey) -> Result<(), StoreError>;

    /// Every key, retired ones included, newest first.
    async fn list_signing_keys(&mut self) -> Result<Vec<SigningKey>, StoreError>;

    /// Retires every key not yet retired, at `at`; returns how many.
    async fn retire_signing_keys(&mut self, at: OffsetDateTime) -> Result<u64, StoreError>;
}

/// The OpenID provider's clients, codes and refresh tokens (SPEC §9). A platform client
/// is a platform row; a tenant client, and every code and refresh token, a row of its
/// tenant.
#[async_trait]
pub trait OAuth: Send {
    /// Stores a new client with the hash of its secret (`None` for a public client).
    ///
    /// # Errors
    /// `Unavailable` for a platform client outside a platform transaction or a tenant
    /// client outside its tenant's; `Duplicate("oauth client")` for an id in use.
    async fn insert_oauth_client(
        &mut self,
        client: &OAuthClient,
        secret_hash: Option<String>,
    ) -> Result<(), StoreError>;

    /// The client `id` names and the hash of its secret; `None` when there is none.
    ///
    /// # Errors
    /// `Unavailable` for a platform client outside a platform transaction or a tenant
    /// client outside its tenant's.
    async fn get_oauth_client(
        &mut self,
        id: &ClientId,
    ) -> Result<Option<(OAuthClient, Option<String>)>, StoreError>;

    /// The platform's clients (`owner` `None`) or a tenant's, oldest first.
    async fn list_oauth_clients(
        &mut self,
        owner: Option<TenantId>,
    ) -> Result<Vec<OAuthClient>, StoreError>;

    /// Deletes a client, every code and refresh token issued to it and every consent
    /// given to it; whether it existed. A platform client's grants span tenants: a platform transaction.
    async fn delete_oauth_client(&mut self, id: &ClientId) -> Result<bool, StoreError>;

    /// Stores a new code or refresh token.
    async fn insert_grant(&mut self, grant: &Grant) -> Result<(), StoreError>;

    /// Takes the grant of `kind` whose secret hashes to `token_hash` in `tenant`: when
    /// it is live at `now`, marks it used and answers `Fresh`. An adapter MUST make
    /// this atomic: of concurrent takes of one grant exactly one is `Fresh`, the others
    /// `Spent`.
    async fn take_grant(
        &mut self,
        tenant: &TenantId,
        kind: GrantKind,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Taken, StoreError>;

    /// The grant of `kind` whose secret hashes to `token_hash` in `tenant`, live or not,
    /// without using it (introspection).
    async fn get_grant(
        &mut self,
        tenant: &TenantId,
        kind: GrantKind,
        token_hash: &str,
    ) -> Result<Option<Grant>, StoreError>;

    /// Revokes, at `now`, every grant of `family` not yet revoked; how many.
    async fn revoke_grant_family(
        &mut self,
        tenant: &TenantId,
        family: uuid::Uuid,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// The session with the public id `id`, expired or not (a token's `sid`).
    async fn find_session_by_id(&mut self, id: &SessionId) -> Result<Option<Session>, StoreError>;

    /// `user`'s consent to `client` in `tenant`, if they gave one.
    async fn get_consent(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
    ) -> Result<Option<Consent>, StoreError>;

    /// Stores a consent, replacing the user's earlier one to the same client in the
    /// tenant.
    ///
    /// # Errors
    /// `Missing("member")` when the user has no account in the tenant.
    async fn put_consent(&mut self, consent: &Consent) -> Result<(), StoreError>;

    /// `user`'s consents in `tenant`, oldest first.
    async fn list_consents(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Consent>, StoreError>;

    /// Deletes `user`'s consent to `client` in `tenant`; whether there was one.
    async fn delete_consent(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
    ) -> Result<bool, StoreError>;

    /// Revokes, at `now`, every code and refresh token of `user` for `client` in
    /// `tenant` not yet revoked; how many.
    async fn revoke_client_grants(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;
}

/// SCIM provisioning's own rows (SPEC §8): members' SCIM identities and the groups
/// created through SCIM. Members, roles and profile values themselves go through
/// [`Members`], [`Tenants`] and [`Profiles`].
#[async_trait]
pub trait Scim: Send {
    /// `user`'s SCIM identity in `tenant`, if they were provisioned.
    async fn get_scim_identity(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<ScimIdentity>, StoreError>;

    /// Stores `user`'s SCIM identity in `tenant`, replacing any earlier one.
    ///
    /// # Errors
    /// `Duplicate("scim user name")` when another member of the tenant has the same
    /// `userName` ignoring ASCII case; `Missing("member")` when the user has no account
    /// in the tenant.
    async fn put_scim_identity(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        identity: &ScimIdentity,
    ) -> Result<(), StoreError>;

    /// How many of `tenant`'s members `query`'s filter selects, and the ids of the page
    /// it asks for, in user id order. The filter MUST select exactly the members
    /// [`crate::scim::filter::matches`] selects on their [`crate::scim::model::UserRecord`],
    /// and name only [`crate::scim::model::USER_FILTER_ATTRIBUTES`] (the use case checks).
    async fn find_scim_users(
        &mut self,
        tenant: &TenantId,
        query: &UserQuery,
    ) -> Result<(u64, Vec<UserId>), StoreError>;

    /// The groups created through SCIM in `tenant`, in role order.
    async fn list_scim_groups(&mut self, tenant: &TenantId) -> Result<Vec<ScimGroup>, StoreError>;

    /// Stores a group created through SCIM, replacing the role's earlier one.
    ///
    /// # Errors
    /// `Duplicate("scim group name")` when another group of the tenant has the same
    /// `displayName` ignoring ASCII case; `Missing("role")` when the role has no binding.
    async fn put_scim_group(&mut self, group: &ScimGroup) -> Result<(), StoreError>;

    /// The members of `tenant` holding `role`, each with their `userName` (their SCIM
    /// identity's, else their email), in user id order.
    async fn role_holders(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<Vec<(UserId, String)>, StoreError>;
}
