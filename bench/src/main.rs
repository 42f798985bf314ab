//! `todo-bench`: measures the cost of security in the ToDo service and
//! compares it with the alternatives (issue #7). See BENCHMARKS.md.
//!
//! - `todo-bench load`: the load generator (tonic, closed loop): connections,
//!   calls in flight, duration, RPC mix; prints requests/s, p50/p90/p99/max
//!   latency and errors by status code.
//! - `todo-bench serve`: the server stack for benchmarks, with the bench-only
//!   switches (authentication off, in-memory store) the production binary
//!   does not have.
//! - `todo-bench suite`: every scenario, each figure next to a baseline from
//!   the same run, as Markdown (bench/run.sh drives it).
//! - `todo-bench smoke`: a few seconds of the suite that fails unless every
//!   scenario produced numbers and no errors (scripts/test.sh runs it).
//! - `todo-bench h2load-request`: the gRPC-framed request body for h2load.

mod child;
mod cold_start;
mod criterion;
mod h2load;
mod load;
mod memstore;
mod procfs;
mod serve;
mod suite;
mod table;
mod transport;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Benchmarks of the ToDo service: load generator, bench server, suite.
#[derive(Debug, Parser)]
#[command(name = "todo-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sends load to a running server and prints what it measured.
    Load(LoadArgs),
    /// Serves the ToDo API for benchmarks (`--auth none` is bench-only).
    Serve(serve::ServeArgs),
    /// Runs every scenario and prints the Markdown report.
    Suite(suite::SuiteArgs),
    /// A few seconds of the suite (Rust only): fails unless every scenario
    /// produced numbers and no errors.
    Smoke(suite::SuiteArgs),
    /// Runs a dev authority for manual runs: prints its settings and a token
    /// as shell variables, then serves until stdin closes or Ctrl-C.
    Authority,
    /// Writes `GetToDoRequest { id }` with its gRPC frame header, for h2load.
    H2loadRequest {
        /// The to-do id to ask for.
        #[arg(long, default_value_t = 1)]
        id: i64,
        /// Output file.
        #[arg(long, default_value = "get-request.bin")]
        out: PathBuf,
    },
}

/// Flags of `todo-bench load`.
#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// The server, e.g. http://127.0.0.1:50051.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// Access token sent as `authorization: Bearer …` (none when unset).
    #[arg(long, env = "TODO_BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Calls in flight (closed-loop workers).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// RPC mix, e.g. `get=90,list=5,create=5`.
    #[arg(long, default_value = "get")]
    mix: load::Mix,
    /// To-dos to create first (GetToDo asks for them; ListToDos reads them).
    #[arg(long, default_value_t = 100)]
    seed: usize,
    /// Ids GetToDo asks for, instead of seeding (with `--seed 0`).
    #[arg(long, value_delimiter = ',')]
    ids: Vec<i64>,
    /// `page_size` of ListToDos.
    #[arg(long, default_value_t = 50)]
    page_size: i32,
    /// Also report this process's CPU time per call (the server's pid).
    #[arg(long)]
    server_pid: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Suite(args) = &cli.command
        && args.pin
        && let Some(code) = pin_generator()
    {
        return code;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("todo-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("todo-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Re-runs this command on the load generator's CPU (`taskset`), once;
/// `None` when already there or when pinning is not possible.
fn pin_generator() -> Option<ExitCode> {
    const MARK: &str = "TODO_BENCH_PINNED";
    if std::env::var_os(MARK).is_some()
        || procfs::cpus_allowed() == suite::GENERATOR_CPUS
        || !std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
    {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let status = std::process::Command::new("taskset")
        .args(["-c", suite::GENERATOR_CPUS])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(MARK, "1")
        .status()
        .ok()?;
    Some(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Load(args) => load(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Suite(args) => suite::run(args).await,
        Command::Smoke(mut args) => {
            args.smoke = true;
            suite::run(args).await
        }
        Command::Authority => authority().await,
        Command::H2loadRequest { id, out } => {
            h2load::write_get_request(&out, id)?;
            println!(
                "wrote {} (GetToDoRequest {{ id: {id} }}, gRPC-framed)",
                out.display()
            );
            Ok(())
        }
    }
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let token = load::shared_token(args.token.as_deref())?;
    let ids = if args.seed > 0 {
        suite::seed(&args.target, &token, args.seed)
            .await
            .context("seeding to-dos")?
    } else {
        args.ids
    };
    let mut spec = load::LoadSpec::new(args.target, args.mix);
    spec.connections = args.connections;
    spec.concurrency = args.concurrency;
    spec.duration = Duration::from_secs_f64(args.duration);
    spec.warmup = Duration::from_secs_f64(args.warmup);
    spec.ids = std::sync::Arc::new(ids);
    spec.page_size = args.page_size;
    spec.watch_pid = args.server_pid;
    let report = load::run(&spec, &token).await?;
    println!("{}", report.summary());
    Ok(())
}

/// `todo-bench authority`: a dev authority and the settings to use it.
async fn authority() -> anyhow::Result<()> {
    use dev_authority::{DevAuthority, defaults};
    let authority = DevAuthority::start(dev_authority::Config::ephemeral()).await?;
    let api = authority
        .registrations()
        .api(defaults::TODO_API)
        .context("the dev authority has no ToDo API")?
        .client_id
        .to_string();
    let token = authority.mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)?;
    println!("TODO_AUTHORITY={}", authority.authority_url());
    println!("TODO_CLIENT_ID={api}");
    println!("TODO_AUTHORITY_CA_FILE={}", authority.ca_path().display());
    println!("TODO_BENCH_TOKEN={token}");
    eprintln!("dev authority running; close stdin or press Ctrl-C to stop it");
    let stdin_closed = async {
        use tokio::io::AsyncReadExt;
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        () = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    authority.shutdown().await;
    Ok(())
}
