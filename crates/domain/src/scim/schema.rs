//! What this engine's SCIM resources are (RFC 7643): the attributes of `User` (with the
//! enterprise extension) and `Group` as SPEC §8 maps them, as data. The discovery
//! documents (`/Schemas`, `/ResourceTypes`) are rendered from it, and `attributes` /
//! `excludedAttributes` (RFC 7644 §3.9) are applied by it, so the three never disagree.
//!
//! The common attributes `id`, `externalId` and `meta` (RFC 7643 §3.1) belong to every
//! resource and are not listed in a schema's attributes, as in the RFC's own schemas.

use serde_json::{json, Map, Value};

use super::filter::{AttrPath, CORE_GROUP_SCHEMA, CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA};

/// RFC 7643 §7's attribute types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    DateTime,
    Reference,
    Complex,
}

impl AttrType {
    fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::DateTime => "dateTime",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always returned, whatever `attributes` / `excludedAttributes` say.
    Always,
    /// Returned unless excluded, or unless `attributes` names others.
    Default,
}

/// One attribute of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub kind: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    /// `server` for a value unique within the tenant, `none` otherwise.
    pub unique: bool,
    pub description: &'static str,
    /// Canonical values (`emails.type`); empty for none.
    pub canonical: &'static [&'static str],
    /// The resource types a reference may point to; empty unless `kind` is `Reference`.
    pub reference_types: &'static [&'static str],
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    fn new(name: &'static str, kind: AttrType, description: &'static str) -> Self {
        Self {
            name,
            kind,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            unique: false,
            description,
            canonical: &[],
            reference_types: &[],
            sub_attributes: Vec::new(),
        }
    }

    fn text(name: &'static str, description: &'static str) -> Self {
        Self::new(name, AttrType::String, description)
    }

    fn complex(name: &'static str, description: &'static str, subs: Vec<Attribute>) -> Self {
        Self {
            sub_attributes: subs,
            ..Self::new(name, AttrType::Complex, description)
        }
    }

    fn multi(self) -> Self {
        Self {
            multi_valued: true,
            ..self
        }
    }

    fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    fn unique(self) -> Self {
        Self {
            unique: true,
            ..self
        }
    }

    fn mutability(self, mutability: Mutability) -> Self {
        Self { mutability, ..self }
    }

    /// The attribute as RFC 7643 §7 describes one.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name));
        out.insert("type".into(), json!(self.kind.as_str()));
        out.insert("multiValued".into(), json!(self.multi_valued));
        out.insert("description".into(), json!(self.description));
        out.insert("required".into(), json!(self.required));
        if matches!(self.kind, AttrType::String | AttrType::Reference) {
            out.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical.is_empty() {
            out.insert("canonicalValues".into(), json!(self.canonical));
        }
        if !self.reference_types.is_empty() {
            out.insert("referenceTypes".into(), json!(self.reference_types));
        }
        out.insert(
            "mutability".into(),
            json!(match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
            }),
        );
        out.insert(
            "returned".into(),
            json!(match self.returned {
                Returned::Always => "always",
                Returned::Default => "default",
            }),
        );
        if self.kind != AttrType::Complex && self.kind != AttrType::Boolean {
            out.insert(
                "uniqueness".into(),
                json!(if self.unique { "server" } else { "none" }),
            );
        }
        if !self.sub_attributes.is_empty() {
            out.insert(
                "subAttributes".into(),
                Value::Array(self.sub_attributes.iter().map(Attribute::to_json).collect()),
            );
        }
        Value::Object(out)
    }
}

/// A schema: its URN, name and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// The schema as `/Schemas` serves it (RFC 7643 §7), `meta.location` under `base`.
    pub fn to_json(&self, base: &str) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(Attribute::to_json).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base}/Schemas/{}", self.id),
            },
        })
    }

    /// The attribute a path names at the top level of this schema (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
    }
}

/// The core User schema, as SPEC §8 maps it onto a user and their tenant account:
/// `userName` and the one `emails` value are the email; `name`, `displayName`,
/// `locale`, `timezone` and `title` are the member's tenant profile values; `active` is
/// the account's state.
pub fn user_schema() -> Schema {
    Schema {
        id: CORE_USER_SCHEMA,
        name: "User",
        description: "A person in the tenant: a platform user and their account in this tenant",
        attributes: vec![
            Attribute::text(
                "userName",
                "The member's name in this tenant, unique in it: their email address, or a \
                 login kept beside the email the primary emails value gives",
            )
            .required()
            .unique(),
            Attribute::complex(
                "name",
                "The member's name in this tenant",
                vec![
                    Attribute::text("formatted", "The full name, as displayed"),
                    Attribute::text("familyName", "The family name"),
                    Attribute::text("givenName", "The given name"),
                ],
            ),
            Attribute::text("displayName", "The name shown for the member in this tenant"),
            Attribute::text("title", "The member's title in this tenant"),
            Attribute::text("locale", "The member's locale in this tenant, e.g. en-US"),
            Attribute::text("timezone", "The member's time zone, e.g. Europe/Berlin"),
            Attribute::new(
                "active",
                AttrType::Boolean,
                "Whether the member's account in this tenant is active (false suspends it here only)",
            ),
            Attribute::complex(
                "emails",
                "The user's one email address (the platform identity): userName when that \
                 is an address, else the primary value",
                vec![
                    Attribute::text("value", "The email address").required(),
                    Attribute {
                        canonical: &["work", "home", "other"],
                        ..Attribute::text("type", "The kind of address")
                    },
                    Attribute::new(
                        "primary",
                        AttrType::Boolean,
                        "Always true: the user has one address",
                    ),
                ],
            )
            .multi()
            .required(),
        ],
    }
}

/// The enterprise User extension: `department` is a member's tenant profile value.
pub fn enterprise_user_schema() -> Schema {
    Schema {
        id: ENTERPRISE_USER_SCHEMA,
        name: "EnterpriseUser",
        description: "Enterprise User",
        attributes: vec![Attribute::text(
            "department",
            "The member's department in this tenant",
        )],
    }
}

/// The core Group schema: a tenant role and the accounts holding it.
pub fn group_schema() -> Schema {
    Schema {
        id: CORE_GROUP_SCHEMA,
        name: "Group",
        description: "A role of the tenant and the members holding it",
        attributes: vec![
            Attribute::text("displayName", "The role's name")
                .required()
                .unique(),
            Attribute::complex(
                "members",
                "The members holding the role",
                vec![
                    Attribute::text("value", "The member's user id")
                        .mutability(Mutability::Immutable),
                    Attribute {
                        reference_types: &["User"],
                        ..Attribute::new("$ref", AttrType::Reference, "The member's URI")
                            .mutability(Mutability::Immutable)
                    },
                    Attribute::text("display", "The member's userName")
                        .mutability(Mutability::ReadOnly),
                    Attribute {
                        canonical: &["User"],
                        ..Attribute::text("type", "Always User").mutability(Mutability::Immutable)
                    },
                ],
            )
            .multi(),
        ],
    }
}

/// Every schema this engine serves, in `/Schemas` order.
pub fn schemas() -> Vec<Schema> {
    vec![user_schema(), enterprise_user_schema(), group_schema()]
}

/// `/ResourceTypes` (RFC 7643 §6): `User` (with the enterprise extension, optional) and
/// `Group`, their endpoints relative to the tenant's base `base`.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A person in the tenant",
            "schema": CORE_USER_SCHEMA,
            "schemaExtensions": [{ "schema": ENTERPRISE_USER_SCHEMA, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A role of the tenant",
            "schema": CORE_GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
        }),
    ]
}

/// What the service provider supports, for `/ServiceProviderConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `Bulk`'s limits (operations, payload bytes); `None` when it is not offered.
    pub bulk: Option<(u32, u32)>,
    /// The most resources one list answers (`filter.maxResults`).
    pub max_results: u32,
    /// Whether `sortBy` / `sortOrder` are honoured.
    pub sort: bool,
}

/// `/ServiceProviderConfig` (RFC 7643 §5): PATCH, filters, ETags; no password change
/// (passwords are not provisioned); authentication by a bearer tenant API key.
pub fn service_provider_config(base: &str, capabilities: Capabilities) -> Value {
    let (bulk_supported, max_operations, max_payload) = match capabilities.bulk {
        Some((operations, payload)) => (true, operations, payload),
        None => (false, 0, 0),
    };
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": { "supported": true },
        "bulk": {
            "supported": bulk_supported,
            "maxOperations": max_operations,
            "maxPayloadSize": max_payload,
        },
        "filter": { "supported": true, "maxResults": capabilities.max_results },
        "changePassword": { "supported": false },
        "sort": { "supported": capabilities.sort },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Tenant API key",
            "description": "A bearer tenant API key (uek_…) holding the scope scim:write",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// A resource with only what `attributes` / `excluded` ask for (RFC 7644 §3.9):
/// `schemas` and `id` always stay; with `attributes`, only those (and their parents'
/// complex values narrowed to the named sub-attributes); otherwise everything but
/// `excluded`. Names compare case-insensitively; extension attributes are named with
/// their schema URN prefix.
pub fn project(resource: &Value, attributes: &[AttrPath], excluded: &[AttrPath]) -> Value {
    let Value::Object(members) = resource else {
        return resource.clone();
    };
    let mut out = Map::new();
    for (key, value) in members {
        if matches!(key.as_str(), "schemas" | "id") {
            out.insert(key.clone(), value.clone());
            continue;
        }
        let kept = if key.starts_with("urn:") {
            // An extension's object: narrowed attribute by attribute.
            project_extension(key, value, attributes, excluded)
        } else {
            project_member(key, value, None, attributes, excluded)
        };
        if let Some(kept) = kept {
            out.insert(key.clone(), kept);
        }
    }
    Value::Object(out)
}

fn names(path: &AttrPath, schema: Option<&str>, name: &str) -> bool {
    let schema_matches = match (&path.schema, schema) {
        (Some(ours), Some(theirs)) => ours.eq_ignore_ascii_case(theirs),
        (Some(ours), None) => [CORE_USER_SCHEMA, CORE_GROUP_SCHEMA]
            .iter()
            .any(|core| core.eq_ignore_ascii_case(ours)),
        (None, theirs) => theirs.is_none(),
    };
    schema_matches && path.name.eq_ignore_ascii_case(name)
}

/// One top-level member (of the resource or of an extension's object, `schema`).
fn project_member(
    key: &str,
    value: &Value,
    schema: Option<&str>,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Option<Value> {
    if !attributes.is_empty() {
        let asked: Vec<&AttrPath> = attributes
            .iter()
            .filter(|path| names(path, schema, key))
            .collect();
        if asked.is_empty() {
            return None;
        }
        if asked.iter().any(|path| path.sub.is_none()) {
            return Some(value.clone());
        }
        let subs: Vec<&str> = asked
            .iter()
            .filter_map(|path| path.sub.as_deref())
            .collect();
        return Some(narrow(value, |sub| {
            subs.iter().any(|asked| asked.eq_ignore_ascii_case(sub))
        }));
    }
    let dropped: Vec<&AttrPath> = excluded
        .iter()
        .filter(|path| names(path, schema, key))
        .collect();
    if dropped.iter().any(|path| path.sub.is_none()) {
        return None;
    }
    let subs: Vec<&str> = dropped
        .iter()
        .filter_map(|path| path.sub.as_deref())
        .collect();
    if subs.is_empty() {
        return Some(value.clone());
    }
    Some(narrow(value, |sub| {
        !subs.iter().any(|dropped| dropped.eq_ignore_ascii_case(sub))
    }))
}

fn project_extension(
    schema: &str,
    value: &Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Option<Value> {
    let Value::Object(members) = value else {
        return Some(value.clone());
    };
    // Naming the extension itself (`urn:…:User` as a whole) keeps or drops all of it.
    let whole = |path: &AttrPath| {
        format!(
            "{}:{}",
            path.schema.as_deref().unwrap_or_default(),
            path.name
        )
        .eq_ignore_ascii_case(schema)
    };
    if attributes.iter().any(whole) {
        return Some(value.clone());
    }
    if excluded.iter().any(whole) {
        return None;
    }
    let kept: Map<String, Value> = members
        .iter()
        .filter_map(|(key, value)| {
            project_member(key, value, Some(schema), attributes, excluded)
                .map(|kept| (key.clone(), kept))
        })
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

/// A complex value (or each element of a multi-valued one) with only the sub-attributes
/// `keep` accepts.
fn narrow(value: &Value, keep: impl Fn(&str) -> bool + Copy) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .iter()
                .filter(|(key, _)| keep(key))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| narrow(item, keep)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<AttrPath> {
        list.iter()
            .map(|path| AttrPath::parse(path).unwrap())
            .collect()
    }

    fn ada() -> Value {
        json!({
            "schemas": [CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "0193",
            "externalId": "e-1",
            "userName": "ada@example.com",
            "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "emails": [{ "value": "ada@example.com", "type": "work", "primary": true }],
            "active": true,
            ENTERPRISE_USER_SCHEMA: { "department": "Analytics" },
            "meta": { "resourceType": "User", "version": "W/\"3\"" },
        })
    }

    #[test]
    fn the_schemas_describe_every_attribute_with_its_characteristics() {
        let user = user_schema().to_json("https://id.example.com/scim/v2/tenants/acme");
        assert_eq!(user["id"], CORE_USER_SCHEMA);
        let user_name = &user["attributes"][0];
        assert_eq!(user_name["name"], "userName");
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["uniqueness"], "server");
        let emails = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|attribute| attribute["name"] == "emails")
            .unwrap();
        assert_eq!(emails["multiValued"], true);
        assert_eq!(
            emails["subAttributes"][1]["canonicalValues"],
            json!(["work", "home", "other"])
        );
        assert_eq!(
            user["meta"]["location"],
            format!("https://id.example.com/scim/v2/tenants/acme/Schemas/{CORE_USER_SCHEMA}")
        );
        let group = group_schema().to_json("");
        assert_eq!(
            group["attributes"][1]["subAttributes"][1]["referenceTypes"],
            json!(["User"])
        );
        assert_eq!(schemas().len(), 3);
        assert_eq!(
            resource_types("")[0]["schemaExtensions"][0]["schema"],
            ENTERPRISE_USER_SCHEMA
        );
    }

    #[test]
    fn the_service_provider_config_says_what_is_offered() {
        let config = service_provider_config(
            "https://id.example.com/scim/v2/tenants/acme",
            Capabilities {
                bulk: None,
                max_results: 200,
                sort: false,
            },
        );
        assert_eq!(config["patch"]["supported"], true);
        assert_eq!(config["bulk"]["supported"], false);
        assert_eq!(config["filter"]["maxResults"], 200);
        assert_eq!(config["etag"]["supported"], true);
        assert_eq!(
            config["authenticationSchemes"][0]["type"],
            "oauthbearertoken"
        );
    }

    #[test]
    fn attributes_keep_only_what_is_named_and_always_the_id() {
        let projected = project(&ada(), &paths(&["userName", "name.givenName"]), &[]);
        assert_eq!(
            projected,
            json!({
                "schemas": [CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "id": "0193",
                "userName": "ada@example.com",
                "name": { "givenName": "Ada" },
            })
        );
        let department = format!("{ENTERPRISE_USER_SCHEMA}:department");
        let projected = project(&ada(), &paths(&["EMAILS.value", &department]), &[]);
        assert_eq!(projected["emails"], json!([{ "value": "ada@example.com" }]));
        assert_eq!(
            projected[ENTERPRISE_USER_SCHEMA],
            json!({ "department": "Analytics" })
        );
        assert!(projected.get("userName").is_none());
    }

    #[test]
    fn excluded_attributes_drop_what_is_named_but_never_the_id() {
        let projected = project(
            &ada(),
            &[],
            &paths(&["emails", "name.familyName", "id", ENTERPRISE_USER_SCHEMA]),
        );
        assert_eq!(projected["id"], "0193");
        assert!(projected.get("emails").is_none());
        assert_eq!(projected["name"], json!({ "givenName": "Ada" }));
        assert!(projected.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(projected["userName"], "ada@example.com");
    }
}
