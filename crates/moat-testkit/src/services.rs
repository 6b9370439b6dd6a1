//! Real database servers for tests: a PostgreSQL cluster (Debian's `initdb`/`pg_ctl`) and a Valkey or
//! Redis server, each in its own temporary directory on a free loopback port, stopped and removed on
//! `Drop`. Both can be stopped and started again on the same port, to test what a gateway does while
//! they are away.
//!
//! PostgreSQL refuses to run as root, so as root its programs run as the `postgres` user
//! (`runuser -u postgres --`) on a directory that user owns.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (free when asked; a server started right after gets it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn pg_bin(name: &str) -> PathBuf {
    for version in ["17", "16", "15", "14", "13"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin/{name}"));
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn wait_for_port(port: u16, within: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(std::io::Error::other(format!("nothing answered on port {port}")))
}

fn failed(what: &str, out: &std::process::Output) -> std::io::Error {
    std::io::Error::other(format!(
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// A PostgreSQL server of our own.
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    /// Creates a cluster (trust authentication, user `postgres`, fsync off) and starts it.
    pub fn start() -> std::io::Result<Postgres> {
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("moat-pg-").tempdir()?;
        if as_postgres {
            let out = Command::new("chown").arg("postgres:").arg(dir.path()).output()?;
            if !out.status.success() {
                return Err(failed("chown", &out));
            }
        }
        let pg = Postgres {
            dir,
            port: free_port()?,
            as_postgres,
        };
        let out = pg
            .command(&pg_bin("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"])
            .arg(pg.data())
            .output()?;
        if !out.status.success() {
            return Err(failed("initdb", &out));
        }
        pg.start_again()?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The URL of another database on this server.
    pub fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's main process (its backends are its children).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Creates a database (for tests that want one each) and returns its URL.
    pub fn create_database(&self, name: &str) -> std::io::Result<String> {
        let out = self
            .command(&pg_bin("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-d", "postgres", "-q", "-c"])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .output()?;
        if !out.status.success() {
            return Err(failed("CREATE DATABASE", &out));
        }
        Ok(self.url_of(name))
    }

    /// Runs SQL through `psql` and returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> std::io::Result<String> {
        let out = self
            .command(&pg_bin("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-d", db, "-q", "-A", "-t", "-c", sql])
            .output()?;
        if !out.status.success() {
            return Err(failed("psql", &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stops the server at once (connections are cut, as in a crash of the database host).
    pub fn stop(&self) -> std::io::Result<()> {
        let out = self
            .command(&pg_bin("pg_ctl"))
            .args(["-D"])
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output()?;
        if !out.status.success() {
            return Err(failed("pg_ctl stop", &out));
        }
        Ok(())
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&self) -> std::io::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .command(&pg_bin("pg_ctl"))
            .args(["-D"])
            .arg(self.data())
            .args(["-w", "-t", "30", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("start")
            .stdout(Stdio::null())
            .output()?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            return Err(std::io::Error::other(format!("pg_ctl start failed: {log}")));
        }
        wait_for_port(self.port, Duration::from_secs(30))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A Valkey (or Redis) server of our own, without persistence: a restart starts it empty.
pub struct Valkey {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Valkey {
    /// Starts `valkey-server` (or `redis-server` when Valkey is not installed).
    pub fn start() -> std::io::Result<Valkey> {
        let mut v = Valkey {
            dir: tempfile::Builder::new().prefix("moat-valkey-").tempdir()?,
            port: free_port()?,
            child: None,
        };
        v.start_again()?;
        Ok(v)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (its data is gone with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn start_again(&mut self) -> std::io::Result<()> {
        self.stop();
        let program = ["valkey-server", "redis-server"]
            .into_iter()
            .find(|p| {
                Command::new("sh")
                    .args(["-c", &format!("command -v {p}")])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .ok_or_else(|| std::io::Error::other("neither valkey-server nor redis-server is installed"))?;
        let child = Command::new(program)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10))
    }

    /// Sends one command through `valkey-cli`/`redis-cli` and returns its output.
    pub fn cli(&self, args: &[&str]) -> std::io::Result<String> {
        let program = if Command::new("sh")
            .args(["-c", "command -v valkey-cli"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            "valkey-cli"
        } else {
            "redis-cli"
        };
        let out = Command::new(program)
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Valkey {
    fn drop(&mut self) {
        self.stop();
    }
}
