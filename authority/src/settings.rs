//! [`ClientSettings`]: everything a daemon needs to get tokens for a registered client,
//! printable as environment variables or as a .NET-style `appsettings.json`.

use std::path::PathBuf;

use serde::Serialize;

use crate::{AuthorityState, Error, Secret, defaults};

/// A client's ready-to-use settings.
#[derive(Clone, Debug, Serialize)]
pub struct ClientSettings {
    /// Registration name (`daemon`).
    pub client: String,
    /// MSAL authority: `https://host:port/{tenant id}`.
    pub authority: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// The first client secret, if the client has one.
    #[serde(skip)]
    pub client_secret: Option<Secret>,
    /// The first registered certificate file, if it is a file in the state folder.
    pub certificate_path: Option<PathBuf>,
    /// Its private key, when the authority generated it (the default daemon's).
    pub private_key_path: Option<PathBuf>,
    /// SHA-1 thumbprint (hex) of that certificate, as MSAL's `thumbprint` wants it.
    pub certificate_thumbprint: Option<String>,
    /// `api://…/.default` of the first API the client holds roles on (else the first API).
    pub scope: String,
    /// The CA certificate to trust.
    pub ca_path: PathBuf,
}

impl ClientSettings {
    pub(crate) fn new(state: &AuthorityState, base_url: &str, client: &str) -> Result<Self, Error> {
        let dir = state.directory();
        let regs = &dir.regs;
        let app = regs
            .client(client)
            .ok_or_else(|| Error::UnknownClient(client.into()))?;
        let api = app
            .grants
            .iter()
            .find_map(|g| regs.api(&g.api))
            .or_else(|| regs.apis.first())
            .ok_or_else(|| Error::UnknownApi("(none registered)".into()))?;
        let endpoints = state.endpoints(base_url);
        let cert_file = app
            .certificates
            .iter()
            .find(|c| !c.trim_start().starts_with("-----BEGIN"))
            .map(|c| state.dir().join(c));
        let thumbprint = dir.certs(app).first().map(|c| {
            c.sha1
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
        });
        let key_file = (app.name == defaults::DAEMON_CLIENT)
            .then(|| state.dir().join(defaults::DAEMON_KEY_FILE))
            .filter(|p| p.exists() && cert_file.is_some());
        Ok(ClientSettings {
            client: app.name.clone(),
            authority: endpoints.authority,
            token_endpoint: endpoints.token_endpoint,
            tenant_id: regs.tenant.id.to_string(),
            client_id: app.client_id.to_string(),
            client_secret: app.secrets.first().map(|s| s.value.clone()),
            certificate_path: cert_file,
            private_key_path: key_file,
            certificate_thumbprint: thumbprint,
            scope: api.default_scope(),
            ca_path: state.ca_path().to_owned(),
        })
    }

    /// `KEY=value` lines for a shell (`export $(todo-authority client-settings daemon)`).
    /// Contains the secret.
    pub fn to_env(&self) -> String {
        let mut lines = vec![
            format!("TODO_AUTHORITY={}", self.authority),
            format!("TODO_TENANT_ID={}", self.tenant_id),
            format!("TODO_CLIENT_ID={}", self.client_id),
            format!("TODO_SCOPE={}", self.scope),
            format!("TODO_AUTHORITY_CA_FILE={}", self.ca_path.display()),
        ];
        if let Some(secret) = &self.client_secret {
            lines.push(format!("TODO_CLIENT_SECRET={}", secret.expose()));
        }
        if let Some(cert) = &self.certificate_path {
            lines.push(format!("TODO_CLIENT_CERTIFICATE={}", cert.display()));
        }
        if let Some(key) = &self.private_key_path {
            lines.push(format!("TODO_CLIENT_KEY={}", key.display()));
        }
        lines.push(format!("REQUESTS_CA_BUNDLE={}", self.ca_path.display()));
        lines.join("\n") + "\n"
    }

    /// The `appsettings.json` shape of Microsoft's .NET daemon sample. Contains the secret.
    pub fn to_appsettings_json(&self) -> String {
        let base = self
            .authority
            .rsplit_once('/')
            .map(|(b, _)| format!("{b}/"))
            .unwrap_or_default();
        let mut credentials = Vec::new();
        if let Some(secret) = &self.client_secret {
            credentials.push(serde_json::json!({
                "SourceType": "ClientSecret", "ClientSecret": secret.expose()
            }));
        }
        if let (Some(cert), Some(key)) = (&self.certificate_path, &self.private_key_path) {
            credentials.push(serde_json::json!({
                "SourceType": "Path", "CertificateDiskPath": cert, "PrivateKeyPath": key,
            }));
        }
        let doc = serde_json::json!({
            "AzureAd": {
                "Instance": base,
                "TenantId": self.tenant_id,
                "ClientId": self.client_id,
                "ClientSecret": self.client_secret.as_ref().map(Secret::expose),
                "ClientCredentials": credentials,
            },
            // The sample's client reads its API's scopes here (as the daemon does).
            "DownstreamApi": { "Scopes": [self.scope] },
            "DevAuthority": { "Authority": self.authority, "CaFile": self.ca_path },
        });
        serde_json::to_string_pretty(&doc).expect("serialisable")
    }
}
