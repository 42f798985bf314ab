//! Redacting newtypes for what must never reach a log line: [`ClientSecret`] and
//! [`PrivateKeyPem`]. Their `Debug` prints `[redacted]`; read the value only where it is
//! sent or parsed.

use std::fmt;

/// A client secret (the secret's *value*, not its id). `Debug` prints `[redacted]` and there
/// is no `Display`; [`ClientSecret::expose_secret`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret value. Surrounding whitespace (a pasted newline) is removed.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        let trimmed = value.trim();
        if trimmed.len() == value.len() {
            ClientSecret(value)
        } else {
            ClientSecret(trimmed.to_owned())
        }
    }

    /// The secret value. Send it; never log or format it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// PEM text holding a private key (and possibly certificates). `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    /// Wraps PEM text.
    pub fn new(pem: impl Into<String>) -> Self {
        PrivateKeyPem(pem.into())
    }

    /// The PEM text. Parse it; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem([redacted])")
    }
}

/// Replaces every occurrence of `secret` in `text` with `[redacted]` (defence in depth for
/// messages that quote a server's answer). Values shorter than 4 bytes are left alone.
pub(crate) fn scrub(text: &str, secret: &str) -> String {
    if secret.len() < 4 || !text.contains(secret) {
        return text.to_owned();
    }
    text.replace(secret, "[redacted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = ClientSecret::new("hunter2-very-secret\n");
        let key =
            PrivateKeyPem::new("-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----");
        let shown = format!("{secret:?} {:?} {key:?} {:?}", Some(&secret), vec![&key]);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("MIIEvQ"), "{shown}");
        assert_eq!(shown.matches("[redacted]").count(), 4, "{shown}");
        assert_eq!(secret.expose_secret(), "hunter2-very-secret");
    }

    #[test]
    fn scrub_removes_the_secret() {
        assert_eq!(
            scrub("bad secret abcd1234 given", "abcd1234"),
            "bad secret [redacted] given"
        );
        assert_eq!(scrub("nothing here", "abcd1234"), "nothing here");
    }
}
