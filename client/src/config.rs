//! The daemon's command line and its resolution into a [`DaemonConfig`]:
//! flags and environment variables, over the .NET sample's appsettings.json.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use entra_token_provider::{ClientSecret, CredentialSource, DaemonSettings};

/// The server used when neither --server, $TODO_SERVER nor the file's BaseUrl names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Environment variable holding the client secret (never a flag, so it does
/// not show up in process listings or shell history).
pub const CLIENT_SECRET_ENV: &str = "TODO_CLIENT_SECRET";

/// The ToDo daemon: gets an app-only token with the OAuth2 client-credentials
/// grant and calls the ToDo server with it.
///
/// Without a subcommand it replays the .NET sample's scripted run. The client
/// secret comes from $TODO_CLIENT_SECRET or --client-secret-file, never from
/// the command line.
#[derive(Debug, Parser)]
#[command(name = "todo-client", version, about)]
pub struct Args {
    /// What to do; the sample's scripted run when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The ToDo server: http://HOST:PORT or https://HOST:PORT.
    #[arg(long, env = "TODO_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,

    /// Extra PEM CA certificate(s) trusted for an https --server.
    #[arg(long, env = "TODO_SERVER_CA_FILE", global = true)]
    pub server_ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for a server that requires mutual TLS.
    #[arg(
        long,
        env = "TODO_TLS_CLIENT_CERT",
        global = true,
        requires = "tls_client_key"
    )]
    pub tls_client_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-client-cert.
    #[arg(
        long,
        env = "TODO_TLS_CLIENT_KEY",
        global = true,
        requires = "tls_client_cert"
    )]
    pub tls_client_key: Option<PathBuf>,

    /// The sample's appsettings.json (AzureAd and DownstreamApi sections);
    /// flags and environment variables override it.
    #[arg(long, env = "TODO_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Entra authority, e.g. https://login.microsoftonline.com/{tenant}/v2.0.
    #[arg(long, env = "TODO_AUTHORITY", global = true)]
    pub authority: Option<String>,

    /// Instance (with --tenant) instead of --authority.
    #[arg(long, env = "TODO_INSTANCE", global = true)]
    pub instance: Option<String>,

    /// Tenant id or domain, with --instance.
    #[arg(long, env = "TODO_TENANT", global = true)]
    pub tenant: Option<String>,

    /// The daemon's application (client) id.
    #[arg(long, env = "TODO_CLIENT_ID", global = true)]
    pub client_id: Option<String>,

    /// The scope to request: `api://{API client id}/.default`.
    #[arg(long, env = "TODO_SCOPE", global = true)]
    pub scope: Option<String>,

    /// A file holding the client secret.
    #[arg(long, env = "TODO_CLIENT_SECRET_FILE", global = true)]
    pub client_secret_file: Option<PathBuf>,

    /// PEM certificate to authenticate with (with --private-key, or a PEM
    /// holding both).
    #[arg(long, env = "TODO_CLIENT_CERTIFICATE", global = true)]
    pub certificate: Option<PathBuf>,

    /// PEM private key of --certificate.
    #[arg(long, env = "TODO_CLIENT_KEY", global = true, requires = "certificate")]
    pub private_key: Option<PathBuf>,

    /// A federated assertion file (workload identity), re-read for every
    /// token request.
    #[arg(long, env = "AZURE_FEDERATED_TOKEN_FILE", global = true)]
    pub federated_token_file: Option<PathBuf>,

    /// Extra PEM CA certificates trusted when calling the authority.
    #[arg(long, env = "TODO_AUTHORITY_CA_FILE", global = true)]
    pub authority_ca_file: Option<PathBuf>,
}

/// Single operations.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay the .NET sample's scripted run (the default).
    Run,
    /// List every to-do.
    List,
    /// Show one to-do.
    Get {
        /// Its id.
        id: i64,
    },
    /// Create a to-do.
    Add {
        /// What there is to do.
        text: String,
    },
    /// Change a to-do's description.
    Update {
        /// Its id.
        id: i64,
        /// The new description.
        text: String,
    },
    /// Delete a to-do.
    Delete {
        /// Its id.
        id: i64,
    },
    /// Print an access token (for grpcurl -H "authorization: Bearer $(todo-client token)").
    Token,
}

/// Everything the daemon needs.
#[derive(Debug)]
pub struct DaemonConfig {
    /// The server URL.
    pub server: String,
    /// Extra CA for an https server.
    pub server_ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM files) for mutual TLS.
    pub tls_client_identity: Option<(PathBuf, PathBuf)>,
    /// How tokens are acquired.
    pub tokens: entra_token_provider::Config,
}

impl Args {
    /// Merges the appsettings file (if any) under flags and environment and
    /// checks that authority, client id, scope and a credential are present.
    pub fn resolve(&self) -> anyhow::Result<DaemonConfig> {
        let file = match &self.config {
            Some(path) => DaemonSettings::from_file(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
            None => DaemonSettings::default(),
        };
        let mut flags = DaemonSettings::default();
        flags.authority = self.authority.clone();
        flags.instance = self.instance.clone();
        flags.tenant_id = self.tenant.clone();
        flags.client_id = self.client_id.clone();
        flags.scopes = self.scope.iter().cloned().collect();
        flags.ca_file = self.authority_ca_file.clone();
        flags.credentials = self.credentials()?;
        if !self.server_from_default() {
            flags.base_url = Some(self.server.clone());
        }
        let settings = file.merge(flags);
        if settings.authority.is_none() && settings.instance.is_none() {
            return Err(missing(
                "the authority: --authority (or --instance and --tenant)",
            ));
        }
        if settings.client_id.is_none() {
            return Err(missing("the daemon's client id: --client-id"));
        }
        if settings.scopes.is_empty() {
            return Err(missing("the scope: --scope api://<API client id>/.default"));
        }
        if settings.credentials.is_empty() {
            return Err(missing(
                "a credential: set TODO_CLIENT_SECRET, or pass --client-secret-file, \
                 --certificate (and --private-key) or --federated-token-file",
            ));
        }
        let tokens = settings.to_config()?;
        Ok(DaemonConfig {
            server: settings.base_url.unwrap_or_else(|| self.server.clone()),
            server_ca_file: self.server_ca_file.clone(),
            tls_client_identity: self
                .tls_client_cert
                .clone()
                .zip(self.tls_client_key.clone()),
            tokens,
        })
    }

    /// Whether --server was left at its default (so the file's BaseUrl may apply).
    fn server_from_default(&self) -> bool {
        self.server == DEFAULT_SERVER && std::env::var_os("TODO_SERVER").is_none()
    }

    /// The credential named by flags and environment, if any (at most one is used:
    /// certificate, then federated file, then secret file, then $TODO_CLIENT_SECRET).
    fn credentials(&self) -> anyhow::Result<Vec<CredentialSource>> {
        if let Some(cert) = &self.certificate {
            return Ok(vec![CredentialSource::CertificatePath {
                path: cert.clone(),
                private_key_path: self.private_key.clone(),
                password: None,
            }]);
        }
        if let Some(path) = &self.federated_token_file {
            return Ok(vec![CredentialSource::SignedAssertionFile {
                path: Some(path.clone()),
            }]);
        }
        if let Some(path) = &self.client_secret_file {
            let secret = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("reading the client secret file {}: {e}", path.display())
            })?;
            return Ok(vec![CredentialSource::ClientSecret(ClientSecret::new(
                secret.trim(),
            ))]);
        }
        match std::env::var(CLIENT_SECRET_ENV) {
            Ok(secret) if !secret.is_empty() => Ok(vec![CredentialSource::ClientSecret(
                ClientSecret::new(secret),
            )]),
            _ => Ok(Vec::new()),
        }
    }
}

fn missing(what: &str) -> anyhow::Error {
    anyhow::anyhow!("the daemon needs {what} (or --config appsettings.json; see --help)")
}
