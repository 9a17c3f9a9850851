//! Where to go after logging in: only a path on this site, judged as a browser would read it.
//!
//! Browsers drop tabs and newlines from URLs and read a backslash as a slash, so `/\t/evil.example`
//! and `/\evil.example` are `//evil.example`: another site. Anything that isn't plainly a path
//! here becomes `/`, and what is kept is percent-encoded so it is always a valid `Location`.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Longer `next` values are refused: one rides in the session cookie through the factor step,
/// and browsers drop cookies over 4 KB.
pub const MAX_NEXT_BYTES: usize = 1024;

/// What is encoded in a kept path: besides controls and non-ASCII (always encoded), characters a
/// URL can't carry as they are.
const ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'^');

/// `raw` if it is a same-site path, encoded for a `Location` header; else `/`.
pub fn same_site_path(raw: Option<&str>) -> String {
    match raw {
        Some(path) if is_same_site_path(path) => utf8_percent_encode(path, ENCODE).to_string(),
        _ => "/".to_string(),
    }
}

fn is_same_site_path(path: &str) -> bool {
    path.len() <= MAX_NEXT_BYTES
        && path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
        // Invisible format characters (zero-width spaces, bidi overrides) have no business in a
        // path of ours and can disguise one.
        && !path.chars().any(|c| matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_site_paths_are_kept() {
        for path in [
            "/",
            "/users",
            "/users/7?q=ann",
            "/flocks/flock:abc",
            "/a/%2F/b",
        ] {
            assert_eq!(same_site_path(Some(path)), path);
        }
        assert_eq!(same_site_path(Some("/ü")), "/%C3%BC");
        assert_eq!(same_site_path(Some("/a\"b<c>")), "/a%22b%3Cc%3E");
    }

    #[test]
    fn anything_that_could_leave_the_site_becomes_the_root() {
        let long = format!("/{}", "a".repeat(MAX_NEXT_BYTES));
        let hostile = [
            "",
            "users",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\u{b}/evil.example",
            "/\u{c}/evil.example",
            "/\0/evil.example",
            "/ /evil.example",
            "/\u{a0}/evil.example",
            "/\u{3000}/evil.example",
            "/\u{200b}/evil.example",
            "/\u{202e}/evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            " /users",
            &long,
        ];
        for raw in hostile {
            assert_eq!(same_site_path(Some(raw)), "/", "{raw:?}");
        }
        assert_eq!(same_site_path(None), "/");
    }
}
