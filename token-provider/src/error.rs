//! [`Error`]: everything that can go wrong getting a token, in words a user can act on.
//! Messages never contain a secret, a private key or an access token.

use std::fmt;
use std::time::Duration;

use crate::secret::scrub;

/// Why a token could not be obtained. Cheap to clone: every caller waiting on one shared
/// request gets the same error.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work; found before any request.
    #[error("token provider configuration: {0}")]
    Config(String),

    /// The scope is not one resource followed by `/.default` (the only form the
    /// client-credentials grant accepts); found before any request.
    #[error(
        "scope {scope:?} cannot be used with the client-credentials grant: it must name one \
         resource and end in \"/.default\", e.g. {suggestion:?}"
    )]
    InvalidScope {
        /// The scope as configured.
        scope: String,
        /// A corrected scope, or the `api://<client id>/.default` pattern.
        suggestion: String,
    },

    /// A credential could not be loaded or used (certificate, key or federated token file).
    #[error("client credential: {0}")]
    Credential(String),

    /// Entra (or the authority) answered with an OAuth error body.
    #[error("{0}")]
    Entra(Box<EntraError>),

    /// The endpoint answered 429 or 503 with `Retry-After`, longer than a call may wait;
    /// the endpoint is not called again before that time passes.
    #[error(
        "{endpoint} asked this client to wait {}s (HTTP {status}); it will not be called \
         again before then",
        retry_after.as_secs()
    )]
    Throttled {
        /// Which request was throttled (`token endpoint`, `OpenID discovery`).
        endpoint: &'static str,
        /// HTTP status (429 or 503).
        status: u16,
        /// Time still to wait (capped at one hour).
        retry_after: Duration,
    },

    /// Transient failures (timeouts, connection errors, 5xx) outlasted the retries.
    #[error("{endpoint} is unavailable after {attempts} attempt(s): {message}")]
    Unavailable {
        /// Which request failed.
        endpoint: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        message: String,
    },

    /// An answer that is neither a token response nor an OAuth error body (e.g. an HTML
    /// 404 from a wrong URL), or a metadata document without a usable `token_endpoint`.
    #[error("{endpoint} at {url} answered unexpectedly: {message}")]
    Unexpected {
        /// Which request.
        endpoint: &'static str,
        /// The URL called.
        url: String,
        /// What was wrong.
        message: String,
    },
}

impl Error {
    /// The AADSTS codes of an Entra error (empty for other errors).
    pub fn aadsts_codes(&self) -> &[u32] {
        match self {
            Error::Entra(e) => &e.codes,
            _ => &[],
        }
    }

    /// Whether retrying later may succeed (throttling, outages); `false` for configuration
    /// and credential problems that need a person.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Throttled { .. } | Error::Unavailable { .. } => true,
            Error::Entra(e) => e.status >= 500 || e.status == 429,
            _ => false,
        }
    }

    /// For throttling: how long the endpoint asked to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Removes `secret` from every message (defence in depth).
    pub(crate) fn redact(mut self, secret: &str) -> Self {
        match &mut self {
            Error::Config(m) | Error::Credential(m) => *m = scrub(m, secret),
            Error::Unavailable { message, .. } | Error::Unexpected { message, .. } => {
                *message = scrub(message, secret)
            }
            Error::Entra(e) => e.description = scrub(&e.description, secret),
            Error::InvalidScope { .. } | Error::Throttled { .. } => {}
        }
        self
    }
}

/// An OAuth error body from Entra: `{"error", "error_description", "error_codes", …}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntraError {
    /// Which request was rejected (`token request`, `OpenID discovery`).
    pub request: &'static str,
    /// HTTP status.
    pub status: u16,
    /// OAuth `error`, e.g. `invalid_client`.
    pub error: String,
    /// `error_codes`, or the code parsed from the description (`AADSTS7000215` → 7000215).
    pub codes: Vec<u32>,
    /// The first line of `error_description` (trace and correlation ids are kept apart).
    pub description: String,
    /// `correlation_id`, to quote to support.
    pub correlation_id: Option<String>,
    /// `trace_id`, to quote to support.
    pub trace_id: Option<String>,
}

impl EntraError {
    /// What the user should check, for the codes we know.
    pub fn hint(&self) -> Option<&'static str> {
        self.codes.iter().find_map(|c| hint(*c))
    }
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Entra rejected the {} (HTTP {}",
            self.request, self.status
        )?;
        if !self.error.is_empty() {
            write!(f, " {}", self.error)?;
        }
        for code in &self.codes {
            write!(f, ", AADSTS{code}")?;
        }
        write!(f, "): {}", self.description)?;
        if let Some(hint) = self.hint() {
            write!(f, " => {hint}")?;
        }
        match (&self.correlation_id, &self.trace_id) {
            (Some(c), Some(t)) => write!(f, " [correlation id {c}, trace id {t}]"),
            (Some(c), None) => write!(f, " [correlation id {c}]"),
            (None, Some(t)) => write!(f, " [trace id {t}]"),
            (None, None) => Ok(()),
        }
    }
}

/// Advice for an AADSTS code, phrased as the next thing to check.
fn hint(code: u32) -> Option<&'static str> {
    Some(match code {
        7000215 => {
            "check the client secret: use the secret's Value (not its Secret ID) of a secret \
             registered on this client application"
        }
        7000222 => {
            "the client secret has expired: create a new one under Certificates & secrets of \
             the app registration and update the configuration"
        }
        7000218 => {
            "no credential was sent: configure a client secret, a certificate or a federated token"
        }
        700016 => {
            "the client id is not registered in that tenant: check ClientId, and that \
             TenantId / the authority names the tenant where the app is registered"
        }
        700027 => {
            "the client assertion was rejected: check that this certificate is uploaded to the \
             app registration and the private key belongs to it (for a federated token: check \
             the federated credential's issuer and subject)"
        }
        700024 => {
            "the client assertion is outside its validity window: check the system clock or refresh the token file"
        }
        700021 => "the client assertion's iss/sub are not the client id: check ClientId",
        70011 => {
            "check the scope: use the API's application ID URI followed by /.default, e.g. \
             api://<API client id>/.default"
        }
        700022 => "request one resource at a time: a single scope ending in /.default",
        500011 => {
            "check the scope / application ID URI: no API with that URI is registered in this \
             tenant (or it has no service principal there; an admin must consent)"
        }
        90002 => "tenant not found: check TenantId / the authority URL and the cloud instance",
        50196 => {
            "too many identical requests: reuse one token provider instead of creating one per call"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_error_names_code_description_and_hint() {
        let e = Error::Entra(Box::new(EntraError {
            request: "token request",
            status: 401,
            error: "invalid_client".into(),
            codes: vec![7000215],
            description: "AADSTS7000215: Invalid client secret provided.".into(),
            correlation_id: Some("c-1".into()),
            trace_id: None,
        }));
        let text = e.to_string();
        assert!(text.contains("AADSTS7000215"), "{text}");
        assert!(text.contains("check the client secret"), "{text}");
        assert!(text.contains("c-1"), "{text}");
        assert_eq!(e.aadsts_codes(), &[7000215]);
        assert!(!e.is_transient());
    }

    #[test]
    fn redact_scrubs_every_message() {
        let e = Error::Unavailable {
            endpoint: "token endpoint",
            attempts: 2,
            message: "echoed s3cr3t-value".into(),
        };
        assert!(!e.redact("s3cr3t-value").to_string().contains("s3cr3t"));
    }
}
