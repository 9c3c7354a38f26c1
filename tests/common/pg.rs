//! A real PostgreSQL cluster for tests: initdb in a temporary directory (as the `postgres`
//! user when the tests run as root, since initdb refuses root), started on a free port,
//! stopped (and deleted) on drop. Needs PostgreSQL's server binaries
//! (`/usr/lib/postgresql/<version>/bin`); scripts/test.sh installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgCluster {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// The newest installed server's binaries.
pub fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql); scripts/test.sh installs it")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("no PostgreSQL server binaries")
}

fn as_root() -> bool {
    // The effective uid, from `id -u` (keeps libc out of the tests).
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as `postgres` when we are root.
fn tool(bin: &Path, name: &str) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(name));
        c
    } else {
        Command::new(bin.join(name))
    }
}

fn run(mut c: Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgCluster {
    /// A new cluster with a superuser `brevis` (trust authentication on 127.0.0.1) and a
    /// database `brevis`.
    pub fn start() -> PgCluster {
        let bin = bin_dir();
        let tmp = tempfile::Builder::new()
            .prefix("brevis-pg")
            .tempdir()
            .unwrap();
        if as_root() {
            run({
                let mut c = Command::new("chown");
                c.args(["-R", "postgres"]).arg(tmp.path());
                c
            });
        }
        let data = tmp.path().join("data");
        run({
            let mut c = tool(&bin, "initdb");
            c.arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "brevis", "--no-sync", "-E", "UTF8"]);
            c
        });
        let mut cluster = PgCluster {
            port: free_port(),
            bin,
            data,
            socket_dir: tmp.path().to_path_buf(),
            _tmp: tmp,
        };
        cluster.start_server();
        run({
            let mut c = tool(&cluster.bin, "createdb");
            c.args([
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.port.to_string(),
                "-U",
                "brevis",
            ])
            .arg("brevis");
            c
        });
        cluster
    }

    fn start_server(&mut self) {
        run({
            let mut c = tool(&self.bin, "pg_ctl");
            c.arg("-D")
                .arg(&self.data)
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                    self.port,
                    self.socket_dir.display()
                ))
                .arg("-l")
                .arg(self.socket_dir.join("server.log"))
                .args(["-w", "-t", "60", "start"]);
            c
        });
    }

    /// `postgres://brevis@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://brevis@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates another database (one log per database).
    pub fn create_db(&self, name: &str) {
        run({
            let mut c = tool(&self.bin, "createdb");
            c.args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "brevis",
            ])
            .arg(name);
            c
        });
    }

    /// Runs SQL with psql and returns its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut c = tool(&self.bin, "psql");
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "brevis",
            "-d",
            db,
            "-At",
            "-c",
            sql,
        ]);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A plain SQL dump of `db` (a backup), kept in the cluster's directory.
    pub fn dump(&self, db: &str, name: &str) -> PathBuf {
        let path = self.socket_dir.join(format!("{name}.sql"));
        run({
            let mut c = tool(&self.bin, "pg_dump");
            c.args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "brevis",
            ])
            .arg("-f")
            .arg(&path)
            .arg(db);
            c
        });
        path
    }

    /// Replaces `db` with a dump (sessions still connected to it are ended).
    pub fn restore(&self, db: &str, dump: &Path) {
        let port = self.port.to_string();
        let base = ["-h", "127.0.0.1", "-p", port.as_str(), "-U", "brevis"];
        run({
            let mut c = tool(&self.bin, "dropdb");
            c.args(base).args(["--force", db]);
            c
        });
        run({
            let mut c = tool(&self.bin, "createdb");
            c.args(base).arg(db);
            c
        });
        run({
            let mut c = tool(&self.bin, "psql");
            c.args(base)
                .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
                .arg(dump);
            c
        });
    }

    /// Stops the server abruptly (as a crash or a failover would) and starts it again.
    pub fn restart(&mut self) {
        self.stop("immediate");
        self.start_server();
    }

    /// Stops the server (`fast` or `immediate`).
    pub fn stop(&self, mode: &str) {
        let mut c = tool(&self.bin, "pg_ctl");
        c.arg("-D").arg(&self.data).args(["-m", mode, "-w", "stop"]);
        let _ = c.output();
    }

    /// Starts a stopped server again.
    pub fn start_again(&mut self) {
        self.start_server();
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.socket_dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop("immediate");
    }
}
