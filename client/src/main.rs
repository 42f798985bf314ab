//! `todo-client`: the ToDo daemon. Without a subcommand it replays the .NET
//! sample's scripted run; `todo-client --help` lists the single operations.

use std::process::ExitCode;

use clap::Parser;
use todo_client::{
    Daemon,
    config::{Args, Command},
    script,
};

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
            eprintln!("todo-client: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let provider = entra_token_provider::TokenProvider::new(config.tokens.clone())?;
    let command = args.command.unwrap_or(Command::Run);
    if let Command::Token = command {
        let token = provider.token().await?;
        println!("{}", token.expose_secret());
        return Ok(());
    }
    let daemon = Daemon::connect(&config, provider).await?;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Run => script::scripted_run(&daemon, &mut out).await?,
        Command::List => script::print_todos(&daemon.list().await?, &mut out),
        Command::Get { id } => script::print_todo(&daemon.get(id).await?, &mut out),
        Command::Add { text } => script::print_todo(&daemon.add(&text).await?, &mut out),
        Command::Update { id, text } => {
            script::print_todo(&daemon.update(id, &text).await?, &mut out);
        }
        Command::Delete { id } => {
            daemon.delete(id).await?;
            use std::io::Write;
            let _ = writeln!(out, "Deleted to-do {id}");
        }
        Command::Token => unreachable!("handled above"),
    }
    Ok(())
}
