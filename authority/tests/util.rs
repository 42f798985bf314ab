//! Test helpers: start an authority, an HTTPS client trusting its CA, token requests,
//! Entra error assertions, JWKS verification and client assertions.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dev_authority::{AccessTokenClaims, Config, DevAuthority, defaults};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

/// Starts an ephemeral authority on 127.0.0.1:0.
pub(crate) async fn start() -> DevAuthority {
    start_with(Config::ephemeral()).await
}

pub(crate) async fn start_with(config: Config) -> DevAuthority {
    DevAuthority::start(config).await.expect("authority starts")
}

/// An HTTPS client that trusts only the authority's CA.
pub(crate) fn http(authority: &DevAuthority) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(authority.ca_pem().as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// POSTs a form to the token endpoint.
pub(crate) async fn post_token(
    authority: &DevAuthority,
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    post_token_to(authority, &authority.token_endpoint(), form).await
}

pub(crate) async fn post_token_to(
    authority: &DevAuthority,
    url: &str,
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let response = http(authority)
        .post(url)
        .form(form)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.expect("JSON body");
    (status, headers, body)
}

/// The daemon's (client id, secret, scope).
pub(crate) fn daemon(authority: &DevAuthority) -> (String, String, String) {
    client(authority, defaults::DAEMON_CLIENT)
}

pub(crate) fn client(authority: &DevAuthority, name: &str) -> (String, String, String) {
    let s = authority.client_settings(name).expect("client settings");
    let secret = s.client_secret.expect("a secret").expose().to_owned();
    (s.client_id, secret, s.scope)
}

/// Asserts Entra's error shape, the AADSTS code, the OAuth error and the HTTP status.
pub(crate) fn assert_aad_error(
    (status, _, body): &(reqwest::StatusCode, reqwest::header::HeaderMap, Value),
    code: u64,
    error: &str,
    http_status: u16,
) {
    assert_eq!(status.as_u16(), http_status, "status for {body}");
    assert_eq!(body["error"], error, "error for {body}");
    assert_eq!(
        body["error_codes"],
        serde_json::json!([code]),
        "codes for {body}"
    );
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for line in ["\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "] {
        assert!(description.contains(line), "{description}");
    }
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
    assert!(description.contains(body["trace_id"].as_str().unwrap()));
}

/// Verifies a token with the JWKS fetched over HTTPS and returns its claims.
pub(crate) async fn verify(authority: &DevAuthority, token: &str) -> (Header, AccessTokenClaims) {
    let jwks: Value = http(authority)
        .get(authority.endpoints().jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    verify_with(authority, &jwks, token).unwrap_or_else(|e| panic!("token does not verify: {e}"))
}

pub(crate) fn verify_with(
    authority: &DevAuthority,
    jwks: &Value,
    token: &str,
) -> Result<(Header, AccessTokenClaims), String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.clone().ok_or("no kid")?;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or_else(|| format!("kid {kid} not in JWKS"))?;
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[authority.issuer()]);
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<AccessTokenClaims>(token, &decoding, &validation)
        .map_err(|e| e.to_string())?;
    Ok((data.header, data.claims))
}

/// A test client certificate (RSA 2048) with its key, made once per test run.
pub(crate) struct TestCert {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) der: Vec<u8>,
}

pub(crate) fn test_cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["test-daemon".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    })
}

/// Registers the test certificate for the daemon.
pub(crate) fn register_test_cert(authority: &DevAuthority) {
    let pem = test_cert().cert_pem.clone();
    authority
        .update_registrations(|r| {
            r.clients
                .iter_mut()
                .find(|c| c.name == defaults::DAEMON_CLIENT)
                .unwrap()
                .certificates
                .push(pem)
        })
        .expect("registration update");
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// How to shape a test assertion.
pub(crate) struct AssertionSpec {
    pub(crate) alg: Algorithm,
    pub(crate) aud: String,
    pub(crate) iss: String,
    pub(crate) jti: String,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
}

impl AssertionSpec {
    /// MSAL's shape: PS256 with x5t#S256, 10 minutes, fresh jti.
    pub(crate) fn new(authority: &DevAuthority, client_id: &str) -> Self {
        let now = now();
        AssertionSpec {
            alg: Algorithm::PS256,
            aud: authority.token_endpoint(),
            iss: client_id.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + 600,
        }
    }

    pub(crate) fn sign(&self, cert: &TestCert) -> String {
        use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
        let mut header = Header::new(self.alg);
        header.typ = Some("JWT".into());
        match self.alg {
            Algorithm::PS256 => {
                header.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, &cert.der)))
            }
            _ => {
                header.x5t =
                    Some(URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, &cert.der)))
            }
        }
        let claims = serde_json::json!({
            "aud": self.aud, "iss": self.iss, "sub": self.iss, "jti": self.jti,
            "iat": self.iat, "nbf": self.iat, "exp": self.exp,
        });
        let key = EncodingKey::from_rsa_pem(cert.key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }
}

/// Form of an assertion token request.
pub(crate) fn assertion_form<'a>(
    client_id: &'a str,
    scope: &'a str,
    jwt: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("scope", scope),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", jwt),
    ]
}
