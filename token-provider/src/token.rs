//! [`AccessToken`] and the token endpoint's success response (numbers may arrive as
//! strings). Lifetimes are computed from `expires_in`, measured from when the request was
//! sent, so neither network delay nor a wrong local clock can stretch a token.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;

/// An access token: cheap to clone, `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct AccessToken(Arc<Issued>);

/// One issued token and the times that govern its use.
pub(crate) struct Issued {
    secret: Box<str>,
    /// `Bearer {token}`, built once, marked sensitive.
    header: HeaderValue,
    /// Wall-clock expiry, for display.
    expires_on: SystemTime,
    /// `sent + expires_in`.
    expires_at: Instant,
    /// Not handed out from the cache after this (`expires_at - margin`).
    usable_until: Instant,
    /// A background refresh starts after this.
    refresh_at: Instant,
}

impl AccessToken {
    /// The token text, for an `authorization: Bearer` header. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0.secret
    }

    /// When it expires (wall clock, from `expires_in`).
    pub fn expires_on(&self) -> SystemTime {
        self.0.expires_on
    }

    /// Time left before it expires (zero once expired).
    pub fn expires_in(&self) -> Duration {
        self.0.expires_at.saturating_duration_since(Instant::now())
    }

    /// `Bearer {token}`, ready to insert (marked sensitive, so HTTP/2 never indexes it and
    /// `Debug` of a header map does not show it).
    pub fn header_value(&self) -> &HeaderValue {
        &self.0.header
    }

    /// Whether both are the very same issued token.
    pub fn same_token(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn from_arc(issued: Arc<Issued>) -> Self {
        AccessToken(issued)
    }

    pub(crate) fn as_arc(&self) -> &Arc<Issued> {
        &self.0
    }

    pub(crate) fn usable_until(&self) -> Instant {
        self.0.usable_until
    }

    pub(crate) fn refresh_at(&self) -> Instant {
        self.0.refresh_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in())
            .finish()
    }
}

/// The parts of a success response we use.
#[derive(Debug)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) expires_in: Duration,
    pub(crate) refresh_in: Option<Duration>,
}

#[derive(Deserialize)]
struct Raw {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<Value>,
    refresh_in: Option<Value>,
}

/// `3599` or `"3599"`.
fn seconds(value: Option<&Value>, name: &str) -> Result<Option<Duration>, String> {
    let secs = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match secs {
        Some(s) if s > 0 => Ok(Some(Duration::from_secs(s))),
        _ => Err(format!("'{name}' is not a positive number of seconds")),
    }
}

impl TokenResponse {
    /// Parses a 2xx body. Errors never quote the body (it may hold a token).
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let raw: Raw =
            serde_json::from_slice(body).map_err(|e| format!("not a JSON token response ({e})"))?;
        let access_token = raw
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or("no 'access_token'")?;
        if let Some(kind) = &raw.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(format!("token_type is '{kind}', not 'Bearer'"));
        }
        let expires_in =
            seconds(raw.expires_in.as_ref(), "expires_in")?.ok_or("no 'expires_in'")?;
        let refresh_in = seconds(raw.refresh_in.as_ref(), "refresh_in")?;
        Ok(TokenResponse {
            access_token,
            expires_in,
            refresh_in,
        })
    }

    /// The cached token: `sent` is when the request left, `margin` how long before expiry
    /// it stops being handed out.
    pub(crate) fn into_token(self, sent: Instant, margin: Duration) -> Result<AccessToken, String> {
        let mut header = HeaderValue::try_from(format!("Bearer {}", self.access_token))
            .map_err(|_| "the access token holds characters not allowed in a header")?;
        header.set_sensitive(true);
        let lifetime = self.expires_in;
        let usable = lifetime.saturating_sub(margin);
        // Refresh at `refresh_in`, else half-life; never after the token stops being usable.
        let mut refresh = self.refresh_in.unwrap_or(lifetime / 2).min(lifetime);
        if !usable.is_zero() {
            refresh = refresh.min(usable);
        }
        // A little jitter so many processes started together do not refresh together.
        let spread = (refresh / 10).min(Duration::from_secs(60));
        let jitter = if spread.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..spread)
        };
        let elapsed = sent.elapsed();
        Ok(AccessToken(Arc::new(Issued {
            secret: self.access_token.into_boxed_str(),
            header,
            expires_on: SystemTime::now() + lifetime.saturating_sub(elapsed),
            expires_at: sent + lifetime,
            usable_until: sent + usable,
            refresh_at: sent + refresh - jitter,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_may_be_strings() {
        let r = TokenResponse::parse(
            br#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","refresh_in":1800,"access_token":"eyJ.x.y"}"#,
        )
        .unwrap();
        assert_eq!(r.expires_in, Duration::from_secs(3599));
        assert_eq!(r.refresh_in, Some(Duration::from_secs(1800)));
        let r = TokenResponse::parse(br#"{"expires_in":60,"access_token":"a"}"#).unwrap();
        assert_eq!(r.refresh_in, None);
    }

    #[test]
    fn rejects_unusable_responses_without_quoting_them() {
        for body in [
            &br#"{"token_type":"Bearer","expires_in":3599}"#[..],
            br#"{"access_token":"SECRET-TOKEN","expires_in":"soon"}"#,
            br#"{"access_token":"SECRET-TOKEN","expires_in":0}"#,
            br#"{"access_token":"SECRET-TOKEN","token_type":"pop","expires_in":5}"#,
            b"<html>",
        ] {
            let err = TokenResponse::parse(body).unwrap_err();
            assert!(!err.contains("SECRET-TOKEN"), "{err}");
        }
    }

    #[test]
    fn lifetimes_follow_expires_in_and_refresh_in() {
        let sent = Instant::now();
        let margin = Duration::from_secs(300);
        let t = TokenResponse::parse(br#"{"expires_in":3600,"access_token":"a"}"#)
            .unwrap()
            .into_token(sent, margin)
            .unwrap();
        assert_eq!(t.usable_until(), sent + Duration::from_secs(3300));
        let refresh = t.refresh_at() - sent;
        assert!(refresh <= Duration::from_secs(1800) && refresh >= Duration::from_secs(1740));
        let t = TokenResponse::parse(br#"{"expires_in":3600,"refresh_in":600,"access_token":"a"}"#)
            .unwrap()
            .into_token(sent, margin)
            .unwrap();
        assert!(t.refresh_at() - sent <= Duration::from_secs(600));
        assert!(t.header_value().is_sensitive());
        let t = TokenResponse::parse(br#"{"expires_in":60,"access_token":"SECRET-TOKEN"}"#)
            .unwrap()
            .into_token(sent, margin)
            .unwrap();
        let shown = format!("{t:?} {:?}", t.header_value());
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
