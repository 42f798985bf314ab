//! The checks of one token against one key set: signature, times, issuer,
//! audience, roles. No I/O and no clock: the [`Validator`](crate::Validator)
//! chooses the key set (refreshing it on an unknown `kid`), passes the time,
//! and caches what passed.

use jsonwebtoken::Algorithm;

use crate::error::echo;
use crate::metadata::SigningKey;
use crate::token::{self, Parts};
use crate::{Caller, Config, Error};

/// What a token must satisfy, from the [`Config`].
pub(crate) struct Policy {
    audiences: Vec<String>,
    allowed_client_ids: Option<Vec<String>>,
    /// Tolerated clock skew in seconds (bounded, so time sums cannot overflow).
    pub(crate) skew: i64,
    max_token_bytes: usize,
}

/// A token that passed every check.
pub(crate) struct Checked {
    pub(crate) caller: Caller,
    pub(crate) exp: i64,
    pub(crate) nbf: Option<i64>,
}

/// Largest clock skew honoured: a century. Larger settings are clamped so
/// that `now ± skew` never overflows.
const MAX_SKEW_SECS: i64 = 100 * 365 * 24 * 3600;

impl Policy {
    pub(crate) fn new(config: &Config) -> Self {
        Policy {
            audiences: config.effective_audiences(),
            allowed_client_ids: config.allowed_client_ids.clone(),
            skew: i64::try_from(config.clock_skew.as_secs())
                .unwrap_or(MAX_SKEW_SECS)
                .min(MAX_SKEW_SECS),
            max_token_bytes: config.max_token_bytes,
        }
    }

    pub(crate) fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The first check, before anything is parsed.
    pub(crate) fn check_size(&self, token: &str) -> Result<(), Error> {
        if token.len() > self.max_token_bytes {
            return Err(Error::TokenTooLarge {
                size: token.len(),
                max: self.max_token_bytes,
            });
        }
        Ok(())
    }

    /// Whether `azp` is on the ACL allow-list.
    pub(crate) fn is_allow_listed(&self, azp: &str) -> bool {
        self.allowed_client_ids
            .as_ref()
            .is_some_and(|ids| ids.iter().any(|id| id == azp))
    }

    /// Verifies the RS256 signature of `parts` with `key` (the key named by
    /// the header's `kid`), then checks the claims at `now` (Unix seconds)
    /// against `issuer` (the metadata issuer, which may hold `{tenantid}`).
    pub(crate) fn check(
        &self,
        parts: &Parts<'_>,
        kid: &str,
        key: &SigningKey,
        issuer: &str,
        now: i64,
    ) -> Result<Checked, Error> {
        let verified = jsonwebtoken::crypto::verify(
            parts.signature,
            parts.signed.as_bytes(),
            &key.key,
            Algorithm::RS256,
        );
        if !matches!(verified, Ok(true)) {
            return Err(Error::InvalidSignature { kid: echo(kid) });
        }

        let claims = token::claims(parts.payload)?;
        // Claims are signed by the authority but still untrusted input to
        // arithmetic: a NumericDate may be any i64, hence saturating sums.
        let exp = claims.exp()?;
        if exp <= now.saturating_sub(self.skew) {
            return Err(Error::Expired {
                exp,
                ago: now.saturating_sub(exp),
                skew: self.skew.unsigned_abs(),
            });
        }
        let nbf = claims.nbf()?;
        if let Some(nbf) = nbf.filter(|nbf| *nbf > now.saturating_add(self.skew)) {
            return Err(Error::NotYetValid {
                nbf,
                wait: nbf.saturating_sub(now),
                skew: self.skew.unsigned_abs(),
            });
        }
        check_issuer(claims.iss()?, claims.tid()?, issuer, key.issuer.as_deref())?;
        self.check_audience(&claims.aud()?)?;

        let roles = claims.roles()?;
        let scopes = claims.scopes()?;
        let azp = claims.azp()?;
        if roles.is_empty() && scopes.is_empty() && !self.is_allow_listed(azp) {
            return Err(Error::MissingRoles);
        }
        let app_only = match claims.idtyp()? {
            Some(idtyp) => idtyp == "app",
            None => !roles.is_empty() && scopes.is_empty(),
        };
        let caller = Caller {
            oid: claims.oid()?.to_owned(),
            tid: claims.tid()?.to_owned(),
            azp: azp.to_owned(),
            roles,
            scopes,
            app_only,
        };
        Ok(Checked { caller, exp, nbf })
    }

    fn check_audience(&self, aud: &[&str]) -> Result<(), Error> {
        let accepted = &self.audiences;
        if aud.iter().any(|a| accepted.iter().any(|x| x == a)) {
            return Ok(());
        }
        let found: Vec<String> = aud.iter().take(4).map(|a| echo(a)).collect();
        Err(Error::InvalidAudience {
            found: found.join(", "),
            accepted: accepted.join(", "),
        })
    }
}

/// `iss` must be the metadata issuer (with `{tenantid}` replaced by `tid`),
/// must name `tid` (as a path segment or the host's first label), and must
/// match the key's own issuer when the JWKS gives one.
fn check_issuer(iss: &str, tid: &str, metadata: &str, key: Option<&str>) -> Result<(), Error> {
    let invalid = |expected: String| Error::InvalidIssuer {
        found: echo(iss),
        expected,
    };
    let expected = metadata.replace("{tenantid}", tid);
    if iss != expected {
        return Err(invalid(echo(&expected)));
    }
    let rest = iss.split_once("://").map_or(iss, |(_, rest)| rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let names_tid = host.split('.').next() == Some(tid) || path.split('/').any(|s| s == tid);
    if !names_tid {
        return Err(invalid(format!("an issuer of tenant {} (tid)", echo(tid))));
    }
    if let Some(key_issuer) = key {
        let key_issuer = key_issuer.replace("{tenantid}", tid);
        if iss != key_issuer {
            return Err(invalid(format!(
                "{} (the signing key's issuer)",
                echo(&key_issuer)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_issuer;

    #[test]
    fn issuer_rules() {
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let workforce = format!("https://login.microsoftonline.com/{tid}/v2.0");
        assert!(check_issuer(&workforce, tid, &workforce, None).is_ok());
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(check_issuer(&workforce, tid, template, Some(template)).is_ok());
        // Template filled with another tenant's tid does not match.
        assert!(check_issuer(&workforce, "other", template, None).is_err());
        // A fixed issuer that does not name the tid.
        let fixed = "https://login.microsoftonline.com/common/v2.0";
        assert!(check_issuer(fixed, tid, fixed, None).is_err());
        // CIAM: the tenant GUID is the host's first label.
        let ciam = format!("https://{tid}.ciamlogin.com/{tid}/v2.0");
        assert!(check_issuer(&ciam, tid, &ciam, None).is_ok());
        // Key issuer disagrees.
        assert!(check_issuer(&workforce, tid, &workforce, Some("https://evil/")).is_err());
    }
}
