//! JSON as .NET configuration reads it (`appsettings.json`): `//` and
//! `/* */` comments and trailing commas are allowed, and keys match without
//! regard to case. Shared by every crate that reads the sample's files.

use serde_json::{Map, Value};

use crate::Error;

/// Parses appsettings text into JSON, tolerating comments and trailing commas.
pub fn parse(text: &str) -> Result<Value, Error> {
    serde_json::from_str(&strip_jsonc(text))
        .map_err(|e| Error::Config(format!("appsettings is not valid JSON: {e}")))
}

/// The value of `key` in `map`, matched case-insensitively like .NET
/// configuration (an exact match wins).
pub fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Removes `//` and `/* */` comments and trailing commas outside strings.
fn strip_jsonc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                out.push(' ');
            }
            (']' | '}', _) => {
                let trimmed = out.trim_end().len();
                if out[..trimmed].ends_with(',') {
                    out.truncate(trimmed - 1);
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_trailing_commas() {
        let text = "{ // c\n \"a\": \"x//y\", /* b */ \"l\": [1, 2, ], \"B\": 1, }";
        let v = parse(text).unwrap();
        assert_eq!(v["a"], "x//y");
        assert_eq!(v["l"].as_array().unwrap().len(), 2);
        assert_eq!(get(v.as_object().unwrap(), "b"), Some(&Value::from(1)));
    }
}
