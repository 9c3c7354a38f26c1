//! PostgreSQL: one log shared by any number of replicas. Every replica runs its own
//! sequencer; a batch is one transaction that first takes a transaction-scoped advisory
//! lock ([`LOG_LOCK`]), so batches of all replicas are serialised by the database, and the
//! index of every entry is fixed by the checkpoint read under that lock (dense, never
//! assigned twice). Entries, issuers, tiles and the new checkpoint commit together.
//!
//! The lock is the lease, and the transaction is its fencing: a writer that loses its
//! session (killed, cut off, or stalled past `idle_in_transaction_session_timeout`) loses
//! the lock and its uncommitted batch with it, so it can never publish after another
//! writer went on. The checkpoint update is also conditional on the tree growing.
//!
//! Every replica reads from the database ([`PgReader`], a connection pool); the log above
//! polls the checkpoint ([`LogReader::shared`]) so every replica serves the latest tree.
//!
//! Connections run on a small runtime of their own, so the sequencer's thread and the
//! HTTP workers' runtimes never share sockets; broken connections are replaced on the
//! next use, so the log recovers by itself when the database comes back.

use super::{
    LogReader, LogWriter, LookupKind, StoreError, StoredCheckpoint, StoredEntry, TileWrite,
};
use crate::ct::merkle::{Hash, hashes_from};
use crate::model::BoxFuture;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Socket};

/// The advisory lock every batch takes (`"brevis\0\1"`): one writer at a time per database.
pub(crate) const LOG_LOCK: i64 = 0x6272_6576_6973_0001;
/// The advisory lock schema migrations run under.
const MIGRATE_LOCK: i64 = 0x6272_6576_6973_0002;

/// Versioned schema migrations, applied in order on start under [`MIGRATE_LOCK`].
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "
CREATE TABLE meta (key text PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE checkpoint (
  id smallint PRIMARY KEY CHECK (id = 1),
  tree_size bigint NOT NULL, timestamp_ms bigint NOT NULL, root bytea NOT NULL,
  signature bytea NOT NULL, frontier bytea NOT NULL
);
CREATE TABLE entries (
  idx bigint PRIMARY KEY,
  dedup bytea NOT NULL UNIQUE,
  leaf_hash bytea NOT NULL,
  timestamp_ms bigint NOT NULL,
  signature bytea NOT NULL,
  timestamped_entry bytea NOT NULL,
  precert bytea,
  chain bytea NOT NULL
);
CREATE INDEX entries_leaf_hash ON entries (leaf_hash);
CREATE TABLE issuers (fingerprint bytea PRIMARY KEY, der bytea NOT NULL);
CREATE TABLE tiles (
  level smallint NOT NULL, idx bigint NOT NULL, hashes bytea NOT NULL,
  PRIMARY KEY (level, idx)
);
",
)];

const ENTRY_COLUMNS: &str =
    "idx, dedup, leaf_hash, timestamp_ms, signature, timestamped_entry, precert, chain";

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A libpq-style URL (`postgres://user@host:5432/db?sslmode=require`). A password in
    /// it works, but belongs in `password_file` or `PGPASSWORD`.
    pub url: String,
    /// A file holding the password (trailing newline ignored); else `PGPASSWORD`.
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates that sign the server's certificate; else the system's roots.
    pub ca_file: Option<PathBuf>,
    /// How long a writer may sit inside a batch without talking to the database before the
    /// database ends its session, releasing the lock (takeover after a stalled replica).
    pub lease_timeout: Duration,
    /// Longest one statement may run.
    pub statement_timeout: Duration,
    /// Connections in the read pool.
    pub pool_size: usize,
}

impl PgOptions {
    /// Options for `url` with the defaults (5 s lease, 10 s statements, 16 readers).
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            password_file: None,
            ca_file: None,
            lease_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            pool_size: 16,
        }
    }

    /// The driver's configuration: the URL, the password, timeouts and keepalives.
    fn config(&self) -> Result<Config, StoreError> {
        let mut config: Config = self
            .url
            .parse()
            .map_err(|e| StoreError::Config(format!("the PostgreSQL URL: {e}")))?;
        if config.get_password().is_none() {
            if let Some(p) = &self.password_file {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    StoreError::Config(format!("reading the password file {}: {e}", p.display()))
                })?;
                config.password(text.trim_end_matches(['\n', '\r']));
            } else if let Ok(p) = std::env::var("PGPASSWORD") {
                config.password(p);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        let ours = format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={} -c lock_timeout={}",
            self.statement_timeout.as_millis(),
            self.lease_timeout.as_millis(),
            self.statement_timeout.as_millis()
        );
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} {ours}"),
            _ => ours,
        };
        config.options(options);
        config.application_name("brevis");
        Ok(config)
    }

    fn tls(&self) -> Result<MakeRustls, StoreError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    StoreError::Config(format!("reading the CA file {}: {e}", p.display()))
                })?;
                let blocks = crate::model::pem::parse_all(&text)
                    .map_err(|e| StoreError::Config(format!("the CA file {}: {e}", p.display())))?;
                for b in blocks.into_iter().filter(|b| b.label == "CERTIFICATE") {
                    roots
                        .add(rustls::pki_types::CertificateDer::from(b.der))
                        .map_err(|e| {
                            StoreError::Config(format!("the CA file {}: {e}", p.display()))
                        })?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(MakeRustls(Arc::new(config)))
    }
}

/// The runtime the database connections run on.
struct PgRuntime(crate::runtime::Dedicated);

impl PgRuntime {
    fn new() -> Result<PgRuntime, StoreError> {
        crate::runtime::Dedicated::new("brevis-pg", 2)
            .map(PgRuntime)
            .map_err(|e| StoreError::Unavailable(format!("starting the database runtime: {e}")))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.handle()
    }

    fn block_on<F: Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        self.0.block_on(f)
    }
}

fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres(Arc::new(e))
}

fn hash(v: Vec<u8>) -> Result<Hash, StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("a stored hash is not 32 bytes"))
}

fn entry_from_row(row: &tokio_postgres::Row) -> Result<StoredEntry, StoreError> {
    let chain: Vec<u8> = row.try_get(7).map_err(pg)?;
    Ok(StoredEntry {
        index: row.try_get::<_, i64>(0).map_err(pg)? as u64,
        dedup: hash(row.try_get(1).map_err(pg)?)?,
        leaf_hash: hash(row.try_get(2).map_err(pg)?)?,
        timestamp: row.try_get::<_, i64>(3).map_err(pg)? as u64,
        signature: row.try_get(4).map_err(pg)?,
        timestamped_entry: row.try_get(5).map_err(pg)?,
        precert: row.try_get(6).map_err(pg)?,
        chain: hashes_from(&chain).map_err(|_| StoreError::Corrupt("a stored chain"))?,
    })
}

fn checkpoint_from_row(row: &tokio_postgres::Row) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        tree_size: row.try_get::<_, i64>(0).map_err(pg)? as u64,
        timestamp: row.try_get::<_, i64>(1).map_err(pg)? as u64,
        root: hash(row.try_get(2).map_err(pg)?)?,
        signature: row.try_get(3).map_err(pg)?,
        frontier: row.try_get(4).map_err(pg)?,
    })
}

fn column(kind: LookupKind) -> &'static str {
    match kind {
        LookupKind::Dedup => "dedup",
        LookupKind::LeafHash => "leaf_hash",
    }
}

/// Index arithmetic in SQL is on `bigint`; a tree size beyond it is refused, not wrapped.
fn sql_index(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt("an index beyond 2^63"))
}

async fn connect(config: &Config, tls: &MakeRustls) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(tls.clone()).await.map_err(pg)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Applies the migrations this brevis knows and the database lacks, under a lock, each in
/// its own transaction; refuses a database whose schema is newer than this brevis.
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(pg)?;
    let result = async {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS brevis_schema (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())",
            )
            .await
            .map_err(pg)?;
        let current: i32 = client
            .query_one("SELECT coalesce(max(version), 0) FROM brevis_schema", &[])
            .await
            .map_err(pg)?
            .get(0);
        let newest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if current > newest {
            return Err(StoreError::Config(format!(
                "the database's schema is version {current}, newer than this brevis knows ({newest}); upgrade brevis"
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            let tx = client.transaction().await.map_err(pg)?;
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute("INSERT INTO brevis_schema (version) VALUES ($1)", &[version])
                .await
                .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            tracing::info!(version, "PostgreSQL schema migrated");
        }
        Ok(())
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK])
        .await;
    result
}

/// Connects, migrates the schema, and returns both halves of the store.
pub fn open(options: &PgOptions) -> Result<(PgWriter, PgReader), StoreError> {
    let config = options.config()?;
    let tls = options.tls()?;
    let rt = Arc::new(PgRuntime::new()?);
    let client = {
        let (config, tls) = (config.clone(), tls.clone());
        rt.block_on(async move {
            let mut c = connect(&config, &tls).await?;
            migrate(&mut c).await?;
            Ok::<_, StoreError>(c)
        })?
    };
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(options.statement_timeout))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| StoreError::Config(format!("the PostgreSQL pool: {e}")))?;
    let writer = PgWriter {
        rt: rt.clone(),
        config,
        tls,
        client: Some(client),
        in_batch: false,
        batch_has_entries: false,
        #[cfg(any(test, feature = "fault-injection"))]
        stall_once: std::env::var("BREVIS_FAULT_PG_STALL_BEFORE_COMMIT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis),
    };
    Ok((writer, PgReader { rt, pool }))
}

/// The write half: one session, one transaction per batch.
pub struct PgWriter {
    rt: Arc<PgRuntime>,
    config: Config,
    tls: MakeRustls,
    client: Option<Client>,
    in_batch: bool,
    /// The open batch inserted entries (the stall hook waits only for such a batch).
    batch_has_entries: bool,
    /// Test hook (`BREVIS_FAULT_PG_STALL_BEFORE_COMMIT_MS`): the first batch that writes
    /// entries stalls this long before its COMMIT, as a paused or partitioned replica would.
    #[cfg(any(test, feature = "fault-injection"))]
    stall_once: Option<Duration>,
}

impl PgWriter {
    /// Runs `f` with the session. Outside a batch a missing or broken session is replaced
    /// first; inside one it is an error, never a silent reconnect: the batch lived in the
    /// session that ended (and with it the lock), so a new session must not carry on with
    /// it. A connection error drops the session so the next batch reconnects.
    fn with_client<T: Send>(
        &mut self,
        f: impl for<'c> FnOnce(&'c Client) -> BoxFuture<'c, Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        let (config, tls) = (&self.config, &self.tls);
        let may_connect = !self.in_batch;
        let client = &mut self.client;
        let result = self.rt.block_on(async move {
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                if !may_connect {
                    return Err(StoreError::Unavailable(
                        "the database session ended inside a batch; the batch is lost".into(),
                    ));
                }
                *client = Some(connect(config, tls).await?);
            }
            let c = client.as_ref().expect("connected above");
            f(c).await
        });
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        result
    }

    fn exec(&mut self, sql: &'static str) -> Result<(), StoreError> {
        self.with_client(move |c| Box::pin(async move { c.batch_execute(sql).await.map_err(pg) }))
    }
}

impl LogWriter for PgWriter {
    fn begin(&mut self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.in_batch = false;
        let cp = self.with_client(|c| {
            Box::pin(async move {
                c.batch_execute("BEGIN").await.map_err(pg)?;
                c.execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])
                    .await
                    .map_err(pg)?;
                let row = c
                    .query_opt(
                        "SELECT tree_size, timestamp_ms, root, signature, frontier FROM checkpoint WHERE id = 1",
                        &[],
                    )
                    .await
                    .map_err(pg)?;
                row.as_ref().map(checkpoint_from_row).transpose()
            })
        });
        // From BEGIN on (even if a later statement of begin failed) the session holds a
        // batch: no reconnecting until it ends.
        self.in_batch = true;
        cp
    }

    fn find(
        &mut self,
        kind: LookupKind,
        hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self.find_many(kind, std::slice::from_ref(hash), tree_size)?[0])
    }

    fn find_many(
        &mut self,
        kind: LookupKind,
        hashes: &[Hash],
        tree_size: u64,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let size = sql_index(tree_size)?;
        let keys: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
        let sql = format!(
            "SELECT {c}, idx FROM entries WHERE {c} = ANY($1) AND idx < $2",
            c = column(kind)
        );
        let found: HashMap<Vec<u8>, u64> = self.with_client(move |c| {
            Box::pin(async move {
                let rows = c.query(&sql, &[&keys, &size]).await.map_err(pg)?;
                Ok(rows
                    .iter()
                    .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, i64>(1) as u64))
                    .collect())
            })
        })?;
        Ok(hashes.iter().map(|h| found.get(&h[..]).copied()).collect())
    }

    fn entry(&mut self, index: u64) -> Result<Option<StoredEntry>, StoreError> {
        let i = sql_index(index)?;
        self.with_client(move |c| {
            Box::pin(async move {
                let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE idx = $1");
                let row = c.query_opt(&sql, &[&i]).await.map_err(pg)?;
                row.as_ref().map(entry_from_row).transpose()
            })
        })
    }

    fn tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tiles(&[(level, index)])?.pop().flatten())
    }

    fn tiles(&mut self, wanted: &[(u8, u64)]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let levels: Vec<i16> = wanted.iter().map(|w| i16::from(w.0)).collect();
        let indexes: Vec<i64> = wanted
            .iter()
            .map(|w| sql_index(w.1))
            .collect::<Result<_, _>>()?;
        let found: HashMap<(i16, i64), Vec<u8>> = self.with_client(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT t.level, t.idx, t.hashes FROM tiles t
                         JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx)
                           ON t.level = w.level AND t.idx = w.idx",
                        &[&levels, &indexes],
                    )
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .iter()
                    .map(|r| ((r.get(0), r.get(1)), r.get(2)))
                    .collect())
            })
        })?;
        Ok(wanted
            .iter()
            .map(|(l, i)| found.get(&(i16::from(*l), *i as i64)).cloned())
            .collect())
    }

    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_string();
        self.with_client(move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
                    .await
                    .map_err(pg)?;
                Ok(row.map(|r| r.get(0)))
            })
        })
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_vec());
        self.with_client(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    &[&key, &value],
                )
                .await
                .map_err(pg)?;
                Ok(())
            })
        })
    }

    fn insert_entries(&mut self, entries: &[StoredEntry]) -> Result<(), StoreError> {
        self.batch_has_entries = true;
        let idx: Vec<i64> = entries
            .iter()
            .map(|e| sql_index(e.index))
            .collect::<Result<_, _>>()?;
        let dedup: Vec<Vec<u8>> = entries.iter().map(|e| e.dedup.to_vec()).collect();
        let leaf: Vec<Vec<u8>> = entries.iter().map(|e| e.leaf_hash.to_vec()).collect();
        let ts: Vec<i64> = entries.iter().map(|e| e.timestamp as i64).collect();
        let sig: Vec<Vec<u8>> = entries.iter().map(|e| e.signature.clone()).collect();
        let te: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| e.timestamped_entry.clone())
            .collect();
        let pre: Vec<Option<Vec<u8>>> = entries.iter().map(|e| e.precert.clone()).collect();
        let chain: Vec<Vec<u8>> = entries.iter().map(|e| e.chain.concat()).collect();
        self.with_client(move |c| {
            Box::pin(async move {
                let params: [&(dyn ToSql + Sync); 8] =
                    [&idx, &dedup, &leaf, &ts, &sig, &te, &pre, &chain];
                c.execute(
                    "INSERT INTO entries (idx, dedup, leaf_hash, timestamp_ms, signature, timestamped_entry, precert, chain)
                     SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bigint[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[])",
                    &params,
                )
                .await
                .map_err(pg)?;
                Ok(())
            })
        })
    }

    fn insert_issuers(&mut self, issuers: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        if issuers.is_empty() {
            return Ok(());
        }
        let fps: Vec<Vec<u8>> = issuers.iter().map(|i| i.0.to_vec()).collect();
        let ders: Vec<Vec<u8>> = issuers.iter().map(|i| i.1.clone()).collect();
        self.with_client(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO issuers (fingerprint, der)
                     SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT DO NOTHING",
                    &[&fps, &ders],
                )
                .await
                .map_err(pg)?;
                Ok(())
            })
        })
    }

    fn put_tiles(&mut self, tiles: &[TileWrite]) -> Result<(), StoreError> {
        if tiles.is_empty() {
            return Ok(());
        }
        let levels: Vec<i16> = tiles.iter().map(|t| i16::from(t.0)).collect();
        let idx: Vec<i64> = tiles
            .iter()
            .map(|t| sql_index(t.1))
            .collect::<Result<_, _>>()?;
        let hashes: Vec<Vec<u8>> = tiles.iter().map(|t| t.2.clone()).collect();
        self.with_client(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO tiles (level, idx, hashes)
                     SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
                     ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes",
                    &[&levels, &idx, &hashes],
                )
                .await
                .map_err(pg)?;
                Ok(())
            })
        })
    }

    fn put_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        let size = sql_index(cp.tree_size)?;
        let ts = cp.timestamp as i64;
        let (root, sig, frontier) = (cp.root.to_vec(), cp.signature.clone(), cp.frontier.clone());
        let updated = self.with_client(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO checkpoint (id, tree_size, timestamp_ms, root, signature, frontier)
                     VALUES (1, $1, $2, $3, $4, $5)
                     ON CONFLICT (id) DO UPDATE SET tree_size = EXCLUDED.tree_size,
                       timestamp_ms = EXCLUDED.timestamp_ms, root = EXCLUDED.root,
                       signature = EXCLUDED.signature, frontier = EXCLUDED.frontier
                     WHERE checkpoint.tree_size <= EXCLUDED.tree_size",
                    &[&size, &ts, &root, &sig, &frontier],
                )
                .await
                .map_err(pg)
            })
        })?;
        if updated == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        #[cfg(any(test, feature = "fault-injection"))]
        if self.batch_has_entries
            && let Some(d) = self.stall_once.take()
        {
            tracing::warn!(
                millis = d.as_millis() as u64,
                "fault injection: stalling before COMMIT"
            );
            std::thread::sleep(d);
        }
        self.batch_has_entries = false;
        let result = self.exec("COMMIT");
        self.in_batch = false;
        result
    }

    fn rollback(&mut self) {
        self.batch_has_entries = false;
        if self.in_batch {
            if self.exec("ROLLBACK").is_err() {
                // The session is in an unknown state: start a new one next time.
                self.client = None;
            }
            self.in_batch = false;
        }
    }
}

/// The read half: a pool of sessions on the store's runtime.
pub struct PgReader {
    rt: Arc<PgRuntime>,
    pool: Pool,
}

impl PgReader {
    /// Runs a query future on the store's runtime and awaits it from any runtime.
    fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let task = self.rt.handle().spawn(f);
        Box::pin(async move {
            task.await
                .map_err(|_| StoreError::Unavailable("a database task failed".into()))?
        })
    }

    fn pool(&self) -> Pool {
        self.pool.clone()
    }
}

async fn session(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
}

impl LogReader for PgReader {
    fn checkpoint(&self) -> BoxFuture<'_, Result<Option<StoredCheckpoint>, StoreError>> {
        let pool = self.pool();
        self.run(async move {
            let c = session(&pool).await?;
            let row = c
                .query_opt(
                    "SELECT tree_size, timestamp_ms, root, signature, frontier FROM checkpoint WHERE id = 1",
                    &[],
                )
                .await
                .map_err(pg)?;
            row.as_ref().map(checkpoint_from_row).transpose()
        })
    }

    fn entries(&self, start: u64, end: u64) -> BoxFuture<'_, Result<Vec<StoredEntry>, StoreError>> {
        let pool = self.pool();
        self.run(async move {
            let (s, e) = (sql_index(start)?, sql_index(end)?);
            let c = session(&pool).await?;
            let sql = format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE idx BETWEEN $1 AND $2 ORDER BY idx"
            );
            let rows = c.query(&sql, &[&s, &e]).await.map_err(pg)?;
            rows.iter().map(entry_from_row).collect()
        })
    }

    fn tile(&self, level: u8, index: u64) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        let pool = self.pool();
        self.run(async move {
            let i = sql_index(index)?;
            let c = session(&pool).await?;
            let row = c
                .query_opt(
                    "SELECT hashes FROM tiles WHERE level = $1 AND idx = $2",
                    &[&i16::from(level), &i],
                )
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn issuer<'a>(
        &'a self,
        fingerprint: &'a Hash,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let pool = self.pool();
        let fp = fingerprint.to_vec();
        self.run(async move {
            let c = session(&pool).await?;
            let row = c
                .query_opt("SELECT der FROM issuers WHERE fingerprint = $1", &[&fp])
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn find<'a>(
        &'a self,
        kind: LookupKind,
        hash: &'a Hash,
        tree_size: u64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        let pool = self.pool();
        let h = hash.to_vec();
        self.run(async move {
            let size = sql_index(tree_size)?;
            let c = session(&pool).await?;
            let sql = format!(
                "SELECT idx FROM entries WHERE {} = $1 AND idx < $2",
                column(kind)
            );
            let row = c.query_opt(&sql, &[&h, &size]).await.map_err(pg)?;
            Ok(row.map(|r| r.get::<_, i64>(0) as u64))
        })
    }

    fn shared(&self) -> bool {
        true
    }
}

/// How much the log occupies in the database: (bytes of every brevis table with its
/// indexes and TOAST, entries).
pub fn storage_bytes(options: &PgOptions) -> Result<(u64, u64), StoreError> {
    let config = options.config()?;
    let tls = options.tls()?;
    let rt = PgRuntime::new()?;
    rt.block_on(async move {
        let c = connect(&config, &tls).await?;
        let row = c
            .query_one(
                "SELECT (SELECT sum(pg_total_relation_size(t))::bigint FROM unnest(ARRAY['entries','tiles','issuers','meta','checkpoint']::regclass[]) t),
                        (SELECT count(*) FROM entries)",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
    })
}

// ---- TLS to the database (rustls on aws-lc-rs, like every other TLS in brevis) --------

/// Makes rustls connections for the driver; the server's certificate is always verified
/// (against `ca_file`, or the system's roots).
#[derive(Clone)]
pub(crate) struct MakeRustls(Arc<rustls::ClientConfig>);

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: self.0.clone(),
            name: rustls::pki_types::ServerName::try_from(domain.to_string())?,
        })
    }
}

/// One TLS handshake to the database server.
pub(crate) struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<RustlsStream, std::io::Error>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// A TLS session to the database server.
pub(crate) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding: the `tls-server-end-point` hash depends on the
        // certificate's signature algorithm; the verified TLS session already binds the
        // server.
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::log::Storage;

    #[test]
    fn storage_specs_parse_or_say_what_is_expected() {
        assert!(matches!(
            Storage::parse("sqlite:"),
            Ok(Storage::Sqlite(None))
        ));
        assert!(matches!(
            Storage::parse("sqlite:/var/lib/brevis/log.sqlite"),
            Ok(Storage::Sqlite(Some(p))) if p == std::path::Path::new("/var/lib/brevis/log.sqlite")
        ));
        assert!(matches!(
            Storage::parse("postgresql://brevis@db:5432/ct"),
            Ok(Storage::Postgres(_))
        ));
        let e = Storage::parse("mysql://x").unwrap_err();
        assert!(e.contains("sqlite:PATH or a postgres://"), "{e}");
        // The description never shows a password.
        let s = Storage::parse("postgres://brevis:hunter2@db/ct").unwrap();
        let d = s.describe(std::path::Path::new("."));
        assert!(!d.contains("hunter2"), "{d}");
    }

    #[test]
    fn the_password_comes_from_a_file_and_timeouts_from_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let mut o = PgOptions::new("postgres://brevis@127.0.0.1:5432/ct?options=-cwork_mem%3D8MB");
        o.password_file = Some(f);
        o.lease_timeout = Duration::from_millis(1500);
        let c = o.config().unwrap();
        assert_eq!(c.get_password(), Some(&b"s3cret"[..]));
        let opts = c.get_options().unwrap();
        assert!(opts.starts_with("-cwork_mem=8MB "), "{opts}");
        assert!(
            opts.contains("idle_in_transaction_session_timeout=1500"),
            "{opts}"
        );
        o.url = "not a url".into();
        assert!(matches!(o.config(), Err(StoreError::Config(_))));
        o.url = "postgres://x@h/d".into();
        o.password_file = Some(dir.path().join("missing"));
        assert!(matches!(o.config(), Err(StoreError::Config(m)) if m.contains("password file")));
    }
}
