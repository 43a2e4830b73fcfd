//! [`Catalog`]: the platform's scope catalog and profile schema.

use async_trait::async_trait;
use domain::ids::ScopeName;
use domain::model::{CatalogScope, SchemaEntry};
use domain::ports::{Catalog, StoreError};

use super::SqlTx;
use crate::rows::{SchemaRow, ScopeRow, SCHEMA_COLUMNS, SCOPE_COLUMNS};
use crate::{Backend, Statement};

#[async_trait]
impl<B: Backend> Catalog for SqlTx<B> {
    async fn list_catalog(&mut self) -> Result<Vec<CatalogScope>, StoreError> {
        self.all::<ScopeRow>(Statement::new(format!(
            "select {SCOPE_COLUMNS} from catalog_scopes order by name{}",
            B::BYTEWISE
        )))
        .await
    }

    async fn get_catalog_scope(
        &mut self,
        name: &ScopeName,
    ) -> Result<Option<CatalogScope>, StoreError> {
        self.optional::<ScopeRow>(
            Statement::new(format!(
                "select {SCOPE_COLUMNS} from catalog_scopes where name = $1"
            ))
            .text(name.as_str()),
        )
        .await
    }

    async fn insert_catalog_scope(&mut self, scope: &CatalogScope) -> Result<(), StoreError> {
        self.refuse_duplicate(
            "scope",
            Statement::new("select 1 as one from catalog_scopes where name = $1")
                .text(scope.name.as_str()),
        )
        .await?;
        self.execute(
            Statement::new(
                "insert into catalog_scopes (name, description, platform_only, min_assurance) \
                 values ($1, $2, $3, $4)",
            )
            .text(scope.name.as_str())
            .text(&scope.description)
            .flag(scope.platform_only)
            .text(scope.min_assurance.as_str()),
        )
        .await
        .map(|_| ())
    }

    async fn list_schema(&mut self) -> Result<Vec<SchemaEntry>, StoreError> {
        self.all::<SchemaRow>(Statement::new(format!(
            "select {SCHEMA_COLUMNS} from profile_schema order by key{}",
            B::BYTEWISE
        )))
        .await
    }

    async fn put_schema_entry(&mut self, entry: &SchemaEntry) -> Result<(), StoreError> {
        self.execute(
            Statement::new(
                "insert into profile_schema (key, value_type, user_editable, tenant_overridable) \
                 values ($1, $2, $3, $4) on conflict (key) do update set \
                 value_type = excluded.value_type, user_editable = excluded.user_editable, \
                 tenant_overridable = excluded.tenant_overridable",
            )
            .text(entry.key.as_str())
            .text(entry.value_type.as_str())
            .flag(entry.user_editable)
            .flag(entry.tenant_overridable),
        )
        .await
        .map(|_| ())
    }
}
