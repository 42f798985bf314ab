//! [`Secret`]: a string that never shows itself in `Debug` output or logs.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A client secret (or private key text). `Debug` prints `[redacted]`; read the value
/// only with [`Secret::expose`], at the one place that sends or compares it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// A new random secret shaped like an Entra one: 40 characters, the 4th–6th being `8Q~`.
    pub fn generate() -> Self {
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.-";
        let mut rng = rand::rng();
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        };
        let (head, tail) = (pick(3), pick(34));
        Secret(format!("{head}8Q~{tail}"))
    }

    /// The secret value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented value.
    pub fn matches(&self, presented: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.0.as_bytes(), presented.as_bytes())
            .is_ok()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2-very-secret");
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn generated_secrets_look_like_entra_ones() {
        let a = Secret::generate();
        assert_eq!(a.expose().len(), 40);
        assert_eq!(&a.expose()[3..6], "8Q~");
        assert_ne!(a, Secret::generate());
        assert!(a.matches(a.expose()));
        assert!(!a.matches("nope"));
    }
}
