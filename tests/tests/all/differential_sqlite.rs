//! The differential property test on SQLite: the same random steps in memory and on the
//! embedded store give the same results, step by step and in the final state.

use proptest::prelude::*;
use tests::scenario::step;

use crate::differential::{cases, same_as_in_memory};

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 100,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_same_steps_give_the_same_results_in_memory_and_on_sqlite(
        steps in prop::collection::vec(step(), 200)
    ) {
        tests::pg::run(async {
            same_as_in_memory(&steps, tests::sqlite::harness().await).await;
        });
    }
}
