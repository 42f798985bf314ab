//! The crate's one error type, and the one place it becomes a gRPC status.
//!
//! Messages are written for the developer on the other end ("audience X is not
//! one of [Y]"). They never contain the token; claim values copied from a
//! token are cut short and stripped of anything that is not printable ASCII
//! (see [`echo`]).

use std::collections::HashMap;
use std::path::PathBuf;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `domain` of every `google.rpc.ErrorInfo` this crate attaches.
pub const ERROR_DOMAIN: &str = "entra-auth";

/// Everything that can go wrong in this crate.
///
/// Variants from [`Error::MissingToken`] on are per-request outcomes; each has
/// a stable machine-readable [`reason`](Error::reason) and a gRPC
/// [`code`](Error::code). [`Error::to_status`] is the only conversion to a
/// `tonic::Status`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // === configuration and authority (never sent to a caller) ===
    /// The configuration is unusable (bad authority URL, empty client id, ...).
    #[error("invalid entra-auth configuration: {0}")]
    Config(String),
    /// A configured file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Fetching or parsing OIDC metadata or the JWKS failed.
    #[error("fetching {url} failed: {reason}")]
    Fetch {
        /// The URL that was fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },

    // === the request carries no usable token ===
    /// No `authorization` header.
    #[error("this RPC requires an access token: send `authorization: Bearer <token>`")]
    MissingToken,
    /// The `authorization` header is not one well-formed `Bearer` credential.
    #[error("invalid authorization header: {0}")]
    InvalidAuthorizationHeader(&'static str),
    /// The token is longer than the configured limit.
    #[error("token is {size} bytes long, the limit is {max} bytes")]
    TokenTooLarge {
        /// Token length in bytes.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// The token is not a compact JWS with JSON header and claims.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header's `alg` is not RS256.
    #[error("token algorithm {0} is not accepted; only RS256 is")]
    UnsupportedAlgorithm(String),
    /// The header tries to say where the key comes from (`jku`, `x5u`, `jwk`, `x5c`).
    #[error(
        "token header carries `{0}`; keys are only taken from the authority's JWKS, never from the token"
    )]
    UntrustedKeyLocation(&'static str),
    /// The header has no `kid`.
    #[error("token header has no `kid`, so no signing key can be chosen")]
    MissingKeyId,
    /// No key of the authority has this `kid`, even after a refresh.
    #[error("signing key `{kid}` is not among the authority's current keys")]
    UnknownSigningKey {
        /// The token's `kid` (shortened).
        kid: String,
    },
    /// The RS256 signature does not verify.
    #[error("token signature does not verify with the authority's key `{kid}`")]
    InvalidSignature {
        /// The key that was tried (shortened).
        kid: String,
    },
    /// A claim is missing or of the wrong JSON type.
    #[error("claim `{claim}` {problem}")]
    InvalidClaim {
        /// Claim name.
        claim: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// `exp` is in the past (beyond the allowed skew).
    #[error("token expired {ago} s ago (exp={exp}); allowed clock skew is {skew} s")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// Seconds since expiry.
        ago: i64,
        /// Allowed skew in seconds.
        skew: u64,
    },
    /// `nbf` is in the future (beyond the allowed skew).
    #[error("token is not valid for another {wait} s (nbf={nbf}); allowed clock skew is {skew} s")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// Seconds until it becomes valid.
        wait: i64,
        /// Allowed skew in seconds.
        skew: u64,
    },
    /// `iss` (or the key's own issuer) does not match the authority.
    #[error("issuer {found} is not the expected {expected}")]
    InvalidIssuer {
        /// The token's `iss` (shortened).
        found: String,
        /// What was expected, or why it cannot match.
        expected: String,
    },
    /// No `aud` value is an accepted audience.
    #[error("audience {found} is not one of [{accepted}]")]
    InvalidAudience {
        /// The token's `aud` (shortened).
        found: String,
        /// Accepted audiences, comma separated.
        accepted: String,
    },
    /// The token grants neither delegated scopes nor app roles.
    #[error(
        "token carries neither `scp` nor `roles`: grant the client an app role (or a delegated scope) of this API"
    )]
    MissingRoles,
    /// Signing keys have not been loaded from the authority yet.
    #[error("signing keys of {authority} are not loaded yet; retry shortly")]
    KeysUnavailable {
        /// The configured authority.
        authority: String,
    },
    /// The token names a key that is not among the loaded ones, and the
    /// authority could not be reached to look for it (a key rollover during
    /// an outage, most likely). Retryable: the key is fetched once the
    /// authority answers again.
    #[error(
        "signing key `{kid}` is not among the loaded keys and {authority} cannot be reached to refresh them; retry shortly"
    )]
    SigningKeyUnavailable {
        /// The token's `kid` (shortened).
        kid: String,
        /// The configured authority.
        authority: String,
    },

    // === a valid token that may not do this ===
    /// The RPC is not in the permission table: denied by default.
    #[error("RPC {path} is not open to any caller")]
    RpcNotAllowed {
        /// The gRPC path.
        path: String,
    },
    /// The caller has none of the accepted roles or scopes.
    #[error("{path} requires one of app roles [{roles}] or delegated scopes [{scopes}]")]
    PermissionDenied {
        /// The gRPC path.
        path: String,
        /// Accepted app roles, comma separated.
        roles: String,
        /// Accepted delegated scopes, comma separated.
        scopes: String,
    },
    /// Allow-list mode is on and the client is not listed.
    #[error("client application {azp} is not on this API's allow-list")]
    ClientNotAllowed {
        /// The caller's `azp`/`appid`.
        azp: String,
    },
}

impl Error {
    /// The stable `google.rpc.ErrorInfo` reason, e.g. `TOKEN_EXPIRED`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Config(_) | Error::Io { .. } => "CONFIGURATION",
            Error::Fetch { .. } => "AUTHORITY_UNREACHABLE",
            Error::MissingToken => "MISSING_TOKEN",
            Error::InvalidAuthorizationHeader(_) => "INVALID_AUTHORIZATION_HEADER",
            Error::TokenTooLarge { .. } => "TOKEN_TOO_LARGE",
            Error::Malformed(_) => "MALFORMED_TOKEN",
            Error::UnsupportedAlgorithm(_) => "UNSUPPORTED_ALGORITHM",
            Error::UntrustedKeyLocation(_) => "UNTRUSTED_KEY_LOCATION",
            Error::MissingKeyId => "MISSING_KEY_ID",
            Error::UnknownSigningKey { .. } => "UNKNOWN_SIGNING_KEY",
            Error::InvalidSignature { .. } => "INVALID_SIGNATURE",
            Error::InvalidClaim { .. } => "INVALID_CLAIM",
            Error::Expired { .. } => "TOKEN_EXPIRED",
            Error::NotYetValid { .. } => "TOKEN_NOT_YET_VALID",
            Error::InvalidIssuer { .. } => "INVALID_ISSUER",
            Error::InvalidAudience { .. } => "INVALID_AUDIENCE",
            Error::MissingRoles => "MISSING_ROLES",
            Error::KeysUnavailable { .. } | Error::SigningKeyUnavailable { .. } => {
                "KEYS_UNAVAILABLE"
            }
            Error::RpcNotAllowed { .. } => "RPC_NOT_ALLOWED",
            Error::PermissionDenied { .. } => "INSUFFICIENT_PERMISSION",
            Error::ClientNotAllowed { .. } => "CLIENT_NOT_ALLOWED",
        }
    }

    /// The gRPC code a caller sees.
    ///
    /// An unidentified caller always gets `UNAUTHENTICATED`, never
    /// `PERMISSION_DENIED`; keys that cannot be had from the authority are
    /// `UNAVAILABLE` (fail closed, retryable).
    pub fn code(&self) -> Code {
        match self {
            Error::Config(_) | Error::Io { .. } | Error::Fetch { .. } => Code::Internal,
            Error::KeysUnavailable { .. } | Error::SigningKeyUnavailable { .. } => {
                Code::Unavailable
            }
            Error::RpcNotAllowed { .. }
            | Error::PermissionDenied { .. }
            | Error::ClientNotAllowed { .. } => Code::PermissionDenied,
            _ => Code::Unauthenticated,
        }
    }

    /// The gRPC status for this error: code, message, a `google.rpc.ErrorInfo`
    /// detail (reason + [`ERROR_DOMAIN`]) and, for `UNAUTHENTICATED` and
    /// `PERMISSION_DENIED`, a `www-authenticate` metadata entry (RFC 6750).
    ///
    /// This is the only place the crate turns an error into a status.
    pub fn to_status(&self) -> Status {
        let code = self.code();
        let message = match code {
            // Internal details stay in the log.
            Code::Internal => "authentication is misconfigured".to_owned(),
            _ => self.to_string(),
        };
        let mut info = HashMap::new();
        if let Error::PermissionDenied { roles, scopes, .. } = self {
            info.insert("accepted_roles".to_owned(), roles.clone());
            info.insert("accepted_scopes".to_owned(), scopes.clone());
        }
        let details = ErrorDetails::with_error_info(self.reason(), ERROR_DOMAIN, info);
        let mut status = Status::with_error_details(code, message.clone(), details);
        let challenge = match (self, code) {
            (Error::MissingToken, _) => Some("Bearer".to_owned()),
            (_, Code::Unauthenticated) => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                quoted(&message)
            )),
            (_, Code::PermissionDenied) => Some(format!(
                "Bearer error=\"insufficient_scope\", error_description=\"{}\"",
                quoted(&message)
            )),
            _ => None,
        };
        if let Some(value) = challenge.and_then(|c| MetadataValue::try_from(c).ok()) {
            status.metadata_mut().insert("www-authenticate", value);
        }
        status
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        error.to_status()
    }
}

/// Makes a value taken from a token safe to put in a message or log line:
/// printable ASCII only, at most 96 characters.
pub(crate) fn echo(value: &str) -> String {
    const MAX: usize = 96;
    let mut out: String = value
        .chars()
        .take(MAX)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if value.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

/// Escapes a message for an RFC 7235 quoted-string inside a header value.
fn quoted(message: &str) -> String {
    message
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_code_reason_and_challenge() {
        let missing = Error::MissingToken.to_status();
        assert_eq!(missing.code(), Code::Unauthenticated);
        assert_eq!(
            missing.metadata().get("www-authenticate").unwrap(),
            "Bearer"
        );
        let info = missing.get_details_error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("MISSING_TOKEN", ERROR_DOMAIN)
        );

        let odd = Error::InvalidAudience {
            found: echo("a\"b\\c\u{e9}\r\n"),
            accepted: "x".into(),
        };
        let status = odd.to_status();
        let challenge = status
            .metadata()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            challenge,
            "Bearer error=\"invalid_token\", error_description=\"audience a'b/c??? is not one of [x]\""
        );

        let keys = Error::KeysUnavailable {
            authority: "https://a/t/v2.0".into(),
        };
        assert_eq!(keys.to_status().code(), Code::Unavailable);
        assert!(
            keys.to_status()
                .metadata()
                .get("www-authenticate")
                .is_none()
        );

        let config = Error::Config("secret detail".into()).to_status();
        assert_eq!(config.code(), Code::Internal);
        assert!(!config.message().contains("secret detail"));
    }

    #[test]
    fn echo_bounds_length() {
        let long = "k".repeat(500);
        assert_eq!(echo(&long).len(), 99);
    }
}
