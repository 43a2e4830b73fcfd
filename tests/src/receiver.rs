//! A webhook receiver for the webhook tests: `tests/checkers/webhook_receiver.py`, which
//! verifies each request with the `standardwebhooks` library (pinned in
//! `xtask/checkers-requirements.txt`), in a child process on a port of its own.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::smtp::{free_port, python};

/// The running receiver; killed when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    pub port: u16,
    child: Child,
    received: Arc<Mutex<Vec<Value>>>,
    secrets: BTreeMap<String, String>,
    secrets_file: PathBuf,
    fail_file: PathBuf,
}

impl WebhookReceiver {
    pub fn start() -> Self {
        let port = free_port();
        let base = std::env::temp_dir().join(format!(
            "user-engine-webhooks-{}-{port}",
            std::process::id()
        ));
        let secrets_file = base.with_extension("secrets.json");
        let fail_file = base.with_extension("fail");
        std::fs::write(&secrets_file, "{}").expect("secrets file");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("checkers")
            .join("webhook_receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--secrets-file")
            .arg(&secrets_file)
            .arg("--fail-file")
            .arg(&fail_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the webhook receiver starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        assert!(
            matches!(lines.next(), Some(Ok(line)) if line == "ready"),
            "the webhook receiver did not start"
        );
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(record) = serde_json::from_str::<Value>(&line) {
                    sink.lock().expect("received").push(record);
                }
            }
        });
        Self {
            port,
            child,
            received,
            secrets: BTreeMap::new(),
            secrets_file,
            fail_file,
        }
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The secret requests to `path` are verified with.
    pub fn set_secret(&mut self, path: &str, secret: &str) {
        self.secrets.insert(path.to_owned(), secret.to_owned());
        let text = serde_json::to_string(&self.secrets).expect("json");
        let temporary = self.secrets_file.with_extension("tmp");
        std::fs::write(&temporary, text).expect("secrets");
        std::fs::rename(&temporary, &self.secrets_file).expect("secrets");
    }

    /// While on, every request is answered 500.
    pub fn fail(&self, on: bool) {
        if on {
            std::fs::write(&self.fail_file, b"500").expect("fail flag");
        } else {
            let _ = std::fs::remove_file(&self.fail_file);
        }
    }

    /// Every request so far, as the receiver recorded it.
    pub fn received(&self) -> Vec<Value> {
        self.received.lock().expect("received").clone()
    }

    /// Waits (at most `within`) until `done` holds for what was received; returns it.
    pub async fn wait_until(
        &self,
        within: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if done(&received) || Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.secrets_file);
        let _ = std::fs::remove_file(&self.fail_file);
    }
}
