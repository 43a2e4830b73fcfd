//! The differential property test: the same random steps applied to the in-memory fake
//! and to PostgreSQL must give identical observable results — every step's outcome and
//! the data reads saw, and at the end every audit trail (hashes included), event feed,
//! member list, binding and enabled scope, read straight from each store. After every
//! step the authorize API's common path is asked the same checks on both — on PostgreSQL
//! through another node (a second store over the same database, with caches of its own)
//! than the one the step ran on — so a store serving decision facts from before a change
//! (a stale cache, on any node) shows as a difference.
//! [`same_as_in_memory`] is the comparison; `differential_sqlite` runs it on SQLite.

use domain::audit::Partition;
use domain::ports::{AuditFilter, StoreTx, TxScope};
use proptest::prelude::*;
use tests::harness::Harness;
use tests::scenario::{setup, step, Step, World};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .map_or(12, |cases: u32| (cases / 16).max(12))
}

/// The differential tests' proptest settings: few cases (each is 200 steps on a real
/// store), and bounded shrinking.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        max_shrink_iters: 100,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

/// Everything a store holds that a client could observe, in a comparable form.
async fn observable(world: &World) -> Vec<String> {
    let mut tx: Box<dyn StoreTx> = world.h.store.begin(TxScope::Platform).await.expect("tx");
    let mut seen = Vec::new();
    let tenants = tx.list_tenants(None, 1000).await.expect("tenants");
    seen.push(format!("{tenants:?}"));
    let mut partitions = vec![Partition::Platform];
    for tenant in &tenants {
        partitions.push(Partition::Tenant(tenant.id.clone()));
        seen.push(format!(
            "{:?}",
            tx.list_members(&tenant.id, None, 1000)
                .await
                .expect("members")
        ));
        seen.push(format!(
            "{:?}",
            tx.list_bindings(&tenant.id).await.expect("bindings")
        ));
        seen.push(format!(
            "{:?}",
            tx.enabled_scopes(&tenant.id).await.expect("scopes")
        ));
        seen.push(format!(
            "{:?}",
            tx.list_api_keys(&tenant.id).await.expect("keys")
        ));
        seen.push(format!(
            "{:?}",
            tx.tenant_defaults(&tenant.id).await.expect("defaults")
        ));
    }
    for partition in &partitions {
        let audit = tx
            .list_audit(partition, &AuditFilter::default(), 0, 100_000)
            .await
            .expect("audit");
        seen.push(format!("{audit:?}"));
        seen.push(format!(
            "{:?}",
            tx.list_events(partition, 0, 100_000).await.expect("events")
        ));
    }
    for user in &world.users {
        seen.push(format!("{:?}", tx.get_user(user).await.expect("user")));
        seen.push(format!(
            "{:?}",
            tx.platform_values(user).await.expect("values")
        ));
    }
    seen
}

/// Runs `steps` on a fresh in-memory store and on `store`, and asserts that every step
/// and the final observable state are the same.
pub(crate) async fn same_as_in_memory(steps: &[Step], store: Harness) {
    let mut fake = setup(Harness::fake().0).await;
    let mut other = setup(store).await;
    for (index, step) in steps.iter().enumerate() {
        let caller = fake.caller(step);
        let in_memory = fake.run(step, &caller).await;
        let caller = other.caller(step);
        let in_store = other.run(step, &caller).await;
        assert_eq!(in_memory, in_store, "step {index}: {step:?}");
        assert_eq!(
            fake.fast_decisions().await,
            other.fast_decisions().await,
            "authorize's common path after step {index}: {step:?}"
        );
    }
    let expected = observable(&fake).await;
    let actual = observable(&other).await;
    assert_eq!(expected.len(), actual.len());
    for (expected, actual) in expected.iter().zip(&actual) {
        assert_eq!(expected, actual);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_same_steps_give_the_same_results_in_memory_and_on_postgres(
        steps in prop::collection::vec(step(), 200)
    ) {
        tests::pg::run(async {
            same_as_in_memory(&steps, tests::pg::two_node_harness().await).await;
        });
    }
}
