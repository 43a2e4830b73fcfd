//! Reads of the audit trails and the event feeds, and audit chain verification.

use super::tenants::tenant_check;
use super::{paginate, Caller, Check, Engine};
use crate::audit::{AuditRecord, AuditTarget, ChainBreak, ChainVerifier, Partition};
use crate::catalog::scopes;
use crate::cursor::{self, List};
use crate::error::Error;
use crate::event::Event;
use crate::ports::{AuditFilter, Page, TxScope};

fn scope_of(partition: &Partition) -> TxScope {
    match partition {
        Partition::Tenant(tenant) => TxScope::Tenant(tenant.clone()),
        Partition::Platform => TxScope::Platform,
    }
}

impl Engine {
    /// A tenant's audit trail (`audit:read`), oldest first.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `audit:read`; `invalid_cursor` for a cursor this trail did not give out; `internal`
    /// when the store fails.
    pub async fn tenant_audit(
        &self,
        caller: &Caller,
        tenant: &crate::ids::TenantId,
        filter: &AuditFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, Error> {
        let partition = Partition::Tenant(tenant.clone());
        let mut op = self.op(
            caller,
            "audit.read",
            AuditTarget {
                kind: "audit_trail",
                id: tenant.to_string(),
            },
            partition.clone(),
        );
        let result = async {
            let mut tx = self.begin(scope_of(&partition)).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::AUDIT_READ),
            )
            .await?;
            let after = cursor::decode_number(List::Audit, partition.name(), after)?;
            let rows = tx.list_audit(&partition, filter, after, limit + 1).await?;
            Ok(paginate(rows, limit, |record: &AuditRecord| {
                cursor::encode(List::Audit, partition.name(), &record.seq.to_string())
            }))
        }
        .await;
        self.finish(op, result).await
    }

    /// The platform's audit trail (`platform:audit:read`).
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:audit:read`; `invalid_cursor` for a cursor this trail did not give out;
    /// `internal` when the store fails.
    pub async fn platform_audit(
        &self,
        caller: &Caller,
        filter: &AuditFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, Error> {
        self.audit_as_platform(caller, &Partition::Platform, filter, after, limit)
            .await
    }

    /// Any tenant's audit trail read with `platform:audit:read` (`platform_auditor`,
    /// `platform_root`), who see every trail without being members of the tenant.
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:audit:read`; then `tenant_not_found` when the tenant does not exist;
    /// `invalid_cursor` for a cursor this trail did not give out; `internal` when the store
    /// fails.
    pub async fn platform_tenant_audit(
        &self,
        caller: &Caller,
        tenant: &crate::ids::TenantId,
        filter: &AuditFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, Error> {
        self.audit_as_platform(
            caller,
            &Partition::Tenant(tenant.clone()),
            filter,
            after,
            limit,
        )
        .await
    }

    /// Reads one trail under the platform scope check. The read itself is audited in
    /// the platform's trail: it is a platform role, not tenant membership, that allows it.
    async fn audit_as_platform(
        &self,
        caller: &Caller,
        partition: &Partition,
        filter: &AuditFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, Error> {
        let mut op = self.op(
            caller,
            "audit.read",
            AuditTarget {
                kind: "audit_trail",
                id: partition.name().to_owned(),
            },
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                Check {
                    tenant: None,
                    scope: scopes::PLATFORM_AUDIT_READ,
                    target: None,
                    self_service: false,
                },
            )
            .await?;
            // Checked after the scope, so only a platform reader learns which tenants
            // exist; an unknown tenant is a 404 rather than an empty trail.
            if let Some(tenant) = partition.tenant() {
                tx.get_tenant(tenant).await?.ok_or(Error::TenantNotFound)?;
            }
            let after = cursor::decode_number(List::Audit, partition.name(), after)?;
            let rows = tx.list_audit(partition, filter, after, limit + 1).await?;
            Ok(paginate(rows, limit, |record: &AuditRecord| {
                cursor::encode(List::Audit, partition.name(), &record.seq.to_string())
            }))
        }
        .await;
        self.finish(op, result).await
    }

    /// A tenant's event feed (`events:read`) in commit order, after a position.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `events:read`; `invalid_cursor` for a cursor this feed did not give out; `internal`
    /// when the store fails.
    pub async fn tenant_events(
        &self,
        caller: &Caller,
        tenant: &crate::ids::TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Event>, Error> {
        let partition = Partition::Tenant(tenant.clone());
        let mut op = self.op(
            caller,
            "events.read",
            AuditTarget {
                kind: "event_feed",
                id: tenant.to_string(),
            },
            partition.clone(),
        );
        let result = async {
            let mut tx = self.begin(scope_of(&partition)).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::EVENTS_READ),
            )
            .await?;
            let after = cursor::decode_number(List::Events, partition.name(), after)?;
            let rows = tx.list_events(&partition, after, limit + 1).await?;
            let position = |event: &Event| {
                cursor::encode(List::Events, partition.name(), &event.position.to_string())
            };
            let mut page = paginate(rows, limit, position);
            // The feed always says where to resume (SPEC §4): on its last page, after
            // its last event, or where the reader already was.
            if page.next_cursor.is_none() {
                page.next_cursor = Some(page.items.last().map_or_else(
                    || cursor::encode(List::Events, partition.name(), &after.to_string()),
                    position,
                ));
            }
            Ok(page)
        }
        .await;
        self.finish(op, result).await
    }

    /// Walks a whole trail and names the first broken record. An operator command, not
    /// an API operation: it takes no caller.
    ///
    /// # Errors
    /// Only a failing store (`internal`); a broken chain is the inner `Err`.
    pub async fn verify_trail(
        &self,
        partition: &Partition,
    ) -> Result<Result<u64, ChainBreak>, Error> {
        let mut tx = self.begin(scope_of(partition)).await?;
        // Page by page: a trail of any length is verified in the memory of one page.
        let mut verifier = ChainVerifier::default();
        let mut after = 0;
        loop {
            let page = tx
                .list_audit(partition, &AuditFilter::default(), after, 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in &page {
                verifier.push(record);
            }
        }
        Ok(verifier.finish())
    }

    /// Verifies the platform's trail, then every tenant's in id order. Like
    /// [`Engine::verify_trail`], an operator command that takes no caller.
    ///
    /// # Errors
    /// Only a failing store (`internal`); a broken chain is a trail's inner `Err`.
    pub async fn verify_all_trails(
        &self,
    ) -> Result<Vec<(Partition, Result<u64, ChainBreak>)>, Error> {
        // The tenants are listed first, in one platform-scope transaction of their own,
        // so no listing transaction stays open while the trails are walked.
        let mut tenants = Vec::new();
        {
            let mut tx = self.begin(TxScope::Platform).await?;
            let mut after = None;
            loop {
                let page = tx.list_tenants(after.clone(), 500).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id.clone());
                tenants.extend(page.into_iter().map(|tenant| tenant.id));
            }
        }
        let mut reports = Vec::with_capacity(tenants.len() + 1);
        for partition in
            std::iter::once(Partition::Platform).chain(tenants.into_iter().map(Partition::Tenant))
        {
            let verdict = self.verify_trail(&partition).await?;
            reports.push((partition, verdict));
        }
        Ok(reports)
    }
}
