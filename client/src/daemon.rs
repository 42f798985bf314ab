//! A connection to the ToDo server with tokens attached, and error messages
//! a user can act on.

use std::time::Duration;

use entra_token_provider::{BearerLayer, BearerService, TokenProvider, retry_unauthenticated_once};
use todo_proto::v1::{
    CreateToDoRequest, DeleteToDoRequest, GetToDoRequest, ListToDosRequest, ToDo,
    UpdateToDoRequest, to_do_service_client::ToDoServiceClient,
};
use tonic::{
    Code, Status,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};
use tower::ServiceBuilder;

use crate::DaemonConfig;

/// Why a daemon operation failed, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The server could not be reached.
    #[error("could not reach the to-do server at {server}; is it running? ({detail})")]
    Unreachable {
        /// The server URL.
        server: String,
        /// What the transport said.
        detail: String,
    },
    /// No token could be acquired.
    #[error("could not get an access token: {0}")]
    Token(String),
    /// The server refused the token (401).
    #[error("the server rejected the access token (UNAUTHENTICATED): {0}")]
    Unauthenticated(String),
    /// The token lacks the role the call needs (403).
    #[error("the server refused the call (PERMISSION_DENIED): {0}")]
    PermissionDenied(String),
    /// Any other answer.
    #[error("{code:?}: {message}")]
    Call {
        /// The gRPC status code.
        code: Code,
        /// The server's message.
        message: String,
    },
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
}

impl DaemonError {
    fn from_status(status: Status, server: &str) -> Self {
        if let Some(e) = std::error::Error::source(&status)
            .and_then(|source| source.downcast_ref::<entra_token_provider::Error>())
        {
            return DaemonError::Token(e.to_string());
        }
        match status.code() {
            Code::Unauthenticated => {
                // Prefer the server's error_description from the challenge.
                let description = status
                    .metadata()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split("error_description=\"").nth(1))
                    .and_then(|v| v.strip_suffix('"'))
                    .map(str::to_owned)
                    .unwrap_or_else(|| status.message().to_owned());
                DaemonError::Unauthenticated(description)
            }
            Code::PermissionDenied => DaemonError::PermissionDenied(status.message().to_owned()),
            Code::Unavailable if is_transport(&status) => DaemonError::Unreachable {
                server: server.to_owned(),
                detail: status.message().to_owned(),
            },
            code => DaemonError::Call {
                code,
                message: status.message().to_owned(),
            },
        }
    }
}

/// Attempts of a call while the server answers UNAVAILABLE (about 10 s).
const UNAVAILABLE_ATTEMPTS: u32 = 9;

fn from_token_provider(status: &Status) -> bool {
    std::error::Error::source(status)
        .is_some_and(|s| s.downcast_ref::<entra_token_provider::Error>().is_some())
}

fn is_transport(status: &Status) -> bool {
    std::error::Error::source(status)
        .is_some_and(|s| s.downcast_ref::<tonic::transport::Error>().is_some())
        || status.message().contains("transport error")
        || status.message().contains("Connection refused")
}

/// A connected daemon.
#[derive(Clone, Debug)]
pub struct Daemon {
    client: ToDoServiceClient<BearerService<Channel>>,
    provider: TokenProvider,
    server: String,
}

impl Daemon {
    /// Connects to the server named in `config`, with tokens from `provider`.
    pub async fn connect(
        config: &DaemonConfig,
        provider: TokenProvider,
    ) -> Result<Self, DaemonError> {
        let server = config.server.clone();
        let mut endpoint = Endpoint::from_shared(server.clone())
            .map_err(|e| DaemonError::Config(format!("--server {server:?} is not a URL: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        if server.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &config.server_ca_file {
                let pem = std::fs::read(ca).map_err(|e| {
                    DaemonError::Config(format!(
                        "cannot read --server-ca-file {}: {e}",
                        ca.display()
                    ))
                })?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            if let Some((cert, key)) = &config.tls_client_identity {
                let read = |path: &std::path::PathBuf| {
                    std::fs::read(path).map_err(|e| {
                        DaemonError::Config(format!("cannot read {}: {e}", path.display()))
                    })
                };
                tls = tls.identity(tonic::transport::Identity::from_pem(
                    read(cert)?,
                    read(key)?,
                ));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| DaemonError::Config(format!("TLS settings: {e}")))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| DaemonError::Unreachable {
                server: server.clone(),
                detail: error_chain(&e),
            })?;
        let service = ServiceBuilder::new()
            .layer(BearerLayer::new(provider.clone()))
            .service(channel);
        Ok(Self {
            client: ToDoServiceClient::new(service),
            provider,
            server,
        })
    }

    /// Every to-do visible to the daemon, in id order (all pages).
    pub async fn list(&self) -> Result<Vec<ToDo>, DaemonError> {
        let mut todos = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = ListToDosRequest {
                page_size: 1000,
                page_token: page_token.clone(),
            };
            let page = self
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.list_to_dos(request).await }
                })
                .await?;
            todos.extend(page.todos);
            if page.next_page_token.is_empty() {
                return Ok(todos);
            }
            page_token = page.next_page_token;
        }
    }

    /// One to-do.
    pub async fn get(&self, id: i64) -> Result<ToDo, DaemonError> {
        self.call(|mut c| async move { c.get_to_do(GetToDoRequest { id }).await })
            .await
    }

    /// Creates a to-do owned by the daemon. Retries carry the same request
    /// id, so a create the server committed before a lost answer is not
    /// made twice.
    pub async fn add(&self, description: &str) -> Result<ToDo, DaemonError> {
        let request = CreateToDoRequest {
            todo: Some(ToDo {
                description: description.to_owned(),
                ..Default::default()
            }),
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        self.call(|mut c| {
            let request = request.clone();
            async move { c.create_to_do(request).await }
        })
        .await
    }

    /// Changes a to-do's description.
    pub async fn update(&self, id: i64, description: &str) -> Result<ToDo, DaemonError> {
        let request = UpdateToDoRequest {
            todo: Some(ToDo {
                id,
                description: description.to_owned(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".to_owned()],
            }),
        };
        self.call(|mut c| {
            let request = request.clone();
            async move { c.update_to_do(request).await }
        })
        .await
    }

    /// Deletes a to-do.
    pub async fn delete(&self, id: i64) -> Result<(), DaemonError> {
        let retried = std::sync::atomic::AtomicBool::new(false);
        self.call(|mut c| {
            let retried = &retried;
            async move {
                let result = c
                    .delete_to_do(DeleteToDoRequest {
                        id,
                        etag: String::new(),
                    })
                    .await;
                match result {
                    // An earlier attempt whose answer was lost deleted it.
                    Err(status)
                        if status.code() == Code::NotFound
                            && retried.load(std::sync::atomic::Ordering::Relaxed) =>
                    {
                        Ok(tonic::Response::new(()))
                    }
                    Err(status) => {
                        if status.code() == Code::Unavailable || is_transport(&status) {
                            retried.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(status)
                    }
                    ok => ok,
                }
            }
        })
        .await
    }

    /// Runs one unary call: retried once with a fresh token after
    /// UNAUTHENTICATED, and with backoff while the server is unavailable
    /// (restarting, or its database is down). Every operation of the daemon
    /// is safe to repeat: reads, unconditional updates, deletes, and creates
    /// with a request id.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, DaemonError>
    where
        F: Fn(ToDoServiceClient<BearerService<Channel>>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let result =
                retry_unauthenticated_once(&self.provider, || call(self.client.clone())).await;
            match result {
                // UNAVAILABLE, or a connection cut mid-call (UNKNOWN
                // "transport error"): the server restarted or is overloaded.
                Err(status)
                    if (status.code() == Code::Unavailable || is_transport(&status))
                        && attempt < UNAVAILABLE_ATTEMPTS
                        && !from_token_provider(&status) =>
                {
                    tracing::info!(
                        attempt,
                        message = status.message(),
                        "server unavailable; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    attempt += 1;
                }
                other => {
                    return other
                        .map(tonic::Response::into_inner)
                        .map_err(|status| DaemonError::from_status(status, &self.server));
                }
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
