//! What the store keeps for SCIM (SPEC §8), and a member as a SCIM filter sees it.
//!
//! A provisioned member has a [`ScimIdentity`] in the tenant: the `userName` and
//! `externalId` their identity provider knows them by. A member without one (added
//! through `/v1`) is seen with their email as `userName`. A [`ScimGroup`] is a tenant
//! role created through SCIM, with the provider's free-text name; the built-in roles
//! and roles bound through `/v1` are groups named by their role name.

use time::OffsetDateTime;

use super::filter::{AttrPath, Attributes, Filter, Value};
use crate::ids::{RoleName, TenantId};
use crate::model::Member;

/// The longest `userName`, `externalId` or group `displayName` kept, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// A member's SCIM identity in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimIdentity {
    /// The `userName` as the provider sent it; unique in the tenant ignoring ASCII case.
    pub user_name: String,
    pub external_id: Option<String>,
    /// The `emails` the provider last sent, normalised (an array of `value`, `type`,
    /// `primary`, `display`); rendered back while it holds the user's email.
    pub emails: Option<serde_json::Value>,
    /// Whether the provider said `active`; a User whose provider removed it shows none
    /// while the account is active.
    pub active_set: bool,
}

/// A role created through SCIM: the provider's name for it and its `externalId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimGroup {
    pub tenant: TenantId,
    pub role: RoleName,
    /// Unique in the tenant ignoring ASCII case.
    pub display_name: String,
    pub external_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Bumped by every change; the group's ETag.
    pub version: u64,
}

/// A query of a tenant's members as Users: those `filter` selects (all without one),
/// in user id order, `count` of them after skipping `offset`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserQuery {
    pub filter: Option<Filter>,
    pub offset: u64,
    pub count: u64,
}

/// The attributes a User filter may name (SPEC §8); any other is `invalidFilter`.
pub const USER_FILTER_ATTRIBUTES: [&str; 8] = [
    "userName",
    "externalId",
    "emails",
    "emails.value",
    "active",
    "displayName",
    "meta.created",
    "meta.lastModified",
];

/// The attributes a Group filter may name.
pub const GROUP_FILTER_ATTRIBUTES: [&str; 5] = [
    "displayName",
    "externalId",
    "members",
    "members.value",
    "meta.lastModified",
];

/// The first attribute `filter` names that is not one of `allowed` (compared as
/// [`AttrPath::is`] does), if any. Inside a value path (`emails[type eq "work"]`) the
/// sub-attributes `value`, `type` and `primary` are allowed.
pub fn unsupported_attribute(filter: &Filter, allowed: &[&str]) -> Option<String> {
    match filter {
        Filter::Compare(path, _, _) | Filter::Present(path) => {
            (!allowed.iter().any(|name| path.is(name))).then(|| path.to_string())
        }
        Filter::And(left, right) | Filter::Or(left, right) => {
            unsupported_attribute(left, allowed).or_else(|| unsupported_attribute(right, allowed))
        }
        Filter::Not(inner) => unsupported_attribute(inner, allowed),
        Filter::ValuePath(path, inner) => {
            if !allowed.iter().any(|name| path.is(name)) {
                return Some(path.to_string());
            }
            unsupported_attribute(inner, &["value", "type", "primary", "display"])
        }
    }
}

/// A member as a User filter sees it: the attributes of [`USER_FILTER_ATTRIBUTES`].
/// The SQL stores' translation selects exactly the members this selects.
#[derive(Debug, Clone, Copy)]
pub struct UserRecord<'a> {
    pub member: &'a Member,
    pub identity: Option<&'a ScimIdentity>,
    /// The member's tenant `display_name` value, if any.
    pub display_name: Option<&'a str>,
}

impl UserRecord<'_> {
    fn user_name(&self) -> &str {
        self.identity
            .map_or(self.member.email.as_str(), |identity| {
                identity.user_name.as_str()
            })
    }
}

fn text(value: Option<&str>) -> Vec<Value> {
    value
        .filter(|text| !text.is_empty())
        .map(|text| Value::Str(text.to_owned()))
        .into_iter()
        .collect()
}

impl Attributes for UserRecord<'_> {
    fn values(&self, path: &AttrPath) -> Vec<Value> {
        if path.is("userName") {
            text(Some(self.user_name()))
        } else if path.is("externalId") {
            text(
                self.identity
                    .and_then(|identity| identity.external_id.as_deref()),
            )
        } else if path.is("emails") || path.is("emails.value") {
            text(Some(self.member.email.as_str()))
        } else if path.is("active") {
            vec![Value::Bool(
                self.member.state == crate::model::AccountState::Active,
            )]
        } else if path.is("displayName") {
            text(self.display_name)
        } else if path.is("meta.created") {
            vec![Value::DateTime(self.member.created_at)]
        } else if path.is("meta.lastModified") {
            vec![Value::DateTime(self.member.updated_at)]
        } else {
            Vec::new()
        }
    }

    fn elements(&self, path: &AttrPath) -> Vec<Box<dyn Attributes + '_>> {
        if path.is("emails") {
            vec![Box::new(EmailElement(self.member.email.as_str()))]
        } else {
            Vec::new()
        }
    }
}

/// A member's one email as an element of `emails`: `value`, `type` `work`, `primary`.
struct EmailElement<'a>(&'a str);

impl Attributes for EmailElement<'_> {
    fn values(&self, path: &AttrPath) -> Vec<Value> {
        if path.is("value") {
            text(Some(self.0))
        } else if path.is("type") {
            text(Some("work"))
        } else if path.is("primary") {
            vec![Value::Bool(true)]
        } else {
            Vec::new()
        }
    }

    fn elements(&self, _: &AttrPath) -> Vec<Box<dyn Attributes + '_>> {
        Vec::new()
    }
}

/// ASCII lowercase: the key uniqueness and filters compare `userName` and group
/// names by (RFC 7643: neither is case-exact).
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}
