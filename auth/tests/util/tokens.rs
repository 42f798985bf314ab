//! RSA test keys and token minting.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use super::{CLIENT_ID, DAEMON_ID, DAEMON_OID, TENANT_ID};

/// An RSA-2048 signing key with its `kid` and public JWK parts.
pub struct TestKey {
    /// Key id published in the JWKS and put in token headers.
    pub kid: String,
    encoding: EncodingKey,
    n: String,
    e: String,
}

impl TestKey {
    /// Generates a fresh RSA-2048 key (slow: ~100 ms; prefer [`test_keys`]).
    pub fn generate(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA keygen");
        let encoding = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).expect("PEM");
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("JWK");
        let AlgorithmParameters::RSA(rsa) = jwk.algorithm else {
            unreachable!("RSA key")
        };
        TestKey {
            kid: kid.to_owned(),
            encoding,
            n: rsa.n,
            e: rsa.e,
        }
    }

    /// The public JWK as Entra publishes it, optionally with an `issuer`.
    pub fn jwk(&self, issuer: Option<&str>) -> Value {
        let mut jwk = json!({
            "kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
            "n": self.n, "e": self.e,
        });
        if let Some(issuer) = issuer {
            jwk["issuer"] = json!(issuer);
        }
        jwk
    }

    /// An RS256 token with the usual Entra header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            &json!({"typ": "JWT", "alg": "RS256", "kid": self.kid}),
            claims,
        )
    }

    /// An RS256 signature over an arbitrary header and claims.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&b64_json(header), &b64_json(claims))
    }

    /// An RS256 signature over already encoded header and claims parts.
    pub fn sign_raw(&self, header_b64: &str, claims_b64: &str) -> String {
        let signed = format!("{header_b64}.{claims_b64}");
        let signature =
            jsonwebtoken::crypto::sign(signed.as_bytes(), &self.encoding, Algorithm::RS256)
                .expect("sign");
        format!("{signed}.{signature}")
    }
}

/// base64url of a JSON value.
pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"))
}

/// Three keys made once per test process: `key-1`, `key-2`, `key-3`.
pub fn test_keys() -> &'static [TestKey; 3] {
    static KEYS: OnceLock<[TestKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            TestKey::generate("key-1"),
            TestKey::generate("key-2"),
            TestKey::generate("key-3"),
        ]
    })
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid claims of an app-only v2 token from the daemon, for `issuer`.
pub fn app_claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "aud": CLIENT_ID,
        "iss": issuer,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "aio": "E2RgYDg...",
        "azp": DAEMON_ID,
        "azpacr": "1",
        "idp": issuer,
        "idtyp": "app",
        "oid": DAEMON_OID,
        "rh": "0.AX0A...",
        "roles": ["ToDoList.Read.All"],
        "sub": DAEMON_OID,
        "tid": TENANT_ID,
        "uti": "abc",
        "ver": "2.0",
    })
}
