//! Extra request parameters — a provider's `authorize_params` and
//! `token_params`, a token's `additional_values` — and the names they may
//! not use: the parameters Quiver sets itself.
//!
//! An extra value named like one of Quiver's own parameters would either
//! travel twice (servers differ on which copy wins) or replace Quiver's:
//! another `client_id` next to a signed client assertion, another
//! `redirect_uri` or `state` in an authorization link, a `code_verifier`
//! that is not the one Quiver keeps. So the names are refused wherever
//! extra values come in (the token and provider services, the bundle
//! reader), and the few rows stored before the rule are sent without them
//! ([`merge`]).
//!
//! Names Quiver does not set stay allowed, however "OAuth" they look:
//! `audience` (Auth0 and others), `prompt`, `login_hint`, `acr_values`,
//! `max_age`, `claims`, `authorization_details` and the like are real
//! uses of extra values.

use std::collections::BTreeMap;

/// The parameters Quiver sets itself in authorization links and token,
/// refresh and revocation requests, lower case. Compared without regard to
/// case or surrounding spaces: some servers bind parameters
/// case-insensitively.
pub const RESERVED: &[&str] = &[
    // RFC 6749: the grant, the client, the redirect and the request.
    "response_type",
    "client_id",
    "client_secret",
    "redirect_uri",
    "state",
    "code",
    "grant_type",
    "refresh_token",
    "username",
    "password",
    // The token's own `scope` field (RFC 6749 §3.3).
    "scope",
    // RFC 7636 (PKCE).
    "code_challenge",
    "code_challenge_method",
    "code_verifier",
    // RFC 7521 / RFC 7523: client assertions and assertion grants.
    "client_assertion",
    "client_assertion_type",
    "assertion",
    // RFC 8707: the token's own `resource` field.
    "resource",
    // RFC 9126 and RFC 9101 / OIDC Core 6: a request object or its URI
    // would carry parameters of its own in place of Quiver's.
    "request",
    "request_uri",
    // OIDC Core 3.3: the hybrid flow's nonce and how the answer reaches
    // Quiver's callback.
    "nonce",
    "response_mode",
    // RFC 8628: the Device Code flow's polls.
    "device_code",
];

/// Whether `name` is one of [`RESERVED`].
pub fn is_reserved(name: &str) -> bool {
    let name = name.trim();
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// What is wrong with a map of extra parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamProblem {
    /// A name that is empty or only spaces.
    EmptyName,
    /// A name Quiver sets itself; the key as given.
    Reserved(String),
}

impl ParamProblem {
    /// The key it concerns, when there is one (for a field path such as
    /// `additional_values.client_id`).
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::EmptyName => None,
            Self::Reserved(key) => Some(key),
        }
    }

    /// What is wrong and what to do instead.
    pub fn message(&self) -> String {
        match self {
            Self::EmptyName => "has an empty parameter name".to_owned(),
            Self::Reserved(key) => {
                let name = key.trim().to_ascii_lowercase();
                let instead = match name.as_str() {
                    "scope" => " Put the scope in the token's scope field.",
                    "resource" => " Put it in the token's resource field (RFC 8707).",
                    "client_id" | "client_secret" => {
                        " Set the client on the provider, or the token's own keys."
                    }
                    "username" | "password" => " Use the token's username and password.",
                    _ => "",
                };
                format!(
                    "{:?} is a parameter Quiver sets itself, so it cannot be an extra value.{instead}",
                    key.trim()
                )
            }
        }
    }
}

/// Checks the names of a map of extra parameters: the first empty or
/// reserved name is the problem.
pub fn check(map: &BTreeMap<String, String>) -> Result<(), ParamProblem> {
    for key in map.keys() {
        if key.trim().is_empty() {
            return Err(ParamProblem::EmptyName);
        }
        if is_reserved(key) {
            return Err(ParamProblem::Reserved(key.clone()));
        }
    }
    Ok(())
}

/// The reserved names among a provider's and a token's extra parameters
/// (rows stored before they were refused), with where each is: what
/// [`merge`] leaves out, for the caller to log with the row it concerns.
pub fn stored_reserved<'m>(
    provider: &'m BTreeMap<String, String>,
    token: &'m BTreeMap<String, String>,
) -> Vec<(&'static str, &'m str)> {
    let of = |source: &'static str, map: &'m BTreeMap<String, String>| {
        map.keys()
            .filter(|k| is_reserved(k))
            .map(move |k| (source, k.trim()))
    };
    of("provider", provider).chain(of("token", token)).collect()
}

/// `map` without its reserved names: what a stored row effectively sends
/// (an export writes this, so the bundle imports).
pub fn without_reserved(mut map: BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.retain(|k, _| !is_reserved(k));
    map
}

/// The extra parameters to send after Quiver's own `set`: the provider's,
/// then the token's the provider does not set, so that the provider's
/// win. Reserved names (in rows stored before they were refused; see
/// [`stored_reserved`]) and names already in `set` are left out.
pub fn merge(
    set: &[(String, String)],
    provider: &BTreeMap<String, String>,
    token: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(provider.len() + token.len());
    let taken = |out: &[(String, String)], key: &str| {
        let key = key.trim();
        set.iter()
            .chain(out.iter())
            .any(|(k, _)| k.trim().eq_ignore_ascii_case(key))
    };
    for map in [provider, token] {
        for (k, v) in map {
            if k.trim().is_empty() || is_reserved(k) {
                continue;
            }
            if !taken(&out, k) {
                out.push((k.clone(), v.clone()));
            }
        }
    }
    out
}

/// The scopes of a scope text: separated by whitespace or commas, as
/// people type and providers answer them.
pub fn scopes(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
}

/// A scope text as the `scope` parameter of a provider that joins scopes
/// with `separator` (a space by the standard, a comma at Slack).
pub fn scope_param(text: &str, separator: &str) -> String {
    scopes(text).collect::<Vec<_>>().join(separator)
}

/// `scope` as typed, with each of `required`'s scopes it leaves out added
/// at its end; `None` when both are empty.
pub fn with_required(scope: Option<&str>, required: Option<&str>) -> Option<String> {
    let scope = scope.map(str::trim).filter(|s| !s.is_empty());
    let given: Vec<&str> = scope.map(|s| scopes(s).collect()).unwrap_or_default();
    let mut missing: Vec<&str> = Vec::new();
    for r in required.map(scopes).into_iter().flatten() {
        if !given.contains(&r) && !missing.contains(&r) {
            missing.push(r);
        }
    }
    match (scope, missing.is_empty()) {
        (scope, true) => scope.map(str::to_owned),
        (Some(scope), false) => Some(format!("{scope} {}", missing.join(" "))),
        (None, false) => Some(missing.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn quivers_own_parameters_are_refused_whatever_their_case() {
        for name in [
            "client_id",
            "Client_ID",
            " grant_type ",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_verifier",
            "client_assertion",
            "client_assertion_type",
            "request_uri",
            "nonce",
            "scope",
            "resource",
        ] {
            assert!(is_reserved(name), "{name}");
            let err = check(&map(&[("audience", "api"), (name, "x")])).unwrap_err();
            assert_eq!(err.key(), Some(name));
            assert!(err.message().contains("Quiver sets itself"), "{err:?}");
        }
    }

    #[test]
    fn real_extra_values_stay_allowed() {
        for name in [
            "audience",
            "prompt",
            "login_hint",
            "acr_values",
            "max_age",
            "claims",
            "authorization_details",
            "access_type",
        ] {
            assert!(!is_reserved(name), "{name}");
        }
        check(&map(&[("audience", "api"), ("prompt", "consent")])).unwrap();
        assert_eq!(
            check(&map(&[(" ", "x")])).unwrap_err(),
            ParamProblem::EmptyName
        );
    }

    #[test]
    fn the_providers_values_win_and_reserved_names_are_never_sent() {
        let set = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
        let provider = map(&[("audience", "provider-api"), ("Client_Id", "p")]);
        let token = map(&[
            ("audience", "token-api"),
            ("client_id", "someone-else"),
            ("grant_type", "password"),
            ("tenant", "blue"),
        ]);
        assert_eq!(
            merge(&set, &provider, &token),
            vec![
                ("audience".to_owned(), "provider-api".to_owned()),
                ("tenant".to_owned(), "blue".to_owned()),
            ]
        );
        assert_eq!(
            stored_reserved(&provider, &token),
            [
                ("provider", "Client_Id"),
                ("token", "client_id"),
                ("token", "grant_type")
            ]
        );
        assert_eq!(
            without_reserved(token),
            map(&[("audience", "token-api"), ("tenant", "blue")])
        );
        // A name Quiver already sent is not sent again, in any case.
        let set = vec![("Prompt".to_owned(), "login".to_owned())];
        assert!(merge(&set, &map(&[("prompt", "consent")]), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn required_scopes_are_added_once_and_scopes_joined_as_the_provider_wants() {
        assert_eq!(
            with_required(Some("read write"), Some("offline_access")).as_deref(),
            Some("read write offline_access")
        );
        // Nothing missing: kept as typed.
        assert_eq!(
            with_required(Some("offline_access,read"), Some("offline_access")).as_deref(),
            Some("offline_access,read")
        );
        assert_eq!(
            with_required(None, Some("openid  offline_access")).as_deref(),
            Some("openid offline_access")
        );
        assert_eq!(with_required(Some(" "), None), None);
        assert_eq!(scope_param("a b,c", ","), "a,b,c");
        assert_eq!(scope_param("a,b", " "), "a b");
    }
}
