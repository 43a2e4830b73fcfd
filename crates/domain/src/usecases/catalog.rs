//! Catalog and profile schema use cases: platform-root resources that any authenticated
//! caller may read.

use super::{Caller, Check, Engine};
use crate::audit::{AuditTarget, Partition};
use crate::catalog::{is_engine_scope, scopes};
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{Assurance, ProfileKey, ScopeName};
use crate::model::{CatalogScope, SchemaEntry};
use crate::ports::{StoreError, TxScope};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCatalogScope {
    pub name: ScopeName,
    pub description: String,
    pub platform_only: bool,
    pub min_assurance: Assurance,
}

fn platform_write() -> Check<'static> {
    Check {
        tenant: None,
        scope: scopes::PLATFORM_CATALOG_WRITE,
        target: None,
        self_service: false,
    }
}

impl Engine {
    /// The scope catalog, which any authenticated caller may read.
    ///
    /// # Errors
    /// Only a failing store (`internal`).
    pub async fn list_catalog(&self, _caller: &Caller) -> Result<Vec<CatalogScope>, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        Ok(tx.list_catalog().await?)
    }

    /// Adds an application scope to the catalog (`platform:catalog:write`).
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:catalog:write`; `invalid_request` for a description over 1024 characters
    /// or with NUL; `scope_exists` for an engine scope or one already in the catalog;
    /// `internal` when the store fails.
    pub async fn add_catalog_scope(
        &self,
        caller: &Caller,
        input: NewCatalogScope,
    ) -> Result<CatalogScope, Error> {
        let mut op = self.op(
            caller,
            "catalog.scope.add",
            AuditTarget {
                kind: "scope",
                id: input.name.to_string(),
            },
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(tx.as_mut(), &mut op, platform_write()).await?;
            if input.description.chars().count() > 1024 || input.description.contains('\0') {
                return Err(Error::InvalidRequest(
                    "description must be at most 1024 characters, without NUL".to_owned(),
                ));
            }
            tx.lock_partition(&Partition::Platform).await?;
            if is_engine_scope(&input.name) || tx.get_catalog_scope(&input.name).await?.is_some() {
                return Err(Error::ScopeExists);
            }
            let scope = CatalogScope {
                name: input.name,
                description: input.description,
                platform_only: input.platform_only,
                min_assurance: input.min_assurance,
            };
            tx.insert_catalog_scope(&scope)
                .await
                .map_err(|error| match error {
                    StoreError::Duplicate(_) => Error::ScopeExists,
                    other => Error::Store(other),
                })?;
            let event = self.event(
                Partition::Platform,
                scope.name.to_string(),
                EventData::CatalogScopeAdded {
                    name: scope.name.clone(),
                    platform_only: scope.platform_only,
                    min_assurance: scope.min_assurance,
                },
            );
            self.commit(tx, &op, vec![event]).await?;
            Ok(scope)
        }
        .await;
        self.finish(op, result).await
    }

    /// The profile schema, which any authenticated caller may read.
    ///
    /// # Errors
    /// Only a failing store (`internal`).
    pub async fn list_schema(&self, _caller: &Caller) -> Result<Vec<SchemaEntry>, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        Ok(tx.list_schema().await?)
    }

    /// One entry of the profile schema, which any authenticated caller may read.
    ///
    /// # Errors
    /// `not_found` when the schema has no such key; `internal` when the store fails.
    pub async fn get_schema_entry(
        &self,
        _caller: &Caller,
        key: &ProfileKey,
    ) -> Result<SchemaEntry, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        tx.list_schema()
            .await?
            .into_iter()
            .find(|entry| &entry.key == key)
            .ok_or(Error::NotFound)
    }

    /// Creates or changes a schema entry (`platform:catalog:write`). A key's type never
    /// changes once set, so stored values always match it.
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:catalog:write`; `invalid_request` to change the type of an existing key;
    /// `internal` when the store fails.
    pub async fn put_schema_entry(
        &self,
        caller: &Caller,
        entry: SchemaEntry,
    ) -> Result<SchemaEntry, Error> {
        let mut op = self.op(
            caller,
            "profile_schema.put",
            AuditTarget {
                kind: "profile_key",
                id: entry.key.to_string(),
            },
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(tx.as_mut(), &mut op, platform_write()).await?;
            tx.lock_partition(&Partition::Platform).await?;
            let existing = tx
                .list_schema()
                .await?
                .into_iter()
                .find(|current| current.key == entry.key);
            if existing
                .as_ref()
                .is_some_and(|current| current.value_type != entry.value_type)
            {
                return Err(Error::InvalidRequest(format!(
                    "the type of profile key {} cannot change",
                    entry.key
                )));
            }
            let mut events = Vec::new();
            if existing.as_ref() != Some(&entry) {
                tx.put_schema_entry(&entry).await?;
                events.push(self.event(
                    Partition::Platform,
                    entry.key.to_string(),
                    EventData::ProfileSchemaChanged {
                        key: entry.key.clone(),
                        value_type: entry.value_type,
                        user_editable: entry.user_editable,
                        tenant_overridable: entry.tenant_overridable,
                    },
                ));
            }
            self.commit(tx, &op, events).await?;
            Ok(entry)
        }
        .await;
        self.finish(op, result).await
    }
}
