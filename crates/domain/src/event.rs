//! Outbox events (SPEC §6): written with the change they describe, served by the feed and
//! relayed as CloudEvents 1.0.

use time::OffsetDateTime;

use crate::audit::{format_timestamp, Partition};
use crate::ids::EventId;

/// The event types of SPEC §6.
pub mod types {
    pub const TENANT_CREATED: &str = "tenant.created";
    pub const TENANT_UPDATED: &str = "tenant.updated";
    pub const TENANT_SCOPES_CHANGED: &str = "tenant.scopes_changed";
    pub const MEMBERSHIP_ADDED: &str = "membership.added";
    pub const MEMBERSHIP_ROLES_CHANGED: &str = "membership.roles_changed";
    pub const MEMBERSHIP_REMOVED: &str = "membership.removed";
    pub const ACCOUNT_STATE_CHANGED: &str = "account.state_changed";
    pub const PROFILE_VALUE_SET: &str = "profile.value_set";
    pub const PROFILE_VALUE_DELETED: &str = "profile.value_deleted";
    pub const ROLE_BINDING_CHANGED: &str = "role.binding_changed";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_STATE_CHANGED: &str = "user.state_changed";
    pub const USER_PASSWORD_CHANGED: &str = "user.password_changed";
    pub const USER_TOTP_ENROLLED: &str = "user.totp_enrolled";
    pub const PLATFORM_ROLES_CHANGED: &str = "platform_roles.changed";
    pub const CATALOG_SCOPE_ADDED: &str = "catalog.scope_added";
    pub const PROFILE_SCHEMA_CHANGED: &str = "profile_schema.changed";
}

/// An event before the store gives it its feed position.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub id: EventId,
    pub time: OffsetDateTime,
    pub partition: Partition,
    pub event_type: &'static str,
    /// The aggregate the event is about (CloudEvents `subject`).
    pub subject: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub partition: Partition,
    /// Position in its feed, from 1, in commit order.
    pub position: u64,
    pub time: OffsetDateTime,
    pub event_type: String,
    pub subject: String,
    pub data: serde_json::Value,
}

impl Event {
    /// The CloudEvents 1.0 JSON form, with the `tenant` extension.
    pub fn to_cloudevent(&self) -> serde_json::Value {
        serde_json::json!({
            "specversion": "1.0",
            "id": self.id.to_string(),
            "source": "user-engine",
            "type": self.event_type,
            "subject": self.subject,
            "time": format_timestamp(self.time),
            "datacontenttype": "application/json",
            "tenant": self.partition.name(),
            "sequence": self.position,
            "data": self.data,
        })
    }
}

impl Event {
    /// Places a draft at `position` in its feed.
    pub fn place(draft: EventDraft, position: u64) -> Self {
        Self {
            id: draft.id,
            partition: draft.partition,
            position,
            time: crate::audit::truncate_to_micros(draft.time),
            event_type: draft.event_type.to_owned(),
            subject: draft.subject,
            data: draft.data,
        }
    }
}
