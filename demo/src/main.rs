//! `todo-demo`: the whole system on one machine with no configuration and
//! no network, as one command (`cargo run -p todo-demo`).
//!
//! It starts the dev authority (HTTPS, its own CA, the sample's default
//! registration) and the ToDo server (SQLite, TLS with a certificate from
//! that CA, real token validation) on free loopback ports, then runs the
//! daemon's scripted run over real TLS/HTTP2 with a real client-credentials
//! token, prints the sample's transcript on stdout, and exits. Everything it
//! creates lives in a temporary folder that is removed at the end, unless
//! `--keep DIR` names a folder to keep it in.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::Parser;
use dev_authority::defaults;

/// Runs the dev authority, the ToDo server and the daemon's scripted run.
#[derive(Debug, Parser)]
#[command(name = "todo-demo", version, about)]
struct Args {
    /// Keep the authority's state and the SQLite database in this folder
    /// (default: a temporary folder, removed at exit).
    #[arg(long)]
    keep: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("todo-demo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let temp;
    let dir = match args.keep {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            dir
        }
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };

    let system = todo_demo::System::start(&dir).await?;
    eprintln!(
        "dev authority (DEVELOPMENT ONLY): {}",
        system.authority.authority_url()
    );
    eprintln!(
        "todo-server (SQLite {}): {}",
        dir.join("todo.db").display(),
        system.server_url
    );
    let config = system.daemon_config(defaults::DAEMON_CLIENT)?;
    eprintln!(
        "todo-client: daemon {} requesting {}\n",
        config.tokens.client_id, config.tokens.scope
    );
    let provider = entra_token_provider::TokenProvider::new(config.tokens.clone())?;
    let client = todo_client::Daemon::connect(&config, provider).await?;
    let mut out = std::io::stdout().lock();
    todo_client::script::scripted_run(&client, &mut out).await?;

    eprintln!(
        "\ndone: {} token request(s) served by the dev authority",
        system.authority.token_requests()
    );
    system.stop().await
}
