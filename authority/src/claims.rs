//! The v2 app-only access-token claim set, and signing it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::keys::KeySet;
use crate::{Api, ClientApp, Error, Registrations};

/// Claims of an app-only v2 access token, in Entra's order and shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The API's client id (GUID).
    pub aud: String,
    /// `https://{host:port}/{tenant id}/v2.0`.
    pub iss: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Opaque Entra-internal value.
    pub aio: String,
    /// The client's application id.
    pub azp: String,
    /// How the client authenticated: `"1"` secret, `"2"` certificate.
    pub azpacr: String,
    /// Identity provider: the issuer for app tokens.
    pub idp: String,
    /// `"app"`, only when the API asks for the optional claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idtyp: Option<String>,
    /// The client's service-principal object id.
    pub oid: String,
    /// Opaque Entra-internal value.
    pub rh: String,
    /// App roles granted to the client on this API; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Equals `oid` for app tokens.
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Unique token id.
    pub uti: String,
    /// `"2.0"`.
    pub ver: String,
}

/// How the client proved its identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    Secret,
    Certificate,
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

impl AccessTokenClaims {
    /// The claims Entra would issue to `client` for `api`, valid `lifetime_secs` from `now`.
    pub(crate) fn build(
        regs: &Registrations,
        client: &ClientApp,
        api: &Api,
        issuer: &str,
        auth: ClientAuth,
        now: i64,
        lifetime_secs: i64,
    ) -> Self {
        let roles = regs.roles(client, api);
        let oid = client.object_id.to_string();
        AccessTokenClaims {
            aud: api.client_id.to_string(),
            iss: issuer.to_owned(),
            iat: now,
            nbf: now,
            exp: now + lifetime_secs,
            aio: random_b64(48),
            azp: client.client_id.to_string(),
            azpacr: match auth {
                ClientAuth::Secret => "1",
                ClientAuth::Certificate => "2",
            }
            .into(),
            idp: issuer.to_owned(),
            idtyp: api.emit_idtyp.then(|| "app".to_owned()),
            oid: oid.clone(),
            rh: format!("0.A{}.", random_b64(42)),
            roles: (!roles.is_empty()).then_some(roles),
            sub: oid,
            tid: regs.tenant.id.to_string(),
            uti: random_b64(16),
            ver: "2.0".into(),
        }
    }
}

/// Signs `header_json` and `payload_json` exactly as given (each base64url
/// encoded, byte for byte) with the current key, RS256, whatever the header
/// says. For hostile-input tests only: odd headers, duplicate claims, wrong
/// JSON types.
pub(crate) fn sign_raw(
    keys: &KeySet,
    header_json: &str,
    payload_json: &str,
) -> Result<String, Error> {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(payload_json)
    );
    let signature = jsonwebtoken::crypto::sign(
        signed.as_bytes(),
        &keys.current().encoding,
        Algorithm::RS256,
    )?;
    Ok(format!("{signed}.{signature}"))
}

/// Signs any claims with the current key: RS256, `typ: JWT`, `kid`.
pub(crate) fn sign<T: Serialize>(keys: &KeySet, claims: &T) -> Result<String, Error> {
    let key = keys.current();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".into());
    header.kid = Some(key.kid.clone());
    Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
}
