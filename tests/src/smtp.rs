//! A real SMTP server for the mail tests: `tests/checkers/smtp_sink.py` (aiosmtpd, pinned
//! in `xtask/checkers-requirements.txt`) in a child process, on a port of its own.
//! Every message it accepts is kept, parsed enough to assert on.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The whole message as sent (headers and MIME parts).
    pub data: String,
}

impl Received {
    /// The decoded `Subject` header.
    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// The message with quoted-printable soft breaks joined and `=XX` escapes decoded
    /// (what a mail reader shows of an ASCII body).
    pub fn text(&self) -> String {
        let decoded =
            quoted_printable::decode(self.data.as_bytes(), quoted_printable::ParseMode::Robust)
                .unwrap_or_else(|_| self.data.as_bytes().to_vec());
        String::from_utf8_lossy(&decoded).into_owned()
    }

    /// The token of the plain-text part (`Your code: …` or `Or enter this code: …`).
    pub fn token(&self) -> Option<String> {
        self.text().lines().find_map(|line| {
            let line = line.trim();
            line.strip_prefix("Your code: ")
                .or_else(|| line.strip_prefix("Or enter this code: "))
                .map(|token| token.trim().to_owned())
        })
    }
}

/// The Python the checkers are installed in: `USER_ENGINE_TEST_PYTHON` (set by `cargo
/// xtask ci`), else `target/checkers-venv/bin/python`.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("USER_ENGINE_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("checkers-venv")
        .join("bin")
        .join("python");
    assert!(
        venv.exists(),
        "the pinned aiosmtpd is not installed: run `cargo xtask checkers` (cargo xtask ci \
         does it before the tests)"
    );
    venv
}

/// A free port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// The running SMTP server; killed when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    pub port: u16,
    child: Option<Child>,
    received: Arc<Mutex<Vec<Received>>>,
    tempfail: PathBuf,
}

impl SmtpSink {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` (to bring one back where it was).
    pub fn start_on(port: u16) -> Self {
        let tempfail = std::env::temp_dir().join(format!(
            "user-engine-smtp-tempfail-{}-{port}",
            std::process::id()
        ));
        let mut sink = Self {
            port,
            child: None,
            received: Arc::new(Mutex::new(Vec::new())),
            tempfail,
        };
        sink.restart();
        sink
    }

    /// `smtp://127.0.0.1:{port}` (no TLS: a loopback test server).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops the server (connections are refused until [`SmtpSink::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on its port, keeping what it received.
    pub fn restart(&mut self) {
        self.stop();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("checkers")
            .join("smtp_sink.py");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(python())
                .arg(&script)
                .arg("--port")
                .arg(self.port.to_string())
                .arg("--tempfail-file")
                .arg(&self.tempfail)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the SMTP sink starts");
            let stdout = child.stdout.take().expect("stdout");
            let mut lines = BufReader::new(stdout).lines();
            match lines.next() {
                Some(Ok(line)) if line.starts_with("ready") => {
                    let received = self.received.clone();
                    std::thread::spawn(move || {
                        for line in lines.map_while(Result::ok) {
                            let Ok(record) = serde_json::from_str::<Value>(&line) else {
                                continue;
                            };
                            let message = Received {
                                mail_from: record["mail_from"].as_str().unwrap_or("").to_owned(),
                                rcpt_tos: record["rcpt_tos"]
                                    .as_array()
                                    .map(|list| {
                                        list.iter()
                                            .filter_map(Value::as_str)
                                            .map(str::to_owned)
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                                data: record["data"].as_str().unwrap_or("").to_owned(),
                            };
                            received.lock().expect("received").push(message);
                        }
                    });
                    self.child = Some(child);
                    return;
                }
                _ => {
                    // The port may still be held by the server just stopped.
                    let _ = child.kill();
                    let _ = child.wait();
                    assert!(
                        Instant::now() < deadline,
                        "the SMTP sink did not start on port {}",
                        self.port
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// While on, the server answers every message 451 (try again later).
    pub fn tempfail(&self, on: bool) {
        if on {
            std::fs::write(&self.tempfail, b"451").expect("tempfail flag");
        } else {
            let _ = std::fs::remove_file(&self.tempfail);
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    /// Waits (at most `within`) until `count` messages arrived; returns them all.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count || Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
        self.tempfail(false);
    }
}
