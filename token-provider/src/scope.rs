//! The client-credentials scope: exactly one `{resource}/.default`, checked before any
//! request is made.

use crate::Error;

const DEFAULT_SUFFIX: &str = "/.default";

/// Checks `scope` and returns it trimmed, or an [`Error::InvalidScope`] that suggests the
/// corrected form (`api://<client id>/.default`).
pub(crate) fn validate(scope: &str) -> Result<String, Error> {
    let trimmed = scope.trim();
    let invalid = |suggestion: String| Error::InvalidScope {
        scope: scope.to_owned(),
        suggestion,
    };
    let mut parts = trimmed.split_whitespace();
    let first = parts.next().unwrap_or_default();
    if parts.next().is_some() {
        return Err(invalid(suggest(first)));
    }
    match first.strip_suffix(DEFAULT_SUFFIX) {
        Some(resource) if !resource.is_empty() && !resource.ends_with('/') => Ok(first.to_owned()),
        _ => Err(invalid(suggest(first))),
    }
}

/// The `/.default` scope of the resource `scope` seems to name.
fn suggest(scope: &str) -> String {
    const PATTERN: &str = "api://<API client id>/.default";
    let scope = scope.trim_end_matches('/');
    if scope.is_empty() || scope == DEFAULT_SUFFIX {
        return PATTERN.to_owned();
    }
    if scope.ends_with(DEFAULT_SUFFIX) {
        return scope.to_owned();
    }
    if is_guid(scope) {
        return format!("api://{scope}{DEFAULT_SUFFIX}");
    }
    let Some((scheme, rest)) = scope.split_once("://") else {
        return PATTERN.to_owned();
    };
    // `api://{id}/ToDoList.Read` names the resource `api://{id}`: drop the permission.
    let resource = match rest.rsplit_once('/') {
        Some((head, _permission)) if !head.is_empty() => head,
        _ => rest,
    };
    format!("{scheme}://{resource}{DEFAULT_SUFFIX}")
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_default_scopes() {
        for ok in [
            "api://11111111-2222-3333-4444-555555555555/.default",
            " https://graph.microsoft.com/.default ",
            "11111111-2222-3333-4444-555555555555/.default",
        ] {
            assert_eq!(validate(ok).unwrap(), ok.trim());
        }
    }

    #[test]
    fn rejects_others_with_a_suggestion() {
        let id = "11111111-2222-3333-4444-555555555555";
        let cases = [
            (
                format!("api://{id}/ToDoList.Read"),
                format!("api://{id}/.default"),
            ),
            (format!("api://{id}"), format!("api://{id}/.default")),
            (id.to_owned(), format!("api://{id}/.default")),
            (
                "User.Read".to_owned(),
                "api://<API client id>/.default".to_owned(),
            ),
            (
                "/.default".to_owned(),
                "api://<API client id>/.default".to_owned(),
            ),
            (String::new(), "api://<API client id>/.default".to_owned()),
            (
                format!("api://{id}/.default api://other/.default"),
                format!("api://{id}/.default"),
            ),
        ];
        for (scope, want) in cases {
            let err = validate(&scope).unwrap_err();
            let Error::InvalidScope { suggestion, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(suggestion, &want, "{scope}");
            let text = err.to_string();
            assert!(text.contains("/.default"), "{text}");
        }
    }
}
