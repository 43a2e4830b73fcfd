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
    /// An OAuth client acting for itself (`client_credentials`).
    OAuthClient,
}

impl ActorType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ApiKey => "api_key",
            Self::System => "system",
            Self::Anonymous => "anonymous",
            Self::OAuthClient => "oauth_client",
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
    let mut verifier = ChainVerifier::default();
    for record in records {
        verifier.push(record);
    }
    verifier.finish().map(|_| ())
}

/// [`verify_chain`] fed one record at a time, so a trail of any length is verified in
/// the memory of one page: it keeps the previous hash, the count, the last record's seq
/// and hash, and the first break found.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev_hash: String,
    seen: u64,
    last: Option<(u64, String)>,
    /// The first break, once certain.
    broken: Option<ChainBreak>,
    /// A record seen past the seq expected there: the expected one is missing unless it
    /// turns up later in the trail, which makes it a reordering.
    missing: Option<ChainBreak>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            prev_hash: GENESIS_HASH.to_owned(),
            seen: 0,
            last: None,
            broken: None,
            missing: None,
        }
    }
}

impl ChainVerifier {
    /// The next record of the trail, in stored order.
    pub fn push(&mut self, record: &AuditRecord) {
        self.seen += 1;
        self.last = Some((record.seq, record.hash.clone()));
        if self.broken.is_some() {
            return;
        }
        if let Some(missing) = &self.missing {
            if record.seq == missing.seq {
                self.broken = Some(ChainBreak {
                    kind: ChainBreakKind::Reordered,
                    ..missing.clone()
                });
                self.missing = None;
            }
            return;
        }
        let expected_seq = self.seen;
        if record.compute_hash() != record.hash {
            self.broken = Some(ChainBreak {
                kind: ChainBreakKind::Modified,
                seq: record.seq,
                record: Some(record.id),
            });
        } else if record.seq > expected_seq {
            self.missing = Some(ChainBreak {
                kind: ChainBreakKind::Missing,
                seq: expected_seq,
                record: Some(record.id),
            });
        } else if record.seq < expected_seq || record.prev_hash != self.prev_hash {
            self.broken = Some(ChainBreak {
                kind: ChainBreakKind::Reordered,
                seq: record.seq,
                record: Some(record.id),
            });
        } else {
            self.prev_hash.clone_from(&record.hash);
        }
    }

    /// Records pushed so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The seq and hash of the last record pushed.
    pub fn last(&self) -> Option<&(u64, String)> {
        self.last.as_ref()
    }

    /// The verdict: the number of records of an intact trail, or its first break.
    ///
    /// # Errors
    /// The first modified, missing or reordered record.
    pub fn finish(self) -> Result<u64, ChainBreak> {
        match self.broken.or(self.missing) {
            Some(broken) => Err(broken),
            None => Ok(self.seen),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]
mod tests {
    use super::*;

    use time::macros::datetime;
    use uuid::Uuid;

    fn audit_id(n: u128) -> AuditId {
        AuditId::from_generated(Uuid::from_u128(
            0x0189_0a5d_ac96_7000_8000_0000_0000_0000 | n,
        ))
    }

    fn acme() -> Partition {
        Partition::Tenant(TenantId::parse("acme").unwrap())
    }

    fn draft(n: u128, partition: Partition) -> AuditDraft {
        AuditDraft {
            id: audit_id(n),
            partition,
            at: datetime!(2024-05-06 07:08:09.123_456_789 UTC) + time::Duration::seconds(n as i64),
            actor: Actor {
                kind: ActorType::User,
                id: format!("user-{n}"),
            },
            action: "member.add",
            target: AuditTarget {
                kind: "member",
                id: format!("target-{n}"),
            },
            outcome: Outcome::Allowed,
            reason: "role_binding".to_owned(),
            request_id: format!("req-{n}"),
        }
    }

    /// Seals `count` records into one trail, as a store does in commit order.
    fn chain(count: u128, partition: &Partition, first_id: u128) -> Vec<AuditRecord> {
        let mut records: Vec<AuditRecord> = Vec::new();
        for n in 0..count {
            let prev_hash = records
                .last()
                .map_or_else(|| GENESIS_HASH.to_owned(), |record| record.hash.clone());
            let seq = u64::try_from(n).unwrap() + 1;
            records.push(AuditRecord::seal(
                draft(first_id + n, partition.clone()),
                seq,
                &prev_hash,
            ));
        }
        records
    }

    fn acme_chain(count: u128) -> Vec<AuditRecord> {
        chain(count, &acme(), 1)
    }

    // ---- sealing and verifying -----------------------------------------------------

    #[test]
    fn an_empty_trail_verifies() {
        assert_eq!(verify_chain(&[]), Ok(()));
    }

    #[test]
    fn a_correctly_sealed_chain_verifies() {
        for count in [1, 2, 5] {
            assert_eq!(verify_chain(&acme_chain(count)), Ok(()), "{count}");
        }
        assert_eq!(verify_chain(&chain(3, &Partition::Platform, 1)), Ok(()));
    }

    #[test]
    fn sealing_links_each_record_to_the_hash_of_the_one_before() {
        let records = acme_chain(3);
        assert_eq!(records[0].prev_hash, GENESIS_HASH);
        assert_eq!(records[1].prev_hash, records[0].hash);
        assert_eq!(records[2].prev_hash, records[1].hash);
        assert_eq!(
            records.iter().map(|record| record.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_previous_hash_then_the_canonical_json() {
        let record = &acme_chain(2)[1];
        let mut hasher = Sha256::new();
        hasher.update(format!("{}{}", record.prev_hash, record.canonical_json()).as_bytes());
        let expected = hex::encode(hasher.finalize());
        assert_eq!(record.hash, expected);
        assert_eq!(record.hash.len(), 64);
        assert!(record
            .hash
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }

    #[test]
    fn sealing_copies_the_draft_and_truncates_its_time_to_microseconds() {
        let draft = draft(7, acme());
        let record = AuditRecord::seal(draft.clone(), 4, GENESIS_HASH);
        assert_eq!(record.id, draft.id);
        assert_eq!(record.seq, 4);
        assert_eq!(record.partition, draft.partition);
        assert_eq!(record.at, datetime!(2024-05-06 07:08:16.123_456 UTC));
        assert_eq!(record.actor, draft.actor);
        assert_eq!(record.action, "member.add");
        assert_eq!(record.target_kind, "member");
        assert_eq!(record.target_id, "target-7");
        assert_eq!(record.outcome, Outcome::Allowed);
        assert_eq!(record.reason, "role_binding");
        assert_eq!(record.request_id, "req-7");
        assert_eq!(record.tenant().map(TenantId::as_str), Some("acme"));
    }

    #[test]
    fn a_record_whose_reason_was_changed_is_named_as_modified() {
        let mut records = acme_chain(4);
        records[1].reason = "platform_root".to_owned();
        assert_eq!(
            verify_chain(&records),
            Err(ChainBreak {
                kind: ChainBreakKind::Modified,
                seq: 2,
                record: Some(audit_id(2)),
            })
        );
    }

    /// A named tampering with one record.
    type Edit = (&'static str, fn(&mut AuditRecord));

    #[test]
    fn a_change_to_any_hashed_field_is_detected_as_modified() {
        let edits: Vec<Edit> = vec![
            ("outcome", |record| record.outcome = Outcome::Denied),
            ("actor id", |record| {
                record.actor.id = "someone-else".to_owned()
            }),
            ("actor type", |record| record.actor.kind = ActorType::System),
            ("action", |record| {
                record.action = "member.remove".to_owned()
            }),
            ("target id", |record| record.target_id = "x".to_owned()),
            ("target type", |record| {
                record.target_kind = "user".to_owned()
            }),
            ("request id", |record| {
                record.request_id = "req-x".to_owned()
            }),
            ("at", |record| {
                record.at += time::Duration::microseconds(1);
            }),
            ("partition", |record| record.partition = Partition::Platform),
            ("id", |record| record.id = audit_id(99)),
            ("hash", |record| record.hash = GENESIS_HASH.to_owned()),
        ];
        for (field, edit) in edits {
            let mut records = acme_chain(3);
            edit(&mut records[2]);
            let found = verify_chain(&records);
            assert_eq!(
                found.as_ref().map_err(|found| (&found.kind, found.seq)),
                Err((&ChainBreakKind::Modified, 3)),
                "{field}"
            );
            assert_eq!(
                found.map_err(|found| found.record),
                Err(Some(records[2].id)),
                "{field}"
            );
        }
    }

    #[test]
    fn only_the_first_break_is_reported() {
        let mut records = acme_chain(5);
        records[1].reason = "edited".to_owned();
        records[3].reason = "edited too".to_owned();
        assert_eq!(verify_chain(&records).map_err(|found| found.seq), Err(2));
    }

    #[test]
    fn a_record_rewritten_with_a_fresh_hash_breaks_the_link_to_the_next_one() {
        let mut records = acme_chain(4);
        records[1].reason = "rewritten".to_owned();
        records[1].hash = records[1].compute_hash();
        assert_eq!(
            verify_chain(&records),
            Err(ChainBreak {
                kind: ChainBreakKind::Reordered,
                seq: 3,
                record: Some(audit_id(3)),
            })
        );
    }

    #[test]
    fn a_deleted_record_is_named_as_missing() {
        let mut records = acme_chain(5);
        records.remove(2);
        assert_eq!(
            verify_chain(&records),
            Err(ChainBreak {
                kind: ChainBreakKind::Missing,
                seq: 3,
                record: Some(audit_id(4)),
            })
        );
    }

    #[test]
    fn a_deleted_first_record_is_named_as_missing() {
        let mut records = acme_chain(3);
        records.remove(0);
        assert_eq!(
            verify_chain(&records),
            Err(ChainBreak {
                kind: ChainBreakKind::Missing,
                seq: 1,
                record: Some(audit_id(2)),
            })
        );
    }

    #[test]
    fn a_swapped_pair_of_records_is_named_as_reordered() {
        let mut records = acme_chain(4);
        records.swap(1, 2);
        let found = verify_chain(&records);
        assert_eq!(
            found,
            Err(ChainBreak {
                kind: ChainBreakKind::Reordered,
                seq: 2,
                record: Some(audit_id(3)),
            })
        );
    }

    #[test]
    fn a_record_moved_to_the_end_is_named_as_reordered() {
        let mut records = acme_chain(4);
        let moved = records.remove(0);
        records.push(moved);
        assert_eq!(
            verify_chain(&records).map_err(|found| (found.kind, found.record)),
            Err((ChainBreakKind::Reordered, Some(audit_id(2))))
        );
    }

    #[test]
    fn a_duplicated_record_is_named_as_reordered() {
        let mut records = acme_chain(3);
        records.insert(2, records[1].clone());
        assert_eq!(
            verify_chain(&records),
            Err(ChainBreak {
                kind: ChainBreakKind::Reordered,
                seq: 2,
                record: Some(audit_id(2)),
            })
        );
    }

    #[test]
    fn a_record_spliced_in_from_another_trail_is_named_as_reordered() {
        let mut records = acme_chain(3);
        let other = chain(3, &Partition::Platform, 50);
        records[1] = other[1].clone();
        assert_eq!(
            verify_chain(&records),
            Err(ChainBreak {
                kind: ChainBreakKind::Reordered,
                seq: 2,
                record: Some(audit_id(51)),
            })
        );
    }

    #[test]
    fn a_first_record_not_chained_to_genesis_is_named_as_reordered() {
        let record = AuditRecord::seal(draft(1, acme()), 1, &"f".repeat(64));
        assert_eq!(
            verify_chain(&[record]),
            Err(ChainBreak {
                kind: ChainBreakKind::Reordered,
                seq: 1,
                record: Some(audit_id(1)),
            })
        );
    }

    // ---- canonical json ------------------------------------------------------------

    #[test]
    fn canonical_json_is_the_exact_sorted_compact_text() {
        let record = AuditRecord::seal(draft(1, acme()), 1, GENESIS_HASH);
        let id = audit_id(1);
        assert_eq!(
            record.canonical_json(),
            format!(
                concat!(
                    "{{\"action\":\"member.add\",\"actor\":{{\"id\":\"user-1\",\"type\":\"user\"}},",
                    "\"at\":\"2024-05-06T07:08:10.123456Z\",\"id\":\"{}\",\"outcome\":\"allowed\",",
                    "\"reason\":\"role_binding\",\"request_id\":\"req-1\",\"seq\":1,",
                    "\"target\":{{\"id\":\"target-1\",\"type\":\"member\"}},\"tenant\":\"acme\"}}"
                ),
                id
            )
        );
    }

    /// The keys of every object in `text`, in text order, each with its nesting depth
    /// (1 for the top level) and the position of its object, so siblings can be grouped.
    fn keys_by_object(text: &str) -> Vec<(usize, Vec<String>)> {
        let mut open_objects: Vec<(usize, Vec<String>)> = Vec::new();
        let mut closed: Vec<(usize, Vec<String>)> = Vec::new();
        let mut chars = text.chars().peekable();
        let mut expecting_key = false;
        while let Some(c) = chars.next() {
            match c {
                '{' => {
                    open_objects.push((open_objects.len() + 1, Vec::new()));
                    expecting_key = true;
                }
                '}' => closed.push(open_objects.pop().unwrap()),
                ',' => expecting_key = true,
                ':' => expecting_key = false,
                '"' => {
                    let mut string = String::new();
                    while let Some(inner) = chars.next() {
                        match inner {
                            '\\' => {
                                string.push(inner);
                                string.push(chars.next().unwrap());
                            }
                            '"' => break,
                            _ => string.push(inner),
                        }
                    }
                    if expecting_key {
                        open_objects.last_mut().unwrap().1.push(string);
                    }
                }
                _ => {}
            }
        }
        assert!(open_objects.is_empty());
        closed
    }

    #[test]
    fn canonical_json_has_its_keys_in_sorted_order_at_every_level() {
        let record = AuditRecord::seal(draft(1, acme()), 1, GENESIS_HASH);
        let text = record.canonical_json();
        let objects = keys_by_object(&text);
        assert_eq!(objects.len(), 3, "{text}");
        for (_, keys) in &objects {
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, &sorted, "{text}");
        }
        let top: Vec<&str> = objects
            .iter()
            .filter(|(depth, _)| *depth == 1)
            .flat_map(|(_, keys)| keys.iter().map(String::as_str))
            .collect();
        assert_eq!(
            top,
            [
                "action",
                "actor",
                "at",
                "id",
                "outcome",
                "reason",
                "request_id",
                "seq",
                "target",
                "tenant"
            ]
        );
        assert!(!text.contains(' '), "{text}");
    }

    #[test]
    fn canonical_json_leaves_out_the_hashes() {
        let record = AuditRecord::seal(draft(1, acme()), 1, GENESIS_HASH);
        let text = record.canonical_json();
        assert!(!text.contains("hash"), "{text}");
        assert!(!text.contains(GENESIS_HASH), "{text}");
    }

    #[test]
    fn canonical_json_escapes_strings() {
        let mut draft = draft(1, acme());
        draft.reason = "quote \" backslash \\ newline \n tab \t bell \u{7} é".to_owned();
        draft.actor.id = "\"},\"injected\":{\"".to_owned();
        let record = AuditRecord::seal(draft.clone(), 1, GENESIS_HASH);
        let text = record.canonical_json();
        assert!(!text.contains('\n') && !text.contains('\t') && !text.contains('\u{7}'));
        assert!(
            text.contains(r#""reason":"quote \" backslash \\ newline \n tab \t bell \u0007 é""#),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["reason"], serde_json::Value::String(draft.reason));
        assert_eq!(
            value["actor"]["id"],
            serde_json::Value::String(draft.actor.id)
        );
        assert!(value.get("injected").is_none());
        assert_eq!(value.as_object().map(serde_json::Map::len), Some(10));
    }

    #[test]
    fn canonical_json_writes_a_null_tenant_for_the_platform_trail() {
        let record = AuditRecord::seal(draft(1, Partition::Platform), 1, GENESIS_HASH);
        assert!(record.canonical_json().ends_with(",\"tenant\":null}"));
        assert_eq!(record.tenant(), None);
    }

    #[test]
    fn canonical_json_names_the_actor_type_and_outcome_by_their_codes() {
        let mut draft = draft(1, acme());
        draft.actor.kind = ActorType::ApiKey;
        draft.outcome = Outcome::Denied;
        let text = AuditRecord::seal(draft, 1, GENESIS_HASH).canonical_json();
        assert!(text.contains("\"type\":\"api_key\""), "{text}");
        assert!(text.contains("\"outcome\":\"denied\""), "{text}");
        assert_eq!(ActorType::User.as_str(), "user");
        assert_eq!(ActorType::System.as_str(), "system");
        assert_eq!(ActorType::Anonymous.as_str(), "anonymous");
        assert_eq!(Outcome::Allowed.as_str(), "allowed");
    }

    // ---- timestamps ----------------------------------------------------------------

    #[test]
    fn timestamps_print_exactly_six_fractional_digits_and_z() {
        assert_eq!(
            format_timestamp(datetime!(2024-05-06 07:08:09.123_456_789 UTC)),
            "2024-05-06T07:08:09.123456Z"
        );
        assert_eq!(
            format_timestamp(datetime!(2024-05-06 07:08:09 UTC)),
            "2024-05-06T07:08:09.000000Z"
        );
        assert_eq!(
            format_timestamp(datetime!(2024-01-02 03:04:05.000_001 UTC)),
            "2024-01-02T03:04:05.000001Z"
        );
        assert_eq!(
            format_timestamp(datetime!(2024-12-31 23:59:59.999_999_999 UTC)),
            "2024-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn timestamps_are_converted_to_utc() {
        assert_eq!(
            format_timestamp(datetime!(2024-05-06 01:30:00.5 +02:00)),
            "2024-05-05T23:30:00.500000Z"
        );
    }

    #[test]
    fn sub_microsecond_precision_is_dropped_not_rounded() {
        let at = datetime!(2024-05-06 07:08:09.000_000_999 UTC);
        assert_eq!(truncate_to_micros(at), datetime!(2024-05-06 07:08:09 UTC));
        assert_eq!(format_timestamp(at), "2024-05-06T07:08:09.000000Z");
    }

    #[test]
    fn partitions_name_their_tenant_or_the_platform() {
        assert_eq!(acme().name(), "acme");
        assert_eq!(acme().tenant().map(TenantId::as_str), Some("acme"));
        assert_eq!(Partition::Platform.name(), "_platform");
        assert_eq!(Partition::Platform.tenant(), None);
    }
}
