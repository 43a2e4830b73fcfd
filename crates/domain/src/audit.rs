//! Audit records and the per-tenant hash chain (SPEC §3.3, §6).
//!
//! A store assigns each record its `seq` and `prev_hash` in commit order and seals it
//! with [`AuditRecord::seal`], so every adapter computes the same hash:
//! `hash = sha256(prev_hash ‖ canonical_json(record))`.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ids::{AuditId, TenantId};

/// The trail an audit record, or the feed an event, belongs to: one per tenant, plus the
/// platform's own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Partition {
    Tenant(TenantId),
    Platform,
}

impl Partition {
    /// The tenant id, or `_platform` (the name used in event subjects).
    pub fn name(&self) -> &str {
        match self {
            Self::Tenant(tenant) => tenant.as_str(),
            Self::Platform => "_platform",
        }
    }

    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::Tenant(tenant) => Some(tenant),
            Self::Platform => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActorType {
    User,
    ApiKey,
    /// The engine itself, e.g. bootstrap.
    System,
    /// An unauthenticated caller, e.g. a failed login.
    Anonymous,
}

impl ActorType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ApiKey => "api_key",
            Self::System => "system",
            Self::Anonymous => "anonymous",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorType,
    pub id: String,
}

/// What an audited operation acted on, e.g. `{type: "member", id: "<user id>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTarget {
    pub kind: &'static str,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allowed,
    Denied,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
        }
    }
}

/// An audit record before the store places it in its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    pub id: AuditId,
    pub partition: Partition,
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub action: &'static str,
    pub target: AuditTarget,
    pub outcome: Outcome,
    pub reason: String,
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: AuditId,
    /// Position in its trail, from 1, without gaps.
    pub seq: u64,
    pub partition: Partition,
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub outcome: Outcome,
    pub reason: String,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The `prev_hash` of the first record of every trail.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Drops sub-microsecond precision, which no SQL store keeps.
pub fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let nanos = at.nanosecond();
    at.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(at)
}

/// RFC 3339 in UTC with exactly six fractional digits, so the text is canonical.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let at = truncate_to_micros(at.to_offset(time::UtcOffset::UTC));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

impl AuditRecord {
    /// Places a draft at `seq` after a record whose hash is `prev_hash`.
    pub fn seal(draft: AuditDraft, seq: u64, prev_hash: &str) -> Self {
        let mut record = Self {
            id: draft.id,
            seq,
            partition: draft.partition,
            at: truncate_to_micros(draft.at),
            actor: draft.actor,
            action: draft.action.to_owned(),
            target_kind: draft.target.kind.to_owned(),
            target_id: draft.target.id,
            outcome: draft.outcome,
            reason: draft.reason,
            request_id: draft.request_id,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }

    pub fn tenant(&self) -> Option<&TenantId> {
        self.partition.tenant()
    }

    /// The record's fields (all but the hashes) as JSON with keys in sorted order and no
    /// whitespace. Written by hand so no serde feature can change the key order.
    pub fn canonical_json(&self) -> String {
        let tenant = self
            .tenant()
            .map_or_else(|| "null".to_owned(), |tenant| json_string(tenant.as_str()));
        format!(
            concat!(
                "{{\"action\":{},\"actor\":{{\"id\":{},\"type\":{}}},\"at\":{},\"id\":{},",
                "\"outcome\":{},\"reason\":{},\"request_id\":{},\"seq\":{},",
                "\"target\":{{\"id\":{},\"type\":{}}},\"tenant\":{}}}"
            ),
            json_string(&self.action),
            json_string(&self.actor.id),
            json_string(self.actor.kind.as_str()),
            json_string(&format_timestamp(self.at)),
            json_string(&self.id.to_string()),
            json_string(self.outcome.as_str()),
            json_string(&self.reason),
            json_string(&self.request_id),
            self.seq,
            json_string(&self.target_id),
            json_string(&self.target_kind),
            tenant,
        )
    }

    /// `sha256(prev_hash ‖ canonical_json(record))`, lowercase hex.
    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(self.canonical_json().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// How a chain was found broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreakKind {
    /// The record's content no longer matches its hash.
    Modified,
    /// The record expected at this position is missing (deleted).
    Missing,
    /// The record does not follow the one before it (moved or reordered).
    Reordered,
}

/// The first place a chain fails verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub kind: ChainBreakKind,
    /// The sequence number where the chain breaks.
    pub seq: u64,
    /// The record found at that place, if any.
    pub record: Option<AuditId>,
}

/// Walks one trail in stored order and names the first record that was modified,
/// deleted or reordered.
pub fn verify_chain(records: &[AuditRecord]) -> Result<(), ChainBreak> {
    let mut prev_hash = GENESIS_HASH.to_owned();
    for (index, record) in records.iter().enumerate() {
        let expected_seq = index as u64 + 1;
        if record.compute_hash() != record.hash {
            return Err(ChainBreak {
                kind: ChainBreakKind::Modified,
                seq: record.seq,
                record: Some(record.id),
            });
        }
        if record.seq > expected_seq {
            return Err(ChainBreak {
                kind: ChainBreakKind::Missing,
                seq: expected_seq,
                record: Some(record.id),
            });
        }
        if record.seq < expected_seq || record.prev_hash != prev_hash {
            return Err(ChainBreak {
                kind: ChainBreakKind::Reordered,
                seq: record.seq,
                record: Some(record.id),
            });
        }
        prev_hash.clone_from(&record.hash);
    }
    Ok(())
}
