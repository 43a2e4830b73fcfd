//! SCIM User filters over real members select what the reference evaluator selects, on
//! PostgreSQL and on SQLite: random members are provisioned through SCIM (logins and
//! emails, external ids, display names, states), random filters over every attribute
//! SPEC §8 names are run through `Engine::scim_list_users` on each store and on the
//! in-memory store — whose query *is* `domain::scim::filter::matches` over each member's
//! `UserRecord` — and must select the same members. This covers the columns the SQL core
//! maps a User's attributes to (`store_sql::tx::scim`) and its indexed `userName eq`
//! path, beside `scim_filter_sql`, which covers the translation itself.

use std::sync::Arc;

use domain::ids::DisplayName;
use domain::ports::Store;
use domain::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use domain::usecases::{Caller, NewApiKey, Principal, ScimListQuery};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::json;
use tests::harness::{scope, Harness};

const ROUNDS: usize = 6;
const MEMBERS: usize = 14;
const FILTERS_PER_ROUND: usize = 40;

/// A member as provisioned: a login or an address as `userName`, and the rest.
#[derive(Debug, Clone)]
struct Person {
    user_name: String,
    email_name: bool,
    external_id: Option<String>,
    display_name: Option<String>,
    active: bool,
}

/// Short words over letters differing by case, so equalities and prefixes are frequent.
fn word() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['a', 'A', 'b', 'B', 'é', '.']),
        1..4,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn person() -> impl Strategy<Value = Person> {
    (
        word(),
        any::<bool>(),
        prop::option::of(word()),
        prop::option::of(word()),
        prop::bool::weighted(0.7),
    )
        .prop_map(
            |(user_name, email_name, external_id, display_name, active)| Person {
                user_name,
                email_name,
                external_id,
                display_name,
                active,
            },
        )
}

fn attribute() -> impl Strategy<Value = AttrPath> {
    prop::sample::select(vec![
        "userName",
        "username",
        "externalId",
        "emails",
        "emails.value",
        "active",
        "displayName",
        "meta.created",
        "meta.lastModified",
    ])
    .prop_map(|path| AttrPath::parse(path).expect("path"))
}

fn literal() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        5 => word().prop_map(CompValue::Str),
        2 => word().prop_map(|word| CompValue::Str(format!("{word}@example.com"))),
        2 => any::<bool>().prop_map(CompValue::Bool),
        1 => Just(CompValue::Str("2026-01-01T00:00:00Z".to_owned())),
        1 => Just(CompValue::Null),
    ]
}

fn leaf() -> impl Strategy<Value = Filter> {
    let element = (
        prop::sample::select(vec!["value", "type", "primary"]),
        prop::sample::select(CompareOp::ALL.to_vec()),
        literal(),
    )
        .prop_map(|(sub, op, literal)| Filter::Compare(AttrPath::new(sub), op, literal));
    prop_oneof![
        // `userName eq` most often: the lookup providers make, on its indexed path.
        3 => literal().prop_map(|literal| Filter::Compare(AttrPath::new("userName"), CompareOp::Eq, literal)),
        6 => (attribute(), prop::sample::select(CompareOp::ALL.to_vec()), literal())
            .prop_map(|(attribute, op, literal)| Filter::Compare(attribute, op, literal)),
        2 => attribute().prop_map(Filter::Present),
        1 => element.prop_map(|inner| Filter::ValuePath(AttrPath::new("emails"), Box::new(inner))),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(3, 10, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::or(a, b)),
            inner.prop_map(Filter::negate),
        ]
    })
}

fn rounds() -> Vec<(Vec<Person>, Vec<Filter>)> {
    let mut runner = TestRunner::deterministic();
    let round = (
        prop::collection::vec(person(), MEMBERS),
        prop::collection::vec(filter(), FILTERS_PER_ROUND),
    );
    (0..ROUNDS)
        .map(|_| round.new_tree(&mut runner).expect("a round").current())
        .collect()
}

/// What one harness answers to a round: each create's outcome, then each filter's
/// total and the ids it selected.
async fn answers(
    harness: &Harness,
    round: usize,
    people: &[Person],
    filters: &[Filter],
) -> Vec<String> {
    let root = harness.root().await;
    let (tenant, admin) = harness.tenant(&root, &format!("filters-{round}")).await;
    let key = harness
        .engine
        .create_api_key(
            &admin,
            &tenant,
            NewApiKey {
                name: DisplayName::parse("scim").expect("name"),
                scopes: [scope("scim:write")].into(),
            },
        )
        .await
        .expect("key");
    let scim = Caller {
        principal: Principal::ApiKey {
            key_id: key.key.id,
            tenant: tenant.clone(),
        },
        request_id: "filters".to_owned(),
    };
    let mut seen = Vec::new();
    for (index, person) in people.iter().enumerate() {
        let user_name = if person.email_name {
            format!("{}@example.com", person.user_name)
        } else {
            person.user_name.clone()
        };
        let created = harness
            .engine
            .scim_create_user(
                &scim,
                &tenant,
                &json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "emails": [{ "value": format!("person{index}@example.com"), "primary": true }],
                    "externalId": person.external_id,
                    "displayName": person.display_name,
                    "active": person.active,
                }),
            )
            .await;
        seen.push(format!("{:?}", created.map(|user| user.member.user_id)));
    }
    for filter in filters {
        let page = harness
            .engine
            .scim_list_users(
                &scim,
                &tenant,
                ScimListQuery {
                    filter: Some(filter.to_string()),
                    start_index: 1,
                    count: 200,
                },
            )
            .await;
        seen.push(format!(
            "{filter} -> {:?}",
            page.map(|page| (
                page.total,
                page.users
                    .iter()
                    .map(|user| user.member.user_id)
                    .collect::<Vec<_>>()
            ))
        ));
    }
    seen
}

/// Round `round` on `store` (fresh: the harness's ids start over) beside the fake; how
/// many of its filters selected someone, and how many of those were `userName eq`.
async fn compare(
    round: usize,
    people: &[Person],
    filters: &[Filter],
    store: Arc<dyn Store>,
) -> (usize, usize) {
    let (fake, _) = Harness::fake();
    let expected = answers(&fake, round, people, filters).await;
    let got = answers(&Harness::new(store), round, people, filters).await;
    assert_eq!(got.len(), expected.len());
    for (expected, got) in expected.iter().zip(&got) {
        assert_eq!(got, expected, "round {round}: {people:?}");
    }
    let selecting: Vec<&String> = expected
        .iter()
        .skip(people.len())
        .filter(|answer| answer.contains("-> Ok((") && !answer.contains("-> Ok((0,"))
        .collect();
    let lookups = selecting
        .iter()
        .filter(|answer| answer.starts_with("userName eq "))
        .count();
    (selecting.len(), lookups)
}

/// The rounds must have selected members, by lookups too, or they proved little.
fn assert_meaningful(totals: (usize, usize)) {
    assert!(
        totals.0 >= FILTERS_PER_ROUND,
        "too few filters selected anyone: {totals:?}"
    );
    assert!(
        totals.1 >= ROUNDS,
        "too few userName lookups found anyone: {totals:?}"
    );
}

#[test]
fn scim_user_filters_select_what_the_evaluator_selects_on_postgres() {
    tests::pg::run(async {
        let mut totals = (0, 0);
        for (round, (people, filters)) in rounds().into_iter().enumerate() {
            let db = tests::pg::TestDb::create().await;
            let (selecting, lookups) =
                compare(round, &people, &filters, Arc::new(db.store(2).await)).await;
            totals = (totals.0 + selecting, totals.1 + lookups);
        }
        assert_meaningful(totals);
    });
}

#[test]
fn scim_user_filters_select_what_the_evaluator_selects_on_sqlite() {
    tests::pg::run(async {
        let mut totals = (0, 0);
        for (round, (people, filters)) in rounds().into_iter().enumerate() {
            let file = tests::sqlite::TestFile::new();
            let (selecting, lookups) =
                compare(round, &people, &filters, Arc::new(file.store().await)).await;
            totals = (totals.0 + selecting, totals.1 + lookups);
        }
        assert_meaningful(totals);
    });
}
