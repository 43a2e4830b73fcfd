//! `cargo xtask bench audit [records]`: the peak resident set of `user-engine audit
//! verify` and of `user-engine diagnose` (whose `audit.chain_intact` check walks the
//! trail too) on a trail of 1,000 records and on one of 1,000,000 (or `records`), in the
//! same database. Both stream the trail page by page, so the large trail should cost
//! about what the small one does; the target is within 2×.
//!
//! The trails are real chains: a tenant created through the engine, then records sealed
//! with the domain's own `AuditRecord::seal` after its head and loaded with COPY, the head
//! moved to the last one — so `audit verify` must find them intact.

use domain::audit::{format_timestamp, Actor, ActorType, AuditDraft, AuditRecord, AuditTarget};
use domain::audit::{Outcome, Partition};
use domain::ids::{AuditId, DisplayName, TenantId, UserId};
use domain::usecases::{CreateTenant, UserRef};
use serde_json::Value;
use sqlx::Row;

use crate::process::{run_measured, Measured};
use crate::{database_url, insert_root, Failure};

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
        let admin = uuid::Uuid::now_v7();
        sqlx::query(
            "insert into users (user_id, email, state, created_at, updated_at) \
             values ($1, $2, 'active', now(), now())",
        )
        .bind(admin)
        .bind(format!("admin@{tenant}.example"))
        .execute(&owner)
        .await?;
        engine
            .create_tenant(
                &root,
                CreateTenant {
                    id: TenantId::parse(tenant)?,
                    display_name: DisplayName::parse("Audit bench")?,
                    admin: UserRef::Id(UserId::from_generated(admin)),
                },
            )
            .await?;
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
    let mut peaks = [[0_u64; 2]; 2];
    for (command, row) in [("audit verify", 0), ("diagnose", 1)] {
        let mut runs: [Vec<Measured>; 2] = Default::default();
        for _ in 0..ROUNDS {
            for ((tenant, _), runs) in trails.iter().zip(&mut runs) {
                let args: &[&str] = if row == 0 {
                    &["audit", "verify", "--tenant", tenant]
                } else {
                    &["diagnose", "--tenant", tenant, "--json"]
                };
                let measured = run_measured(&bin, args, &env)?;
                check(command, tenant, &measured)?;
                runs.push(measured);
            }
        }
        for (index, ((_, records), runs)) in trails.iter().zip(&runs).enumerate() {
            let peak = runs
                .iter()
                .map(|run| run.peak_kib)
                .max()
                .unwrap_or_default();
            if let Some(slot) = peaks.get_mut(row).and_then(|row| row.get_mut(index)) {
                *slot = peak;
            }
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
    }
    for (command, [small, large_peak]) in ["audit verify", "diagnose"].iter().zip(peaks) {
        println!(
            "\n{command}: peak RSS on {large} records / on {SMALL} = {:.2} (target ≤ 2)",
            large_peak as f64 / small.max(1) as f64
        );
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
            rows.push_str(&format!(
                "{tenant}\t{next}\t{tenant}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                record.id,
                format_timestamp(record.at),
                record.actor.kind.as_str(),
                record.actor.id,
                record.action,
                record.target_kind,
                record.target_id,
                record.outcome.as_str(),
                record.reason,
                record.request_id,
                record.prev_hash,
                record.hash,
            ));
            prev_hash = record.hash;
        }
        let mut copy = connection
            .copy_in_raw(
                "copy audit_records (partition, seq, tenant_id, audit_id, at, actor_type, \
                 actor_id, action, target_type, target_id, outcome, reason, request_id, \
                 prev_hash, hash) from stdin",
            )
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
