//! Server configuration in two stages: [`Args`], the flags and environment
//! variables as clap reads them, then [`Args::resolve`], which merges the
//! .NET sample's `appsettings.json` (flags win) into the real components.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use entra_auth::{AzureAdSettings, Permissions, Requirement};
use todo_proto::v1::to_do_service_server::SERVICE_NAME;

/// The app roles and delegated scopes the sample's API accepts.
pub const DEFAULT_READ_ROLES: [&str; 2] = ["ToDoList.Read.All", "ToDoList.ReadWrite.All"];
/// App roles accepted by write RPCs by default.
pub const DEFAULT_WRITE_ROLES: [&str; 1] = ["ToDoList.ReadWrite.All"];
/// Delegated scopes accepted by read RPCs by default.
pub const DEFAULT_READ_SCOPES: [&str; 2] = ["ToDoList.Read", "ToDoList.ReadWrite"];
/// Delegated scopes accepted by write RPCs by default.
pub const DEFAULT_WRITE_SCOPES: [&str; 1] = ["ToDoList.ReadWrite"];

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The ToDo gRPC server, protected by Microsoft Entra access tokens.
///
/// Every flag can also be set by the environment variable shown. The
/// authentication settings can come from the .NET sample's appsettings.json
/// (`--config`); flags and environment variables override the file.
#[derive(Debug, Parser)]
#[command(name = "todo-server", version, about, long_about = None)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "TODO_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Where to-dos are stored: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "TODO_DATABASE_URL",
        default_value = "sqlite://todo.db",
        hide_env_values = true
    )]
    pub database: String,

    /// Most PostgreSQL connections this replica opens.
    #[arg(long, env = "TODO_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: usize,

    /// PEM certificate chain to serve TLS with (needs --tls-key).
    #[arg(long, env = "TODO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "TODO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Mutual TLS: require client certificates issued by this PEM CA.
    #[arg(long, env = "TODO_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "TODO_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,

    /// Serve Prometheus metrics at http://ADDRESS/metrics (off by default).
    #[arg(long, env = "TODO_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Most calls in flight; more are answered RESOURCE_EXHAUSTED at once.
    #[arg(long, env = "TODO_MAX_CONCURRENT_CALLS", default_value_t = crate::app::DEFAULT_MAX_CONCURRENT_CALLS)]
    pub max_concurrent_calls: usize,

    /// Longest a call may run, in seconds, before it is ended with
    /// DEADLINE_EXCEEDED (a client's shorter grpc-timeout still applies).
    #[arg(long, env = "TODO_REQUEST_TIMEOUT_SECS", default_value_t = crate::app::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,

    /// Per-client (azp) limit of ToDo calls per second (off by default).
    #[arg(long, env = "TODO_CLIENT_RATE_LIMIT")]
    pub client_rate_limit: Option<f64>,

    /// Burst allowed above --client-rate-limit.
    #[arg(long, env = "TODO_CLIENT_RATE_BURST", default_value_t = 20)]
    pub client_rate_burst: u32,

    /// The sample's appsettings.json; its `AzureAd` section is read.
    #[arg(long, env = "TODO_CONFIG")]
    pub config: Option<PathBuf>,

    /// Entra authority, e.g. https://login.microsoftonline.com/{tenant}/v2.0
    /// or https://{sub}.ciamlogin.com/ .
    #[arg(long, env = "TODO_AUTHORITY")]
    pub authority: Option<String>,

    /// Instance (e.g. https://login.microsoftonline.com/), with --tenant,
    /// instead of --authority.
    #[arg(long, env = "TODO_INSTANCE", conflicts_with = "authority")]
    pub instance: Option<String>,

    /// Tenant id or domain, with --instance.
    #[arg(long, env = "TODO_TENANT", requires = "instance")]
    pub tenant: Option<String>,

    /// Application (client) id of this API.
    #[arg(long, env = "TODO_CLIENT_ID")]
    pub client_id: Option<String>,

    /// Accepted token audience; repeat for several. Default: the client id
    /// and api://{client id}.
    #[arg(long = "audience", env = "TODO_AUDIENCE", value_delimiter = ',')]
    pub audiences: Vec<String>,

    /// Extra PEM CA certificates trusted when fetching the authority's
    /// metadata and keys (e.g. the dev authority's ca.pem).
    #[arg(long, env = "TODO_AUTHORITY_CA_FILE")]
    pub authority_ca_file: Option<PathBuf>,

    /// Clock skew tolerated on token lifetimes, in seconds.
    #[arg(long, env = "TODO_CLOCK_SKEW_SECS", default_value_t = 300)]
    pub clock_skew_secs: u64,

    /// ACL mode: client ids (azp) allowed to call every RPC even without
    /// roles or scopes in their token.
    #[arg(
        long = "allowed-client",
        env = "TODO_ALLOWED_CLIENTS",
        value_delimiter = ','
    )]
    pub allowed_clients: Vec<String>,

    /// App roles accepted by read RPCs (Get, List). Default:
    /// ToDoList.Read.All, ToDoList.ReadWrite.All.
    #[arg(long = "read-role", env = "TODO_READ_ROLES", value_delimiter = ',')]
    pub read_roles: Vec<String>,

    /// App roles accepted by write RPCs (Create, Update, Delete). Default:
    /// ToDoList.ReadWrite.All.
    #[arg(long = "write-role", env = "TODO_WRITE_ROLES", value_delimiter = ',')]
    pub write_roles: Vec<String>,

    /// Delegated scopes accepted by read RPCs. Default: ToDoList.Read,
    /// ToDoList.ReadWrite.
    #[arg(long = "read-scope", env = "TODO_READ_SCOPES", value_delimiter = ',')]
    pub read_scopes: Vec<String>,

    /// Delegated scopes accepted by write RPCs. Default: ToDoList.ReadWrite.
    #[arg(long = "write-scope", env = "TODO_WRITE_SCOPES", value_delimiter = ',')]
    pub write_scopes: Vec<String>,

    /// Require a token for health and reflection too (public by default).
    #[arg(long, env = "TODO_PROTECT_HEALTH_AND_REFLECTION")]
    pub protect_health_and_reflection: bool,
}

/// Everything the server needs, resolved from flags, environment and file.
#[derive(Debug)]
pub struct Resolved {
    /// Token validation settings.
    pub auth: entra_auth::Config,
    /// Which RPC needs what.
    pub permissions: Permissions,
}

impl Args {
    /// Merges `--config` (if any) under the flags and checks that the
    /// authentication settings are complete: the server never starts
    /// without them.
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        let file = match &self.config {
            Some(path) => AzureAdSettings::from_file(path)
                .with_context(|| format!("reading {}", path.display()))?,
            None => AzureAdSettings::default(),
        };
        let authority = match (&self.authority, &self.instance) {
            (Some(a), _) => Some(entra_auth::Authority::parse(a).context("--authority")?),
            (None, Some(instance)) => Some(
                entra_auth::Authority::from_instance(
                    instance,
                    self.tenant.as_deref().unwrap_or_default(),
                )
                .context("--instance/--tenant")?,
            ),
            (None, None) => file.authority().context("AzureAd authority in --config")?,
        };
        let client_id = self.client_id.clone().or_else(|| file.client_id.clone());
        let (Some(authority), Some(client_id)) = (authority, client_id) else {
            bail!(
                "the server needs the Entra authority and this API's client id: pass \
                 --authority (or --instance and --tenant) and --client-id, or --config \
                 appsettings.json with an AzureAd section (see the README)"
            );
        };
        let mut auth = entra_auth::Config::new(authority, client_id);
        auth.audiences = if self.audiences.is_empty() {
            file.audiences.clone()
        } else {
            self.audiences.clone()
        };
        auth.ca_file = self.authority_ca_file.clone();
        auth.clock_skew = Duration::from_secs(self.clock_skew_secs);
        if !self.allowed_clients.is_empty() {
            auth.allowed_client_ids = Some(self.allowed_clients.clone());
        }

        let pick = |flag: &[String], group: Option<&Vec<String>>, default: &[&str]| {
            if !flag.is_empty() {
                flag.to_vec()
            } else if let Some(group) = group.filter(|g| !g.is_empty()) {
                group.clone()
            } else {
                default.iter().map(|s| (*s).to_owned()).collect()
            }
        };
        let group = |groups: &entra_auth::PermissionGroups, name: &str| {
            groups
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let read = Requirement::roles(pick(
            &self.read_roles,
            group(&file.app_permissions, "Read").as_ref(),
            &DEFAULT_READ_ROLES,
        ))
        .or_scopes(pick(
            &self.read_scopes,
            group(&file.scopes, "Read").as_ref(),
            &DEFAULT_READ_SCOPES,
        ));
        let write = Requirement::roles(pick(
            &self.write_roles,
            group(&file.app_permissions, "Write").as_ref(),
            &DEFAULT_WRITE_ROLES,
        ))
        .or_scopes(pick(
            &self.write_scopes,
            group(&file.scopes, "Write").as_ref(),
            &DEFAULT_WRITE_SCOPES,
        ));
        let mut permissions = permissions(read, write);
        if self.protect_health_and_reflection {
            permissions = permissions.no_public_services();
        }
        Ok(Resolved { auth, permissions })
    }
}

/// The permission table of `todo.v1.ToDoService`, built in this one place:
/// reads need `read`, writes need `write`; any other RPC is denied.
pub fn permissions(read: Requirement, write: Requirement) -> Permissions {
    let rpc = |method: &str| format!("/{SERVICE_NAME}/{method}");
    Permissions::new()
        .rpc(rpc("GetToDo"), read.clone())
        .rpc(rpc("ListToDos"), read)
        .rpc(rpc("CreateToDo"), write.clone())
        .rpc(rpc("UpdateToDo"), write.clone())
        .rpc(rpc("DeleteToDo"), write)
}

/// The sample's permission table with its default roles and scopes.
pub fn default_permissions() -> Permissions {
    permissions(
        Requirement::roles(DEFAULT_READ_ROLES).or_scopes(DEFAULT_READ_SCOPES),
        Requirement::roles(DEFAULT_WRITE_ROLES).or_scopes(DEFAULT_WRITE_SCOPES),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API's appsettings.json from the .NET sample, with its placeholders filled.
    const SAMPLE: &str = r#"{
      "AzureAd": {
        "Instance": "https://contoso.ciamlogin.com/",
        "TenantId": "aaaabbbb-0000-cccc-1111-dddd2222eeee",
        "ClientId": "11112222-bbbb-3333-cccc-4444dddd5555",
        "Scopes": {
          "Read": ["ToDoList.Read", "ToDoList.ReadWrite"],
          "Write": ["ToDoList.ReadWrite"]
        },
        "AppPermissions": {
          "Read": ["ToDoList.Read.All", "ToDoList.ReadWrite.All"],
          "Write": ["ToDoList.ReadWrite.All"]
        }
      },
      "Logging": { "LogLevel": { "Default": "Information" } },
      "AllowedHosts": "*"
    }"#;

    fn args(extra: &[&str], file: &std::path::Path) -> Args {
        let mut argv = vec!["todo-server", "--config", file.to_str().unwrap()];
        argv.extend(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn reads_the_samples_appsettings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("appsettings.json");
        std::fs::write(&file, SAMPLE).unwrap();
        let resolved = args(&[], &file).resolve().unwrap();
        assert_eq!(
            resolved.auth.authority.as_str(),
            "https://contoso.ciamlogin.com/aaaabbbb-0000-cccc-1111-dddd2222eeee/v2.0"
        );
        assert_eq!(
            resolved.auth.effective_audiences(),
            [
                "11112222-bbbb-3333-cccc-4444dddd5555",
                "api://11112222-bbbb-3333-cccc-4444dddd5555"
            ]
        );
        let write = resolved
            .permissions
            .requirement("/todo.v1.ToDoService/CreateToDo")
            .unwrap();
        assert_eq!(
            write,
            &Requirement::roles(["ToDoList.ReadWrite.All"]).or_scopes(["ToDoList.ReadWrite"])
        );
        assert!(
            resolved
                .permissions
                .requirement("/todo.v1.ToDoService/Nope")
                .is_none()
        );
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("appsettings.json");
        std::fs::write(&file, SAMPLE).unwrap();
        let resolved = args(
            &[
                "--authority",
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0",
                "--client-id",
                "99999999-0000-0000-0000-000000000000",
                "--write-role",
                "Custom.Write",
            ],
            &file,
        )
        .resolve()
        .unwrap();
        assert_eq!(
            resolved.auth.authority.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
        );
        assert_eq!(
            resolved.auth.client_id,
            "99999999-0000-0000-0000-000000000000"
        );
        let write = resolved
            .permissions
            .requirement("/todo.v1.ToDoService/DeleteToDo")
            .unwrap();
        assert_eq!(
            write,
            &Requirement::roles(["Custom.Write"]).or_scopes(["ToDoList.ReadWrite"])
        );
    }

    #[test]
    fn refuses_to_start_without_authority_or_client_id() {
        let err = Args::try_parse_from(["todo-server"])
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--authority") && err.contains("--client-id"),
            "{err}"
        );
        let err = Args::try_parse_from([
            "todo-server",
            "--authority",
            "http://insecure/t/v2.0",
            "--client-id",
            "x",
        ])
        .unwrap()
        .resolve()
        .unwrap_err();
        assert!(format!("{err:#}").contains("https"), "{err:#}");
    }
}
