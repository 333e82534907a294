//! The providers screens: the list, and the form that registers or edits a
//! provider (discovery, client authentication, keys).

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::browser::copy_to_clipboard;
use crate::components::format::{auth_method_label, date_input};
use crate::components::{
    EmptyState, ErrorBox, FieldError, KeyValueEditor, KeyValueRows, Notices, Session, form_level,
};
use crate::error::AppError;
use crate::names::WireName;
use crate::providers::{
    ClientAuthMethod, ProviderInput, ProviderView, SecretRotation, SecretSlot, create_provider,
    delete_provider, discover_provider, get_provider, list_providers, promote_provider_secret,
    update_provider,
};

fn is_admin() -> bool {
    expect_context::<Session>()
        .0
        .get()
        .and_then(Result::ok)
        .flatten()
        .is_some_and(|u| u.is_admin())
}

/// `/providers`: the OAuth providers tokens are requested from.
#[component]
pub fn ProvidersPage() -> impl IntoView {
    let providers = Resource::new(|| (), |_| list_providers());
    view! {
        <Title text="Providers · Quiver" />
        <div class="page-head">
            <h1>"OAuth providers"</h1>
            {move || is_admin().then(|| view! {
                <div class="page-actions">
                    <a class="button button-secondary" href="/providers/new/template" data-testid="new-provider-from-template">"Create provider from template"</a>
                    <a class="button" href="/providers/new" data-testid="new-provider">"Add provider"</a>
                </div>
            })}
        </div>
        <Transition fallback=|| view! { <p class="loading" aria-busy="true">"Loading providers…"</p> }>
            {move || Suspend::new(async move {
                match providers.await {
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="No providers yet">
                            <p>
                                "A provider holds the endpoints of an authorization server (Salesforce, \
                                 Microsoft, Google, your own identity provider) and the default client id and \
                                 secret that tokens use."
                            </p>
                            {is_admin().then(|| view! {
                                <a class="button" href="/providers/new/template">"Create provider from template"</a>
                                " "
                                <a class="button button-secondary" href="/providers/new">"Add provider"</a>
                            })}
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="table table-cards">
                                <thead><tr>
                                    <th scope="col">"Name"</th><th scope="col">"Issuer / token endpoint"</th>
                                    <th scope="col">"Client authentication"</th><th scope="col">"Tokens"</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|p| view! {
                                        <tr data-testid="provider-row">
                                            <th scope="row"><a href=format!("/providers/{}", p.id)>{p.name}</a></th>
                                            <td class="cell-wrap"><code>{p.issuer.unwrap_or(p.token_endpoint)}</code></td>
                                            <td data-label="Client authentication">{auth_method_label(p.client_auth_method)}</td>
                                            <td data-label="Tokens">{p.token_count}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// `/providers/new` and `/providers/{id}`: register or edit a provider.
#[component]
pub fn ProviderEditPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let version = RwSignal::new(0u32);
    // Notices belong to the page, not the form: saving reloads the provider and
    // renders a fresh form, and the "Saved" notice must outlive that.
    let notices = Notices::new();
    let provider = Resource::new(
        move || (id(), version.get()),
        |(id, _)| async move {
            if id.is_empty() || id == "new" {
                Ok(None)
            } else {
                get_provider(id).await.map(Some)
            }
        },
    );
    view! {
        <Title text="Provider · Quiver" />
        <p class="breadcrumb"><a href="/providers">"← OAuth providers"</a></p>
        <Transition fallback=|| view! { <p class="loading" aria-busy="true">"Loading the provider…"</p> }>
            {move || Suspend::new(async move {
                match provider.await {
                    Ok(p) => view! { <ProviderForm existing=p version notices /> }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// One text field bound to a signal, with its label, help and server error.
#[component]
fn TextField(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    error: Signal<Option<AppError>>,
    field: &'static str,
    #[prop(optional)] help: &'static str,
    #[prop(optional)] kind: &'static str,
    #[prop(optional)] placeholder: Option<String>,
    #[prop(optional)] readonly: Signal<bool>,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    let help_id = format!("{id}-help");
    let described = format!("{help_id} {error_id}");
    let kind = if kind.is_empty() { "text" } else { kind };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input id=id type=kind autocomplete="off" aria-describedby=described placeholder=placeholder
                readonly=move || readonly.get()
                prop:value=value on:input=move |ev| value.set(event_target_value(&ev)) />
            {(!help.is_empty()).then(|| view! { <p class="help" id=help_id.clone()>{help}</p> })}
            <FieldError error field id=error_id />
        </div>
    }
}

fn opt(s: Option<String>) -> String {
    s.unwrap_or_default()
}

/// Which of the two client secrets the provider accepts, and promoting the
/// next one once the provider has retired the current one.
#[component]
fn SecretRotationPanel(
    id: String,
    rotation: SecretRotation,
    notices: Notices,
    version: RwSignal<u32>,
) -> impl IntoView {
    let busy = RwSignal::new(false);
    rotation.has_next_client_secret.then(|| {
        let text = match (rotation.secret_in_use, rotation.secret_in_use_since.as_deref()) {
            (Some(SecretSlot::Next), since) => format!(
                "The provider refused the current secret and accepts the next one (since {}): promote it.",
                since.map(crate::components::format::when).unwrap_or_default()
            ),
            (Some(SecretSlot::Current), _) => {
                "The provider accepts the current secret; the next one waits.".to_owned()
            }
            (None, _) => "Which secret the provider accepts is known after the next request.".to_owned(),
        };
        let promote = move |_| {
            let id = id.clone();
            busy.set(true);
            spawn_local(async move {
                match promote_provider_secret(id).await {
                    Ok(_) => {
                        notices.ok("The next secret is now the current one.");
                        version.update(|v| *v += 1);
                    }
                    Err(e) => notices.error(e.to_string()),
                }
                busy.set(false);
            });
        };
        view! {
            <div class="field" data-testid="secret-rotation">
                <p class="help" data-testid="secret-in-use">{text}</p>
                <button type="button" class="button button-secondary button-small" data-testid="promote-secret"
                    disabled=move || busy.get() || !is_admin() on:click=promote>"Promote next secret"</button>
            </div>
        }
    })
}

#[component]
fn ProviderForm(
    existing: Option<ProviderView>,
    version: RwSignal<u32>,
    notices: Notices,
) -> impl IntoView {
    let admin = is_admin();
    let readonly = Signal::derive(move || !is_admin());
    let e = existing.clone();
    let name = RwSignal::new(e.as_ref().map(|p| p.name.clone()).unwrap_or_default());
    let issuer = RwSignal::new(opt(e.as_ref().and_then(|p| p.issuer.clone())));
    let authorization = RwSignal::new(opt(e
        .as_ref()
        .and_then(|p| p.authorization_endpoint.clone())));
    let token = RwSignal::new(
        e.as_ref()
            .map(|p| p.token_endpoint.clone())
            .unwrap_or_default(),
    );
    let refresh = RwSignal::new(opt(e.as_ref().and_then(|p| p.refresh_endpoint.clone())));
    let revocation = RwSignal::new(opt(e.as_ref().and_then(|p| p.revocation_endpoint.clone())));
    let jwks_uri = RwSignal::new(opt(e.as_ref().and_then(|p| p.jwks_uri.clone())));
    let par = RwSignal::new(opt(e
        .as_ref()
        .and_then(|p| p.pushed_authorization_request_endpoint.clone())));
    let device = RwSignal::new(opt(e
        .as_ref()
        .and_then(|p| p.device_authorization_endpoint.clone())));
    let client_id = RwSignal::new(opt(e.as_ref().and_then(|p| p.client_id.clone())));
    let client_secret = RwSignal::new(String::new());
    let next_secret = RwSignal::new(String::new());
    let secret_expires = RwSignal::new(date_input(
        e.as_ref()
            .and_then(|p| p.rotation.client_secret_expires_at.as_deref()),
    ));
    let next_expires = RwSignal::new(date_input(
        e.as_ref()
            .and_then(|p| p.rotation.next_client_secret_expires_at.as_deref()),
    ));
    let method = RwSignal::new(
        e.as_ref()
            .map(|p| p.client_auth_method)
            .unwrap_or(ClientAuthMethod::ClientSecretBasic),
    );
    let key_source = RwSignal::new(if e.as_ref().is_some_and(|p| p.has_private_key) {
        "keep".to_owned()
    } else {
        "generate".to_owned()
    });
    let pem = RwSignal::new(String::new());
    let cert_pem = RwSignal::new(String::new());
    let make_cert = RwSignal::new(false);
    let remove_cert = RwSignal::new(false);
    let send_sha1 = RwSignal::new(e.as_ref().is_some_and(|p| p.send_sha1_thumbprint));
    let key_id = RwSignal::new(opt(e.as_ref().and_then(|p| p.key_id.clone())));
    let audience = RwSignal::new(opt(e.as_ref().and_then(|p| p.assertion_audience.clone())));
    let pkce = RwSignal::new(e.as_ref().is_none_or(|p| p.pkce));
    let separator = RwSignal::new(
        e.as_ref()
            .map(|p| p.scope_separator.clone())
            .unwrap_or_else(|| " ".into()),
    );
    let lifetime = RwSignal::new(
        e.as_ref()
            .and_then(|p| p.default_lifetime_seconds)
            .map(|s| s.to_string())
            .unwrap_or_default(),
    );
    let unit = RwSignal::new(
        e.as_ref()
            .map(|p| p.expires_in_unit.clone())
            .unwrap_or_else(|| "seconds".into()),
    );
    let authorize_params = e
        .as_ref()
        .map(|p| KeyValueRows::from_map(&p.authorize_params))
        .unwrap_or_default();
    let token_params = e
        .as_ref()
        .map(|p| KeyValueRows::from_map(&p.token_params))
        .unwrap_or_default();
    let connect_timeout = RwSignal::new(
        e.as_ref()
            .map_or(5000, |p| p.connect_timeout_ms)
            .to_string(),
    );
    let timeout = RwSignal::new(e.as_ref().map_or(30000, |p| p.timeout_ms).to_string());
    let concurrency = RwSignal::new(e.as_ref().map_or(4, |p| p.refresh_concurrency).to_string());
    let rate = RwSignal::new(
        e.as_ref()
            .map_or(600, |p| p.refresh_rate_per_minute)
            .to_string(),
    );
    let iss_supported = RwSignal::new(e.as_ref().is_some_and(|p| p.iss_parameter_supported));
    let default_scope = RwSignal::new(opt(e.as_ref().and_then(|p| p.default_scope.clone())));
    let required_scope = RwSignal::new(opt(e.as_ref().and_then(|p| p.required_scope.clone())));
    let response_path = RwSignal::new(opt(e.as_ref().and_then(|p| p.token_response_path.clone())));
    let keep_fields = RwSignal::new(
        e.as_ref()
            .map(|p| p.keep_response_fields.join(", "))
            .unwrap_or_default(),
    );
    let rotates = RwSignal::new(e.as_ref().is_some_and(|p| p.refresh_token_rotates));
    // Shown in days, as providers document it; stored in seconds.
    let refresh_days = RwSignal::new(
        e.as_ref()
            .and_then(|p| p.refresh_token_lifetime_seconds)
            .map(|s| {
                let days = s as f64 / 86_400.0;
                if s % 86_400 == 0 {
                    format!("{}", s / 86_400)
                } else {
                    format!("{days:.3}")
                }
            })
            .unwrap_or_default(),
    );
    let refresh_sliding =
        RwSignal::new(e.as_ref().is_some_and(|p| p.refresh_token_lifetime_sliding));
    let test_url = RwSignal::new(opt(e.as_ref().and_then(|p| p.test_request_url.clone())));
    let test_method = RwSignal::new(
        e.as_ref()
            .map(|p| p.test_request_method.to_string())
            .unwrap_or_else(|| "GET".into()),
    );
    let test_after = RwSignal::new(e.as_ref().is_some_and(|p| p.test_after_renewal));
    let revocation_format = RwSignal::new(
        e.as_ref()
            .map(|p| p.revocation_format.to_string())
            .unwrap_or_else(|| "form".into()),
    );
    let omit_scope = RwSignal::new(e.as_ref().is_none_or(|p| p.omit_scope_on_refresh));
    let omit_code = RwSignal::new(e.as_ref().is_none_or(|p| p.omit_code_on_refresh));
    let encode_refresh = RwSignal::new(e.as_ref().is_some_and(|p| p.url_encode_refresh_token));
    let id_in_body = RwSignal::new(e.as_ref().is_some_and(|p| p.send_client_id_in_body));

    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let discovering = RwSignal::new(false);
    let err = Signal::derive(move || error.get());
    let existing_id = e.as_ref().map(|p| p.id.clone());
    let has_secret = e.as_ref().is_some_and(|p| p.has_client_secret);
    let rotation = e.as_ref().map(|p| p.rotation.clone()).unwrap_or_default();
    let has_next = rotation.has_next_client_secret;
    let has_key = e.as_ref().is_some_and(|p| p.has_private_key);
    let token_count = e.as_ref().map_or(0, |p| p.token_count);

    let discover = move |_| {
        let issuer_value = issuer.get_untracked();
        discovering.set(true);
        spawn_local(async move {
            match discover_provider(issuer_value).await {
                Ok(d) => {
                    issuer.set(d.issuer.clone());
                    authorization.set(d.authorization_endpoint.unwrap_or_default());
                    token.set(d.token_endpoint.unwrap_or_default());
                    revocation.set(d.revocation_endpoint.unwrap_or_default());
                    jwks_uri.set(d.jwks_uri.unwrap_or_default());
                    par.set(d.pushed_authorization_request_endpoint.unwrap_or_default());
                    device.set(d.device_authorization_endpoint.unwrap_or_default());
                    iss_supported.set(d.authorization_response_iss_parameter_supported);
                    if name.get_untracked().is_empty()
                        && let Some(host) = d.issuer.split("//").nth(1)
                    {
                        name.set(host.trim_end_matches('/').to_owned());
                    }
                    let methods = d.token_endpoint_auth_methods_supported;
                    error.set(None);
                    notices.ok(format!(
                        "Filled the endpoints from the issuer's discovery document. Client authentication it accepts: {}.",
                        if methods.is_empty() { "not stated".to_owned() } else { methods.join(", ") }
                    ));
                }
                Err(e) => error.set(Some(match e {
                    AppError::Validation {
                        field: None,
                        message,
                    } => AppError::invalid("issuer", message),
                    other => other,
                })),
            }
            discovering.set(false);
        });
    };

    let save = {
        let existing_id = existing_id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let number = |field: &'static str, text: String| -> Result<Option<i64>, AppError> {
                let t = text.trim();
                if t.is_empty() {
                    return Ok(None);
                }
                t.parse::<i64>()
                    .map(Some)
                    .map_err(|_| AppError::invalid(field, "must be a whole number"))
            };
            let parsed = (|| {
                Ok::<_, AppError>((
                    number("default_lifetime_seconds", lifetime.get_untracked())?,
                    number("connect_timeout_ms", connect_timeout.get_untracked())?,
                    number("timeout_ms", timeout.get_untracked())?,
                    number("refresh_concurrency", concurrency.get_untracked())?,
                    number("refresh_rate_per_minute", rate.get_untracked())?,
                ))
            })();
            let (lifetime_s, connect_ms, timeout_ms, concurrency_n, rate_n) = match parsed {
                Ok(p) => p,
                Err(e) => {
                    error.set(Some(e));
                    return;
                }
            };
            let refresh_lifetime = {
                let text = refresh_days.get_untracked();
                let t = text.trim();
                if t.is_empty() {
                    0
                } else {
                    match t.parse::<f64>() {
                        Ok(days) if days.is_finite() && days >= 0.0 => {
                            (days * 86_400.0).round() as i64
                        }
                        _ => {
                            error.set(Some(AppError::invalid(
                                "refresh_token_lifetime_seconds",
                                "must be a number of days (empty: not known)",
                            )));
                            return;
                        }
                    }
                }
            };
            // The key (and its certificate) serve Private Key JWT and mutual TLS.
            let pkjwt = method.get_untracked().uses_provider_key();
            let source = key_source.get_untracked();
            let input = ProviderInput {
                name: Some(name.get_untracked()),
                issuer: Some(issuer.get_untracked()),
                authorization_endpoint: Some(authorization.get_untracked()),
                token_endpoint: Some(token.get_untracked()),
                refresh_endpoint: Some(refresh.get_untracked()),
                revocation_endpoint: Some(revocation.get_untracked()),
                jwks_uri: Some(jwks_uri.get_untracked()),
                pushed_authorization_request_endpoint: Some(par.get_untracked()),
                device_authorization_endpoint: Some(device.get_untracked()),
                client_id: Some(client_id.get_untracked()),
                client_secret: Some(client_secret.get_untracked()).filter(|s| !s.is_empty()),
                next_client_secret: Some(next_secret.get_untracked()).filter(|s| !s.is_empty()),
                client_secret_expires_at: Some(secret_expires.get_untracked()),
                next_client_secret_expires_at: Some(next_expires.get_untracked()),
                client_auth_method: Some(method.get_untracked().to_string()),
                private_key_pem: (pkjwt && source == "upload").then(|| pem.get_untracked()),
                generate_key: (pkjwt && source == "generate").then_some(true),
                key_id: pkjwt.then(|| key_id.get_untracked()),
                signing_alg: None,
                certificate_pem: if pkjwt && remove_cert.get_untracked() {
                    Some(String::new())
                } else {
                    Some(cert_pem.get_untracked()).filter(|c| pkjwt && !c.trim().is_empty())
                },
                generate_certificate: (pkjwt && make_cert.get_untracked()).then_some(true),
                send_sha1_thumbprint: pkjwt.then(|| send_sha1.get_untracked()),
                assertion_audience: pkjwt.then(|| audience.get_untracked()),
                pkce: Some(pkce.get_untracked()),
                scope_separator: Some(separator.get_untracked()),
                default_lifetime_seconds: lifetime_s,
                expires_in_unit: Some(unit.get_untracked()),
                authorize_params: Some(authorize_params.to_map()),
                token_params: Some(token_params.to_map()),
                connect_timeout_ms: connect_ms.map(|v| v.clamp(0, u32::MAX as i64) as u32),
                timeout_ms: timeout_ms.map(|v| v.clamp(0, u32::MAX as i64) as u32),
                refresh_concurrency: concurrency_n.map(|v| v.clamp(0, u32::MAX as i64) as u32),
                refresh_rate_per_minute: rate_n.map(|v| v.clamp(0, u32::MAX as i64) as u32),
                iss_parameter_supported: Some(iss_supported.get_untracked()),
                default_scope: Some(default_scope.get_untracked()),
                required_scope: Some(required_scope.get_untracked()),
                token_response_path: Some(response_path.get_untracked()),
                keep_response_fields: Some(
                    keep_fields
                        .get_untracked()
                        .split([',', ' '])
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                refresh_token_rotates: Some(rotates.get_untracked()),
                refresh_token_lifetime_seconds: Some(refresh_lifetime),
                refresh_token_lifetime_sliding: Some(refresh_sliding.get_untracked()),
                test_request_url: Some(test_url.get_untracked()),
                test_request_method: Some(test_method.get_untracked()),
                revocation_format: Some(revocation_format.get_untracked()),
                test_after_renewal: Some(test_after.get_untracked()),
                omit_scope_on_refresh: Some(omit_scope.get_untracked()),
                omit_code_on_refresh: Some(omit_code.get_untracked()),
                url_encode_refresh_token: Some(encode_refresh.get_untracked()),
                send_client_id_in_body: Some(id_in_body.get_untracked()),
                template: None,
                template_inputs: None,
            };
            busy.set(true);
            let existing_id = existing_id.clone();
            spawn_local(async move {
                let created = existing_id.is_none();
                let result = match existing_id {
                    Some(id) => update_provider(id, input).await,
                    None => create_provider(input).await,
                };
                busy.set(false);
                match result {
                    Ok(p) => {
                        error.set(None);
                        if created {
                            let _ = window()
                                .location()
                                .set_href(&format!("/providers/{}", p.id));
                        } else {
                            notices.ok(format!("Saved {}.", p.name));
                            client_secret.set(String::new());
                            pem.set(String::new());
                            cert_pem.set(String::new());
                            make_cert.set(false);
                            remove_cert.set(false);
                            key_source.set(if p.has_private_key {
                                "keep".into()
                            } else {
                                "generate".into()
                            });
                            version.update(|v| *v += 1);
                        }
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        }
    };

    let delete = {
        let existing_id = existing_id.clone();
        move |_| {
            let Some(id) = existing_id.clone() else {
                return;
            };
            let confirmed = window()
                .confirm_with_message("Delete this provider? This cannot be undone.")
                .unwrap_or(false);
            if !confirmed {
                return;
            }
            spawn_local(async move {
                match delete_provider(id, false).await {
                    Ok(_) => {
                        let _ = window().location().set_href("/providers");
                    }
                    Err(e) => notices.error(format!("Could not delete: {e}")),
                }
            });
        }
    };

    let title = e
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "Add provider".into());
    let public_jwk = e.as_ref().and_then(|p| p.public_jwk.clone());
    let jwks_url = e.as_ref().and_then(|p| p.jwks_url.clone());
    let certificate = e.as_ref().and_then(|p| p.certificate.clone());
    let is_new = e.is_none();
    view! {
        <div class="page-head"><h1 data-testid="provider-title">{title}</h1></div>
        {notices.view()}
        {(!admin).then(|| view! { <p class="note">"Only admins change providers; you can read the settings."</p> })}
        <form class="form form-wide card" on:submit=save novalidate>
            <TextField id="provider-name" label="Name" value=name error=err field="name"
                help="How tokens and people refer to this provider." readonly />
            <div class="field">
                <label for="provider-issuer">"Issuer"</label>
                <div class="input-row">
                    <input id="provider-issuer" type="url" autocomplete="off" placeholder="https://login.example.com"
                        aria-describedby="provider-issuer-help provider-issuer-error" readonly=move || readonly.get()
                        prop:value=issuer on:input=move |ev| issuer.set(event_target_value(&ev)) />
                    {admin.then(|| view! {
                        <button type="button" class="button button-secondary" on:click=discover disabled=discovering
                            data-testid="discover">{move || if discovering.get() { "Discovering…" } else { "Discover from issuer" }}</button>
                    })}
                </div>
                <p class="help" id="provider-issuer-help">"The OpenID issuer URL. Discovery reads its .well-known/openid-configuration and fills the endpoints."</p>
                <FieldError error=err field="issuer" id="provider-issuer-error".into() />
            </div>
            <TextField id="provider-authorization" label="Authorization endpoint" value=authorization error=err
                field="authorization_endpoint" kind="url" help="Where people authorize (Authorization Code and OIDC Hybrid)." readonly />
            <TextField id="provider-token" label="Token endpoint" value=token error=err field="token_endpoint" kind="url"
                help="Where Quiver requests and refreshes tokens." readonly />
            <TextField id="provider-refresh" label="Refresh endpoint" value=refresh error=err field="refresh_endpoint" kind="url"
                help="Only when refreshing uses another endpoint than the token endpoint." readonly />
            <TextField id="provider-revocation" label="Revocation endpoint" value=revocation error=err
                field="revocation_endpoint" kind="url" help="Used to revoke tokens on delete and reset (RFC 7009)." readonly />
            <TextField id="provider-jwks" label="JWKS URI" value=jwks_uri error=err field="jwks_uri" kind="url"
                help="The provider's signing keys; needed to check ID tokens (OIDC Hybrid)." readonly />
            <TextField id="provider-par" label="Pushed authorization request endpoint" value=par error=err
                field="pushed_authorization_request_endpoint" kind="url" readonly
                help="RFC 9126: when set, Quiver pushes the authorization request here and the link carries only its reference." />
            <TextField id="provider-device" label="Device authorization endpoint" value=device error=err
                field="device_authorization_endpoint" kind="url" readonly
                help="RFC 8628: needed by the Device Code flow." />
            <TextField id="provider-client-id" label="Default Consumer Key" value=client_id error=err field="client_id"
                help="The client id tokens use with Use Default Keys." readonly />
            <TextField id="provider-client-secret" label="Default Secret Key" value=client_secret error=err field="client_secret"
                kind="password" readonly
                placeholder=if has_secret { "Set; type to replace".to_owned() } else { "Not set".to_owned() }
                help=if has_secret { "Secret: set. Stored encrypted and never shown." } else { "Secret: not set." } />
            <TextField id="provider-secret-expires" label="Secret Key expires" value=secret_expires error=err
                field="client_secret_expires_at" kind="date" readonly
                help="When the provider retires this secret, if it says; Quiver warns 30 days before." />
            <TextField id="provider-next-secret" label="Next Secret Key" value=next_secret error=err field="next_client_secret"
                kind="password" readonly
                placeholder=if has_next { "Set; type to replace".to_owned() } else { "Not set".to_owned() }
                help="For a rotation: add the provider's new secret here before it retires the old one. When the provider refuses a secret (invalid_client), Quiver tries the other one once and remembers which works." />
            <TextField id="provider-next-secret-expires" label="Next Secret Key expires" value=next_expires error=err
                field="next_client_secret_expires_at" kind="date" readonly />
            {existing_id.clone().map(|id| view! { <SecretRotationPanel id rotation=rotation.clone() notices version /> })}
            <div class="field">
                <label for="provider-method">"Client authentication"</label>
                <select id="provider-method" prop:value=move || method.get().as_str() disabled=move || readonly.get()
                    aria-describedby="provider-method-help provider-method-error"
                    on:change=move |ev| if let Ok(m) = event_target_value(&ev).parse() { method.set(m) }>
                    {ClientAuthMethod::ALL.iter().copied().map(|m| view! {
                        <option value=m.as_str() selected=move || method.get() == m>{auth_method_label(m)}</option>
                    }).collect_view()}
                </select>
                <p class="help" id="provider-method-help">"How Quiver proves the client's identity at the token endpoint. Private Key JWT limits tokens to the Client Credentials flow; mutual TLS presents the key's certificate in the TLS handshake (RFC 8705), and both keep tokens to the provider's client."</p>
                <FieldError error=err field="client_auth_method" id="provider-method-error".into() />
            </div>
            <fieldset class="field" hidden=move || !method.get().uses_provider_key() data-testid="pkjwt-settings">
                <legend>{move || if method.get().is_mutual_tls() { "Client certificate and key (mutual TLS)" } else { "Private Key JWT" }}</legend>
                <div class="radio-row">
                    {has_key.then(|| view! {
                        <label><input type="radio" name="key-source" value="keep" prop:checked=move || key_source.get() == "keep"
                            on:change=move |_| key_source.set("keep".into()) />" Keep the current key"</label>
                    })}
                    <label><input type="radio" name="key-source" value="generate" prop:checked=move || key_source.get() == "generate"
                        on:change=move |_| key_source.set("generate".into()) />" Generate a new key (ES256)"</label>
                    <label><input type="radio" name="key-source" value="upload" prop:checked=move || key_source.get() == "upload"
                        on:change=move |_| key_source.set("upload".into()) />" Upload a private key"</label>
                </div>
                <div class="field" hidden=move || key_source.get() != "upload">
                    <label for="provider-pem">"Private key (PKCS#8 PEM)"</label>
                    <textarea id="provider-pem" rows="6" spellcheck="false" aria-describedby="provider-pem-error"
                        prop:value=pem on:input=move |ev| pem.set(event_target_value(&ev))></textarea>
                    <FieldError error=err field="private_key_pem" id="provider-pem-error".into() />
                </div>
                <TextField id="provider-kid" label="Key id (kid)" value=key_id error=err field="key_id"
                    help="Derived from the key when empty." readonly />
                <TextField id="provider-audience" label="Assertion audience" value=audience error=err field="assertion_audience"
                    help="The aud of the client assertion; the issuer, else the token endpoint, when empty." readonly />
                <FieldError error=err field="signing_alg" id="provider-alg-error".into() />
                {public_jwk.clone().map(|jwk| {
                    let text = serde_json::to_string_pretty(&jwk).unwrap_or_default();
                    let copy_text = text.clone();
                    view! {
                        <div class="field">
                            <span class="label">"Public key (JWK) to register at the provider"</span>
                            // Long with a certificate: focusable, so it scrolls by keyboard too.
                            <pre class="code-block" data-testid="public-jwk" tabindex="0" role="region"
                                aria-label="Public key (JWK)">{text}</pre>
                            <button type="button" class="button button-secondary button-small"
                                on:click=move |_| { if copy_to_clipboard(&copy_text) { notices.ok("Copied the public JWK."); } }>
                                "Copy public JWK"</button>
                        </div>
                    }
                })}
                {certificate.clone().map(|c| {
                    let copy_pem = c.pem.clone();
                    view! {
                        <div class="field" data-testid="certificate">
                            <span class="label">"Certificate"</span>
                            <dl class="facts">
                                <dt>"Subject"</dt><dd>{c.subject.clone()}</dd>
                                <dt>"Issuer"</dt><dd>{c.issuer.clone()}</dd>
                                <dt>"Valid until"</dt><dd data-testid="certificate-not-after">{c.not_after.clone()}</dd>
                                <dt>"SHA-1 thumbprint"</dt><dd><code data-testid="certificate-sha1">{c.sha1_thumbprint.clone()}</code></dd>
                                <dt>"x5t#S256"</dt><dd><code>{c.x5t_s256.clone()}</code></dd>
                            </dl>
                            <button type="button" class="button button-secondary button-small"
                                on:click=move |_| { if copy_to_clipboard(&copy_pem) { notices.ok("Copied the certificate."); } }>
                                "Copy certificate (PEM)"</button>
                            <div class="field-switch">
                                <input id="provider-remove-cert" type="checkbox" prop:checked=remove_cert
                                    disabled=move || readonly.get()
                                    on:change=move |ev| remove_cert.set(event_target_checked(&ev)) />
                                <label for="provider-remove-cert">"Remove the certificate when saving (the key stays)"</label>
                            </div>
                        </div>
                    }
                })}
                <div class="field">
                    <label for="provider-cert">"Certificate (PEM)"</label>
                    <textarea id="provider-cert" rows="4" spellcheck="false" readonly=move || readonly.get()
                        aria-describedby="provider-cert-help provider-cert-error"
                        prop:value=cert_pem on:input=move |ev| cert_pem.set(event_target_value(&ev))></textarea>
                    <p class="help" id="provider-cert-help">"For providers that register the key as a certificate (Microsoft Entra ID): assertions then carry its SHA-256 thumbprint (x5t#S256). Leave empty to keep the current one."</p>
                    <FieldError error=err field="certificate_pem" id="provider-cert-error".into() />
                </div>
                <div class="field-switch">
                    <input id="provider-make-cert" type="checkbox" prop:checked=make_cert disabled=move || readonly.get()
                        on:change=move |ev| make_cert.set(event_target_checked(&ev)) />
                    <label for="provider-make-cert">"Make a self-signed certificate for the key (two years), to upload at the provider"</label>
                </div>
                <FieldError error=err field="generate_certificate" id="provider-make-cert-error".into() />
                <div class="field-switch">
                    <input id="provider-sha1" type="checkbox" prop:checked=send_sha1 disabled=move || readonly.get()
                        on:change=move |ev| send_sha1.set(event_target_checked(&ev)) />
                    <label for="provider-sha1">"Also send the SHA-1 thumbprint (x5t), as Microsoft Entra ID wants"</label>
                </div>
                {jwks_url.clone().map(|url| view! {
                    <p>"JWKS URL for the provider: " <a href=url.clone() data-testid="jwks-url"><code>{url.clone()}</code></a></p>
                })}
            </fieldset>
            <TextField id="provider-default-scope" label="Default scope" value=default_scope error=err field="default_scope"
                help="The scope a new token of this provider starts with." readonly />
            <TextField id="provider-required-scope" label="Required scopes" value=required_scope error=err field="required_scope"
                help="Always asked for: added to a token's scope that leaves them out (e.g. offline_access, without which no refresh token is issued)." readonly />
            <details class="field">
                <summary>"Advanced settings"</summary>
                <div class="field-switch">
                    <input id="provider-pkce" type="checkbox" prop:checked=pkce disabled=move || readonly.get()
                        on:change=move |ev| pkce.set(event_target_checked(&ev)) />
                    <label for="provider-pkce">"PKCE (S256) for Authorization Code"</label>
                </div>
                <div class="field-switch">
                    <input id="provider-iss" type="checkbox" prop:checked=iss_supported disabled=move || readonly.get()
                        on:change=move |ev| iss_supported.set(event_target_checked(&ev)) />
                    <label for="provider-iss">"The provider sends iss in authorization responses (RFC 9207)"</label>
                </div>
                <TextField id="provider-separator" label="Scope separator" value=separator error=err field="scope_separator" readonly />
                <TextField id="provider-lifetime" label="Default lifetime (seconds)" value=lifetime error=err
                    field="default_lifetime_seconds" help="Assumed when a response has no expires_in." readonly />
                <div class="field">
                    <label for="provider-unit">"Unit of expires_in"</label>
                    <select id="provider-unit" prop:value=unit disabled=move || readonly.get() on:change=move |ev| unit.set(event_target_value(&ev))>
                        <option value="seconds" selected=move || unit.get() == "seconds">"Seconds"</option>
                        <option value="milliseconds" selected=move || unit.get() == "milliseconds">"Milliseconds"</option>
                    </select>
                    <FieldError error=err field="expires_in_unit" id="provider-unit-error".into() />
                </div>
                <fieldset class="field" data-testid="provider-quirks">
                    <legend>"How the provider answers and refreshes"</legend>
                    <TextField id="provider-response-path" label="Token response path" value=response_path error=err
                        field="token_response_path" readonly
                        help="Where the token sits when the provider nests it, as member names joined by dots (Slack: authed_user). Empty: at the top." />
                    <TextField id="provider-keep-fields" label="Response fields to keep" value=keep_fields error=err
                        field="keep_response_fields" readonly
                        help="Extra answer fields kept with each token and shown on it, separated by commas (Salesforce: instance_url, id)." />
                    <div class="field-switch">
                        <input id="provider-rotates" type="checkbox" prop:checked=rotates disabled=move || readonly.get()
                            on:change=move |ev| rotates.set(event_target_checked(&ev)) />
                        <label for="provider-rotates">"Refresh tokens rotate: a refresh ends the old refresh token"</label>
                    </div>
                    <TextField id="provider-refresh-lifetime" label="Refresh token lifetime (days)" value=refresh_days error=err
                        field="refresh_token_lifetime_seconds" readonly
                        help="When the provider's answers do not say (refresh_token_expires_in and the like win): Quiver warns before a person must authorize again. Empty: not known." />
                    <div class="field-switch">
                        <input id="provider-refresh-sliding" type="checkbox" prop:checked=refresh_sliding disabled=move || readonly.get()
                            on:change=move |ev| refresh_sliding.set(event_target_checked(&ev)) />
                        <label for="provider-refresh-sliding">"The lifetime restarts with each renewal (else it counts from the authorization)"</label>
                    </div>
                    <div class="field-switch">
                        <input id="provider-omit-scope" type="checkbox" prop:checked=omit_scope disabled=move || readonly.get()
                            on:change=move |ev| omit_scope.set(event_target_checked(&ev)) />
                        <label for="provider-omit-scope">"Omit the scope when refreshing"</label>
                    </div>
                    <div class="field-switch">
                        <input id="provider-omit-code" type="checkbox" prop:checked=omit_code disabled=move || readonly.get()
                            on:change=move |ev| omit_code.set(event_target_checked(&ev)) />
                        <label for="provider-omit-code">"Omit the authorization code when refreshing"</label>
                    </div>
                    <div class="field-switch">
                        <input id="provider-encode-refresh" type="checkbox" prop:checked=encode_refresh disabled=move || readonly.get()
                            on:change=move |ev| encode_refresh.set(event_target_checked(&ev)) />
                        <label for="provider-encode-refresh">"URL-encode the refresh token when refreshing"</label>
                    </div>
                    <div class="field-switch">
                        <input id="provider-id-in-body" type="checkbox" prop:checked=id_in_body disabled=move || readonly.get()
                            on:change=move |ev| id_in_body.set(event_target_checked(&ev)) />
                        <label for="provider-id-in-body">"Send the client id in the body with HTTP Basic too"</label>
                    </div>
                    <div class="field">
                        <label for="provider-revocation-format">"Revocation request"</label>
                        <select id="provider-revocation-format" prop:value=revocation_format disabled=move || readonly.get()
                            on:change=move |ev| revocation_format.set(event_target_value(&ev))>
                            {[("form", "A form (RFC 7009)"), ("json", "A JSON object {\"token\": …} (Intuit)")].into_iter().map(|(value, label)| view! {
                                <option value=value selected=move || revocation_format.get() == value>{label}</option>
                            }).collect_view()}
                        </select>
                        <FieldError error=err field="revocation_format" id="provider-revocation-format-error".into() />
                    </div>
                </fieldset>
                <fieldset class="field" data-testid="provider-connection-test">
                    <legend>"Connection test"</legend>
                    <TextField id="provider-test-url" label="Test request URL" value=test_url error=err
                        field="test_request_url" readonly kind="url"
                        help="A request the provider's API answers with the access token as bearer, e.g. its userinfo endpoint or a cheap API call. Empty: no test." />
                    <div class="field">
                        <label for="provider-test-method">"Test request method"</label>
                        <select id="provider-test-method" prop:value=test_method disabled=move || readonly.get()
                            on:change=move |ev| test_method.set(event_target_value(&ev))>
                            {["GET", "POST", "HEAD"].into_iter().map(|m| view! {
                                <option value=m selected=move || test_method.get() == m>{m}</option>
                            }).collect_view()}
                        </select>
                        <FieldError error=err field="test_request_method" id="provider-test-method-error".into() />
                    </div>
                    <div class="field-switch">
                        <input id="provider-test-after" type="checkbox" prop:checked=test_after disabled=move || readonly.get()
                            on:change=move |ev| test_after.set(event_target_checked(&ev)) />
                        <label for="provider-test-after">"Test each token after every renewal (a refusal raises an event)"</label>
                    </div>
                </fieldset>
                <fieldset class="field">
                    <legend>"Extra authorization request parameters"</legend>
                    <KeyValueEditor rows=authorize_params label="authorization parameter" />
                    <FieldError error=err field="authorize_params" id="provider-authorize-params-error".into() />
                </fieldset>
                <fieldset class="field">
                    <legend>"Extra token request parameters"</legend>
                    <KeyValueEditor rows=token_params label="token parameter" />
                    <FieldError error=err field="token_params" id="provider-token-params-error".into() />
                </fieldset>
                <TextField id="provider-connect-timeout" label="Connect timeout (ms)" value=connect_timeout error=err
                    field="connect_timeout_ms" readonly />
                <TextField id="provider-timeout" label="Total timeout (ms)" value=timeout error=err field="timeout_ms" readonly />
                <TextField id="provider-refresh-concurrency" label="Background refreshes at once" value=concurrency error=err
                    field="refresh_concurrency" readonly help="Per Quiver replica: how many renewal requests the scheduler has open at this provider at the same time." />
                <TextField id="provider-refresh-rate" label="Background refreshes per minute" value=rate error=err
                    field="refresh_rate_per_minute" readonly help="Per Quiver replica; 0 means no limit." />
            </details>
            {move || error.get().and_then(|e| form_level(&e)).map(|m| view! {
                <div class="alert alert-error" role="alert" data-testid="provider-form-error">{m}</div>
            })}
            {admin.then(|| view! {
                <div class="modal-actions">
                    {(!is_new).then(|| view! {
                        <button type="button" class="button button-danger" on:click=delete.clone() disabled={token_count > 0}
                            aria-describedby="delete-provider-help" data-testid="delete-provider">"Delete provider"</button>
                        <p class="help" id="delete-provider-help">{match token_count {
                            0 => "No token uses this provider.".to_owned(),
                            1 => "1 token uses this provider; delete it first.".to_owned(),
                            n => format!("{n} tokens use this provider; delete them first."),
                        }}</p>
                    })}
                    <button type="submit" class="button" disabled=busy data-testid="save-provider">
                        {if is_new { "Create provider" } else { "Save provider" }}
                    </button>
                </div>
            })}
        </form>
    }
}
