//! Storage of to-dos behind one trait, so that every backend (SQLite now,
//! PostgreSQL for scale-out) passes the same test suite.

mod postgres;
mod sqlite;

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;

/// A stored to-do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToDoRecord {
    /// Identifier assigned by the store: 1, 2, 3 … never reused.
    pub id: i64,
    /// Object id of the owning principal.
    pub owner: String,
    /// The (validated) description.
    pub description: String,
    /// Creation time, microseconds since the Unix epoch.
    pub create_time_us: i64,
    /// Last change, microseconds since the Unix epoch.
    pub update_time_us: i64,
    /// Version, starting at 1 and incremented by every update.
    pub version: i64,
}

impl ToDoRecord {
    /// The opaque etag clients send back for conditional changes.
    pub fn etag(&self) -> String {
        self.version.to_string()
    }
}

/// A to-do to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToDo {
    /// Object id of the owning principal.
    pub owner: String,
    /// The (validated) description.
    pub description: String,
    /// Idempotency key: a create with the same owner and key returns the
    /// to-do created first instead of a new one.
    pub request_id: Option<String>,
}

/// Which to-dos an operation may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every to-do (application callers).
    All,
    /// Only the to-dos owned by this object id (user callers).
    Owner(String),
}

impl Visibility {
    /// Whether a to-do owned by `owner` is visible.
    pub fn allows(&self, owner: &str) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Owner(o) => o == owner,
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No visible to-do has the id.
    #[error("to-do {0} not found")]
    NotFound(i64),
    /// The expected version did not match the stored one.
    #[error("to-do {id} has changed: etag {expected:?} does not match the current etag")]
    EtagMismatch {
        /// The to-do.
        id: i64,
        /// The etag the caller sent.
        expected: String,
    },
    /// The backend cannot be reached or is shutting down; the call may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure.
    #[error("storage failure: {0}")]
    Internal(String),
}

/// Durable storage of to-dos.
///
/// Every mutating call is atomic and durable when it returns `Ok`: an
/// acknowledged write survives a crash of the process.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new to-do and returns it with its id, times and version; if
    /// `new.request_id` was already used by the same owner, returns the
    /// to-do that create made instead.
    async fn create(&self, new: NewToDo) -> Result<ToDoRecord, StoreError>;

    /// Returns the to-do `id` if it exists and is visible.
    async fn get(&self, id: i64, visibility: Visibility) -> Result<ToDoRecord, StoreError>;

    /// Returns at most `limit` visible to-dos with an id greater than
    /// `after_id`, in ascending id order.
    async fn list(
        &self,
        visibility: Visibility,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ToDoRecord>, StoreError>;

    /// Replaces the description of a visible to-do, if its etag equals
    /// `expected_etag` (when given), and gives it a new etag.
    async fn update_description(
        &self,
        id: i64,
        visibility: Visibility,
        description: String,
        expected_etag: Option<String>,
    ) -> Result<ToDoRecord, StoreError>;

    /// Deletes a visible to-do, if its etag equals `expected_etag` (when given).
    async fn delete(
        &self,
        id: i64,
        visibility: Visibility,
        expected_etag: Option<String>,
    ) -> Result<(), StoreError>;

    /// Checks that the backend answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens the store named by a database URL: `sqlite://PATH` (relative or
/// absolute, e.g. `sqlite://todo.db` or `sqlite:///var/lib/todo/todo.db`) or
/// `postgres://…` / `postgresql://…` (pool settings from `pg`).
pub async fn open(
    url: &str,
    pg: &PostgresOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(std::sync::Arc::new(PostgresStore::open(url, pg).await?));
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(StoreError::Internal(
                "database URL `sqlite://` names no file; use e.g. sqlite://todo.db".into(),
            ));
        }
        let store = SqliteStore::open(path).await?;
        return Ok(std::sync::Arc::new(store));
    }
    Err(StoreError::Internal(format!(
        "unsupported database URL scheme in {:?}: expected sqlite://PATH or postgres://…",
        redact_url(url)
    )))
}

/// Drops any `user:password@` part of a URL so that it can be logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://[redacted]@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The current time in microseconds since the Unix epoch.
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
