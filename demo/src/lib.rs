//! The whole system in one process, for the one-command demo and for
//! end-to-end tests: the dev authority (HTTPS, its own CA, the sample's
//! default registration) and the ToDo server (SQLite, TLS with a certificate
//! from that CA, real token validation) on free loopback ports.
//!
//! [`System::start`] brings both up and waits until the server has the
//! authority's signing keys; [`System::daemon_config`] gives the daemon's
//! settings for a registered client.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use dev_authority::{DevAuthority, defaults};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// A running dev authority and ToDo server.
pub struct System {
    /// The dev authority.
    pub authority: DevAuthority,
    /// `https://localhost:PORT` of the ToDo server.
    pub server_url: String,
    /// The API's application (client) id the server validates tokens for.
    pub api_client_id: String,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("authority", &self.authority.authority_url())
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

impl System {
    /// Starts the authority (state in `dir/authority`) and the server
    /// (SQLite at `dir/todo.db`).
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let authority =
            DevAuthority::start(dev_authority::Config::with_state_dir(dir.join("authority")))
                .await
                .context("starting the dev authority")?;
        let api_client_id = authority
            .registrations()
            .api(defaults::TODO_API)
            .context("the registration has no ToDo API")?
            .client_id
            .to_string();

        let mut validation = entra_auth::Config::new(
            entra_auth::Authority::parse(&authority.authority_url())?,
            api_client_id.clone(),
        );
        validation.ca_pem = Some(authority.ca_pem().as_bytes().to_vec());
        let validator = entra_auth::Validator::new(validation)?;
        let tls = authority.issue_tls_identity(&["localhost", "127.0.0.1"])?;
        let store = todo_server::store::SqliteStore::open(dir.join("todo.db")).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (stop, stopped) = oneshot::channel::<()>();
        let ready = {
            let validator = validator.clone();
            Arc::new(move || validator.is_ready())
        };
        let server = tokio::spawn(todo_server::serve(
            listener,
            Arc::new(store),
            todo_server::app::entra_layer(&validator, todo_server::config::default_permissions()),
            todo_server::ServeOptions {
                tls: Some(tonic::transport::Identity::from_pem(
                    tls.cert_pem,
                    tls.key_pem.expose(),
                )),
                ready: Some(ready),
                ..Default::default()
            },
            async {
                let _ = stopped.await;
            },
        ));
        tokio::time::timeout(Duration::from_secs(30), validator.wait_ready())
            .await
            .context("the server could not load the authority's signing keys")?;
        Ok(Self {
            authority,
            server_url: format!("https://localhost:{port}"),
            api_client_id,
            stop: Some(stop),
            server,
        })
    }

    /// The daemon settings of a registered client (`defaults::DAEMON_CLIENT`
    /// or `defaults::READER_CLIENT`), authenticating with its secret.
    pub fn daemon_config(&self, client: &str) -> anyhow::Result<todo_client::DaemonConfig> {
        let settings = self.authority.client_settings(client)?;
        let secret = settings
            .client_secret
            .as_ref()
            .with_context(|| format!("client {client} has no secret"))?;
        let tokens = entra_token_provider::Config::new(
            entra_auth::Authority::parse(&settings.authority)?,
            settings.client_id.clone(),
            entra_token_provider::Credential::client_secret(secret.expose()),
            settings.scope.clone(),
        )
        .with_ca_pem(self.authority.ca_pem().as_bytes().to_vec());
        Ok(todo_client::DaemonConfig {
            server: self.server_url.clone(),
            server_ca_file: Some(self.authority.ca_path().to_path_buf()),
            tls_client_identity: None,
            tokens,
        })
    }

    /// Stops the server (draining calls) and the authority.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server).await??;
        self.authority.shutdown().await;
        Ok(())
    }
}
