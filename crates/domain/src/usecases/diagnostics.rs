//! The facts of a tenant's onboarding diagnostics (SPEC §6), gathered through the ports.
//!
//! Gathering only reads, with one exception that is the point of `audit.writable`: it
//! appends a probe record to the tenant's trail and then drops the transaction, so the
//! store proves it accepts an append for the tenant and the rollback leaves no trace (no
//! record, no consumed `seq`). The checks themselves are pure functions over
//! [`TenantFacts`] in the `diagnostics` crate; nothing here judges the facts.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::tenants::tenant_check;
use super::{tenant_target, Caller, Engine};
use crate::audit::{Actor, ActorType, AuditDraft, ChainBreak, ChainVerifier, Outcome, Partition};
use crate::catalog::scopes;
use crate::error::Error;
use crate::ids::{Email, RoleName, ScopeName, TenantId, UserId};
use crate::model::{AccountState, ApiKey, CatalogScope, RoleBinding, Tenant, UserState};
use crate::ports::{AuditFilter, AuditLog, OutboxBacklog, StoreTx, TxScope};

/// The audit action of the probe record that `audit.writable` appends and rolls back.
pub const AUDIT_PROBE_ACTION: &str = "diagnostics.audit_probe";

/// Page size for the walks over members and the audit trail.
const WALK_PAGE: usize = 500;

/// One holder of `tenant_admin`, whatever the state of their account or user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminFacts {
    pub user_id: UserId,
    pub email: Email,
    pub account_state: AccountState,
    /// The user's platform state; `None` when the store has no such user.
    pub user_state: Option<UserState>,
    /// The user has a confirmed TOTP enrolment (can reach `aal2`).
    pub has_totp: bool,
}

impl AdminFacts {
    /// Whether this admin can act in the tenant today: an active account of an active
    /// user (a platform-suspended user is denied everything, an invited one cannot log in).
    pub fn can_act(&self) -> bool {
        self.account_state == AccountState::Active && self.user_state == Some(UserState::Active)
    }
}

/// The tenant's audit trail as read, and its verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailFacts {
    pub records: u64,
    /// `seq` and `hash` of the last record, if any.
    pub last: Option<(u64, String)>,
    /// The chain's verification: the first modified, missing or reordered record.
    pub chain: Result<(), ChainBreak>,
}

/// What happened to the probe append of `audit.writable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditProbe {
    /// The store accepted the probe at `seq` after `prev_hash` (then rolled it back).
    /// `previous` is the `(seq, hash)` of the record the trail held at `seq - 1` while
    /// the probe held the partition lock; `None` when the trail held none.
    Accepted {
        seq: u64,
        prev_hash: String,
        previous: Option<(u64, String)>,
    },
    /// The store refused the append; the text is the store's error, for the operator.
    Refused(String),
}

/// Everything the diagnostics of one tenant look at, read in one tenant-scoped
/// transaction that is never committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantFacts {
    pub tenant: Tenant,
    /// The engine clock when the facts were read (the `outbox.lag` reference).
    pub gathered_at: OffsetDateTime,
    /// Every account holding `tenant_admin`, ordered by user id.
    pub admins: Vec<AdminFacts>,
    /// How many accounts (in any state) hold each role.
    pub role_holders: BTreeMap<RoleName, u64>,
    pub enabled_scopes: BTreeSet<ScopeName>,
    pub catalog: BTreeMap<ScopeName, CatalogScope>,
    /// The stored bindings (`tenant_admin` is never among them), ordered by role.
    pub bindings: Vec<RoleBinding>,
    /// The tenant's API keys that are not revoked.
    pub api_keys: Vec<ApiKey>,
    pub trail: TrailFacts,
    pub probe: AuditProbe,
    pub outbox: OutboxBacklog,
    /// Each webhook by name: deliveries given up, and since when the event at its head
    /// has been failing (`None` when none is).
    pub webhooks: Vec<(String, u64, Option<OffsetDateTime>)>,
}

impl Engine {
    /// The facts of a tenant's onboarding diagnostics (`diagnostics:read`). A successful
    /// read writes nothing (the probe is rolled back); a refusal writes its `denied` record.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `diagnostics:read`; `internal` when the store fails. A refused probe is a fact
    /// ([`AuditProbe::Refused`]), not an error.
    pub async fn tenant_diagnostics(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<TenantFacts, Error> {
        let mut op = self.op(
            caller,
            "diagnostics.read",
            tenant_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::DIAGNOSTICS_READ),
            )
            .await?;
            self.gather(tx, tenant, &caller.request_id).await
        }
        .await;
        self.finish(op, result).await
    }

    /// The same facts for an operator command (`user-engine diagnose`), which runs as the
    /// system on the database it was given and takes no caller.
    ///
    /// # Errors
    /// `TenantNotFound` when the tenant does not exist; `Store` when the store fails.
    pub async fn tenant_diagnostics_as_operator(
        &self,
        tenant: &TenantId,
        request_id: &str,
    ) -> Result<TenantFacts, Error> {
        let tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        self.gather(tx, tenant, request_id).await
    }

    /// Every tenant id in id order, for `user-engine diagnose --all`. An operator
    /// command: it takes no caller.
    ///
    /// # Errors
    /// Only a failing store (`internal`).
    pub async fn all_tenant_ids(&self) -> Result<Vec<TenantId>, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let page = tx.list_tenants(after.clone(), WALK_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            ids.extend(page.into_iter().map(|tenant| tenant.id));
        }
        Ok(ids)
    }

    /// Reads every fact, appends the probe last (a store that refuses it may refuse any
    /// further statement of the transaction), and drops the transaction uncommitted.
    async fn gather(
        &self,
        mut tx: Box<dyn StoreTx>,
        tenant_id: &TenantId,
        request_id: &str,
    ) -> Result<TenantFacts, Error> {
        let tenant = tx
            .get_tenant(tenant_id)
            .await?
            .ok_or(Error::TenantNotFound)?;
        let gathered_at = self.now();

        let mut admins = Vec::new();
        let mut role_holders: BTreeMap<RoleName, u64> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = tx.list_members(tenant_id, after, WALK_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.user_id);
            for member in page {
                for role in &member.roles {
                    *role_holders.entry(role.clone()).or_default() += 1;
                }
                if member.roles.iter().any(RoleName::is_tenant_admin) {
                    let user = tx.get_user(&member.user_id).await?;
                    admins.push(AdminFacts {
                        user_id: member.user_id,
                        email: member.email,
                        account_state: member.state,
                        user_state: user.as_ref().map(|user| user.state),
                        has_totp: user.is_some_and(|user| user.has_totp),
                    });
                }
            }
        }

        let enabled_scopes = tx.enabled_scopes(tenant_id).await?;
        let catalog = tx
            .list_catalog()
            .await?
            .into_iter()
            .map(|scope| (scope.name.clone(), scope))
            .collect();
        let bindings = tx.list_bindings(tenant_id).await?;
        let api_keys = tx
            .list_api_keys(tenant_id)
            .await?
            .into_iter()
            .filter(|key| key.revoked_at.is_none())
            .collect();
        let outbox = tx.outbox_backlog(tenant_id).await?;
        let webhooks = tx.webhook_health(tenant_id).await?;

        let partition = Partition::Tenant(tenant_id.clone());
        // Page by page, in the memory of one page whatever the trail's length.
        let mut verifier = ChainVerifier::default();
        let mut after_seq = 0;
        loop {
            let page = tx
                .list_audit(&partition, &AuditFilter::default(), after_seq, WALK_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after_seq = last.seq;
            for record in &page {
                verifier.push(record);
            }
        }
        let trail = TrailFacts {
            records: verifier.seen(),
            last: verifier.last().cloned(),
            chain: verifier.finish().map(|_| ()),
        };

        let probe = self
            .probe_audit(tx.as_mut(), &partition, tenant_id, request_id)
            .await;
        // Dropped, never committed: the probe record and the partition lock it took go
        // with the transaction.
        drop(tx);

        Ok(TenantFacts {
            tenant,
            gathered_at,
            admins,
            role_holders,
            enabled_scopes,
            catalog,
            bindings,
            api_keys,
            trail,
            probe,
            outbox,
            webhooks,
        })
    }

    /// Appends the probe record and reads back the record before it, under the
    /// partition lock the append took, so the comparison cannot race a writer.
    async fn probe_audit(
        &self,
        tx: &mut (impl AuditLog + ?Sized),
        partition: &Partition,
        tenant_id: &TenantId,
        request_id: &str,
    ) -> AuditProbe {
        let draft = AuditDraft {
            id: self.audit_id(),
            partition: partition.clone(),
            at: self.now(),
            actor: Actor {
                kind: ActorType::System,
                id: "diagnostics".to_owned(),
            },
            action: AUDIT_PROBE_ACTION,
            target: tenant_target(tenant_id),
            outcome: Outcome::Allowed,
            reason: "probe, rolled back".to_owned(),
            request_id: request_id.to_owned(),
        };
        let record = match tx.append_audit(draft).await {
            Ok(record) => record,
            Err(error) => return AuditProbe::Refused(error.to_string()),
        };
        let previous = if record.seq > 1 {
            match tx
                .list_audit(partition, &AuditFilter::default(), record.seq - 2, 1)
                .await
            {
                Ok(page) => page
                    .into_iter()
                    .next()
                    .map(|previous| (previous.seq, previous.hash)),
                Err(error) => return AuditProbe::Refused(error.to_string()),
            }
        } else {
            None
        };
        AuditProbe::Accepted {
            seq: record.seq,
            prev_hash: record.prev_hash,
            previous,
        }
    }
}
