//! SCIM filters translated to SQL (`store_sql::scim_filter`) select exactly the records
//! the reference evaluator (`domain::scim::filter::matches`) selects, on random records
//! and random filters, on PostgreSQL and on SQLite: the property issue 18 asks of the
//! translation. The records live in a scratch table of each store, so the property holds
//! for the translation itself, whatever columns a resource maps later.

use domain::scim::filter::{matches, AttrPath, Attributes, CompValue, CompareOp, Filter, Value};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use sqlx::{Connection, Row};
use store_sql::scim_filter::{filter_sql, Column, ColumnKind, FilterColumns};
use store_sql::Value as SqlValue;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Rounds of random records and filters per store (each round: one table's worth of
/// records, many filters).
const ROUNDS: usize = 40;
const FILTERS_PER_ROUND: usize = 25;

#[derive(Debug, Clone)]
struct Record {
    id: i64,
    user_name: Option<String>,
    external_id: Option<String>,
    email: Option<String>,
    active: bool,
    last_modified: OffsetDateTime,
}

/// The record as a filter sees it: the attributes the scratch table maps.
impl Attributes for Record {
    fn values(&self, path: &AttrPath) -> Vec<Value> {
        let text = |value: &Option<String>| value.iter().map(|v| Value::Str(v.clone())).collect();
        if path.is("userName") {
            text(&self.user_name)
        } else if path.is("externalId") {
            text(&self.external_id)
        } else if path.is("emails") || path.is("emails.value") {
            text(&self.email)
        } else if path.is("active") {
            vec![Value::Bool(self.active)]
        } else if path.is("meta.lastModified") {
            vec![Value::DateTime(self.last_modified)]
        } else {
            Vec::new()
        }
    }

    fn elements(&self, path: &AttrPath) -> Vec<Box<dyn Attributes + '_>> {
        match &self.email {
            Some(email) if path.is("emails") && !email.is_empty() => {
                vec![Box::new(Email(email.clone()))]
            }
            _ => Vec::new(),
        }
    }
}

/// A record's one email, as an element: `value` and `type` (`work`).
struct Email(String);

impl Attributes for Email {
    fn values(&self, path: &AttrPath) -> Vec<Value> {
        if path.is("value") {
            vec![Value::Str(self.0.clone())]
        } else if path.is("type") {
            vec![Value::Str("work".to_owned())]
        } else {
            Vec::new()
        }
    }

    fn elements(&self, _: &AttrPath) -> Vec<Box<dyn Attributes + '_>> {
        Vec::new()
    }
}

/// The scratch table's columns.
struct Probe;

impl FilterColumns for Probe {
    fn column(&self, path: &AttrPath) -> Option<Column> {
        [
            ("userName", "user_name", ColumnKind::Text),
            ("externalId", "external_id", ColumnKind::Text),
            ("emails", "email", ColumnKind::Text),
            ("emails.value", "email", ColumnKind::Text),
            ("emails.type", "'work'", ColumnKind::Text),
            ("active", "active", ColumnKind::Flag),
            ("meta.lastModified", "last_modified", ColumnKind::Time),
        ]
        .into_iter()
        .find(|(name, _, _)| path.is(name))
        .map(|(_, expr, kind)| Column::new(expr, kind))
    }

    fn element(&self, path: &AttrPath) -> Option<String> {
        path.is("emails")
            .then(|| "email is not null and email <> ''".to_owned())
    }
}

fn base_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("time")
}

/// Short strings over letters that differ by case, a non-ASCII letter (lowered by
/// neither side) and punctuation, so that matches are frequent.
fn word() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['a', 'A', 'b', 'B', 'é', 'É', '@', '.', '%', '_', '\'']),
        0..4,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn time() -> impl Strategy<Value = OffsetDateTime> {
    (0i64..4).prop_map(|hours| base_time() + time::Duration::hours(hours))
}

fn record(id: i64) -> impl Strategy<Value = Record> {
    (
        prop::option::of(word()),
        prop::option::of(word()),
        prop::option::of(word()),
        any::<bool>(),
        time(),
    )
        .prop_map(
            move |(user_name, external_id, email, active, last_modified)| Record {
                id,
                user_name,
                external_id,
                email,
                active,
                last_modified,
            },
        )
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(CompareOp::ALL.to_vec())
}

/// A literal of any kind, mostly strings: ordinary words, RFC 3339 times (as the time
/// column takes), a string that is no time, booleans, numbers and null.
fn literal() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        4 => word().prop_map(CompValue::Str),
        3 => time().prop_map(|t| CompValue::Str(t.format(&Rfc3339).expect("formats"))),
        1 => Just(CompValue::Str("soon".to_owned())),
        2 => any::<bool>().prop_map(CompValue::Bool),
        1 => (0u8..3).prop_map(|n| CompValue::Number(n.into())),
        1 => Just(CompValue::Null),
    ]
}

fn attribute() -> impl Strategy<Value = AttrPath> {
    prop::sample::select(vec![
        "userName",
        "USERNAME",
        "externalId",
        "emails",
        "emails.value",
        "active",
        "meta.lastModified",
    ])
    .prop_map(|path| AttrPath::parse(path).expect("path"))
}

fn leaf() -> impl Strategy<Value = Filter> {
    let element = prop_oneof![
        (prop::sample::select(vec!["value", "type"]), op(), literal())
            .prop_map(|(sub, op, literal)| Filter::Compare(AttrPath::new(sub), op, literal)),
        prop::sample::select(vec!["value", "type"])
            .prop_map(|sub| Filter::Present(AttrPath::new(sub))),
    ];
    prop_oneof![
        6 => (attribute(), op(), literal()).prop_map(|(a, o, l)| Filter::Compare(a, o, l)),
        2 => attribute().prop_map(Filter::Present),
        1 => element.prop_map(|inner| Filter::ValuePath(AttrPath::new("emails"), Box::new(inner))),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::or(a, b)),
            inner.prop_map(Filter::negate),
        ]
    })
}

/// One round: a table's records and the filters to run on them.
fn round() -> impl Strategy<Value = (Vec<Record>, Vec<Filter>)> {
    (
        (0i64..12).prop_flat_map(|count| (0..count).map(record).collect::<Vec<_>>()),
        prop::collection::vec(filter(), FILTERS_PER_ROUND),
    )
}

fn rounds() -> Vec<(Vec<Record>, Vec<Filter>)> {
    let mut runner = TestRunner::deterministic();
    (0..ROUNDS)
        .map(|_| round().new_tree(&mut runner).expect("a round").current())
        .collect()
}

fn expected(records: &[Record], filter: &Filter) -> Vec<i64> {
    records
        .iter()
        .filter(|record| matches(filter, *record))
        .map(|record| record.id)
        .collect()
}

fn micros(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1000).expect("micros")
}

#[test]
fn the_sql_translation_selects_what_the_evaluator_selects_on_postgres() {
    tests::pg::run(async {
        let db = tests::pg::TestDb::create().await;
        let mut connection = db.owner_connection().await;
        sqlx::query(
            "create table scim_probe (id bigint primary key, user_name text, external_id text, \
             email text, active boolean not null, last_modified timestamptz not null)",
        )
        .execute(&mut connection)
        .await
        .expect("table");
        for (records, filters) in rounds() {
            let mut tx = connection.begin().await.expect("tx");
            for record in &records {
                sqlx::query("insert into scim_probe values ($1, $2, $3, $4, $5, $6)")
                    .bind(record.id)
                    .bind(&record.user_name)
                    .bind(&record.external_id)
                    .bind(&record.email)
                    .bind(record.active)
                    .bind(record.last_modified)
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
            }
            for filter in &filters {
                let mut values = Vec::new();
                let sql = filter_sql(filter, &Probe, " collate \"C\"", &mut values)
                    .expect("every probe attribute is mapped");
                let statement = format!("select id from scim_probe where {sql} order by id");
                let mut query = sqlx::query(&statement);
                for value in values {
                    query = match value {
                        SqlValue::Text(text) => query.bind(text),
                        SqlValue::Flag(flag) => query.bind(flag),
                        SqlValue::Time(time) => query.bind(time),
                        other => panic!("unexpected value {other:?}"),
                    };
                }
                let rows = query.fetch_all(&mut *tx).await.expect(&statement);
                let selected: Vec<i64> = rows.iter().map(|row| row.get("id")).collect();
                assert_eq!(
                    selected,
                    expected(&records, filter),
                    "filter {filter} as {statement} on {records:?}"
                );
            }
            tx.rollback().await.expect("rolled back");
        }
    });
}

#[test]
fn the_sql_translation_selects_what_the_evaluator_selects_on_sqlite() {
    tests::pg::run(async {
        let file = tests::sqlite::TestFile::new();
        // The store makes the file; the probe table sits beside the schema.
        let _store = file.store().await;
        let mut connection = file.connection().await;
        sqlx::query(
            "create table scim_probe (id integer primary key, user_name text, external_id text, \
             email text, active integer not null, last_modified integer not null) strict",
        )
        .execute(&mut connection)
        .await
        .expect("table");
        for (records, filters) in rounds() {
            let mut tx = connection.begin().await.expect("tx");
            for record in &records {
                sqlx::query("insert into scim_probe values ($1, $2, $3, $4, $5, $6)")
                    .bind(record.id)
                    .bind(&record.user_name)
                    .bind(&record.external_id)
                    .bind(&record.email)
                    .bind(record.active)
                    .bind(micros(record.last_modified))
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
            }
            for filter in &filters {
                let mut values = Vec::new();
                let sql = filter_sql(filter, &Probe, "", &mut values)
                    .expect("every probe attribute is mapped");
                let statement = format!("select id from scim_probe where {sql} order by id");
                let mut query = sqlx::query(&statement);
                for value in values {
                    query = match value {
                        SqlValue::Text(text) => query.bind(text),
                        SqlValue::Flag(flag) => query.bind(flag),
                        SqlValue::Time(time) => query.bind(time.map(micros)),
                        other => panic!("unexpected value {other:?}"),
                    };
                }
                let rows = query.fetch_all(&mut *tx).await.expect(&statement);
                let selected: Vec<i64> = rows.iter().map(|row| row.get("id")).collect();
                assert_eq!(
                    selected,
                    expected(&records, filter),
                    "filter {filter} as {statement} on {records:?}"
                );
            }
            tx.rollback().await.expect("rolled back");
        }
    });
}
