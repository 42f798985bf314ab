//! The `AzureAd` section of a .NET `appsettings.json`.
//!
//! Lets a server start from the same file as Microsoft's sample. Like .NET
//! configuration, key names are case-insensitive and `//` / `/* */` comments
//! and trailing commas are tolerated. Values the server also takes as flags
//! should be merged as "flags override file".

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::dotnet_json::{self, get};
use crate::{Authority, Config, Error};

/// Named permission groups, e.g. `{"Read": [...], "Write": [...]}`.
///
/// A plain array or space-separated string in the file lands under the key `""`.
pub type PermissionGroups = BTreeMap<String, Vec<String>>;

/// The `AzureAd` section, every field optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AzureAdSettings {
    /// `Instance`, e.g. `https://login.microsoftonline.com/` or `https://{sub}.ciamlogin.com`.
    pub instance: Option<String>,
    /// `TenantId`: GUID or domain.
    pub tenant_id: Option<String>,
    /// `ClientId` of the API.
    pub client_id: Option<String>,
    /// `Authority`, when the file gives a full one (wins over instance + tenant).
    pub authority: Option<String>,
    /// `Audience` and `Audiences` together, in file order.
    pub audiences: Vec<String>,
    /// `AppPermissions`: app roles per operation group.
    pub app_permissions: PermissionGroups,
    /// `Scopes`: delegated scopes per operation group.
    pub scopes: PermissionGroups,
}

impl AzureAdSettings {
    /// Reads the `AzureAd` section of an appsettings file. A file without
    /// that section gives empty settings.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json_str(&text)
    }

    /// Parses the `AzureAd` section out of appsettings JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, Error> {
        let root = dotnet_json::parse(text)?;
        let Some(root) = root.as_object() else {
            return Err(Error::Config("appsettings is not a JSON object".into()));
        };
        let Some(section) = get(root, "AzureAd") else {
            return Ok(Self::default());
        };
        let section = section
            .as_object()
            .ok_or_else(|| Error::Config("AzureAd is not a JSON object".into()))?;
        let string = |key: &str| -> Result<Option<String>, Error> {
            match get(section, key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(Error::Config(format!("AzureAd:{key} is not a string"))),
            }
        };
        let mut audiences = Vec::new();
        if let Some(a) = string("Audience")? {
            audiences.push(a);
        }
        if let Some(list) = get(section, "Audiences") {
            audiences.extend(strings(list, "AzureAd:Audiences")?);
        }
        Ok(AzureAdSettings {
            instance: string("Instance")?,
            tenant_id: string("TenantId")?,
            client_id: string("ClientId")?,
            authority: string("Authority")?,
            audiences,
            app_permissions: groups(get(section, "AppPermissions"), "AppPermissions")?,
            scopes: groups(get(section, "Scopes"), "Scopes")?,
        })
    }

    /// The authority the file describes: `Authority` if present, else
    /// `Instance` + `TenantId`; `None` when neither is given.
    pub fn authority(&self) -> Result<Option<Authority>, Error> {
        match (&self.authority, &self.instance) {
            (Some(a), _) => Authority::parse(a).map(Some),
            (None, Some(instance)) => {
                Authority::from_instance(instance, self.tenant_id.as_deref().unwrap_or(""))
                    .map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    /// A [`Config`] with secure defaults from these settings alone; fails when
    /// the authority or client id is missing. A server that merges flags
    /// should instead read the fields and override them first.
    pub fn to_config(&self) -> Result<Config, Error> {
        let authority = self.authority()?.ok_or_else(|| {
            Error::Config("AzureAd names no Instance/TenantId or Authority".into())
        })?;
        let client_id = self
            .client_id
            .clone()
            .ok_or_else(|| Error::Config("AzureAd:ClientId is missing".into()))?;
        let mut config = Config::new(authority, client_id);
        config.audiences = self.audiences.clone();
        Ok(config)
    }
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, Error> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s.split_whitespace().map(str::to_owned).collect()),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| s.trim().to_owned())
                    .ok_or_else(|| Error::Config(format!("{what} holds a non-string")))
            })
            .collect(),
        _ => Err(Error::Config(format!(
            "{what} is neither a string nor a list"
        ))),
    }
}

fn groups(value: Option<&Value>, what: &str) -> Result<PermissionGroups, Error> {
    let mut out = PermissionGroups::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, v) in map {
                out.insert(name.clone(), strings(v, &format!("AzureAd:{what}:{name}"))?);
            }
        }
        Some(other) => {
            out.insert(String::new(), strings(other, &format!("AzureAd:{what}"))?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
  "AzureAd": {
    "Instance": "https://idgidentity.ciamlogin.com",
    "TenantId": "b4bde3af-7764-41a1-a6ab-8ee79dd99bc3",
    "ClientId": "13ad4fe2-e0cf-4a73-ab96-aaed1077dd7a",
    "Scopes": {
      "Read": ["ToDoList.Read", "ToDoList.ReadWrite"],
      "Write": ["ToDoList.ReadWrite"]
    },
    "AppPermissions": {
      "Read": ["ToDoList.Read.All", "ToDoList.ReadWrite.All"],
      "Write": ["ToDoList.ReadWrite.All"]
    }
  },
  "https_port": 44351,
  "AllowedHosts": "*"
}"#;

    #[test]
    fn reads_the_dotnet_sample() {
        let s = AzureAdSettings::from_json_str(SAMPLE).unwrap();
        assert_eq!(
            s.client_id.as_deref(),
            Some("13ad4fe2-e0cf-4a73-ab96-aaed1077dd7a")
        );
        assert_eq!(
            s.authority().unwrap().unwrap().as_str(),
            "https://idgidentity.ciamlogin.com/b4bde3af-7764-41a1-a6ab-8ee79dd99bc3/v2.0"
        );
        assert_eq!(s.app_permissions["Write"], ["ToDoList.ReadWrite.All"]);
        assert_eq!(s.scopes["Read"], ["ToDoList.Read", "ToDoList.ReadWrite"]);
        let config = s.to_config().unwrap();
        assert_eq!(
            config.effective_audiences(),
            [
                "13ad4fe2-e0cf-4a73-ab96-aaed1077dd7a",
                "api://13ad4fe2-e0cf-4a73-ab96-aaed1077dd7a"
            ]
        );
    }

    #[test]
    fn tolerates_comments_case_and_trailing_commas() {
        let text = r#"{
            // the API
            "azuread": {
                "authority": "https://login.microsoftonline.com/contoso/v2.0", /* full */
                "clientId": "abc",
                "Audience": "api://abc",
                "Audiences": ["x", "y",],
                "AppPermissions": ["A.All", "B.All"],
                "Scopes": "s1 s2",
                "Note": "not // a comment",
            },
        }"#;
        let s = AzureAdSettings::from_json_str(text).unwrap();
        assert_eq!(s.audiences, ["api://abc", "x", "y"]);
        assert_eq!(s.app_permissions[""], ["A.All", "B.All"]);
        assert_eq!(s.scopes[""], ["s1", "s2"]);
        assert_eq!(
            s.authority().unwrap().unwrap().as_str(),
            "https://login.microsoftonline.com/contoso/v2.0"
        );
    }

    #[test]
    fn missing_section_and_bad_types() {
        assert_eq!(
            AzureAdSettings::from_json_str("{}").unwrap(),
            AzureAdSettings::default()
        );
        assert!(AzureAdSettings::from_json_str(r#"{"AzureAd":{"ClientId":5}}"#).is_err());
        let http = r#"{"AzureAd":{"Instance":"http://x.ciamlogin.com","TenantId":"t"}}"#;
        assert!(
            AzureAdSettings::from_json_str(http)
                .unwrap()
                .authority()
                .is_err()
        );
    }
}
