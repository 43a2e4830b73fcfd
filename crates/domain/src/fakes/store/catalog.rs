//! [`Catalog`] on the in-memory state.

use super::*;

#[async_trait]
impl Catalog for MemTx {
    async fn list_catalog(&mut self) -> Result<Vec<CatalogScope>, StoreError> {
        Ok(self.working.catalog.values().cloned().collect())
    }

    async fn get_catalog_scope(
        &mut self,
        name: &ScopeName,
    ) -> Result<Option<CatalogScope>, StoreError> {
        Ok(self.working.catalog.get(name).cloned())
    }

    async fn insert_catalog_scope(&mut self, scope: &CatalogScope) -> Result<(), StoreError> {
        if self.working.catalog.contains_key(&scope.name) {
            return Err(StoreError::Duplicate("scope"));
        }
        self.working
            .catalog
            .insert(scope.name.clone(), scope.clone());
        Ok(())
    }

    async fn list_schema(&mut self) -> Result<Vec<SchemaEntry>, StoreError> {
        Ok(self.working.schema.values().cloned().collect())
    }

    async fn put_schema_entry(&mut self, entry: &SchemaEntry) -> Result<(), StoreError> {
        self.working.schema.insert(entry.key.clone(), entry.clone());
        Ok(())
    }
}
