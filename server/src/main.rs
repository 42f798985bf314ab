//! `todo-server`: the ToDo gRPC service behind Entra token validation.
//!
//! Run `todo-server --help` for every setting; the README shows how to point
//! it at the dev authority or at a real Entra tenant.

use std::{process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::Parser;
use todo_server::{
    ServeOptions,
    config::{Args, LogFormat},
    store,
};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("todo-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let resolved = args.resolve()?;
    let pg = store::PostgresOptions {
        max_connections: args.db_max_connections,
        ..Default::default()
    };
    let store = store::open(&args.database, &pg)
        .await
        .with_context(|| format!("opening {}", store::redact_url(&args.database)))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert)
                .with_context(|| format!("reading TLS certificate {}", cert.display()))?;
            let key_pem =
                std::fs::read(key).with_context(|| format!("reading TLS key {}", key.display()))?;
            Some(tonic::transport::Identity::from_pem(cert_pem, key_pem))
        }
        _ => None,
    };

    tracing::info!(
        authority = %resolved.auth.authority,
        audiences = ?resolved.auth.effective_audiences(),
        "validating Entra access tokens"
    );
    let validator = entra_auth::Validator::new(resolved.auth).context("token validation")?;
    let auth = todo_server::app::entra_layer(&validator, resolved.permissions);
    let ready = {
        let validator = validator.clone();
        Arc::new(move || validator.is_ready())
    };

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        address = %listener.local_addr()?,
        "todo-server listening ({scheme}); health stays NOT_SERVING until signing keys are loaded"
    );
    if let Some(listen) = args.metrics_listen {
        todo_server::metrics::install(listen)
            .with_context(|| format!("serving metrics on {listen}"))?;
        tracing::info!(address = %listen, "Prometheus metrics at /metrics");
    }
    let client_ca = match &args.tls_client_ca {
        Some(path) => Some(tonic::transport::Certificate::from_pem(
            std::fs::read(path).with_context(|| format!("reading client CA {}", path.display()))?,
        )),
        None => None,
    };
    let options = ServeOptions {
        tls,
        client_ca,
        ready: Some(ready),
        readiness_interval: None,
        max_concurrent_calls: Some(args.max_concurrent_calls),
        client_rate_limit: args
            .client_rate_limit
            .map(|per_second| (per_second, args.client_rate_burst)),
        request_timeout: Some(std::time::Duration::from_secs(args.request_timeout_secs)),
    };
    todo_server::serve(listener, store, auth, options, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested: draining in-flight calls");
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
