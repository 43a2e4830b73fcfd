//! The behaviour suite, unchanged, on the embedded SQLite store.

tests::behaviour_suite!(tests::pg::run, tests::sqlite::harness());
