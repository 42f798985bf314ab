//! `todo-bench serve`: the ToDo server stack (`todo_server::serve`, the same
//! limits, metrics and routes as production) for benchmarks, as its own
//! process so its CPU time and memory can be read from /proc.
//!
//! Two things differ from the `todo-server` binary, and only here:
//! - `--auth none` replaces the Entra layer with one that hands every call a
//!   fixed application [`Caller`]: the unauthenticated ceiling. The
//!   production binary has no such switch.
//! - `--store memory` keeps to-dos in memory ([`MemoryStore`]).
//!
//! It prints `LISTENING <addr>` on stdout once it accepts calls (for `entra`,
//! once the authority's signing keys are loaded) and stops when its stdin
//! closes, so it never outlives the suite that started it.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::{Args, ValueEnum};
use entra_auth::Caller;
use todo_server::{AuthLayer, ServeOptions, store::Store};
use tokio::{io::AsyncReadExt, net::TcpListener};
use tower::util::{BoxCloneServiceLayer, MapRequestLayer};

use crate::memstore::MemoryStore;

/// Object id of the fixed caller of `--auth none`.
pub(crate) const CEILING_OID: &str = "11111111-1111-4111-8111-111111111111";

/// How calls are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuthMode {
    /// BENCH ONLY: no token check; every call is a fixed application caller.
    None,
    /// The production Entra layer and permission table.
    Entra,
}

/// Flags of `todo-bench serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Authentication: `entra` (production) or `none` (the ceiling).
    #[arg(long, value_enum)]
    pub(crate) auth: AuthMode,
    /// `memory`, `sqlite://PATH` or `postgres://…`.
    #[arg(long, default_value = "memory")]
    pub(crate) store: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// Entra authority (with --auth entra).
    #[arg(long, required_if_eq("auth", "entra"))]
    pub(crate) authority: Option<String>,
    /// The API's client id (with --auth entra).
    #[arg(long, required_if_eq("auth", "entra"))]
    pub(crate) client_id: Option<String>,
    /// Extra PEM roots to reach the authority.
    #[arg(long)]
    pub(crate) authority_ca_file: Option<PathBuf>,
}

/// Runs the bench server until stdin closes.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Same logging as the production binary (audit lines included); the
    // suite sends stderr to a file.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let store: Arc<dyn Store> = if args.store == "memory" {
        Arc::new(MemoryStore::default())
    } else {
        todo_server::store::open(&args.store, &todo_server::store::PostgresOptions::default())
            .await
            .with_context(|| format!("opening {}", todo_server::store::redact_url(&args.store)))?
    };

    let mut options = ServeOptions::default();
    let auth = match args.auth {
        AuthMode::None => fixed_caller_layer(),
        AuthMode::Entra => {
            let authority = args.authority.as_deref().unwrap_or_default();
            let mut config = entra_auth::Config::new(
                entra_auth::Authority::parse(authority).context("--authority")?,
                args.client_id.clone().unwrap_or_default(),
            );
            config.ca_file = args.authority_ca_file.clone();
            let validator = entra_auth::Validator::new(config)?;
            tokio::time::timeout(Duration::from_secs(30), validator.wait_ready())
                .await
                .context("the authority's signing keys did not load within 30 s")?;
            let ready = validator.clone();
            options.ready = Some(Arc::new(move || ready.is_ready()));
            todo_server::app::entra_layer(&validator, todo_server::config::default_permissions())
        }
    };

    let listener = TcpListener::bind(args.listen).await?;
    println!("LISTENING {}", listener.local_addr()?);
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    todo_server::serve(listener, store, auth, options, stdin_closed).await?;
    Ok(())
}

/// BENCH ONLY: the "authentication off" layer of the ceiling. Like the test
/// layer in server/tests/util.rs, it gives every call the same application
/// caller, so the service runs exactly as for an authenticated call.
pub(crate) fn fixed_caller_layer() -> AuthLayer {
    let caller = Caller {
        oid: CEILING_OID.to_owned(),
        tid: "00000000-0000-4000-8000-000000000000".to_owned(),
        azp: "bench-client".to_owned(),
        roles: vec!["ToDoList.ReadWrite.All".to_owned()],
        scopes: Vec::new(),
        app_only: true,
    };
    BoxCloneServiceLayer::new(MapRequestLayer::new(
        move |mut req: http::Request<tonic::body::Body>| {
            req.extensions_mut().insert(caller.clone());
            req
        },
    ))
}
