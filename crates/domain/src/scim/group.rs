//! A SCIM Group as SPEC §8 maps it (RFC 7643 §4.2): a tenant role and the members
//! holding it. What a `POST` or `PUT` body says, typed; the resource a role is rendered
//! as; and the role a new group's free-text `displayName` becomes.
//!
//! A group's `id` is its role's name, which never changes. A group created through
//! SCIM whose `displayName` is a valid role name gets exactly that role (SPEC §8:
//! `displayName` = role); any other name (`Engineering Team`, a provider's GUID) gets a
//! role spelled from it ([`role_candidates`]), and the name itself is kept as the
//! group's `displayName`. Renaming a group in the provider renames its `displayName`
//! only: bindings and other services' checks name the role.

use serde_json::{json, Map, Value};

use super::filter::CORE_GROUP_SCHEMA;
use super::model::MAX_NAME_CHARS;
use super::user::{member, require_schema, UserError};
use crate::ids::RoleName;

/// A Group as a `POST` or `PUT` body gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    /// The `value` of each of `members` (user ids as sent), without repeats, in order.
    pub members: Vec<String>,
}

fn invalid(scim_type: &'static str, detail: impl Into<String>) -> UserError {
    UserError {
        scim_type,
        detail: detail.into(),
    }
}

/// A string attribute: absent, `null` or empty is `None`.
fn text(object: &Map<String, Value>, name: &str) -> Result<Option<String>, UserError> {
    match member(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => {
            if text.chars().count() > MAX_NAME_CHARS || text.chars().any(char::is_control) {
                return Err(invalid(
                    "invalidValue",
                    format!(
                        "{name} must be at most {MAX_NAME_CHARS} characters, none a control character"
                    ),
                ));
            }
            Ok(Some(text.clone()))
        }
        Some(_) => Err(invalid("invalidValue", format!("{name} must be a string"))),
    }
}

/// Reads a Group `POST`/`PUT` body.
///
/// # Errors
/// `invalidSyntax` for a body that is not an object or lacks the Group schema;
/// `invalidValue` for a missing or malformed `displayName`, a malformed `externalId`,
/// or `members` that is not an array of objects with a string `value`.
pub fn parse_group(body: &Value) -> Result<GroupInput, UserError> {
    let Value::Object(object) = body else {
        return Err(invalid("invalidSyntax", "a Group is a JSON object"));
    };
    require_schema(object, CORE_GROUP_SCHEMA)?;
    let display_name = text(object, "displayName")?
        .ok_or_else(|| invalid("invalidValue", "displayName is required"))?;
    let external_id = text(object, "externalId")?;
    let mut members: Vec<String> = Vec::new();
    match member(object, "members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(elements)) => {
            for element in elements {
                let Value::Object(element) = element else {
                    return Err(invalid("invalidValue", "each member must be an object"));
                };
                let value = text(element, "value")?
                    .ok_or_else(|| invalid("invalidValue", "each member needs a value"))?;
                if !members.contains(&value) {
                    members.push(value);
                }
            }
        }
        Some(_) => return Err(invalid("invalidValue", "members must be an array")),
    }
    Ok(GroupInput {
        display_name,
        external_id,
        members,
    })
}

/// The roles a new group named `display_name` may get, in order of preference: the
/// name itself when it is a valid tenant role name; else a role spelled from it
/// (ASCII letters and digits lowercased, every other run of characters one `_`,
/// `g_` in front when it would not start with a letter or would start with the
/// reserved `platform`), and that spelling shortened with a hash of the name after it
/// (for names too long, or when the plain spelling is taken).
pub fn role_candidates(display_name: &str) -> Vec<RoleName> {
    if let Ok(role) = RoleName::parse(display_name) {
        return vec![role];
    }
    let mut slug = String::new();
    for character in display_name.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let mut slug = slug.trim_matches('_').to_owned();
    if !slug.starts_with(|c: char| c.is_ascii_lowercase())
        || slug.starts_with(RoleName::RESERVED_PREFIX)
    {
        slug = format!("g_{slug}");
    }
    let hash = crate::usecases::hash_token(display_name);
    let short: String = slug.chars().take(31).collect();
    let hashed = format!(
        "{}_{}",
        short.trim_end_matches('_'),
        hash.get(..8).unwrap_or("0")
    );
    [slug, hashed]
        .iter()
        .filter_map(|candidate| RoleName::parse(candidate.trim_end_matches('_')).ok())
        .collect()
}

/// What a role is as a Group resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView<'a> {
    /// The role's name.
    pub id: &'a str,
    pub display_name: &'a str,
    pub external_id: Option<&'a str>,
    /// Each member holding the role: (user id, userName), in user id order; `None`
    /// when `members` is not to be rendered (it was excluded). A member renders as
    /// `value`, `$ref` and `type`, which is what a provider sends: `display` is not
    /// rendered, so a provider reads back the members it wrote.
    pub members: Option<&'a [(String, String)]>,
    pub created: String,
    pub last_modified: String,
    /// The group's ETag (`W/"…"`), `meta.version`.
    pub version: String,
    /// The resource's URL.
    pub location: String,
    /// The tenant's `Users` URL, for the members' `$ref`.
    pub users: &'a str,
}

/// The Group resource of a role (RFC 7643 §4.2).
pub fn group_resource(view: &GroupView<'_>) -> Value {
    let mut resource = Map::new();
    resource.insert("schemas".into(), json!([CORE_GROUP_SCHEMA]));
    resource.insert("id".into(), json!(view.id));
    if let Some(external_id) = view.external_id {
        resource.insert("externalId".into(), json!(external_id));
    }
    resource.insert("displayName".into(), json!(view.display_name));
    if let Some(members) = view.members {
        if !members.is_empty() {
            let members: Vec<Value> = members
                .iter()
                .map(|(id, _)| {
                    json!({
                        "value": id,
                        "$ref": format!("{}/{id}", view.users),
                        "type": "User",
                    })
                })
                .collect();
            resource.insert("members".into(), Value::Array(members));
        }
    }
    resource.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": view.created,
            "lastModified": view.last_modified,
            "version": view.version,
            "location": view.location,
        }),
    );
    Value::Object(resource)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn okta_and_entra_group_bodies_read() {
        let okta = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Test SCIMv2",
            "members": []
        });
        let group = parse_group(&okta).unwrap();
        assert_eq!(group.display_name, "Test SCIMv2");
        assert!(group.members.is_empty());
        let entra = json!({
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "id": "c4ac6f1b",
            "displayName": "Group1",
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "members": [{ "value": "a" }, { "value": "a", "display": "x" }, { "value": "b" }],
            "meta": { "resourceType": "Group" }
        });
        let group = parse_group(&entra).unwrap();
        assert_eq!(group.members, ["a", "b"]);
        assert_eq!(
            group.external_id.as_deref(),
            Some("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
        );
    }

    #[test]
    fn malformed_groups_are_refused() {
        let refused = |body: Value| parse_group(&body).unwrap_err().scim_type;
        assert_eq!(refused(json!([])), "invalidSyntax");
        assert_eq!(refused(json!({ "displayName": "x" })), "invalidSyntax");
        let group = |extra: Value| {
            let mut body = json!({ "schemas": [CORE_GROUP_SCHEMA], "displayName": "x" });
            for (key, value) in extra.as_object().unwrap() {
                body[key] = value.clone();
            }
            body
        };
        assert_eq!(
            refused(group(json!({ "displayName": null }))),
            "invalidValue"
        );
        assert_eq!(refused(group(json!({ "displayName": 4 }))), "invalidValue");
        assert_eq!(refused(group(json!({ "members": {} }))), "invalidValue");
        assert_eq!(refused(group(json!({ "members": [{}] }))), "invalidValue");
        assert_eq!(refused(group(json!({ "members": ["a"] }))), "invalidValue");
    }

    #[test]
    fn role_names_stay_and_free_text_is_spelled_as_a_role() {
        let names = |name: &str| -> Vec<String> {
            role_candidates(name)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(names("editors"), ["editors"]);
        let team = names("Engineering Team");
        assert_eq!(team.first().map(String::as_str), Some("engineering_team"));
        assert_eq!(team.len(), 2);
        let guid = names("3fa85f64-5717-4562-b3fc-2c963f66afa6");
        assert_eq!(
            guid.first().map(String::as_str),
            Some("g_3fa85f64_5717_4562_b3fc_2c963f66afa6")
        );
        assert!(names("platform admins")[0].starts_with("g_platform"));
        assert!(names("Ünïcode ✓")
            .iter()
            .all(|name| RoleName::parse(name).is_ok()));
        let long = names(&"very long group name ".repeat(10));
        assert_eq!(long.len(), 1);
        assert!(long[0].len() <= 40);
        assert!(!names("!!!").is_empty());
    }
}
