//! Private servers a test starts and owns: a PostgreSQL cluster in a temporary directory
//! (its own port on 127.0.0.1, removed at the end) and the certificates of a test CA, made
//! with the `openssl` command line, for the TLS tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the test runs as root (then the server runs as the `postgres` user:
/// `initdb` and the server refuse root).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"))
}

/// Runs a command (as the `postgres` user when asked and the test runs as root) and
/// fails the test with its output when it fails.
fn run(program: &Path, args: &[&str], as_postgres: bool) {
    let mut command = if as_postgres && is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    let output = command.args(args).output().expect("the command starts");
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A free port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A temporary directory the `postgres` user may write, removed at the end.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "user-engine-{what}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        // Readable and writable by the server's user too; removed at the end.
        run(
            Path::new("chmod"),
            &["0777", &path.to_string_lossy()],
            false,
        );
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority of the test, and the certificates it signs.
#[derive(Debug)]
pub struct TestCa {
    pub dir: TempDir,
    pub cert: PathBuf,
    key: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new("ca");
        let cert = dir.0.join("ca.crt");
        let key = dir.0.join("ca.key");
        run(
            Path::new("openssl"),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &key.to_string_lossy(),
                "-out",
                &cert.to_string_lossy(),
            ],
            false,
        );
        Self { dir, cert, key }
    }

    /// A server certificate for `dns_name` (and no other name), with its key, in `dir`;
    /// returns their paths.
    pub fn server_cert(&self, dns_name: &str, dir: &Path) -> (PathBuf, PathBuf) {
        let key = dir.join("server.key");
        let request = dir.join("server.csr");
        let cert = dir.join("server.crt");
        let extensions = dir.join("server.ext");
        std::fs::write(
            &extensions,
            format!(
                "subjectAltName=DNS:{dns_name}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("extensions");
        let openssl = Path::new("openssl");
        run(
            openssl,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                &format!("/CN={dns_name}"),
                "-keyout",
                &key.to_string_lossy(),
                "-out",
                &request.to_string_lossy(),
            ],
            false,
        );
        run(
            openssl,
            &[
                "x509",
                "-req",
                "-in",
                &request.to_string_lossy(),
                "-CA",
                &self.cert.to_string_lossy(),
                "-CAkey",
                &self.key.to_string_lossy(),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extensions.to_string_lossy(),
                "-out",
                &cert.to_string_lossy(),
            ],
            false,
        );
        (cert, key)
    }
}

/// The directory of PostgreSQL's server programs (`initdb`, `pg_ctl`): Debian's
/// `/usr/lib/postgresql/<newest>/bin`, else what `pg_config --bindir` says, else `PATH`.
fn pg_bin() -> PathBuf {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = debian {
        return bin;
    }
    Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        .filter(|bin| bin.join("initdb").is_file())
        .unwrap_or_default()
}

/// A PostgreSQL cluster of its own: `initdb` in a temporary directory, trust
/// authentication, listening on 127.0.0.1 at a free port; stopped and removed at the end.
#[derive(Debug)]
pub struct PrivateCluster {
    pub port: u16,
    data: PathBuf,
    _dir: TempDir,
}

impl PrivateCluster {
    /// Starts a cluster; `settings` are appended to its `postgresql.conf`, and the
    /// server's TLS files (when given) are copied next to its data, readable by it alone.
    pub fn start(settings: &str, tls: Option<(&Path, &Path)>) -> Self {
        let dir = TempDir::new("pg");
        let data = dir.0.join("data");
        let bin = pg_bin();
        run(
            &bin.join("initdb"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            true,
        );
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_connections = 40\n{settings}\n",
            dir.0.display()
        );
        if let Some((cert, key)) = tls {
            for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
                std::fs::copy(from, data.join(to)).expect("copy a TLS file");
                if is_root() {
                    run(
                        Path::new("chown"),
                        &["postgres", &data.join(to).to_string_lossy()],
                        false,
                    );
                }
                run(
                    Path::new("chmod"),
                    &["0600", &data.join(to).to_string_lossy()],
                    false,
                );
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        let port = free_port();
        conf.push_str(&format!("port = {port}\n"));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        std::io::Write::write_all(&mut file, conf.as_bytes()).expect("settings written");
        run(
            &bin.join("pg_ctl"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &dir.0.join("server.log").to_string_lossy(),
                "-w",
                "start",
            ],
            true,
        );
        Self {
            port,
            data,
            _dir: dir,
        }
    }

    /// A URL of the cluster's `postgres` database as its superuser, at `host`, with
    /// `query` appended (`sslmode=…`).
    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let pg_ctl = pg_bin().join("pg_ctl");
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            command
        } else {
            Command::new(&pg_ctl)
        };
        let _ = command
            .args([
                "-D",
                &self.data.to_string_lossy(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}
