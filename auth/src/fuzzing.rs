//! FUZZING ONLY. Compiled only with `--cfg fuzzing` (which `cargo fuzz` and
//! `fuzz/run.sh` set); absent from every normal build, so nothing here can
//! weaken a production path.
//!
//! [`StaticValidator`] runs the checks of [`Validator::validate`] without a
//! network: keys come from a JWKS document in memory and the clock is a
//! parameter, so a fuzz target is deterministic. It calls the same functions
//! as production, in the same order (size check, [`token::split`],
//! [`token::header_kid`], `Policy::check`); only the key lookup differs: an
//! unknown `kid` cannot trigger a refresh, and there is no cache.
//!
//! [`Validator::validate`]: crate::Validator::validate

use std::collections::HashMap;

use crate::error::echo;
use crate::layer::bearer_token;
use crate::metadata::{Jwks, SigningKey};
use crate::policy::Policy;
use crate::{Caller, Config, Error, token};

/// A validator over a fixed key set and issuer. See the module docs.
pub struct StaticValidator {
    policy: Policy,
    issuer: String,
    keys: HashMap<String, SigningKey>,
}

impl StaticValidator {
    /// Checks tokens as `config` says (audiences, skew, size, allow-list),
    /// against the metadata `issuer` and the keys of the JWKS document `jwks`.
    pub fn new(config: &Config, issuer: &str, jwks: &[u8]) -> Result<Self, Error> {
        let keys = signing_keys(jwks).ok_or_else(|| Error::Config("JWKS is not JSON".into()))?;
        Ok(StaticValidator {
            policy: Policy::new(config),
            issuer: issuer.to_owned(),
            keys,
        })
    }

    /// Validates `token` as if the time were `now` (Unix seconds).
    pub fn validate(&self, token: &str, now: i64) -> Result<Caller, Error> {
        self.policy.check_size(token)?;
        let parts = token::split(token)?;
        let kid = token::header_kid(parts.header)?;
        let Some(key) = self.keys.get(&kid) else {
            return Err(Error::UnknownSigningKey { kid: echo(&kid) });
        };
        self.policy
            .check(&parts, &kid, key, &self.issuer, now)
            .map(|checked| checked.caller)
    }
}

/// The token of the request's one `authorization: Bearer …` header, exactly
/// as the tower layer reads it.
pub fn bearer(headers: &http::HeaderMap) -> Result<&str, Error> {
    bearer_token(headers)
}

/// The number of usable RS256 keys in a JWKS document (`None`: not a JWKS).
pub fn jwks_key_count(jwks: &[u8]) -> Option<usize> {
    signing_keys(jwks).map(|keys| keys.len())
}

fn signing_keys(jwks: &[u8]) -> Option<HashMap<String, SigningKey>> {
    let jwks: Jwks = serde_json::from_slice(jwks).ok()?;
    Some(jwks.signing_keys())
}
