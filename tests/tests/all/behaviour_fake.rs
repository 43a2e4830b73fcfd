//! The behaviour suite on the in-memory store, on a multi-threaded runtime like the
//! other stores' (the race scenarios spawn tasks).

use tests::harness::Harness;

tests::behaviour_suite!(tests::pg::run, async { Harness::fake().0 });
