//! The .NET sample's client `appsettings.json`, merged with flags, driving a real token
//! request.

use std::path::PathBuf;

use dev_authority::defaults;
use entra_token_provider::{ClientSecret, CredentialSource, DaemonSettings, Error};

use crate::util;

/// Shaped like `ToDoListClient/appsettings.json` of Microsoft's daemon sample, with a
/// comment and a trailing comma as .NET tolerates.
const SAMPLE: &str = r#"{
    "AzureAd": {
        // CIAM tenant
        "Instance": "https://contoso.ciamlogin.com/",
        "TenantId": "aaaabbbb-0000-cccc-1111-dddd2222eeee",
        "ClientId": "00001111-aaaa-2222-bbbb-3333cccc4444",
        "ClientCredentials": [
            {
                "SourceType": "ClientSecret",
                "ClientSecret": "A1b~SampleSecretValue"
            },
            {
                "SourceType": "Path",
                "CertificateDiskPath": "certs/daemon.pem",
                "CertificatePassword": "pfx-password"
            },
        ]
    },
    "DownstreamApi": {
        "BaseUrl": "https://localhost:44351/",
        "RelativePath": "api/todolist",
        "RequestAppToken": true,
        "Scopes": [ "api://11112222-bbbb-3333-cccc-4444dddd5555/.default" ]
    }
}"#;

#[test]
fn parses_the_sample_shaped_file() {
    let s = DaemonSettings::from_json_str(SAMPLE).unwrap();
    assert_eq!(
        s.instance.as_deref(),
        Some("https://contoso.ciamlogin.com/")
    );
    assert_eq!(
        s.tenant_id.as_deref(),
        Some("aaaabbbb-0000-cccc-1111-dddd2222eeee")
    );
    assert_eq!(
        s.client_id.as_deref(),
        Some("00001111-aaaa-2222-bbbb-3333cccc4444")
    );
    assert_eq!(s.base_url.as_deref(), Some("https://localhost:44351/"));
    assert_eq!(
        s.scopes,
        ["api://11112222-bbbb-3333-cccc-4444dddd5555/.default"]
    );
    assert_eq!(
        s.credentials,
        [
            CredentialSource::ClientSecret(ClientSecret::new("A1b~SampleSecretValue")),
            CredentialSource::CertificatePath {
                path: PathBuf::from("certs/daemon.pem"),
                private_key_path: None,
                password: Some(ClientSecret::new("pfx-password")),
            },
        ]
    );
    assert_eq!(
        s.authority().unwrap().as_str(),
        "https://contoso.ciamlogin.com/aaaabbbb-0000-cccc-1111-dddd2222eeee/v2.0"
    );
    let config = s.to_config().unwrap();
    assert_eq!(
        config.scope,
        "api://11112222-bbbb-3333-cccc-4444dddd5555/.default"
    );
    // Secrets do not show in Debug.
    let shown = format!("{s:?} {config:?}");
    assert!(
        !shown.contains("A1b~Sample") && !shown.contains("pfx-password"),
        "{shown}"
    );

    // Microsoft's sample names the section "ToDoApi" and keys are case-insensitive.
    let todo = SAMPLE
        .replace("\"DownstreamApi\"", "\"ToDoApi\"")
        .replace("\"Scopes\"", "\"scopes\"");
    let s = DaemonSettings::from_json_section(&todo, "ToDoApi").unwrap();
    assert_eq!(s.scopes.len(), 1);
    // A scope string is split on spaces; a non-.default scope is refused.
    let one = SAMPLE.replace(
        r#"[ "api://11112222-bbbb-3333-cccc-4444dddd5555/.default" ]"#,
        r#""api://11112222-bbbb-3333-cccc-4444dddd5555/ToDo.Read""#,
    );
    let err = DaemonSettings::from_json_str(&one)
        .unwrap()
        .scope()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidScope { .. }), "{err}");
}

#[test]
fn flags_override_the_file() {
    let file = DaemonSettings::from_json_str(SAMPLE).unwrap();
    let mut flags = DaemonSettings::default();
    flags.authority = Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0".into());
    flags.scopes = vec!["api://other/.default".into()];
    let merged = file.clone().merge(flags);
    assert_eq!(
        merged.authority().unwrap().as_str(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
    );
    assert_eq!(merged.scopes, ["api://other/.default"]);
    assert_eq!(
        merged.client_id, file.client_id,
        "unset flags keep the file's values"
    );
    assert_eq!(merged.credentials, file.credentials);

    let mut flags = DaemonSettings::default();
    flags.tenant_id = Some("fabrikam.onmicrosoft.com".into());
    let merged = file.merge(flags);
    assert_eq!(
        merged.authority().unwrap().as_str(),
        "https://contoso.ciamlogin.com/fabrikam.onmicrosoft.com/v2.0"
    );
}

#[test]
fn unusable_credentials_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("appsettings.json");
    let text = SAMPLE
        .replace(
            "\"SourceType\": \"ClientSecret\"",
            "\"SourceType\": \"KeyVault\"",
        )
        .replace("certs/daemon.pem", "daemon.pfx");
    std::fs::write(&path, text).unwrap();
    let s = DaemonSettings::from_file(&path).unwrap();
    // Relative paths are resolved against the file's folder.
    let CredentialSource::CertificatePath { path: cert, .. } = &s.credentials[1] else {
        panic!("{:?}", s.credentials)
    };
    assert_eq!(cert, &dir.path().join("daemon.pfx"));
    let err = s.credential().unwrap_err().to_string();
    assert!(err.contains("\"KeyVault\" is not supported"), "{err}");
    assert!(
        err.contains("PKCS#12") && err.contains("openssl pkcs12"),
        "{err}"
    );
    assert!(!err.contains("pfx-password"), "{err}");
}

#[tokio::test]
async fn a_settings_file_drives_a_real_token_request() {
    let authority = util::start().await;
    let daemon = util::settings(&authority, defaults::DAEMON_CLIENT);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("appsettings.json");
    let (instance, tenant) = daemon.authority.rsplit_once('/').unwrap();
    let json = serde_json::json!({
        "AzureAd": {
            "Instance": instance,
            "TenantId": tenant,
            "ClientId": daemon.client_id,
            "ClientCredentials": [{
                "SourceType": "Path",
                "CertificateDiskPath": daemon.certificate_path.as_ref().unwrap(),
                "PrivateKeyPath": daemon.private_key_path.as_ref().unwrap(),
            }]
        },
        "DownstreamApi": { "BaseUrl": "https://127.0.0.1:1/", "Scopes": [daemon.scope] }
    });
    std::fs::write(&path, json.to_string()).unwrap();
    let mut flags = DaemonSettings::default();
    flags.ca_file = Some(authority.ca_path().to_owned());
    let provider = DaemonSettings::from_file(&path)
        .unwrap()
        .merge(flags)
        .provider()
        .unwrap();
    let token = provider.token().await.expect("token from appsettings.json");
    let claims = util::claims(token.expose_secret());
    assert_eq!(claims["azp"], daemon.client_id.as_str());
    assert_eq!(claims["azpacr"], "2");
    assert_eq!(util::header(token.expose_secret())["alg"], "RS256");
}

/// The development authority writes its own appsettings.json in the sample's
/// shape (`AzureAd`, `DownstreamApi:Scopes`); only the CA comes from a flag.
#[tokio::test]
async fn the_dev_authority_appsettings_work_as_written() {
    let authority = util::start().await;
    let daemon = util::settings(&authority, defaults::DAEMON_CLIENT);
    let file = DaemonSettings::from_json_str(&daemon.to_appsettings_json()).unwrap();
    assert_eq!(file.client_id.as_deref(), Some(daemon.client_id.as_str()));
    assert_eq!(file.scopes, vec![daemon.scope.clone()]);
    let mut flags = DaemonSettings::default();
    flags.ca_file = Some(daemon.ca_path.clone());
    let token = file.merge(flags).provider().unwrap().token().await.unwrap();
    // The first credential listed (the secret) is used.
    assert_eq!(util::claims(token.expose_secret())["azpacr"], "1");
}
