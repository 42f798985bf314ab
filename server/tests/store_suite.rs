//! The store suite: written once, run against every backend.
//!
//! `store_suite!(name, make)` expands to one `#[tokio::test]` per case, where
//! `make` is an expression giving a future of `Option<(Arc<dyn Store>,
//! guard)>`; the guard keeps the backend's resources (a temporary folder, a
//! schema) alive, and `None` means the backend is not available here (see
//! [`crate::util::postgres_store`]: never in CI).

use std::{collections::HashSet, sync::Arc};

use todo_server::store::{NewToDo, Store, StoreError, Visibility};

use crate::util::{ALICE, BOB};

macro_rules! store_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::cases;
            store_suite!(@cases $make;
                assigns_sequential_ids,
                get_respects_visibility,
                list_orders_pages_and_filters,
                long_pages_read_every_row,
                update_changes_description_and_etag,
                update_checks_etag_and_visibility,
                delete_checks_etag_and_visibility,
                ids_are_never_reused,
                concurrent_creates_get_unique_ids,
                concurrent_conflicting_updates_have_one_winner,
                failed_write_does_not_spoil_its_batch,
                unicode_round_trips,
                repeated_request_id_creates_once,
            );
        }
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some((store, _guard)) = $make.await else {
                    return;
                };
                cases::$case(store).await;
            }
        )+
    };
}

store_suite!(sqlite, async { Some(crate::util::sqlite_store().await) });
store_suite!(postgres, crate::util::postgres_store());

/// Reopening a SQLite file keeps everything, and migrations are idempotent.
#[tokio::test]
async fn sqlite_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("todo.db");
    {
        let store = todo_server::store::SqliteStore::open(&path).await.unwrap();
        store.create(new(ALICE, "persist me")).await.unwrap();
    }
    let store = todo_server::store::SqliteStore::open(&path).await.unwrap();
    let got = store.get(1, Visibility::All).await.unwrap();
    assert_eq!(got.description, "persist me");
    assert_eq!(store.create(new(ALICE, "next")).await.unwrap().id, 2);
}

/// An unusable path is a clear error, not a panic.
#[tokio::test]
async fn sqlite_open_reports_bad_path() {
    let err = todo_server::store::SqliteStore::open("/nonexistent-dir/x/todo.db")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent-dir/x/todo.db"),
        "{err}"
    );
}

fn new(owner: &str, description: &str) -> NewToDo {
    NewToDo {
        owner: owner.to_owned(),
        description: description.to_owned(),
        request_id: None,
    }
}

fn owner(oid: &str) -> Visibility {
    Visibility::Owner(oid.to_owned())
}

pub(crate) mod cases {
    use super::*;

    pub(crate) async fn assigns_sequential_ids(store: Arc<dyn Store>) {
        let a = store.create(new(ALICE, "Bake bread")).await.unwrap();
        let b = store.create(new(BOB, "Butter bread")).await.unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!(a.owner, ALICE);
        assert_eq!(a.description, "Bake bread");
        assert_eq!(a.version, 1);
        assert_eq!(a.create_time_us, a.update_time_us);
        assert!(a.create_time_us > 1_600_000_000_000_000, "a plausible time");
        assert_eq!(store.get(1, Visibility::All).await.unwrap(), a);
    }

    pub(crate) async fn get_respects_visibility(store: Arc<dyn Store>) {
        let a = store.create(new(ALICE, "mine")).await.unwrap();
        assert_eq!(store.get(a.id, owner(ALICE)).await.unwrap(), a);
        assert!(matches!(
            store.get(a.id, owner(BOB)).await,
            Err(StoreError::NotFound(id)) if id == a.id
        ));
        assert!(matches!(
            store.get(999, Visibility::All).await,
            Err(StoreError::NotFound(999))
        ));
    }

    pub(crate) async fn list_orders_pages_and_filters(store: Arc<dyn Store>) {
        for i in 0..10 {
            let who = if i % 2 == 0 { ALICE } else { BOB };
            store.create(new(who, &format!("item {i}"))).await.unwrap();
        }
        let all = store.list(Visibility::All, 0, 100).await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.id).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        let page = store.list(Visibility::All, 3, 4).await.unwrap();
        assert_eq!(
            page.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![4, 5, 6, 7]
        );
        let alice = store.list(owner(ALICE), 0, 100).await.unwrap();
        assert_eq!(
            alice.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![1, 3, 5, 7, 9]
        );
        assert!(alice.iter().all(|r| r.owner == ALICE));
        let alice_after = store.list(owner(ALICE), 5, 2).await.unwrap();
        assert_eq!(
            alice_after.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![7, 9]
        );
        assert!(store.list(Visibility::All, 10, 5).await.unwrap().is_empty());
    }

    /// Pages longer than the SQLite store reads inline take its other path;
    /// both return every row, in order, filtered the same way.
    pub(crate) async fn long_pages_read_every_row(store: Arc<dyn Store>) {
        let creates = (0..250).map(|i| {
            let store = Arc::clone(&store);
            let who = if i % 2 == 0 { ALICE } else { BOB };
            async move { store.create(new(who, &format!("item {i}"))).await }
        });
        for created in futures::future::join_all(creates).await {
            created.unwrap();
        }
        let ids = |rows: Vec<todo_server::store::ToDoRecord>| {
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        };
        let all = ids(store.list(Visibility::All, 0, 1000).await.unwrap());
        assert_eq!(all, (1..=250).collect::<Vec<_>>());
        let short = ids(store.list(Visibility::All, 0, 100).await.unwrap());
        assert_eq!(short, (1..=100).collect::<Vec<_>>());
        let rest = ids(store.list(Visibility::All, 100, 150).await.unwrap());
        assert_eq!(rest, (101..=250).collect::<Vec<_>>());
        let alice = store.list(owner(ALICE), 0, 1000).await.unwrap();
        assert_eq!(alice.len(), 125);
        assert!(alice.iter().all(|r| r.owner == ALICE));
        assert!(alice.windows(2).all(|w| w[0].id < w[1].id));
    }

    pub(crate) async fn update_changes_description_and_etag(store: Arc<dyn Store>) {
        let a = store.create(new(ALICE, "Butter bread")).await.unwrap();
        let b = store
            .update_description(a.id, Visibility::All, "Eat bread".into(), Some(a.etag()))
            .await
            .unwrap();
        assert_eq!(b.description, "Eat bread");
        assert_ne!(b.etag(), a.etag());
        assert_eq!(b.create_time_us, a.create_time_us);
        assert!(b.update_time_us >= a.update_time_us);
        assert_eq!(b.owner, ALICE);
        // Unconditional update.
        let c = store
            .update_description(a.id, owner(ALICE), "Eat more bread".into(), None)
            .await
            .unwrap();
        assert_eq!(c.description, "Eat more bread");
        assert_eq!(store.get(a.id, Visibility::All).await.unwrap(), c);
    }

    pub(crate) async fn update_checks_etag_and_visibility(store: Arc<dyn Store>) {
        let a = store.create(new(ALICE, "original")).await.unwrap();
        for stale in ["0", "2", "garbage", ""] {
            let err = store
                .update_description(a.id, Visibility::All, "x".into(), Some(stale.into()))
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::EtagMismatch { .. }),
                "{stale}: {err}"
            );
        }
        let err = store
            .update_description(a.id, owner(BOB), "x".into(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        let err = store
            .update_description(42, Visibility::All, "x".into(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(42)), "{err}");
        // Nothing changed.
        assert_eq!(store.get(a.id, Visibility::All).await.unwrap(), a);
    }

    pub(crate) async fn delete_checks_etag_and_visibility(store: Arc<dyn Store>) {
        let a = store.create(new(ALICE, "to delete")).await.unwrap();
        let err = store
            .delete(a.id, Visibility::All, Some("7".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::EtagMismatch { .. }), "{err}");
        let err = store.delete(a.id, owner(BOB), None).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        assert_eq!(store.get(a.id, Visibility::All).await.unwrap(), a);

        store
            .delete(a.id, owner(ALICE), Some(a.etag()))
            .await
            .unwrap();
        assert!(matches!(
            store.get(a.id, Visibility::All).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.delete(a.id, Visibility::All, None).await,
            Err(StoreError::NotFound(_))
        ));
    }

    pub(crate) async fn ids_are_never_reused(store: Arc<dyn Store>) {
        let a = store.create(new(ALICE, "one")).await.unwrap();
        let b = store.create(new(ALICE, "two")).await.unwrap();
        store.delete(b.id, Visibility::All, None).await.unwrap();
        store.delete(a.id, Visibility::All, None).await.unwrap();
        let c = store.create(new(ALICE, "three")).await.unwrap();
        assert_eq!(c.id, 3);
    }

    pub(crate) async fn concurrent_creates_get_unique_ids(store: Arc<dyn Store>) {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.create(new(ALICE, &format!("c{i}"))).await })
            })
            .collect();
        let mut ids = HashSet::new();
        for task in tasks {
            let record = task.await.unwrap().unwrap();
            assert!(ids.insert(record.id), "duplicate id {}", record.id);
        }
        assert_eq!(ids.len(), 200);
        let listed = store.list(Visibility::All, 0, 1000).await.unwrap();
        assert_eq!(listed.len(), 200);
    }

    pub(crate) async fn concurrent_conflicting_updates_have_one_winner(store: Arc<dyn Store>) {
        let a = store.create(new(ALICE, "contended")).await.unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = Arc::clone(&store);
                let etag = a.etag();
                tokio::spawn(async move {
                    store
                        .update_description(a.id, Visibility::All, format!("w{i}"), Some(etag))
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(r) => winners.push(r),
                Err(StoreError::EtagMismatch { .. }) => {}
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one conditional update wins");
        assert_eq!(store.get(a.id, Visibility::All).await.unwrap(), winners[0]);
    }

    pub(crate) async fn failed_write_does_not_spoil_its_batch(store: Arc<dyn Store>) {
        let a = store.create(new(ALICE, "base")).await.unwrap();
        // Writes that fail (stale etag, missing id) interleaved with good ones.
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    match i % 3 {
                        0 => store.create(new(BOB, &format!("ok{i}"))).await.map(|_| ()),
                        1 => store
                            .update_description(
                                a.id,
                                Visibility::All,
                                "x".into(),
                                Some("99".into()),
                            )
                            .await
                            .map(|_| ()),
                        _ => store.delete(100_000 + i, Visibility::All, None).await,
                    }
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            if task.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 20);
        assert_eq!(store.list(owner(BOB), 0, 1000).await.unwrap().len(), 20);
        assert_eq!(store.get(a.id, Visibility::All).await.unwrap(), a);
    }

    pub(crate) async fn unicode_round_trips(store: Arc<dyn Store>) {
        let text = "Brot backen 🍞 — «ça» 'quoted' \"double\" ; DROP TABLE todos; --";
        let a = store.create(new(ALICE, text)).await.unwrap();
        assert_eq!(
            store.get(a.id, Visibility::All).await.unwrap().description,
            text
        );
    }

    pub(crate) async fn repeated_request_id_creates_once(store: Arc<dyn Store>) {
        let keyed = |owner: &str, key: &str| NewToDo {
            owner: owner.to_owned(),
            description: format!("keyed by {key}"),
            request_id: Some(key.to_owned()),
        };
        let key = "6f1c1f52-5c8e-4b0e-9d47-3f3c2f0c8a11";
        let first = store.create(keyed(ALICE, key)).await.unwrap();
        let again = store.create(keyed(ALICE, key)).await.unwrap();
        assert_eq!(first, again, "a retried create returns the first one");
        // The same key of another owner is another create.
        let bobs = store.create(keyed(BOB, key)).await.unwrap();
        assert_ne!(bobs.id, first.id);
        // Concurrent retries of one create: one row, every caller gets it.
        let key2 = "0d3f7a3e-8a4c-4a55-b1a4-2b5d1c9e7f00";
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.create(keyed(ALICE, key2)).await })
            })
            .collect();
        let mut ids = HashSet::new();
        for task in tasks {
            ids.insert(task.await.unwrap().unwrap().id);
        }
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(store.list(Visibility::All, 0, 100).await.unwrap().len(), 3);
    }
}
