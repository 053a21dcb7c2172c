//! A real PostgreSQL for the tests: `initdb` into a temporary directory,
//! `postgres` on a free loopback port (127.0.0.1 only, no Unix socket),
//! stopped and started again on the same data directory and port, killed
//! at the end.
//!
//! PostgreSQL refuses to run as root: when the tests run as root (as CI
//! does), `initdb` and `postgres` run as the `postgres` user of Debian's
//! package (the child's uid and gid are set before exec, so the child is
//! the server itself and a kill reaches it), and the temporary directory
//! is handed to that user.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::mosquitto::free_port;
use super::server::{self, running_as_root};

/// The role and the database the tests use (the role is the superuser).
pub const USER: &str = "flatback";
pub const DATABASE: &str = "flatback";

/// `/usr/lib/postgresql/<version>/bin` of the newest installed version.
pub fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "these tests need a PostgreSQL server (no /usr/lib/postgresql/*/bin/initdb): run \
             tests/setup.sh (it installs the Debian package `postgresql`), then cargo test again"
        )
    })
}

/// The uid and gid of the `postgres` user (from /etc/passwd).
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == "postgres").then(|| (f[2].parse().unwrap(), f[3].parse().unwrap()))
        })
        .expect(
            "running as root, the tests start PostgreSQL as the `postgres` user, and there is none: \
             run tests/setup.sh (Debian's `postgresql` package creates it)",
        )
}

/// A password nobody guesses, from the clock and the process.
fn new_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("pw{:016x}", h.finish())
}

/// The server's settings: loopback only, no Unix socket (nothing in
/// /var/run/postgresql), small and quick (a test's data need not survive a
/// power cut).
const SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "unix_socket_directories=",
    "fsync=off",
    "max_connections=30",
    "shared_buffers=16MB",
];

pub struct Postgres {
    port: u16,
    password: String,
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The postgres user's (uid, gid) when we are root.
    run_as: Option<(u32, u32)>,
    /// More `-c name=value` settings (TLS).
    settings: Vec<String>,
    child: Option<Child>,
}

impl Postgres {
    /// A new cluster with the role `flatback` (password in
    /// `password_file()`) and its database `flatback`; returns once it
    /// accepts connections.
    pub fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// The same, with TLS on (besides plain connections): the server's
    /// certificate chain and key, PEM.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Postgres {
        Postgres::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let run_as = running_as_root().then(postgres_user);
        let password = new_password();
        std::fs::write(dir.path().join("password"), format!("{password}\n")).unwrap();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(dir.path().join("password"), Some(uid), Some(gid)).unwrap();
        }
        let mut pg = Postgres {
            port: free_port(),
            password,
            dir,
            bin,
            run_as,
            settings: Vec::new(),
            child: None,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data_dir())
            .args(["-U", USER, "--no-locale", "-E", "UTF8", "--no-sync"])
            .args(["--auth-host=scram-sha-256", "--auth-local=scram-sha-256"])
            .arg(format!("--pwfile={}", pg.password_file().display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some((cert, key)) = tls {
            // The key must belong to the server's user and be private to it.
            for (name, pem, mode) in [("server.crt", cert, 0o644), ("server.key", key, 0o600)] {
                let path = pg.dir().join(name);
                std::fs::write(&path, pem).unwrap();
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
                if let Some((uid, gid)) = run_as {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
                }
            }
            pg.settings = vec![
                "ssl=on".into(),
                format!("ssl_cert_file={}", pg.dir().join("server.crt").display()),
                format!("ssl_key_file={}", pg.dir().join("server.key").display()),
            ];
        }
        pg.start_again();
        pg.superuser("postgres")
            .batch_execute(&format!("CREATE DATABASE {DATABASE} OWNER {USER}"))
            .expect("create the test database");
        pg
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        c.current_dir(self.dir.path()).stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            // Not root: PostgreSQL refuses to run as root.
            c.uid(uid).gid(gid);
        }
        c
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://flatback@127.0.0.1:PORT/flatback` (no password in it).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The password on its first line.
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("password")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// A connection as the superuser to the test database, for the tests'
    /// own queries.
    pub fn client(&self) -> postgres::Client {
        self.superuser(DATABASE)
    }

    fn config(&self, database: &str) -> postgres::Config {
        let mut c = postgres::Config::new();
        c.host("127.0.0.1")
            .port(self.port)
            .user(USER)
            .password(&self.password)
            .dbname(database)
            .connect_timeout(Duration::from_secs(5));
        c
    }

    fn superuser(&self, database: &str) -> postgres::Client {
        self.config(database)
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test PostgreSQL: {e}\nlog:\n{}", self.log()))
    }

    /// Starts the server (again) on the same data directory and port;
    /// returns once it accepts a connection.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "postgres already running");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .unwrap();
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args(
                SETTINGS
                    .iter()
                    .copied()
                    .chain(self.settings.iter().map(String::as_str))
                    .flat_map(|s| ["-c", s]),
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(30);
        let config = self.config("postgres");
        loop {
            // Until it is ready, a connection is refused or answered with
            // "the database system is starting up".
            let err = match config.connect(postgres::NoTls) {
                Ok(_) => return,
                Err(e) => e,
            };
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("postgres exited ({status}) on start; its log:\n{}", self.log());
            }
            if Instant::now() >= until {
                panic!(
                    "postgres not accepting connections on 127.0.0.1:{} after 30 s ({err}); log:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (fast shutdown: clients are disconnected, committed data
    /// stays) and waits until it has exited.
    pub fn stop(&mut self) {
        self.signal_and_wait(libc::SIGINT);
    }

    fn signal_and_wait(&mut self, signal: libc::c_int) {
        if let Some(child) = self.child.take() {
            server::stop(child, signal, Duration::from_secs(20));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate shutdown: the server and its backends exit at once and
        // release their shared memory (SIGKILL after a deadline).
        self.signal_and_wait(libc::SIGQUIT);
    }
}
