//! The semantic checks of a well-typed bundle: duplicates, dangling
//! references, names, URLs, the settings' ranges and which flows each
//! provider can serve. Every problem is listed with its JSON path.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use super::{Problem, push_key};
use crate::oauth::certificate::Certificate;
use crate::oauth::client_auth::ClientAuthMethod;
use crate::oauth::signing_key::SigningAlg;
use crate::oauth::{params, url_policy};
use crate::providers::{
    Wording, check_connect_timeout_ms, check_default_lifetime, check_keep_response_fields,
    check_name, check_refresh_concurrency, check_refresh_rate_per_minute,
    check_refresh_token_lifetime, check_scope_separator, check_timeout_ms,
    check_token_response_path,
};
use crate::tokens::Flow;
use crate::tokens::validation::{
    ProviderShape, check_own_keys, check_refresh_lead, check_refresh_margin, check_resource,
    flow_misfits,
};
use crate::transfer::bundle::{Bundle, CIPHER, ProviderEntry, SealedValue};
use crate::transfer::mac::{self, MAC_LEN};
use crate::transfer::passphrase::{KdfParams, TransferError, decode_sealed};
use crate::transfer::text::{clip, quoted};

/// Collects problems up to a cap, then only counts them.
struct Problems {
    list: Vec<Problem>,
    max: usize,
    dropped: usize,
}

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.list.len() < self.max {
            self.list.push(Problem::new(path, message));
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<Problem> {
        if self.dropped > 0 {
            let message = format!("{} more problems are not listed", self.dropped);
            self.list.push(Problem::new("$", message));
        }
        self.list
    }
}

/// Every semantic problem of a well-typed bundle.
pub(super) fn validate(bundle: &Bundle, max_problems: usize) -> Vec<Problem> {
    let mut p = Problems {
        list: Vec::new(),
        max: max_problems,
        dropped: 0,
    };
    check_secrets(bundle, &mut p);
    let provider_ids = check_providers(&bundle.providers, &mut p);
    check_tokens(bundle, &provider_ids, &mut p);
    p.finish()
}

fn check_secrets(bundle: &Bundle, p: &mut Problems) {
    match &bundle.secrets {
        Some(header) => {
            if let Err(e) = KdfParams::from_header(&header.kdf) {
                let path = match &e {
                    TransferError::KdfParameter { name, .. } => format!("$.secrets.kdf.{name}"),
                    TransferError::Salt(_) => "$.secrets.kdf.salt".to_owned(),
                    TransferError::UnsupportedKdf(_) => "$.secrets.kdf.algorithm".to_owned(),
                    _ => "$.secrets.kdf".to_owned(),
                };
                p.push(path, e.to_string());
            }
            if header.cipher != CIPHER {
                p.push(
                    "$.secrets.cipher",
                    format!("must be \"{CIPHER}\", not {}", quoted(&header.cipher)),
                );
            }
            if let Err(reason) = decode_sealed(&header.check) {
                p.push("$.secrets.check.sealed", reason);
            }
        }
        None => {
            let mut sealed = bundle.sealed_values();
            if let Some((first, _)) = sealed.next() {
                let others = match sealed.count() {
                    0 => String::new(),
                    n => format!(" (and {n} more)"),
                };
                p.push(
                    "$.secrets",
                    format!(
                        "is missing, but {first}{others} holds a sealed value: without the key parameters no secret can be opened"
                    ),
                );
            }
        }
    }
    for (path, value) in bundle.sealed_values() {
        if let Err(reason) = decode_sealed(value) {
            p.push(format!("{path}.sealed"), reason);
        }
    }
    // The code itself is checked on import, with the passphrase's key.
    if let Some(text) = &bundle.mac {
        if bundle.secrets.is_none() {
            p.push(
                "$.mac",
                "only a bundle with secrets carries an authentication code: without $.secrets there is no key to check it",
            );
        } else if mac::decode(text).is_err() {
            p.push(
                "$.mac",
                format!("must be standard base64 of {MAC_LEN} bytes (HMAC-SHA256)"),
            );
        }
    }
}

/// Checks the providers; returns each id with the index of its first entry.
fn check_providers<'b>(
    providers: &'b [ProviderEntry],
    p: &mut Problems,
) -> HashMap<&'b str, usize> {
    let mut ids = HashMap::with_capacity(providers.len());
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(providers.len());
    for (i, pr) in providers.iter().enumerate() {
        let at = |field: &str| format!("$.providers[{i}].{field}");
        if check_id(&pr.id, &at("id"), p)
            && let Some(first) = first_seen(&mut ids, pr.id.as_str(), i)
        {
            p.push(
                at("id"),
                format!(
                    "duplicate provider id {}: $.providers[{}] has it already",
                    quoted(&pr.id),
                    first
                ),
            );
        }
        if name_ok(&pr.name, &at("name"), p)
            && let Some(first) = first_seen(&mut names, pr.name.trim(), i)
        {
            p.push(
                at("name"),
                format!(
                    "duplicate provider name {}: $.providers[{}] has it already, and provider names are unique",
                    quoted(pr.name.trim()),
                    first
                ),
            );
        }
        check_url(Some(&pr.token_endpoint), &at("token_endpoint"), p);
        for (field, value) in [
            ("issuer", &pr.issuer),
            ("authorization_endpoint", &pr.authorization_endpoint),
            ("refresh_endpoint", &pr.refresh_endpoint),
            ("revocation_endpoint", &pr.revocation_endpoint),
            ("jwks_uri", &pr.jwks_uri),
            (
                "pushed_authorization_request_endpoint",
                &pr.pushed_authorization_request_endpoint,
            ),
            (
                "device_authorization_endpoint",
                &pr.device_authorization_endpoint,
            ),
            ("test_request_url", &pr.test_request_url),
        ] {
            check_url(value.as_deref(), &at(field), p);
        }
        if let Some(Err(e)) = pr
            .test_request_method
            .as_deref()
            .map(str::parse::<app::tokens::TestMethod>)
        {
            p.push(at("test_request_method"), e.to_string());
        }
        if let Err(e) = pr.client_auth_method.parse::<ClientAuthMethod>() {
            p.push(
                at("client_auth_method"),
                format!("{}, not {}", e.must_be(), quoted(&pr.client_auth_method)),
            );
        }
        if let Some(alg) = &pr.signing_alg
            && SigningAlg::parse(alg).is_none()
        {
            p.push(
                at("signing_alg"),
                format!("must be RS256, PS256 or ES256, not {}", quoted(alg)),
            );
        }
        if let Some(Err(e)) = pr.certificate.as_deref().map(Certificate::from_pem) {
            p.push(at("certificate"), format!("the certificate {e}"));
        }
        let ranges = [
            check_scope_separator(&pr.scope_separator),
            pr.default_lifetime_secs
                .map_or(Ok(()), |s| check_default_lifetime(s, Wording::Bundle)),
            pr.refresh_token_lifetime_secs
                .map_or(Ok(()), |s| check_refresh_token_lifetime(s, Wording::Bundle)),
            check_connect_timeout_ms(pr.connect_timeout_ms),
            check_timeout_ms(pr.timeout_ms),
            check_refresh_concurrency(pr.refresh_concurrency),
            check_refresh_rate_per_minute(pr.refresh_rate_per_minute),
            pr.token_response_path
                .as_deref()
                .map_or(Ok(()), check_token_response_path),
            check_keep_response_fields(&pr.keep_response_fields),
        ];
        for e in ranges.into_iter().filter_map(Result::err) {
            p.push(at(e.field), e.message);
        }
        for (field, map) in [
            ("authorize_params", &pr.authorize_params),
            ("token_params", &pr.token_params),
        ] {
            check_params(map, &at(field), p);
        }
        check_expiries(
            [
                (pr.client_secret_expires_at, &pr.client_secret),
                (pr.next_client_secret_expires_at, &pr.next_client_secret),
            ],
            at,
            p,
        );
    }
    ids
}

fn check_tokens(bundle: &Bundle, provider_ids: &HashMap<&str, usize>, p: &mut Problems) {
    let tokens = &bundle.tokens;
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    // Import matches tokens by owner and name; two alike in one bundle
    // would make the conflict policy ambiguous.
    let mut names: HashMap<(Option<String>, &str), usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let at = |field: &str| format!("$.tokens[{i}].{field}");
        if check_id(&t.id, &at("id"), p)
            && let Some(first) = first_seen(&mut ids, t.id.as_str(), i)
        {
            p.push(
                at("id"),
                format!(
                    "duplicate token id {}: $.tokens[{}] has it already",
                    quoted(&t.id),
                    first
                ),
            );
        }
        if name_ok(&t.name, &at("name"), p) {
            let owner = t.owner_email.as_deref().map(str::to_lowercase);
            if let Some(first) = first_seen(&mut names, (owner, t.name.trim()), i) {
                p.push(
                    at("name"),
                    format!(
                        "duplicate token name {} for the same owner: $.tokens[{}] has it already",
                        quoted(t.name.trim()),
                        first
                    ),
                );
            }
        }
        if let Some(email) = &t.owner_email
            && !email.contains('@')
        {
            p.push(at("owner_email"), "must be an email address");
        }
        let provider = match provider_ids.get(t.provider_id.as_str()) {
            Some(&j) => Some(&bundle.providers[j]),
            None => {
                p.push(
                    at("provider_id"),
                    format!(
                        "no provider in this bundle has the id {}",
                        quoted(&t.provider_id)
                    ),
                );
                None
            }
        };
        let flow = match t.flow.parse::<Flow>() {
            Ok(flow) => Some(flow),
            Err(e) => {
                p.push(
                    at("flow"),
                    format!("{}, not {}", e.must_be(), quoted(&t.flow)),
                );
                None
            }
        };
        let shape = provider.map(ProviderShape::from);
        if let (Some(flow), Some(shape)) = (flow, &shape) {
            for e in flow_misfits(flow, shape, Wording::Bundle) {
                p.push(at(e.field), e.message);
            }
        }
        if let Some(Err(e)) = shape.map(|s| check_own_keys(t.use_default_keys, &s, Wording::Bundle))
        {
            p.push(at(e.field), e.message);
        }
        if flow == Some(Flow::Password) && t.username.as_deref().is_none_or(|u| u.trim().is_empty())
        {
            p.push(at("username"), "is required for the password flow");
        }
        if !t.use_default_keys && t.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
            p.push(
                at("client_id"),
                "is required when use_default_keys is false",
            );
        }
        let checks = [
            check_refresh_margin(t.refresh_margin_secs, Wording::Bundle),
            check_refresh_lead(t.refresh_lead_secs, Wording::Bundle),
            t.resource.as_deref().map_or(Ok(()), check_resource),
        ];
        for e in checks.into_iter().filter_map(Result::err) {
            p.push(at(e.field), e.message);
        }
        check_params(&t.additional_values, &at("additional_values"), p);
        check_url(t.test_request_url.as_deref(), &at("test_request_url"), p);
        if let Some(Err(e)) = t
            .test_request_method
            .as_deref()
            .map(str::parse::<app::tokens::TestMethod>)
        {
            p.push(at("test_request_method"), e.to_string());
        }
        check_expiries(
            [
                (t.client_secret_expires_at, &t.client_secret),
                (t.next_client_secret_expires_at, &t.next_client_secret),
            ],
            at,
            p,
        );
    }
}

/// A client secret's expiry travels with the secret: alone, it would be
/// dropped on import, so it is refused instead. `secrets` are the current
/// and the next secret, each with its expiry.
fn check_expiries(
    secrets: [(Option<chrono::DateTime<chrono::Utc>>, &Option<SealedValue>); 2],
    at: impl Fn(&str) -> String,
    p: &mut Problems,
) {
    for ((expiry, secret), name) in secrets
        .into_iter()
        .zip(["client_secret", "next_client_secret"])
    {
        if expiry.is_some() && secret.is_none() {
            p.push(
                at(&format!("{name}_expires_at")),
                format!("is the expiry of {name}, which this entry does not carry: an expiry travels with its secret"),
            );
        }
    }
}

/// Extra parameters follow the services' rule ([`params::check`]); the
/// path names the key, e.g. `$.tokens[3].additional_values.client_id`.
fn check_params(map: &BTreeMap<String, String>, path: &str, p: &mut Problems) {
    match params::check(map) {
        Ok(()) => {}
        Err(problem) => {
            let mut at = path.to_owned();
            if let Some(key) = problem.key() {
                push_key(&mut at, key);
            }
            p.push(at, problem.message());
        }
    }
}

/// Notes `key` as seen at `i`; when it was seen before, the index where.
fn first_seen<K: Hash + Eq>(seen: &mut HashMap<K, usize>, key: K, i: usize) -> Option<usize> {
    match seen.entry(key) {
        Entry::Occupied(first) => Some(*first.get()),
        Entry::Vacant(slot) => {
            slot.insert(i);
            None
        }
    }
}

/// Whether the id is usable (a problem is recorded when not).
fn check_id(id: &str, path: &str, p: &mut Problems) -> bool {
    if id.trim().is_empty() {
        p.push(path, "must not be empty");
        false
    } else if id.chars().count() > 200 {
        p.push(path, "must be at most 200 characters");
        false
    } else {
        true
    }
}

/// Whether the name is usable; the rule is the services' ([`check_name`]).
fn name_ok(name: &str, path: &str, p: &mut Problems) -> bool {
    match check_name(name) {
        Ok(()) => true,
        Err(e) => {
            p.push(path, e.message);
            false
        }
    }
}

/// The most permissive form of the providers' URL policy (plain http only
/// on loopback); the import applies the instance's own setting.
fn check_url(value: Option<&str>, path: &str, p: &mut Problems) {
    if let Some(value) = value
        && let Err(message) = url_policy::check_url(value, true)
    {
        p.push(path, clip(&message, 300));
    }
}
