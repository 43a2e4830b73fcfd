//! The behaviour suite, unchanged, on PostgreSQL behind PgBouncer in transaction pooling
//! mode: every transaction of the store may land in another server session, so a
//! statement that leaned on its session — a named prepared statement, the role set once
//! per connection — would fail, or run as the login role outside row-level security
//! (the isolation and single-use tests of the suite would see it).

tests::behaviour_suite!(tests::pg::run, tests::pg::pooled_harness());
