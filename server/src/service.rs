//! `todo.v1.ToDoService`: request validation, ownership rules, and the
//! mapping of store results to gRPC answers.
//!
//! Every handler first takes the authenticated [`Caller`] that the
//! authentication layer put into the request. A request without one is
//! refused as UNAUTHENTICATED: the service fails closed even if it is ever
//! mounted without the layer.

use std::sync::Arc;

use entra_auth::Caller;
use prost_types::Timestamp;
use todo_proto::v1::{
    CreateToDoRequest, DeleteToDoRequest, GetToDoRequest, ListToDosRequest, ListToDosResponse,
    ToDo, UpdateToDoRequest, to_do_service_server::ToDoService,
};
use tonic::{Request, Response, Status};

use crate::{
    limits::ClientRateLimit,
    page_token,
    store::{NewToDo, Store, StoreError, ToDoRecord, Visibility},
};

/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Page size used when a request asks for 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The ToDo service over a [`Store`].
#[derive(Clone)]
pub struct ToDoApi {
    store: Arc<dyn Store>,
    rate_limit: Option<Arc<ClientRateLimit>>,
}

impl std::fmt::Debug for ToDoApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToDoApi").finish_non_exhaustive()
    }
}

impl ToDoApi {
    /// A service that keeps its to-dos in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            rate_limit: None,
        }
    }

    /// Limits each client's (`azp`) calls, when given.
    pub fn with_rate_limit(mut self, limit: Option<Arc<ClientRateLimit>>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// The caller of `request`, after its rate limit.
    fn admit<'a, T>(&self, request: &'a Request<T>) -> Result<&'a Caller, Status> {
        let caller = caller(request)?;
        if let Some(limit) = &self.rate_limit {
            limit.check(&caller.azp)?;
        }
        Ok(caller)
    }
}

#[tonic::async_trait]
impl ToDoService for ToDoApi {
    async fn create_to_do(
        &self,
        request: Request<CreateToDoRequest>,
    ) -> Result<Response<ToDo>, Status> {
        let caller = self.admit(&request)?;
        let todo = request
            .get_ref()
            .todo
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("todo is required"))?;
        let description = description(&todo.description, "todo.description")?;
        let owner = if caller.app_only && !todo.owner.is_empty() {
            let owner = uuid::Uuid::parse_str(&todo.owner).map_err(|_| {
                Status::invalid_argument(
                    "todo.owner must be the object id (a UUID) of an Entra principal",
                )
            })?;
            owner.hyphenated().to_string()
        } else {
            caller.oid.clone()
        };
        let request_id = match request.get_ref().request_id.as_str() {
            "" => None,
            id => Some(
                uuid::Uuid::parse_str(id)
                    .map_err(|_| Status::invalid_argument("request_id must be a UUID (or empty)"))?
                    .hyphenated()
                    .to_string(),
            ),
        };
        let result = self
            .store
            .create(NewToDo {
                owner,
                description,
                request_id,
            })
            .await;
        audit(
            &request,
            caller,
            "create",
            result.as_ref().map(|r| r.id).ok(),
            &result,
        );
        Ok(Response::new(to_proto(result?)))
    }

    async fn get_to_do(&self, request: Request<GetToDoRequest>) -> Result<Response<ToDo>, Status> {
        let visibility = visibility(self.admit(&request)?);
        let record = self.store.get(request.get_ref().id, visibility).await?;
        Ok(Response::new(to_proto(record)))
    }

    async fn list_to_dos(
        &self,
        request: Request<ListToDosRequest>,
    ) -> Result<Response<ListToDosResponse>, Status> {
        let visibility = visibility(self.admit(&request)?);
        let req = request.get_ref();
        let page_size = match req.page_size {
            n if n < 0 => {
                return Err(Status::invalid_argument(format!(
                    "page_size must not be negative (got {n})"
                )));
            }
            0 => DEFAULT_PAGE_SIZE,
            n => usize::try_from(n)
                .unwrap_or(MAX_PAGE_SIZE)
                .min(MAX_PAGE_SIZE),
        };
        let after_id = if req.page_token.is_empty() {
            0
        } else {
            page_token::decode(&req.page_token).ok_or_else(|| {
                Status::invalid_argument(
                    "page_token is not a token returned by ListToDos; \
                     send next_page_token unchanged, or nothing for the first page",
                )
            })?
        };
        // One extra row tells whether another page follows.
        let mut records = self.store.list(visibility, after_id, page_size + 1).await?;
        let next_page_token = if records.len() > page_size {
            records.truncate(page_size);
            records
                .last()
                .map(|r| page_token::encode(r.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListToDosResponse {
            todos: records.into_iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_to_do(
        &self,
        request: Request<UpdateToDoRequest>,
    ) -> Result<Response<ToDo>, Status> {
        let caller = self.admit(&request)?;
        let req = request.get_ref();
        let todo = req
            .todo
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("todo is required"))?;
        if let Some(path) = req
            .update_mask
            .iter()
            .flat_map(|mask| &mask.paths)
            .find(|p| p.as_str() != "description")
        {
            return Err(Status::invalid_argument(format!(
                "update_mask names {path:?}, but only \"description\" can be updated"
            )));
        }
        let description = description(&todo.description, "todo.description")?;
        let result = self
            .store
            .update_description(
                todo.id,
                visibility(caller),
                description,
                non_empty(&todo.etag),
            )
            .await;
        audit(&request, caller, "update", Some(todo.id), &result);
        Ok(Response::new(to_proto(result?)))
    }

    async fn delete_to_do(
        &self,
        request: Request<DeleteToDoRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.admit(&request)?;
        let req = request.get_ref();
        let result = self
            .store
            .delete(req.id, visibility(caller), non_empty(&req.etag))
            .await;
        audit(&request, caller, "delete", Some(req.id), &result);
        result?;
        Ok(Response::new(()))
    }
}

/// Writes the audit line of a change: who (`azp`, `oid`, `tid`), what, on
/// which to-do, the outcome, and the trace id (W3C `traceparent` when the
/// caller sent one). Never the token.
fn audit<T, R>(
    request: &Request<T>,
    caller: &Caller,
    action: &'static str,
    id: Option<i64>,
    result: &Result<R, StoreError>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(StoreError::NotFound(_)) => "not_found",
        Err(StoreError::EtagMismatch { .. }) => "etag_mismatch",
        Err(StoreError::Unavailable(_)) => "unavailable",
        Err(StoreError::Internal(_)) => "internal_error",
    };
    let trace_id = request
        .metadata()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('-').nth(1))
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or("");
    tracing::info!(
        target: "audit",
        action,
        todo_id = id,
        azp = %caller.azp,
        oid = %caller.oid,
        tid = %caller.tid,
        outcome,
        trace_id,
        "to-do {action}: {outcome}"
    );
}

/// The authenticated caller of a request, or UNAUTHENTICATED.
fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

/// What `caller` may see: everything for app-only callers, its own otherwise.
fn visibility(caller: &Caller) -> Visibility {
    if caller.app_only {
        Visibility::All
    } else {
        Visibility::Owner(caller.oid.clone())
    }
}

/// Validates and trims a description.
fn description(raw: &str, field: &str) -> Result<String, Status> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    let chars = trimmed.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(Status::invalid_argument(format!(
            "{field} is {chars} characters long; at most {MAX_DESCRIPTION_CHARS} are allowed"
        )));
    }
    Ok(trimmed.to_owned())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn to_proto(r: ToDoRecord) -> ToDo {
    let etag = r.etag();
    ToDo {
        id: r.id,
        owner: r.owner,
        description: r.description,
        create_time: Some(timestamp(r.create_time_us)),
        update_time: Some(timestamp(r.update_time_us)),
        etag,
    }
}

fn timestamp(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: i32::try_from(us.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Status::not_found(e.to_string()),
            StoreError::EtagMismatch { .. } => {
                Status::aborted(format!("{e}; read it again and retry with the new etag"))
            }
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "storage unavailable");
                Status::unavailable(e.to_string())
            }
            StoreError::Internal(_) => {
                tracing::error!(error = %e, "storage failure");
                Status::internal("internal storage error")
            }
        }
    }
}
