//! The provider catalogue: well-known providers as templates, kept as data
//! in `server/provider-templates.toml` (each fact with the documentation
//! page it came from). A template and the admin's inputs (tenant, domain,
//! realm …) make the settings of a new provider; whatever the admin also
//! gives wins over the template.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use app::providers::{
    ExpiresIn, ProviderInput, ProviderTemplate, TemplateInput, TemplateInputKind,
};
use serde::Deserialize;

use app::error::AppError;

use crate::oauth::params;

/// The catalogue file, compiled in.
const CATALOGUE_TOML: &str = include_str!("../../provider-templates.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    template: Vec<ProviderTemplate>,
}

static CATALOGUE: LazyLock<Vec<ProviderTemplate>> = LazyLock::new(|| {
    // The file is part of the build and checked by the tests below.
    toml::from_str::<Catalogue>(CATALOGUE_TOML)
        .map(|c| c.template)
        .unwrap_or_else(|e| panic!("server/provider-templates.toml: {e}"))
});

/// Every template, in the catalogue's order.
pub fn all() -> &'static [ProviderTemplate] {
    &CATALOGUE
}

/// The template with this id.
pub fn find(id: &str) -> Option<&'static ProviderTemplate> {
    all().iter().find(|t| t.id == id.trim())
}

/// Longest input value, in characters.
const MAX_INPUT_CHARS: usize = 200;

/// An input value checked for its kind: nothing that could move a
/// placeholder out of its place in a URL (no `/`, `?`, `#`, `@` or space
/// in a label or host; a URL input is a bare https base).
fn check_input(input: &TemplateInput, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("is required".into());
    }
    if value.chars().count() > MAX_INPUT_CHARS {
        return Err(format!("must be at most {MAX_INPUT_CHARS} characters"));
    }
    match input.kind {
        TemplateInputKind::Label => {
            let ok = value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                && value.chars().any(|c| c.is_ascii_alphanumeric());
            if !ok {
                return Err("may hold only letters, digits, '.', '-' and '_'".into());
            }
            Ok(value.to_owned())
        }
        TemplateInputKind::Host => {
            let host = value.to_ascii_lowercase();
            let ok = host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !ok {
                return Err(
                    "must be a host name such as example.okta.com, without https:// or a path"
                        .into(),
                );
            }
            Ok(host)
        }
        TemplateInputKind::Value => {
            if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err("may not hold spaces or control characters".into());
            }
            Ok(value.to_owned())
        }
        TemplateInputKind::Url => {
            let base = value.trim_end_matches('/');
            let url = url::Url::parse(base)
                .map_err(|_| "must be a URL such as https://gitlab.example.com".to_owned())?;
            if !matches!(url.scheme(), "https" | "http")
                || url.host_str().is_none()
                || url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
                || url.password().is_some()
            {
                return Err("must be an https base URL without a query, fragment or user".into());
            }
            // The endpoint built from it is checked like any other URL
            // (https, or http on loopback where allowed).
            Ok(base.to_owned())
        }
    }
}

/// Fills the `{name}` placeholders of `text`.
fn fill(text: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The provider settings a template makes with `inputs`, before the
/// admin's own fields are laid over them. Errors name the input
/// (`template_inputs.tenant`).
pub fn settings(
    template: &ProviderTemplate,
    inputs: &BTreeMap<String, String>,
) -> Result<ProviderInput, AppError> {
    for name in inputs.keys() {
        if !template.inputs.iter().any(|i| &i.name == name) {
            let known: Vec<&str> = template.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(AppError::invalid(
                "template_inputs",
                if known.is_empty() {
                    format!(
                        "{name:?} is not an input of {}: it takes none",
                        template.name
                    )
                } else {
                    format!(
                        "{name:?} is not an input of {}; its inputs are {}",
                        template.name,
                        known.join(", ")
                    )
                },
            ));
        }
    }
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    for input in &template.inputs {
        let given = inputs
            .get(&input.name)
            .map(String::as_str)
            .or(input.default.as_deref())
            .unwrap_or_default();
        let value = check_input(input, given).map_err(|message| {
            AppError::invalid(
                format!("template_inputs.{}", input.name),
                format!("{} {message}", input.label),
            )
        })?;
        values.insert(&input.name, value);
    }
    let url = |text: &Option<String>| text.as_deref().map(|t| fill(t, &values));
    let required = template.required_scopes.join(" ");
    let authorize_params = template
        .authorize_params
        .iter()
        .map(|(k, v)| (k.clone(), fill(v, &values)))
        .collect();
    let token_params = template
        .token_params
        .iter()
        .map(|(k, v)| (k.clone(), fill(v, &values)))
        .collect();
    Ok(ProviderInput {
        name: Some(template.name.clone()),
        issuer: url(&template.issuer),
        authorization_endpoint: url(&template.authorization_endpoint),
        token_endpoint: Some(fill(&template.token_endpoint, &values)),
        refresh_endpoint: url(&template.refresh_endpoint),
        revocation_endpoint: url(&template.revocation_endpoint),
        jwks_uri: url(&template.jwks_uri),
        pushed_authorization_request_endpoint: url(&template.pushed_authorization_request_endpoint),
        device_authorization_endpoint: url(&template.device_authorization_endpoint),
        client_auth_method: Some(template.client_auth_method.to_string()),
        pkce: Some(template.pkce),
        scope_separator: Some(template.scope_separator.clone()),
        default_lifetime_seconds: template.default_lifetime_seconds,
        expires_in_unit: Some(
            match template.expires_in {
                ExpiresIn::Milliseconds => "milliseconds",
                ExpiresIn::Seconds | ExpiresIn::Absent => "seconds",
            }
            .into(),
        ),
        authorize_params: Some(authorize_params),
        token_params: Some(token_params),
        default_scope: params::with_required(
            Some(&template.default_scopes.join(" ")),
            Some(&required),
        ),
        required_scope: params::with_required(None, Some(&required)),
        revocation_format: Some(template.revocation_format.to_string()),
        token_response_path: template.token_response_path.clone(),
        keep_response_fields: Some(template.keep_response_fields.clone()),
        refresh_token_rotates: Some(template.refresh_token_rotates.unwrap_or(false)),
        omit_scope_on_refresh: Some(template.omit_scope_on_refresh.unwrap_or(true)),
        send_client_id_in_body: Some(template.send_client_id_in_body.unwrap_or(false)),
        refresh_token_lifetime_seconds: template
            .refresh_token_lifetime_days
            .map(|days| i64::from(days) * 86_400),
        refresh_token_lifetime_sliding: template.refresh_token_lifetime_sliding,
        template: Some(template.id.clone()),
        ..Default::default()
    })
}

/// `base` (the template's settings) with every field `over` gives laid
/// over it.
pub fn overlay(base: ProviderInput, over: ProviderInput) -> ProviderInput {
    macro_rules! pick {
        ($($f:ident),* $(,)?) => {
            ProviderInput { $($f: over.$f.or(base.$f),)* }
        };
    }
    pick!(
        name,
        issuer,
        authorization_endpoint,
        token_endpoint,
        refresh_endpoint,
        revocation_endpoint,
        jwks_uri,
        client_id,
        client_secret,
        next_client_secret,
        client_secret_expires_at,
        next_client_secret_expires_at,
        client_auth_method,
        private_key_pem,
        generate_key,
        key_id,
        signing_alg,
        certificate_pem,
        generate_certificate,
        send_sha1_thumbprint,
        assertion_audience,
        pkce,
        scope_separator,
        default_lifetime_seconds,
        expires_in_unit,
        authorize_params,
        token_params,
        connect_timeout_ms,
        timeout_ms,
        refresh_concurrency,
        refresh_rate_per_minute,
        iss_parameter_supported,
        default_scope,
        required_scope,
        token_response_path,
        keep_response_fields,
        refresh_token_rotates,
        omit_scope_on_refresh,
        omit_code_on_refresh,
        url_encode_refresh_token,
        send_client_id_in_body,
        pushed_authorization_request_endpoint,
        device_authorization_endpoint,
        refresh_token_lifetime_seconds,
        refresh_token_lifetime_sliding,
        test_request_url,
        test_request_method,
        revocation_format,
        test_after_renewal,
        template,
        template_inputs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::{params, url_policy};

    fn example_inputs(t: &ProviderTemplate) -> BTreeMap<String, String> {
        t.inputs
            .iter()
            .filter(|i| i.default.is_none())
            .map(|i| {
                let value = i.example.clone().unwrap_or_else(|| match i.kind {
                    TemplateInputKind::Label => "acme".into(),
                    TemplateInputKind::Host => "acme.example.com".into(),
                    TemplateInputKind::Url => "https://acme.example.com".into(),
                    TemplateInputKind::Value => "https://api.acme.example/".into(),
                });
                (i.name.clone(), value)
            })
            .collect()
    }

    #[test]
    fn the_catalogue_has_at_least_twenty_providers_with_unique_ids() {
        let all = all();
        assert!(all.len() >= 20, "{} templates", all.len());
        let mut ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "ids are unique");
        for wanted in [
            "microsoft-entra-id",
            "google",
            "salesforce",
            "github-oauth-app",
            "github-app",
            "gitlab",
            "slack",
            "okta",
            "auth0",
            "keycloak",
            "hubspot",
            "atlassian",
            "zoom",
            "dropbox",
            "box",
            "xero",
            "intuit-quickbooks",
            "docusign",
            "linkedin",
            "spotify",
            "discord",
            "zendesk",
        ] {
            assert!(find(wanted).is_some(), "{wanted}");
        }
    }

    #[test]
    fn every_template_builds_valid_settings_from_its_examples() {
        for t in all() {
            assert!(
                t.sources.contains_key("endpoints"),
                "{}: the endpoints' source",
                t.id
            );
            for url in t.sources.values().chain([&t.documentation]) {
                assert!(url.starts_with("https://"), "{}: {url}", t.id);
            }
            for (name, _) in t.authorize_params.iter().chain(&t.token_params) {
                assert!(!params::is_reserved(name), "{}: {name}", t.id);
            }
            let s = settings(t, &example_inputs(t)).unwrap_or_else(|e| panic!("{}: {e:?}", t.id));
            for url in [
                &s.issuer,
                &s.authorization_endpoint,
                &s.token_endpoint,
                &s.refresh_endpoint,
                &s.revocation_endpoint,
                &s.jwks_uri,
                &s.pushed_authorization_request_endpoint,
                &s.device_authorization_endpoint,
            ]
            .into_iter()
            .flatten()
            {
                // The tenant placeholder of a multi-tenant issuer is filled
                // from each id_token, not from an input.
                let url = &url.replace(crate::oauth::id_token::TENANT_PLACEHOLDER, "tenant");
                assert!(
                    !url.contains(['{', '}']),
                    "{}: a placeholder without an input: {url}",
                    t.id
                );
                url_policy::check_url(url, false)
                    .unwrap_or_else(|e| panic!("{}: {url}: {e}", t.id));
            }
            if let Some(path) = &s.token_response_path {
                super::super::check_token_response_path(path).unwrap();
            }
            super::super::check_keep_response_fields(&t.keep_response_fields).unwrap();
            super::super::check_scope_separator(&t.scope_separator).unwrap();
            if t.flows.iter().any(|f| f.is_interactive()) {
                assert!(s.authorization_endpoint.is_some(), "{}", t.id);
            }
        }
    }

    fn field_and_message(e: AppError) -> (String, String) {
        match e {
            AppError::Validation {
                field: Some(field),
                message,
            } => (field, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_value_input_is_kept_exactly_and_never_part_of_an_endpoint() {
        for t in all() {
            let endpoints = [
                &t.issuer,
                &t.authorization_endpoint,
                &t.refresh_endpoint,
                &t.revocation_endpoint,
                &t.jwks_uri,
                &t.pushed_authorization_request_endpoint,
                &t.device_authorization_endpoint,
            ]
            .into_iter()
            .flatten()
            .chain([&t.token_endpoint]);
            for url in endpoints {
                for input in t
                    .inputs
                    .iter()
                    .filter(|i| i.kind == TemplateInputKind::Value)
                {
                    assert!(
                        !url.contains(&format!("{{{}}}", input.name)),
                        "{}: {url}",
                        t.id
                    );
                }
            }
        }
        let auth0 = find("auth0").unwrap();
        let inputs = |audience: &str| {
            BTreeMap::from([
                ("domain".to_owned(), "acme.us.auth0.com".to_owned()),
                ("audience".to_owned(), audience.to_owned()),
            ])
        };
        // Auth0 compares the audience exactly: a trailing slash stays.
        for audience in ["https://api.example.com/", "urn:acme:orders", "orders-api"] {
            let s = settings(auth0, &inputs(audience)).unwrap();
            assert_eq!(
                s.authorize_params
                    .unwrap()
                    .get("audience")
                    .map(String::as_str),
                Some(audience)
            );
        }
        let (field, _) = field_and_message(settings(auth0, &inputs("a b")).unwrap_err());
        assert_eq!(field, "template_inputs.audience");
    }

    #[test]
    fn inputs_cannot_leave_their_place_in_the_url() {
        let entra = find("microsoft-entra-id").unwrap();
        for bad in [
            "evil.example/x",
            "a?b",
            "a#b",
            "user@evil",
            "a b",
            "..",
            "",
            "tenant/../../x",
        ] {
            let inputs = BTreeMap::from([("tenant".to_owned(), bad.to_owned())]);
            let (field, _) = field_and_message(settings(entra, &inputs).unwrap_err());
            assert_eq!(field, "template_inputs.tenant", "{bad}");
        }
        let okta = find("okta").unwrap();
        let host = okta
            .inputs
            .iter()
            .find(|i| i.kind == TemplateInputKind::Host)
            .unwrap();
        for bad in [
            "https://acme.okta.com",
            "acme.okta.com/oauth2",
            "-x.okta.com",
            "a..b",
        ] {
            let inputs = BTreeMap::from([(host.name.clone(), bad.to_owned())]);
            assert!(settings(okta, &inputs).is_err(), "{bad}");
        }
        let (field, message) = field_and_message(
            settings(
                entra,
                &BTreeMap::from([("tennant".to_owned(), "x".to_owned())]),
            )
            .unwrap_err(),
        );
        assert_eq!(field, "template_inputs");
        assert!(message.contains("tenant"), "{message}");
    }

    #[test]
    fn a_template_fills_its_placeholders_and_defaults() {
        let entra = find("microsoft-entra-id").unwrap();
        let s = settings(
            entra,
            &BTreeMap::from([("tenant".to_owned(), "contoso.onmicrosoft.com".to_owned())]),
        )
        .unwrap();
        assert_eq!(
            s.token_endpoint.as_deref(),
            Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
        );
        assert!(s.default_scope.unwrap().contains("offline_access"));
        assert_eq!(s.template.as_deref(), Some("microsoft-entra-id"));
        // Sign-ins from any tenant: each id_token's own tenant in the issuer.
        assert_eq!(
            s.issuer.as_deref(),
            Some("https://login.microsoftonline.com/{tenantid}/v2.0")
        );
        // The input's default.
        let s = settings(entra, &BTreeMap::new()).unwrap();
        assert!(s.token_endpoint.unwrap().contains("/common/"));
        let google = find("google").unwrap();
        let s = settings(google, &BTreeMap::new()).unwrap();
        let params = s.authorize_params.unwrap();
        assert_eq!(
            params.get("access_type").map(String::as_str),
            Some("offline")
        );
        let salesforce = settings(find("salesforce").unwrap(), &BTreeMap::new()).unwrap();
        assert!(
            salesforce
                .keep_response_fields
                .unwrap()
                .contains(&"instance_url".to_owned())
        );
    }

    #[test]
    fn the_documented_list_names_every_template() {
        let doc = include_str!("../../../docs/PROVIDER_TEMPLATES.md");
        for t in all() {
            assert!(
                doc.contains(&format!("(`{}`)", t.id)),
                "docs/PROVIDER_TEMPLATES.md lacks {}",
                t.id
            );
        }
    }

    #[test]
    fn what_the_admin_gives_wins_over_the_template() {
        let base = settings(find("google").unwrap(), &BTreeMap::new()).unwrap();
        let over = ProviderInput {
            name: Some("Google (marketing)".into()),
            default_scope: Some("openid".into()),
            ..Default::default()
        };
        let merged = overlay(base.clone(), over);
        assert_eq!(merged.name.as_deref(), Some("Google (marketing)"));
        assert_eq!(merged.default_scope.as_deref(), Some("openid"));
        assert_eq!(merged.token_endpoint, base.token_endpoint);
    }
}
