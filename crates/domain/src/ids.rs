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
        if trimmed.chars().count() > 254 {
            return Err(FormatError::Email("must be at most 254 characters"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FormatError::Email("must not contain whitespace"));
        }
        let mut parts = trimmed.split('@');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => {
                Ok(Self(trimmed.to_lowercase()))
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

    pub fn parse(input: &str) -> Result<Self, FormatError> {
        is_short_name(input)
            .then(|| Self(input.to_owned()))
            .ok_or(FormatError::Role)
    }

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
