//! The formats of SPEC §2 as JSON Schema patterns, the schemas built from them, and
//! the closed vocabularies (decision reasons, problem codes) the document states.

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, Type,
};
use utoipa::openapi::RefOr;

// ---- the formats of SPEC §2, as the server's parsers accept them ---------------------
//
// Each pattern accepts exactly what the matching `domain::ids` parser accepts (so a
// schema-valid value is never refused for its form, and a value outside the pattern
// always is), written with ECMA-262 features Python's `re` also has (lookaheads, no
// `\p{…}`). "Whitespace" is Unicode `White_Space`, as Rust's `char::is_whitespace`;
// "control" is the `Cc` category, as `char::is_control`.

/// A tenant slug (`TenantId::parse`): 3 to 40 of `a-z0-9-`, starting with a letter,
/// ending with a letter or digit, no `--`, not a reserved word.
pub const TENANT_ID_PATTERN: &str = "^(?!.*--)(?!(?:platform|root|admin|system|api|www|internal|default|all|none|null|me|self)$)[a-z][a-z0-9-]{1,38}[a-z0-9]$";

/// A user, key, event or audit id: a UUID v7, lowercase and hyphenated, RFC 4122 variant.
pub const UUID_V7_PATTERN: &str =
    "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";

/// An OAuth client id: a UUID v7, after `<tenant>.` for a tenant client.
pub const CLIENT_ID_PATTERN: &str = "^(?:[a-z][a-z0-9-]{1,38}[a-z0-9]\\.)?[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";

/// A profile key.
pub const NAME_PATTERN: &str = "^[a-z][a-z0-9_]{0,39}$";

/// A tenant role name (`RoleName::parse`): a name not starting with `platform`, which is
/// reserved for platform roles (SPEC §3.3).
pub const ROLE_PATTERN: &str = "^(?!platform)[a-z][a-z0-9_]{0,39}$";

/// A role name a binding may be written for: any tenant role but `tenant_admin`, which
/// is bound implicitly to every enabled scope.
pub const BINDABLE_ROLE_PATTERN: &str = "^(?!tenant_admin$)(?!platform)[a-z][a-z0-9_]{0,39}$";

/// A scope name: two to four `:`-separated segments.
pub const SCOPE_PATTERN: &str = "^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*){1,3}$";

/// A character that is neither whitespace nor a control character.
const VISIBLE: &str =
    "[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000@]";

/// An email (`Email::parse`): surrounding whitespace is trimmed; inside, one `@` with
/// text on both sides and no whitespace or control characters. At most 254 characters
/// once trimmed and lowercased (a few characters lengthen when lowercased: `İ`).
pub fn email_pattern() -> String {
    let space = "[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
    format!("^{space}*{VISIBLE}+@{VISIBLE}+{space}*$")
}

/// A display name (`DisplayName::parse`): 1 to 200 characters, no control characters,
/// no whitespace at either end.
pub const DISPLAY_NAME_PATTERN: &str = "^[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000])?$";

pub(super) fn text(pattern: impl Into<String>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern.into()))
}

/// A tenant slug.
pub fn tenant_id_schema() -> Schema {
    text(TENANT_ID_PATTERN)
        .min_length(Some(3))
        .max_length(Some(40))
        .examples(["acme"])
        .build()
        .into()
}

/// A UUID v7 id.
pub fn uuid_v7_schema() -> Schema {
    text(UUID_V7_PATTERN)
        .format(Some(SchemaFormat::Custom("uuid".to_owned())))
        .build()
        .into()
}

/// A tenant role name.
pub fn role_schema() -> Schema {
    text(ROLE_PATTERN).examples(["editor"]).build().into()
}

/// A profile key.
pub fn profile_key_schema() -> Schema {
    text(NAME_PATTERN).examples(["locale"]).build().into()
}

/// A scope name.
pub fn scope_schema() -> Schema {
    text(SCOPE_PATTERN).examples(["docs:edit"]).build().into()
}

/// An email address.
pub fn email_schema() -> Schema {
    text(email_pattern())
        .min_length(Some(3))
        .max_length(Some(254))
        .examples(["ada@example.com"])
        .build()
        .into()
}

/// A display name.
pub fn display_name_schema() -> Schema {
    text(DISPLAY_NAME_PATTERN)
        .min_length(Some(1))
        .max_length(Some(200))
        .examples(["Acme"])
        .build()
        .into()
}

/// A new password (`Password::parse`): 12 to 1024 characters.
pub fn new_password_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .min_length(Some(12))
        .max_length(Some(1024))
        .build()
        .into()
}

/// One of a fixed set of words.
pub fn one_of_words(words: &[&str]) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(words.iter().copied()))
        .build()
        .into()
}

/// A list of `item`s, with at least `min_items`.
pub(super) fn list(item: Schema, min_items: usize) -> Schema {
    ArrayBuilder::new()
        .items(RefOr::T(item))
        .min_items((min_items > 0).then_some(min_items))
        .build()
        .into()
}

/// An object of exactly these properties (the first `required` of them required) and
/// no others: what a `deny_unknown_fields` body accepts.
pub(super) fn closed_object(properties: &[(&str, Schema)], required: &[&str]) -> Schema {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for (name, schema) in properties {
        object = object.property(*name, schema.clone());
    }
    for name in required {
        object = object.required(*name);
    }
    object.build().into()
}

/// Every reason a decision carries (SPEC §3.2 and §4).
pub const DECISION_REASONS: &[&str] = &[
    "subject_not_found",
    "unknown_scope",
    "subject_suspended",
    "subject_invited",
    "platform_root_required",
    "tenant_suspended",
    "not_a_member",
    "account_suspended",
    "scope_not_enabled",
    "missing_scope",
    "insufficient_assurance",
    "credential_scope_missing",
    "target_not_in_tenant",
    "target_protected",
    "exceeds_caller",
    "platform_root",
    "platform_auditor",
    "self",
    "role_binding",
];

/// Every problem `code` (SPEC §5, plus the few operational ones the service adds).
pub const PROBLEM_CODES: &[&str] = &[
    "invalid_request",
    "invalid_cursor",
    "invalid_tenant_id",
    "invalid_user_id",
    "invalid_email",
    "invalid_role",
    "invalid_scope",
    "unknown_scope",
    "unknown_role",
    "unknown_profile_key",
    "invalid_profile_value",
    "scope_not_assignable",
    "scope_not_enabled",
    "unauthenticated",
    "invalid_credentials",
    "invalid_totp",
    "forbidden",
    "tenant_not_found",
    "member_not_found",
    "user_not_found",
    "not_found",
    "method_not_allowed",
    "tenant_exists",
    "member_exists",
    "email_taken",
    "scope_exists",
    "last_tenant_admin",
    "last_platform_root",
    "idempotency_key_in_use",
    "precondition_failed",
    "payload_too_large",
    "unsupported_media_type",
    "idempotency_key_reused",
    "rate_limited",
    "internal",
    "not_ready",
    "overloaded",
];

/// A profile value: a string of at most 1024 characters, a finite number or a boolean.
pub fn profile_value_schema() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(1024))
                    .pattern(Some("^[^\\x00]*$")),
            )
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .build(),
    )
}
