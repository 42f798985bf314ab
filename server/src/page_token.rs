//! Opaque page tokens of `ListToDos`: the id of the last to-do of the previous
//! page, versioned and base64url-encoded so clients treat it as opaque.
//!
//! A token grants nothing: visibility is applied on every page, so a forged
//! token can only skip to-dos the caller may see anyway.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

const PREFIX: &str = "v1:";

/// The token of the page that follows the to-do `last_id`.
pub(crate) fn encode(last_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{last_id}"))
}

/// The id after which the page starts, or `None` for a malformed token.
pub(crate) fn decode(token: &str) -> Option<i64> {
    if token.len() > 64 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let id: i64 = text.strip_prefix(PREFIX)?.parse().ok()?;
    (id >= 0).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for id in [0, 1, 50, i64::MAX] {
            assert_eq!(decode(&encode(id)), Some(id));
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "!!", "djE6", "djE6LTE", "eDox", &"A".repeat(100)] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
