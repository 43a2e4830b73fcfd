//! The behaviour suite on the in-memory store.

use tests::harness::Harness;

tests::behaviour_suite!(futures::executor::block_on, async { Harness::fake().0 });
