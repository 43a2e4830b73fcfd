//! [`Catalog`] over SQLite: the platform's scope catalog and profile schema; a duplicate
//! scope checked before the insert.

use async_trait::async_trait;
use domain::ids::ScopeName;
use domain::model::{CatalogScope, SchemaEntry};
use domain::ports::{Catalog, StoreError};
use store_sql::rows::{SchemaRow, ScopeRow, SCHEMA_COLUMNS, SCOPE_COLUMNS};

use super::SqliteTx;

#[async_trait]
impl Catalog for SqliteTx {
    async fn list_catalog(&mut self) -> Result<Vec<CatalogScope>, StoreError> {
        self.fetch_all::<ScopeRow>(sqlx::query(&format!(
            "select {SCOPE_COLUMNS} from catalog_scopes order by name"
        )))
        .await
    }

    async fn get_catalog_scope(
        &mut self,
        name: &ScopeName,
    ) -> Result<Option<CatalogScope>, StoreError> {
        self.fetch_optional::<ScopeRow>(
            sqlx::query(&format!(
                "select {SCOPE_COLUMNS} from catalog_scopes where name = ?1"
            ))
            .bind(name.as_str()),
        )
        .await
    }

    async fn insert_catalog_scope(&mut self, scope: &CatalogScope) -> Result<(), StoreError> {
        if self
            .exists(
                "select 1 from catalog_scopes where name = ?1",
                &[scope.name.as_str()],
            )
            .await?
        {
            return Err(StoreError::Duplicate("scope"));
        }
        self.execute(
            sqlx::query(
                "insert into catalog_scopes (name, description, platform_only, min_assurance) \
                 values (?1, ?2, ?3, ?4)",
            )
            .bind(scope.name.as_str())
            .bind(&scope.description)
            .bind(scope.platform_only)
            .bind(scope.min_assurance.as_str()),
        )
        .await
        .map(|_| ())
    }

    async fn list_schema(&mut self) -> Result<Vec<SchemaEntry>, StoreError> {
        self.fetch_all::<SchemaRow>(sqlx::query(&format!(
            "select {SCHEMA_COLUMNS} from profile_schema order by key"
        )))
        .await
    }

    async fn put_schema_entry(&mut self, entry: &SchemaEntry) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into profile_schema (key, value_type, user_editable, tenant_overridable) \
                 values (?1, ?2, ?3, ?4) on conflict (key) do update set \
                 value_type = excluded.value_type, user_editable = excluded.user_editable, \
                 tenant_overridable = excluded.tenant_overridable",
            )
            .bind(entry.key.as_str())
            .bind(entry.value_type.as_str())
            .bind(entry.user_editable)
            .bind(entry.tenant_overridable),
        )
        .await
        .map(|_| ())
    }
}
