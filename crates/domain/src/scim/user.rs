//! A SCIM User as SPEC §8 maps it (RFC 7643 §4.1): what a `POST` or `PUT` body says,
//! typed, and the resource a member is rendered as.
//!
//! - `userName` is the user's email, and the one `emails` value renders it. A body whose
//!   primary email differs from its `userName` is taken by its `userName`: Entra ID's
//!   default mapping sends the userPrincipalName as `userName` and `mail` as the work
//!   email, which may differ, and refusing such users would stop their provisioning.
//!   A `userName` that is not an email address (an Okta login, an employee number) is
//!   kept as the member's `userName` in this tenant, and the email is then the primary
//!   (or only) `emails` value, which must be one;
//! - `userName` and `externalId` are kept per tenant (at most
//!   [`MAX_NAME_CHARS`](super::model::MAX_NAME_CHARS) characters, no control
//!   characters);
//! - `active` is the account's state in this tenant;
//! - `name.*`, `displayName`, `title`, `locale`, `timezone` and the enterprise
//!   extension's `department` are the member's tenant profile values, under the keys of
//!   [`PROFILE_ATTRIBUTES`].
//!
//! Attributes this engine does not keep (`phoneNumbers`, `addresses`, `nickName`, …) are
//! ignored rather than refused: identity providers send their whole default mapping
//! (Entra ID does), and refusing it would stop provisioning. A known attribute of the
//! wrong type is refused (`invalidValue`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::filter::{CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA};
use super::model::MAX_NAME_CHARS;
use crate::ids::Email;

/// SCIM attributes kept as a member's tenant profile values: (attribute path, profile
/// key). Paths are as in a PATCH (`name.givenName`; the extension's with its URN).
pub const PROFILE_ATTRIBUTES: [(&str, &str); 8] = [
    ("displayName", "display_name"),
    ("name.formatted", "formatted_name"),
    ("name.givenName", "given_name"),
    ("name.familyName", "family_name"),
    ("title", "title"),
    ("locale", "locale"),
    ("timezone", "timezone"),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "department",
    ),
];

/// Why a body is not a User (RFC 7644 §3.12 `scimType`, and what is wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct UserError {
    pub scim_type: &'static str,
    pub detail: String,
}

fn invalid(scim_type: &'static str, detail: impl Into<String>) -> UserError {
    UserError {
        scim_type,
        detail: detail.into(),
    }
}

/// A User as a `POST` or `PUT` body gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInput {
    /// The `userName` as sent.
    pub user_name: String,
    pub email: Email,
    pub external_id: Option<String>,
    /// `None` when the body does not say (the account is then active).
    pub active: Option<bool>,
    /// The body's `emails`, normalised: each element's `value`, `type`, `primary` and
    /// `display` (at most [`MAX_EMAILS`]); `None` for none.
    pub emails: Option<Value>,
    /// Profile values by profile key ([`PROFILE_ATTRIBUTES`]); an attribute the body
    /// leaves out is absent (a `PUT` then clears it).
    pub values: BTreeMap<&'static str, String>,
}

/// The member of `object` named `name`, compared case-insensitively (SCIM attribute
/// names are).
pub(super) fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// A string attribute: absent or `null` is `None`; an empty string is `None` too (no
/// value, as filters see it).
fn text(object: &Map<String, Value>, name: &str) -> Result<Option<String>, UserError> {
    match member(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(invalid("invalidValue", format!("{name} must be a string"))),
    }
}

/// Refuses (`invalidSyntax`) a resource whose `schemas` do not hold `urn` (compared
/// ignoring ASCII case).
pub(super) fn require_schema(object: &Map<String, Value>, urn: &str) -> Result<(), UserError> {
    let holds = member(object, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|schemas| {
            schemas.iter().any(|schema| {
                schema
                    .as_str()
                    .is_some_and(|schema| schema.eq_ignore_ascii_case(urn))
            })
        });
    if holds {
        Ok(())
    } else {
        Err(invalid(
            "invalidSyntax",
            format!("schemas must include {urn}"),
        ))
    }
}

/// Reads a `POST`/`PUT` body.
///
/// # Errors
/// `invalidSyntax` for a body that is not an object or lacks the core User schema;
/// `invalidValue` for a missing or malformed `userName`, or a known attribute of the
/// wrong type.
pub fn parse_user(body: &Value) -> Result<UserInput, UserError> {
    let Value::Object(object) = body else {
        return Err(invalid("invalidSyntax", "a User is a JSON object"));
    };
    require_schema(object, CORE_USER_SCHEMA)?;
    let user_name =
        text(object, "userName")?.ok_or_else(|| invalid("invalidValue", "userName is required"))?;
    check_name("userName", &user_name)?;
    let (primary, emails) = read_emails(object)?;
    let email = match Email::parse(&user_name) {
        Ok(email) => email,
        Err(_) => match primary {
            Some(address) => Email::parse(&address).map_err(|error| {
                invalid(
                    "invalidValue",
                    format!("the primary email is not valid: {error}"),
                )
            })?,
            None => {
                return Err(invalid(
                    "invalidValue",
                    "userName is not an email address and no emails value gives one",
                ))
            }
        },
    };
    let external_id = text(object, "externalId")?;
    if let Some(external_id) = &external_id {
        check_name("externalId", external_id)?;
    }
    let active = match member(object, "active") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            super::patch::lenient_bool(value)
                .ok_or_else(|| invalid("invalidValue", "active must be a boolean"))?,
        ),
    };
    let mut values = BTreeMap::new();
    for (path, key) in PROFILE_ATTRIBUTES {
        if let Some(value) = profile_attribute(object, path)? {
            values.insert(key, value);
        }
    }
    Ok(UserInput {
        user_name,
        email,
        external_id,
        active,
        emails,
        values,
    })
}

/// The most `emails` a User keeps.
pub const MAX_EMAILS: usize = 10;

/// A `userName` or `externalId`: at most [`MAX_NAME_CHARS`] characters, none a control
/// character.
fn check_name(what: &str, name: &str) -> Result<(), UserError> {
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(invalid(
            "invalidValue",
            format!("{what} must be at most {MAX_NAME_CHARS} characters, none a control character"),
        ));
    }
    Ok(())
}

/// The primary `emails` value (or the first when none is marked primary), and
/// `emails` normalised; refuses `emails` that is not an array of objects whose `value`
/// is a string, `type` and `display` strings, `primary` a boolean.
fn read_emails(object: &Map<String, Value>) -> Result<(Option<String>, Option<Value>), UserError> {
    let emails = match member(object, "emails") {
        None | Some(Value::Null) => return Ok((None, None)),
        Some(Value::Array(emails)) => emails,
        Some(_) => return Err(invalid("invalidValue", "emails must be an array")),
    };
    if emails.len() > MAX_EMAILS {
        return Err(invalid(
            "invalidValue",
            format!("a User has at most {MAX_EMAILS} emails"),
        ));
    }
    let mut first = None;
    let mut primary = None;
    let mut normalised = Vec::with_capacity(emails.len());
    for email in emails {
        let Value::Object(email) = email else {
            return Err(invalid("invalidValue", "each email must be an object"));
        };
        let value = text(email, "value")?;
        let mut element = Map::new();
        if let Some(value) = &value {
            check_name("emails.value", value)?;
            element.insert("value".into(), json!(value));
        }
        for name in ["type", "display"] {
            if let Some(text) = text(email, name)? {
                check_name(name, &text)?;
                element.insert(name.into(), json!(text));
            }
        }
        let is_primary = match member(email, "primary") {
            None | Some(Value::Null) => None,
            Some(flag) => Some(
                super::patch::lenient_bool(flag)
                    .ok_or_else(|| invalid("invalidValue", "primary must be a boolean"))?,
            ),
        };
        if let Some(flag) = is_primary {
            element.insert("primary".into(), json!(flag));
        }
        if is_primary == Some(true) && primary.is_none() {
            primary.clone_from(&value);
        }
        if first.is_none() {
            first = value;
        }
        if !element.is_empty() {
            normalised.push(Value::Object(element));
        }
    }
    let normalised = (!normalised.is_empty()).then_some(Value::Array(normalised));
    Ok((primary.or(first), normalised))
}

/// A profile attribute named by its path (`displayName`, `name.givenName`, the
/// extension's `…:department`).
fn profile_attribute(object: &Map<String, Value>, path: &str) -> Result<Option<String>, UserError> {
    if let Some(attribute) = path
        .strip_prefix(ENTERPRISE_USER_SCHEMA)
        .and_then(|rest| rest.strip_prefix(':'))
    {
        return match member(object, ENTERPRISE_USER_SCHEMA) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(extension)) => text(extension, attribute),
            Some(_) => Err(invalid(
                "invalidValue",
                format!("{ENTERPRISE_USER_SCHEMA} must be an object"),
            )),
        };
    }
    match path.split_once('.') {
        Some((parent, sub)) => match member(object, parent) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(complex)) => text(complex, sub),
            Some(_) => Err(invalid(
                "invalidValue",
                format!("{parent} must be an object"),
            )),
        },
        None => text(object, path),
    }
}

/// What a member is as a User resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView<'a> {
    pub id: String,
    /// The member's `userName` in this tenant (their email unless provisioned with
    /// another).
    pub user_name: &'a str,
    pub email: &'a Email,
    pub external_id: Option<&'a str>,
    /// `None` renders no `active`.
    pub active: Option<bool>,
    /// The `emails` to render; `None` renders the one email as a `work` address.
    pub emails: Option<&'a Value>,
    /// The member's tenant profile values by key (only [`PROFILE_ATTRIBUTES`]' keys are
    /// read).
    pub values: &'a BTreeMap<String, String>,
    pub created: String,
    pub last_modified: String,
    /// The member's ETag (`W/"…"`), `meta.version`.
    pub version: String,
    /// The resource's URL.
    pub location: String,
}

/// The User resource of a member (RFC 7643 §4.1), every attribute it has.
pub fn user_resource(view: &UserView<'_>) -> Value {
    let value = |key: &str| view.values.get(key).cloned();
    let mut resource = Map::new();
    resource.insert(
        "schemas".into(),
        json!([CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA]),
    );
    resource.insert("id".into(), json!(view.id));
    if let Some(external_id) = view.external_id {
        resource.insert("externalId".into(), json!(external_id));
    }
    resource.insert("userName".into(), json!(view.user_name));
    let mut name = Map::new();
    for (attribute, key) in [
        ("formatted", "formatted_name"),
        ("givenName", "given_name"),
        ("familyName", "family_name"),
    ] {
        if let Some(text) = value(key) {
            name.insert(attribute.into(), json!(text));
        }
    }
    if !name.is_empty() {
        resource.insert("name".into(), Value::Object(name));
    }
    for (attribute, key) in [
        ("displayName", "display_name"),
        ("title", "title"),
        ("locale", "locale"),
        ("timezone", "timezone"),
    ] {
        if let Some(text) = value(key) {
            resource.insert(attribute.into(), json!(text));
        }
    }
    if let Some(active) = view.active {
        resource.insert("active".into(), json!(active));
    }
    resource.insert(
        "emails".into(),
        view.emails.cloned().unwrap_or_else(
            || json!([{ "value": view.email.as_str(), "type": "work", "primary": true }]),
        ),
    );
    if let Some(department) = value("department") {
        resource.insert(
            ENTERPRISE_USER_SCHEMA.into(),
            json!({ "department": department }),
        );
    }
    resource.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
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

    /// Okta's create body (developer.okta.com, "SCIM 2.0 … Create the user").
    fn okta() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "test.user@okta.local",
            "name": { "givenName": "Test", "familyName": "User" },
            "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        })
    }

    /// Entra ID's create body (learn.microsoft.com, "Develop and plan provisioning for
    /// a SCIM endpoint", Create User request).
    fn entra() -> Value {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
            "active": true,
            "emails": [{ "primary": true, "type": "work",
                         "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@contoso.com" }],
            "meta": { "resourceType": "User" },
            "name": { "formatted": "givenName familyName", "familyName": "familyName",
                      "givenName": "givenName" },
            "roles": [],
            "title": "Manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Sales" }
        })
    }

    #[test]
    fn okta_creates_read_as_a_member_with_profile_values() {
        let user = parse_user(&okta()).unwrap();
        assert_eq!(user.email.as_str(), "test.user@okta.local");
        assert_eq!(user.external_id.as_deref(), Some("00ujl29u0le5T6Aj10h7"));
        assert_eq!(user.active, Some(true));
        assert_eq!(user.values["given_name"], "Test");
        assert_eq!(user.values["display_name"], "Test User");
        assert_eq!(user.values["locale"], "en-US");
        assert!(!user.values.contains_key("title"));
    }

    #[test]
    fn entra_creates_are_taken_by_their_user_name() {
        // Entra's sample sends a work email other than its userName.
        let body = entra();
        let user = parse_user(&body).unwrap();
        assert_eq!(
            user.email.as_str(),
            "test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com"
        );
        assert_eq!(user.values["title"], "Manager");
        assert_eq!(user.values["department"], "Sales");
        assert_eq!(user.values["formatted_name"], "givenName familyName");
    }

    #[test]
    fn malformed_users_are_refused_with_their_scim_type() {
        let refused = |body: Value| parse_user(&body).unwrap_err().scim_type;
        assert_eq!(refused(json!([])), "invalidSyntax");
        assert_eq!(
            refused(json!({ "userName": "a@example.com" })),
            "invalidSyntax"
        );
        let user = |extra: Value| {
            let mut body = json!({ "schemas": [CORE_USER_SCHEMA], "userName": "a@example.com" });
            for (key, value) in extra.as_object().unwrap() {
                body[key] = value.clone();
            }
            body
        };
        assert_eq!(
            refused(user(json!({ "userName": "not an email" }))),
            "invalidValue"
        );
        assert_eq!(refused(user(json!({ "userName": null }))), "invalidValue");
        assert_eq!(
            refused(user(json!({ "userName": "x".repeat(257) }))),
            "invalidValue"
        );
        assert_eq!(
            refused(user(
                json!({ "userName": "ada", "emails": [{ "value": "nope" }] })
            )),
            "invalidValue"
        );
        // A login that is not an address takes the primary email.
        let login = parse_user(&user(json!({
            "userName": "ada.l",
            "emails": [{ "value": "home@example.com" },
                       { "value": "Ada@Example.com", "primary": "True" }]
        })))
        .unwrap();
        assert_eq!(login.user_name, "ada.l");
        assert_eq!(login.email.as_str(), "ada@example.com");
        assert_eq!(refused(user(json!({ "active": "maybe" }))), "invalidValue");
        assert_eq!(refused(user(json!({ "displayName": 3 }))), "invalidValue");
        assert_eq!(refused(user(json!({ "name": "Ada" }))), "invalidValue");
        assert_eq!(refused(user(json!({ "emails": {} }))), "invalidValue");
        // Entra's boolean strings are read as booleans; unknown attributes are ignored.
        let user = parse_user(&user(json!({ "active": "False", "nickName": "x" }))).unwrap();
        assert_eq!(user.active, Some(false));
    }

    #[test]
    fn a_member_renders_as_a_user_resource_that_reads_back_the_same() {
        let email = Email::parse("ada@example.com").unwrap();
        let values: BTreeMap<String, String> = [
            ("given_name", "Ada"),
            ("family_name", "Lovelace"),
            ("display_name", "Ada L."),
            ("department", "Analytics"),
            ("unrelated", "kept out"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        let resource = user_resource(&UserView {
            id: "0193a".to_owned(),
            user_name: "ada@example.com",
            email: &email,
            external_id: Some("e-1"),
            active: Some(false),
            emails: None,
            values: &values,
            created: "2026-12-05T00:00:00Z".to_owned(),
            last_modified: "2026-12-05T01:00:00Z".to_owned(),
            version: "W/\"2\"".to_owned(),
            location: "https://id.example.com/scim/v2/tenants/acme/Users/0193a".to_owned(),
        });
        assert_eq!(
            resource["name"],
            json!({ "givenName": "Ada", "familyName": "Lovelace" })
        );
        assert_eq!(resource[ENTERPRISE_USER_SCHEMA]["department"], "Analytics");
        assert_eq!(resource["meta"]["version"], "W/\"2\"");
        assert!(!resource.to_string().contains("kept out"));
        let read = parse_user(&resource).unwrap();
        assert_eq!(read.email, email);
        assert_eq!(read.active, Some(false));
        assert_eq!(read.external_id.as_deref(), Some("e-1"));
        assert_eq!(read.values.len(), 4);
    }
}
