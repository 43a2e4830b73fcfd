//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (RFC 7644 §3.5.2): a parser into a
//! typed tree, a canonical printer, and the in-memory evaluator that defines what a
//! filter means in this engine.
//!
//! # Grammar
//!
//! ```text
//! filter     = conjunction *("or" conjunction)          ; left-associative
//! conjunction= operand *("and" operand)                 ; left-associative
//! operand    = "(" filter ")" / "not" "(" filter ")" / valuePath / attrExp
//! valuePath  = attrPath "[" filter "]"                  ; no value path inside the brackets
//! attrExp    = attrPath "pr" / attrPath compareOp compValue
//! attrPath   = [URI ":"] ATTRNAME ["." ATTRNAME]        ; URI = everything before the last ':'
//! ATTRNAME   = ALPHA *(ALPHA / DIGIT / "-" / "_") / "$ref"
//! compValue  = "false" / "null" / "true" / JSON number / JSON string
//! PATH       = attrPath ["[" filter "]" ["." ATTRNAME]]  ; parse_path only
//! ```
//!
//! `not` and parentheses bind tightest, then `and`, then `or`. Operators, the keywords
//! `and`, `or`, `not`, `pr` and the literals `true`, `false`, `null` are case-insensitive
//! (Entra sends `True`). Tokens are separated by any run of ASCII whitespace; a `[` must
//! follow its attribute path directly. A keyword is only a keyword where the grammar
//! expects one, so an attribute may be named `and` or `not` (`not eq "x"`). `not` needs its
//! parentheses, as in the RFC. Literal and operator must agree: `co`/`sw`/`ew` take a
//! string, `gt`/`ge`/`lt`/`le` a string or a number; anything else is `invalidFilter`.
//!
//! Limits: at most [`MAX_INPUT_LEN`] bytes, and at most [`MAX_DEPTH`] levels of nesting,
//! where each `(…)`, `not (…)` and `[…]` is one level; the parser recurses only there, so
//! no input overflows the stack. `and`/`or` chains are loops, bounded by the length limit.
//!
//! # Evaluation semantics
//!
//! [`matches`] is the reference the SQL translation must mirror (a property test is to
//! compare the two), so every rule is deliberately simple:
//!
//! 1. A record gives, for an attribute path, a list of [`Value`]s ([`Attributes::values`]).
//!    Empty strings are dropped first: an empty string is no value, exactly like null
//!    (SQL: `nullif(column, '')`). An attribute is *present* iff a value remains.
//! 2. `pr` holds iff the attribute is present. `eq null` holds iff it is not present,
//!    `ne null` iff it is. Any other operator with `null` is false.
//! 3. `ne` is the negation of `eq` over the whole attribute: it holds iff no value equals
//!    the literal — so `ne` on a missing attribute holds, and `emails ne "a@x"` means "no
//!    email is a@x".
//! 4. Every other operator holds iff at least one value satisfies it (the RFC's rule for
//!    multi-valued attributes; a single-valued attribute has one value).
//! 5. Per value, by kind (a value and a literal of different kinds never satisfy anything):
//!    - string vs string: every attribute is treated as `caseExact: false`, which is
//!      what `userName`, `displayName` and `emails.value` are; `externalId` and `id`
//!      (`caseExact: true` in RFC 7643) are compared the same way, on purpose, so the
//!      rule stays one rule. Both sides are ASCII-lowercased (non-ASCII letters compare
//!      exactly, as both SQLite's `lower` and a `C`-collation PostgreSQL do); `eq`,
//!      `co`, `sw`, `ew` then compare exactly, and `gt`/`ge`/`lt`/`le` compare the
//!      lowercased strings byte by byte (code point order; SQL: `collate "C"`).
//!    - timestamp vs string: the literal is parsed as RFC 3339 and compared by instant
//!      with `eq`/`gt`/`ge`/`lt`/`le`; a literal that is not RFC 3339 satisfies nothing,
//!      and neither do `co`/`sw`/`ew`.
//!    - number vs number: numerically; exactly when both are integers, otherwise as
//!      `f64`. `co`/`sw`/`ew` satisfy nothing.
//!    - boolean vs boolean: only `eq` (and so `ne`).
//! 6. `attr[filter]` holds iff one element of the multi-valued complex attribute
//!    ([`Attributes::elements`]) satisfies `filter` on its own: `emails[type eq "work" and
//!    value co "@x"]` needs one email that is both (SQL: `exists (… where … and …)`).
//! 7. `and`, `or`, `not` are the boolean connectives: there is no "unknown".

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde_json::Number;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The longest filter or path accepted, in bytes.
pub const MAX_INPUT_LEN: usize = 4096;
/// The deepest nesting accepted: each `(…)`, `not (…)` and `[…]` is one level.
pub const MAX_DEPTH: usize = 32;
/// The core User schema URN; an attribute path may carry it as a prefix.
pub const CORE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema URN; an attribute path may carry it as a prefix.
pub const CORE_GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise User extension URN (`department`, `manager`, …).
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Schema prefixes that [`AttrPath::is`] ignores: the attribute names they hold do not
/// collide in this engine.
const KNOWN_SCHEMAS: [&str; 3] = [CORE_USER_SCHEMA, CORE_GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA];

/// Why a filter or a PATCH path was refused; SCIM's `invalidFilter`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    message: String,
}

impl FilterError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// What is wrong, for a human (the SCIM error's `detail`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The SCIM `scimType` of this error (RFC 7644 §3.12).
    pub fn scim_type(&self) -> &'static str {
        "invalidFilter"
    }
}

/// An attribute path: `userName`, `name.familyName`, `urn:…:enterprise:2.0:User:department`.
///
/// Names are kept as written; the derived `PartialEq` is therefore exact (what a
/// round trip needs), while [`AttrPath::is`] is the case-insensitive comparison SCIM
/// means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, without its trailing `:`.
    pub schema: Option<String>,
    /// The attribute name.
    pub name: String,
    /// The sub-attribute name, after the `.`.
    pub sub: Option<String>,
}

impl AttrPath {
    /// A path with neither schema prefix nor sub-attribute.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            schema: None,
            name: name.into(),
            sub: None,
        }
    }

    /// Parses a lone attribute path (`[URI ":"] ATTRNAME ["." ATTRNAME]`).
    ///
    /// # Errors
    /// A [`FilterError`] when `input` is not one.
    pub fn parse(input: &str) -> Result<Self, FilterError> {
        attr_path(input, 0)
    }

    /// Whether this path names `dotted` (`"name"` or `"name.sub"`), ignoring ASCII case
    /// and a core User, core Group or enterprise User schema prefix. A path with any other
    /// schema prefix names nothing here.
    pub fn is(&self, dotted: &str) -> bool {
        let schema_ignored = self.schema.as_deref().is_none_or(|schema| {
            KNOWN_SCHEMAS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(schema))
        });
        let (name, sub) = match dotted.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (dotted, None),
        };
        let sub_matches = match (self.sub.as_deref(), sub) {
            (None, None) => true,
            (Some(ours), Some(theirs)) => ours.eq_ignore_ascii_case(theirs),
            _ => false,
        };
        schema_ignored && sub_matches && self.name.eq_ignore_ascii_case(name)
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{schema}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A comparison operator (RFC 7644 table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains.
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    /// Every operator, in the RFC's order.
    pub const ALL: [Self; 9] = [
        Self::Eq,
        Self::Ne,
        Self::Co,
        Self::Sw,
        Self::Ew,
        Self::Gt,
        Self::Ge,
        Self::Lt,
        Self::Le,
    ];

    /// The operator's canonical (lowercase) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }

    fn from_keyword(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The literal a comparison compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number. `serde_json::Number` rather than `f64`: integers stay exact (ids,
    /// counters beyond 2^53), the type is `Eq` (it cannot hold NaN or infinity), and it
    /// prints back as the JSON it came from. Fractions are parsed with the standard
    /// library's correctly rounded parser, so printing and parsing again gives the same
    /// number.
    Number(Number),
    /// A JSON string, unescaped.
    Str(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(value) => write!(f, "{value}"),
            Self::Number(number) => write!(f, "{number}"),
            Self::Str(string) => {
                f.write_str(&serde_json::to_string(string).map_err(|_| fmt::Error)?)
            }
        }
    }
}

/// A parsed SCIM filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `attrPath compareOp compValue`.
    Compare(AttrPath, CompareOp, CompValue),
    /// `attrPath pr`.
    Present(AttrPath),
    /// `left and right`.
    And(Box<Filter>, Box<Filter>),
    /// `left or right`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// `attrPath[filter]`: one element of a multi-valued complex attribute satisfies the
    /// inner filter, whose paths name the element's sub-attributes.
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    /// `left and right`.
    pub fn and(left: Self, right: Self) -> Self {
        Self::And(Box::new(left), Box::new(right))
    }

    /// `left or right`.
    pub fn or(left: Self, right: Self) -> Self {
        Self::Or(Box::new(left), Box::new(right))
    }

    /// `not (inner)`.
    pub fn negate(inner: Self) -> Self {
        Self::Not(Box::new(inner))
    }
}

/// Prints the canonical form: lowercase keywords and operators, single spaces, JSON
/// literals, and parentheses exactly where precedence or left-associativity needs them.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compare(path, op, value) => write!(f, "{path} {op} {value}"),
            Self::Present(path) => write!(f, "{path} pr"),
            Self::And(left, right) => {
                write_operand(f, left, matches!(**left, Self::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, right, matches!(**right, Self::And(..) | Self::Or(..)))
            }
            Self::Or(left, right) => {
                write_operand(f, left, false)?;
                f.write_str(" or ")?;
                write_operand(f, right, matches!(**right, Self::Or(..)))
            }
            Self::Not(inner) => write!(f, "not ({inner})"),
            Self::ValuePath(path, inner) => write!(f, "{path}[{inner}]"),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Filter, parenthesise: bool) -> fmt::Result {
    if parenthesise {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input)
    }
}

/// A PATCH operation's `path` (RFC 7644 §3.5.2): `members`, `name.givenName`,
/// `emails[type eq "work"].value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchPath {
    /// The attribute the operation targets.
    pub attr: AttrPath,
    /// The filter selecting elements of a multi-valued attribute, from `[…]`.
    pub filter: Option<Filter>,
    /// The sub-attribute of the selected elements, from `].sub`.
    pub sub: Option<String>,
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
            if let Some(sub) = &self.sub {
                write!(f, ".{sub}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for PatchPath {
    type Err = FilterError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse_path(input)
    }
}

/// Parses a SCIM filter (the `filter` query parameter or a search body's `filter`).
///
/// # Errors
/// A [`FilterError`] (`invalidFilter`) when `input` is longer than [`MAX_INPUT_LEN`],
/// nests deeper than [`MAX_DEPTH`], or is not a filter.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser::new(input)?;
    let filter = parser.filter(false)?;
    parser.end()?;
    Ok(filter)
}

/// Parses a PATCH operation's `path`: `attrPath`, or `attrPath[filter]` optionally
/// followed by `.subAttr`.
///
/// # Errors
/// A [`FilterError`] when `input` is not a path, under the same limits as [`parse`].
pub fn parse_path(input: &str) -> Result<PatchPath, FilterError> {
    let mut parser = Parser::new(input)?;
    let token = parser.lexer.next()?;
    let TokenKind::Word(word) = token.kind else {
        return Err(FilterError::new(format!(
            "expected an attribute path at byte {}, found {}",
            token.start,
            describe(&token.kind)
        )));
    };
    let attr = attr_path(word, token.start)?;
    let mut filter = None;
    let mut sub = None;
    let next = parser.lexer.peek()?;
    if next.kind == TokenKind::LBracket && next.start == token.end {
        let close_end = {
            let open = parser.lexer.next()?;
            parser.enter(open.start)?;
            filter = Some(parser.filter(true)?);
            let close = parser.close(&TokenKind::RBracket, &open)?;
            parser.leave();
            close.end
        };
        let after = parser.lexer.peek()?;
        if let TokenKind::Word(word) = after.kind {
            let at = after.start;
            let name = word.strip_prefix('.').filter(|_| at == close_end);
            let name = name.ok_or_else(|| {
                FilterError::new(format!(
                    "expected '.' and a sub-attribute right after ']' at byte {at}, found {}",
                    shown(word)
                ))
            })?;
            check_name(name, at)?;
            sub = Some(name.to_owned());
            parser.lexer.next()?;
        }
    }
    parser.end()?;
    Ok(PatchPath { attr, filter, sub })
}

/// A value a record holds for an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string (`userName`, `emails.value`, …).
    Str(String),
    /// A boolean (`active`).
    Bool(bool),
    /// A number.
    Number(Number),
    /// A timestamp (`meta.created`, `meta.lastModified`).
    DateTime(OffsetDateTime),
}

/// What a record holds, as a filter sees it.
///
/// Implementations MUST compare attribute names case-insensitively (use
/// [`AttrPath::is`]) and return nothing for attributes they do not have.
pub trait Attributes {
    /// The values of the attribute at `path`: none for a missing or null attribute, one
    /// for a single-valued one, each value for a multi-valued one. For a multi-valued
    /// complex attribute named without a sub-attribute (`emails`), the values of its
    /// `value` sub-attribute; for `emails.value`, the same.
    fn values(&self, path: &AttrPath) -> Vec<Value>;

    /// The elements of the multi-valued complex attribute at `path` (each email, each
    /// member), each seen as a record whose attributes are the element's sub-attributes
    /// (`type`, `value`, `primary`). None for any other attribute.
    fn elements(&self, path: &AttrPath) -> Vec<Box<dyn Attributes + '_>>;
}

impl<T: Attributes + ?Sized> Attributes for &T {
    fn values(&self, path: &AttrPath) -> Vec<Value> {
        (**self).values(path)
    }

    fn elements(&self, path: &AttrPath) -> Vec<Box<dyn Attributes + '_>> {
        (**self).elements(path)
    }
}

/// Whether `record` satisfies `filter`, under the semantics in the module documentation.
pub fn matches(filter: &Filter, record: &impl Attributes) -> bool {
    evaluate(filter, record)
}

fn evaluate(filter: &Filter, record: &dyn Attributes) -> bool {
    match filter {
        Filter::Compare(path, op, literal) => compare(&present_values(record, path), *op, literal),
        Filter::Present(path) => !present_values(record, path).is_empty(),
        Filter::And(left, right) => evaluate(left, record) && evaluate(right, record),
        Filter::Or(left, right) => evaluate(left, record) || evaluate(right, record),
        Filter::Not(inner) => !evaluate(inner, record),
        Filter::ValuePath(path, inner) => record
            .elements(path)
            .iter()
            .any(|element| evaluate(inner, element.as_ref())),
    }
}

/// The attribute's values without empty strings, which count as no value.
fn present_values(record: &dyn Attributes, path: &AttrPath) -> Vec<Value> {
    let mut values = record.values(path);
    values.retain(|value| !matches!(value, Value::Str(string) if string.is_empty()));
    values
}

fn compare(values: &[Value], op: CompareOp, literal: &CompValue) -> bool {
    match (op, literal) {
        (CompareOp::Eq, CompValue::Null) => values.is_empty(),
        (CompareOp::Ne, CompValue::Null) => !values.is_empty(),
        (_, CompValue::Null) => false,
        (CompareOp::Ne, _) => !values
            .iter()
            .any(|value| satisfies(value, CompareOp::Eq, literal)),
        _ => values.iter().any(|value| satisfies(value, op, literal)),
    }
}

/// Whether one value satisfies `op literal`; values and literals of different kinds
/// satisfy nothing.
fn satisfies(value: &Value, op: CompareOp, literal: &CompValue) -> bool {
    match (value, literal) {
        (Value::Str(value), CompValue::Str(literal)) => compare_strings(value, op, literal),
        (Value::DateTime(value), CompValue::Str(literal)) => {
            OffsetDateTime::parse(literal, &Rfc3339)
                .is_ok_and(|literal| ordering_satisfies(value.cmp(&literal), op))
        }
        (Value::Number(value), CompValue::Number(literal)) => {
            compare_numbers(value, literal).is_some_and(|ordering| ordering_satisfies(ordering, op))
        }
        (Value::Bool(value), CompValue::Bool(literal)) => match op {
            CompareOp::Eq => value == literal,
            CompareOp::Ne => value != literal,
            _ => false,
        },
        _ => false,
    }
}

fn compare_strings(value: &str, op: CompareOp, literal: &str) -> bool {
    let value = value.to_ascii_lowercase();
    let literal = literal.to_ascii_lowercase();
    match op {
        CompareOp::Co => value.contains(&literal),
        CompareOp::Sw => value.starts_with(&literal),
        CompareOp::Ew => value.ends_with(&literal),
        _ => ordering_satisfies(value.as_bytes().cmp(literal.as_bytes()), op),
    }
}

fn compare_numbers(value: &Number, literal: &Number) -> Option<Ordering> {
    match (exact_integer(value), exact_integer(literal)) {
        (Some(value), Some(literal)) => Some(value.cmp(&literal)),
        _ => value.as_f64()?.partial_cmp(&literal.as_f64()?),
    }
}

fn exact_integer(number: &Number) -> Option<i128> {
    number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
}

/// Whether an ordering of value against literal satisfies an ordering operator;
/// substring operators are never satisfied by an ordering.
fn ordering_satisfies(ordering: Ordering, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Word(&'a str),
    Str(String),
    End,
}

#[derive(Debug, Clone)]
struct Token<'a> {
    kind: TokenKind<'a>,
    /// Byte offset of the token's first character.
    start: usize,
    /// Byte offset just past the token.
    end: usize,
}

fn describe(kind: &TokenKind<'_>) -> String {
    match kind {
        TokenKind::LParen => "'('".to_owned(),
        TokenKind::RParen => "')'".to_owned(),
        TokenKind::LBracket => "'['".to_owned(),
        TokenKind::RBracket => "']'".to_owned(),
        TokenKind::Word(word) => shown(word),
        TokenKind::Str(_) => "a string".to_owned(),
        TokenKind::End => "the end of the input".to_owned(),
    }
}

/// A word from the input for an error message, quoted and cut short.
fn shown(word: &str) -> String {
    const SHOWN_CHARS: usize = 40;
    let mut shown: String = word.chars().take(SHOWN_CHARS).collect();
    if shown.len() < word.len() {
        shown.push('…');
    }
    format!("'{shown}'")
}

#[derive(Debug)]
struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    peeked: Option<Token<'a>>,
}

impl<'a> Lexer<'a> {
    fn peek(&mut self) -> Result<&Token<'a>, FilterError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lex()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn next(&mut self) -> Result<Token<'a>, FilterError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lex(),
        }
    }

    fn lex(&mut self) -> Result<Token<'a>, FilterError> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let text = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let start = self.pos + (rest.len() - text.len());
        let Some(first) = text.chars().next() else {
            self.pos = start;
            return Ok(Token {
                kind: TokenKind::End,
                start,
                end: start,
            });
        };
        let single = match first {
            '(' => Some(TokenKind::LParen),
            ')' => Some(TokenKind::RParen),
            '[' => Some(TokenKind::LBracket),
            ']' => Some(TokenKind::RBracket),
            _ => None,
        };
        let (kind, len) = if let Some(kind) = single {
            (kind, 1)
        } else if first == '"' {
            let len = string_len(text).ok_or_else(|| {
                FilterError::new(format!("unterminated string starting at byte {start}"))
            })?;
            let literal = text.get(..len).unwrap_or_default();
            let string = serde_json::from_str(literal).map_err(|_| {
                FilterError::new(format!("invalid JSON string starting at byte {start}"))
            })?;
            (TokenKind::Str(string), len)
        } else {
            let len = text
                .find(|c: char| c.is_ascii_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"'))
                .unwrap_or(text.len());
            (TokenKind::Word(text.get(..len).unwrap_or_default()), len)
        };
        self.pos = start + len;
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }
}

/// The byte length of the JSON string token `text` starts with (quotes included), if
/// it is closed.
fn string_len(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (index, c) in text.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(index + 1);
        }
    }
    None
}

#[derive(Debug)]
struct Parser<'a> {
    lexer: Lexer<'a>,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Result<Self, FilterError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(FilterError::new(format!(
                "filter is {} bytes long, more than the {MAX_INPUT_LEN} allowed",
                input.len()
            )));
        }
        Ok(Self {
            lexer: Lexer {
                input,
                pos: 0,
                peeked: None,
            },
            depth: 0,
        })
    }

    fn enter(&mut self, at: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::new(format!(
                "filter nests deeper than {MAX_DEPTH} levels at byte {at}"
            )));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// `conjunction *("or" conjunction)`.
    fn filter(&mut self, in_value_path: bool) -> Result<Filter, FilterError> {
        let mut filter = self.conjunction(in_value_path)?;
        while self.keyword_next("or")? {
            self.lexer.next()?;
            filter = Filter::or(filter, self.conjunction(in_value_path)?);
        }
        Ok(filter)
    }

    /// `operand *("and" operand)`.
    fn conjunction(&mut self, in_value_path: bool) -> Result<Filter, FilterError> {
        let mut filter = self.operand(in_value_path)?;
        while self.keyword_next("and")? {
            self.lexer.next()?;
            filter = Filter::and(filter, self.operand(in_value_path)?);
        }
        Ok(filter)
    }

    fn keyword_next(&mut self, keyword: &str) -> Result<bool, FilterError> {
        Ok(
            matches!(self.lexer.peek()?.kind, TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword)),
        )
    }

    fn operand(&mut self, in_value_path: bool) -> Result<Filter, FilterError> {
        let token = self.lexer.next()?;
        match token.kind {
            TokenKind::LParen => self.parenthesised(&token, in_value_path),
            TokenKind::Word(word) => {
                if word.eq_ignore_ascii_case("not") && self.lexer.peek()?.kind == TokenKind::LParen
                {
                    let open = self.lexer.next()?;
                    return Ok(Filter::negate(self.parenthesised(&open, in_value_path)?));
                }
                let path = attr_path(word, token.start)?;
                let next = self.lexer.peek()?;
                if next.kind == TokenKind::LBracket && next.start == token.end {
                    if in_value_path {
                        return Err(FilterError::new(format!(
                            "a value filter cannot hold another one, at byte {}",
                            next.start
                        )));
                    }
                    let open = self.lexer.next()?;
                    self.enter(open.start)?;
                    let inner = self.filter(true)?;
                    self.close(&TokenKind::RBracket, &open)?;
                    self.leave();
                    return Ok(Filter::ValuePath(path, Box::new(inner)));
                }
                self.attribute_expression(path, word)
            }
            other => Err(FilterError::new(format!(
                "expected an attribute, '(' or 'not (' at byte {}, found {}",
                token.start,
                describe(&other)
            ))),
        }
    }

    /// The rest of `( filter )` once `open` is read.
    fn parenthesised(
        &mut self,
        open: &Token<'_>,
        in_value_path: bool,
    ) -> Result<Filter, FilterError> {
        self.enter(open.start)?;
        let inner = self.filter(in_value_path)?;
        self.close(&TokenKind::RParen, open)?;
        self.leave();
        Ok(inner)
    }

    /// Reads the token closing `open`.
    fn close(
        &mut self,
        expected: &TokenKind<'_>,
        open: &Token<'_>,
    ) -> Result<Token<'a>, FilterError> {
        let token = self.lexer.next()?;
        if token.kind == *expected {
            return Ok(token);
        }
        Err(FilterError::new(format!(
            "expected {} at byte {} to close {} at byte {}, found {}",
            describe(expected),
            token.start,
            describe(&open.kind),
            open.start,
            describe(&token.kind)
        )))
    }

    /// `"pr"` or `compareOp compValue`, after the attribute path `word`.
    fn attribute_expression(&mut self, path: AttrPath, word: &str) -> Result<Filter, FilterError> {
        let token = self.lexer.next()?;
        let op = match token.kind {
            TokenKind::Word(op) if op.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path))
            }
            TokenKind::Word(op) => CompareOp::from_keyword(op),
            _ => None,
        };
        let Some(op) = op else {
            if word.eq_ignore_ascii_case("not") {
                return Err(FilterError::new(
                    "'not' takes a filter in parentheses: not (…)",
                ));
            }
            return Err(FilterError::new(format!(
                "expected an operator (pr, eq, ne, co, sw, ew, gt, ge, lt, le) at byte {}, found {}",
                token.start,
                describe(&token.kind)
            )));
        };
        let token = self.lexer.next()?;
        let value = match token.kind {
            TokenKind::Str(string) => CompValue::Str(string),
            TokenKind::Word(word) => literal(word, token.start)?,
            other => {
                return Err(FilterError::new(format!(
                    "expected a value after '{op}' at byte {}, found {}",
                    token.start,
                    describe(&other)
                )))
            }
        };
        let fits = match op {
            CompareOp::Eq | CompareOp::Ne => true,
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => matches!(value, CompValue::Str(_)),
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                matches!(value, CompValue::Str(_) | CompValue::Number(_))
            }
        };
        if !fits {
            return Err(FilterError::new(format!(
                "'{op}' cannot compare with {value} at byte {}",
                token.start
            )));
        }
        Ok(Filter::Compare(path, op, value))
    }

    fn end(&mut self) -> Result<(), FilterError> {
        let token = self.lexer.next()?;
        if token.kind == TokenKind::End {
            return Ok(());
        }
        Err(FilterError::new(format!(
            "unexpected {} at byte {}",
            describe(&token.kind),
            token.start
        )))
    }
}

/// A literal that is not a string: `true`, `false`, `null` (any case) or a JSON number.
fn literal(word: &str, at: usize) -> Result<CompValue, FilterError> {
    for (keyword, value) in [
        ("true", CompValue::Bool(true)),
        ("false", CompValue::Bool(false)),
        ("null", CompValue::Null),
    ] {
        if word.eq_ignore_ascii_case(keyword) {
            return Ok(value);
        }
    }
    let not_a_value = || {
        FilterError::new(format!(
            "expected a value (a quoted string, a number, true, false or null) at byte {at}, found {}",
            shown(word)
        ))
    };
    if !word.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(not_a_value());
    }
    // serde_json checks the JSON number grammar and range; a fraction is then parsed
    // again by the standard library, which rounds correctly where serde_json (without
    // its `float_roundtrip` feature) may be one unit off.
    let number: Number = serde_json::from_str(word).map_err(|_| not_a_value())?;
    if number.is_f64() {
        let precise = word
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .ok_or_else(not_a_value)?;
        return Ok(CompValue::Number(precise));
    }
    Ok(CompValue::Number(number))
}

/// `[URI ":"] ATTRNAME ["." ATTRNAME]`, where the URI is everything before the last `:`.
fn attr_path(word: &str, at: usize) -> Result<AttrPath, FilterError> {
    let (schema, dotted) = match word.rsplit_once(':') {
        Some((schema, dotted)) => {
            let valid = schema.starts_with(|c: char| c.is_ascii_alphabetic())
                && schema.chars().all(|c| c.is_ascii_graphic());
            if !valid {
                return Err(FilterError::new(format!(
                    "invalid schema URI in {} at byte {at}",
                    shown(word)
                )));
            }
            (Some(schema.to_owned()), dotted)
        }
        None => (None, word),
    };
    let (name, sub) = match dotted.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (dotted, None),
    };
    check_name(name, at)?;
    if let Some(sub) = sub {
        check_name(sub, at)?;
    }
    Ok(AttrPath {
        schema,
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

/// `ATTRNAME = ALPHA *(ALPHA / DIGIT / "-" / "_")`, or RFC 7643's `$ref`.
fn check_name(name: &str, at: usize) -> Result<(), FilterError> {
    let mut chars = name.chars();
    let valid = name.eq_ignore_ascii_case("$ref")
        || (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if valid {
        Ok(())
    } else {
        Err(FilterError::new(format!(
            "invalid attribute name {} at byte {at}",
            shown(name)
        )))
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
    use time::macros::datetime;

    use super::*;

    // ---- helpers ----------------------------------------------------------------------

    fn path(dotted: &str) -> AttrPath {
        AttrPath::parse(dotted).unwrap()
    }

    fn string(value: &str) -> CompValue {
        CompValue::Str(value.to_owned())
    }

    fn cmp(dotted: &str, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare(path(dotted), op, value)
    }

    fn present(dotted: &str) -> Filter {
        Filter::Present(path(dotted))
    }

    fn roundtrips(filter: &Filter) {
        let text = filter.to_string();
        assert_eq!(parse(&text).as_ref(), Ok(filter), "{text}");
    }

    /// A record in memory: named values, and named lists of element records.
    #[derive(Debug, Clone, Default)]
    struct Record {
        attributes: Vec<(String, Vec<Value>)>,
        complex: Vec<(String, Vec<Record>)>,
    }

    impl Record {
        fn with(mut self, name: &str, values: Vec<Value>) -> Self {
            self.attributes.push((name.to_owned(), values));
            self
        }

        fn with_elements(mut self, name: &str, elements: Vec<Record>) -> Self {
            self.complex.push((name.to_owned(), elements));
            self
        }
    }

    impl Attributes for Record {
        fn values(&self, path: &AttrPath) -> Vec<Value> {
            self.attributes
                .iter()
                .filter(|(name, _)| path.is(name))
                .flat_map(|(_, values)| values.iter().cloned())
                .collect()
        }

        fn elements(&self, path: &AttrPath) -> Vec<Box<dyn Attributes + '_>> {
            self.complex
                .iter()
                .filter(|(name, _)| path.is(name))
                .flat_map(|(_, elements)| elements.iter())
                .map(|element| Box::new(element) as Box<dyn Attributes + '_>)
                .collect()
        }
    }

    fn s(value: &str) -> Value {
        Value::Str(value.to_owned())
    }

    fn email(kind: &str, address: &str) -> Record {
        Record::default()
            .with("type", vec![s(kind)])
            .with("value", vec![s(address)])
    }

    fn bjensen() -> Record {
        let addresses = vec![s("bjensen@example.com"), s("babs@jensen.org")];
        Record::default()
            .with("userName", vec![s("Bjensen")])
            .with("externalId", vec![s("abc")])
            .with("name.familyName", vec![s("O'Malley-Jensen")])
            .with("title", vec![s("Tour Guide")])
            .with("userType", vec![s("Employee")])
            .with("nickName", vec![s("")])
            .with("active", vec![Value::Bool(true)])
            .with("age", vec![Value::Number(Number::from(42))])
            .with(
                "meta.lastModified",
                vec![Value::DateTime(datetime!(2011-05-13 05:00:00 UTC))],
            )
            .with(
                "schemas",
                vec![s(CORE_USER_SCHEMA), s(ENTERPRISE_USER_SCHEMA)],
            )
            .with("emails", addresses.clone())
            .with("emails.value", addresses)
            .with_elements(
                "emails",
                vec![
                    email("work", "bjensen@example.com"),
                    email("home", "babs@jensen.org"),
                ],
            )
    }

    fn holds(filter: &str, record: &Record) -> bool {
        matches(&parse(filter).unwrap(), record)
    }

    // ---- parsing ----------------------------------------------------------------------

    const RFC_EXAMPLES: [&str; 13] = [
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        "title pr",
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    ];

    #[test]
    fn every_rfc_7644_example_parses_and_prints_back_to_itself() {
        for example in RFC_EXAMPLES {
            let filter = parse(example).unwrap_or_else(|e| panic!("{example}: {e}"));
            assert_eq!(filter.to_string(), example);
            roundtrips(&filter);
        }
    }

    #[test]
    fn rfc_examples_parse_to_the_expected_trees() {
        assert_eq!(
            parse(r#"userName eq "bjensen""#),
            Ok(cmp("userName", CompareOp::Eq, string("bjensen")))
        );
        assert_eq!(
            parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#),
            Ok(Filter::Compare(
                AttrPath {
                    schema: Some(CORE_USER_SCHEMA.to_owned()),
                    name: "userName".to_owned(),
                    sub: None,
                },
                CompareOp::Sw,
                string("J")
            ))
        );
        assert_eq!(
            parse(r#"name.familyName co "O'Malley""#),
            Ok(Filter::Compare(
                AttrPath {
                    schema: None,
                    name: "name".to_owned(),
                    sub: Some("familyName".to_owned()),
                },
                CompareOp::Co,
                string("O'Malley")
            ))
        );
        assert_eq!(
            parse(
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#
            ),
            Ok(Filter::and(
                cmp("userType", CompareOp::Ne, string("Employee")),
                Filter::negate(Filter::or(
                    cmp("emails", CompareOp::Co, string("example.com")),
                    cmp("emails.value", CompareOp::Co, string("example.org")),
                ))
            ))
        );
        assert_eq!(
            parse(
                r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#
            ),
            Ok(Filter::and(
                cmp("userType", CompareOp::Eq, string("Employee")),
                Filter::ValuePath(
                    path("emails"),
                    Box::new(Filter::and(
                        cmp("type", CompareOp::Eq, string("work")),
                        cmp("value", CompareOp::Co, string("@example.com")),
                    ))
                )
            ))
        );
    }

    #[test]
    fn what_okta_and_entra_send_parses() {
        assert_eq!(
            parse(r#"userName eq "someone@example.com""#),
            Ok(cmp(
                "userName",
                CompareOp::Eq,
                string("someone@example.com")
            ))
        );
        assert_eq!(
            parse(r#"externalId eq "abc""#),
            Ok(cmp("externalId", CompareOp::Eq, string("abc")))
        );
        assert_eq!(
            parse(r#"userName eq "A" and active eq True"#),
            Ok(Filter::and(
                cmp("userName", CompareOp::Eq, string("A")),
                cmp("active", CompareOp::Eq, CompValue::Bool(true)),
            ))
        );
        assert_eq!(
            parse(r#"displayName eq "Group A""#),
            Ok(cmp("displayName", CompareOp::Eq, string("Group A")))
        );
    }

    #[test]
    fn keywords_operators_and_literals_are_case_insensitive() {
        assert_eq!(
            parse(r#"title PR AND userName Eq "x" OR NOT (active EQ FALSE) or x eq NuLl"#),
            Ok(Filter::or(
                Filter::or(
                    Filter::and(
                        present("title"),
                        cmp("userName", CompareOp::Eq, string("x"))
                    ),
                    Filter::negate(cmp("active", CompareOp::Eq, CompValue::Bool(false))),
                ),
                cmp("x", CompareOp::Eq, CompValue::Null),
            ))
        );
        for op in CompareOp::ALL {
            let upper = format!(r#"a {} "1""#, op.as_str().to_ascii_uppercase());
            assert_eq!(parse(&upper), Ok(cmp("a", op, string("1"))));
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_both_associate_left() {
        let (a, b, c) = (present("a"), present("b"), present("c"));
        assert_eq!(
            parse("a pr or b pr and c pr"),
            Ok(Filter::or(a.clone(), Filter::and(b.clone(), c.clone())))
        );
        assert_eq!(
            parse("a pr and b pr or c pr"),
            Ok(Filter::or(Filter::and(a.clone(), b.clone()), c.clone()))
        );
        assert_eq!(
            parse("a pr and b pr and c pr"),
            Ok(Filter::and(Filter::and(a.clone(), b.clone()), c.clone()))
        );
        assert_eq!(
            parse("a pr or b pr or c pr"),
            Ok(Filter::or(Filter::or(a.clone(), b.clone()), c.clone()))
        );
        assert_eq!(
            parse("(a pr or b pr) and c pr"),
            Ok(Filter::and(Filter::or(a.clone(), b.clone()), c.clone()))
        );
        assert_eq!(
            parse("not (a pr) and b pr"),
            Ok(Filter::and(Filter::negate(a.clone()), b.clone()))
        );
        assert_eq!(
            Filter::or(a.clone(), Filter::or(b.clone(), c.clone())).to_string(),
            "a pr or (b pr or c pr)"
        );
        assert_eq!(
            Filter::and(Filter::or(a.clone(), b.clone()), c.clone()).to_string(),
            "(a pr or b pr) and c pr"
        );
        assert_eq!(
            Filter::and(a, Filter::and(b, c)).to_string(),
            "a pr and (b pr and c pr)"
        );
    }

    #[test]
    fn literals_are_json_strings_and_numbers() {
        assert_eq!(
            parse(r#"displayName eq "say \"hi\"\u00e9\\\n""#),
            Ok(cmp("displayName", CompareOp::Eq, string("say \"hi\"é\\\n")))
        );
        assert_eq!(
            parse("age ge -12"),
            Ok(cmp("age", CompareOp::Ge, CompValue::Number((-12).into())))
        );
        assert_eq!(
            parse("score lt 1.5e2"),
            Ok(cmp(
                "score",
                CompareOp::Lt,
                CompValue::Number(Number::from_f64(150.0).unwrap())
            ))
        );
        assert_eq!(
            parse("big eq 18446744073709551615"),
            Ok(cmp(
                "big",
                CompareOp::Eq,
                CompValue::Number(u64::MAX.into())
            ))
        );
        assert_eq!(
            parse(r#"members[$ref eq "https://x/Users/1"]"#).map(|f| f.to_string()),
            Ok(r#"members[$ref eq "https://x/Users/1"]"#.to_owned())
        );
    }

    #[test]
    fn attributes_may_be_named_like_keywords() {
        assert_eq!(
            parse(r#"not eq "x""#),
            Ok(cmp("not", CompareOp::Eq, string("x")))
        );
        assert_eq!(
            parse("and pr and or pr or pr pr"),
            Ok(Filter::or(
                Filter::and(present("and"), present("or")),
                present("pr")
            ))
        );
        assert_eq!(
            parse("not[value pr]"),
            Ok(Filter::ValuePath(path("not"), Box::new(present("value"))))
        );
    }

    #[test]
    fn malformed_filters_are_refused_as_invalid_filter() {
        let refused = [
            "",
            "   ",
            r#"(userName eq "a""#,
            r#"userName eq "a")"#,
            r#"((userName eq "a")"#,
            "userName eq",
            "userName",
            r#"userName xx "a""#,
            r#"userName equals "a""#,
            r#"userName eq "a" garbage"#,
            r#"userName eq "a" "b""#,
            r#"userName eq "a" and"#,
            r#"and userName eq "a""#,
            "a pr or",
            "a pr and or b pr",
            r#"not userName eq "a""#,
            "not title pr",
            "not",
            "()",
            "[a pr]",
            "a pr not (b pr)",
            "userName eq bjensen",
            r#"userName eq "unterminated"#,
            r#"userName eq "bad \x escape""#,
            "userName eq \"raw\u{1}control\"",
            "userName eq 01",
            "userName eq 1.",
            "userName eq +1",
            "userName eq 1e999",
            "userName eq -",
            r#"emails[type eq "work""#,
            r#"emails[type eq "work"]]"#,
            r#"emails[type eq "work"].value"#,
            r#"emails [type eq "work"]"#,
            r#"emails[ims[type pr]]"#,
            "emails[]",
            "1abc pr",
            "user-name. pr",
            "name.given.family pr",
            ":userName pr",
            "9urn:x:userName pr",
            r#"user name eq "x""#,
            "title gt true",
            "title lt null",
            "title co 1",
            "title sw null",
            "title ew false",
            "active pr pr",
        ];
        for input in refused {
            let error = parse(input).expect_err(input);
            assert_eq!(error.scim_type(), "invalidFilter");
            assert!(!error.message().is_empty());
            assert!(!error.message().ends_with('.'), "{error}");
        }
    }

    #[test]
    fn not_without_parentheses_says_what_to_write() {
        let error = parse("not title pr").unwrap_err();
        assert!(error.message().contains("not ("), "{error}");
    }

    #[test]
    fn nesting_is_limited_and_never_overflows_the_stack() {
        let nested = |levels: usize| format!("{}a pr{}", "(".repeat(levels), ")".repeat(levels));
        assert_eq!(parse(&nested(MAX_DEPTH)), Ok(present("a")));
        assert!(parse(&nested(MAX_DEPTH + 1)).is_err());
        let negated =
            |levels: usize| format!("{}a pr{}", "not (".repeat(levels), ")".repeat(levels));
        assert!(parse(&negated(MAX_DEPTH)).is_ok());
        assert!(parse(&negated(MAX_DEPTH + 1)).is_err());
        // Deeper than the stack could take, were the depth not checked first.
        assert!(parse(&"(".repeat(MAX_INPUT_LEN)).is_err());
        assert!(parse(&"not (".repeat(MAX_INPUT_LEN / 5)).is_err());
        assert!(parse(&"a[".repeat(MAX_INPUT_LEN / 2)).is_err());
    }

    #[test]
    fn over_long_input_is_refused() {
        let long = format!(r#"userName eq "{}""#, "x".repeat(MAX_INPUT_LEN));
        assert!(parse(&long).unwrap_err().message().contains("4096"));
        assert!(parse_path(&"a".repeat(MAX_INPUT_LEN + 1)).is_err());
        let fits = format!(r#"userName eq "{}""#, "x".repeat(MAX_INPUT_LEN - 14));
        assert_eq!(fits.len(), MAX_INPUT_LEN);
        assert!(parse(&fits).is_ok());
    }

    #[test]
    fn the_longest_and_chain_parses_prints_and_evaluates() {
        let terms = MAX_INPUT_LEN / "a pr and ".len();
        let input = vec!["a pr"; terms].join(" and ");
        let filter = parse(&input).unwrap();
        assert_eq!(filter.to_string(), input);
        assert!(matches(&filter, &Record::default().with("a", vec![s("x")])));
        assert!(!matches(&filter, &Record::default()));
    }

    // ---- PATCH paths ------------------------------------------------------------------

    #[test]
    fn patch_paths_parse() {
        let plain = |dotted: &str| PatchPath {
            attr: path(dotted),
            filter: None,
            sub: None,
        };
        assert_eq!(parse_path("members"), Ok(plain("members")));
        assert_eq!(parse_path("name.givenName"), Ok(plain("name.givenName")));
        assert_eq!(
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            Ok(PatchPath {
                attr: AttrPath {
                    schema: Some(ENTERPRISE_USER_SCHEMA.to_owned()),
                    name: "department".to_owned(),
                    sub: None,
                },
                filter: None,
                sub: None,
            })
        );
        assert_eq!(
            parse_path(r#"emails[type eq "work"].value"#),
            Ok(PatchPath {
                attr: path("emails"),
                filter: Some(cmp("type", CompareOp::Eq, string("work"))),
                sub: Some("value".to_owned()),
            })
        );
        assert_eq!(
            parse_path(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#),
            Ok(PatchPath {
                attr: path("members"),
                filter: Some(cmp(
                    "value",
                    CompareOp::Eq,
                    string("2819c223-7f76-453a-919d-413861904646")
                )),
                sub: None,
            })
        );
        for text in [
            "members",
            "name.givenName",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            r#"emails[type eq "work" and (primary eq true or value ew "@x")].display"#,
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
        ] {
            let parsed = parse_path(text).unwrap();
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parse_path(&parsed.to_string()), Ok(parsed));
        }
    }

    #[test]
    fn malformed_patch_paths_are_refused() {
        for input in [
            "",
            "emails[",
            r#"emails[type eq "work""#,
            r#"emails [type eq "work"]"#,
            r#"emails[type eq "work"] .value"#,
            r#"emails[type eq "work"]."#,
            r#"emails[type eq "work"]value"#,
            r#"emails[type eq "work"].value.display"#,
            r#"emails[type eq "work"].value[x pr]"#,
            r#"emails[ims[x pr]]"#,
            "name.givenName.x",
            "members x",
            r#"members eq "x""#,
            "(members)",
            "1members",
        ] {
            assert!(parse_path(input).is_err(), "{input}");
        }
    }

    // ---- attribute names --------------------------------------------------------------

    #[test]
    fn attribute_paths_compare_case_insensitively_and_ignore_known_schemas() {
        assert!(path("userName").is("username"));
        assert!(path("USERNAME").is("userName"));
        assert!(path("name.familyName").is("NAME.familyname"));
        assert!(!path("name.familyName").is("name"));
        assert!(!path("name").is("name.familyName"));
        assert!(path("urn:ietf:params:scim:schemas:core:2.0:User:userName").is("userName"));
        assert!(path("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:GROUP:displayName").is("displayName"));
        assert!(path(&format!("{ENTERPRISE_USER_SCHEMA}:manager.value")).is("manager.value"));
        assert!(!path("urn:example:custom:1.0:User:userName").is("userName"));
    }

    // ---- evaluation -------------------------------------------------------------------

    #[test]
    fn rfc_examples_evaluate_on_a_user() {
        let user = bjensen();
        let expected = [
            true, true, false, false, true, true, true, true, true, true, false, true, true,
        ];
        for (example, expected) in RFC_EXAMPLES.iter().zip(expected) {
            assert_eq!(holds(example, &user), expected, "{example}");
        }
        assert!(holds(r#"userName sw "b""#, &user));
        assert!(holds(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:USERNAME sw "B""#,
            &user
        ));
        assert!(holds(r#"name.familyName co "o'malley""#, &user));
    }

    #[test]
    fn strings_compare_ignoring_ascii_case_only() {
        let user = Record::default().with("displayName", vec![s("Ärger Bob")]);
        assert!(holds(
            r#"displayName eq "ärger bob""#,
            &Record::default().with("displayName", vec![s("ärger BOB")])
        ));
        assert!(!holds(r#"displayName eq "ärger bob""#, &user));
        assert!(holds(r#"displayName ew "BOB""#, &user));
        assert!(
            holds(r#"displayName gt "Zzz""#, &user),
            "non-ASCII sorts after ASCII"
        );
        let alice = Record::default().with("userName", vec![s("alice")]);
        assert!(
            holds(r#"userName lt "BOB""#, &alice),
            "case is ignored in ordering too"
        );
        assert!(holds(r#"userName ge "ALICE""#, &alice));
        assert!(!holds(r#"userName gt "ALICE""#, &alice));
        assert!(holds(r#"userName co """#, &alice));
    }

    #[test]
    fn timestamps_compare_chronologically_with_rfc_3339_literals() {
        let user = bjensen();
        assert!(holds(
            r#"meta.lastModified eq "2011-05-13T06:00:00+01:00""#,
            &user
        ));
        assert!(holds(
            r#"meta.lastModified ge "2011-05-13T06:00:00+01:00""#,
            &user
        ));
        assert!(!holds(
            r#"meta.lastModified gt "2011-05-13T06:00:00+01:00""#,
            &user
        ));
        assert!(holds(
            r#"meta.lastModified lt "2011-05-13T05:00:00.5Z""#,
            &user
        ));
        assert!(!holds(r#"meta.lastModified gt "yesterday""#, &user));
        assert!(!holds(r#"meta.lastModified eq "yesterday""#, &user));
        assert!(holds(r#"meta.lastModified ne "yesterday""#, &user));
        assert!(!holds(r#"meta.lastModified co "2011""#, &user));
    }

    #[test]
    fn numbers_and_booleans_compare_by_kind() {
        let user = bjensen();
        assert!(holds("age eq 42", &user));
        assert!(holds("age eq 42.0", &user));
        assert!(holds("age gt 41.5", &user));
        assert!(holds("age le 4.2e1", &user));
        assert!(!holds(r#"age eq "42""#, &user), "a string is not a number");
        assert!(holds(r#"age ne "42""#, &user));
        assert!(holds("active eq true", &user));
        assert!(holds("active ne FALSE", &user));
        assert!(!holds(r#"active eq "true""#, &user));
        assert!(!holds("userName eq 1", &user));
    }

    #[test]
    fn presence_null_and_ne_follow_the_documented_rules() {
        let user = bjensen();
        assert!(holds("title pr", &user));
        assert!(!holds("nickName pr", &user), "an empty string is no value");
        assert!(!holds("ims pr", &user));
        assert!(holds("ims eq null", &user));
        assert!(holds("nickName eq null", &user));
        assert!(!holds(r#"nickName eq """#, &user));
        assert!(!holds("title eq null", &user));
        assert!(holds("title ne null", &user));
        assert!(
            holds(r#"ims ne "x""#, &user),
            "ne on a missing attribute holds"
        );
        assert!(!holds(r#"ims co "x""#, &user));
        assert!(
            holds(r#"emails eq "BABS@jensen.org""#, &user),
            "any value matches"
        );
        assert!(
            !holds(r#"emails ne "babs@jensen.org""#, &user),
            "ne means no value equals"
        );
        assert!(holds(r#"emails ne "other@x""#, &user));
    }

    #[test]
    fn a_value_filter_needs_one_element_that_satisfies_all_of_it() {
        let user = bjensen();
        assert!(holds(
            r#"emails[type eq "work" and value co "@example.com"]"#,
            &user
        ));
        assert!(!holds(
            r#"emails[type eq "home" and value co "@example.com"]"#,
            &user
        ));
        assert!(holds(
            r#"emails[type eq "home" or value co "@example.com"]"#,
            &user
        ));
        assert!(holds(r#"emails[not (type eq "work")]"#, &user));
        assert!(!holds("ims[type pr]", &user));
        assert!(holds(r#"not (ims[type eq "xmpp"])"#, &user));
    }

    // ---- properties -------------------------------------------------------------------

    /// SplitMix64: a small deterministic generator, so failures reproduce from the seed.
    /// (proptest is not a dev-dependency of this crate.)
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(bound).unwrap()).unwrap()
        }

        fn chance(&mut self, one_in: usize) -> bool {
            self.below(one_in) == 0
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    /// Random trees; `small` draws names and literals from tiny pools so that evaluation
    /// hits matches often, otherwise they are as awkward as the grammar allows.
    struct Gen {
        rng: Rng,
        small: bool,
    }

    const NAMES: [&str; 12] = [
        "userName", "title", "emails", "not", "and", "or", "pr", "eq", "x-1", "a_b2", "$ref",
        "META",
    ];
    const SMALL_NAMES: [&str; 4] = ["a", "B", "emails", "n"];
    const SUBS: [&str; 4] = ["value", "Type", "x_y", "$REF"];
    const SMALL_SUBS: [&str; 2] = ["value", "type"];
    const SCHEMAS: [&str; 4] = [
        CORE_USER_SCHEMA,
        ENTERPRISE_USER_SCHEMA,
        "urn:example:custom:1.0:Thing",
        "urn:ietf:params:scim:schemas:core:2.0:group",
    ];
    const CHARS: [char; 16] = [
        'a', 'Z', ' ', '"', '\\', '\n', '\u{1}', 'é', '😀', ')', '[', ']', '(', ':', '.', '\u{7f}',
    ];
    const SMALL_STRINGS: [&str; 6] = ["a", "A", "ab", "", "b", "2011-05-13T05:00:00Z"];

    impl Gen {
        fn new(seed: u64, small: bool) -> Self {
            Self {
                rng: Rng(seed),
                small,
            }
        }

        fn path(&mut self) -> AttrPath {
            let (names, subs): (&[&str], &[&str]) = if self.small {
                (&SMALL_NAMES, &SMALL_SUBS)
            } else {
                (&NAMES, &SUBS)
            };
            let schema =
                (!self.small && self.rng.chance(5)).then(|| (*self.rng.pick(&SCHEMAS)).to_owned());
            let name = (*self.rng.pick(names)).to_owned();
            let sub = self
                .rng
                .chance(3)
                .then(|| (*self.rng.pick(subs)).to_owned());
            AttrPath { schema, name, sub }
        }

        fn string(&mut self) -> String {
            if self.small {
                return (*self.rng.pick(&SMALL_STRINGS)).to_owned();
            }
            let len = self.rng.below(7);
            (0..len).map(|_| *self.rng.pick(&CHARS)).collect()
        }

        fn number(&mut self) -> Number {
            if self.small {
                return match self.rng.below(3) {
                    0 => Number::from(self.rng.below(3)),
                    1 => Number::from(-1),
                    _ => Number::from_f64(1.5).unwrap(),
                };
            }
            match self.rng.below(4) {
                0 => Number::from(i64::from_ne_bytes(self.rng.next().to_ne_bytes())),
                1 => Number::from(self.rng.next()),
                2 => Number::from_f64(f64::from_bits(self.rng.next()))
                    .unwrap_or_else(|| Number::from(0)),
                _ => {
                    Number::from_f64(f64::from(u32::try_from(self.rng.below(1000)).unwrap()) / 8.0)
                        .unwrap()
                }
            }
        }

        fn literal(&mut self, op: CompareOp) -> CompValue {
            let choices: &[usize] = match op {
                CompareOp::Eq | CompareOp::Ne => &[0, 1, 2, 3],
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => &[3],
                _ => &[2, 3],
            };
            match self.rng.pick(choices) {
                0 => CompValue::Null,
                1 => CompValue::Bool(self.rng.chance(2)),
                2 => CompValue::Number(self.number()),
                _ => CompValue::Str(self.string()),
            }
        }

        fn filter(&mut self, depth: usize, in_value_path: bool) -> Filter {
            if depth == 0 || self.rng.chance(3) {
                let path = self.path();
                if self.rng.chance(5) {
                    return Filter::Present(path);
                }
                let op = *self.rng.pick(&CompareOp::ALL);
                let literal = self.literal(op);
                return Filter::Compare(path, op, literal);
            }
            let next = depth - 1;
            match self.rng.below(if in_value_path { 3 } else { 4 }) {
                0 => Filter::and(
                    self.filter(next, in_value_path),
                    self.filter(next, in_value_path),
                ),
                1 => Filter::or(
                    self.filter(next, in_value_path),
                    self.filter(next, in_value_path),
                ),
                2 => Filter::negate(self.filter(next, in_value_path)),
                _ => Filter::ValuePath(self.path(), Box::new(self.filter(next, true))),
            }
        }

        fn value(&mut self) -> Value {
            match self.rng.below(4) {
                0 => Value::Str(self.string()),
                1 => Value::Bool(self.rng.chance(2)),
                2 => Value::Number(self.number()),
                _ => Value::DateTime(datetime!(2011-05-13 05:00:00 UTC)),
            }
        }

        fn record(&mut self, depth: usize) -> Record {
            let mut record = Record::default();
            for _ in 0..self.rng.below(5) {
                let path = self.path();
                let dotted = match &path.sub {
                    Some(sub) => format!("{}.{sub}", path.name),
                    None => path.name.clone(),
                };
                let values = (0..self.rng.below(3)).map(|_| self.value()).collect();
                record = record.with(&dotted, values);
            }
            if depth > 0 {
                for _ in 0..self.rng.below(3) {
                    let name = (*self.rng.pick(&SMALL_NAMES)).to_owned();
                    let elements = (0..self.rng.below(3))
                        .map(|_| self.record(depth - 1))
                        .collect();
                    record = record.with_elements(&name, elements);
                }
            }
            record
        }
    }

    const CASES: u64 = 3000;

    #[test]
    fn property_printing_then_parsing_gives_the_same_tree() {
        for seed in 0..CASES {
            let mut generator = Gen::new(seed, seed % 4 == 0);
            let filter = generator.filter(5, false);
            let text = filter.to_string();
            assert!(text.len() <= MAX_INPUT_LEN, "seed {seed}");
            assert_eq!(parse(&text).as_ref(), Ok(&filter), "seed {seed}: {text}");
            let patch = PatchPath {
                attr: generator.path(),
                filter: Some(generator.filter(3, true)),
                sub: generator.rng.chance(2).then(|| "value".to_owned()),
            };
            assert_eq!(
                parse_path(&patch.to_string()).as_ref(),
                Ok(&patch),
                "seed {seed}: {patch}"
            );
        }
    }

    const TOKENS: [&str; 30] = [
        "(",
        ")",
        "[",
        "]",
        "not",
        "NOT",
        "and",
        "or",
        "pr",
        "eq",
        "Gt",
        "co",
        r#""x""#,
        "\"",
        "\\",
        r#""\u12""#,
        "1",
        "-",
        "1e999",
        "-0.5",
        "true",
        "Null",
        "userName",
        "emails",
        "urn:a:b:c",
        ".",
        ":",
        ".value",
        "$ref",
        " ",
    ];

    #[test]
    fn property_parsing_never_panics_and_what_parses_prints_back() {
        let check = |input: &str| {
            if let Ok(filter) = parse(input) {
                roundtrips(&filter);
            }
            if let Ok(patch) = parse_path(input) {
                assert_eq!(
                    parse_path(&patch.to_string()).as_ref(),
                    Ok(&patch),
                    "{input}"
                );
            }
        };
        let mut rng = Rng(7);
        for _ in 0..CASES * 4 {
            let soup: Vec<&str> = (0..rng.below(16)).map(|_| *rng.pick(&TOKENS)).collect();
            check(&soup.join(if rng.chance(2) { " " } else { "" }));
            let bytes: Vec<u8> = (0..rng.below(24))
                .map(|_| {
                    let byte = rng.next().to_le_bytes()[0];
                    if rng.chance(2) {
                        b"()[]\" \\.:azAZ09-"[usize::from(byte % 16)]
                    } else {
                        byte
                    }
                })
                .collect();
            check(&String::from_utf8_lossy(&bytes));
        }
        let mut generator = Gen::new(11, false);
        for _ in 0..CASES {
            // Cut a valid filter anywhere: every prefix must be refused or parsed, never panic.
            let text = generator.filter(4, false).to_string();
            let cut = text
                .char_indices()
                .map(|(index, _)| index)
                .nth(generator.rng.below(text.chars().count().max(1)));
            check(text.get(..cut.unwrap_or(0)).unwrap());
        }
    }

    #[test]
    fn property_connectives_are_boolean_and_ne_null_and_value_paths_are_as_documented() {
        for seed in 0..CASES {
            let mut generator = Gen::new(seed, true);
            let record = generator.record(1);
            let a = generator.filter(3, false);
            let b = generator.filter(3, false);
            let (ma, mb) = (matches(&a, &record), matches(&b, &record));
            assert_eq!(
                matches(&Filter::negate(a.clone()), &record),
                !ma,
                "seed {seed}"
            );
            assert_eq!(
                matches(&Filter::and(a.clone(), b.clone()), &record),
                ma && mb,
                "seed {seed}"
            );
            assert_eq!(
                matches(&Filter::or(a.clone(), b.clone()), &record),
                ma || mb,
                "seed {seed}"
            );

            let path = generator.path();
            let literal = generator.literal(CompareOp::Eq);
            let eq = Filter::Compare(path.clone(), CompareOp::Eq, literal.clone());
            let ne = Filter::Compare(path.clone(), CompareOp::Ne, literal);
            assert_eq!(
                matches(&ne, &record),
                !matches(&eq, &record),
                "seed {seed}: {ne}"
            );
            let is_null = Filter::Compare(path.clone(), CompareOp::Eq, CompValue::Null);
            let present = Filter::Present(path.clone());
            assert_eq!(
                matches(&is_null, &record),
                !matches(&present, &record),
                "seed {seed}"
            );

            let inner = generator.filter(2, true);
            let any_element = record
                .elements(&path)
                .iter()
                .any(|element| evaluate(&inner, element.as_ref()));
            let value_path = Filter::ValuePath(path, Box::new(inner));
            assert_eq!(matches(&value_path, &record), any_element, "seed {seed}");
        }
    }

    #[test]
    fn property_case_of_names_and_keywords_does_not_change_the_outcome() {
        for seed in 0..CASES {
            let mut generator = Gen::new(seed, true);
            let record = generator.record(1);
            let filter = generator.filter(4, false);
            // The small pools hold only ASCII strings and RFC 3339 timestamps, which
            // upper-casing does not change the meaning of.
            let shouted = parse(&filter.to_string().to_ascii_uppercase()).unwrap();
            assert_eq!(
                matches(&shouted, &record),
                matches(&filter, &record),
                "seed {seed}: {filter}"
            );
        }
    }
}
