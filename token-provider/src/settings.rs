//! [`DaemonSettings`]: the client `appsettings.json` of Microsoft's .NET daemon sample
//! (`AzureAd` + a downstream-API section), merged with a daemon's flags, turned into a
//! [`Config`].
//!
//! Like .NET configuration, key names are case-insensitive and `//` / `/* */` comments and
//! trailing commas are tolerated.

use std::path::{Path, PathBuf};

use entra_auth::Authority;
use entra_auth::dotnet_json::get;
use serde_json::{Map, Value};

use crate::{CertificateCredential, ClientSecret, Config, Credential, Error, TokenProvider, scope};

/// The downstream-API section read by default (`DownstreamApi`). Microsoft's daemon sample
/// names its section `ToDoApi`: use [`DaemonSettings::from_json_section`] for that.
pub const DEFAULT_API_SECTION: &str = "DownstreamApi";

/// Everything a daemon needs to get tokens and find its API; every field optional so that
/// a file and flags can each give part of it ([`DaemonSettings::merge`]).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct DaemonSettings {
    /// `AzureAd:Authority`, a full authority URL (wins over instance + tenant).
    pub authority: Option<String>,
    /// `AzureAd:Instance`, e.g. `https://login.microsoftonline.com/` or
    /// `https://{sub}.ciamlogin.com`.
    pub instance: Option<String>,
    /// `AzureAd:TenantId`: GUID or domain.
    pub tenant_id: Option<String>,
    /// `AzureAd:ClientId` of the daemon.
    pub client_id: Option<String>,
    /// `AzureAd:ClientCredentials` (plus a legacy `AzureAd:ClientSecret`), in order; the
    /// first one that loads is used, as in Microsoft.Identity.Web.
    pub credentials: Vec<CredentialSource>,
    /// `{section}:BaseUrl` of the API.
    pub base_url: Option<String>,
    /// `{section}:Scopes` (array, or a space-separated string).
    pub scopes: Vec<String>,
    /// Extra CA certificates to trust (PEM), e.g. a development authority's. Not in the
    /// .NET file: give it as a flag. Default none.
    pub ca_file: Option<PathBuf>,
}

/// One entry of `AzureAd:ClientCredentials`. `Debug` never shows a secret.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `{"SourceType": "ClientSecret", "ClientSecret": "…"}`.
    ClientSecret(ClientSecret),
    /// `{"SourceType": "Path", "CertificateDiskPath": "…", "CertificatePassword": "…"}`:
    /// a PEM file holding the certificate and its key (or the key in `PrivateKeyPath`).
    /// Encrypted keys and `.pfx` files are reported as unsupported when loaded.
    CertificatePath {
        /// `CertificateDiskPath`.
        path: PathBuf,
        /// `PrivateKeyPath`, when the key is in a separate PEM file.
        private_key_path: Option<PathBuf>,
        /// `CertificatePassword` (only for `.pfx`, which is unsupported).
        password: Option<ClientSecret>,
    },
    /// `{"SourceType": "SignedAssertionFilePath", "SignedAssertionFileDiskPath": "…"}`:
    /// a federated token file (default: `$AZURE_FEDERATED_TOKEN_FILE`).
    SignedAssertionFile {
        /// The file, or `None` for the environment variable.
        path: Option<PathBuf>,
    },
    /// A source type this crate does not load (Key Vault, certificate stores, …).
    Unsupported {
        /// The `SourceType`.
        source_type: String,
    },
}

impl CredentialSource {
    /// Loads the credential.
    pub fn load(&self) -> Result<Credential, Error> {
        match self {
            CredentialSource::ClientSecret(s) if s.is_empty() => Err(Error::Config(
                "ClientCredentials: the ClientSecret is empty".into(),
            )),
            CredentialSource::ClientSecret(s) => Ok(Credential::ClientSecret(s.clone())),
            CredentialSource::CertificatePath {
                path,
                private_key_path,
                ..
            } => match private_key_path {
                Some(key) => CertificateCredential::from_pem_files(path, key),
                None => CertificateCredential::from_pem_file(path),
            }
            .map(Credential::Certificate),
            CredentialSource::SignedAssertionFile { path: Some(path) } => {
                Ok(Credential::federated_token_file(path.clone()))
            }
            CredentialSource::SignedAssertionFile { path: None } => {
                Credential::federated_token_file_from_env().ok_or_else(|| {
                    Error::Config(format!(
                        "ClientCredentials: SignedAssertionFilePath without \
                         SignedAssertionFileDiskPath needs {} to be set",
                        crate::credential::FEDERATED_TOKEN_FILE_ENV
                    ))
                })
            }
            CredentialSource::Unsupported { source_type } => Err(Error::Config(format!(
                "ClientCredentials: SourceType {source_type:?} is not supported; use \
                 ClientSecret, Path (PEM certificate + key) or SignedAssertionFilePath"
            ))),
        }
    }
}

impl DaemonSettings {
    /// Reads an appsettings file (`AzureAd` and `DownstreamApi`). Relative certificate paths
    /// are resolved against the file's folder.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_file_section(path, DEFAULT_API_SECTION)
    }

    /// Like [`DaemonSettings::from_file`], reading the API from `api_section`.
    pub fn from_file_section(path: impl AsRef<Path>, api_section: &str) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        let mut settings = Self::from_json_section(&text, api_section).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        if let Some(dir) = path.parent() {
            settings.resolve_paths(dir);
        }
        Ok(settings)
    }

    /// Parses appsettings JSON text (`AzureAd` and `DownstreamApi`).
    pub fn from_json_str(text: &str) -> Result<Self, Error> {
        Self::from_json_section(text, DEFAULT_API_SECTION)
    }

    /// Parses appsettings JSON text, reading the API from `api_section` (e.g. `ToDoApi`).
    pub fn from_json_section(text: &str, api_section: &str) -> Result<Self, Error> {
        let root =
            entra_auth::dotnet_json::parse(text).map_err(|e| Error::Config(e.to_string()))?;
        let root = root
            .as_object()
            .ok_or_else(|| Error::Config("appsettings is not a JSON object".into()))?;
        let mut settings = DaemonSettings::default();
        if let Some(ad) = section(root, "AzureAd")? {
            settings.authority = string(ad, "AzureAd", "Authority")?;
            settings.instance = string(ad, "AzureAd", "Instance")?;
            settings.tenant_id = string(ad, "AzureAd", "TenantId")?;
            settings.client_id = string(ad, "AzureAd", "ClientId")?;
            if let Some(list) = get(ad, "ClientCredentials") {
                let list = list.as_array().ok_or_else(|| {
                    Error::Config("AzureAd:ClientCredentials is not an array".into())
                })?;
                for (i, entry) in list.iter().enumerate() {
                    settings.credentials.push(credential_source(entry, i)?);
                }
            }
            if let Some(secret) = string(ad, "AzureAd", "ClientSecret")? {
                settings
                    .credentials
                    .push(CredentialSource::ClientSecret(ClientSecret::new(secret)));
            }
        }
        if let Some(api) = section(root, api_section)? {
            settings.base_url = string(api, api_section, "BaseUrl")?;
            settings.scopes = match get(api, "Scopes") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(|s| s.trim().to_owned()).ok_or_else(|| {
                            Error::Config(format!("{api_section}:Scopes holds a non-string"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect(),
                Some(_) => {
                    return Err(Error::Config(format!(
                        "{api_section}:Scopes is neither an array nor a string"
                    )));
                }
            };
        }
        Ok(settings)
    }

    fn resolve_paths(&mut self, dir: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        for source in &mut self.credentials {
            match source {
                CredentialSource::CertificatePath {
                    path,
                    private_key_path,
                    ..
                } => {
                    resolve(path);
                    if let Some(k) = private_key_path {
                        resolve(k);
                    }
                }
                CredentialSource::SignedAssertionFile { path: Some(p) } => resolve(p),
                _ => {}
            }
        }
    }

    /// `self` with every value that `overrides` sets replacing its own (flags and
    /// environment over the file). Credentials and scopes are replaced as a whole. An
    /// instance or tenant in `overrides` discards an authority URL from `self`.
    pub fn merge(self, overrides: DaemonSettings) -> DaemonSettings {
        let location_overridden = overrides.instance.is_some() || overrides.tenant_id.is_some();
        let authority = match overrides.authority {
            Some(a) => Some(a),
            None if location_overridden => None,
            None => self.authority,
        };
        DaemonSettings {
            authority,
            instance: overrides.instance.or(self.instance),
            tenant_id: overrides.tenant_id.or(self.tenant_id),
            client_id: overrides.client_id.or(self.client_id),
            credentials: if overrides.credentials.is_empty() {
                self.credentials
            } else {
                overrides.credentials
            },
            base_url: overrides.base_url.or(self.base_url),
            scopes: if overrides.scopes.is_empty() {
                self.scopes
            } else {
                overrides.scopes
            },
            ca_file: overrides.ca_file.or(self.ca_file),
        }
    }

    /// The authority: `Authority`, else `Instance` + `TenantId`.
    pub fn authority(&self) -> Result<Authority, Error> {
        let parsed = match (&self.authority, &self.instance) {
            (Some(a), _) => Authority::parse(a),
            (None, Some(i)) => Authority::from_instance(i, self.tenant_id.as_deref().unwrap_or("")),
            (None, None) => {
                return Err(Error::Config(
                    "no authority: set AzureAd:Authority, or AzureAd:Instance and AzureAd:TenantId"
                        .into(),
                ));
            }
        };
        parsed.map_err(|e| Error::Config(e.to_string()))
    }

    /// The one scope, checked (`{resource}/.default`).
    pub fn scope(&self) -> Result<String, Error> {
        match self.scopes.as_slice() {
            [one] => scope::validate(one),
            [] => Err(Error::Config(
                "no scope: set the API's Scopes to [\"api://<API client id>/.default\"]".into(),
            )),
            many => Err(Error::Config(format!(
                "{} scopes given; the client-credentials grant takes exactly one \
                 \"{{resource}}/.default\" scope",
                many.len()
            ))),
        }
    }

    /// The first credential that loads; if none does, every reason.
    pub fn credential(&self) -> Result<Credential, Error> {
        if self.credentials.is_empty() {
            return Err(Error::Config(
                "no client credential: set AzureAd:ClientCredentials (ClientSecret, Path or \
                 SignedAssertionFilePath)"
                    .into(),
            ));
        }
        let mut reasons = Vec::new();
        for source in &self.credentials {
            match source.load() {
                Ok(credential) => return Ok(credential),
                Err(e) => reasons.push(e.to_string()),
            }
        }
        Err(Error::Credential(format!(
            "no configured credential could be loaded: {}",
            reasons.join("; ")
        )))
    }

    /// A provider [`Config`] (defaults for everything the file does not say).
    pub fn to_config(&self) -> Result<Config, Error> {
        let scope = self.scope()?;
        let client_id = self
            .client_id
            .clone()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| Error::Config("no client id: set AzureAd:ClientId".into()))?;
        let mut config = Config::new(self.authority()?, client_id, self.credential()?, scope);
        config.ca_file = self.ca_file.clone();
        Ok(config)
    }

    /// A ready [`TokenProvider`] (no network request is made yet).
    pub fn provider(&self) -> Result<TokenProvider, Error> {
        TokenProvider::new(self.to_config()?)
    }
}

fn credential_source(entry: &Value, index: usize) -> Result<CredentialSource, Error> {
    let context = format!("AzureAd:ClientCredentials:{index}");
    let entry = entry
        .as_object()
        .ok_or_else(|| Error::Config(format!("{context} is not an object")))?;
    let source_type = string(entry, &context, "SourceType")?
        .ok_or_else(|| Error::Config(format!("{context} has no SourceType")))?;
    let required = |key: &str| -> Result<String, Error> {
        string(entry, &context, key)?
            .ok_or_else(|| Error::Config(format!("{context} ({source_type}) has no {key}")))
    };
    Ok(match source_type.to_ascii_lowercase().as_str() {
        "clientsecret" => {
            CredentialSource::ClientSecret(ClientSecret::new(required("ClientSecret")?))
        }
        "path" => CredentialSource::CertificatePath {
            path: required("CertificateDiskPath")?.into(),
            private_key_path: string(entry, &context, "PrivateKeyPath")?.map(PathBuf::from),
            password: string(entry, &context, "CertificatePassword")?.map(ClientSecret::new),
        },
        "signedassertionfilepath" => CredentialSource::SignedAssertionFile {
            path: string(entry, &context, "SignedAssertionFileDiskPath")?.map(PathBuf::from),
        },
        _ => CredentialSource::Unsupported { source_type },
    })
}

fn section<'a>(
    map: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, Error> {
    match get(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(Error::Config(format!("{key} is not a JSON object"))),
    }
}

fn string(map: &Map<String, Value>, context: &str, key: &str) -> Result<Option<String>, Error> {
    match get(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(Error::Config(format!("{context}:{key} is not a string"))),
    }
}
