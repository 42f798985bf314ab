//! Helpers: start a development authority, build provider configurations for its
//! registered clients, decode token claims, make client assertions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dev_authority::{ClientSettings, DevAuthority, defaults};
use entra_token_provider::{Authority, Config, Credential, RetryPolicy, TokenProvider};
use serde_json::Value;

/// Starts an ephemeral authority on 127.0.0.1:0 with Entra-like token lifetimes.
pub(crate) async fn start() -> DevAuthority {
    start_with(dev_authority::Config::ephemeral()).await
}

/// Starts an authority whose tokens live `lifetime`.
pub(crate) async fn start_with_lifetime(lifetime: Duration) -> DevAuthority {
    start_with(dev_authority::Config::ephemeral().token_lifetime(lifetime)).await
}

pub(crate) async fn start_with(config: dev_authority::Config) -> DevAuthority {
    DevAuthority::start(config).await.expect("authority starts")
}

/// The registered settings of `client` (`daemon`, `reader`).
pub(crate) fn settings(authority: &DevAuthority, client: &str) -> ClientSettings {
    authority.client_settings(client).expect("client settings")
}

/// A configuration for `client` with `credential`, trusting the authority's CA, with
/// fast retries so fault tests stay short.
pub(crate) fn config(authority: &DevAuthority, client: &str, credential: Credential) -> Config {
    let s = settings(authority, client);
    Config::new(
        Authority::parse(&s.authority).expect("authority URL"),
        s.client_id,
        credential,
        s.scope,
    )
    .with_ca_pem(authority.ca_pem().as_bytes().to_vec())
    .with_retry(
        RetryPolicy::attempts(3)
            .with_backoff(Duration::from_millis(50), Duration::from_millis(200))
            .with_max_retry_after_wait(Duration::from_secs(5)),
    )
}

/// The daemon's client-secret configuration.
pub(crate) fn secret_config(authority: &DevAuthority) -> Config {
    let secret = settings(authority, defaults::DAEMON_CLIENT)
        .client_secret
        .expect("the daemon has a secret");
    config(
        authority,
        defaults::DAEMON_CLIENT,
        Credential::client_secret(secret.expose()),
    )
}

/// A provider for the daemon with its secret.
pub(crate) fn secret_provider(authority: &DevAuthority) -> TokenProvider {
    TokenProvider::new(secret_config(authority)).expect("provider")
}

/// The JWT payload of `token`.
pub(crate) fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// The JWT header of `token`.
pub(crate) fn header(token: &str) -> Value {
    let header = token.split('.').next().expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}

/// An RS256 client assertion signed by the daemon's certificate, made independently of the
/// library (a test oracle), as a federated-token issuer would write it to a file.
pub(crate) fn daemon_assertion(authority: &DevAuthority) -> String {
    use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
    let s = settings(authority, defaults::DAEMON_CLIENT);
    let cert_pem =
        std::fs::read_to_string(s.certificate_path.expect("daemon certificate")).unwrap();
    let key_pem = std::fs::read(s.private_key_path.expect("daemon key")).unwrap();
    let der = pem_der(&cert_pem);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = Some(URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, &der)));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "aud": authority.token_endpoint(),
        "iss": s.client_id,
        "sub": s.client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now, "iat": now, "exp": now + 300,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&key_pem).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// The DER of the first certificate in `pem`.
pub(crate) fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}
