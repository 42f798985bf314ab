//! An in-memory [`Store`] for the ceiling and the peer comparison: the same
//! semantics as the durable stores (ids from 1, never reused; etags; owner
//! visibility), none of the I/O. Bench-only: nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use todo_server::store::{NewToDo, Store, StoreError, ToDoRecord, Visibility};

/// To-dos in a map behind a read-write lock.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    rows: BTreeMap<i64, ToDoRecord>,
    last_id: i64,
    /// Idempotency keys of creates: (owner, request id) → id.
    requests: HashMap<(String, String), i64>,
}

impl MemoryStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The visible row `id` at the expected etag (when one is given).
fn checked<'a>(
    inner: &'a mut Inner,
    id: i64,
    visibility: &Visibility,
    expected_etag: Option<&str>,
) -> Result<&'a mut ToDoRecord, StoreError> {
    let row = inner
        .rows
        .get_mut(&id)
        .filter(|r| visibility.allows(&r.owner))
        .ok_or(StoreError::NotFound(id))?;
    match expected_etag {
        Some(etag) if etag != row.etag() => Err(StoreError::EtagMismatch {
            id,
            expected: etag.to_owned(),
        }),
        _ => Ok(row),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create(&self, new: NewToDo) -> Result<ToDoRecord, StoreError> {
        let now = now_us();
        let mut inner = self.write();
        if let Some(request_id) = &new.request_id {
            let key = (new.owner.clone(), request_id.clone());
            if let Some(earlier) = inner.requests.get(&key).and_then(|id| inner.rows.get(id)) {
                return Ok(earlier.clone());
            }
            let id = inner.last_id + 1;
            inner.requests.insert(key, id);
        }
        inner.last_id += 1;
        let record = ToDoRecord {
            id: inner.last_id,
            owner: new.owner,
            description: new.description,
            create_time_us: now,
            update_time_us: now,
            version: 1,
        };
        inner.rows.insert(record.id, record.clone());
        Ok(record)
    }

    async fn get(&self, id: i64, visibility: Visibility) -> Result<ToDoRecord, StoreError> {
        self.read()
            .rows
            .get(&id)
            .filter(|r| visibility.allows(&r.owner))
            .cloned()
            .ok_or(StoreError::NotFound(id))
    }

    async fn list(
        &self,
        visibility: Visibility,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ToDoRecord>, StoreError> {
        Ok(self
            .read()
            .rows
            .range(after_id.saturating_add(1)..)
            .map(|(_, r)| r)
            .filter(|r| visibility.allows(&r.owner))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn update_description(
        &self,
        id: i64,
        visibility: Visibility,
        description: String,
        expected_etag: Option<String>,
    ) -> Result<ToDoRecord, StoreError> {
        let mut inner = self.write();
        let row = checked(&mut inner, id, &visibility, expected_etag.as_deref())?;
        row.description = description;
        row.update_time_us = now_us().max(row.update_time_us);
        row.version += 1;
        Ok(row.clone())
    }

    async fn delete(
        &self,
        id: i64,
        visibility: Visibility,
        expected_etag: Option<String>,
    ) -> Result<(), StoreError> {
        let mut inner = self.write();
        checked(&mut inner, id, &visibility, expected_etag.as_deref())?;
        inner.rows.remove(&id);
        inner.requests.retain(|_, v| *v != id);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(owner: &str) -> NewToDo {
        NewToDo {
            owner: owner.into(),
            description: "d".into(),
            request_id: None,
        }
    }

    #[tokio::test]
    async fn behaves_like_the_durable_stores() {
        let store = MemoryStore::default();
        let a = store.create(new("alice")).await.unwrap();
        let b = store.create(new("bob")).await.unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        let alice = Visibility::Owner("alice".into());
        assert!(matches!(
            store.get(b.id, alice.clone()).await,
            Err(StoreError::NotFound(2))
        ));
        let page = store.list(Visibility::All, 0, 1).await.unwrap();
        assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);
        let page = store.list(Visibility::All, 1, 10).await.unwrap();
        assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [2]);
        let updated = store
            .update_description(a.id, alice.clone(), "e".into(), Some("1".into()))
            .await
            .unwrap();
        assert_eq!(updated.etag(), "2");
        assert!(matches!(
            store.delete(a.id, alice.clone(), Some("1".into())).await,
            Err(StoreError::EtagMismatch { .. })
        ));
        store.delete(a.id, alice, None).await.unwrap();
        let c = store.create(new("carol")).await.unwrap();
        assert_eq!(c.id, 3, "ids are never reused");
        let keyed = NewToDo {
            request_id: Some("r1".into()),
            ..new("carol")
        };
        let first = store.create(keyed.clone()).await.unwrap();
        let again = store.create(keyed).await.unwrap();
        assert_eq!(
            (first.id, again.id),
            (4, 4),
            "a repeated request id creates nothing"
        );
    }
}
