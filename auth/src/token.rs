//! Reading a compact JWS: its three parts, the header, and typed claims.
//!
//! Nothing here checks the signature; callers verify it before trusting any
//! claim. Claims are read into a struct with one field per claim used, so a
//! duplicated claim is an error, and every claim's JSON type is checked with
//! a message naming the claim.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use crate::Error;
use crate::error::echo;

/// The parts of `header.payload.signature`.
pub(crate) struct Parts<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// `header.payload`, the signed bytes.
    pub(crate) signed: &'a str,
}

pub(crate) fn split(token: &str) -> Result<Parts<'_>, Error> {
    let count = token.split('.').count();
    if count == 5 {
        return Err(Error::Malformed(
            "token is encrypted (JWE); send a signed access token".into(),
        ));
    }
    let (signed, signature) = token
        .rsplit_once('.')
        .filter(|_| count == 3)
        .ok_or_else(|| {
            Error::Malformed(format!(
                "a JWT has 3 dot-separated parts, this token has {count}"
            ))
        })?;
    let (header, payload) = signed.split_once('.').unwrap_or_default();
    // An empty signature (`alg: none`) is left for the algorithm check and
    // signature verification to reject with their own reasons.
    if header.is_empty() || payload.is_empty() {
        return Err(Error::Malformed("token header or claims are empty".into()));
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signed,
    })
}

/// The header fields that matter.
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    jku: Option<Value>,
    x5u: Option<Value>,
    jwk: Option<Value>,
    x5c: Option<Value>,
    crit: Option<Value>,
}

/// Checks the header and returns its `kid`.
///
/// RS256 only; no header may say where the key comes from; no `crit`
/// extensions (none are understood).
pub(crate) fn header_kid(header: &str) -> Result<String, Error> {
    let raw: RawHeader = decode_json(header, "header")?;
    match raw.alg {
        Some(Value::String(alg)) if alg == "RS256" => {}
        Some(Value::String(alg)) => return Err(Error::UnsupportedAlgorithm(echo(&alg))),
        Some(_) => return Err(Error::UnsupportedAlgorithm("(not a string)".into())),
        None => return Err(Error::UnsupportedAlgorithm("(missing)".into())),
    }
    for (name, value) in [
        ("jku", &raw.jku),
        ("x5u", &raw.x5u),
        ("jwk", &raw.jwk),
        ("x5c", &raw.x5c),
    ] {
        if value.is_some() {
            return Err(Error::UntrustedKeyLocation(name));
        }
    }
    if raw.crit.is_some() {
        return Err(Error::Malformed(
            "token header has `crit` extensions, none are supported".into(),
        ));
    }
    match raw.kid {
        Some(Value::String(kid)) if !kid.is_empty() => Ok(kid),
        Some(Value::String(_)) | None => Err(Error::MissingKeyId),
        Some(_) => Err(Error::Malformed("header `kid` is not a string".into())),
    }
}

/// The claims this crate reads, each checked for its JSON type on access.
#[derive(Deserialize)]
pub(crate) struct Claims {
    iss: Option<Value>,
    aud: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
    tid: Option<Value>,
    oid: Option<Value>,
    azp: Option<Value>,
    appid: Option<Value>,
    roles: Option<Value>,
    scp: Option<Value>,
    idtyp: Option<Value>,
}

pub(crate) fn claims(payload: &str) -> Result<Claims, Error> {
    decode_json(payload, "claims")
}

impl Claims {
    /// `exp`: required NumericDate.
    pub(crate) fn exp(&self) -> Result<i64, Error> {
        numeric_date("exp", self.exp.as_ref())?.ok_or_else(|| missing("exp"))
    }

    /// `nbf`: optional NumericDate.
    pub(crate) fn nbf(&self) -> Result<Option<i64>, Error> {
        numeric_date("nbf", self.nbf.as_ref())
    }

    pub(crate) fn iss(&self) -> Result<&str, Error> {
        required_str("iss", self.iss.as_ref())
    }

    pub(crate) fn tid(&self) -> Result<&str, Error> {
        required_str("tid", self.tid.as_ref())
    }

    pub(crate) fn oid(&self) -> Result<&str, Error> {
        required_str("oid", self.oid.as_ref())
    }

    /// `azp`, or `appid` in v1 tokens.
    pub(crate) fn azp(&self) -> Result<&str, Error> {
        match optional_str("azp", self.azp.as_ref())? {
            Some(azp) => Ok(azp),
            None => optional_str("appid", self.appid.as_ref())?.ok_or_else(|| missing("azp")),
        }
    }

    pub(crate) fn idtyp(&self) -> Result<Option<&str>, Error> {
        optional_str("idtyp", self.idtyp.as_ref())
    }

    /// `aud`: a string or an array of strings (RFC 7519).
    pub(crate) fn aud(&self) -> Result<Vec<&str>, Error> {
        match &self.aud {
            Some(Value::String(a)) => Ok(vec![a.as_str()]),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_str().ok_or_else(|| wrong_type("aud", v, "a string")))
                .collect(),
            Some(Value::Array(_)) => Err(Error::InvalidClaim {
                claim: "aud",
                problem: "is an empty list".into(),
            }),
            None | Some(Value::Null) => Err(missing("aud")),
            Some(other) => Err(wrong_type("aud", other, "a string or a list of strings")),
        }
    }

    /// `roles`: an array of strings (never a single string).
    pub(crate) fn roles(&self) -> Result<Vec<String>, Error> {
        match &self.roles {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| wrong_type("roles", v, "a list of strings"))
                })
                .collect(),
            Some(other) => Err(wrong_type("roles", other, "a list of strings")),
        }
    }

    /// `scp`: one space-separated string.
    pub(crate) fn scopes(&self) -> Result<Vec<String>, Error> {
        Ok(optional_str("scp", self.scp.as_ref())?
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default())
    }
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str, what: &str) -> Result<T, Error> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Error::Malformed(format!("token {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        // serde_json's message names a position and, for duplicates, the
        // field, but for a JSON value of the wrong type (`"header": a string`)
        // it quotes the value: token content, so it goes through `echo` like
        // any other (issue #8: found by fuzzing).
        Error::Malformed(format!(
            "token {what} is not a JSON object: {}",
            echo(&e.to_string())
        ))
    })
}

fn missing(claim: &'static str) -> Error {
    Error::InvalidClaim {
        claim,
        problem: "is missing".into(),
    }
}

fn wrong_type(claim: &'static str, found: &Value, want: &str) -> Error {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    Error::InvalidClaim {
        claim,
        problem: format!("must be {want}, found {found}"),
    }
}

fn optional_str<'a>(
    claim: &'static str,
    value: Option<&'a Value>,
) -> Result<Option<&'a str>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(claim, other, "a string")),
    }
}

fn required_str<'a>(claim: &'static str, value: Option<&'a Value>) -> Result<&'a str, Error> {
    optional_str(claim, value)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing(claim))
}

/// A NumericDate: a JSON number of seconds (fractions are truncated).
fn numeric_date(claim: &'static str, value: Option<&Value>) -> Result<Option<i64>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| Error::InvalidClaim {
                claim,
                problem: "is not a usable number of seconds".into(),
            }),
        Some(other) => Err(wrong_type(claim, other, "a number (NumericDate)")),
    }
}
