//! The differential property test on SQLite: the same random steps in memory and on the
//! embedded store give the same results, step by step and in the final state.

use proptest::prelude::*;
use tests::scenario::step;

use crate::differential::{config, same_as_in_memory};

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_same_steps_give_the_same_results_in_memory_and_on_sqlite(
        steps in prop::collection::vec(step(), 200)
    ) {
        tests::pg::run(async {
            same_as_in_memory(&steps, tests::sqlite::harness().await).await;
        });
    }
}
