//! Applying SCIM PATCH operations (RFC 7644 §3.5.2) to a resource held as JSON.
//!
//! The service renders the current User or Group as JSON, [`apply_patch`] transforms
//! that JSON operation by operation, and the result is read back like a `PUT` body
//! ([`super::user::parse_user`] or the Group's equivalent). Nothing here knows the
//! store: this is JSON in, JSON out, under the resource's [`Schema`]s.
//!
//! # Paths
//!
//! - An unqualified name is looked up in the core schema, then in the extensions; a
//!   URN-qualified one (`urn:…:enterprise:2.0:User:department`) only in that schema.
//!   Names compare ignoring ASCII case and are written back as the schema spells them.
//!   An extension's attributes live in the resource under the extension URN, as an
//!   object; it is created when needed (its URN is then added to `schemas`) and removed
//!   once empty.
//! - The common attribute `externalId` (a string) is writable. `id`, `meta`, `schemas`
//!   and every `readOnly` attribute are `mutability` errors, with one exception: an
//!   `add`/`replace` whose value equals the current one is a no-op, as Okta renames a
//!   Group with `{"op":"replace","value":{"id":…,"displayName":…}}`.
//! - A top-level attribute name the resource's schemas do not have (`phoneNumbers`,
//!   `nickName`, the enterprise `manager`) is ignored, as a `PUT` ignores it: identity
//!   providers send their whole default mapping (Entra ID's includes attributes this
//!   engine does not keep), and refusing those would stop their provisioning. A schema
//!   URN the resource does not have, a sub-attribute (`name.givenName`) that the
//!   complex attribute does not have, and a value filter (`emails[…]`) on anything but
//!   a multi-valued complex attribute are `invalidPath`.
//! - A path that is a whole schema URN (`urn:…:enterprise:2.0:User`) targets that
//!   schema's attributes: `add`/`replace` take an object of them, `remove` removes them
//!   all.
//! - An operation without a path (only built by hand: [`super::patch::parse_patch`]
//!   gives every operation one) is expanded one attribute per key of its value object.
//!
//! # Values
//!
//! - String (and reference, dateTime) attributes take a JSON string; boolean ones a JSON
//!   boolean or Entra ID's `"True"`/`"False"` ([`lenient_bool`]), stored as a boolean;
//!   complex ones an object; multi-valued ones an array, or a single element standing for
//!   a one-element array. Anything else is `invalidValue`.
//! - Inside a value object, sub-attribute names are matched like attribute names;
//!   unknown sub-attributes and `readOnly` ones (Okta's `members[].display`) are dropped,
//!   as a `PUT` ignores them, and a `null` sub-attribute clears it.
//! - An attribute, sub-attribute or element left with no value (`null`, `""`, `[]`,
//!   `{}`) is removed, so the result reads like a resource that never had it. Removing a
//!   `required` attribute (`userName`, a Group's `displayName`) is `invalidValue`.
//! - An `immutable` (sub-)attribute that has a value may not be given another one
//!   (`mutability`): a Group member's `value` can be added with the member, not changed.
//!
//! # Operations
//!
//! - `add` to a single-valued attribute sets it; to a complex one merges the value's
//!   sub-attributes into it; to a multi-valued one appends the elements that are not
//!   already there. Two elements with a `value` sub-attribute are the same element iff
//!   their `value`s are equal: strings compare ignoring ASCII case unless `value` is
//!   `caseExact` or the attribute has a `$ref` sub-attribute (its `value` is then a
//!   resource id, compared exactly: Group `members`). Other elements compare whole.
//! - `replace` is `add`, except that a multi-valued attribute's elements are replaced as
//!   a whole, and a `null` value clears the target (a `remove`).
//! - `remove` removes the target; removing what is not there is not an error. A
//!   `remove` of a multi-valued attribute that carries a value (Entra ID's
//!   `{"op":"Remove","path":"members","value":[{"value":"…"}]}`) removes just the listed
//!   elements.
//! - With a value filter (`emails[type eq "work"].value`, `members[value eq "…"]`), the
//!   operation applies to each element the filter [`matches`]: `remove` deletes them (or
//!   their sub-attribute), `replace` and `add` set their sub-attribute (or merge the
//!   value object into them). `replace` and `remove` that select nothing are
//!   `noTarget`. `add` that selects nothing appends a new element when the filter is a
//!   conjunction of `sub eq literal` (Okta and Entra ID set a missing work email with
//!   `emails[type eq "work"].value`), holding those equalities and the value; any other
//!   filter is `noTarget`.
//! - A sub-attribute path of a multi-valued attribute without a filter
//!   (`emails.value`) applies to every element; with no element, `add`/`replace` append
//!   one.
//! - When `add`/`replace` leaves an element `primary: true`, every other element's
//!   `primary` becomes `false` (RFC 7643 §2.4: at most one primary); if the operation
//!   marked several, the last one stays primary.
//!
//! Operations apply in order to a copy; the resource changes only when all succeed
//! (RFC 7644 §3.5.2: a PATCH is atomic).
//!
//! # Bounds
//!
//! Recursion follows the schema (an attribute, then its sub-attributes), never the
//! input; filters are walked with an explicit stack. Element identity uses hash sets, so
//! adding or removing members of a large Group stays linear.

use std::collections::HashSet;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::filter::{
    matches, AttrPath, Attributes, CompValue, CompareOp, Filter, PatchPath, Value as FilterValue,
};
use super::patch::{kind_of, lenient_bool, shown, PatchError, PatchOpKind, PatchOperation};
use super::schema::{AttrType, Attribute, Mutability, Returned, Schema};

const INVALID_PATH: &str = "invalidPath";
const INVALID_VALUE: &str = "invalidValue";
const INVALID_SYNTAX: &str = "invalidSyntax";
const NO_TARGET: &str = "noTarget";
const MUTABILITY: &str = "mutability";

/// Common attributes (RFC 7643 §3.1) that no client may change.
const READ_ONLY_COMMON: [&str; 3] = ["id", "meta", "schemas"];

/// The common attribute `externalId` (RFC 7643 §3.1), writable on every resource.
static EXTERNAL_ID: Attribute = Attribute {
    name: "externalId",
    kind: AttrType::String,
    multi_valued: false,
    required: false,
    case_exact: true,
    mutability: Mutability::ReadWrite,
    returned: Returned::Default,
    unique: false,
    description: "The resource's identifier in the provisioning client",
    canonical: &[],
    reference_types: &[],
    sub_attributes: Vec::new(),
};

/// Applies `operations` in order to `resource` (a User or Group resource as JSON, as
/// rendered by the service, `schemas` listing its schemas), per RFC 7644 §3.5.2.
///
/// `schemas` is the resource's core schema first, then its extensions (`[user_schema(),
/// enterprise_user_schema()]`, `[group_schema()]`). The semantics are in the module
/// documentation. On success `resource` holds the patched resource; on error it is left
/// as it was.
///
/// # Errors
/// A [`PatchError`] (status 400) whose `scim_type` is `invalidPath` (a path naming no
/// attribute of the resource, or a sub-attribute or filter that does not fit it),
/// `mutability` (`id`, `meta`, `schemas`, a `readOnly` attribute, or a new value for a
/// set `immutable` one), `invalidValue` (a value of the wrong type, a missing value, or
/// the removal of a required attribute), `noTarget` (`replace`/`remove` with a filter
/// selecting nothing, `add` with a filter selecting nothing that is not a conjunction of
/// equalities), or `invalidSyntax` (`resource` is not a JSON object).
pub fn apply_patch(
    resource: &mut Value,
    schemas: &[Schema],
    operations: &[PatchOperation],
) -> Result<(), PatchError> {
    let Value::Object(root) = resource else {
        return Err(error(
            INVALID_SYNTAX,
            format!(
                "the resource to patch is {}, not an object",
                kind_of(resource)
            ),
        ));
    };
    let mut patched = root.clone();
    for operation in operations {
        apply_operation(&mut patched, schemas, operation)?;
    }
    *root = patched;
    Ok(())
}

/// What one operation does to its target, once `null` values are sorted out.
#[derive(Debug, Clone, Copy)]
enum Change<'v> {
    /// `add` of a non-null value.
    Add(&'v Value),
    /// `replace` with a non-null value.
    Replace(&'v Value),
    /// `remove`, or `replace` with `null`; with the values to remove, if any were sent.
    Remove(Option<&'v Value>),
}

fn change<'v>(
    op: PatchOpKind,
    value: Option<&'v Value>,
    path: &str,
) -> Result<Change<'v>, PatchError> {
    match (op, value) {
        (PatchOpKind::Remove, None | Some(Value::Null))
        | (PatchOpKind::Replace, Some(Value::Null)) => Ok(Change::Remove(None)),
        (PatchOpKind::Remove, Some(value)) => Ok(Change::Remove(Some(value))),
        (PatchOpKind::Add, Some(Value::Null)) => Err(error(
            INVALID_VALUE,
            format!("add of null to {path} adds nothing"),
        )),
        (PatchOpKind::Add | PatchOpKind::Replace, None) => Err(error(
            INVALID_VALUE,
            format!("{op} of {path} needs a value"),
        )),
        (PatchOpKind::Add, Some(value)) => Ok(Change::Add(value)),
        (PatchOpKind::Replace, Some(value)) => Ok(Change::Replace(value)),
    }
}

/// Which part of an attribute an operation targets.
#[derive(Debug, Clone, Copy)]
enum Part<'p, 's> {
    /// The attribute itself: `title`, `name`, `emails`.
    Whole,
    /// A sub-attribute of a complex attribute (`name.givenName`) or of each element of a
    /// multi-valued one (`emails.value`).
    Sub(&'s Attribute),
    /// The elements a filter selects (`emails[type eq "work"]`), or their sub-attribute
    /// (`emails[type eq "work"].value`).
    Filtered {
        filter: &'p Filter,
        sub: Option<&'s Attribute>,
    },
}

/// What a path's attribute name resolves to.
#[derive(Debug)]
enum Resolved<'s> {
    /// A writable attribute; `container` is the extension URN holding it, if any.
    Attribute {
        container: Option<&'s str>,
        attribute: &'s Attribute,
    },
    /// `id`, `meta`, `schemas` or a `readOnly` attribute, by its spelling in the resource.
    ReadOnly {
        container: Option<&'s str>,
        name: &'s str,
    },
    /// An attribute none of the resource's schemas has: the operation is ignored.
    Unknown,
    /// A whole schema, named by its URN.
    Schema {
        container: Option<&'s str>,
        schema: &'s Schema,
        core: bool,
    },
}

/// What a name means in one schema.
#[derive(Debug)]
enum Found<'s> {
    Attribute(&'s Attribute),
    ReadOnly(&'s str),
    Missing,
}

fn apply_operation(
    root: &mut Map<String, Value>,
    schemas: &[Schema],
    operation: &PatchOperation,
) -> Result<(), PatchError> {
    if let Some(path) = &operation.path {
        return apply_path(root, schemas, operation.op, path, operation.value.as_ref());
    }
    let Some(Value::Object(attributes)) = &operation.value else {
        return Err(match operation.op {
            PatchOpKind::Remove => error(NO_TARGET, "remove needs a path"),
            op => error(
                INVALID_VALUE,
                format!("{op} without a path needs an object of attributes as its value"),
            ),
        });
    };
    for (key, value) in attributes {
        let attr = AttrPath::parse(key).map_err(|problem| {
            error(
                INVALID_PATH,
                format!("attribute {}: {}", shown(key), problem.message()),
            )
        })?;
        let path = PatchPath {
            attr,
            filter: None,
            sub: None,
        };
        apply_path(root, schemas, operation.op, &path, Some(value))?;
    }
    Ok(())
}

fn apply_path(
    root: &mut Map<String, Value>,
    schemas: &[Schema],
    op: PatchOpKind,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let shown_path = shown(&path.to_string());
    let change = change(op, value, &shown_path)?;
    match resolve(schemas, &path.attr, &shown_path)? {
        Resolved::Attribute {
            container,
            attribute,
        } => {
            let part = part(
                attribute,
                path.attr.sub.as_deref(),
                path.filter.as_ref(),
                path.sub.as_deref(),
                &shown_path,
            )?;
            apply_attribute(root, container, attribute, part, change, &shown_path)
        }
        Resolved::Unknown => Ok(()),
        Resolved::ReadOnly { container, name } => {
            let whole = path.attr.sub.is_none() && path.filter.is_none() && path.sub.is_none();
            read_only(root, container, name, whole, change, &shown_path)
        }
        Resolved::Schema {
            container,
            schema,
            core,
        } => {
            if path.filter.is_some() || path.sub.is_some() {
                return Err(error(
                    INVALID_PATH,
                    format!("{shown_path}: a schema takes no value filter"),
                ));
            }
            apply_schema(root, container, schema, core, op, change, &shown_path)
        }
    }
}

/// Finds what an attribute path's name (`path.schema`, `path.name`) stands for.
fn resolve<'s>(
    schemas: &'s [Schema],
    path: &AttrPath,
    shown_path: &str,
) -> Result<Resolved<'s>, PatchError> {
    let Some(urn) = path.schema.as_deref() else {
        for (position, schema) in schemas.iter().enumerate() {
            let container = container_of(position, schema);
            match find(schema, position == 0, &path.name) {
                Found::Attribute(attribute) => {
                    return Ok(Resolved::Attribute {
                        container,
                        attribute,
                    })
                }
                Found::ReadOnly(name) => return Ok(Resolved::ReadOnly { container, name }),
                Found::Missing => {}
            }
        }
        return Ok(Resolved::Unknown);
    };
    if path.sub.is_none() {
        let whole = format!("{urn}:{}", path.name);
        if let Some((position, schema)) = schemas
            .iter()
            .enumerate()
            .find(|(_, schema)| schema.id.eq_ignore_ascii_case(&whole))
        {
            return Ok(Resolved::Schema {
                container: container_of(position, schema),
                schema,
                core: position == 0,
            });
        }
    }
    let (position, schema) = schemas
        .iter()
        .enumerate()
        .find(|(_, schema)| schema.id.eq_ignore_ascii_case(urn))
        .ok_or_else(|| {
            error(
                INVALID_PATH,
                format!("{shown_path} names a schema this resource does not have"),
            )
        })?;
    let container = container_of(position, schema);
    match find(schema, position == 0, &path.name) {
        Found::Attribute(attribute) => Ok(Resolved::Attribute {
            container,
            attribute,
        }),
        Found::ReadOnly(name) => Ok(Resolved::ReadOnly { container, name }),
        Found::Missing => Ok(Resolved::Unknown),
    }
}

/// The extension URN under which a schema's attributes live; `None` for the core
/// schema (the first), whose attributes are at the top level.
fn container_of(position: usize, schema: &Schema) -> Option<&str> {
    (position > 0).then_some(schema.id)
}

/// `name` in `schema`; the common attributes count as the core schema's.
fn find<'s>(schema: &'s Schema, core: bool, name: &str) -> Found<'s> {
    if core {
        if let Some(common) = READ_ONLY_COMMON
            .iter()
            .find(|common| common.eq_ignore_ascii_case(name))
        {
            return Found::ReadOnly(common);
        }
        if EXTERNAL_ID.name.eq_ignore_ascii_case(name) {
            return Found::Attribute(&EXTERNAL_ID);
        }
    }
    match schema.attribute(name) {
        Some(attribute) if attribute.mutability == Mutability::ReadOnly => {
            Found::ReadOnly(attribute.name)
        }
        Some(attribute) => Found::Attribute(attribute),
        None => Found::Missing,
    }
}

/// Which part of `attribute` a path targets, from its sub-attribute (`name.givenName`),
/// its filter and the sub-attribute after the filter.
fn part<'p, 's>(
    attribute: &'s Attribute,
    attr_sub: Option<&str>,
    filter: Option<&'p Filter>,
    filter_sub: Option<&str>,
    path: &str,
) -> Result<Part<'p, 's>, PatchError> {
    match (attr_sub, filter, filter_sub) {
        (None, None, None) => Ok(Part::Whole),
        (Some(sub), None, None) => Ok(Part::Sub(writable_sub(attribute, sub, path)?)),
        (None, Some(filter), sub) => {
            if !attribute.multi_valued || attribute.kind != AttrType::Complex {
                return Err(error(
                    INVALID_PATH,
                    format!(
                        "{path}: a value filter needs a multi-valued complex attribute, which {} is not",
                        attribute.name
                    ),
                ));
            }
            let sub = sub
                .map(|sub| writable_sub(attribute, sub, path))
                .transpose()?;
            Ok(Part::Filtered { filter, sub })
        }
        _ => Err(error(
            INVALID_PATH,
            format!("{path}: a value filter follows the attribute, not a sub-attribute"),
        )),
    }
}

fn writable_sub<'s>(
    attribute: &'s Attribute,
    name: &str,
    path: &str,
) -> Result<&'s Attribute, PatchError> {
    let sub = sub_attribute(attribute, name).ok_or_else(|| {
        error(
            INVALID_PATH,
            format!(
                "{path}: {} has no sub-attribute {}",
                attribute.name,
                shown(name)
            ),
        )
    })?;
    if sub.mutability == Mutability::ReadOnly {
        return Err(read_only_error(
            path,
            &format!("{}.{}", attribute.name, sub.name),
        ));
    }
    Ok(sub)
}

fn sub_attribute<'s>(attribute: &'s Attribute, name: &str) -> Option<&'s Attribute> {
    attribute
        .sub_attributes
        .iter()
        .find(|sub| sub.name.eq_ignore_ascii_case(name))
}

/// An operation on `id`, `meta`, `schemas` or a `readOnly` attribute: a no-op when it
/// sets the attribute to the value it has, `mutability` otherwise.
fn read_only(
    root: &Map<String, Value>,
    container: Option<&str>,
    name: &str,
    whole: bool,
    change: Change<'_>,
    path: &str,
) -> Result<(), PatchError> {
    let holder = match container {
        None => Some(root),
        Some(urn) => get_ci(root, urn).and_then(Value::as_object),
    };
    let current = holder.and_then(|holder| get_ci(holder, name));
    match change {
        Change::Add(value) | Change::Replace(value) if whole && current == Some(value) => Ok(()),
        _ => Err(read_only_error(path, name)),
    }
}

fn read_only_error(path: &str, name: &str) -> PatchError {
    error(
        MUTABILITY,
        format!("{path}: {name} is read-only and cannot be changed"),
    )
}

/// An operation whose path is a whole schema URN: on each of the schema's attributes.
fn apply_schema(
    root: &mut Map<String, Value>,
    container: Option<&str>,
    schema: &Schema,
    core: bool,
    op: PatchOpKind,
    change: Change<'_>,
    path: &str,
) -> Result<(), PatchError> {
    let (Change::Add(value) | Change::Replace(value)) = change else {
        for attribute in &schema.attributes {
            if attribute.mutability != Mutability::ReadOnly {
                apply_attribute(root, container, attribute, Part::Whole, change, path)?;
            }
        }
        return Ok(());
    };
    let Value::Object(members) = value else {
        return Err(error(
            INVALID_VALUE,
            format!(
                "{path} takes an object of the schema's attributes, not {}",
                kind_of(value)
            ),
        ));
    };
    for (key, member) in members {
        let attr = AttrPath::parse(key).map_err(|problem| {
            error(
                INVALID_PATH,
                format!("{path}: attribute {}: {}", shown(key), problem.message()),
            )
        })?;
        let member_path = shown(&format!("{}:{attr}", schema.id));
        if attr.schema.is_some() {
            return Err(error(
                INVALID_PATH,
                format!(
                    "{path}: attribute {} inside a schema must not name a schema",
                    shown(key)
                ),
            ));
        }
        let member_change = self::change(op, Some(member), &member_path)?;
        match find(schema, core, &attr.name) {
            Found::Attribute(attribute) => {
                let part = part(attribute, attr.sub.as_deref(), None, None, &member_path)?;
                apply_attribute(
                    root,
                    container,
                    attribute,
                    part,
                    member_change,
                    &member_path,
                )?;
            }
            Found::ReadOnly(name) => {
                read_only(
                    root,
                    container,
                    name,
                    attr.sub.is_none(),
                    member_change,
                    &member_path,
                )?;
            }
            // Ignored as at the top level (and an extension object's own `schemas`).
            Found::Missing => {}
        }
    }
    Ok(())
}

/// Applies `change` to `part` of `attribute`, which lives at the top level of `root`
/// or in the extension object `container`.
fn apply_attribute(
    root: &mut Map<String, Value>,
    container: Option<&str>,
    attribute: &Attribute,
    part: Part<'_, '_>,
    change: Change<'_>,
    path: &str,
) -> Result<(), PatchError> {
    let create = !matches!(change, Change::Remove(_));
    let result = match holder(root, container, create) {
        None => match part {
            Part::Filtered { .. } => Err(no_target(path)),
            Part::Whole | Part::Sub(_) => Ok(()),
        },
        Some(holder) => match part {
            Part::Whole if attribute.multi_valued => multi_whole(holder, attribute, change, path),
            Part::Whole => single(holder, attribute, change, path),
            Part::Sub(sub) if attribute.multi_valued => {
                multi_selected(holder, attribute, None, Some(sub), change, path)
            }
            Part::Sub(sub) => single_sub(holder, attribute, sub, change, path),
            Part::Filtered { filter, sub } => {
                multi_selected(holder, attribute, Some(filter), sub, change, path)
            }
        },
    };
    if let Some(urn) = container {
        if get_ci(root, urn).is_some_and(is_empty) {
            take_ci(root, urn);
        } else if get_ci(root, urn).is_some() {
            list_schema(root, urn);
        }
    }
    result
}

/// The object holding the attributes of `container` (the top level for `None`),
/// created when `create` says so and it is missing.
fn holder<'m>(
    root: &'m mut Map<String, Value>,
    container: Option<&str>,
    create: bool,
) -> Option<&'m mut Map<String, Value>> {
    let Some(urn) = container else {
        return Some(root);
    };
    if !get_ci(root, urn).is_some_and(Value::is_object) {
        if !create {
            return None;
        }
        take_ci(root, urn);
        root.insert(urn.to_owned(), Value::Object(Map::new()));
    }
    let key = key_of(root, urn)?;
    root.get_mut(&key).and_then(Value::as_object_mut)
}

/// Adds `urn` to the resource's `schemas` if it is not listed there.
fn list_schema(root: &mut Map<String, Value>, urn: &str) {
    let Some(key) = key_of(root, "schemas") else {
        return;
    };
    if let Some(Value::Array(schemas)) = root.get_mut(&key) {
        let listed = schemas.iter().any(|schema| {
            schema
                .as_str()
                .is_some_and(|schema| schema.eq_ignore_ascii_case(urn))
        });
        if !listed {
            schemas.push(Value::String(urn.to_owned()));
        }
    }
}

/// A single-valued attribute as a whole.
fn single(
    holder: &mut Map<String, Value>,
    attribute: &Attribute,
    change: Change<'_>,
    path: &str,
) -> Result<(), PatchError> {
    let old = take_ci(holder, attribute.name);
    let new = match change {
        Change::Remove(_) => None,
        Change::Add(value) | Change::Replace(value) if attribute.kind == AttrType::Complex => {
            let Value::Object(incoming) = value else {
                return Err(wrong_type(attribute, value, path));
            };
            let mut merged = match &old {
                Some(Value::Object(current)) => current.clone(),
                _ => Map::new(),
            };
            merge(attribute, &mut merged, incoming, true, path)?;
            Some(Value::Object(merged))
        }
        Change::Add(value) | Change::Replace(value) => typed_single(attribute, value, path)?,
    };
    store(holder, attribute, old, new, path)
}

/// A sub-attribute of a single-valued complex attribute (`name.givenName`).
fn single_sub(
    holder: &mut Map<String, Value>,
    attribute: &Attribute,
    sub: &Attribute,
    change: Change<'_>,
    path: &str,
) -> Result<(), PatchError> {
    let old = take_ci(holder, attribute.name);
    let mut object = match &old {
        Some(Value::Object(current)) => current.clone(),
        _ => Map::new(),
    };
    let new = match change {
        Change::Remove(_) => None,
        Change::Add(value) | Change::Replace(value) => typed(sub, value, path)?,
    };
    check_immutable(sub, get_ci(&object, sub.name), new.as_ref(), path)?;
    set(&mut object, sub.name, new);
    store(holder, attribute, old, Some(Value::Object(object)), path)
}

/// A multi-valued attribute as a whole (`emails`, `members`).
fn multi_whole(
    holder: &mut Map<String, Value>,
    attribute: &Attribute,
    change: Change<'_>,
    path: &str,
) -> Result<(), PatchError> {
    let old = take_ci(holder, attribute.name);
    let mut elements = elements_of(old.clone());
    let mut touched = Vec::new();
    match change {
        Change::Remove(None) => elements.clear(),
        Change::Remove(Some(listed)) => {
            let listed: HashSet<String> = typed_elements(attribute, listed, path)?
                .iter()
                .map(|element| identity(attribute, element))
                .collect();
            elements.retain(|element| !listed.contains(&identity(attribute, element)));
        }
        Change::Add(value) => {
            let mut seen: HashSet<String> = elements
                .iter()
                .map(|element| identity(attribute, element))
                .collect();
            for element in typed_elements(attribute, value, path)? {
                if seen.insert(identity(attribute, &element)) {
                    touched.push(elements.len());
                    elements.push(element);
                }
            }
        }
        Change::Replace(value) => {
            elements = typed_elements(attribute, value, path)?;
            touched = (0..elements.len()).collect();
        }
    }
    one_primary(attribute, &mut elements, &touched);
    store(holder, attribute, old, Some(Value::Array(elements)), path)
}

/// The elements of a multi-valued complex attribute that `filter` selects (all of them
/// without one), or `sub` of each.
fn multi_selected(
    holder: &mut Map<String, Value>,
    attribute: &Attribute,
    filter: Option<&Filter>,
    sub: Option<&Attribute>,
    change: Change<'_>,
    path: &str,
) -> Result<(), PatchError> {
    let old = take_ci(holder, attribute.name);
    let mut elements = elements_of(old.clone());
    let selected: Vec<usize> = elements
        .iter()
        .enumerate()
        .filter(|(_, element)| filter.is_none_or(|filter| selects(filter, element)))
        .map(|(index, _)| index)
        .collect();
    let mut touched = Vec::new();
    match change {
        Change::Remove(_) => {
            if selected.is_empty() && filter.is_some() {
                return Err(no_target(path));
            }
            if let Some(sub) = sub {
                for &index in &selected {
                    if let Some(Value::Object(element)) = elements.get_mut(index) {
                        check_immutable(sub, get_ci(element, sub.name), None, path)?;
                        set(element, sub.name, None);
                    }
                }
            } else {
                let mut index = 0;
                elements.retain(|_| {
                    let keep = selected.binary_search(&index).is_err();
                    index += 1;
                    keep
                });
            }
        }
        Change::Add(value) | Change::Replace(value) if selected.is_empty() => {
            let base = match (filter, change) {
                (None, _) => Some(Map::new()),
                (Some(filter), Change::Add(_)) => equalities(attribute, filter),
                (Some(_), _) => None,
            };
            let Some(base) = base else {
                return Err(no_target(path));
            };
            let mut element = base.clone();
            update(attribute, &mut element, sub, value, false, path)?;
            if element != base {
                touched.push(elements.len());
                elements.push(Value::Object(element));
            }
        }
        Change::Add(value) | Change::Replace(value) => {
            for &index in &selected {
                if let Some(Value::Object(element)) = elements.get_mut(index) {
                    update(attribute, element, sub, value, true, path)?;
                    touched.push(index);
                }
            }
        }
    }
    one_primary(attribute, &mut elements, &touched);
    elements.retain(|element| !is_empty(element));
    store(holder, attribute, old, Some(Value::Array(elements)), path)
}

/// Sets `sub` of one element to `value`, or merges the object `value` into it.
fn update(
    attribute: &Attribute,
    element: &mut Map<String, Value>,
    sub: Option<&Attribute>,
    value: &Value,
    check: bool,
    path: &str,
) -> Result<(), PatchError> {
    match sub {
        Some(sub) => {
            let new = typed(sub, value, path)?;
            if check {
                check_immutable(sub, get_ci(element, sub.name), new.as_ref(), path)?;
            }
            set(element, sub.name, new);
            Ok(())
        }
        None => {
            let Value::Object(incoming) = value else {
                return Err(error(
                    INVALID_VALUE,
                    format!(
                        "{path}: an element of {} is an object, not {}",
                        attribute.name,
                        kind_of(value)
                    ),
                ));
            };
            merge(attribute, element, incoming, check, path)
        }
    }
}

/// The element a filter describes, when it is a conjunction of `sub eq literal` on
/// distinct writable sub-attributes with literals of their types; `None` otherwise.
fn equalities(attribute: &Attribute, filter: &Filter) -> Option<Map<String, Value>> {
    let mut element = Map::new();
    let mut pending = vec![filter];
    while let Some(filter) = pending.pop() {
        match filter {
            Filter::And(left, right) => {
                pending.push(right);
                pending.push(left);
            }
            Filter::Compare(path, CompareOp::Eq, literal)
                if path.schema.is_none() && path.sub.is_none() =>
            {
                let sub = sub_attribute(attribute, &path.name)?;
                if sub.mutability == Mutability::ReadOnly || get_ci(&element, sub.name).is_some() {
                    return None;
                }
                let literal = match literal {
                    CompValue::Str(text) => Value::String(text.clone()),
                    CompValue::Bool(boolean) => Value::Bool(*boolean),
                    CompValue::Number(number) => Value::Number(number.clone()),
                    CompValue::Null => return None,
                };
                let value = typed(sub, &literal, "").ok()??;
                element.insert(sub.name.to_owned(), value);
            }
            _ => return None,
        }
    }
    Some(element)
}

/// Merges the sub-attributes of `incoming` into `target`: unknown and `readOnly` ones
/// are dropped, `null` and empty ones clear the sub-attribute. With `check`, a set
/// `immutable` sub-attribute may not change.
fn merge(
    attribute: &Attribute,
    target: &mut Map<String, Value>,
    incoming: &Map<String, Value>,
    check: bool,
    path: &str,
) -> Result<(), PatchError> {
    for (key, value) in incoming {
        let Some(sub) = sub_attribute(attribute, key) else {
            continue;
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let new = typed(sub, value, path)?;
        if check {
            check_immutable(sub, get_ci(target, sub.name), new.as_ref(), path)?;
        }
        set(target, sub.name, new);
    }
    Ok(())
}

/// `value` checked against `attribute` and normalised; `None` when it holds no value.
fn typed(attribute: &Attribute, value: &Value, path: &str) -> Result<Option<Value>, PatchError> {
    if attribute.multi_valued {
        let elements = typed_elements(attribute, value, path)?;
        return Ok((!elements.is_empty()).then_some(Value::Array(elements)));
    }
    typed_single(attribute, value, path)
}

/// The elements of a multi-valued attribute's value (an array, or one element), checked
/// and normalised, without `null`s, empty ones and repeats.
fn typed_elements(
    attribute: &Attribute,
    value: &Value,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    let mut seen = HashSet::new();
    let mut elements = Vec::new();
    for item in items {
        if let Some(element) = typed_single(attribute, item, path)? {
            if seen.insert(identity(attribute, &element)) {
                elements.push(element);
            }
        }
    }
    Ok(elements)
}

/// One value of `attribute`'s type, normalised; `None` when it holds no value.
fn typed_single(
    attribute: &Attribute,
    value: &Value,
    path: &str,
) -> Result<Option<Value>, PatchError> {
    match (attribute.kind, value) {
        (_, Value::Null) => Ok(None),
        (AttrType::String | AttrType::Reference, Value::String(text)) => {
            Ok((!text.is_empty()).then(|| value.clone()))
        }
        (AttrType::DateTime, Value::String(text)) if text.is_empty() => Ok(None),
        (AttrType::DateTime, Value::String(text)) => OffsetDateTime::parse(text, &Rfc3339)
            .map(|_| Some(value.clone()))
            .map_err(|_| {
                error(
                    INVALID_VALUE,
                    format!("{path}: {} takes an RFC 3339 date and time", attribute.name),
                )
            }),
        (AttrType::Boolean, _) => lenient_bool(value)
            .map(|boolean| Some(Value::Bool(boolean)))
            .ok_or_else(|| wrong_type(attribute, value, path)),
        (AttrType::Complex, Value::Object(members)) => {
            let mut object = Map::new();
            merge(attribute, &mut object, members, false, path)?;
            Ok((!object.is_empty()).then_some(Value::Object(object)))
        }
        _ => Err(wrong_type(attribute, value, path)),
    }
}

fn wrong_type(attribute: &Attribute, value: &Value, path: &str) -> PatchError {
    let (one, many) = match attribute.kind {
        AttrType::Boolean => ("a boolean", "booleans"),
        AttrType::Complex => ("an object", "objects"),
        AttrType::String | AttrType::Reference | AttrType::DateTime => ("a string", "strings"),
    };
    let expected = if attribute.multi_valued {
        format!("an array of {many}")
    } else {
        one.to_owned()
    };
    error(
        INVALID_VALUE,
        format!(
            "{path}: {} takes {expected}, not {}",
            attribute.name,
            kind_of(value)
        ),
    )
}

/// Stores the new value of a top-level attribute (or removes it when it holds no
/// value), after the `immutable` and `required` checks.
fn store(
    holder: &mut Map<String, Value>,
    attribute: &Attribute,
    old: Option<Value>,
    new: Option<Value>,
    path: &str,
) -> Result<(), PatchError> {
    let new = new.filter(|new| !is_empty(new));
    check_immutable(attribute, old.as_ref(), new.as_ref(), path)?;
    match new {
        Some(new) => {
            holder.insert(attribute.name.to_owned(), new);
            Ok(())
        }
        None if attribute.required => Err(error(
            INVALID_VALUE,
            format!(
                "{path}: {} is required and cannot be removed",
                attribute.name
            ),
        )),
        None => Ok(()),
    }
}

/// `mutability` when `attribute` is `immutable`, has a value and would get another.
fn check_immutable(
    attribute: &Attribute,
    old: Option<&Value>,
    new: Option<&Value>,
    path: &str,
) -> Result<(), PatchError> {
    if attribute.mutability != Mutability::Immutable {
        return Ok(());
    }
    let old = old.filter(|old| !is_empty(old));
    let new = new.filter(|new| !is_empty(new));
    match old {
        Some(old) if Some(old) != new => Err(error(
            MUTABILITY,
            format!("{path}: {} is immutable once set", attribute.name),
        )),
        _ => Ok(()),
    }
}

/// When the elements in `touched` include one with `primary: true`, the last such one
/// stays primary and every other element's `primary` becomes `false`.
fn one_primary(attribute: &Attribute, elements: &mut [Value], touched: &[usize]) {
    let Some(primary) = sub_attribute(attribute, "primary")
        .filter(|primary| primary.kind == AttrType::Boolean && !primary.multi_valued)
    else {
        return;
    };
    let is_primary = |element: &Value| {
        element
            .as_object()
            .and_then(|element| get_ci(element, primary.name))
            == Some(&Value::Bool(true))
    };
    let Some(&keep) = touched
        .iter()
        .rev()
        .find(|&&index| elements.get(index).is_some_and(is_primary))
    else {
        return;
    };
    for (index, element) in elements.iter_mut().enumerate() {
        if index != keep && is_primary(element) {
            if let Value::Object(element) = element {
                set(element, primary.name, Some(Value::Bool(false)));
            }
        }
    }
}

/// What makes two elements of `attribute` the same element: their `value`, or (without
/// one) the whole element.
fn identity(attribute: &Attribute, element: &Value) -> String {
    if let (Value::Object(members), Some(value_sub)) = (element, sub_attribute(attribute, "value"))
    {
        if let Some(value) = get_ci(members, "value") {
            let exact = value_sub.case_exact || sub_attribute(attribute, "$ref").is_some();
            return folded("value", value, exact);
        }
    }
    folded("element", element, attribute.case_exact)
}

fn folded(tag: &str, value: &Value, exact: bool) -> String {
    match value {
        Value::String(text) if exact => format!("{tag} string {text}"),
        Value::String(text) => format!("{tag} string {}", text.to_ascii_lowercase()),
        other => format!("{tag} json {other}"),
    }
}

/// Whether `filter` selects `element` (only objects are selected).
fn selects(filter: &Filter, element: &Value) -> bool {
    match element {
        Value::Object(members) => matches(filter, &Element(members)),
        _ => false,
    }
}

/// One element of a multi-valued complex attribute, as a filter sees it: its
/// sub-attributes, by case-insensitive name.
#[derive(Debug)]
struct Element<'a>(&'a Map<String, Value>);

impl Attributes for Element<'_> {
    fn values(&self, path: &AttrPath) -> Vec<FilterValue> {
        let mut values = Vec::new();
        for (key, value) in self.0 {
            if !path.is(key) {
                continue;
            }
            match value {
                Value::Array(items) => values.extend(items.iter().filter_map(filter_value)),
                single => values.extend(filter_value(single)),
            }
        }
        values
    }

    fn elements(&self, _path: &AttrPath) -> Vec<Box<dyn Attributes + '_>> {
        Vec::new()
    }
}

fn filter_value(value: &Value) -> Option<FilterValue> {
    match value {
        Value::String(text) => Some(FilterValue::Str(text.clone())),
        Value::Bool(boolean) => Some(FilterValue::Bool(*boolean)),
        Value::Number(number) => Some(FilterValue::Number(number.clone())),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The current elements of a multi-valued attribute.
fn elements_of(value: Option<Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(elements)) => elements,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => vec![other],
    }
}

/// Whether `value` holds no value: `null`, `""`, `[]` or `{}`.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The member of `map` named `name`, ignoring ASCII case (an exact match first).
fn get_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// The key of `map` that is `name` ignoring ASCII case (an exact match first).
fn key_of(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .cloned()
}

/// Removes every member of `map` named `name` ignoring ASCII case; returns the value
/// of the exactly named one, or else of one of the others.
fn take_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let exact = map.remove(name);
    let others: Vec<String> = map
        .keys()
        .filter(|key| key.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    let mut other = None;
    for key in others {
        if let Some(value) = map.remove(&key) {
            other.get_or_insert(value);
        }
    }
    exact.or(other)
}

/// Sets `name` (spelled as given) to `value`, or removes it when `value` holds none.
fn set(map: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    take_ci(map, name);
    if let Some(value) = value.filter(|value| !is_empty(value)) {
        map.insert(name.to_owned(), value);
    }
}

fn error(scim_type: &'static str, detail: impl Into<String>) -> PatchError {
    PatchError {
        scim_type,
        detail: detail.into(),
    }
}

fn no_target(path: &str) -> PatchError {
    error(NO_TARGET, format!("{path} selects no value"))
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
    use crate::scim::filter::{
        parse_path, CORE_GROUP_SCHEMA, CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA,
    };
    use crate::scim::patch::{parse_patch, PATCH_OP_SCHEMA};
    use crate::scim::schema::{enterprise_user_schema, group_schema, user_schema};
    use crate::scim::user::parse_user;

    const DEPARTMENT: &str =
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
    const ID0: &str = "0193a0c2-0000-7000-8000-000000000000";
    const ID1: &str = "0193a0c2-1111-7000-8000-000000000001";

    fn user_schemas() -> Vec<Schema> {
        vec![user_schema(), enterprise_user_schema()]
    }

    /// Ada as the service renders her (`user::user_resource`): no department, one work
    /// email. Written out rather than rendered, so these tests do not follow the view's
    /// fields.
    fn ada() -> Value {
        json!({
            "schemas": [CORE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "0193a",
            "externalId": "e-1",
            "userName": "ada@example.com",
            "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "displayName": "Ada L.",
            "active": true,
            "emails": [{ "value": "ada@example.com", "type": "work", "primary": true }],
            "meta": {
                "resourceType": "User",
                "created": "2026-12-05T00:00:00Z",
                "lastModified": "2026-12-05T01:00:00Z",
                "version": "W/\"2\"",
                "location": "https://id.example.com/scim/v2/tenants/acme/Users/0193a",
            },
        })
    }

    /// A Group as the service renders one, with one member.
    fn admins() -> Value {
        json!({
            "schemas": [CORE_GROUP_SCHEMA],
            "id": "g-1",
            "displayName": "Admins",
            "members": [{
                "value": ID0,
                "display": "zed@example.com",
                "$ref": format!("https://id.example.com/scim/v2/tenants/acme/Users/{ID0}"),
                "type": "User",
            }],
            "meta": { "resourceType": "Group", "version": "W/\"1\"" },
        })
    }

    fn body(operations: Value) -> Value {
        json!({ "schemas": [PATCH_OP_SCHEMA], "Operations": operations })
    }

    /// Parses `operations` as a PATCH body and applies them.
    fn patch(
        resource: &mut Value,
        schemas: &[Schema],
        operations: Value,
    ) -> Result<(), PatchError> {
        let operations = parse_patch(&body(operations)).unwrap();
        apply_patch(resource, schemas, &operations)
    }

    fn patched(resource: &Value, schemas: &[Schema], operations: Value) -> Value {
        let mut resource = resource.clone();
        patch(&mut resource, schemas, operations).unwrap();
        resource
    }

    fn patched_user(operations: Value) -> Value {
        patched(&ada(), &user_schemas(), operations)
    }

    fn patched_group(operations: Value) -> Value {
        patched(&admins(), &[group_schema()], operations)
    }

    /// The refusal of `operations` on `resource`, which must be left unchanged.
    fn refusal(resource: &Value, schemas: &[Schema], operations: Value) -> PatchError {
        let mut copy = resource.clone();
        let error = patch(&mut copy, schemas, operations.clone()).unwrap_err();
        assert_eq!(
            &copy, resource,
            "{operations}: a refused PATCH changes nothing"
        );
        assert!(!error.detail.is_empty());
        error
    }

    fn user_refusal(operations: Value) -> PatchError {
        refusal(&ada(), &user_schemas(), operations)
    }

    fn member_ids(group: &Value) -> Vec<&str> {
        group["members"]
            .as_array()
            .map(|members| {
                members
                    .iter()
                    .map(|member| member["value"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    // ---- Entra ID ------------------------------------------------------------------------

    #[test]
    fn entra_replace_of_active_with_a_string_boolean_stores_a_boolean() {
        let user = patched_user(json!([{ "op": "Replace", "path": "active", "value": "False" }]));
        assert_eq!(user["active"], json!(false));
        assert_eq!(parse_user(&user).unwrap().active, Some(false));
        let user = patched(
            &user,
            &user_schemas(),
            json!([{ "op": "Replace", "path": "active", "value": "True" }]),
        );
        assert_eq!(user["active"], json!(true));
    }

    #[test]
    fn entra_path_less_replace_with_dotted_and_qualified_keys() {
        let user = patched_user(json!([{
            "op": "replace",
            "value": {
                "name.givenName": "A",
                DEPARTMENT: "Sales",
                "active": "True",
            },
        }]));
        assert_eq!(
            user["name"],
            json!({ "givenName": "A", "familyName": "Lovelace" })
        );
        assert_eq!(
            user[ENTERPRISE_USER_SCHEMA],
            json!({ "department": "Sales" })
        );
        assert_eq!(user["active"], json!(true));
        let read = parse_user(&user).unwrap();
        assert_eq!(read.values["given_name"], "A");
        assert_eq!(read.values["department"], "Sales");
        assert_eq!(read.active, Some(true));
    }

    #[test]
    fn entra_removes_members_listed_in_the_value() {
        let group = patched_group(json!([
            { "op": "Add", "path": "members", "value": [{ "value": ID1 }] },
        ]));
        assert_eq!(member_ids(&group), vec![ID0, ID1]);
        let group = patched(
            &group,
            &[group_schema()],
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": ID0 }] }]),
        );
        assert_eq!(member_ids(&group), vec![ID1]);
        // Removing one that is not a member is not an error: the state asked for holds.
        let again = patched(
            &group,
            &[group_schema()],
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": ID0 }] }]),
        );
        assert_eq!(again, group);
        // Removing the last member removes the attribute.
        let empty = patched(
            &group,
            &[group_schema()],
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": ID1 }] }]),
        );
        assert!(empty.get("members").is_none(), "{empty}");
    }

    // ---- Okta ----------------------------------------------------------------------------

    #[test]
    fn okta_adds_members_once_and_removes_them_by_filter() {
        let add = json!([{
            "op": "add",
            "path": "members",
            "value": [{ "value": ID1, "display": "x" }],
        }]);
        let once = patched_group(add.clone());
        let twice = patched(&once, &[group_schema()], add);
        assert_eq!(twice, once, "the same member is not added twice");
        assert_eq!(member_ids(&once), vec![ID0, ID1]);
        // display is readOnly: dropped from what the client sent, kept where rendered.
        assert_eq!(once["members"][1], json!({ "value": ID1 }));
        assert_eq!(once["members"][0]["display"], "zed@example.com");

        // A member id is an id: another case is another member.
        let shouted = ID1.to_ascii_uppercase();
        let other = patched(
            &once,
            &[group_schema()],
            json!([{ "op": "add", "path": "members", "value": [{ "value": shouted }] }]),
        );
        assert_eq!(member_ids(&other).len(), 3);

        let removed = patched(
            &once,
            &[group_schema()],
            json!([{ "op": "remove", "path": format!("members[value eq \"{ID1}\"]") }]),
        );
        assert_eq!(member_ids(&removed), vec![ID0]);
        let error = refusal(
            &removed,
            &[group_schema()],
            json!([{ "op": "remove", "path": format!("members[value eq \"{ID1}\"]") }]),
        );
        assert_eq!(error.scim_type, "noTarget");
    }

    #[test]
    fn okta_renames_a_group_with_its_id_in_the_value() {
        let group = patched_group(json!([{
            "op": "replace",
            "value": { "id": "g-1", "displayName": "Operators" },
        }]));
        assert_eq!(group["displayName"], "Operators");
        assert_eq!(group["id"], "g-1");
        let error = refusal(
            &admins(),
            &[group_schema()],
            json!([{ "op": "replace", "value": { "id": "g-2", "displayName": "Operators" } }]),
        );
        assert_eq!(error.scim_type, "mutability");
    }

    #[test]
    fn replacing_members_replaces_them_all_and_a_member_id_is_immutable() {
        let group = patched_group(json!([{
            "op": "replace",
            "path": "members",
            "value": [{ "value": ID1 }, { "value": ID1 }],
        }]));
        assert_eq!(member_ids(&group), vec![ID1]);
        let error = refusal(
            &admins(),
            &[group_schema()],
            json!([{
                "op": "replace",
                "path": format!("members[value eq \"{ID0}\"].value"),
                "value": ID1,
            }]),
        );
        assert_eq!(error.scim_type, "mutability");
        let error = refusal(
            &admins(),
            &[group_schema()],
            json!([{
                "op": "replace",
                "path": format!("members[value eq \"{ID0}\"].display"),
                "value": "x",
            }]),
        );
        assert_eq!(error.scim_type, "mutability");
        // Without members, remove of all of them is a no-op; the displayName is required.
        let bare = patched_group(json!([{ "op": "remove", "path": "members" }]));
        assert!(bare.get("members").is_none());
        assert_eq!(
            patched(
                &bare,
                &[group_schema()],
                json!([{ "op": "remove", "path": "members" }])
            ),
            bare
        );
        let error = refusal(
            &admins(),
            &[group_schema()],
            json!([{ "op": "remove", "path": "displayName" }]),
        );
        assert_eq!(error.scim_type, "invalidValue");
    }

    // ---- value filters -------------------------------------------------------------------

    #[test]
    fn a_filtered_sub_attribute_is_replaced_on_the_selected_element() {
        let user = patched_user(json!([{
            "op": "replace",
            "path": "emails[type eq \"work\"].value",
            "value": "ada@lovelace.org",
        }]));
        assert_eq!(
            user["emails"],
            json!([{ "value": "ada@lovelace.org", "type": "work", "primary": true }])
        );
    }

    #[test]
    fn add_with_an_equality_filter_creates_the_missing_element() {
        let mut home = ada();
        home["emails"] = json!([{ "value": "ada@home.org", "type": "home" }]);
        let user = patched(
            &home,
            &user_schemas(),
            json!([{
                "op": "add",
                "path": "emails[type eq \"work\"].value",
                "value": "ada@example.com",
            }]),
        );
        assert_eq!(
            user["emails"],
            json!([
                { "value": "ada@home.org", "type": "home" },
                { "value": "ada@example.com", "type": "work" },
            ])
        );
        // The same add again sets the element it now selects.
        let again = patched(
            &user,
            &user_schemas(),
            json!([{ "op": "add", "path": "emails[type eq \"work\"].value", "value": "a@x.org" }]),
        );
        assert_eq!(
            again["emails"][1],
            json!({ "value": "a@x.org", "type": "work" })
        );
        // A filter that is not a conjunction of equalities cannot describe an element.
        let error = refusal(
            &home,
            &user_schemas(),
            json!([{ "op": "add", "path": "emails[type ne \"home\"].value", "value": "a@x.org" }]),
        );
        assert_eq!(error.scim_type, "noTarget");
    }

    #[test]
    fn replace_or_remove_with_a_filter_matching_nothing_has_no_target() {
        for operation in [
            json!({ "op": "replace", "path": "emails[type eq \"home\"].value", "value": "x@y.org" }),
            json!({ "op": "replace", "path": "emails[type eq \"home\"]", "value": { "value": "x@y.org" } }),
            json!({ "op": "remove", "path": "emails[type eq \"home\"]" }),
            json!({ "op": "replace", "path": "emails[type eq \"home\"].value", "value": null }),
        ] {
            let error = user_refusal(json!([operation]));
            assert_eq!(error.scim_type, "noTarget", "{operation}");
        }
    }

    #[test]
    fn remove_with_a_filter_removes_the_selected_elements_or_their_sub_attribute() {
        let user = patched_user(json!([
            { "op": "add", "path": "emails", "value": [{ "value": "b@x.org", "type": "home" }] },
            { "op": "remove", "path": "emails[type eq \"work\"].primary" },
        ]));
        assert_eq!(
            user["emails"],
            json!([
                { "value": "ada@example.com", "type": "work" },
                { "value": "b@x.org", "type": "home" },
            ])
        );
        let user = patched(
            &user,
            &user_schemas(),
            json!([{ "op": "remove", "path": "emails[value ew \"x.org\"]" }]),
        );
        assert_eq!(
            user["emails"],
            json!([{ "value": "ada@example.com", "type": "work" }])
        );
    }

    // ---- complex attributes, types, mutability -------------------------------------------

    #[test]
    fn replace_of_a_complex_attribute_merges_its_sub_attributes() {
        let user = patched_user(json!([{
            "op": "replace",
            "path": "name",
            "value": { "GIVENNAME": "Augusta", "formatted": "Augusta Ada King", "honorificPrefix": "x" },
        }]));
        assert_eq!(
            user["name"],
            json!({ "givenName": "Augusta", "familyName": "Lovelace", "formatted": "Augusta Ada King" })
        );
        let user = patched(
            &user,
            &user_schemas(),
            json!([{ "op": "add", "path": "name", "value": { "familyName": null, "formatted": "" } }]),
        );
        assert_eq!(user["name"], json!({ "givenName": "Augusta" }));
        let user = patched(
            &user,
            &user_schemas(),
            json!([{ "op": "remove", "path": "name.givenName" }]),
        );
        assert!(
            user.get("name").is_none(),
            "an emptied complex attribute is removed"
        );
    }

    #[test]
    fn names_are_written_as_the_schema_spells_them() {
        let user = patched_user(json!([
            { "op": "add", "path": "TITLE", "value": "Countess" },
            { "op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:DisplayName", "value": "Ada" },
            { "op": "replace", "path": "EXTERNALID", "value": "e-2" },
        ]));
        assert_eq!(user["title"], "Countess");
        assert_eq!(user["displayName"], "Ada");
        assert_eq!(user["externalId"], "e-2");
        assert!(user.get("TITLE").is_none());
    }

    #[test]
    fn replace_with_null_or_an_empty_string_clears_the_attribute() {
        let user = patched_user(json!([{ "op": "replace", "path": "displayName", "value": null }]));
        assert!(user.get("displayName").is_none());
        let user = patched_user(json!([{ "op": "replace", "value": { "displayName": "" } }]));
        assert!(user.get("displayName").is_none());
        let user = patched_user(json!([{ "op": "replace", "path": "externalId", "value": null }]));
        assert!(user.get("externalId").is_none());
        assert_eq!(parse_user(&user).unwrap().external_id, None);
        // userName is required.
        let error = user_refusal(json!([{ "op": "replace", "path": "userName", "value": null }]));
        assert_eq!(error.scim_type, "invalidValue");
    }

    #[test]
    fn the_enterprise_extension_is_created_and_removed_as_needed() {
        let mut bare = ada();
        bare["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User"]);
        let user = patched(
            &bare,
            &user_schemas(),
            json!([{ "op": "add", "path": DEPARTMENT, "value": "Research" }]),
        );
        assert_eq!(user[ENTERPRISE_USER_SCHEMA]["department"], "Research");
        assert_eq!(user["schemas"][1], ENTERPRISE_USER_SCHEMA);
        let user = patched(
            &user,
            &user_schemas(),
            json!([{ "op": "remove", "path": "department" }]),
        );
        assert!(user.get(ENTERPRISE_USER_SCHEMA).is_none(), "{user}");
        let nothing = patched(
            &bare,
            &user_schemas(),
            json!([{ "op": "add", "path": DEPARTMENT, "value": "" }]),
        );
        assert_eq!(nothing, bare, "an add of no value leaves no trace");
        // The extension named as a whole.
        let user = patched(
            &user,
            &user_schemas(),
            json!([{ "op": "add", "path": ENTERPRISE_USER_SCHEMA, "value": { "Department": "Ops" } }]),
        );
        assert_eq!(user[ENTERPRISE_USER_SCHEMA], json!({ "department": "Ops" }));
        let user = patched(
            &user,
            &user_schemas(),
            json!([{ "op": "remove", "path": ENTERPRISE_USER_SCHEMA }]),
        );
        assert!(user.get(ENTERPRISE_USER_SCHEMA).is_none());
    }

    #[test]
    fn id_meta_schemas_and_read_only_attributes_are_refused() {
        for operation in [
            json!({ "op": "replace", "path": "id", "value": "other" }),
            json!({ "op": "remove", "path": "id" }),
            json!({ "op": "replace", "path": "meta", "value": { "version": "W/\"9\"" } }),
            json!({ "op": "replace", "path": "meta.version", "value": "W/\"9\"" }),
            json!({ "op": "add", "path": "schemas", "value": ["urn:x"] }),
            json!({ "op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:id", "value": "x" }),
            json!({ "op": "replace", "value": { "id": "other" } }),
        ] {
            let error = user_refusal(json!([operation]));
            assert_eq!(error.scim_type, "mutability", "{operation}");
        }
    }

    #[test]
    fn unknown_sub_attributes_are_invalid_paths_and_unknown_attributes_ignored() {
        for target in [
            "nickName",
            "phoneNumbers[type eq \"work\"].value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        ] {
            let operations = parse_patch(&json!({
                "schemas": [crate::scim::patch::PATCH_OP_SCHEMA],
                "Operations": [{ "op": "add", "path": target, "value": "x" }],
            }))
            .unwrap();
            let mut resource = json!({
                "schemas": [crate::scim::filter::CORE_USER_SCHEMA],
                "userName": "ada@example.com",
            });
            let before = resource.clone();
            apply_patch(
                &mut resource,
                &[user_schema(), enterprise_user_schema()],
                &operations,
            )
            .unwrap();
            assert_eq!(resource, before, "{target}");
        }
        for target in [
            "name.middleName",
            "title.value",
            "urn:example:custom:2.0:User:department",
            "active[value eq true]",
            "name[givenName eq \"Ada\"]",
            "emails[type eq \"work\"].display",
        ] {
            let error = user_refusal(json!([{ "op": "add", "path": target, "value": "x" }]));
            assert_eq!(error.scim_type, "invalidPath", "{target}");
        }
    }

    #[test]
    fn values_of_the_wrong_type_are_invalid_values() {
        for (target, value) in [
            ("active", json!("yes")),
            ("active", json!(1)),
            ("title", json!(3)),
            ("title", json!(["x"])),
            ("name", json!("Ada")),
            ("name.givenName", json!({ "value": "Ada" })),
            ("emails", json!("ada@example.com")),
            ("emails", json!([["ada@example.com"]])),
            ("emails", json!([{ "primary": "sometimes" }])),
            ("emails[type eq \"work\"]", json!("x")),
            (DEPARTMENT, json!(false)),
        ] {
            let error = user_refusal(json!([{ "op": "replace", "path": target, "value": value }]));
            assert_eq!(error.scim_type, "invalidValue", "{target} {value}");
        }
        let error = refusal(
            &admins(),
            &[group_schema()],
            json!([{ "op": "add", "path": "members", "value": [1] }]),
        );
        assert_eq!(error.scim_type, "invalidValue");
    }

    #[test]
    fn at_most_one_element_is_primary() {
        let user = patched_user(json!([{
            "op": "add",
            "path": "emails",
            "value": [{ "value": "ada@home.org", "type": "home", "primary": "True" }],
        }]));
        assert_eq!(
            user["emails"],
            json!([
                { "value": "ada@example.com", "type": "work", "primary": false },
                { "value": "ada@home.org", "type": "home", "primary": true },
            ])
        );
        let user = patched(
            &user,
            &user_schemas(),
            json!([{ "op": "replace", "path": "emails[type eq \"work\"].primary", "value": true }]),
        );
        assert_eq!(user["emails"][0]["primary"], json!(true));
        assert_eq!(user["emails"][1]["primary"], json!(false));
        // Several marked at once: the last one stays primary.
        let user = patched_user(json!([{
            "op": "replace",
            "path": "emails",
            "value": [
                { "value": "a@x.org", "primary": true },
                { "value": "b@x.org", "primary": true },
            ],
        }]));
        assert_eq!(user["emails"][0]["primary"], json!(false));
        assert_eq!(user["emails"][1]["primary"], json!(true));
    }

    #[test]
    fn add_skips_an_email_already_there_in_another_case() {
        let user = patched_user(json!([{
            "op": "add",
            "path": "emails",
            "value": { "value": "ADA@example.com", "type": "home" },
        }]));
        assert_eq!(user["emails"], ada()["emails"]);
    }

    #[test]
    fn a_failing_operation_leaves_the_resource_as_it_was() {
        let error = user_refusal(json!([
            { "op": "replace", "path": "title", "value": "Countess" },
            { "op": "replace", "path": "active", "value": "maybe" },
        ]));
        assert_eq!(error.scim_type, "invalidValue");
        let mut not_an_object = json!([]);
        let error = apply_patch(&mut not_an_object, &user_schemas(), &[]).unwrap_err();
        assert_eq!(error.scim_type, "invalidSyntax");
    }

    #[test]
    fn operations_built_by_hand_without_a_path_or_value_are_handled() {
        let mut user = ada();
        let expand = PatchOperation {
            op: PatchOpKind::Add,
            path: None,
            value: Some(
                json!({ "title": "Countess", ENTERPRISE_USER_SCHEMA: { "department": "R" } }),
            ),
        };
        apply_patch(&mut user, &user_schemas(), &[expand]).unwrap();
        assert_eq!(user["title"], "Countess");
        assert_eq!(user[ENTERPRISE_USER_SCHEMA]["department"], "R");
        for (op, path, value, scim_type) in [
            (PatchOpKind::Remove, None, None, "noTarget"),
            (PatchOpKind::Add, None, Some(json!("x")), "invalidValue"),
            (PatchOpKind::Add, Some("title"), None, "invalidValue"),
            (
                PatchOpKind::Add,
                Some("title"),
                Some(Value::Null),
                "invalidValue",
            ),
        ] {
            let operation = PatchOperation {
                op,
                path: path.map(|path| parse_path(path).unwrap()),
                value,
            };
            let error = apply_patch(&mut user.clone(), &user_schemas(), &[operation]).unwrap_err();
            assert_eq!(error.scim_type, scim_type);
        }
    }

    // ---- never panics --------------------------------------------------------------------

    /// A small deterministic generator (xorshift64*): the crate has no property-testing
    /// dependency, so the random combinations are drawn from a fixed seed.
    struct Draw(u64);

    impl Draw {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[(self.next() % items.len() as u64) as usize]
        }
    }

    #[test]
    fn apply_patch_never_panics_on_random_operations() {
        let ops = ["add", "remove", "replace", "Replace"];
        let paths = [
            "active",
            "title",
            "userName",
            "name",
            "name.givenName",
            "name.nope",
            "emails",
            "emails.value",
            "emails.primary",
            "emails[type eq \"work\"]",
            "emails[type eq \"work\"].value",
            "emails[type eq \"home\" and primary eq true].primary",
            "emails[value co \"@\" or type pr].type",
            "emails[not (type eq \"x\")]",
            "members",
            "members[value eq \"m\"]",
            "members[value eq \"m\"].value",
            DEPARTMENT,
            ENTERPRISE_USER_SCHEMA,
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "externalId",
            "id",
            "meta.version",
            "schemas",
            "displayName",
            "nickName",
            "department",
            "name[givenName eq \"x\"]",
            "urn:ietf:params:scim:schemas:core:2.0:User:name.formatted",
        ];
        let values = [
            json!(null),
            json!(""),
            json!("x"),
            json!("True"),
            json!(true),
            json!(false),
            json!(0),
            json!(1.5),
            json!([]),
            json!([null]),
            json!(["x"]),
            json!([[]]),
            json!({}),
            json!({ "value": "a@x.org" }),
            json!({ "value": "m", "display": "d" }),
            json!([{ "value": "a@x.org", "type": "work", "primary": true }, { "value": "A@X.org" }]),
            json!({ "givenName": "A", "familyName": null, "x": [1] }),
            json!({ "department": "D", "name.givenName": "G", "emails": "e" }),
            json!({ "primary": "False", "type": "home" }),
            json!({ "id": "0193a" }),
        ];
        let resources = [
            (ada(), user_schemas()),
            (
                json!({ "schemas": [], "emails": "odd", "name": 3 }),
                user_schemas(),
            ),
            (admins(), vec![group_schema()]),
        ];
        let mut draw = Draw(0x9E37_79B9_7F4A_7C15);
        let (mut applied, mut refused) = (0, 0);
        for _ in 0..4000 {
            let count = 1 + draw.next() % 3;
            let operations: Vec<Value> = (0..count)
                .map(|_| {
                    let mut operation = json!({ "op": draw.pick(&ops) });
                    if draw.next() % 8 != 0 {
                        operation["path"] = json!(draw.pick(&paths));
                    }
                    if draw.next() % 5 != 0 {
                        operation["value"] = draw.pick(&values).clone();
                    }
                    operation
                })
                .collect();
            let Ok(parsed) = parse_patch(&body(Value::Array(operations))) else {
                continue;
            };
            let (resource, schemas) = draw.pick(&resources);
            let mut result = resource.clone();
            match apply_patch(&mut result, schemas, &parsed) {
                Ok(()) => {
                    applied += 1;
                    assert!(result.is_object());
                    let _ = parse_user(&result);
                }
                Err(error) => {
                    refused += 1;
                    assert_eq!(&result, resource);
                    assert!(
                        ["invalidPath", "invalidValue", "mutability", "noTarget"]
                            .contains(&error.scim_type),
                        "{}",
                        error.scim_type
                    );
                }
            }
        }
        assert!(
            applied > 200 && refused > 200,
            "{applied} applied, {refused} refused"
        );
    }
}
