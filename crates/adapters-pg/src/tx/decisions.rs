//! [`Decisions`] over PostgreSQL: one call of the SQL function `authz_facts_rows`, the
//! one definition of what a decision reads (shared with `authorize_snapshot`), assembled
//! by `store_sql`.

use async_trait::async_trait;
use domain::authz::AuthzFacts;
use domain::ids::TenantId;
use domain::ports::{Decisions, FactsQuery, StoreError, SubjectRef};
use store_sql::FactsRow;

use super::PgTx;
use crate::columns::Pg;
use crate::errors::store_error;

const FACTS_QUERY: &str = "select * from authz_facts_rows($1, array[$2]::uuid[], \
    array[$3]::uuid[], array[$4]::text[], array[$5]::uuid[])";

#[async_trait]
impl Decisions for PgTx {
    async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError> {
        let (user, key) = match &query.subject {
            SubjectRef::User(user) => (Some(*user.as_uuid()), None),
            SubjectRef::ApiKey(key) => (None, Some(*key.as_uuid())),
        };
        let row = sqlx::query(FACTS_QUERY)
            .bind(query.tenant.as_ref().map(TenantId::as_str))
            .bind(user)
            .bind(key)
            .bind(query.scope.as_str())
            .bind(query.target.map(|target| *target.as_uuid()))
            .fetch_one(&mut *self.tx)
            .await
            .map_err(store_error)?;
        FactsRow::read(&Pg(&row))?.into_facts(&query.subject, query.target, &self.scope)
    }
}
