//! The declarative registrations file (`registrations.toml`): one tenant, its APIs and its
//! client applications. See `registrations.example.toml` for the format.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Error, Secret, ca};

/// File name of the registrations in the state folder.
pub(crate) const REGISTRATIONS_FILE: &str = "registrations.toml";

/// Everything registered in the development tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registrations {
    /// The tenant.
    pub tenant: Tenant,
    /// Protected web APIs (resources), `[[api]]` in the file.
    #[serde(rename = "api", default)]
    pub apis: Vec<Api>,
    /// Client applications (daemons), `[[client]]` in the file.
    #[serde(rename = "client", default)]
    pub clients: Vec<ClientApp>,
}

/// The tenant: its GUID (`tid`) and its domain; either names it in URLs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// The tenant id, `tid` in tokens and the issuer's path segment.
    pub id: Uuid,
    /// The domain, e.g. `todo-dev.onmicrosoft.com`; accepted in place of the GUID in URLs.
    pub domain: String,
}

/// A protected web API (an Entra app registration exposing app roles).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Short name used by the CLI and the library (`todo`).
    pub name: String,
    /// Display name (`ToDoList API`).
    pub display_name: String,
    /// Application (client) id: the `aud` of v2 tokens for this API.
    pub client_id: Uuid,
    /// Application id URI, e.g. `api://{client_id}`; scopes are `{app_id_uri}/.default`.
    pub app_id_uri: String,
    /// App roles the API defines.
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Whether tokens for this API carry the optional claim `idtyp` (`app`).
    #[serde(default)]
    pub emit_idtyp: bool,
}

impl Api {
    /// The client-credentials scope for this API: `{app_id_uri}/.default`.
    pub fn default_scope(&self) -> String {
        format!("{}/.default", self.app_id_uri.trim_end_matches('/'))
    }
}

/// A client application that gets app-only tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientApp {
    /// Short name used by the CLI and the library (`daemon`).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Application (client) id: `azp` in tokens.
    pub client_id: Uuid,
    /// Object id of the app's service principal: `oid` and `sub` in tokens. Stable.
    pub object_id: Uuid,
    /// Client secrets; any one is accepted.
    #[serde(default)]
    pub secrets: Vec<ClientSecret>,
    /// Certificates for client assertions: PEM text, or a path relative to the state folder.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// App roles granted (admin-consented) per API, `[[client.grant]]` in the file.
    #[serde(rename = "grant", default)]
    pub grants: Vec<Grant>,
}

/// App roles of one API granted to a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The API: its name, client id or app id URI.
    pub api: String,
    /// Roles granted; each must be defined by the API.
    pub roles: Vec<String>,
}

/// A client secret, optionally with an expiry (then AADSTS7000222 once passed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "SecretRepr", into = "SecretRepr")]
pub struct ClientSecret {
    /// The value.
    pub value: Secret,
    /// When it stops being accepted.
    pub expires_at: Option<OffsetDateTime>,
}

impl From<Secret> for ClientSecret {
    fn from(value: Secret) -> Self {
        ClientSecret {
            value,
            expires_at: None,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum SecretRepr {
    Plain(Secret),
    Full {
        value: Secret,
        #[serde(default, with = "time::serde::rfc3339::option")]
        expires_at: Option<OffsetDateTime>,
    },
}

impl From<SecretRepr> for ClientSecret {
    fn from(repr: SecretRepr) -> Self {
        match repr {
            SecretRepr::Plain(value) => value.into(),
            SecretRepr::Full { value, expires_at } => ClientSecret { value, expires_at },
        }
    }
}

impl From<ClientSecret> for SecretRepr {
    fn from(s: ClientSecret) -> Self {
        match s.expires_at {
            None => SecretRepr::Plain(s.value),
            Some(at) => SecretRepr::Full {
                value: s.value,
                expires_at: Some(at),
            },
        }
    }
}

fn same_id(id: &Uuid, text: &str) -> bool {
    Uuid::parse_str(text.trim()).is_ok_and(|t| &t == id)
}

impl Registrations {
    /// Whether `segment` (a URL path segment) names this tenant: its GUID or its domain.
    pub fn tenant_matches(&self, segment: &str) -> bool {
        same_id(&self.tenant.id, segment) || self.tenant.domain.eq_ignore_ascii_case(segment)
    }

    /// A client by name or client id.
    pub fn client(&self, name_or_id: &str) -> Option<&ClientApp> {
        self.clients
            .iter()
            .find(|c| c.name == name_or_id || same_id(&c.client_id, name_or_id))
    }

    /// A client by client id only (what the token endpoint receives).
    pub fn client_by_id(&self, client_id: &str) -> Option<&ClientApp> {
        self.clients
            .iter()
            .find(|c| same_id(&c.client_id, client_id))
    }

    /// An API by name, client id or app id URI.
    pub fn api(&self, key: &str) -> Option<&Api> {
        self.apis
            .iter()
            .find(|a| a.name == key)
            .or_else(|| self.api_for_resource(key))
    }

    /// The API a scope's resource part names: its app id URI, its client id, or
    /// `api://{client id}`.
    pub fn api_for_resource(&self, resource: &str) -> Option<&Api> {
        let resource = resource.trim_end_matches('/');
        self.apis.iter().find(|a| {
            a.app_id_uri
                .trim_end_matches('/')
                .eq_ignore_ascii_case(resource)
                || same_id(&a.client_id, resource)
                || resource
                    .get(..6)
                    .is_some_and(|p| p.eq_ignore_ascii_case("api://"))
                    && same_id(&a.client_id, &resource[6..])
        })
    }

    /// The roles `client` holds on `api` (no duplicates, in the API's order).
    pub fn roles(&self, client: &ClientApp, api: &Api) -> Vec<String> {
        let granted: HashSet<&str> = client
            .grants
            .iter()
            .filter(|g| {
                self.api(&g.api)
                    .is_some_and(|a| a.client_id == api.client_id)
            })
            .flat_map(|g| g.roles.iter().map(String::as_str))
            .collect();
        api.app_roles
            .iter()
            .filter(|r| granted.contains(r.as_str()))
            .cloned()
            .collect()
    }

    /// Parses TOML text (no certificate loading, no cross-checks).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Renders TOML text (comments of a hand-written file are not kept).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("registrations are serialisable")
    }

    /// Checks the cross-references: unique names and ids, grants naming defined roles.
    pub fn validate(&self) -> Result<(), String> {
        if self.tenant.domain.trim().is_empty() {
            return Err("tenant.domain is empty".into());
        }
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for api in &self.apis {
            if !names.insert(format!("api:{}", api.name)) {
                return Err(format!("two APIs are named '{}'", api.name));
            }
            if !ids.insert(api.client_id) {
                return Err(format!("client id {} is used twice", api.client_id));
            }
            if api.app_id_uri.trim().is_empty() {
                return Err(format!("API '{}' has an empty app_id_uri", api.name));
            }
        }
        for client in &self.clients {
            if !names.insert(format!("client:{}", client.name)) {
                return Err(format!("two clients are named '{}'", client.name));
            }
            if !ids.insert(client.client_id) {
                return Err(format!("client id {} is used twice", client.client_id));
            }
            if client.secrets.iter().any(|s| s.value.expose().is_empty()) {
                return Err(format!("client '{}' has an empty secret", client.name));
            }
            for grant in &client.grants {
                let api = self.api(&grant.api).ok_or_else(|| {
                    format!(
                        "client '{}' is granted roles on unknown API '{}'",
                        client.name, grant.api
                    )
                })?;
                if let Some(role) = grant.roles.iter().find(|r| !api.app_roles.contains(r)) {
                    return Err(format!(
                        "client '{}' is granted role '{role}' that API '{}' does not define",
                        client.name, api.name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A certificate registered for a client, with its thumbprints.
#[derive(Clone, Debug)]
pub(crate) struct RegisteredCert {
    pub(crate) der: Vec<u8>,
    pub(crate) sha1: Vec<u8>,
    pub(crate) sha256: Vec<u8>,
}

impl RegisteredCert {
    pub(crate) fn from_der(der: Vec<u8>) -> Self {
        use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
        RegisteredCert {
            sha1: digest(&SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref().to_vec(),
            sha256: digest(&SHA256, &der).as_ref().to_vec(),
            der,
        }
    }
}

/// Registrations plus their certificates, loaded and checked.
pub(crate) struct Directory {
    pub(crate) regs: Registrations,
    certs: HashMap<Uuid, Vec<RegisteredCert>>,
}

impl Directory {
    /// Checks `regs` and loads the certificates (paths relative to `state_dir`).
    pub(crate) fn new(regs: Registrations, state_dir: &Path, file: &Path) -> Result<Self, Error> {
        let bad = |message: String| Error::Registrations {
            path: file.to_owned(),
            message,
        };
        regs.validate().map_err(bad)?;
        let mut certs = HashMap::new();
        for client in &regs.clients {
            let mut loaded = Vec::new();
            for entry in &client.certificates {
                let pem = if entry.trim_start().starts_with("-----BEGIN") {
                    entry.clone()
                } else {
                    let path: PathBuf = state_dir.join(entry);
                    crate::files::read_string(&path)?
                };
                let blocks: Vec<_> = ca::pem_blocks(&pem)
                    .into_iter()
                    .filter(|(label, _)| label == "CERTIFICATE")
                    .collect();
                if blocks.is_empty() {
                    return Err(bad(format!(
                        "client '{}': a certificate entry holds no CERTIFICATE",
                        client.name
                    )));
                }
                for (_, der) in blocks {
                    webpki::EndEntityCert::try_from(&rustls::pki_types::CertificateDer::from(
                        der.as_slice(),
                    ))
                    .map_err(|e| bad(format!("client '{}': certificate: {e}", client.name)))?;
                    loaded.push(RegisteredCert::from_der(der));
                }
            }
            certs.insert(client.client_id, loaded);
        }
        Ok(Directory { regs, certs })
    }

    /// Loads and checks the registrations file.
    pub(crate) fn load(file: &Path, state_dir: &Path) -> Result<Self, Error> {
        let text = crate::files::read_string(file)?;
        let regs = Registrations::from_toml(&text).map_err(|message| Error::Registrations {
            path: file.to_owned(),
            message,
        })?;
        Directory::new(regs, state_dir, file)
    }

    /// The certificates registered for `client`.
    pub(crate) fn certs(&self, client: &ClientApp) -> &[RegisteredCert] {
        self.certs
            .get(&client.client_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}
