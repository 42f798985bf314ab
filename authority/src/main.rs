//! `todo-authority`: run the DEVELOPMENT ONLY Entra-shaped token authority, or use its
//! state folder offline (mint a token, rotate keys, print a client's settings).
//!
//! `todo-authority serve` then, in another shell, `todo-authority token` prints a token
//! for grpcurl: `grpcurl -H "authorization: Bearer $(todo-authority token)" …`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use dev_authority::{
    AdminMode, AuthorityState, Config, DevAuthority, StateLocation, TokenLifetime, defaults,
};

/// DEVELOPMENT ONLY: an Entra-shaped token authority for laptops and CI.
#[derive(Parser)]
#[command(name = "todo-authority", version, about)]
struct Cli {
    /// State folder: CA, signing keys, registrations (created on first use).
    #[arg(
        long,
        global = true,
        env = "TODO_AUTHORITY_STATE_DIR",
        default_value = ".todo-authority"
    )]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve discovery, JWKS and the token endpoint over HTTPS.
    Serve(ServeArgs),
    /// Mint an access token offline from the state folder; prints only the token.
    Token {
        /// Client registration (name or client id).
        #[arg(long, env = "TODO_AUTHORITY_CLIENT", default_value = defaults::DAEMON_CLIENT)]
        client: String,
        /// API registration (name, client id or app id URI).
        #[arg(long, env = "TODO_AUTHORITY_API", default_value = defaults::TODO_API)]
        api: String,
        /// Token lifetime in seconds (default: random 60–90 minutes, like Entra).
        #[arg(long)]
        lifetime_secs: Option<u64>,
        /// Base URL for the issuer (default: what the last `serve` recorded).
        #[arg(long, env = "TODO_AUTHORITY_BASE_URL")]
        base_url: Option<String>,
    },
    /// Publish a new signing key and sign with it (the previous key stays published);
    /// a running server picks the change up on its next request.
    RotateKeys {
        /// Only retire the keys that no longer sign; publish no new key.
        #[arg(long)]
        retire: bool,
    },
    /// Print a client's ready-to-use settings (they include its secret).
    ClientSettings {
        /// Client registration (name or client id).
        client: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "env")]
        format: Format,
        /// Base URL of the authority (default: what the last `serve` recorded).
        #[arg(long, env = "TODO_AUTHORITY_BASE_URL")]
        base_url: Option<String>,
    },
    /// Issue a TLS certificate signed by the development CA (e.g. for the gRPC server).
    IssueCert {
        /// DNS names or IP addresses (default: localhost, 127.0.0.1, ::1).
        #[arg(long = "name")]
        names: Vec<String>,
        /// Folder for `cert.pem` and `key.pem`.
        #[arg(long)]
        out_dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed and recorded).
    #[arg(long, env = "TODO_AUTHORITY_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Base URL published in the issuer and endpoints (default from the bound address).
    #[arg(long, env = "TODO_AUTHORITY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Extra DNS names / IPs for the TLS certificate.
    #[arg(
        long = "tls-name",
        env = "TODO_AUTHORITY_TLS_NAMES",
        value_delimiter = ','
    )]
    tls_names: Vec<String>,
    /// Fixed token lifetime in seconds (default: random 60–90 minutes, like Entra).
    #[arg(long, env = "TODO_AUTHORITY_TOKEN_LIFETIME_SECS")]
    token_lifetime_secs: Option<u64>,
    /// The /_admin surface: auto = only when bound to loopback.
    #[arg(long, value_enum, env = "TODO_AUTHORITY_ADMIN", default_value = "auto")]
    admin: Admin,
    /// Accept a client assertion whose jti was already used (MSAL Python reuses one for
    /// up to 9 minutes).
    #[arg(long, env = "TODO_AUTHORITY_ALLOW_ASSERTION_REPLAY")]
    allow_assertion_replay: bool,
    /// Also write the base URL (https://host:port) to this file once listening.
    #[arg(long, env = "TODO_AUTHORITY_ADDRESS_FILE")]
    address_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Admin {
    Auto,
    On,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// KEY=value lines.
    Env,
    /// appsettings.json (the .NET sample's shape).
    Json,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("todo-authority: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(cli.state_dir, args),
        Command::Token {
            client,
            api,
            lifetime_secs,
            base_url,
        } => {
            let state = open(&cli.state_dir)?;
            let base = base_url_or_recorded(&state, base_url);
            let lifetime = lifetime_secs
                .map(|s| TokenLifetime::Fixed(Duration::from_secs(s)))
                .unwrap_or(TokenLifetime::EntraLike);
            println!("{}", state.mint_token(&base, &client, &api, lifetime)?);
            Ok(())
        }
        Command::RotateKeys { retire } => {
            let state = open(&cli.state_dir)?;
            let rotation = if retire {
                state.retire_previous_keys()?
            } else {
                state.rotate_keys()?
            };
            println!("{}", serde_json::to_string_pretty(&rotation)?);
            Ok(())
        }
        Command::ClientSettings {
            client,
            format,
            base_url,
        } => {
            let state = open(&cli.state_dir)?;
            let base = base_url_or_recorded(&state, base_url);
            let settings = state.client_settings(&base, &client)?;
            match format {
                Format::Env => print!("{}", settings.to_env()),
                Format::Json => println!("{}", settings.to_appsettings_json()),
            }
            Ok(())
        }
        Command::IssueCert { mut names, out_dir } => {
            let state = open(&cli.state_dir)?;
            if names.is_empty() {
                names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
            }
            let identity = state.issue_tls_identity(&names)?;
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("creating {}", out_dir.display()))?;
            write_file(
                &out_dir.join("cert.pem"),
                identity.cert_pem.as_bytes(),
                0o644,
            )?;
            write_file(
                &out_dir.join("key.pem"),
                identity.key_pem.expose().as_bytes(),
                0o600,
            )?;
            println!(
                "wrote {}/cert.pem and key.pem (trust {})",
                out_dir.display(),
                state.ca_path().display()
            );
            Ok(())
        }
    }
}

fn open(dir: &std::path::Path) -> anyhow::Result<AuthorityState> {
    AuthorityState::open(dir).with_context(|| format!("opening the state folder {}", dir.display()))
}

fn base_url_or_recorded(state: &AuthorityState, explicit: Option<String>) -> String {
    explicit.or_else(|| state.recorded_base_url()).unwrap_or_else(|| {
        tracing::warn!("no server has recorded its address in this state folder; assuming https://127.0.0.1:8443");
        "https://127.0.0.1:8443".into()
    })
}

fn write_file(path: &std::path::Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

#[tokio::main]
async fn serve(state_dir: PathBuf, args: ServeArgs) -> anyhow::Result<()> {
    let config = Config {
        listen: args.listen,
        state: StateLocation::Dir(state_dir.clone()),
        public_url: args.public_url,
        tls_names: args.tls_names,
        token_lifetime: args
            .token_lifetime_secs
            .map(|s| TokenLifetime::Fixed(Duration::from_secs(s)))
            .unwrap_or(TokenLifetime::EntraLike),
        admin: match args.admin {
            Admin::Auto => AdminMode::LoopbackOnly,
            Admin::On => AdminMode::Enabled,
            Admin::Off => AdminMode::Disabled,
        },
        reject_assertion_replay: !args.allow_assertion_replay,
    };
    let authority = DevAuthority::start(config)
        .await
        .with_context(|| format!("starting with state folder {}", state_dir.display()))?;
    if let Some(path) = &args.address_file {
        std::fs::write(path, format!("{}\n", authority.base_url()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprint!("{}", banner(&authority));
    println!("{}", authority.base_url());
    shutdown_signal().await;
    tracing::info!("shutting down");
    authority.shutdown().await;
    Ok(())
}

fn banner(authority: &DevAuthority) -> String {
    let mut out = String::new();
    let line = "=".repeat(78);
    out.push_str(&format!(
        "{line}\n  todo-authority: DEVELOPMENT ONLY. Never use it to protect real data.\n{line}\n"
    ));
    out.push_str(&format!("  listening      {}\n", authority.local_addr()));
    out.push_str(&format!("  authority      {}\n", authority.authority_url()));
    out.push_str(&format!("  issuer         {}\n", authority.issuer()));
    out.push_str(&format!(
        "  tenant         {} ({})\n",
        authority.tenant_id(),
        authority.tenant_domain()
    ));
    out.push_str(&format!(
        "  trust this CA  {}\n",
        authority.ca_path().display()
    ));
    out.push_str(&format!(
        "  admin          {}\n",
        if authority.admin_enabled() {
            format!("{}/_admin/…", authority.base_url())
        } else {
            "off".into()
        }
    ));
    let regs = authority.registrations();
    for client in &regs.clients {
        if let Ok(s) = authority.client_settings(&client.name) {
            out.push_str(&format!(
                "  client {:<8} id {}  scope {}\n                  secret in {} (or `todo-authority client-settings {}`)\n",
                client.name, s.client_id, s.scope, authority.state().registrations_path().display(), client.name
            ));
        }
    }
    out.push_str(&format!("{line}\n"));
    out
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
