//! [`Decisions`]: the backend's facts statement ([`Backend::FACTS_QUERY`]), one row,
//! assembled once by [`crate::FactsRow::into_facts`].

use async_trait::async_trait;
use domain::authz::AuthzFacts;
use domain::ids::TenantId;
use domain::ports::{Decisions, FactsQuery, StoreError, SubjectRef};

use super::SqlTx;
use crate::{Backend, FactsRow, Statement};

#[async_trait]
impl<B: Backend> Decisions for SqlTx<B> {
    async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError> {
        if let Some(tenant) = &query.tenant {
            self.scope.allow(tenant)?;
        }
        let (user, key) = match &query.subject {
            SubjectRef::User(user) => (Some(user.as_uuid()), None),
            SubjectRef::ApiKey(key) => (None, Some(key.as_uuid())),
        };
        let rows = self
            .backend
            .fetch(
                Statement::new(B::FACTS_QUERY)
                    .text_opt(query.tenant.as_ref().map(TenantId::as_str))
                    .id_opt(user)
                    .id_opt(key)
                    .text(query.scope.as_str())
                    .id_opt(query.target.as_ref().map(|target| target.as_uuid())),
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| crate::corrupt("decision facts"))?;
        FactsRow::read(row)?.into_facts(&query.subject, query.target, &self.scope)
    }
}
