//! Shared harness of the fuzz targets (see `README.md`).
//!
//! - [`validator`]: entra-auth's token checks over the checked-in key set of a
//!   dev authority (`fixtures/`), at the fixed time [`NOW`], no network.
//! - [`check_outcome`]: what must hold for any token, valid or not.
//! - [`MemStore`]: an in-memory [`Store`] that asserts that only validated
//!   values reach storage.
//!
//! Empty unless built with `--cfg fuzzing` (as cargo fuzz builds), so that the
//! corpus generator (`examples/gen_corpus.rs`) builds without the fixtures it
//! makes and without entra-auth's fuzzing entry points.

#![cfg(fuzzing)]

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use async_trait::async_trait;
use entra_auth::fuzzing::StaticValidator;
use entra_auth::{Authority, Caller, Config, Error};
use serde::Deserialize;
use todo_server::service::{MAX_DESCRIPTION_CHARS, MAX_PAGE_SIZE};
use todo_server::store::{NewToDo, Store, StoreError, ToDoRecord, Visibility};
use tonic::Code;

/// The dev authority's public keys when the corpus was made.
pub const JWKS: &str = include_str!("../fixtures/jwks.json");
/// The private key of `JWKS`'s signing key (a throwaway dev key).
pub const SIGNING_KEY_PEM: &str = include_str!("../fixtures/signing-key.pem");
const SETTINGS: &str = include_str!("../fixtures/validation.json");

/// What the fixtures say about the authority and the API.
#[derive(Deserialize)]
pub struct Settings {
    /// The authority URL (`https://127.0.0.1:PORT/{tenant}/v2.0`).
    pub authority: String,
    /// The metadata issuer.
    pub issuer: String,
    /// The API's client id.
    pub client_id: String,
    /// The `kid` of the signing key.
    pub kid: String,
    /// The fixed clock: when the corpus tokens were valid.
    pub now: i64,
}

/// The fixture settings.
pub fn settings() -> &'static Settings {
    static SETTINGS_ONCE: OnceLock<Settings> = OnceLock::new();
    SETTINGS_ONCE.get_or_init(|| serde_json::from_str(SETTINGS).expect("fixtures/validation.json"))
}

/// The token checks of the server, over the fixture key set.
pub fn validator() -> &'static StaticValidator {
    static VALIDATOR: OnceLock<StaticValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let s = settings();
        let authority = Authority::parse(&s.authority).expect("fixture authority");
        let config = Config::new(authority, s.client_id.clone());
        let validator =
            StaticValidator::new(&config, &s.issuer, JWKS.as_bytes()).expect("fixture JWKS");
        assert_eq!(
            entra_auth::fuzzing::jwks_key_count(JWKS.as_bytes()),
            Some(1)
        );
        validator
    })
}

/// Invariants of every validation outcome:
/// - an accepted token names a principal, a tenant and a client, and grants
///   some role or scope (no allow-list is configured);
/// - a refused token is UNAUTHENTICATED with a `www-authenticate` challenge,
///   a reason, and a short, printable-ASCII message (nothing copied from the
///   token beyond what `echo` lets through).
pub fn check_outcome(outcome: Result<Caller, Error>) {
    match outcome {
        Ok(caller) => {
            assert!(!caller.oid.is_empty() && !caller.tid.is_empty() && !caller.azp.is_empty());
            assert!(!caller.roles.is_empty() || !caller.scopes.is_empty());
        }
        Err(error) => {
            let status = error.to_status();
            assert_eq!(status.code(), Code::Unauthenticated, "{error:?}");
            assert!(!error.reason().is_empty());
            let message = status.message();
            assert!(
                message.len() <= 1024,
                "message of {} bytes for {}",
                message.len(),
                error.reason()
            );
            assert!(
                message.chars().all(|c| c.is_ascii_graphic() || c == ' '),
                "non-printable message for {}: {message:?}",
                error.reason()
            );
            assert!(status.metadata().get("www-authenticate").is_some());
        }
    }
}

/// An in-memory store that checks what the service hands it.
#[derive(Default)]
pub struct MemStore {
    rows: Mutex<BTreeMap<i64, ToDoRecord>>,
}

impl MemStore {
    /// A store holding to-do 1 (owned by `app_owner`) and 2 (owned by `user`).
    pub fn seeded(app_owner: &str, user: &str) -> Self {
        let store = MemStore::default();
        {
            let mut rows = store.rows.lock().unwrap();
            for (id, owner) in [(1, app_owner), (2, user)] {
                rows.insert(
                    id,
                    ToDoRecord {
                        id,
                        owner: owner.to_owned(),
                        description: format!("seed {id}"),
                        create_time_us: 1,
                        update_time_us: 1,
                        version: 1,
                    },
                );
            }
        }
        store
    }
}

fn assert_valid_description(description: &str) {
    assert!(
        !description.is_empty(),
        "empty description reached the store"
    );
    assert_eq!(description, description.trim(), "untrimmed description");
    assert!(description.chars().count() <= MAX_DESCRIPTION_CHARS);
}

fn visible(visibility: &Visibility, record: &ToDoRecord) -> bool {
    visibility.allows(&record.owner)
}

#[async_trait]
impl Store for MemStore {
    async fn create(&self, new: NewToDo) -> Result<ToDoRecord, StoreError> {
        assert_valid_description(&new.description);
        assert!(
            uuid::Uuid::parse_str(&new.owner).is_ok(),
            "owner {:?}",
            new.owner
        );
        if let Some(id) = &new.request_id {
            assert!(uuid::Uuid::parse_str(id).is_ok(), "request id {id:?}");
        }
        let mut rows = self.rows.lock().unwrap();
        let id = rows.keys().next_back().copied().unwrap_or(0) + 1;
        let record = ToDoRecord {
            id,
            owner: new.owner,
            description: new.description,
            create_time_us: 2,
            update_time_us: 2,
            version: 1,
        };
        rows.insert(id, record.clone());
        Ok(record)
    }

    async fn get(&self, id: i64, visibility: Visibility) -> Result<ToDoRecord, StoreError> {
        let rows = self.rows.lock().unwrap();
        rows.get(&id)
            .filter(|r| visible(&visibility, r))
            .cloned()
            .ok_or(StoreError::NotFound(id))
    }

    async fn list(
        &self,
        visibility: Visibility,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ToDoRecord>, StoreError> {
        assert!(after_id >= 0, "negative page start {after_id}");
        assert!((1..=MAX_PAGE_SIZE + 1).contains(&limit), "limit {limit}");
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .range(after_id.saturating_add(1)..)
            .map(|(_, r)| r)
            .filter(|r| visible(&visibility, r))
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
        assert_valid_description(&description);
        let mut rows = self.rows.lock().unwrap();
        let record = rows
            .get_mut(&id)
            .filter(|r| visible(&visibility, r))
            .ok_or(StoreError::NotFound(id))?;
        if let Some(expected) = expected_etag.filter(|e| *e != record.etag()) {
            return Err(StoreError::EtagMismatch { id, expected });
        }
        record.description = description;
        record.version += 1;
        Ok(record.clone())
    }

    async fn delete(
        &self,
        id: i64,
        visibility: Visibility,
        expected_etag: Option<String>,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let record = rows
            .get(&id)
            .filter(|r| visible(&visibility, r))
            .ok_or(StoreError::NotFound(id))?;
        if let Some(expected) = expected_etag.filter(|e| *e != record.etag()) {
            return Err(StoreError::EtagMismatch { id, expected });
        }
        rows.remove(&id);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
