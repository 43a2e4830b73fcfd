//! SPEC §4 `DELETE /v1/users/{user}` end to end on both stores, with mail on: after a
//! user with a membership, profile values, a session, a pending email change and mailed
//! tokens is erased, their addresses and values appear in no table of the database —
//! every column of every row read as text, events and the mail queue included.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use server::config::{Config, Secret};
use sqlx::Row;
use tests::http::{
    assert_problem, assert_status, enrol_totp, put, spawn_app_configured, AppDb, AppOptions,
    StoreKind, TestApp, PASSWORD,
};
use tests::smtp::SmtpSink;

/// What erasure must leave nowhere (emails and a profile value all carry it).
const MARK: &str = "erase-me";

/// How many rows of each table hold `MARK` anywhere in their text.
async fn rows_with_mark(app: &TestApp) -> Vec<(String, i64)> {
    let pattern = format!("%{MARK}%");
    let mut found = Vec::new();
    match &app.db {
        AppDb::Postgres(db) => {
            let mut owner = db.owner_connection().await;
            let tables: Vec<String> = sqlx::query_scalar(
                "select c.relname::text from pg_class c \
                 join pg_namespace n on n.oid = c.relnamespace \
                 where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1",
            )
            .fetch_all(&mut owner)
            .await
            .expect("tables");
            assert!(tables.iter().any(|table| table == "outbox_events"));
            for table in tables {
                let count: i64 = sqlx::query_scalar(&format!(
                    "select count(*) from \"{table}\" t where t::text ilike $1"
                ))
                .bind(&pattern)
                .fetch_one(&mut owner)
                .await
                .expect("count");
                found.push((table, count));
            }
        }
        AppDb::Sqlite(file) => {
            let mut connection = file.connection().await;
            let tables: Vec<String> = sqlx::query_scalar(
                "select name from sqlite_master where type = 'table' \
                 and name not like 'sqlite_%' order by 1",
            )
            .fetch_all(&mut connection)
            .await
            .expect("tables");
            assert!(tables.iter().any(|table| table == "outbox_events"));
            for table in tables {
                let columns: Vec<String> = sqlx::query(&format!("pragma table_info(\"{table}\")"))
                    .fetch_all(&mut connection)
                    .await
                    .expect("columns")
                    .iter()
                    .map(|row| row.get::<String, _>("name"))
                    .collect();
                let text = columns
                    .iter()
                    .map(|column| format!("coalesce(cast(\"{column}\" as text), '')"))
                    .collect::<Vec<_>>()
                    .join(" || ' ' || ");
                let count: i64 = sqlx::query_scalar(&format!(
                    "select count(*) from \"{table}\" where ({text}) like ?1"
                ))
                .bind(&pattern)
                .fetch_one(&mut connection)
                .await
                .expect("count");
                found.push((table, count));
            }
        }
    }
    found
}

async fn an_erased_user_leaves_no_address_or_value_in_any_table(store: StoreKind) {
    let sink = SmtpSink::start();
    let url = sink.url();
    let (app, _) =
        spawn_app_configured(store, AppOptions::default(), move |config: &mut Config| {
            config.smtp_url = Some(Secret::new(url));
            config.mail_from = Some("accounts@engine.test".to_owned());
            config.delivery_retry_max_seconds = 1;
        })
        .await;
    let root = app.root_token().await;
    enrol_totp(&app, &root).await;
    let tenant = app
        .post(
            "/v1/tenants",
            &root,
            json!({"id": "acme", "display_name": "Acme", "admin": {"email": "admin@acme.test"}}),
        )
        .await;
    assert_status(&tenant, StatusCode::CREATED);
    let created = app
        .post(
            "/v1/users",
            &root,
            json!({"email": format!("{MARK}@example.com"), "password": PASSWORD}),
        )
        .await;
    assert_status(&created, StatusCode::CREATED);
    let user = created.body["id"].as_str().expect("id").to_owned();
    let added = app
        .post(
            "/v1/tenants/acme/members",
            &root,
            json!({"user_id": user, "roles": ["member"]}),
        )
        .await;
    assert_status(&added, StatusCode::CREATED);
    let value = put(
        &app,
        &format!("/v1/users/{user}/profile/timezone"),
        &root,
        json!({"value": format!("{MARK}-zone")}),
    )
    .await;
    assert_status(&value, StatusCode::OK);
    let value = put(
        &app,
        &format!("/v1/tenants/acme/members/{user}/profile/locale"),
        &root,
        json!({"value": format!("{MARK}-locale")}),
    )
    .await;
    assert!(value.status.is_success(), "{value:?}");
    let session = app.login(&format!("{MARK}@example.com"), PASSWORD).await;
    let pending = put(
        &app,
        "/v1/me/email",
        &session,
        json!({"email": format!("{MARK}-next@example.com"), "current_password": PASSWORD}),
    )
    .await;
    assert_status(&pending, StatusCode::ACCEPTED);
    let reset = app
        .post(
            "/v1/auth/password-reset",
            "",
            json!({"email": format!("{MARK}@example.com")}),
        )
        .await;
    assert_status(&reset, StatusCode::ACCEPTED);
    // The root's new-factor notice, the invitation, the verification and the reset are
    // sent (and kept as sent rows); the last three go to the user's addresses.
    let sent = sink.wait_for(4, Duration::from_secs(20)).await;
    assert_eq!(sent.len(), 4, "{sent:?}");
    let to_user = sent
        .iter()
        .filter(|mail| mail.rcpt_tos.iter().any(|to| to.contains(MARK)))
        .count();
    assert_eq!(to_user, 2, "the verification and the reset: {sent:?}");
    let before = rows_with_mark(&app).await;
    for table in [
        "users",
        "outbox_events",
        "mail_queue",
        "email_verifications",
    ] {
        assert!(
            before
                .iter()
                .any(|(name, count)| name == table && *count > 0),
            "{table} held the address before: {before:?}"
        );
    }

    let erased = app
        .send(
            Method::DELETE,
            &format!("/v1/users/{user}"),
            Some(&root),
            None,
        )
        .await;
    assert_status(&erased, StatusCode::NO_CONTENT);
    let after: Vec<_> = rows_with_mark(&app)
        .await
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .collect();
    assert!(after.is_empty(), "still there: {after:?}");

    let read = app.get(&format!("/v1/users/{user}"), &root).await;
    assert_problem(&read, StatusCode::NOT_FOUND, "user_not_found");
    let again = app
        .send(
            Method::DELETE,
            &format!("/v1/users/{user}"),
            Some(&root),
            None,
        )
        .await;
    assert_problem(&again, StatusCode::NOT_FOUND, "user_not_found");
    let refused = app.get("/v1/me", &session).await;
    assert_problem(&refused, StatusCode::UNAUTHORIZED, "unauthenticated");
    let member = app
        .get(&format!("/v1/tenants/acme/members/{user}"), &root)
        .await;
    assert_problem(&member, StatusCode::NOT_FOUND, "member_not_found");
}

async fn erasure_refuses_the_last_root_and_needs_aal2(store: StoreKind) {
    let (app, _) = spawn_app_configured(store, AppOptions::default(), |_| {}).await;
    let root = app.root_token().await;
    let me = app.get("/v1/me", &root).await;
    let root_id = me.body["user"]["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/users/{root_id}");
    let reply = app.send(Method::DELETE, &path, Some(&root), None).await;
    assert_problem(&reply, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(reply.body["reason"], "insufficient_assurance");
    enrol_totp(&app, &root).await;
    let reply = app.send(Method::DELETE, &path, Some(&root), None).await;
    assert_problem(&reply, StatusCode::CONFLICT, "last_platform_root");
    let reply = app
        .send(Method::DELETE, "/v1/users/not-a-uuid", Some(&root), None)
        .await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_user_id");
}

tests::on_both_stores!(
    an_erased_user_leaves_no_address_or_value_in_any_table,
    erasure_refuses_the_last_root_and_needs_aal2,
);
