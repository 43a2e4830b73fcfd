//! `user-engine audit verify`: walks audit trails with the domain's chain verification
//! and words the result, one line per trail, for an operator.
//!
//! The binary only parses flags and maps the outcome to an exit status; the work sits
//! here so the tests run exactly what the command runs, without spawning the binary.

use domain::audit::{ChainBreak, ChainBreakKind, Partition};
use domain::ids::TenantId;
use domain::ports::{Store, TxScope};
use domain::usecases::Engine;

/// One verified trail: the partition and either its record count or its first break.
pub type TrailVerdict = (Partition, Result<u64, ChainBreak>);

/// What `audit verify` prints, and whether every trail was intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<String>,
    pub intact: bool,
}

/// Verifies one tenant's trail, or the platform's and every tenant's when `tenant` is
/// `None`. An unknown tenant is an error rather than an empty, "intact" trail, so a
/// mistyped `--tenant` cannot pass for a clean bill of health.
pub async fn verify(
    engine: &Engine,
    store: &dyn Store,
    tenant: Option<&TenantId>,
) -> Result<Vec<TrailVerdict>, String> {
    match tenant {
        None => engine
            .verify_all_trails()
            .await
            .map_err(|error| format!("verifying the audit trails failed: {error}")),
        Some(tenant) => {
            let exists = {
                let mut tx = store
                    .begin(TxScope::Platform)
                    .await
                    .map_err(|error| format!("cannot read the tenants: {error}"))?;
                tx.get_tenant(tenant)
                    .await
                    .map_err(|error| format!("cannot read the tenants: {error}"))?
                    .is_some()
            };
            if !exists {
                return Err(format!("no tenant {tenant}"));
            }
            let partition = Partition::Tenant(tenant.clone());
            let verdict = engine.verify_trail(&partition).await.map_err(|error| {
                format!("verifying the audit trail of {tenant} failed: {error}")
            })?;
            Ok(vec![(partition, verdict)])
        }
    }
}

/// Words each verdict as one line: `acme: 42 records, intact` or
/// `acme: BROKEN at seq 7 (record <id>): modified`.
pub fn report(verdicts: &[TrailVerdict]) -> Report {
    let lines = verdicts
        .iter()
        .map(|(partition, verdict)| line(partition, verdict))
        .collect();
    let intact = verdicts.iter().all(|(_, verdict)| verdict.is_ok());
    Report { lines, intact }
}

fn line(partition: &Partition, verdict: &Result<u64, ChainBreak>) -> String {
    let name = partition.name();
    match verdict {
        Ok(1) => format!("{name}: 1 record, intact"),
        Ok(count) => format!("{name}: {count} records, intact"),
        Err(broken) => {
            let kind = match broken.kind {
                ChainBreakKind::Modified => "modified",
                ChainBreakKind::Missing => "missing",
                ChainBreakKind::Reordered => "reordered",
            };
            match broken.record {
                Some(record) => format!(
                    "{name}: BROKEN at seq {} (record {record}): {kind}",
                    broken.seq
                ),
                None => format!("{name}: BROKEN at seq {}: {kind}", broken.seq),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intact_trail_reads_as_its_record_count() {
        let verdicts = [(Partition::Platform, Ok(3))];
        let report = report(&verdicts);
        assert!(report.intact);
        assert_eq!(
            report.lines,
            vec!["_platform: 3 records, intact".to_owned()]
        );
    }

    #[test]
    fn a_broken_trail_names_its_seq_and_kind() {
        let verdicts = [
            (Partition::Platform, Ok(1)),
            (
                Partition::Platform,
                Err(ChainBreak {
                    kind: ChainBreakKind::Missing,
                    seq: 4,
                    record: None,
                }),
            ),
        ];
        let report = report(&verdicts);
        assert!(!report.intact);
        assert_eq!(
            report.lines,
            vec![
                "_platform: 1 record, intact".to_owned(),
                "_platform: BROKEN at seq 4: missing".to_owned(),
            ]
        );
    }
}
