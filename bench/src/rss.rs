//! `cargo xtask bench rss [seconds]`: the resident memory of `user-engine serve` — the
//! release binary as an operator runs it — on the embedded store and on PostgreSQL:
//! idle after start, after the first login and setup (a tenant, an API key), its peak
//! under the authorize load of `bench http` (64 connections), and what it holds after.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::http::{authorize_fixture, load, login, Request, CONNECTIONS};
use crate::process::{mib, resident_kib};
use crate::{database_url, Failure};

const ROOT_EMAIL: &str = "root@bench.example";
const ROOT_PASSWORD: &str = "bench root password";
/// How long a process is left alone before its memory is read as idle or settled.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    println!(
        "# serve memory: idle, after setup, peak under {seconds} s of authorize at \
         {CONNECTIONS} connections, and after it (MiB)"
    );
    println!(
        "| store | idle | after setup | peak under load | after load | authorize requests/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let dir = tests::cluster::TempDir::new("bench-rss");
    let data_dir = dir.0.display().to_string();
    let postgres = database_url(name);
    for (store, env) in [
        (
            "embedded SQLite",
            ("USER_ENGINE_DATA_DIR", data_dir.as_str()),
        ),
        (
            "PostgreSQL",
            ("USER_ENGINE_DATABASE_URL", postgres.as_str()),
        ),
    ] {
        let node = tests::nodes::Node::serve(
            "serve",
            &[
                env,
                ("USER_ENGINE_LISTEN", "127.0.0.1:0"),
                ("USER_ENGINE_BOOTSTRAP_EMAIL", ROOT_EMAIL),
                ("USER_ENGINE_BOOTSTRAP_PASSWORD", ROOT_PASSWORD),
            ],
        );
        let pid = node.pid().ok_or("serve is not running")?;
        tokio::time::sleep(SETTLE).await;
        let (idle, _) = resident_kib(pid)?;
        let base = node.base_url();
        let client = reqwest::Client::new();
        let root = login(&client, &base, ROOT_EMAIL, ROOT_PASSWORD).await?;
        let (member, key) = authorize_fixture(&client, &base, &root).await?;
        if key.is_empty() {
            return Err(format!("no API key from serve on {store}: {}", node.logs()).into());
        }
        tokio::time::sleep(SETTLE).await;
        let (setup, _) = resident_kib(pid)?;
        let url = format!("{base}/v1/tenants/bench/authorize");
        let body = json!({ "subject": { "user_id": member, "assurance": "aal1" }, "scope": "tenant:read" });
        let request: Request = Arc::new(move |client: &reqwest::Client| {
            client.post(&url).bearer_auth(&key).json(&body)
        });
        let loaded = load(CONNECTIONS, Duration::from_secs(seconds), request).await?;
        let (_, peak) = resident_kib(pid)?;
        tokio::time::sleep(SETTLE).await;
        let (after, _) = resident_kib(pid)?;
        println!(
            "| {store} | {} | {} | {} | {} | {:.0} |",
            mib(idle),
            mib(setup),
            mib(peak),
            mib(after),
            loaded.per_second()
        );
    }
    println!(
        "\nSetup includes the first argon2id verification, whose working memory (19 MiB, \
         the OWASP parameters) the hashing thread keeps for the next one."
    );
    Ok(())
}
