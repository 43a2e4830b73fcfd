//! SCIM PATCH requests (RFC 7644 §3.5.2): a parser from the JSON body into a list of
//! typed operations, with what Entra ID and Okta really send accepted as well.
//!
//! # What is accepted
//!
//! - The body is an object with exactly two members, `schemas` and `Operations`.
//!   Member names are compared ignoring ASCII case everywhere (RFC 7643 §2.1 makes
//!   attribute names case-insensitive, and providers spell `Operations` both ways); two
//!   members whose names differ only in case are refused as ambiguous.
//! - `schemas` is an array of strings holding [`PATCH_OP_SCHEMA`] (compared ignoring
//!   ASCII case); other strings beside it are tolerated.
//! - `Operations` is a non-empty array of at most [`MAX_OPERATIONS`] objects, each with
//!   `op` (`add`, `remove`, `replace`, any ASCII case: Entra sends `Replace`), an
//!   optional `path` (a string for [`parse_path`]; `null` counts as absent) and an
//!   optional `value`, kept as sent.
//! - `remove` needs a path (`noTarget`); `add` and `replace` need a `value` member
//!   (`invalidValue`). `add` refuses a `null` value, as it would add nothing; `replace`
//!   keeps it, since a null value means "unassigned" (RFC 7643 §2.5) and the applier
//!   decides what clearing means.
//! - `add` or `replace` without a path carries an object of attributes: it is expanded
//!   into one operation per attribute (see [`parse_patch`]), so every operation the
//!   applier receives has a path.
//!
//! Nothing here knows which attributes exist or what type they have: unknown attribute
//! names, wrong value types and Entra's `"False"` strings (see [`lenient_bool`]) are
//! the applier's business.

use serde_json::{Map, Value};

use super::filter::{
    parse_path, AttrPath, FilterError, PatchPath, CORE_GROUP_SCHEMA, CORE_USER_SCHEMA,
    ENTERPRISE_USER_SCHEMA,
};

/// The URN a PATCH body's `schemas` must hold.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The most operations one request may carry, counted both as sent and after a
/// path-less value object has been expanded into one operation per attribute.
pub const MAX_OPERATIONS: usize = 1000;

/// Schema URNs that, used as a key of a path-less value object, hold a nested object
/// of that schema's attributes (`{"urn:…:enterprise:2.0:User": {"department": "x"}}`).
const CONTAINER_SCHEMAS: [&str; 3] = [ENTERPRISE_USER_SCHEMA, CORE_USER_SCHEMA, CORE_GROUP_SCHEMA];

/// The longest piece of client input quoted back in an error's detail, in characters.
const SHOWN_LEN: usize = 64;

const INVALID_SYNTAX: &str = "invalidSyntax";
const INVALID_PATH: &str = "invalidPath";
const NO_TARGET: &str = "noTarget";
const INVALID_VALUE: &str = "invalidValue";
const TOO_MANY: &str = "tooMany";

/// A PATCH operation's `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    /// `add`: add values to the target (RFC 7644 §3.5.2.1).
    Add,
    /// `remove`: remove the target's values (RFC 7644 §3.5.2.2).
    Remove,
    /// `replace`: replace the target's values (RFC 7644 §3.5.2.3).
    Replace,
}

impl PatchOpKind {
    /// Every kind, in the RFC's order.
    pub const ALL: [Self; 3] = [Self::Add, Self::Remove, Self::Replace];

    /// The kind named `op`, ignoring ASCII case (`add`, `Add`, `ADD`).
    pub fn parse(op: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(op))
    }

    /// The canonical (lowercase) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

impl std::fmt::Display for PatchOpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation of a PATCH request, after parsing.
///
/// Operations returned by [`parse_patch`] always have a `path`; `value` is `None` only
/// for a `remove` that did not carry one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOperation {
    /// What to do.
    pub op: PatchOpKind,
    /// Where to do it.
    pub path: Option<PatchPath>,
    /// The value to add or replace with, or (Entra's `remove` of members) the values to
    /// remove; exactly as sent.
    pub value: Option<Value>,
}

/// Why a PATCH body was refused: a SCIM error (RFC 7644 §3.12) with status 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct PatchError {
    /// The SCIM `scimType`: `invalidSyntax` (the body is not a PATCH request),
    /// `invalidPath` (a `path`, or a key of a path-less value object, is not an
    /// attribute path), `noTarget` (`remove` without a path), `invalidValue` (a missing
    /// or unusable `value`) or `tooMany` (more than [`MAX_OPERATIONS`] operations).
    pub scim_type: &'static str,
    /// What is wrong, for a human (the SCIM error's `detail`).
    pub detail: String,
}

impl PatchError {
    fn new(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self {
            scim_type,
            detail: detail.into(),
        }
    }

    fn invalid_path(index: usize, what: &str, error: &FilterError) -> Self {
        Self::new(
            INVALID_PATH,
            format!("operation {index}: invalid {what}: {}", error.message()),
        )
    }
}

/// Parses a SCIM PATCH request body into its operations, in order.
///
/// An `add` or `replace` without a `path` must carry an object of attributes; it
/// becomes one operation per member, of the same kind, whose path is the member's key:
/// a simple name (`active`), a dotted one (`name.givenName`, as Entra sends), or a
/// URN-qualified one (`urn:…:enterprise:2.0:User:department`). A key that is exactly the
/// enterprise User, core User or core Group schema URN holds a nested object instead,
/// expanded one level into paths qualified by that URN. Keys are attribute paths, never
/// filters: `emails[type eq "work"]` as a key is `invalidPath`.
///
/// The expanded operations follow the order of the object's keys as `serde_json` holds
/// them. This workspace does not enable serde_json's `preserve_order` feature, so that
/// is sorted by key rather than as sent; it does not matter, because each expanded
/// operation targets a different attribute.
///
/// # Errors
/// A [`PatchError`], as listed on [`PatchError::scim_type`] and in the module
/// documentation.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOperation>, PatchError> {
    let Value::Object(members) = body else {
        return Err(PatchError::new(
            INVALID_SYNTAX,
            format!("a PATCH body must be a JSON object, not {}", kind_of(body)),
        ));
    };
    let [schemas, operations] = take_members(members, ["schemas", "Operations"], |name| {
        format!("unknown member {} in the PATCH body", shown(name))
    })?;
    check_schemas(schemas)?;
    let operations = match operations {
        Some(Value::Array(operations)) => operations,
        Some(other) => {
            return Err(PatchError::new(
                INVALID_SYNTAX,
                format!("Operations must be an array, not {}", kind_of(other)),
            ))
        }
        None => {
            return Err(PatchError::new(
                INVALID_SYNTAX,
                "the PATCH body has no Operations",
            ))
        }
    };
    if operations.is_empty() {
        return Err(PatchError::new(
            INVALID_SYNTAX,
            "Operations must hold at least one operation",
        ));
    }
    if operations.len() > MAX_OPERATIONS {
        return Err(too_many());
    }
    let mut parsed = Vec::with_capacity(operations.len());
    for (index, operation) in operations.iter().enumerate() {
        parse_operation(index, operation, &mut parsed)?;
    }
    Ok(parsed)
}

/// Whether `value` is a boolean the way Entra ID writes them: JSON `true`/`false`, or
/// the strings `"true"`/`"false"` in any ASCII case (Entra sends `"False"`). `None` for
/// anything else, including `1`, `"yes"` and `" true"`.
///
/// The parser does not apply this, as it does not know which attributes are boolean;
/// the applier does, for those that are.
pub fn lenient_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(boolean) => Some(*boolean),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Looks up each of `names` in `members` ignoring ASCII case; refuses any other member
/// (with `unknown`'s message) and two members that differ only in case.
fn take_members<'a, const N: usize>(
    members: &'a Map<String, Value>,
    names: [&str; N],
    unknown: impl Fn(&str) -> String,
) -> Result<[Option<&'a Value>; N], PatchError> {
    let mut found: [Option<&'a Value>; N] = [None; N];
    for (key, value) in members {
        let slot = names
            .iter()
            .zip(found.iter_mut())
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, slot)| slot)
            .ok_or_else(|| PatchError::new(INVALID_SYNTAX, unknown(key)))?;
        if slot.replace(value).is_some() {
            return Err(PatchError::new(
                INVALID_SYNTAX,
                format!("member {} appears twice", shown(key)),
            ));
        }
    }
    Ok(found)
}

fn check_schemas(schemas: Option<&Value>) -> Result<(), PatchError> {
    let Some(schemas) = schemas else {
        return Err(PatchError::new(
            INVALID_SYNTAX,
            format!("the PATCH body has no schemas; it must hold {PATCH_OP_SCHEMA}"),
        ));
    };
    let Value::Array(schemas) = schemas else {
        return Err(PatchError::new(
            INVALID_SYNTAX,
            format!("schemas must be an array, not {}", kind_of(schemas)),
        ));
    };
    let mut holds_patch_op = false;
    for schema in schemas {
        let Value::String(schema) = schema else {
            return Err(PatchError::new(
                INVALID_SYNTAX,
                format!("schemas must hold strings, not {}", kind_of(schema)),
            ));
        };
        holds_patch_op |= schema.eq_ignore_ascii_case(PATCH_OP_SCHEMA);
    }
    if holds_patch_op {
        Ok(())
    } else {
        Err(PatchError::new(
            INVALID_SYNTAX,
            format!("schemas must hold {PATCH_OP_SCHEMA}"),
        ))
    }
}

fn parse_operation(
    index: usize,
    operation: &Value,
    parsed: &mut Vec<PatchOperation>,
) -> Result<(), PatchError> {
    let Value::Object(members) = operation else {
        return Err(PatchError::new(
            INVALID_SYNTAX,
            format!(
                "operation {index} must be a JSON object, not {}",
                kind_of(operation)
            ),
        ));
    };
    let [op, path, value] = take_members(members, ["op", "path", "value"], |name| {
        format!("operation {index}: unknown member {}", shown(name))
    })?;
    let op = match op {
        Some(Value::String(op)) => PatchOpKind::parse(op).ok_or_else(|| {
            PatchError::new(
                INVALID_SYNTAX,
                format!(
                    "operation {index}: unknown op {}; expected add, remove or replace",
                    shown(op)
                ),
            )
        })?,
        Some(other) => {
            return Err(PatchError::new(
                INVALID_SYNTAX,
                format!(
                    "operation {index}: op must be a string, not {}",
                    kind_of(other)
                ),
            ))
        }
        None => {
            return Err(PatchError::new(
                INVALID_SYNTAX,
                format!("operation {index} has no op"),
            ))
        }
    };
    let path = match path {
        Some(Value::String(path)) => Some(
            parse_path(path).map_err(|error| PatchError::invalid_path(index, "path", &error))?,
        ),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(PatchError::new(
                INVALID_SYNTAX,
                format!(
                    "operation {index}: path must be a string, not {}",
                    kind_of(other)
                ),
            ))
        }
    };
    match (op, path, value) {
        (PatchOpKind::Remove, None, _) => Err(PatchError::new(
            NO_TARGET,
            format!("operation {index}: remove needs a path"),
        )),
        (PatchOpKind::Add | PatchOpKind::Replace, _, None) => Err(PatchError::new(
            INVALID_VALUE,
            format!("operation {index}: {op} needs a value"),
        )),
        (op, Some(path), value) => push(
            index,
            parsed,
            PatchOperation {
                op,
                path: Some(path),
                value: value.cloned(),
            },
        ),
        (op, None, Some(Value::Object(attributes))) => expand(index, op, attributes, parsed),
        (op, None, Some(other)) => Err(PatchError::new(
            INVALID_VALUE,
            format!(
                "operation {index}: {op} without a path needs an object of attributes as its value, not {}",
                kind_of(other)
            ),
        )),
    }
}

/// Turns a path-less `add`/`replace` of an object of attributes into one operation per
/// attribute.
fn expand(
    index: usize,
    op: PatchOpKind,
    attributes: &Map<String, Value>,
    parsed: &mut Vec<PatchOperation>,
) -> Result<(), PatchError> {
    let before = parsed.len();
    for (key, value) in attributes {
        let container = CONTAINER_SCHEMAS
            .iter()
            .any(|schema| schema.eq_ignore_ascii_case(key));
        if !container {
            let attr = AttrPath::parse(key).map_err(|error| {
                PatchError::invalid_path(index, &format!("attribute {}", shown(key)), &error)
            })?;
            push(index, parsed, attribute_operation(op, attr, value))?;
            continue;
        }
        let Value::Object(nested) = value else {
            return Err(PatchError::new(
                INVALID_VALUE,
                format!(
                    "operation {index}: the value of {} must be an object of its attributes, not {}",
                    shown(key),
                    kind_of(value)
                ),
            ));
        };
        for (name, nested_value) in nested {
            let attr = AttrPath::parse(name).map_err(|error| {
                PatchError::invalid_path(index, &format!("attribute {}", shown(name)), &error)
            })?;
            if attr.schema.is_some() {
                return Err(PatchError::new(
                    INVALID_PATH,
                    format!(
                        "operation {index}: attribute {} inside {} must not name a schema",
                        shown(name),
                        shown(key)
                    ),
                ));
            }
            let qualified = AttrPath {
                schema: Some(key.clone()),
                ..attr
            };
            push(
                index,
                parsed,
                attribute_operation(op, qualified, nested_value),
            )?;
        }
    }
    if parsed.len() == before {
        return Err(PatchError::new(
            INVALID_VALUE,
            format!("operation {index}: {op} without a path needs at least one attribute"),
        ));
    }
    Ok(())
}

fn attribute_operation(op: PatchOpKind, attr: AttrPath, value: &Value) -> PatchOperation {
    PatchOperation {
        op,
        path: Some(PatchPath {
            attr,
            filter: None,
            sub: None,
        }),
        value: Some(value.clone()),
    }
}

/// Appends `operation` after the checks that hold for every operation, expanded or not.
fn push(
    index: usize,
    parsed: &mut Vec<PatchOperation>,
    operation: PatchOperation,
) -> Result<(), PatchError> {
    if operation.op == PatchOpKind::Add && operation.value == Some(Value::Null) {
        let target = operation
            .path
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        return Err(PatchError::new(
            INVALID_VALUE,
            format!(
                "operation {index}: add of null to {} adds nothing",
                shown(&target)
            ),
        ));
    }
    if parsed.len() >= MAX_OPERATIONS {
        return Err(too_many());
    }
    parsed.push(operation);
    Ok(())
}

fn too_many() -> PatchError {
    PatchError::new(
        TOO_MANY,
        format!("a PATCH request may carry at most {MAX_OPERATIONS} operations"),
    )
}

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Client input quoted for an error's detail, cut to [`SHOWN_LEN`] characters.
pub(super) fn shown(text: &str) -> String {
    let mut cut: String = text.chars().take(SHOWN_LEN).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
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
    use serde_json::json;

    use super::*;
    use crate::scim::filter::{CompValue, CompareOp, Filter};

    fn body(operations: Value) -> Value {
        json!({ "schemas": [PATCH_OP_SCHEMA], "Operations": operations })
    }

    fn ops(operations: Value) -> Vec<PatchOperation> {
        parse_patch(&body(operations)).unwrap()
    }

    fn refusal(body: &Value) -> PatchError {
        parse_patch(body).unwrap_err()
    }

    fn path(text: &str) -> Option<PatchPath> {
        Some(parse_path(text).unwrap())
    }

    fn op(op: PatchOpKind, target: &str, value: Value) -> PatchOperation {
        PatchOperation {
            op,
            path: path(target),
            value: Some(value),
        }
    }

    const BABS: &str = "2819c223-7f76-453a-919d-413861904646";
    const ENTERPRISE_DEPARTMENT: &str =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";

    // ---- RFC 7644 §3.5.2 ----------------------------------------------------------------

    #[test]
    fn rfc_add_members_to_a_group_with_a_path() {
        let members = json!([{
            "display": "Babs Jensen",
            "$ref": format!("https://example.com/v2/Users/{BABS}"),
            "value": BABS,
        }]);
        let parsed = ops(json!([{ "op": "add", "path": "members", "value": members }]));
        assert_eq!(parsed, vec![op(PatchOpKind::Add, "members", members)]);
    }

    #[test]
    fn rfc_add_with_a_value_object_and_no_path_gives_one_operation_per_attribute() {
        let emails = json!([{ "value": "babs@jensen.org", "type": "home" }]);
        let parsed = ops(json!([{
            "op": "add",
            "value": { "emails": emails, "nickname": "Babs" },
        }]));
        assert_eq!(
            parsed,
            vec![
                op(PatchOpKind::Add, "emails", emails),
                op(PatchOpKind::Add, "nickname", json!("Babs")),
            ]
        );
    }

    #[test]
    fn rfc_remove_one_member_by_filter() {
        let parsed = ops(json!([{
            "op": "remove",
            "path": format!("members[value eq \"{BABS}\"]"),
        }]));
        let expected = PatchPath {
            attr: AttrPath::new("members"),
            filter: Some(Filter::Compare(
                AttrPath::new("value"),
                CompareOp::Eq,
                CompValue::Str(BABS.to_owned()),
            )),
            sub: None,
        };
        assert_eq!(
            parsed,
            vec![PatchOperation {
                op: PatchOpKind::Remove,
                path: Some(expected),
                value: None,
            }]
        );
    }

    #[test]
    fn rfc_remove_all_members() {
        let parsed = ops(json!([{ "op": "remove", "path": "members" }]));
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].path, path("members"));
        assert_eq!(parsed[0].value, None);
    }

    #[test]
    fn rfc_replace_and_remove_with_a_compound_value_filter() {
        let target = r#"emails[type eq "work" and value ew "example.com"]"#;
        let value = json!({ "type": "work", "value": "bjensen@example.com" });
        let parsed = ops(json!([
            { "op": "replace", "path": target, "value": value },
            { "op": "remove", "path": target },
        ]));
        let expected_path = PatchPath {
            attr: AttrPath::new("emails"),
            filter: Some(Filter::and(
                Filter::Compare(
                    AttrPath::new("type"),
                    CompareOp::Eq,
                    CompValue::Str("work".to_owned()),
                ),
                Filter::Compare(
                    AttrPath::new("value"),
                    CompareOp::Ew,
                    CompValue::Str("example.com".to_owned()),
                ),
            )),
            sub: None,
        };
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].op, PatchOpKind::Replace);
        assert_eq!(parsed[0].path.as_ref(), Some(&expected_path));
        assert_eq!(parsed[0].value.as_ref(), Some(&value));
        assert_eq!(parsed[1].op, PatchOpKind::Remove);
        assert_eq!(parsed[1].path.as_ref(), Some(&expected_path));
    }

    #[test]
    fn rfc_replace_a_sub_attribute_of_filtered_elements() {
        let parsed = ops(json!([{
            "op": "replace",
            "path": r#"addresses[type eq "work"].streetAddress"#,
            "value": "1010 Broadway Ave",
        }]));
        let target = parsed[0].path.as_ref().unwrap();
        assert!(target.attr.is("addresses"));
        assert!(target.filter.is_some());
        assert_eq!(target.sub.as_deref(), Some("streetAddress"));
    }

    #[test]
    fn rfc_replace_with_a_value_object() {
        let emails = json!([{ "value": "bjensen@example.com", "type": "work", "primary": true }]);
        let parsed = ops(json!([{
            "op": "replace",
            "value": { "emails": emails, "nickname": "Babs" },
        }]));
        assert_eq!(
            parsed,
            vec![
                op(PatchOpKind::Replace, "emails", emails),
                op(PatchOpKind::Replace, "nickname", json!("Babs")),
            ]
        );
    }

    // ---- Entra ID and Okta --------------------------------------------------------------

    #[test]
    fn entra_capitalised_replace_of_active_with_a_string_boolean() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "Replace", "path": "active", "value": "False" }],
        });
        let parsed = parse_patch(&body).unwrap();
        assert_eq!(
            parsed,
            vec![op(PatchOpKind::Replace, "active", json!("False"))]
        );
        assert_eq!(
            parsed[0].value.as_ref().and_then(lenient_bool),
            Some(false),
            "the parser keeps the string; the applier reads it leniently"
        );
    }

    #[test]
    fn entra_add_and_remove_members_with_capitalised_ops() {
        let members = json!([{ "value": BABS }]);
        let parsed = ops(json!([
            { "op": "Add", "path": "members", "value": members },
            { "op": "Remove", "path": "members", "value": members },
        ]));
        assert_eq!(
            parsed,
            vec![
                op(PatchOpKind::Add, "members", members.clone()),
                op(PatchOpKind::Remove, "members", members),
            ],
            "a remove keeps the values it names"
        );
    }

    #[test]
    fn entra_replace_with_dotted_keys_and_no_path() {
        let parsed = ops(json!([{
            "op": "replace",
            "value": { "name.givenName": "Ada", "active": false },
        }]));
        // Sorted by key: serde_json's map here does not keep the order sent.
        assert_eq!(
            parsed,
            vec![
                op(PatchOpKind::Replace, "active", json!(false)),
                op(PatchOpKind::Replace, "name.givenName", json!("Ada")),
            ]
        );
        let given_name = &parsed[1].path.as_ref().unwrap().attr;
        assert_eq!(given_name.name, "name");
        assert_eq!(given_name.sub.as_deref(), Some("givenName"));
    }

    #[test]
    fn okta_deactivation_without_a_path() {
        let parsed = ops(json!([{ "op": "replace", "value": { "active": false } }]));
        assert_eq!(
            parsed,
            vec![op(PatchOpKind::Replace, "active", json!(false))]
        );
    }

    #[test]
    fn urn_qualified_keys_and_the_enterprise_container_expand_to_qualified_paths() {
        let parsed = ops(json!([{
            "op": "replace",
            "value": {
                ENTERPRISE_DEPARTMENT: "Research",
                ENTERPRISE_USER_SCHEMA: {
                    "costCenter": "4130",
                    "manager": { "value": BABS },
                },
            },
        }]));
        assert_eq!(
            parsed,
            vec![
                op(
                    PatchOpKind::Replace,
                    &format!("{ENTERPRISE_USER_SCHEMA}:costCenter"),
                    json!("4130")
                ),
                op(
                    PatchOpKind::Replace,
                    &format!("{ENTERPRISE_USER_SCHEMA}:manager"),
                    json!({ "value": BABS })
                ),
                op(
                    PatchOpKind::Replace,
                    ENTERPRISE_DEPARTMENT,
                    json!("Research")
                ),
            ]
        );
        assert!(parsed.iter().all(|operation| operation
            .path
            .as_ref()
            .unwrap()
            .attr
            .schema
            .as_deref()
            == Some(ENTERPRISE_USER_SCHEMA)));
        assert!(parsed[2].path.as_ref().unwrap().attr.is("department"));
    }

    #[test]
    fn the_container_urn_is_recognised_in_any_case() {
        let shouted = ENTERPRISE_USER_SCHEMA.to_ascii_uppercase();
        let parsed =
            ops(json!([{ "op": "add", "value": { shouted.clone(): { "department": "x" } } }]));
        let attr = &parsed[0].path.as_ref().unwrap().attr;
        assert_eq!(attr.schema.as_deref(), Some(shouted.as_str()));
        assert!(attr.is("department"));
    }

    #[test]
    fn member_names_schema_and_ops_ignore_ascii_case() {
        for key in ["Operations", "operations", "OPERATIONS"] {
            let body = json!({
                "SCHEMAS": [PATCH_OP_SCHEMA.to_ascii_uppercase()],
                key: [{ "OP": "ADD", "Path": "title", "VALUE": "Tour Guide" }],
            });
            assert_eq!(
                parse_patch(&body).unwrap(),
                vec![op(PatchOpKind::Add, "title", json!("Tour Guide"))],
                "{key}"
            );
        }
        for (text, kind) in [
            ("add", PatchOpKind::Add),
            ("Remove", PatchOpKind::Remove),
            ("rEpLaCe", PatchOpKind::Replace),
        ] {
            assert_eq!(PatchOpKind::parse(text), Some(kind));
            assert_eq!(PatchOpKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(PatchOpKind::parse("move"), None);
        assert_eq!(PatchOpKind::parse(" add"), None);
    }

    #[test]
    fn extra_schemas_are_tolerated_and_a_null_path_is_no_path() {
        let body = json!({
            "schemas": ["urn:example:other", PATCH_OP_SCHEMA],
            "Operations": [{ "op": "replace", "path": null, "value": { "title": "x" } }],
        });
        assert_eq!(
            parse_patch(&body).unwrap(),
            vec![op(PatchOpKind::Replace, "title", json!("x"))]
        );
    }

    #[test]
    fn replace_keeps_a_null_value_while_add_refuses_it() {
        assert_eq!(
            ops(json!([{ "op": "replace", "path": "title", "value": null }])),
            vec![op(PatchOpKind::Replace, "title", Value::Null)]
        );
        assert_eq!(
            ops(json!([{ "op": "replace", "value": { "title": null } }])),
            vec![op(PatchOpKind::Replace, "title", Value::Null)]
        );
        for operation in [
            json!({ "op": "add", "path": "title", "value": null }),
            json!({ "op": "add", "value": { "title": null } }),
        ] {
            let error = refusal(&body(json!([operation])));
            assert_eq!(error.scim_type, "invalidValue", "{operation}");
        }
    }

    #[test]
    fn exactly_the_maximum_number_of_operations_is_accepted() {
        let operations: Vec<Value> = (0..MAX_OPERATIONS)
            .map(|_| json!({ "op": "remove", "path": "title" }))
            .collect();
        assert_eq!(ops(Value::Array(operations)).len(), MAX_OPERATIONS);
    }

    // ---- refusals -----------------------------------------------------------------------

    fn assert_refused(body: &Value, scim_type: &str) -> PatchError {
        let error = refusal(body);
        assert_eq!(error.scim_type, scim_type, "{body}: {}", error.detail);
        assert!(!error.detail.is_empty());
        error
    }

    #[test]
    fn a_body_without_schemas_or_with_the_wrong_schema_is_refused() {
        let operations = json!([{ "op": "remove", "path": "title" }]);
        assert_refused(&json!({ "Operations": operations }), "invalidSyntax");
        for schemas in [
            json!(["urn:ietf:params:scim:schemas:core:2.0:User"]),
            json!([]),
            json!(PATCH_OP_SCHEMA),
            json!([PATCH_OP_SCHEMA, 7]),
            json!(null),
        ] {
            assert_refused(
                &json!({ "schemas": schemas, "Operations": operations }),
                "invalidSyntax",
            );
        }
    }

    #[test]
    fn missing_empty_or_non_array_operations_are_refused() {
        assert_refused(&json!({ "schemas": [PATCH_OP_SCHEMA] }), "invalidSyntax");
        assert_refused(&body(json!([])), "invalidSyntax");
        assert_refused(
            &body(json!({ "op": "remove", "path": "title" })),
            "invalidSyntax",
        );
        assert_refused(&body(json!(["remove"])), "invalidSyntax");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        for not_an_object in [
            json!([{ "schemas": [PATCH_OP_SCHEMA], "Operations": [] }]),
            json!([]),
            json!("add"),
            json!(null),
            json!(1),
        ] {
            assert_refused(&not_an_object, "invalidSyntax");
        }
    }

    #[test]
    fn unknown_and_duplicate_members_are_refused() {
        let operations = json!([{ "op": "remove", "path": "title" }]);
        let error = assert_refused(
            &json!({ "schemas": [PATCH_OP_SCHEMA], "Operations": operations, "id": "1" }),
            "invalidSyntax",
        );
        assert!(error.detail.contains("\"id\""), "{}", error.detail);
        assert_refused(
            &json!({
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": operations,
                "operations": operations,
            }),
            "invalidSyntax",
        );
        assert_refused(
            &body(json!([{ "op": "remove", "path": "title", "from": "x" }])),
            "invalidSyntax",
        );
        assert_refused(
            &body(json!([{ "op": "remove", "path": "title", "Path": "x" }])),
            "invalidSyntax",
        );
    }

    #[test]
    fn an_unknown_or_missing_op_is_refused() {
        for operation in [
            json!({ "op": "move", "path": "title" }),
            json!({ "op": "", "path": "title" }),
            json!({ "op": 1, "path": "title" }),
            json!({ "path": "title", "value": "x" }),
        ] {
            assert_refused(&body(json!([operation])), "invalidSyntax");
        }
    }

    #[test]
    fn remove_without_a_path_has_no_target() {
        assert_refused(&body(json!([{ "op": "remove" }])), "noTarget");
        assert_refused(
            &body(json!([{ "op": "Remove", "value": { "title": "x" } }])),
            "noTarget",
        );
    }

    #[test]
    fn add_or_replace_without_a_value_is_an_invalid_value() {
        assert_refused(
            &body(json!([{ "op": "add", "path": "title" }])),
            "invalidValue",
        );
        assert_refused(&body(json!([{ "op": "replace" }])), "invalidValue");
    }

    #[test]
    fn a_path_less_value_must_be_a_non_empty_object() {
        for value in [
            json!("x"),
            json!([{ "title": "x" }]),
            json!(true),
            json!({}),
        ] {
            assert_refused(
                &body(json!([{ "op": "replace", "value": value }])),
                "invalidValue",
            );
        }
        assert_refused(
            &body(json!([{ "op": "add", "value": { ENTERPRISE_USER_SCHEMA: "x" } }])),
            "invalidValue",
        );
        assert_refused(
            &body(json!([{ "op": "add", "value": { ENTERPRISE_USER_SCHEMA: {} } }])),
            "invalidValue",
        );
    }

    #[test]
    fn a_malformed_path_or_key_is_an_invalid_path() {
        for target in [
            "",
            "emails[type eq]",
            "emails[type eq \"work\"",
            "1title",
            "name.",
            "emails [type pr]",
        ] {
            assert_refused(
                &body(json!([{ "op": "remove", "path": target }])),
                "invalidPath",
            );
        }
        for key in ["", "emails[type eq \"work\"]", "given name", "name.given.x"] {
            assert_refused(
                &body(json!([{ "op": "replace", "value": { key: "x" } }])),
                "invalidPath",
            );
        }
        assert_refused(
            &body(json!([{
                "op": "replace",
                "value": { ENTERPRISE_USER_SCHEMA: { ENTERPRISE_DEPARTMENT: "x" } },
            }])),
            "invalidPath",
        );
        assert_refused(
            &body(json!([{ "op": "remove", "path": 3 }])),
            "invalidSyntax",
        );
    }

    #[test]
    fn more_than_the_maximum_number_of_operations_is_too_many() {
        let operations: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({ "op": "remove", "path": "title" }))
            .collect();
        assert_refused(&body(Value::Array(operations)), "tooMany");

        // Expansion counts too: two path-less operations of 600 attributes each.
        let attributes: Map<String, Value> = (0..600)
            .map(|number| (format!("a{number}"), json!("x")))
            .collect();
        let operation = json!({ "op": "add", "value": attributes });
        assert_refused(&body(json!([operation, operation])), "tooMany");
    }

    #[test]
    fn an_error_names_the_operation_and_shows_at_most_a_short_quote() {
        let long_name = "x".repeat(500);
        let error = assert_refused(
            &body(json!([
                { "op": "remove", "path": "title" },
                { "op": "remove", "path": "title", long_name.clone(): 1 },
            ])),
            "invalidSyntax",
        );
        assert!(error.detail.starts_with("operation 1:"), "{}", error.detail);
        assert!(error.detail.len() < 200, "{}", error.detail);
        assert_eq!(error.to_string(), error.detail);
    }

    // ---- lenient_bool -------------------------------------------------------------------

    #[test]
    fn lenient_bool_reads_json_booleans_and_their_strings_in_any_case() {
        for (value, expected) in [
            (json!(true), Some(true)),
            (json!(false), Some(false)),
            (json!("True"), Some(true)),
            (json!("False"), Some(false)),
            (json!("true"), Some(true)),
            (json!("false"), Some(false)),
            (json!("TRUE"), Some(true)),
            (json!("fAlSe"), Some(false)),
            (json!("yes"), None),
            (json!(" true"), None),
            (json!(""), None),
            (json!(1), None),
            (json!(0), None),
            (json!(null), None),
            (json!(["true"]), None),
            (json!({ "value": true }), None),
        ] {
            assert_eq!(lenient_bool(&value), expected, "{value}");
        }
    }
}
