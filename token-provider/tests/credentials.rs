//! Each credential end to end: tokens obtained from the development authority, claims
//! checked (`azp`, `roles`, `azpacr`).

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dev_authority::defaults;
use entra_token_provider::{
    CertificateCredential, ClientSecret, Credential, Error, PrivateKeyPem, TokenProvider,
};

use crate::util;

#[tokio::test]
async fn client_secret_gets_an_app_token() {
    let authority = util::start().await;
    let provider = util::secret_provider(&authority);
    let token = provider.token().await.expect("token");
    let claims = util::claims(token.expose_secret());
    let daemon = util::settings(&authority, defaults::DAEMON_CLIENT);
    assert_eq!(claims["azp"], daemon.client_id.as_str());
    assert_eq!(claims["azpacr"], "1");
    assert_eq!(
        claims["roles"],
        serde_json::json!([defaults::READ_WRITE_ROLE])
    );
    assert_eq!(claims["idtyp"], "app");
    assert!(token.expires_in().as_secs() > 3000, "{token:?}");
    // Cached: a second call makes no request.
    let again = provider.token().await.unwrap();
    assert!(again.same_token(&token));
    assert_eq!(authority.token_requests(), 1);
    // The Debug of a token and a provider shows no secret.
    let secret = daemon.client_secret.unwrap();
    let shown = format!("{token:?} {provider:?}");
    assert!(
        !shown.contains(token.expose_secret()) && !shown.contains(secret.expose()),
        "{shown}"
    );
}

#[tokio::test]
async fn certificate_gets_an_app_token() {
    let authority = util::start().await;
    let daemon = util::settings(&authority, defaults::DAEMON_CLIENT);
    let cert = daemon.certificate_path.clone().unwrap();
    let key = daemon.private_key_path.clone().unwrap();
    let credential = CertificateCredential::from_pem_files(&cert, &key).expect("certificate");
    let der = util::pem_der(&std::fs::read_to_string(&cert).unwrap());
    assert_eq!(
        credential.thumbprint_sha256(),
        URL_SAFE_NO_PAD.encode(digest(&SHA256, &der))
    );
    let shown = format!("{credential:?}");
    assert!(
        shown.contains("[redacted]") && !shown.contains("PRIVATE"),
        "{shown}"
    );

    for send_x5c in [false, true] {
        let config = util::config(
            &authority,
            defaults::DAEMON_CLIENT,
            Credential::Certificate(credential.clone().with_x5c(send_x5c)),
        );
        let token = TokenProvider::new(config)
            .unwrap()
            .token()
            .await
            .expect("token");
        let claims = util::claims(token.expose_secret());
        assert_eq!(claims["azp"], daemon.client_id.as_str());
        assert_eq!(claims["azpacr"], "2");
        assert_eq!(
            claims["roles"],
            serde_json::json!([defaults::READ_WRITE_ROLE])
        );
    }
    // Fresh assertions (new jti) each time: the authority rejects replays, so repeated
    // forced refreshes prove it.
    let provider = TokenProvider::new(util::config(
        &authority,
        defaults::DAEMON_CLIENT,
        Credential::Certificate(credential),
    ))
    .unwrap();
    for _ in 0..3 {
        provider
            .refresh()
            .await
            .expect("a new assertion per request");
    }
}

#[tokio::test]
async fn certificate_and_key_in_one_pem_file() {
    let authority = util::start().await;
    let daemon = util::settings(&authority, defaults::DAEMON_CLIENT);
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("daemon.pem");
    let text = std::fs::read_to_string(daemon.certificate_path.unwrap()).unwrap()
        + &std::fs::read_to_string(daemon.private_key_path.unwrap()).unwrap();
    std::fs::write(&both, text).unwrap();
    let credential = Credential::certificate_pem_file(&both).expect("one-file PEM");
    let token = TokenProvider::new(util::config(
        &authority,
        defaults::DAEMON_CLIENT,
        credential,
    ))
    .unwrap()
    .token()
    .await
    .unwrap();
    assert_eq!(util::claims(token.expose_secret())["azpacr"], "2");
}

#[test]
fn certificate_problems_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    // A key that does not belong to the certificate.
    let a = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let b = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["daemon".into()])
        .unwrap()
        .self_signed(&a)
        .unwrap();
    let err = CertificateCredential::from_pem(&cert.pem(), &PrivateKeyPem::new(b.serialize_pem()))
        .unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
    let ok = CertificateCredential::from_pem(&cert.pem(), &PrivateKeyPem::new(a.serialize_pem()));
    assert!(ok.is_ok(), "{ok:?}");
    // EC keys cannot sign PS256.
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec_cert = rcgen::CertificateParams::new(vec!["d".into()])
        .unwrap()
        .self_signed(&ec)
        .unwrap();
    let err =
        CertificateCredential::from_pem(&ec_cert.pem(), &PrivateKeyPem::new(ec.serialize_pem()))
            .unwrap_err();
    assert!(matches!(err, Error::Credential(_)), "{err}");
    // PKCS#12 is reported as unsupported, with the conversion command.
    let pfx = dir.path().join("daemon.pfx");
    std::fs::write(&pfx, [0x30, 0x82, 0x01, 0x00]).unwrap();
    let err = CertificateCredential::from_pem_file(&pfx)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not supported") && err.contains("openssl pkcs12"),
        "{err}"
    );
    // A file with no key.
    let only_cert = dir.path().join("cert.pem");
    std::fs::write(&only_cert, cert.pem()).unwrap();
    let err = CertificateCredential::from_pem_file(&only_cert)
        .unwrap_err()
        .to_string();
    assert!(err.contains("PRIVATE KEY"), "{err}");
    // An encrypted key.
    let enc = dir.path().join("enc.pem");
    std::fs::write(
        &enc,
        format!(
            "{}-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
            cert.pem()
        ),
    )
    .unwrap();
    let err = CertificateCredential::from_pem_file(&enc)
        .unwrap_err()
        .to_string();
    assert!(err.contains("encrypted"), "{err}");
    assert!(!format!("{:?}", ClientSecret::new("s3cr3t")).contains("s3cr3t"));
}

/// The development authority has no federated-credential registrations, so the "federated"
/// token here is a certificate-signed client assertion written to the file, as a token
/// issuer would. It proves the file is re-read and sent as `client_assertion` on every
/// request: the authority rejects a re-used assertion (`jti` replay), so a second token
/// request succeeds only if the rewritten file was read again.
#[tokio::test]
async fn federated_token_file_is_read_on_every_request() {
    let authority = util::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, util::daemon_assertion(&authority) + "\n").unwrap();
    let provider = TokenProvider::new(util::config(
        &authority,
        defaults::DAEMON_CLIENT,
        Credential::federated_token_file(&file),
    ))
    .unwrap();
    let first = provider
        .token()
        .await
        .expect("token from the federated file");
    assert_eq!(util::claims(first.expose_secret())["azpacr"], "2");

    // The same assertion again: the authority refuses the replay (so it was sent as is).
    let err = provider.refresh().await.unwrap_err();
    assert_eq!(err.aadsts_codes(), &[700027], "{err}");

    // The platform rotates the file: the next request reads the new assertion.
    std::fs::write(&file, util::daemon_assertion(&authority)).unwrap();
    let second = provider.refresh().await.expect("re-read file");
    assert!(!second.same_token(&first));
    assert_eq!(authority.token_requests(), 3);

    // A broken file: the error names the file, not its contents.
    std::fs::write(&file, "not a jwt but SECRETISH").unwrap();
    let err = provider.refresh().await.unwrap_err().to_string();
    assert!(
        err.contains("does not hold a JWT") && !err.contains("SECRETISH"),
        "{err}"
    );
    std::fs::remove_file(&file).unwrap();
    let err = provider.refresh().await.unwrap_err().to_string();
    assert!(err.contains("federated token file"), "{err}");
    // A cached token is still served meanwhile.
    assert!(provider.token().await.unwrap().same_token(&second));
}
