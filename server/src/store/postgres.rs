//! The scale-out backend: PostgreSQL (or a PostgreSQL-compatible database)
//! shared by any number of stateless server replicas.
//!
//! - Ids come from an identity column, so they are unique across replicas.
//! - Updates and deletes are conditional statements (`… AND version = $n`):
//!   the database decides which of two concurrent writers wins, never the
//!   replica.
//! - Every change is one autocommitted statement: a call cancelled by its
//!   client or cut by a deadline either happened whole or not at all.
//! - Migrations run under a transaction-scoped advisory lock, so replicas
//!   that start together apply each migration once.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row};

use super::{NewToDo, Store, StoreError, ToDoRecord, Visibility, now_us};

/// Key of the advisory lock that serialises migrations across replicas.
const MIGRATION_LOCK: i64 = 0x70d0_5e4e;

/// Schema migrations, applied in order and recorded in
/// `todo_schema_migrations`. Never edit an entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the to-do table.
    "CREATE TABLE todos (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner TEXT NOT NULL,
        description TEXT NOT NULL,
        create_time_us BIGINT NOT NULL,
        update_time_us BIGINT NOT NULL,
        version BIGINT NOT NULL
     );
     CREATE INDEX todos_owner_id ON todos (owner, id);",
    // 2: idempotency keys of creates.
    "ALTER TABLE todos ADD COLUMN request_id TEXT;
     CREATE UNIQUE INDEX todos_owner_request ON todos (owner, request_id)
       WHERE request_id IS NOT NULL;",
];

const COLUMNS: &str = "id, owner, description, create_time_us, update_time_us, version";

/// Connection-pool settings of the PostgreSQL backend.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Most connections this replica opens. Default: 16. Keep the sum over
    /// all replicas under the server's `max_connections`.
    pub max_connections: usize,
    /// How long a call waits for a free connection or a new one before it
    /// fails with UNAVAILABLE. Default: 3 s.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// A PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("status", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db?options=…`) and
    /// applies pending migrations. Fails when the database cannot be reached.
    pub async fn open(url: &str, options: &PostgresOptions) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.acquire_timeout))
            .recycle_timeout(Some(options.acquire_timeout))
            .build()
            .map_err(|e| StoreError::Internal(format!("PostgreSQL pool: {e}")))?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS todo_schema_migrations (
                version INTEGER PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg)?;
        let applied: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM todo_schema_migrations",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Internal(format!(
                "database schema version {applied} is newer than this server knows ({}); \
                 upgrade the server",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute(
                "INSERT INTO todo_schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(pg)?;
            tracing::info!(migration = version, "applied PostgreSQL schema migration");
        }
        tx.commit().await.map_err(pg)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(_) => StoreError::Unavailable(
                "PostgreSQL did not answer in time (no free or new connection)".into(),
            ),
            PoolError::Backend(e) => unavailable_or_internal(&e),
            other => StoreError::Unavailable(format!("PostgreSQL: {other}")),
        })
    }

    /// Why a conditional change touched no row: missing/invisible, or stale etag.
    async fn explain_miss(
        &self,
        id: i64,
        visibility: &Visibility,
        etag: Option<&str>,
    ) -> StoreError {
        let client = match self.client().await {
            Ok(c) => c,
            Err(e) => return e,
        };
        let row = match client
            .query_opt("SELECT owner FROM todos WHERE id = $1", &[&id])
            .await
        {
            Ok(row) => row,
            Err(e) => return pg(e),
        };
        match (row, etag) {
            (Some(row), Some(etag)) if visibility.allows(row.get::<_, &str>(0)) => {
                StoreError::EtagMismatch {
                    id,
                    expected: etag.to_owned(),
                }
            }
            _ => StoreError::NotFound(id),
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create(&self, new: NewToDo) -> Result<ToDoRecord, StoreError> {
        let client = self.client().await?;
        // With a request id, a repeated create inserts nothing (the unique
        // index decides, also across replicas) and returns the first one.
        let stmt = client
            .prepare_cached(&format!(
                "WITH inserted AS ( \
                   INSERT INTO todos (owner, description, create_time_us, update_time_us, \
                                      version, request_id) \
                   VALUES ($1, $2, $3, $3, 1, $4) \
                   ON CONFLICT (owner, request_id) WHERE request_id IS NOT NULL DO NOTHING \
                   RETURNING {COLUMNS}) \
                 SELECT {COLUMNS} FROM inserted \
                 UNION ALL \
                 SELECT {COLUMNS} FROM todos WHERE $4::TEXT IS NOT NULL \
                   AND owner = $1 AND request_id = $4 AND NOT EXISTS (SELECT 1 FROM inserted)"
            ))
            .await
            .map_err(pg)?;
        let row = client
            .query_opt(
                &stmt,
                &[&new.owner, &new.description, &now_us(), &new.request_id],
            )
            .await
            .map_err(pg)?;
        match row {
            Some(row) => Ok(record(&row)),
            // The earlier create committed after this statement's snapshot
            // began: read it now.
            None => {
                let stmt = client
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM todos WHERE owner = $1 AND request_id = $2"
                    ))
                    .await
                    .map_err(pg)?;
                client
                    .query_opt(&stmt, &[&new.owner, &new.request_id])
                    .await
                    .map_err(pg)?
                    .map(|row| record(&row))
                    .ok_or_else(|| StoreError::Internal("idempotent create found no row".into()))
            }
        }
    }

    async fn get(&self, id: i64, visibility: Visibility) -> Result<ToDoRecord, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!("SELECT {COLUMNS} FROM todos WHERE id = $1"))
            .await
            .map_err(pg)?;
        client
            .query_opt(&stmt, &[&id])
            .await
            .map_err(pg)?
            .map(|row| record(&row))
            .filter(|r| visibility.allows(&r.owner))
            .ok_or(StoreError::NotFound(id))
    }

    async fn list(
        &self,
        visibility: Visibility,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ToDoRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = match &visibility {
            Visibility::All => {
                let stmt = client
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM todos WHERE id > $1 ORDER BY id LIMIT $2"
                    ))
                    .await
                    .map_err(pg)?;
                client.query(&stmt, &[&after_id, &limit]).await
            }
            Visibility::Owner(owner) => {
                let stmt = client
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM todos WHERE owner = $1 AND id > $2 \
                         ORDER BY id LIMIT $3"
                    ))
                    .await
                    .map_err(pg)?;
                client.query(&stmt, &[owner, &after_id, &limit]).await
            }
        }
        .map_err(pg)?;
        Ok(rows.iter().map(record).collect())
    }

    async fn update_description(
        &self,
        id: i64,
        visibility: Visibility,
        description: String,
        expected_etag: Option<String>,
    ) -> Result<ToDoRecord, StoreError> {
        let Some(version) = expected_version(expected_etag.as_deref()) else {
            return Err(self
                .explain_miss(id, &visibility, expected_etag.as_deref())
                .await);
        };
        let owner = owner_filter(&visibility);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "UPDATE todos SET description = $2, \
                   update_time_us = GREATEST($3, update_time_us), version = version + 1 \
                 WHERE id = $1 AND ($4::TEXT IS NULL OR owner = $4) \
                   AND ($5::BIGINT IS NULL OR version = $5) \
                 RETURNING {COLUMNS}"
            ))
            .await
            .map_err(pg)?;
        let row = client
            .query_opt(&stmt, &[&id, &description, &now_us(), &owner, &version])
            .await
            .map_err(pg)?;
        drop(client);
        match row {
            Some(row) => Ok(record(&row)),
            None => Err(self
                .explain_miss(id, &visibility, expected_etag.as_deref())
                .await),
        }
    }

    async fn delete(
        &self,
        id: i64,
        visibility: Visibility,
        expected_etag: Option<String>,
    ) -> Result<(), StoreError> {
        let Some(version) = expected_version(expected_etag.as_deref()) else {
            return Err(self
                .explain_miss(id, &visibility, expected_etag.as_deref())
                .await);
        };
        let owner = owner_filter(&visibility);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "DELETE FROM todos WHERE id = $1 AND ($2::TEXT IS NULL OR owner = $2) \
                 AND ($3::BIGINT IS NULL OR version = $3)",
            )
            .await
            .map_err(pg)?;
        let deleted = client
            .execute(&stmt, &[&id, &owner, &version])
            .await
            .map_err(pg)?;
        drop(client);
        if deleted == 1 {
            Ok(())
        } else {
            Err(self
                .explain_miss(id, &visibility, expected_etag.as_deref())
                .await)
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(pg)?;
        Ok(())
    }
}

/// `Some(None)`: no condition; `Some(Some(v))`: must be at version `v`;
/// `None`: the etag can never match (not one this store issued).
fn expected_version(etag: Option<&str>) -> Option<Option<i64>> {
    match etag {
        None => Some(None),
        Some(etag) => etag
            .parse::<i64>()
            .ok()
            .filter(|v| *v > 0 && v.to_string() == etag)
            .map(Some),
    }
}

fn owner_filter(visibility: &Visibility) -> Option<&str> {
    match visibility {
        Visibility::All => None,
        Visibility::Owner(owner) => Some(owner),
    }
}

fn record(row: &Row) -> ToDoRecord {
    ToDoRecord {
        id: row.get(0),
        owner: row.get(1),
        description: row.get(2),
        create_time_us: row.get(3),
        update_time_us: row.get(4),
        version: row.get(5),
    }
}

/// Database errors (constraint, syntax) are internal; anything about the
/// connection means the database is unavailable.
fn pg(e: tokio_postgres::Error) -> StoreError {
    unavailable_or_internal(&e)
}

fn unavailable_or_internal(e: &tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        // Admin shutdown, crash recovery, too many connections: transient.
        Some(db)
            if db.code().code().starts_with("57P")
                || db.code().code().starts_with("08")
                || db.code().code() == "53300" =>
        {
            StoreError::Unavailable(format!("PostgreSQL: {}", db.message()))
        }
        Some(db) => StoreError::Internal(format!("PostgreSQL: {db}")),
        None => StoreError::Unavailable(format!("cannot reach PostgreSQL: {e}")),
    }
}
