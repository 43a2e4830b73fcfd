//! The mocked transaction of the use cases' interaction tests (`MockStoreTx`): every
//! capability port, plus `commit`.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::capabilities::{
    ApiKeys, AuditLog, Authentication, Catalog, Decisions, Idempotency, IdempotencyRecord, Mailbox,
    Members, OAuth, Outbox, Profiles, Scim, SigningKeys, Tenants, Users, Webhooks,
};
use super::{AuditFilter, FactsQuery, OutboxBacklog, StoreError, StoreTx};
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
use crate::webhook::{Delivery, LeasedWebhook, Webhook, WebhookProgress};

mockall::mock! {
    pub StoreTx {}
    #[async_trait]
    impl Tenants for StoreTx {
        async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError>;
        async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError>;
        async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError>;
        async fn list_tenants(&mut self, after: Option<TenantId>, limit: usize) -> Result<Vec<Tenant>, StoreError>;
        async fn enabled_scopes(&mut self, tenant: &TenantId) -> Result<BTreeSet<ScopeName>, StoreError>;
        async fn set_enabled_scopes(&mut self, tenant: &TenantId, scopes: &BTreeSet<ScopeName>) -> Result<(), StoreError>;
        async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError>;
        async fn put_binding(&mut self, tenant: &TenantId, binding: &RoleBinding) -> Result<(), StoreError>;
        async fn delete_binding(&mut self, tenant: &TenantId, role: &RoleName) -> Result<bool, StoreError>;
    }
    #[async_trait]
    impl Members for StoreTx {
        async fn get_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<Option<Member>, StoreError>;
        async fn list_members(&mut self, tenant: &TenantId, after: Option<UserId>, limit: usize) -> Result<Vec<Member>, StoreError>;
        async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError>;
        async fn update_member(&mut self, member: &Member) -> Result<(), StoreError>;
        async fn delete_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError>;
        async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError>;
        async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError>;
    }
    #[async_trait]
    impl Users for StoreTx {
        async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError>;
        async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError>;
        async fn insert_user(&mut self, user: &User, credentials: &Credentials) -> Result<(), StoreError>;
        async fn update_user(&mut self, user: &User) -> Result<(), StoreError>;
        async fn erase_user(&mut self, tombstone: &User, now: OffsetDateTime) -> Result<(), StoreError>;
        async fn count_platform_roots(&mut self) -> Result<u64, StoreError>;
        async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError>;
    }
    #[async_trait]
    impl Authentication for StoreTx {
        async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError>;
        async fn set_credentials(&mut self, user: &UserId, credentials: &Credentials) -> Result<(), StoreError>;
        async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError>;
        async fn insert_session(&mut self, session: &Session, details: &SessionDetails) -> Result<(), StoreError>;
        async fn list_sessions_of(&mut self, user: &UserId) -> Result<Vec<(Session, SessionDetails)>, StoreError>;
        async fn delete_session_by_id(&mut self, user: &UserId, id: &SessionId) -> Result<bool, StoreError>;
        async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError>;
        async fn find_session_details(&mut self, token_hash: &str) -> Result<Option<(Session, SessionDetails)>, StoreError>;
        async fn update_session(&mut self, session: &Session) -> Result<(), StoreError>;
        async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError>;
        async fn delete_sessions_of(&mut self, user: &UserId, keep: Option<String>) -> Result<u64, StoreError>;
        async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError>;
        async fn find_invitation(&mut self, token_hash: &str) -> Result<Option<Invitation>, StoreError>;
        async fn consume_invitation(&mut self, token_hash: &str, now: OffsetDateTime) -> Result<Option<Invitation>, StoreError>;
        async fn insert_password_reset(&mut self, reset: &PasswordReset) -> Result<(), StoreError>;
        async fn find_password_reset(&mut self, token_hash: &str) -> Result<Option<PasswordReset>, StoreError>;
        async fn consume_password_reset(&mut self, token_hash: &str, now: OffsetDateTime) -> Result<Option<PasswordReset>, StoreError>;
        async fn void_password_resets_of(&mut self, user: &UserId, now: OffsetDateTime) -> Result<u64, StoreError>;
        async fn insert_email_verification(&mut self, verification: &EmailVerification) -> Result<(), StoreError>;
        async fn consume_email_verification(&mut self, token_hash: &str, now: OffsetDateTime) -> Result<Option<EmailVerification>, StoreError>;
        async fn delete_email_verifications_of(&mut self, user: &UserId) -> Result<u64, StoreError>;
        async fn replace_recovery_codes(&mut self, user: &UserId, code_hashes: &[String]) -> Result<(), StoreError>;
        async fn consume_recovery_code(&mut self, user: &UserId, code_hash: &str, now: OffsetDateTime) -> Result<bool, StoreError>;
        async fn delete_recovery_codes(&mut self, user: &UserId) -> Result<u64, StoreError>;
        async fn count_recovery_codes(&mut self, user: &UserId) -> Result<u64, StoreError>;
    }
    #[async_trait]
    impl Catalog for StoreTx {
        async fn list_catalog(&mut self) -> Result<Vec<CatalogScope>, StoreError>;
        async fn get_catalog_scope(&mut self, name: &ScopeName) -> Result<Option<CatalogScope>, StoreError>;
        async fn insert_catalog_scope(&mut self, scope: &CatalogScope) -> Result<(), StoreError>;
        async fn list_schema(&mut self) -> Result<Vec<SchemaEntry>, StoreError>;
        async fn put_schema_entry(&mut self, entry: &SchemaEntry) -> Result<(), StoreError>;
    }
    #[async_trait]
    impl Profiles for StoreTx {
        async fn member_values(&mut self, tenant: &TenantId, user: &UserId) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError>;
        async fn put_member_value(&mut self, tenant: &TenantId, user: &UserId, key: &ProfileKey, value: &ProfileValue) -> Result<(), StoreError>;
        async fn delete_member_value(&mut self, tenant: &TenantId, user: &UserId, key: &ProfileKey) -> Result<bool, StoreError>;
        async fn tenant_defaults(&mut self, tenant: &TenantId) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError>;
        async fn put_tenant_default(&mut self, tenant: &TenantId, key: &ProfileKey, value: &ProfileValue) -> Result<(), StoreError>;
        async fn delete_tenant_default(&mut self, tenant: &TenantId, key: &ProfileKey) -> Result<bool, StoreError>;
        async fn platform_values(&mut self, user: &UserId) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError>;
        async fn put_platform_value(&mut self, user: &UserId, key: &ProfileKey, value: &ProfileValue) -> Result<(), StoreError>;
        async fn delete_platform_value(&mut self, user: &UserId, key: &ProfileKey) -> Result<bool, StoreError>;
    }
    #[async_trait]
    impl ApiKeys for StoreTx {
        async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError>;
        async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError>;
        async fn get_api_key(&mut self, tenant: &TenantId, key: &KeyId) -> Result<Option<ApiKey>, StoreError>;
        async fn revoke_api_key(&mut self, tenant: &TenantId, key: &KeyId, at: OffsetDateTime) -> Result<(), StoreError>;
        async fn find_api_key_by_hash(&mut self, secret_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    }
    #[async_trait]
    impl Decisions for StoreTx {
        async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError>;
    }
    #[async_trait]
    impl AuditLog for StoreTx {
        async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError>;
        async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError>;
        async fn list_audit(&mut self, partition: &Partition, filter: &AuditFilter, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;
    }
    #[async_trait]
    impl Outbox for StoreTx {
        async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError>;
        async fn list_events(&mut self, partition: &Partition, after: u64, limit: usize) -> Result<Vec<Event>, StoreError>;
        async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError>;
        async fn events_with_subject(&mut self, subject: &str) -> Result<Vec<Event>, StoreError>;
        async fn replace_event_data(&mut self, partition: &Partition, position: u64, data: &serde_json::Value) -> Result<(), StoreError>;
    }
    #[async_trait]
    impl Idempotency for StoreTx {
        async fn claim_idempotency_key(&mut self, key: &str, body_tag: &str, now: OffsetDateTime, running_until: OffsetDateTime) -> Result<Option<IdempotencyRecord>, StoreError>;
        async fn finish_idempotency_key(&mut self, key: &str, response: Option<Vec<u8>>, keep_until: OffsetDateTime) -> Result<(), StoreError>;
    }
    #[async_trait]
    impl Mailbox for StoreTx {
        async fn queue_mail(&mut self, mail: &MailDraft) -> Result<(), StoreError>;
        async fn lease_mails(&mut self, now: OffsetDateTime, until: OffsetDateTime, limit: usize) -> Result<Vec<QueuedMail>, StoreError>;
        async fn record_mail_outcome(&mut self, id: uuid::Uuid, outcome: &MailOutcome, now: OffsetDateTime) -> Result<(), StoreError>;
        async fn mail_backlog(&mut self) -> Result<MailBacklog, StoreError>;
        async fn delete_mails_of(&mut self, user: &UserId) -> Result<u64, StoreError>;
    }
    #[async_trait]
    impl Webhooks for StoreTx {
        async fn insert_webhook(&mut self, hook: &Webhook, secret: &str) -> Result<(), StoreError>;
        async fn update_webhook(&mut self, hook: &Webhook) -> Result<(), StoreError>;
        async fn get_webhook(&mut self, tenant: &TenantId, name: &str) -> Result<Option<Webhook>, StoreError>;
        async fn list_webhooks(&mut self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError>;
        async fn delete_webhook(&mut self, tenant: &TenantId, name: &str) -> Result<bool, StoreError>;
        async fn set_webhook_secret(&mut self, tenant: &TenantId, name: &str, secret: &str) -> Result<bool, StoreError>;
        async fn list_deliveries(&mut self, tenant: &TenantId, name: &str, after: u64, limit: usize) -> Result<Vec<Delivery>, StoreError>;
        async fn webhook_health(&mut self, tenant: &TenantId) -> Result<Vec<(String, u64, Option<OffsetDateTime>)>, StoreError>;
        async fn lease_webhooks(&mut self, now: OffsetDateTime, until: OffsetDateTime, limit: usize) -> Result<Vec<LeasedWebhook>, StoreError>;
        async fn record_webhook_progress(&mut self, tenant: &TenantId, name: &str, progress: &WebhookProgress, attempts: &[Delivery]) -> Result<(), StoreError>;
    }
    #[async_trait]
    impl SigningKeys for StoreTx {
        async fn insert_signing_key(&mut self, key: &crate::signing::SigningKey) -> Result<(), StoreError>;
        async fn list_signing_keys(&mut self) -> Result<Vec<crate::signing::SigningKey>, StoreError>;
        async fn retire_signing_keys(&mut self, at: OffsetDateTime) -> Result<u64, StoreError>;
    }
    #[async_trait]
    impl OAuth for StoreTx {
        async fn insert_oauth_client(&mut self, client: &crate::oidc::OAuthClient, secret_hash: Option<String>) -> Result<(), StoreError>;
        async fn get_oauth_client(&mut self, id: &crate::oidc::ClientId) -> Result<Option<(crate::oidc::OAuthClient, Option<String>)>, StoreError>;
        async fn list_oauth_clients(&mut self, owner: Option<TenantId>) -> Result<Vec<crate::oidc::OAuthClient>, StoreError>;
        async fn delete_oauth_client(&mut self, id: &crate::oidc::ClientId) -> Result<bool, StoreError>;
        async fn insert_grant(&mut self, grant: &crate::oidc::Grant) -> Result<(), StoreError>;
        async fn take_grant(&mut self, tenant: &TenantId, kind: crate::oidc::GrantKind, token_hash: &str, now: OffsetDateTime) -> Result<crate::oidc::Taken, StoreError>;
        async fn get_grant(&mut self, tenant: &TenantId, kind: crate::oidc::GrantKind, token_hash: &str) -> Result<Option<crate::oidc::Grant>, StoreError>;
        async fn revoke_grant_family(&mut self, tenant: &TenantId, family: uuid::Uuid, now: OffsetDateTime) -> Result<u64, StoreError>;
        async fn find_session_by_id(&mut self, id: &SessionId) -> Result<Option<Session>, StoreError>;
        async fn get_consent(&mut self, tenant: &TenantId, user: &UserId, client: &crate::oidc::ClientId) -> Result<Option<crate::oidc::Consent>, StoreError>;
        async fn put_consent(&mut self, consent: &crate::oidc::Consent) -> Result<(), StoreError>;
        async fn list_consents(&mut self, tenant: &TenantId, user: &UserId) -> Result<Vec<crate::oidc::Consent>, StoreError>;
        async fn delete_consent(&mut self, tenant: &TenantId, user: &UserId, client: &crate::oidc::ClientId) -> Result<bool, StoreError>;
        async fn revoke_client_grants(&mut self, tenant: &TenantId, user: &UserId, client: &crate::oidc::ClientId, now: OffsetDateTime) -> Result<u64, StoreError>;
    }
    #[async_trait]
    impl Scim for StoreTx {
        async fn get_scim_identity(&mut self, tenant: &TenantId, user: &UserId) -> Result<Option<crate::scim::model::ScimIdentity>, StoreError>;
        async fn put_scim_identity(&mut self, tenant: &TenantId, user: &UserId, identity: &crate::scim::model::ScimIdentity) -> Result<(), StoreError>;
        async fn find_scim_users(&mut self, tenant: &TenantId, query: &crate::scim::model::UserQuery) -> Result<(u64, Vec<UserId>), StoreError>;
        async fn list_scim_groups(&mut self, tenant: &TenantId) -> Result<Vec<crate::scim::model::ScimGroup>, StoreError>;
        async fn put_scim_group(&mut self, group: &crate::scim::model::ScimGroup) -> Result<(), StoreError>;
        async fn role_holders(&mut self, tenant: &TenantId, role: &RoleName) -> Result<Vec<(UserId, String)>, StoreError>;
    }
    #[async_trait]
    impl StoreTx for StoreTx {
        async fn commit(self: Box<Self>) -> Result<(), StoreError>;
    }
}
