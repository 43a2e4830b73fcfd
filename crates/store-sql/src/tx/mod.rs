//! The one implementation of the store ports over SQL: [`SqlTx`], a transaction of any
//! [`Backend`], implements every capability port of `domain::ports`, one module per
//! capability, with each statement written once (placeholders `$n`, the few fragments
//! that differ asked of the backend).
//!
//! Tenant scope is refused here, before any SQL runs, in both stores
//! ([`TxScope::allow`], [`TxScope::sees`]): the in-memory fake's rule. PostgreSQL's
//! row-level security stays the second wall under it; SQLite has no other.

mod api_keys;
mod audit;
mod authentication;
mod catalog;
mod decisions;
mod idempotency;
mod mailbox;
mod members;
mod oauth;
mod outbox;
mod profiles;
mod scim;
mod signing_keys;
mod tenants;
mod users;
mod webhooks;

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::catalog::{default_catalog, default_schema};
use domain::ids::{ProfileKey, ProfileValue, TenantId, UserId};
use domain::ports::{StoreError, StoreTx, TxScope};

use crate::rows::{Shape, ValueRow};
use crate::{from_sql_int, Backend, Columns, Statement};

/// A store transaction over a [`Backend`].
pub struct SqlTx<B: Backend> {
    backend: B,
    scope: TxScope,
}

impl<B: Backend> std::fmt::Debug for SqlTx<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlTx")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> SqlTx<B> {
    /// A transaction seeing what `scope` allows.
    pub fn new(backend: B, scope: TxScope) -> Self {
        Self { backend, scope }
    }

    /// The backend, for an adapter's own statements in the same transaction.
    pub fn backend(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Adds the domain's default scope catalog and profile schema, keeping what exists.
    ///
    /// # Errors
    /// As [`Backend::execute`].
    pub async fn seed_defaults(&mut self) -> Result<(), StoreError> {
        for scope in default_catalog() {
            self.execute(
                Statement::new(
                    "insert into catalog_scopes (name, description, platform_only, min_assurance) \
                     values ($1, $2, $3, $4) on conflict (name) do nothing",
                )
                .text(scope.name.as_str())
                .text(&scope.description)
                .flag(scope.platform_only)
                .text(scope.min_assurance.as_str()),
            )
            .await?;
        }
        for entry in default_schema() {
            self.execute(
                Statement::new(
                    "insert into profile_schema (key, value_type, user_editable, tenant_overridable) \
                     values ($1, $2, $3, $4) on conflict (key) do nothing",
                )
                .text(entry.key.as_str())
                .text(entry.value_type.as_str())
                .flag(entry.user_editable)
                .flag(entry.tenant_overridable),
            )
            .await?;
        }
        Ok(())
    }

    /// Runs a statement that changes rows; the number changed.
    async fn execute(&mut self, statement: Statement) -> Result<u64, StoreError> {
        self.backend.execute(statement).await
    }

    /// The row a read returns, if any, as the value of its shape.
    async fn optional<S: Shape>(
        &mut self,
        statement: Statement,
    ) -> Result<Option<S::Value>, StoreError> {
        let rows = self.backend.fetch(statement).await?;
        rows.first().map(S::decode).transpose()
    }

    /// Every row a read returns, as values of its shape.
    async fn all<S: Shape>(&mut self, statement: Statement) -> Result<Vec<S::Value>, StoreError> {
        let rows = self.backend.fetch(statement).await?;
        rows.iter().map(S::decode).collect()
    }

    /// Profile values (`key`, `value` rows) by key.
    async fn values(
        &mut self,
        statement: Statement,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        let rows = self.backend.fetch(statement).await?;
        rows.iter().map(ValueRow::decode).collect()
    }

    /// The one integer column `n` of the row a read returns (a `count(*) as n`).
    async fn count(&mut self, statement: Statement) -> Result<u64, StoreError> {
        let rows = self.backend.fetch(statement).await?;
        let row = rows.first().ok_or_else(|| crate::corrupt("count"))?;
        from_sql_int(row.int("n")?, "count")
    }

    /// Whether a check before a write finds a row, in the writing phase.
    async fn exists(&mut self, statement: Statement) -> Result<bool, StoreError> {
        Ok(!self.backend.fetch_writing(statement).await?.is_empty())
    }

    /// Fails with `Missing(what)` unless the check finds a row, where the backend asks
    /// for checks ([`Backend::CHECKS_BEFORE_WRITE`]).
    async fn require(
        &mut self,
        what: &'static str,
        statement: Statement,
    ) -> Result<(), StoreError> {
        if !B::CHECKS_BEFORE_WRITE || self.exists(statement).await? {
            Ok(())
        } else {
            Err(StoreError::Missing(what))
        }
    }

    /// Fails with `Duplicate(what)` when the check finds a row, where the backend asks
    /// for checks.
    async fn refuse_duplicate(
        &mut self,
        what: &'static str,
        statement: Statement,
    ) -> Result<(), StoreError> {
        if B::CHECKS_BEFORE_WRITE && self.exists(statement).await? {
            Err(StoreError::Duplicate(what))
        } else {
            Ok(())
        }
    }

    async fn require_tenant(&mut self, tenant: &TenantId) -> Result<(), StoreError> {
        self.require(
            "tenant",
            Statement::new("select 1 as one from tenants where tenant_id = $1")
                .text(tenant.as_str()),
        )
        .await
    }

    async fn require_user(&mut self, user: &UserId) -> Result<(), StoreError> {
        self.require(
            "user",
            Statement::new("select 1 as one from users where user_id = $1").id(user.as_uuid()),
        )
        .await
    }

    async fn require_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        self.require(
            "member",
            Statement::new("select 1 as one from accounts where tenant_id = $1 and user_id = $2")
                .text(tenant.as_str())
                .id(user.as_uuid()),
        )
        .await
    }

    async fn require_profile_key(&mut self, key: &ProfileKey) -> Result<(), StoreError> {
        self.require(
            "profile_key",
            Statement::new("select 1 as one from profile_schema where key = $1").text(key.as_str()),
        )
        .await
    }

    /// Fails with `Missing("scope")` unless every scope is in the catalog, where the
    /// backend asks for checks.
    async fn require_scopes<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        let unknown = B::CHECKS_BEFORE_WRITE
            && self
                .exists(
                    Statement::new(format!(
                        "select 1 as one from (select {}) as listed \
                         where value not in (select name from catalog_scopes)",
                        B::each(1)
                    ))
                    .names(names),
                )
                .await?;
        if unknown {
            Err(StoreError::Missing("scope"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl<B: Backend> StoreTx for SqlTx<B> {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.backend.commit().await
    }
}
