//! The embedded default backend: one SQLite file in WAL mode with
//! `synchronous=FULL`, so every acknowledged write is on disk.
//!
//! Writes go to one writer thread that commits them in groups: it takes every
//! write waiting in its queue (up to [`MAX_BATCH`]), applies each inside its
//! own savepoint, commits the group with one fsync and only then answers the
//! callers. Under concurrency this turns many fsyncs into one without
//! weakening durability.
//!
//! Reads use read-only connections, which WAL lets proceed alongside the
//! writer. Short, bounded reads (a lookup by id, a page of at most
//! [`INLINE_LIST_ROWS`]) run on the calling task's thread: handing them to
//! the blocking pool cost more than the query (GetToDo 31.5 → 17.4 µs of
//! server CPU, BENCHMARKS.md). Those connections have no busy timeout, so
//! an inline read never waits for a lock: if SQLite answers "busy" (another
//! process holds the file exclusively), the read is retried on the blocking
//! pool, whose connections wait up to [`BUSY_TIMEOUT`]. Longer reads go to
//! the blocking pool directly.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    thread,
};

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{NewToDo, Store, StoreError, ToDoRecord, Visibility, now_us};

/// Most writes committed together in one transaction.
const MAX_BATCH: usize = 256;
/// Reads running at once on the blocking pool.
const READERS: usize = 4;
/// Longest `list` page read on the calling thread; longer ones go to the
/// blocking pool (a page of 50 costs about 30 µs).
const INLINE_LIST_ROWS: usize = 100;
/// How long a blocking-pool read waits for a lock held by another process.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Writes waiting for the writer thread before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many have run. Never edit an entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the to-do table. AUTOINCREMENT keeps ids from ever being reused.
    "CREATE TABLE todos (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner TEXT NOT NULL,
        description TEXT NOT NULL,
        create_time_us INTEGER NOT NULL,
        update_time_us INTEGER NOT NULL,
        version INTEGER NOT NULL
     );
     CREATE INDEX todos_owner_id ON todos (owner, id);",
    // 2: idempotency keys of creates.
    "ALTER TABLE todos ADD COLUMN request_id TEXT;
     CREATE UNIQUE INDEX todos_owner_request ON todos (owner, request_id)
       WHERE request_id IS NOT NULL;",
];

const COLUMNS: &str = "id, owner, description, create_time_us, update_time_us, version";

/// A SQLite-backed [`Store`].
pub struct SqliteStore {
    writes: mpsc::Sender<Write>,
    readers: Arc<ReaderPool>,
    /// Idle connections for inline reads (no busy timeout); at most one per
    /// thread that runs store calls.
    inline: Mutex<Vec<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

enum WriteOp {
    Create(NewToDo),
    Update {
        id: i64,
        visibility: Visibility,
        description: String,
        expected_etag: Option<String>,
    },
    Delete {
        id: i64,
        visibility: Visibility,
        expected_etag: Option<String>,
    },
}

/// What a write produced: the new or changed record, or nothing for a delete.
type WriteResult = Result<Option<ToDoRecord>, StoreError>;

struct Write {
    op: WriteOp,
    reply: oneshot::Sender<WriteResult>,
}

struct ReaderPool {
    permits: Semaphore,
    idle: Mutex<Vec<Connection>>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, applies
    /// pending migrations and starts the writer thread.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (writes, queue) = mpsc::channel(QUEUE_DEPTH);
        let writer_path = path.clone();
        thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || match open_writer(&writer_path) {
                Ok(conn) => {
                    let _ = ready_tx.send(Ok(()));
                    run_writer(conn, queue);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the SQLite writer: {e}")))?;
        ready_rx.await.map_err(|_| {
            StoreError::Internal("the SQLite writer stopped while opening".into())
        })??;
        Ok(Self {
            writes,
            readers: Arc::new(ReaderPool {
                permits: Semaphore::new(READERS),
                idle: Mutex::new(Vec::new()),
                path: path.clone(),
            }),
            inline: Mutex::new(Vec::new()),
            path,
        })
    }

    async fn write(&self, op: WriteOp) -> WriteResult {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(Write { op, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?
    }

    /// Runs `f` on a connection of the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        let _permit = pool
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite store is closed".into()))?;
        let task_pool = Arc::clone(&pool);
        tokio::task::spawn_blocking(move || {
            with_idle(&task_pool.idle, &task_pool.path, BUSY_TIMEOUT, f)?.map_err(read_error)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("SQLite read task failed: {e}")))?
    }

    /// Runs a short, bounded read on the calling thread, or on the blocking
    /// pool when SQLite reports the database busy or locked.
    async fn read_short<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        match with_idle(&self.inline, &self.path, std::time::Duration::ZERO, &f)? {
            Err(e) if is_busy(&e) => {
                tracing::debug!("SQLite busy for an inline read; retrying on the blocking pool");
                self.read(f).await
            }
            other => other.map_err(internal),
        }
    }
}

/// Runs `f` on an idle connection from `idle` (opening one with
/// `busy_timeout` when none is idle) and puts the connection back.
fn with_idle<T>(
    idle: &Mutex<Vec<Connection>>,
    path: &Path,
    busy_timeout: std::time::Duration,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<rusqlite::Result<T>, StoreError> {
    let conn = match idle.lock().map(|mut idle| idle.pop()) {
        Ok(Some(conn)) => conn,
        _ => open_reader(path, busy_timeout)?,
    };
    let result = f(&conn);
    if let Ok(mut idle) = idle.lock() {
        idle.push(conn);
    }
    Ok(result)
}

/// A read's error: still locked after [`BUSY_TIMEOUT`] is a transient
/// `Unavailable` (the caller may retry); anything else is `Internal`.
fn read_error(e: rusqlite::Error) -> StoreError {
    if is_busy(&e) {
        StoreError::Unavailable(format!(
            "the SQLite database stayed locked by another connection for {} s: {e}",
            BUSY_TIMEOUT.as_secs()
        ))
    } else {
        internal(e)
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(&self, new: NewToDo) -> Result<ToDoRecord, StoreError> {
        self.write(WriteOp::Create(new))
            .await?
            .ok_or_else(|| StoreError::Internal("create returned no row".into()))
    }

    async fn get(&self, id: i64, visibility: Visibility) -> Result<ToDoRecord, StoreError> {
        self.read_short(move |conn| query_one(conn, id))
            .await?
            .filter(|r| visibility.allows(&r.owner))
            .ok_or(StoreError::NotFound(id))
    }

    async fn list(
        &self,
        visibility: Visibility,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ToDoRecord>, StoreError> {
        let page = move |conn: &Connection| query_page(conn, &visibility, after_id, limit);
        if limit <= INLINE_LIST_ROWS {
            self.read_short(page).await
        } else {
            self.read(page).await
        }
    }

    async fn update_description(
        &self,
        id: i64,
        visibility: Visibility,
        description: String,
        expected_etag: Option<String>,
    ) -> Result<ToDoRecord, StoreError> {
        self.write(WriteOp::Update {
            id,
            visibility,
            description,
            expected_etag,
        })
        .await?
        .ok_or_else(|| StoreError::Internal("update returned no row".into()))
    }

    async fn delete(
        &self,
        id: i64,
        visibility: Visibility,
        expected_etag: Option<String>,
    ) -> Result<(), StoreError> {
        self.write(WriteOp::Delete {
            id,
            visibility,
            expected_etag,
        })
        .await
        .map(|_| ())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }
}

fn internal(e: rusqlite::Error) -> StoreError {
    StoreError::Internal(format!("SQLite: {e}"))
}

fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| {
        StoreError::Internal(format!(
            "cannot open SQLite database {}: {e}",
            path.display()
        ))
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "SQLite database {} cannot use WAL journaling (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
        .map_err(open_err)?;
    migrate(&mut conn).map_err(open_err)?;
    Ok(conn)
}

fn open_reader(path: &Path, busy_timeout: std::time::Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot open SQLite database {}: {e}",
            path.display()
        ))
    })?;
    conn.busy_timeout(busy_timeout).map_err(internal)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "database schema version {applied} is newer than this server knows ({}); \
             upgrade the server",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tracing::info!(migration = i + 1, "applied SQLite schema migration");
    }
    tx.commit()
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<ToDoRecord> {
    Ok(ToDoRecord {
        id: row.get(0)?,
        owner: row.get(1)?,
        description: row.get(2)?,
        create_time_us: row.get(3)?,
        update_time_us: row.get(4)?,
        version: row.get(5)?,
    })
}

fn select_one(conn: &Connection, id: i64) -> Result<Option<ToDoRecord>, StoreError> {
    query_one(conn, id).map_err(internal)
}

fn query_one(conn: &Connection, id: i64) -> rusqlite::Result<Option<ToDoRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM todos WHERE id = ?1"))?
        .query_row([id], row_to_record)
        .optional()
}

fn query_page(
    conn: &Connection,
    visibility: &Visibility,
    after_id: i64,
    limit: usize,
) -> rusqlite::Result<Vec<ToDoRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    match visibility {
        Visibility::All => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM todos WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))?
            .query_map(params![after_id, limit], row_to_record)?
            .collect(),
        Visibility::Owner(owner) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM todos WHERE owner = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            ))?
            .query_map(params![owner, after_id, limit], row_to_record)?
            .collect(),
    }
}

/// The writer thread: takes every queued write, applies them in one
/// transaction (each in its own savepoint), commits once, then answers.
fn run_writer(mut conn: Connection, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let results = apply_batch(&mut conn, &batch);
        for (write, result) in batch.drain(..).zip(results) {
            let _ = write.reply.send(result);
        }
    }
}

fn apply_batch(conn: &mut Connection, batch: &[Write]) -> Vec<WriteResult> {
    let failed = |e: rusqlite::Error| -> Vec<WriteResult> {
        tracing::error!(error = %e, "SQLite commit failed");
        batch
            .iter()
            .map(|_| {
                Err(StoreError::Unavailable(format!(
                    "SQLite commit failed: {e}"
                )))
            })
            .collect()
    };
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return failed(e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for write in batch {
        let result = match tx.savepoint() {
            Ok(mut sp) => {
                let result = apply_one(&sp, &write.op);
                // A failed write leaves nothing behind; the others in the
                // batch are unaffected.
                let finish = if result.is_ok() {
                    sp.commit()
                } else {
                    sp.rollback()
                };
                match finish {
                    Ok(()) => result,
                    Err(e) => return failed(e),
                }
            }
            Err(e) => return failed(e),
        };
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => failed(e),
    }
}

fn apply_one(conn: &Connection, op: &WriteOp) -> WriteResult {
    match op {
        WriteOp::Create(new) => {
            if let Some(request_id) = &new.request_id {
                let earlier = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM todos WHERE owner = ?1 AND request_id = ?2"
                    ))
                    .map_err(internal)?
                    .query_row(params![new.owner, request_id], row_to_record)
                    .optional()
                    .map_err(internal)?;
                if earlier.is_some() {
                    return Ok(earlier);
                }
            }
            let now = now_us();
            let mut stmt = conn
                .prepare_cached(&format!(
                    "INSERT INTO todos (owner, description, create_time_us, update_time_us, \
                     version, request_id) VALUES (?1, ?2, ?3, ?3, 1, ?4) RETURNING {COLUMNS}"
                ))
                .map_err(internal)?;
            stmt.query_row(
                params![new.owner, new.description, now, new.request_id],
                row_to_record,
            )
            .map(Some)
            .map_err(internal)
        }
        WriteOp::Update {
            id,
            visibility,
            description,
            expected_etag,
        } => {
            let current = checked_current(conn, *id, visibility, expected_etag.as_deref())?;
            let mut stmt = conn
                .prepare_cached(&format!(
                    "UPDATE todos SET description = ?2, update_time_us = ?3, version = ?4 \
                     WHERE id = ?1 RETURNING {COLUMNS}"
                ))
                .map_err(internal)?;
            let now = now_us().max(current.update_time_us);
            stmt.query_row(
                params![id, description, now, current.version + 1],
                row_to_record,
            )
            .map(Some)
            .map_err(internal)
        }
        WriteOp::Delete {
            id,
            visibility,
            expected_etag,
        } => {
            checked_current(conn, *id, visibility, expected_etag.as_deref())?;
            conn.prepare_cached("DELETE FROM todos WHERE id = ?1")
                .map_err(internal)?
                .execute([id])
                .map_err(internal)?;
            Ok(None)
        }
    }
}

/// The current row of `id`, if visible and at the expected etag.
fn checked_current(
    conn: &Connection,
    id: i64,
    visibility: &Visibility,
    expected_etag: Option<&str>,
) -> Result<ToDoRecord, StoreError> {
    let current = select_one(conn, id)?
        .filter(|r| visibility.allows(&r.owner))
        .ok_or(StoreError::NotFound(id))?;
    match expected_etag {
        Some(etag) if etag != current.etag() => Err(StoreError::EtagMismatch {
            id,
            expected: etag.to_owned(),
        }),
        _ => Ok(current),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The error SQLite really gives a reader locked out by another
    /// connection is recognised as "busy", with no wait on an inline
    /// connection (busy timeout zero).
    #[test]
    fn a_locked_database_reads_as_busy_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked.db");
        let locker = Connection::open(&path).unwrap();
        locker
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA locking_mode = EXCLUSIVE;
                 CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);",
            )
            .unwrap();
        let reader = open_reader(&path, std::time::Duration::ZERO).unwrap();
        let started = std::time::Instant::now();
        let err = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert!(is_busy(&err), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        let unavailable = read_error(err);
        assert!(
            matches!(&unavailable, StoreError::Unavailable(m) if m.contains("stayed locked")),
            "{unavailable:?}"
        );
        drop(locker);
        let rows: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "the locker never committed");
    }

    /// An inline read that meets "busy" is run again on the blocking pool
    /// (another thread, whose connections wait for locks) and its answer is
    /// the caller's; any other error is not retried.
    #[tokio::test]
    async fn a_busy_inline_read_is_retried_on_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("todo.db")).await.unwrap();
        let caller = thread::current().id();
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&attempts);
        let answer = store
            .read_short(move |conn| {
                counted.fetch_add(1, Ordering::SeqCst);
                if thread::current().id() == caller {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("database is locked".into()),
                    ));
                }
                conn.query_row("SELECT count(*) FROM todos", [], |r| r.get::<_, i64>(0))
            })
            .await
            .unwrap();
        assert_eq!(answer, 0);
        assert_eq!(attempts.load(Ordering::SeqCst), 2);

        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&attempts);
        let err = store
            .read_short(move |conn| {
                counted.fetch_add(1, Ordering::SeqCst);
                conn.query_row("SELECT nope FROM todos", [], |r| r.get::<_, i64>(0))
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }
}
