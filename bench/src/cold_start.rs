//! Client cold start: many concurrent calls through a fresh
//! [`TokenProvider`] and [`BearerLayer`], the way a daemon starts. The
//! provider must ask the authority once, however many calls wait for it.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Context;
use dev_authority::{DevAuthority, defaults};
use entra_token_provider::{Authority, BearerLayer, Config, Credential, TokenProvider};
use todo_proto::v1::{GetToDoRequest, to_do_service_client::ToDoServiceClient};
use tonic::transport::Endpoint;

use crate::load::code_name;

/// One batch of concurrent calls.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Calls made.
    pub(crate) calls: usize,
    /// Calls that failed, by status.
    pub(crate) errors: BTreeMap<String, usize>,
    /// Token-endpoint requests the authority received meanwhile.
    pub(crate) token_requests: u64,
    /// From the first call to the last answer.
    pub(crate) elapsed: Duration,
}

/// A cold batch (empty token cache) then a warm one, through one provider.
#[derive(Debug)]
pub(crate) struct ColdStart {
    /// The first batch: every call waits for the first token.
    pub(crate) cold: Batch,
    /// The second batch: the token is cached.
    pub(crate) warm: Batch,
}

/// Sends `calls` concurrent `GetToDo { id }` to `target` through a new
/// provider for the daemon client, twice.
pub(crate) async fn run(
    authority: &DevAuthority,
    target: &str,
    calls: usize,
    id: i64,
) -> anyhow::Result<ColdStart> {
    let settings = authority.client_settings(defaults::DAEMON_CLIENT)?;
    let secret = settings
        .client_secret
        .as_ref()
        .context("the daemon client has no secret")?;
    let config = Config::new(
        Authority::parse(&settings.authority)?,
        settings.client_id.clone(),
        Credential::client_secret(secret.expose()),
        settings.scope.clone(),
    )
    .with_ca_pem(authority.ca_pem().as_bytes().to_vec());
    let channel = Endpoint::from_shared(target.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let provider = TokenProvider::new(config)?;
    let service = tower::ServiceBuilder::new()
        .layer(BearerLayer::new(provider))
        .service(channel);
    let client = ToDoServiceClient::new(service);

    let mut batches = Vec::new();
    for _ in 0..2 {
        authority.reset_stats();
        let started = Instant::now();
        let tasks: Vec<_> = (0..calls)
            .map(|_| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    let result = client.get_to_do(GetToDoRequest { id }).await;
                    (result.err().map(|s| s.code()), Instant::now())
                })
            })
            .collect();
        let mut errors = BTreeMap::new();
        let mut last = started;
        for task in tasks {
            let (error, done) = task.await?;
            if let Some(code) = error {
                *errors.entry(code_name(code as i32)).or_default() += 1;
            }
            last = last.max(done);
        }
        batches.push(Batch {
            calls,
            errors,
            token_requests: authority.token_requests(),
            elapsed: last - started,
        });
    }
    let warm = batches.pop().context("warm batch")?;
    let cold = batches.pop().context("cold batch")?;
    Ok(ColdStart { cold, warm })
}
