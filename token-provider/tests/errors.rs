//! Failures users hit, surfaced with AADSTS codes and advice, never with the secret; and
//! the scope check that happens before any request.

use dev_authority::defaults;
use entra_token_provider::{
    Authority, CertificateCredential, Config, Credential, Error, TokenProvider,
};

use crate::util;

#[tokio::test]
async fn a_scope_without_default_is_refused_before_any_request() {
    let authority = util::start().await;
    let daemon = util::settings(&authority, defaults::DAEMON_CLIENT);
    let api_scope = daemon.scope.trim_end_matches("/.default").to_owned();
    for scope in [
        format!("{api_scope}/ToDoList.Read"),
        api_scope.clone(),
        "User.Read".to_owned(),
        format!("{} {}", daemon.scope, daemon.scope),
    ] {
        let mut config = util::secret_config(&authority);
        config.scope = scope.clone();
        let err = TokenProvider::new(config).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidScope { .. }), "{text}");
        assert!(text.contains("/.default"), "{text}");
        if scope.starts_with("api://") {
            assert!(
                text.contains(&daemon.scope),
                "suggests the right scope: {text}"
            );
        } else {
            assert!(text.contains("api://<API client id>/.default"), "{text}");
        }
    }
    let provider = util::secret_provider(&authority);
    assert!(matches!(
        provider.for_scope("api://x/read"),
        Err(Error::InvalidScope { .. })
    ));
    assert_eq!(authority.token_requests(), 0, "no request was made");
}

#[tokio::test]
async fn entra_errors_carry_codes_and_advice_but_never_the_secret() {
    let authority = util::start().await;
    let daemon = util::settings(&authority, defaults::DAEMON_CLIENT);
    let wrong_secret = "Wr0ng~Secret-Value-1234567890";

    // Wrong secret.
    let config = util::config(
        &authority,
        defaults::DAEMON_CLIENT,
        Credential::client_secret(wrong_secret),
    );
    let err = TokenProvider::new(config)
        .unwrap()
        .token()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.aadsts_codes(), &[7000215], "{text}");
    assert!(
        text.contains("AADSTS7000215") && text.contains("check the client secret"),
        "{text}"
    );
    assert!(
        !text.contains(wrong_secret) && !format!("{err:?}").contains(wrong_secret),
        "{text}"
    );
    assert!(!err.is_transient());

    // Unknown client id.
    let mut config = util::secret_config(&authority);
    config.client_id = uuid::Uuid::new_v4().to_string();
    let err = TokenProvider::new(config)
        .unwrap()
        .token()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.aadsts_codes(), &[700016], "{text}");
    assert!(text.contains("not registered in that tenant"), "{text}");
    assert!(
        !text.contains(daemon.client_secret.as_ref().unwrap().expose()),
        "{text}"
    );

    // A scope naming no registered API.
    let mut config = util::secret_config(&authority);
    config.scope = format!("api://{}/.default", uuid::Uuid::new_v4());
    let err = TokenProvider::new(config)
        .unwrap()
        .token()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.aadsts_codes(), &[500011], "{text}");
    assert!(text.contains("check the scope"), "{text}");

    // A tenant that does not exist: discovery answers AADSTS90002.
    let mut config = util::secret_config(&authority);
    config.authority =
        Authority::from_instance(authority.base_url(), "no-such-tenant.example").unwrap();
    let err = TokenProvider::new(config)
        .unwrap()
        .token()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.aadsts_codes(), &[90002], "{text}");
    assert!(text.contains("tenant not found"), "{text}");

    // A certificate not registered for that client (the reader has none).
    let cert = CertificateCredential::from_pem_files(
        daemon.certificate_path.unwrap(),
        daemon.private_key_path.unwrap(),
    )
    .unwrap();
    let config = util::config(
        &authority,
        defaults::READER_CLIENT,
        Credential::Certificate(cert),
    );
    let err = TokenProvider::new(config)
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err.aadsts_codes(), &[700027], "{err}");
    assert!(
        err.to_string().contains("uploaded to the app registration"),
        "{err}"
    );
}

#[tokio::test]
async fn https_and_trust_are_required() {
    let authority = util::start().await;
    // http:// authorities cannot even be expressed.
    let http = authority.base_url().replace("https://", "http://");
    assert!(Authority::from_instance(&http, "t").is_err());
    // Without the development CA, TLS fails: reported as the endpoint being unreachable.
    let mut config = util::secret_config(&authority);
    config.ca_pem = None;
    let err = TokenProvider::new(config)
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // Empty secrets and client ids are configuration errors.
    let s = util::settings(&authority, defaults::DAEMON_CLIENT);
    let a = Authority::parse(&s.authority).unwrap();
    let empty = Config::new(
        a.clone(),
        &s.client_id,
        Credential::client_secret(" "),
        &s.scope,
    );
    assert!(matches!(TokenProvider::new(empty), Err(Error::Config(_))));
    let no_id = Config::new(a, " ", Credential::client_secret("x"), &s.scope);
    assert!(matches!(TokenProvider::new(no_id), Err(Error::Config(_))));
    assert_eq!(authority.token_requests(), 0);
}
