//! HTTPS to the authority: the client (https only, extra CA roots, timeouts, no
//! redirects), bounded reads, `Retry-After`, and the classification of every answer as a
//! success, a transient failure (retry) or a final error (Entra's error body decoded).

use std::time::Duration;

use reqwest::{Certificate, Client, Response, StatusCode, header};
use serde::Deserialize;

use crate::error::EntraError;
use crate::{Config, Error};

/// `Retry-After` is never honoured beyond this.
pub(crate) const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);
/// Largest response body read.
const MAX_BODY: usize = 256 * 1024;

/// One failed attempt.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth retrying: timeout, connection error, 408, 429, 5xx.
    Transient {
        endpoint: &'static str,
        status: Option<u16>,
        retry_after: Option<Duration>,
        message: String,
    },
    /// Retrying cannot help.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

/// Builds the HTTPS client.
pub(crate) fn client(config: &Config) -> Result<Client, Error> {
    let mut builder = Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .user_agent(concat!("entra-token-provider/", env!("CARGO_PKG_VERSION")));
    let mut pem = config.ca_pem.clone().unwrap_or_default();
    if let Some(path) = &config.ca_file {
        let file = std::fs::read(path)
            .map_err(|e| Error::Config(format!("reading CA file {}: {e}", path.display())))?;
        pem.push(b'\n');
        pem.extend(file);
    }
    if pem.iter().any(|b| !b.is_ascii_whitespace()) {
        let roots = Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::Config(format!("extra CA certificates are not valid PEM: {e}")))?;
        if roots.is_empty() {
            return Err(Error::Config(
                "the extra CA PEM holds no certificate".into(),
            ));
        }
        builder = builder.tls_certs_merge(roots);
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("building the HTTPS client: {}", chain(&e))))
}

/// A connection-level failure (no HTTP answer).
pub(crate) fn send_failure(endpoint: &'static str, e: &reqwest::Error) -> Failure {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    Failure::Transient {
        endpoint,
        status: None,
        retry_after: None,
        message: format!("{what}: {}", chain(e)),
    }
}

/// Reads the body of `response`, or classifies a non-2xx answer. `request` names the
/// request in Entra errors (`token request`, `OpenID discovery`).
pub(crate) async fn read(
    endpoint: &'static str,
    request: &'static str,
    url: &str,
    response: Response,
) -> Result<Vec<u8>, Failure> {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = read_body(endpoint, response).await?;
    if status.is_success() {
        return Ok(body);
    }
    let entra = entra_error(request, status, &body);
    let transient = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    if transient {
        let message = match &entra {
            Some(e) => e.to_string(),
            None => format!("HTTP {status}"),
        };
        return Err(Failure::Transient {
            endpoint,
            status: Some(status.as_u16()),
            retry_after,
            message,
        });
    }
    Err(Failure::Fatal(match entra {
        Some(e) => Error::Entra(Box::new(e)),
        None => Error::Unexpected {
            endpoint,
            url: url.to_owned(),
            message: format!("HTTP {status} without an OAuth error body"),
        },
    }))
}

async fn read_body(endpoint: &'static str, mut response: Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(Failure::Fatal(Error::Unexpected {
                        endpoint,
                        url: response.url().to_string(),
                        message: format!("the answer is larger than {MAX_BODY} bytes"),
                    }));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(send_failure(endpoint, &e)),
        }
    }
}

/// `Retry-After: <seconds>`, capped at one hour. (HTTP-date values are ignored: Entra
/// sends seconds.)
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(RETRY_AFTER_CAP))
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    correlation_id: Option<String>,
    trace_id: Option<String>,
}

/// Decodes an OAuth error body (`None` if the body is not one).
fn entra_error(request: &'static str, status: StatusCode, body: &[u8]) -> Option<EntraError> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let error = parsed.error.unwrap_or_default();
    let full = parsed.error_description.unwrap_or_default();
    if error.is_empty() && full.is_empty() {
        return None;
    }
    let first = full.lines().next().unwrap_or_default().trim();
    let mut codes = parsed.error_codes;
    let mut description = first;
    if let Some(rest) = first.strip_prefix("AADSTS")
        && let Some((code, text)) = rest.split_once(':')
        && let Ok(code) = code.trim().parse::<u32>()
    {
        if codes.is_empty() {
            codes.push(code);
        }
        description = text.trim();
    }
    let description = if description.is_empty() {
        error.clone()
    } else {
        truncate(description, 600)
    };
    Some(EntraError {
        request,
        status: status.as_u16(),
        error,
        codes,
        description,
        correlation_id: parsed.correlation_id,
        trace_id: parsed.trace_id,
    })
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `reqwest` errors hide the useful part (a TLS failure, a refused connection) in their
/// source chain.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_entra_error_bodies() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2024-01-01 00:00:00Z","error_codes":[7000215],"timestamp":"2024-01-01 00:00:00Z","trace_id":"t","correlation_id":"c","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#;
        let e = entra_error("token request", StatusCode::UNAUTHORIZED, body).unwrap();
        assert_eq!(e.codes, vec![7000215]);
        assert!(
            e.description.starts_with("Invalid client secret provided."),
            "{}",
            e.description
        );
        assert!(!e.description.contains("Trace ID"));
        assert_eq!(e.correlation_id.as_deref(), Some("c"));
        // Codes recovered from the description when `error_codes` is missing.
        let body = br#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."}"#;
        let e = entra_error("OpenID discovery", StatusCode::BAD_REQUEST, body).unwrap();
        assert_eq!(e.codes, vec![90002]);
        assert!(entra_error("token request", StatusCode::NOT_FOUND, b"<html>").is_none());
    }

    #[test]
    fn retry_after_is_capped() {
        let mut h = header::HeaderMap::new();
        h.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(header::RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(RETRY_AFTER_CAP));
        h.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
