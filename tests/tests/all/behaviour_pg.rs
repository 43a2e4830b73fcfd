//! The behaviour suite, unchanged, on PostgreSQL.

tests::behaviour_suite!(tests::pg::run, tests::pg::harness());
