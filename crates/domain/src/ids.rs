//! Validated newtypes for every identifier and value format of SPEC §2.
//!
//! Each type has a private field and a `parse` constructor that returns a specific
//! [`FormatError`]; once constructed a value is known to be well formed.

use std::fmt;

use uuid::Uuid;

/// Why an input was rejected; each variant maps to one 400 `code` of SPEC §5.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("invalid tenant id: {0}")]
    TenantId(&'static str),
    #[error("invalid user id: must be a lowercase hyphenated uuid v7")]
    UserId,
    #[error("invalid id: must be a lowercase hyphenated uuid v7")]
    Id,
    #[error("invalid email: {0}")]
    Email(&'static str),
    #[error("invalid role name: must match ^[a-z][a-z0-9_]{{0,39}}$")]
    Role,
    #[error("invalid scope name: must match ^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*){{1,3}}$")]
    Scope,
    #[error("invalid profile key: must match ^[a-z][a-z0-9_]{{0,39}}$")]
    ProfileKey,
    #[error("invalid profile value: {0}")]
    ProfileValue(&'static str),
    #[error("invalid assurance: must be aal1 or aal2")]
    Assurance,
    #[error("invalid display name: {0}")]
    DisplayName(&'static str),
    #[error("invalid password: {0}")]
    Password(&'static str),
    #[error("invalid {0}")]
    Other(&'static str),
}

impl FormatError {
    /// The SPEC §5 problem code this rejection is reported with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TenantId(_) => "invalid_tenant_id",
            Self::UserId => "invalid_user_id",
            Self::Email(_) => "invalid_email",
            Self::Role => "invalid_role",
            Self::Scope => "invalid_scope",
            // A malformed key can never be in the schema.
            Self::ProfileKey => "unknown_profile_key",
            Self::ProfileValue(_) => "invalid_profile_value",
            Self::Id
            | Self::Assurance
            | Self::DisplayName(_)
            | Self::Password(_)
            | Self::Other(_) => "invalid_request",
        }
    }
}

/// Tenant slugs that name parts of the platform and can never be tenants.
pub const RESERVED_TENANT_IDS: &[&str] = &[
    "platform", "root", "admin", "system", "api", "www", "internal", "default", "all", "none",
    "null", "me", "self",
];

/// A tenant slug: `^[a-z][a-z0-9-]{1,38}[a-z0-9]$`, no `--`, not reserved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(input: &str) -> Result<Self, FormatError> {
        let bytes = input.as_bytes();
        if !(3..=40).contains(&bytes.len()) {
            return Err(FormatError::TenantId("must be 3 to 40 characters"));
        }
        let first_ok = bytes.first().is_some_and(u8::is_ascii_lowercase);
        let last_ok = bytes
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let body_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if !(first_ok && last_ok && body_ok) {
            return Err(FormatError::TenantId(
                "must start with a-z, end with a-z or 0-9, and use only a-z, 0-9 and -",
            ));
        }
        if input.contains("--") {
            return Err(FormatError::TenantId("must not contain --"));
        }
        if RESERVED_TENANT_IDS.contains(&input) {
            return Err(FormatError::TenantId("is reserved"));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a UUID v7 written lowercase and hyphenated, and nothing else.
fn parse_uuid_v7(input: &str) -> Option<Uuid> {
    if input.len() != 36 {
        return None;
    }
    let uuid = Uuid::parse_str(input).ok()?;
    let canonical = uuid.hyphenated().to_string();
    (canonical == input
        && uuid.get_version_num() == 7
        && uuid.get_variant() == uuid::Variant::RFC4122)
        .then_some(uuid)
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $error:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            pub fn parse(input: &str) -> Result<Self, FormatError> {
                parse_uuid_v7(input).map(Self).ok_or($error)
            }

            /// Wraps a UUID from an [`IdGenerator`](crate::ports::IdGenerator), whose
            /// contract is to produce v7 values.
            pub fn from_generated(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

uuid_id!(
    /// A user's platform-wide identity.
    UserId,
    FormatError::UserId
);
uuid_id!(
    /// An API key's public id (the secret part is never stored).
    KeyId,
    FormatError::Id
);
uuid_id!(
    /// A session's public id (SPEC §4 `GET /v1/me/sessions`); the token is never shown again.
    SessionId,
    FormatError::Id
);
uuid_id!(
    /// An outbox event's id, also its CloudEvents `id` and `Nats-Msg-Id`.
    EventId,
    FormatError::Id
);
uuid_id!(
    /// An audit record's id.
    AuditId,
    FormatError::Id
);

/// An email address: trimmed and lowercased, at most 254 characters, exactly one `@`
/// with text on both sides, no whitespace or control characters inside.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, FormatError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(FormatError::Email("must not be empty"));
        }
        // The limit applies to the stored, lowercased form: lowercasing can lengthen a
        // string (`İ` becomes two characters).
        let lowered = trimmed.to_lowercase();
        if lowered.chars().count() > 254 {
            return Err(FormatError::Email("must be at most 254 characters"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FormatError::Email("must not contain whitespace"));
        }
        let mut parts = trimmed.split('@');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => {
                Ok(Self(lowered))
            }
            _ => Err(FormatError::Email(
                "must contain one @ with text on both sides",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `^[a-z][a-z0-9_]{0,39}$`, shared by role names and profile keys.
fn is_short_name(input: &str) -> bool {
    let bytes = input.as_bytes();
    (1..=40).contains(&bytes.len())
        && bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// A tenant role name; `tenant_admin` and `member` are built in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

impl RoleName {
    pub const TENANT_ADMIN: &'static str = "tenant_admin";
    pub const MEMBER: &'static str = "member";

    /// Names starting with `platform` are reserved for platform roles (SPEC §3.3), so a
    /// tenant role can never be mistaken for one.
    pub fn parse(input: &str) -> Result<Self, FormatError> {
        (is_short_name(input) && !input.starts_with(Self::RESERVED_PREFIX))
            .then(|| Self(input.to_owned()))
            .ok_or(FormatError::Role)
    }

    pub const RESERVED_PREFIX: &'static str = "platform";

    pub fn tenant_admin() -> Self {
        Self(Self::TENANT_ADMIN.to_owned())
    }

    pub fn member() -> Self {
        Self(Self::MEMBER.to_owned())
    }

    pub fn is_tenant_admin(&self) -> bool {
        self.0 == Self::TENANT_ADMIN
    }

    pub fn is_builtin(&self) -> bool {
        self.0 == Self::TENANT_ADMIN || self.0 == Self::MEMBER
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A scope name: two to four `:`-separated segments of `[a-z][a-z0-9_]*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeName(String);

impl ScopeName {
    pub fn parse(input: &str) -> Result<Self, FormatError> {
        let segments: Vec<&str> = input.split(':').collect();
        let segment_ok = |segment: &&str| {
            let bytes = segment.as_bytes();
            bytes.first().is_some_and(u8::is_ascii_lowercase)
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        };
        ((2..=4).contains(&segments.len()) && segments.iter().all(segment_ok))
            .then(|| Self(input.to_owned()))
            .ok_or(FormatError::Scope)
    }

    /// Read scopes end in `:read`; everything else counts as a write (SPEC §3.2 step 9).
    pub fn is_read(&self) -> bool {
        self.0.ends_with(":read")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScopeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A profile key: `^[a-z][a-z0-9_]{0,39}$` (whether it is in the schema is checked later).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileKey(String);

impl ProfileKey {
    pub fn parse(input: &str) -> Result<Self, FormatError> {
        is_short_name(input)
            .then(|| Self(input.to_owned()))
            .ok_or(FormatError::ProfileKey)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The type a profile schema entry gives its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProfileType {
    String,
    Number,
    Boolean,
}

impl ProfileType {
    pub fn parse(input: &str) -> Result<Self, FormatError> {
        match input {
            "string" => Ok(Self::String),
            "number" => Ok(Self::Number),
            "boolean" => Ok(Self::Boolean),
            _ => Err(FormatError::Other(
                "profile type: must be string, number or boolean",
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }
}

/// A profile value: a JSON string of at most 1024 characters, a finite number or a boolean.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileValue(serde_json::Value);

impl ProfileValue {
    pub const MAX_STRING_CHARS: usize = 1024;

    pub fn parse(input: &serde_json::Value) -> Result<Self, FormatError> {
        match input {
            serde_json::Value::String(text) if text.chars().count() > Self::MAX_STRING_CHARS => {
                Err(FormatError::ProfileValue(
                    "a string must be at most 1024 characters",
                ))
            }
            // No store keeps NUL in text: refused here rather than failing later.
            serde_json::Value::String(text) if text.contains('\0') => Err(
                FormatError::ProfileValue("a string must not contain NUL characters"),
            ),
            serde_json::Value::String(_) | serde_json::Value::Bool(_) => Ok(Self(input.clone())),
            serde_json::Value::Number(number) => {
                if number.as_f64().is_some_and(f64::is_finite) {
                    Ok(Self(input.clone()))
                } else {
                    Err(FormatError::ProfileValue("a number must be finite"))
                }
            }
            _ => Err(FormatError::ProfileValue(
                "must be a JSON string, number or boolean",
            )),
        }
    }

    pub fn value_type(&self) -> ProfileType {
        match &self.0 {
            serde_json::Value::Number(_) => ProfileType::Number,
            serde_json::Value::Bool(_) => ProfileType::Boolean,
            _ => ProfileType::String,
        }
    }

    pub fn as_json(&self) -> &serde_json::Value {
        &self.0
    }
}

/// Authentication assurance level, ordered: `aal1 < aal2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Assurance {
    Aal1,
    Aal2,
}

impl Assurance {
    pub fn parse(input: &str) -> Result<Self, FormatError> {
        match input {
            "aal1" => Ok(Self::Aal1),
            "aal2" => Ok(Self::Aal2),
            _ => Err(FormatError::Assurance),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Aal1 => "aal1",
            Self::Aal2 => "aal2",
        }
    }
}

/// A human-readable name: 1 to 200 characters, no control characters, no surrounding
/// whitespace (rejected rather than trimmed, so nothing is normalised silently).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(input: &str) -> Result<Self, FormatError> {
        if input.is_empty() || input.chars().count() > 200 {
            return Err(FormatError::DisplayName("must be 1 to 200 characters"));
        }
        if input.chars().any(char::is_control) {
            return Err(FormatError::DisplayName(
                "must not contain control characters",
            ));
        }
        if input.trim() != input {
            return Err(FormatError::DisplayName(
                "must not start or end with whitespace",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed: 12 to 1024 characters. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 12;
    /// Bounds the work one hash costs an attacker-chosen input.
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(input: &str) -> Result<Self, FormatError> {
        let length = input.chars().count();
        if length < Self::MIN_CHARS {
            return Err(FormatError::Password("must be at least 12 characters"));
        }
        if length > Self::MAX_CHARS {
            return Err(FormatError::Password("must be at most 1024 characters"));
        }
        Ok(Self(input.to_owned()))
    }

    /// A password offered at login is not held to the creation rules; an empty or
    /// overlong one simply fails to verify.
    pub fn offered(input: &str) -> Self {
        Self(input.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
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

    const TENANT_LENGTH: &str = "must be 3 to 40 characters";
    const TENANT_CHARSET: &str =
        "must start with a-z, end with a-z or 0-9, and use only a-z, 0-9 and -";
    const TENANT_DOUBLE_HYPHEN: &str = "must not contain --";
    const TENANT_RESERVED: &str = "is reserved";

    /// A valid lowercase hyphenated UUID v7 (version nibble 7, RFC 4122 variant `b`).
    const V7: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

    fn tenant_rejection(input: &str) -> Option<(&'static str, &'static str)> {
        match TenantId::parse(input) {
            Ok(_) => None,
            Err(error @ FormatError::TenantId(detail)) => Some((error.code(), detail)),
            Err(other) => panic!("{input:?} rejected with the wrong variant {other:?}"),
        }
    }

    // ---- tenant ids ----------------------------------------------------------------

    #[test]
    fn a_profile_string_with_a_nul_character_is_rejected() {
        assert_eq!(
            ProfileValue::parse(&serde_json::json!("a\u{0}b")).map_err(|error| error.code()),
            Err("invalid_profile_value")
        );
    }

    #[test]
    fn ordinary_tenant_slugs_are_accepted_unchanged() {
        for input in ["acme", "acme-corp", "a1b", "team-42", "x9-y8-z7", "abc1"] {
            let tenant = TenantId::parse(input);
            assert_eq!(
                tenant.as_ref().map(TenantId::as_str),
                Ok(input),
                "{input:?} should be accepted"
            );
            assert_eq!(
                tenant.map(|tenant| tenant.to_string()),
                Ok(input.to_owned())
            );
        }
    }

    #[test]
    fn a_tenant_slug_of_exactly_3_characters_is_accepted() {
        assert!(TenantId::parse("abc").is_ok());
        assert!(TenantId::parse("a-1").is_ok());
    }

    #[test]
    fn a_tenant_slug_of_exactly_40_characters_is_accepted() {
        let input = format!("a{}", "b".repeat(39));
        assert_eq!(input.len(), 40);
        assert_eq!(
            TenantId::parse(&input).map(|tenant| tenant.as_str().to_owned()),
            Ok(input)
        );
    }

    #[test]
    fn a_tenant_slug_shorter_than_3_characters_is_rejected() {
        for input in ["", "a", "ab"] {
            assert_eq!(
                tenant_rejection(input),
                Some(("invalid_tenant_id", TENANT_LENGTH)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_tenant_slug_of_41_characters_is_rejected() {
        let input = format!("a{}", "b".repeat(40));
        assert_eq!(input.len(), 41);
        assert_eq!(
            TenantId::parse(&input),
            Err(FormatError::TenantId(TENANT_LENGTH))
        );
        assert_eq!(
            TenantId::parse(&input).map_err(|error| error.code()),
            Err("invalid_tenant_id")
        );
    }

    #[test]
    fn a_tenant_slug_with_uppercase_letters_is_rejected() {
        for input in ["Acme", "acMe", "ACME", "acmE"] {
            assert_eq!(
                tenant_rejection(input),
                Some(("invalid_tenant_id", TENANT_CHARSET)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_tenant_slug_starting_with_a_digit_is_rejected() {
        assert_eq!(
            TenantId::parse("1acme"),
            Err(FormatError::TenantId(TENANT_CHARSET))
        );
        assert_eq!(
            TenantId::parse("42-team"),
            Err(FormatError::TenantId(TENANT_CHARSET))
        );
    }

    #[test]
    fn a_tenant_slug_with_a_leading_hyphen_is_rejected() {
        assert_eq!(
            tenant_rejection("-acme"),
            Some(("invalid_tenant_id", TENANT_CHARSET))
        );
    }

    #[test]
    fn a_tenant_slug_with_a_trailing_hyphen_is_rejected() {
        assert_eq!(
            tenant_rejection("acme-"),
            Some(("invalid_tenant_id", TENANT_CHARSET))
        );
    }

    #[test]
    fn a_tenant_slug_with_a_double_hyphen_is_rejected() {
        for input in ["ac--me", "a--b", "acme---corp"] {
            assert_eq!(
                tenant_rejection(input),
                Some(("invalid_tenant_id", TENANT_DOUBLE_HYPHEN)),
                "{input:?}"
            );
        }
        // A single hyphen in the same place is fine: the rule is about `--` only.
        assert!(TenantId::parse("ac-me").is_ok());
    }

    #[test]
    fn every_reserved_word_is_rejected_as_a_tenant_slug() {
        let spec_reserved = [
            "platform", "root", "admin", "system", "api", "www", "internal", "default", "all",
            "none", "null", "me", "self",
        ];
        assert_eq!(RESERVED_TENANT_IDS, spec_reserved.as_slice());
        for word in spec_reserved {
            let rejection = tenant_rejection(word);
            assert_eq!(
                rejection.map(|(code, _)| code),
                Some("invalid_tenant_id"),
                "{word:?} must be rejected"
            );
            // `me` is too short to reach the reserved-word check; every other word is
            // well formed and rejected only because it is reserved.
            if word.len() >= 3 {
                assert_eq!(rejection, Some(("invalid_tenant_id", TENANT_RESERVED)));
            }
        }
    }

    #[test]
    fn a_tenant_slug_that_only_contains_a_reserved_word_is_accepted() {
        for input in ["platform-team", "rooted", "my-api", "admins", "nullable"] {
            assert!(TenantId::parse(input).is_ok(), "{input:?}");
        }
    }

    #[test]
    fn a_tenant_slug_with_an_underscore_is_rejected() {
        assert_eq!(
            tenant_rejection("my_tenant"),
            Some(("invalid_tenant_id", TENANT_CHARSET))
        );
    }

    #[test]
    fn a_tenant_slug_with_unicode_characters_is_rejected() {
        // Look-alikes must not pass: accented, full-width and Cyrillic letters.
        for input in ["acmé", "ａｃｍｅ", "асme", "acme\u{200b}"] {
            assert_eq!(
                tenant_rejection(input).map(|(code, _)| code),
                Some("invalid_tenant_id"),
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_tenant_slug_with_whitespace_or_punctuation_is_rejected_not_trimmed() {
        for input in [" acme", "acme ", "ac me", "ac.me", "ac/me", "acme\n"] {
            assert_eq!(
                tenant_rejection(input),
                Some(("invalid_tenant_id", TENANT_CHARSET)),
                "{input:?}"
            );
        }
    }

    // ---- uuid ids ------------------------------------------------------------------

    /// Inputs that are not a lowercase hyphenated UUID v7, each for one reason.
    fn malformed_uuids() -> Vec<(&'static str, String)> {
        vec![
            ("uppercase", V7.to_uppercase()),
            ("v4", "550e8400-e29b-41d4-a716-446655440000".to_owned()),
            ("no hyphens", V7.replace('-', "")),
            ("braces", format!("{{{V7}}}")),
            ("urn", format!("urn:uuid:{V7}")),
            ("nil", "00000000-0000-0000-0000-000000000000".to_owned()),
            ("max", "ffffffff-ffff-ffff-ffff-ffffffffffff".to_owned()),
            ("too short", V7.get(..35).unwrap().to_owned()),
            ("too long", format!("{V7}0")),
            ("empty", String::new()),
            ("surrounding space", format!(" {V7}")),
            (
                "hyphens moved",
                "01890a5dac96-774b-bcce-b302-099a8057".to_owned(),
            ),
            (
                "non-rfc variant",
                "01890a5d-ac96-774b-ccce-b302099a8057".to_owned(),
            ),
            ("not hex", "01890a5d-ac96-774b-bcce-b302099a805g".to_owned()),
        ]
    }

    #[test]
    fn a_lowercase_hyphenated_v7_uuid_is_accepted_as_every_id_kind() {
        assert_eq!(
            UserId::parse(V7).map(|id| id.to_string()),
            Ok(V7.to_owned())
        );
        assert_eq!(KeyId::parse(V7).map(|id| id.to_string()), Ok(V7.to_owned()));
        assert_eq!(
            EventId::parse(V7).map(|id| id.to_string()),
            Ok(V7.to_owned())
        );
        assert_eq!(
            AuditId::parse(V7).map(|id| id.to_string()),
            Ok(V7.to_owned())
        );
        assert_eq!(
            UserId::parse(V7).map(|id| id.as_uuid().get_version_num()),
            Ok(7)
        );
    }

    #[test]
    fn a_generated_v7_uuid_round_trips_through_display_and_parse() {
        let uuid = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_700_000_000,
            0,
        ));
        let id = UserId::from_generated(uuid);
        assert_eq!(UserId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn every_malformed_user_id_is_rejected_with_invalid_user_id() {
        for (why, input) in malformed_uuids() {
            assert_eq!(UserId::parse(&input), Err(FormatError::UserId), "{why}");
            assert_eq!(
                UserId::parse(&input).map_err(|error| error.code()),
                Err("invalid_user_id"),
                "{why}"
            );
        }
    }

    #[test]
    fn every_malformed_key_event_or_audit_id_is_rejected_with_invalid_request() {
        for (why, input) in malformed_uuids() {
            assert_eq!(KeyId::parse(&input), Err(FormatError::Id), "{why}");
            assert_eq!(EventId::parse(&input), Err(FormatError::Id), "{why}");
            assert_eq!(AuditId::parse(&input), Err(FormatError::Id), "{why}");
            assert_eq!(
                KeyId::parse(&input).map_err(|error| error.code()),
                Err("invalid_request"),
                "{why}"
            );
        }
    }

    // ---- email ---------------------------------------------------------------------

    fn email_of_length(length: usize) -> String {
        let domain = "@example.com";
        format!("{}{domain}", "a".repeat(length - domain.len()))
    }

    #[test]
    fn an_email_is_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Alice@Example.COM \t\n").map(|email| email.as_str().to_owned()),
            Ok("alice@example.com".to_owned())
        );
        assert_eq!(
            Email::parse("Bob@X.io").map(|email| email.to_string()),
            Ok("bob@x.io".to_owned())
        );
    }

    #[test]
    fn emails_differing_only_in_case_and_surrounding_whitespace_are_equal() {
        assert_eq!(
            Email::parse(" ALICE@example.com"),
            Email::parse("alice@EXAMPLE.com ")
        );
    }

    #[test]
    fn an_empty_email_is_rejected() {
        assert_eq!(
            Email::parse(""),
            Err(FormatError::Email("must not be empty"))
        );
        assert_eq!(
            Email::parse("").map_err(|error| error.code()),
            Err("invalid_email")
        );
    }

    #[test]
    fn a_whitespace_only_email_is_rejected() {
        assert_eq!(
            Email::parse(" \t\n "),
            Err(FormatError::Email("must not be empty"))
        );
    }

    #[test]
    fn an_email_without_exactly_one_at_sign_with_text_on_both_sides_is_rejected() {
        let detail = "must contain one @ with text on both sides";
        for input in [
            "alice.example.com",
            "alice@example@com",
            "a@@b",
            "@example.com",
            "alice@",
            "@",
        ] {
            assert_eq!(
                Email::parse(input),
                Err(FormatError::Email(detail)),
                "{input:?}"
            );
            assert_eq!(
                Email::parse(input).map_err(|error| error.code()),
                Err("invalid_email")
            );
        }
    }

    #[test]
    fn an_email_of_254_characters_is_accepted() {
        let input = email_of_length(254);
        assert_eq!(input.chars().count(), 254);
        assert_eq!(
            Email::parse(&input).map(|email| email.as_str().to_owned()),
            Ok(input)
        );
    }

    #[test]
    fn an_email_of_255_characters_is_rejected() {
        let input = email_of_length(255);
        assert_eq!(
            Email::parse(&input),
            Err(FormatError::Email("must be at most 254 characters"))
        );
    }

    #[test]
    fn the_email_length_limit_counts_characters_after_trimming() {
        assert!(Email::parse(&format!("  {}  ", email_of_length(254))).is_ok());
        // 242 two-byte characters plus the 12 of the domain: 254 characters, 496 bytes.
        let multibyte = format!("{}@example.com", "ü".repeat(242));
        assert_eq!(multibyte.chars().count(), 254);
        assert!(Email::parse(&multibyte).is_ok());
        let too_long = format!("{}@example.com", "ü".repeat(243));
        assert_eq!(
            Email::parse(&too_long),
            Err(FormatError::Email("must be at most 254 characters"))
        );
    }

    #[test]
    fn an_email_that_lowercasing_makes_longer_than_254_characters_is_rejected() {
        // `İ` lowercases to two characters (`i` and a combining dot), so this input of
        // 254 characters would be stored as 255: the limit applies to the stored form.
        let input = format!("{}İ@example.com", "a".repeat(241));
        assert_eq!(input.chars().count(), 254);
        assert_eq!(input.to_lowercase().chars().count(), 255);
        assert_eq!(
            Email::parse(&input),
            Err(FormatError::Email("must be at most 254 characters"))
        );
    }

    #[test]
    fn an_email_with_inner_whitespace_or_control_characters_is_rejected() {
        for input in [
            "ali ce@example.com",
            "alice@exa mple.com",
            "alice\t@example.com",
            "alice@example.com\u{a0}x",
            "alice\u{7}@example.com",
            "alice\n@example.com",
        ] {
            assert_eq!(
                Email::parse(input),
                Err(FormatError::Email("must not contain whitespace")),
                "{input:?}"
            );
        }
    }

    // ---- role names ----------------------------------------------------------------

    #[test]
    fn well_formed_role_names_are_accepted() {
        for input in ["member", "tenant_admin", "a", "editor2", "doc_editor_v2"] {
            assert_eq!(
                RoleName::parse(input).map(|role| role.as_str().to_owned()),
                Ok(input.to_owned())
            );
        }
        let forty = format!("r{}", "x".repeat(39));
        assert!(RoleName::parse(&forty).is_ok());
    }

    #[test]
    fn malformed_role_names_are_rejected_with_invalid_role() {
        let forty_one = format!("r{}", "x".repeat(40));
        for input in [
            "",
            forty_one.as_str(),
            "Editor",
            "edItor",
            "2editor",
            "doc-editor",
            "_editor",
            "editor!",
            "rôle",
            " editor",
            "doc:editor",
            // Reserved for platform roles (SPEC §3.3).
            "platform_root",
            "platform_auditor",
            "platform",
            "platformer",
        ] {
            assert_eq!(RoleName::parse(input), Err(FormatError::Role), "{input:?}");
            assert_eq!(
                RoleName::parse(input).map_err(|error| error.code()),
                Err("invalid_role")
            );
        }
    }

    #[test]
    fn the_built_in_roles_are_recognised() {
        assert!(RoleName::tenant_admin().is_tenant_admin());
        assert!(RoleName::tenant_admin().is_builtin());
        assert!(RoleName::member().is_builtin());
        assert!(!RoleName::member().is_tenant_admin());
        assert_eq!(
            RoleName::parse("tenant_admin"),
            Ok(RoleName::tenant_admin())
        );
        let editor = RoleName::parse("editor");
        assert_eq!(editor.as_ref().map(RoleName::is_builtin), Ok(false));
        assert_eq!(editor.as_ref().map(RoleName::is_tenant_admin), Ok(false));
    }

    // ---- scope names ---------------------------------------------------------------

    #[test]
    fn scope_names_of_two_to_four_segments_are_accepted() {
        for input in [
            "members:write",
            "docs:page:edit",
            "a:b:c:d",
            "api_keys:write",
            "platform:users:read",
            "docs2:edit_v2",
        ] {
            assert_eq!(
                ScopeName::parse(input).map(|scope| scope.to_string()),
                Ok(input.to_owned())
            );
        }
    }

    #[test]
    fn malformed_scope_names_are_rejected_with_invalid_scope() {
        for input in [
            "",
            "members",
            "a:b:c:d:e",
            "members:",
            ":write",
            "members::write",
            "Members:write",
            "members:Write",
            "members:2write",
            "2members:write",
            "members:_write",
            "doc-s:edit",
            "members:write ",
            "members:wrïte",
        ] {
            assert_eq!(
                ScopeName::parse(input),
                Err(FormatError::Scope),
                "{input:?}"
            );
            assert_eq!(
                ScopeName::parse(input).map_err(|error| error.code()),
                Err("invalid_scope")
            );
        }
    }

    #[test]
    fn only_scopes_whose_last_segment_is_read_are_reads() {
        let is_read = |input: &str| ScopeName::parse(input).map(|scope| scope.is_read());
        assert_eq!(is_read("members:read"), Ok(true));
        assert_eq!(is_read("platform:audit:read"), Ok(true));
        assert_eq!(is_read("members:write"), Ok(false));
        assert_eq!(is_read("docs:reader"), Ok(false));
        assert_eq!(is_read("read:all"), Ok(false));
        assert_eq!(is_read("docs:thread"), Ok(false));
    }

    // ---- profile keys --------------------------------------------------------------

    #[test]
    fn well_formed_profile_keys_are_accepted() {
        for input in ["display_name", "locale", "a", "x2"] {
            assert_eq!(
                ProfileKey::parse(input).map(|key| key.as_str().to_owned()),
                Ok(input.to_owned())
            );
        }
        assert!(ProfileKey::parse(&format!("k{}", "y".repeat(39))).is_ok());
    }

    #[test]
    fn malformed_profile_keys_are_rejected_as_unknown_profile_keys() {
        let forty_one = format!("k{}", "y".repeat(40));
        for input in [
            "",
            forty_one.as_str(),
            "Locale",
            "1locale",
            "time-zone",
            "time zone",
            "_locale",
            "clé",
        ] {
            assert_eq!(
                ProfileKey::parse(input),
                Err(FormatError::ProfileKey),
                "{input:?}"
            );
            assert_eq!(
                ProfileKey::parse(input).map_err(|error| error.code()),
                Err("unknown_profile_key")
            );
        }
    }

    // ---- profile values ------------------------------------------------------------

    #[test]
    fn a_string_profile_value_of_1024_characters_is_accepted() {
        for unit in ["a", "é", "😀"] {
            let value = serde_json::Value::String(unit.repeat(1024));
            assert_eq!(
                ProfileValue::parse(&value).map(|value| value.as_json().clone()),
                Ok(value),
                "{unit:?}"
            );
        }
    }

    #[test]
    fn a_string_profile_value_of_1025_characters_is_rejected() {
        for unit in ["a", "é", "😀"] {
            let value = serde_json::Value::String(unit.repeat(1025));
            assert_eq!(
                ProfileValue::parse(&value),
                Err(FormatError::ProfileValue(
                    "a string must be at most 1024 characters"
                )),
                "{unit:?}"
            );
            assert_eq!(
                ProfileValue::parse(&value).map_err(|error| error.code()),
                Err("invalid_profile_value")
            );
        }
    }

    #[test]
    fn the_profile_string_limit_counts_characters_not_bytes() {
        // 1024 four-byte characters are 4096 bytes, far above 1024, and still accepted.
        let text = "😀".repeat(1024);
        assert_eq!(text.len(), 4096);
        assert!(ProfileValue::parse(&serde_json::Value::String(text)).is_ok());
    }

    #[test]
    fn null_arrays_and_objects_are_not_profile_values() {
        for value in [
            serde_json::Value::Null,
            serde_json::json!([]),
            serde_json::json!(["a"]),
            serde_json::json!({}),
            serde_json::json!({"a": 1}),
        ] {
            assert_eq!(
                ProfileValue::parse(&value),
                Err(FormatError::ProfileValue(
                    "must be a JSON string, number or boolean"
                )),
                "{value}"
            );
            assert_eq!(
                ProfileValue::parse(&value).map_err(|error| error.code()),
                Err("invalid_profile_value")
            );
        }
    }

    #[test]
    fn numbers_booleans_and_strings_are_profile_values_of_their_type() {
        let cases = [
            (serde_json::json!(0), ProfileType::Number),
            (serde_json::json!(-42), ProfileType::Number),
            (serde_json::json!(3.5), ProfileType::Number),
            (serde_json::json!(u64::MAX), ProfileType::Number),
            (serde_json::json!(1e308), ProfileType::Number),
            (serde_json::json!(true), ProfileType::Boolean),
            (serde_json::json!(false), ProfileType::Boolean),
            (serde_json::json!(""), ProfileType::String),
            (serde_json::json!("Europe/Paris"), ProfileType::String),
        ];
        for (value, value_type) in cases {
            let parsed = ProfileValue::parse(&value);
            assert_eq!(
                parsed.as_ref().map(ProfileValue::value_type),
                Ok(value_type),
                "{value}"
            );
            assert_eq!(parsed.map(|parsed| parsed.as_json().clone()), Ok(value));
        }
    }

    #[test]
    fn profile_types_parse_from_their_schema_names_only() {
        for value_type in [
            ProfileType::String,
            ProfileType::Number,
            ProfileType::Boolean,
        ] {
            assert_eq!(ProfileType::parse(value_type.as_str()), Ok(value_type));
        }
        for input in ["String", "int", "bool", ""] {
            assert_eq!(
                ProfileType::parse(input).map_err(|error| error.code()),
                Err("invalid_request"),
                "{input:?}"
            );
            assert!(matches!(
                ProfileType::parse(input),
                Err(FormatError::Other(_))
            ));
        }
    }

    // ---- assurance -----------------------------------------------------------------

    #[test]
    fn assurance_levels_parse_from_aal1_and_aal2_only() {
        assert_eq!(Assurance::parse("aal1"), Ok(Assurance::Aal1));
        assert_eq!(Assurance::parse("aal2"), Ok(Assurance::Aal2));
        assert_eq!(Assurance::Aal1.as_str(), "aal1");
        assert_eq!(Assurance::Aal2.as_str(), "aal2");
        for input in ["", "AAL1", "aal3", "aal0", " aal1", "aal"] {
            assert_eq!(
                Assurance::parse(input),
                Err(FormatError::Assurance),
                "{input:?}"
            );
            assert_eq!(
                Assurance::parse(input).map_err(|error| error.code()),
                Err("invalid_request")
            );
        }
    }

    #[test]
    fn aal2_ranks_above_aal1() {
        assert!(Assurance::Aal1 < Assurance::Aal2);
    }

    // ---- display names -------------------------------------------------------------

    #[test]
    fn display_names_of_1_to_200_characters_are_accepted_unchanged() {
        for input in ["A", "Acme Corp", "Société Générale"] {
            assert_eq!(
                DisplayName::parse(input).map(|name| name.as_str().to_owned()),
                Ok(input.to_owned())
            );
        }
        assert!(DisplayName::parse(&"é".repeat(200)).is_ok());
    }

    #[test]
    fn empty_or_overlong_display_names_are_rejected() {
        let detail = FormatError::DisplayName("must be 1 to 200 characters");
        assert_eq!(DisplayName::parse(""), Err(detail.clone()));
        assert_eq!(DisplayName::parse(&"é".repeat(201)), Err(detail));
        assert_eq!(
            DisplayName::parse("").map_err(|error| error.code()),
            Err("invalid_request")
        );
    }

    #[test]
    fn display_names_with_control_characters_are_rejected() {
        for input in ["Acme\nCorp", "Acme\u{0}", "Ac\u{7}me"] {
            assert_eq!(
                DisplayName::parse(input),
                Err(FormatError::DisplayName(
                    "must not contain control characters"
                )),
                "{input:?}"
            );
        }
    }

    #[test]
    fn display_names_with_surrounding_whitespace_are_rejected_not_trimmed() {
        for input in [" Acme", "Acme ", " ", "Acme\u{a0}"] {
            assert_eq!(
                DisplayName::parse(input),
                Err(FormatError::DisplayName(
                    "must not start or end with whitespace"
                )),
                "{input:?}"
            );
        }
    }

    // ---- passwords -----------------------------------------------------------------

    #[test]
    fn a_password_of_11_characters_is_rejected() {
        assert_eq!(
            Password::parse("abcdefghijk"),
            Err(FormatError::Password("must be at least 12 characters"))
        );
        assert_eq!(
            Password::parse("abcdefghijk").map_err(|error| error.code()),
            Err("invalid_request")
        );
        // 11 multibyte characters are 22 bytes and still too short: characters count.
        assert_eq!(
            Password::parse(&"é".repeat(11)),
            Err(FormatError::Password("must be at least 12 characters"))
        );
    }

    #[test]
    fn a_password_of_12_characters_is_accepted() {
        assert_eq!(
            Password::parse("abcdefghijkl").map(|password| password.expose().to_owned()),
            Ok("abcdefghijkl".to_owned())
        );
        assert!(Password::parse(&"é".repeat(12)).is_ok());
    }

    #[test]
    fn a_password_longer_than_1024_characters_is_rejected() {
        assert!(Password::parse(&"p".repeat(1024)).is_ok());
        assert_eq!(
            Password::parse(&"p".repeat(1025)),
            Err(FormatError::Password("must be at most 1024 characters"))
        );
    }

    #[test]
    fn an_offered_password_is_not_held_to_the_creation_rules() {
        assert_eq!(Password::offered("").expose(), "");
        assert_eq!(Password::offered("short").expose(), "short");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let secret = "correct horse battery staple";
        let password = Password::parse(secret);
        let shown = format!("{password:?} {:?}", Password::offered(secret));
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains("horse"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let pretty = format!("{:#?}", Password::offered(secret));
        assert!(!pretty.contains(secret), "{pretty}");
    }

    // ---- error codes ---------------------------------------------------------------

    #[test]
    fn every_format_error_maps_to_its_spec_code() {
        let cases = [
            (FormatError::TenantId("x"), "invalid_tenant_id"),
            (FormatError::UserId, "invalid_user_id"),
            (FormatError::Id, "invalid_request"),
            (FormatError::Email("x"), "invalid_email"),
            (FormatError::Role, "invalid_role"),
            (FormatError::Scope, "invalid_scope"),
            (FormatError::ProfileKey, "unknown_profile_key"),
            (FormatError::ProfileValue("x"), "invalid_profile_value"),
            (FormatError::Assurance, "invalid_request"),
            (FormatError::DisplayName("x"), "invalid_request"),
            (FormatError::Password("x"), "invalid_request"),
            (FormatError::Other("x"), "invalid_request"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn format_error_messages_are_lowercase_and_name_the_rule() {
        assert_eq!(
            FormatError::TenantId(TENANT_RESERVED).to_string(),
            "invalid tenant id: is reserved"
        );
        let message = FormatError::Scope.to_string();
        assert!(message.starts_with("invalid scope name"), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
}
