//! `cargo xtask bench audit [records]`: the peak resident set of `user-engine audit
//! verify` and of `user-engine diagnose` (whose `audit.chain_intact` check walks the
//! trail too) on a trail of 1,000 records and on one of 1,000,000 (or `records`), in the
//! same database. Both stream the trail page by page, so the large trail should cost
//! about what the small one does; the target is within 2×.
//!
//! The trails are real chains: a tenant created through the engine, then records sealed
//! with the domain's own `AuditRecord::seal` after its head and loaded with COPY, the head
//! moved to the last one — so `audit verify` must find them intact.

use domain::audit::{Actor, ActorType, AuditDraft, AuditRecord, AuditTarget};
use domain::audit::{Outcome, Partition};
use domain::ids::{AuditId, TenantId};
use serde_json::Value;
use sqlx::Row;

use crate::process::{run_measured, Measured};
use crate::seed::{audit_copy_row, AUDIT_COPY_COLUMNS};
use crate::{create_tenant, database_url, insert_root, insert_user, Failure};

const SMALL: u64 = 1_000;
const DEFAULT_LARGE: u64 = 1_000_000;
/// Records per COPY.
const CHUNK: u64 = 50_000;
/// Each command is measured this many times on each trail, the trails alternating.
const ROUNDS: usize = 2;

pub async fn run(name: &str, records: Option<u64>) -> Result<(), Failure> {
    let large = records.unwrap_or(DEFAULT_LARGE).max(SMALL);
    let url = database_url(name);
    let owner = sqlx::PgPool::connect(&url).await?;
    adapters_pg::migrate(&owner).await?;
    let root = insert_root(&owner).await?;
    let engine = crate::engine(&url, 2).await?;
    let trails = [("audit-small", SMALL), ("audit-large", large)];
    println!("# audit benchmark: trails of {SMALL} and {large} records, each command run {ROUNDS} times per trail");
    let filling = std::time::Instant::now();
    for (tenant, records) in trails {
        let admin = insert_user(&owner, &format!("admin@{tenant}.example")).await?;
        create_tenant(&engine, &root, &TenantId::parse(tenant)?, admin).await?;
        extend_trail(&owner, &TenantId::parse(tenant)?, records).await?;
    }
    sqlx::query("analyze").execute(&owner).await?;
    println!(
        "(trails written in {:.1} s)\n",
        filling.elapsed().as_secs_f64()
    );

    let bin = tests::nodes::user_engine_bin();
    let env = [
        ("USER_ENGINE_DATABASE_URL", url.as_str()),
        ("USER_ENGINE_LOG", "warn"),
    ];
    println!("| command | trail | peak RSS (MiB), each run | time (s), each run |");
    println!("|---|---:|---|---|");
    let mut ratios = Vec::new();
    for (command, args) in [
        ("audit verify", ["audit", "verify", "--tenant"]),
        ("diagnose", ["diagnose", "--json", "--tenant"]),
    ] {
        let mut runs: [Vec<Measured>; 2] = Default::default();
        for _ in 0..ROUNDS {
            for ((tenant, _), runs) in trails.iter().zip(&mut runs) {
                let measured = run_measured(&bin, &[args.as_slice(), &[tenant]].concat(), &env)?;
                check(command, tenant, &measured)?;
                runs.push(measured);
            }
        }
        let mut peaks = Vec::new();
        for ((_, records), runs) in trails.iter().zip(&runs) {
            peaks.push(
                runs.iter()
                    .map(|run| run.peak_kib)
                    .max()
                    .unwrap_or_default(),
            );
            println!(
                "| `user-engine {command}` | {records} | {} | {} |",
                runs.iter()
                    .map(|run| format!("{:.1}", run.peak_mib()))
                    .collect::<Vec<_>>()
                    .join(" / "),
                runs.iter()
                    .map(|run| format!("{:.2}", run.elapsed.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(" / "),
            );
        }
        if let [small, large_peak] = peaks.as_slice() {
            ratios.push((command, *large_peak as f64 / (*small).max(1) as f64));
        }
    }
    for (command, ratio) in ratios {
        println!("\n{command}: peak RSS on {large} records / on {SMALL} = {ratio:.2} (target ≤ 2)");
    }
    owner.close().await;
    Ok(())
}

/// What a run must have said: `audit verify` exits 0 naming the trail intact; `diagnose`
/// reports `audit.chain_intact` passing.
fn check(command: &str, tenant: &str, measured: &Measured) -> Result<(), Failure> {
    let ok = if command == "audit verify" {
        measured.code == Some(0) && measured.output.contains(tenant)
    } else {
        serde_json::from_str::<Value>(&measured.output)
            .ok()
            .and_then(|report| {
                let field = |check: &Value, name: &str| {
                    check.get(name).and_then(Value::as_str).map(str::to_owned)
                };
                report
                    .get("checks")
                    .and_then(Value::as_array)
                    .and_then(|checks| {
                        checks
                            .iter()
                            .find(|check| {
                                field(check, "id").as_deref()
                                    == Some(diagnostics::ids::AUDIT_CHAIN_INTACT)
                            })
                            .map(|check| field(check, "status").as_deref() == Some("pass"))
                    })
            })
            .unwrap_or(false)
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`user-engine {command}` on {tenant} did not find the trail intact ({:?}): {}",
            measured.code, measured.output
        )
        .into())
    }
}

/// Appends records after the tenant's head until its trail holds `records`, then moves
/// the head to the last one, as the store would have.
async fn extend_trail(
    owner: &sqlx::PgPool,
    tenant: &TenantId,
    records: u64,
) -> Result<(), Failure> {
    let head =
        sqlx::query("select audit_seq, audit_hash from partition_heads where partition = $1")
            .bind(tenant.as_str())
            .fetch_one(owner)
            .await?;
    let mut seq = u64::try_from(head.try_get::<i64, _>("audit_seq")?)?;
    let mut prev_hash: String = head.try_get("audit_hash")?;
    let mut connection = owner.acquire().await?;
    let at = time::OffsetDateTime::now_utc();
    while seq < records {
        let mut rows = String::new();
        let end = records.min(seq + CHUNK);
        for next in seq + 1..=end {
            let record = AuditRecord::seal(
                AuditDraft {
                    id: AuditId::from_generated(uuid::Uuid::now_v7()),
                    partition: Partition::Tenant(tenant.clone()),
                    at,
                    actor: Actor {
                        kind: ActorType::ApiKey,
                        id: "bench".to_owned(),
                    },
                    action: "authz.check",
                    target: AuditTarget {
                        kind: "tenant",
                        id: tenant.to_string(),
                    },
                    outcome: Outcome::Allowed,
                    reason: "bench".to_owned(),
                    request_id: format!("bench-{next}"),
                },
                next,
                &prev_hash,
            );
            rows.push_str(&audit_copy_row(tenant.as_str(), tenant.as_str(), &record));
            rows.push('\n');
            prev_hash = record.hash;
        }
        let mut copy = connection
            .copy_in_raw(&format!(
                "copy audit_records ({AUDIT_COPY_COLUMNS}) from stdin"
            ))
            .await?;
        copy.send(rows.into_bytes()).await?;
        copy.finish().await?;
        seq = end;
    }
    sqlx::query("update partition_heads set audit_seq = $2, audit_hash = $3 where partition = $1")
        .bind(tenant.as_str())
        .bind(i64::try_from(seq)?)
        .bind(&prev_hash)
        .execute(owner)
        .await?;
    Ok(())
}
