//! Where a page may send the browser next: only somewhere on this origin.
//!
//! A `next` parameter comes from whoever wrote the link. Browsers read
//! more forms as another site than a prefix check sees: they drop tabs and
//! newlines anywhere in a URL (`/\t/evil.example` is `//evil.example`),
//! read `\` as `/` in http(s) URLs, and accept user info before a host.
//! So the candidate is resolved against this origin with a URL parser that
//! follows the same standard (WHATWG URL), and accepted only when the
//! result is still on this origin. The same function serves the server
//! and the browser.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use url::Url;

/// Where to go when a `next` is missing or refused.
pub const DEFAULT_TARGET: &str = "/tokens";

/// `candidate` resolved against `origin` (`scheme://host[:port]`), as a
/// path with its query and fragment, when it stays on that origin and is
/// not the login page itself; `None` otherwise.
pub fn same_origin_target(candidate: &str, origin: &str) -> Option<String> {
    let base = Url::parse(origin).ok()?;
    if !matches!(base.scheme(), "http" | "https") {
        return None;
    }
    let resolved = base.join(candidate).ok()?;
    if resolved.origin() != base.origin() {
        return None;
    }
    let path = resolved.path();
    if path == "/login" || path.starts_with("/login/") {
        return None;
    }
    let mut target = path.to_owned();
    if let Some(query) = resolved.query() {
        target.push('?');
        target.push_str(query);
    }
    if let Some(fragment) = resolved.fragment() {
        target.push('#');
        target.push_str(fragment);
    }
    // The path alone must lead back to the same place: a path that starts
    // with `//` (from `/.//host`) would be read as another host.
    (base.join(&target).ok()? == resolved).then_some(target)
}

/// The `next` parameter of a page's URL, percent-decoded once, as the
/// browser's own `URLSearchParams` reads it (the router's query map decodes
/// its values a second time, which would turn an encoded `%2509` into a
/// tab and an encoded `%2526` into a separator).
pub fn next_param(href: &str) -> Option<String> {
    Url::parse(href)
        .ok()?
        .query_pairs()
        .find(|(name, _)| name == "next")
        .map(|(_, value)| value.into_owned())
}

/// Where to go after signing in: `next` when [`same_origin_target`]
/// accepts it, else [`DEFAULT_TARGET`].
pub fn after_sign_in(next: Option<&str>, origin: &str) -> String {
    next.and_then(|n| same_origin_target(n, origin))
        .unwrap_or_else(|| DEFAULT_TARGET.to_owned())
}

/// What a query value must not hold as is: separators, `%`, `+` (a space
/// in forms), and anything outside printable ASCII. `/` stays readable.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`');

/// `text` percent-encoded for the value of a query parameter.
pub fn query_value(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:3000";

    #[test]
    fn forms_browsers_read_as_another_origin_go_to_the_default_page() {
        for next in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "\t//evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "\\\\evil.example",
            "//evil.example",
            "///evil.example",
            "/.//evil.example",
            "https://evil.example/",
            "http://evil.example",
            "https:evil.example",
            "http://127.0.0.1:3000@evil.example/",
            "http://127.0.0.1:3001/tokens",
            "https://127.0.0.1:3000/tokens",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "\tjavascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "/login",
            "/login?next=//evil.example",
            "/./login",
        ] {
            assert_eq!(same_origin_target(next, ORIGIN), None, "{next:?}");
            assert_eq!(after_sign_in(Some(next), ORIGIN), "/tokens", "{next:?}");
        }
        assert_eq!(after_sign_in(None, ORIGIN), "/tokens");
        assert_eq!(after_sign_in(Some("/tokens"), "not an origin"), "/tokens");
    }

    #[test]
    fn next_is_decoded_once() {
        let href = |query: &str| format!("{ORIGIN}/login?{query}");
        for (query, next) in [
            ("next=%2Ftokens%3Fx%3D1%23y", Some("/tokens?x=1#y")),
            ("next=/%09/evil.example", Some("/\t/evil.example")),
            ("next=%2F%2509%2Fevil.example", Some("/%09/evil.example")),
            ("next=/tokens%3Fq%3Da%2526b", Some("/tokens?q=a%26b")),
            ("a=1&next=/settings&next=/audit", Some("/settings")),
            ("nextx=/settings", None),
            ("", None),
        ] {
            assert_eq!(next_param(&href(query)).as_deref(), next, "{query}");
        }
    }

    #[test]
    fn a_path_on_this_origin_keeps_its_query_and_fragment() {
        for (next, target) in [
            ("/tokens?x=1#y", "/tokens?x=1#y"),
            ("/settings", "/settings"),
            ("/tokens/42", "/tokens/42"),
            (
                "http://127.0.0.1:3000/audit?action=login",
                "/audit?action=login",
            ),
            // Percent-encoded forms stay a path on this origin.
            ("/%09/evil.example", "/%09/evil.example"),
            ("%2F%2Fevil.example", "/%2F%2Fevil.example"),
            ("/%2F/evil.example", "/%2F/evil.example"),
            ("/a/../providers", "/providers"),
            ("/loginx", "/loginx"),
            // A scheme like this origin's without a host is a relative path.
            ("http:evil.example", "/evil.example"),
        ] {
            assert_eq!(
                same_origin_target(next, ORIGIN).as_deref(),
                Some(target),
                "{next:?}"
            );
        }
    }
}
