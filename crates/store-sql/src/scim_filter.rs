//! SCIM filters (RFC 7644 §3.4.2.2) as parameterised SQL: a [`Filter`] tree becomes a
//! boolean SQL expression whose literals are all bound values, never text spliced into
//! the statement. What each attribute is in SQL comes from a [`FilterColumns`] mapping
//! (the resource's query decides its columns); what a filter means is
//! [`domain::scim::filter::matches`], which this translation mirrors rule for rule (a
//! property test runs both on random records on each store):
//!
//! - An empty string is no value; `pr` is "has a value", `eq null` "has none".
//! - Strings compare ASCII case-insensitively: both sides lowercased (`lower` of the
//!   column taken bytewise, which lowers ASCII only on both stores; the literal lowered
//!   here), then `eq`, `co`, `sw`, `ew` exactly and `gt`…`le` bytewise.
//! - Timestamps compare with a literal parsed as RFC 3339 (one that is not satisfies
//!   nothing); booleans take `eq` only.
//! - `ne` is "no value equals", `not (eq)`; a literal of another kind than the column's
//!   satisfies nothing, so its `eq` is false and its `ne` true.
//! - Every atomic predicate is guarded by the column having a value, so it is never SQL
//!   `NULL` and `not` means what it says.
//! - `attr[filter]` holds when the element exists (the mapping's guard) and its
//!   sub-attributes satisfy the inner filter: the resources mapped here have at most one
//!   element per multi-valued attribute (a member's one email).

use domain::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::Value;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Text,
    Flag,
    Time,
}

/// An attribute as SQL: an expression of the resource's query and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub expr: String,
    pub kind: ColumnKind,
}

impl Column {
    pub fn new(expr: impl Into<String>, kind: ColumnKind) -> Self {
        Self {
            expr: expr.into(),
            kind,
        }
    }
}

/// Where a resource's attributes are in its query.
pub trait FilterColumns {
    /// The column of an attribute path (`userName`, `emails.value`, `meta.lastModified`);
    /// `None` for an attribute the resource cannot be filtered on.
    fn column(&self, path: &AttrPath) -> Option<Column>;

    /// For a multi-valued complex attribute (`emails`), the condition that its one
    /// element exists; `None` when `path` is no such attribute.
    fn element(&self, path: &AttrPath) -> Option<String>;
}

/// A filter naming an attribute the resource cannot be filtered on (SCIM
/// `invalidFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedAttribute(pub String);

impl std::fmt::Display for UnsupportedAttribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the filter names {}, which cannot be filtered on",
            self.0
        )
    }
}

impl std::error::Error for UnsupportedAttribute {}

/// The SQL of `filter` over `columns`: a parenthesised boolean expression whose
/// placeholders continue after the `values` already bound (`$n` with n counted from
/// there), its literals appended to `values`. `bytewise` is the backend's
/// [`crate::Backend::BYTEWISE`].
///
/// # Errors
/// [`UnsupportedAttribute`] for an attribute `columns` does not map.
pub fn filter_sql(
    filter: &Filter,
    columns: &dyn FilterColumns,
    bytewise: &str,
    values: &mut Vec<Value>,
) -> Result<String, UnsupportedAttribute> {
    Translator {
        columns,
        bytewise,
        values,
    }
    .filter(filter, None)
}

const FALSE: &str = "(1 = 0)";
const TRUE: &str = "(1 = 1)";

struct Translator<'a> {
    columns: &'a dyn FilterColumns,
    bytewise: &'a str,
    values: &'a mut Vec<Value>,
}

impl Translator<'_> {
    /// Binds `value`; its placeholder.
    fn bind(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    /// `filter`, its paths naming sub-attributes of `parent` inside a value path.
    fn filter(
        &mut self,
        filter: &Filter,
        parent: Option<&AttrPath>,
    ) -> Result<String, UnsupportedAttribute> {
        Ok(match filter {
            Filter::And(left, right) => format!(
                "({} and {})",
                self.filter(left, parent)?,
                self.filter(right, parent)?
            ),
            Filter::Or(left, right) => format!(
                "({} or {})",
                self.filter(left, parent)?,
                self.filter(right, parent)?
            ),
            Filter::Not(inner) => format!("(not {})", self.filter(inner, parent)?),
            Filter::Present(path) => present(&self.column(path, parent)?),
            Filter::Compare(path, op, literal) => {
                let column = self.column(path, parent)?;
                self.compare(&column, *op, literal)
            }
            Filter::ValuePath(path, inner) => {
                let guard = self
                    .columns
                    .element(path)
                    .filter(|_| parent.is_none())
                    .ok_or_else(|| UnsupportedAttribute(path.to_string()))?;
                format!("(({guard}) and {})", self.filter(inner, Some(path))?)
            }
        })
    }

    fn column(
        &self,
        path: &AttrPath,
        parent: Option<&AttrPath>,
    ) -> Result<Column, UnsupportedAttribute> {
        let full = match parent {
            Some(parent) if path.sub.is_none() => AttrPath {
                schema: parent.schema.clone(),
                name: parent.name.clone(),
                sub: Some(path.name.clone()),
            },
            Some(_) => return Err(UnsupportedAttribute(path.to_string())),
            None => path.clone(),
        };
        self.columns
            .column(&full)
            .ok_or_else(|| UnsupportedAttribute(full.to_string()))
    }

    fn compare(&mut self, column: &Column, op: CompareOp, literal: &CompValue) -> String {
        match (op, literal) {
            (CompareOp::Eq, CompValue::Null) => format!("(not {})", present(column)),
            (CompareOp::Ne, CompValue::Null) => present(column),
            (_, CompValue::Null) => FALSE.to_owned(),
            (CompareOp::Ne, _) => {
                format!("(not {})", self.satisfied(column, CompareOp::Eq, literal))
            }
            _ => self.satisfied(column, op, literal),
        }
    }

    /// Whether the column's value satisfies `op literal` (never `NULL`).
    fn satisfied(&mut self, column: &Column, op: CompareOp, literal: &CompValue) -> String {
        let guard = present(column);
        let test = match (column.kind, literal) {
            (ColumnKind::Text, CompValue::Str(text)) => self.text(column, op, text),
            (ColumnKind::Flag, CompValue::Bool(flag)) if op == CompareOp::Eq => {
                let value = self.bind(Value::Flag(*flag));
                Some(format!("{} = {value}", column.expr))
            }
            (ColumnKind::Time, CompValue::Str(text)) => match OffsetDateTime::parse(text, &Rfc3339)
            {
                Ok(time) => ordering(op).map(|sign| {
                    let value = self.bind(Value::Time(Some(time)));
                    format!("{} {sign} {value}", column.expr)
                }),
                Err(_) => None,
            },
            _ => None,
        };
        match test {
            Some(test) => format!("({guard} and {test})"),
            None => FALSE.to_owned(),
        }
    }

    fn text(&mut self, column: &Column, op: CompareOp, literal: &str) -> Option<String> {
        let lowered = format!("lower({}{})", column.expr, self.bytewise);
        let literal = literal.to_ascii_lowercase();
        // Lengths in characters, as SQL's `length` and `substr` count them.
        let chars = literal.chars().count();
        if chars == 0 && matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
            // Every value holds the empty string.
            return Some(TRUE.to_owned());
        }
        Some(match op {
            CompareOp::Co => {
                let value = self.bind(Value::Text(Some(literal)));
                format!("length(replace({lowered}, {value}, '')) < length({lowered})")
            }
            CompareOp::Sw => {
                let value = self.bind(Value::Text(Some(literal)));
                format!("substr({lowered}, 1, {chars}) = {value}")
            }
            CompareOp::Ew => {
                let value = self.bind(Value::Text(Some(literal)));
                format!(
                    "length({lowered}) >= {chars} \
                     and substr({lowered}, length({lowered}) - {chars} + 1) = {value}"
                )
            }
            _ => {
                let sign = ordering(op)?;
                let value = self.bind(Value::Text(Some(literal)));
                format!("{lowered}{} {sign} {value}", self.bytewise)
            }
        })
    }
}

/// Whether the column has a value (an empty string is none).
fn present(column: &Column) -> String {
    match column.kind {
        ColumnKind::Text => format!("({0} is not null and {0} <> '')", column.expr),
        ColumnKind::Flag | ColumnKind::Time => format!("({} is not null)", column.expr),
    }
}

/// The SQL comparison of an ordering operator; `None` for the substring ones and `ne`
/// (which the caller writes as `not eq`).
fn ordering(op: CompareOp) -> Option<&'static str> {
    match op {
        CompareOp::Eq => Some("="),
        CompareOp::Gt => Some(">"),
        CompareOp::Ge => Some(">="),
        CompareOp::Lt => Some("<"),
        CompareOp::Le => Some("<="),
        CompareOp::Ne | CompareOp::Co | CompareOp::Sw | CompareOp::Ew => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use domain::scim::filter::parse;

    struct Members;

    impl FilterColumns for Members {
        fn column(&self, path: &AttrPath) -> Option<Column> {
            [
                ("userName", "u.email", ColumnKind::Text),
                ("emails.value", "u.email", ColumnKind::Text),
                ("emails.type", "'work'", ColumnKind::Text),
                ("active", "a.active", ColumnKind::Flag),
                ("meta.lastModified", "a.updated_at", ColumnKind::Time),
            ]
            .into_iter()
            .find(|(name, _, _)| path.is(name))
            .map(|(_, expr, kind)| Column::new(expr, kind))
        }

        fn element(&self, path: &AttrPath) -> Option<String> {
            path.is("emails")
                .then(|| "u.email is not null and u.email <> ''".to_owned())
        }
    }

    fn sql(filter: &str) -> (String, Vec<Value>) {
        let mut values = vec![Value::Text(Some("acme".to_owned()))];
        let sql = filter_sql(&parse(filter).unwrap(), &Members, "", &mut values).unwrap();
        (sql, values)
    }

    #[test]
    fn literals_are_bound_and_placeholders_continue_after_the_statements_own() {
        let (sql, values) = sql(r#"userName eq "Ada@Example.com" and active eq true"#);
        assert_eq!(
            sql,
            "(((u.email is not null and u.email <> '') and lower(u.email) = $2) and \
             ((a.active is not null) and a.active = $3))"
        );
        assert_eq!(
            values,
            [
                Value::Text(Some("acme".to_owned())),
                Value::Text(Some("ada@example.com".to_owned())),
                Value::Flag(true),
            ]
        );
    }

    #[test]
    fn a_hostile_literal_stays_a_value() {
        let (sql, values) = sql(r#"userName co "'; drop table users; --""#);
        assert!(!sql.contains("drop"), "{sql}");
        assert_eq!(
            values.last(),
            Some(&Value::Text(Some("'; drop table users; --".to_owned())))
        );
    }

    #[test]
    fn kinds_that_do_not_meet_satisfy_nothing_and_ne_is_not_eq() {
        assert_eq!(sql("userName eq 3").0, FALSE);
        assert_eq!(sql(r#"active eq "True""#).0, FALSE);
        assert_eq!(sql(r#"meta.lastModified eq "yesterday""#).0, FALSE);
        assert_eq!(sql("userName ne 3").0, format!("(not {FALSE})"));
        assert_eq!(
            sql("userName eq null").0,
            "(not (u.email is not null and u.email <> ''))"
        );
    }

    #[test]
    fn unmapped_attributes_and_nested_value_paths_are_refused() {
        let refused = |filter: &str| {
            filter_sql(&parse(filter).unwrap(), &Members, "", &mut Vec::new()).is_err()
        };
        assert!(refused(r#"nickName eq "x""#));
        assert!(refused(r#"ims[type eq "x"]"#));
        assert!(refused(r#"emails[value.sub eq "x"]"#));
        assert!(!refused(r#"emails[type eq "work" and value co "@x"]"#));
    }
}
