//! One token's screen: its state, identity, last error and history, and the
//! form that edits its settings.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::tokens::ticking_now;
use crate::components::actions;
use crate::components::format::{
    ago, date_input, epoch_seconds, expires_in, flow_label, status_badge, when,
};
use crate::components::{
    ActionHooks, ActionMenu, DeviceCodePanel, ErrorBox, FieldError, KeyValueEditor, KeyValueRows,
    MenuTarget, Notices, form_level,
};
use crate::error::AppError;
use crate::providers::SecretSlot;
use crate::tokens::{
    ConnectionTest, Flow, TokenDetail, TokenInput, TokenStatus, TokenSummary, TokenView, get_token,
    promote_token_secret, test_token_connection, update_token,
};

/// `/tokens/{id}`: one token's settings (secrets only as set / not set, and
/// replaceable), its state, identity, last error and history.
#[component]
pub fn TokenDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let version = RwSignal::new(0u32);
    let detail = Resource::new(move || (id(), version.get()), |(id, _)| get_token(id));
    let notices = Notices::new();
    let menu = RwSignal::new(None::<MenuTarget>);
    let changed = Callback::new(move |_| version.update(|v| *v += 1));
    let hooks = ActionHooks {
        changed,
        deleted: Callback::new(move |_| {
            let _ = window().location().set_href("/tokens");
        }),
        rename: Callback::new(move |_| {
            if let Some(el) = document().get_element_by_id("edit-name")
                && let Ok(el) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el)
            {
                let _ = el.focus();
            }
        }),
    };
    view! {
        <Title text="Token · Quiver" />
        <p class="breadcrumb"><a href="/tokens">"← OAuth tokens"</a></p>
        {notices.view()}
        <Transition fallback=|| view! { <p class="loading" aria-busy="true">"Loading the token…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(d) => view! { <TokenDetailView detail=d notices menu changed /> }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Transition>
        <ActionMenu target=menu notices hooks />
    }
}

/// "Test connection": the provider's test request with the token, and
/// what the API answered (the last test until a new one is run).
#[component]
fn ConnectionTestPanel(
    token_id: String,
    can_test: bool,
    last: Option<ConnectionTest>,
) -> impl IntoView {
    let result = RwSignal::new(last);
    let running = RwSignal::new(false);
    let error = RwSignal::new(None::<AppError>);
    let run = move |_| {
        let id = token_id.clone();
        running.set(true);
        spawn_local(async move {
            match test_token_connection(id).await {
                Ok(test) => {
                    error.set(None);
                    result.set(Some(test));
                }
                Err(e) => error.set(Some(e)),
            }
            running.set(false);
        });
    };
    view! {
        <section class="card" aria-labelledby="test-heading" data-testid="connection-test">
            <h2 id="test-heading">"Connection test"</h2>
            {if can_test {
                view! {
                    <p class="help">"Calls the provider's API with this token as bearer and shows what it answers (never the token)."</p>
                    <button type="button" class="button button-secondary" on:click=run disabled=running
                        data-testid="test-connection">
                        {move || if running.get() { "Testing…" } else { "Test connection" }}
                    </button>
                }.into_any()
            } else {
                view! {
                    <p class="help">"No test request: an admin names one on the provider (Connection test), e.g. its userinfo endpoint."</p>
                }.into_any()
            }}
            {move || error.get().map(|e| view! {
                <p class="alert alert-error" role="alert" data-testid="test-error">{e.to_string()}</p>
            })}
            {move || result.get().map(|test| {
                let class = if test.ok { "alert alert-success" } else { "alert alert-error" };
                let verdict = if test.ok { "The API accepted the token." } else { "The API did not accept the token." };
                view! {
                    <div class=class role="status" data-testid="test-result" data-ok=test.ok.to_string()>
                        <p><strong>{verdict}</strong></p>
                        <dl class="facts">
                            <dt>"Request"</dt><dd><code>{format!("{} {}", test.method, test.url)}</code></dd>
                            <dt>"Answer"</dt>
                            <dd data-testid="test-status">{match (test.status, test.error.clone()) {
                                (Some(s), _) => format!("HTTP {s}"),
                                (None, Some(e)) => e,
                                (None, None) => "no answer".into(),
                            }}</dd>
                            <dt>"Time"</dt><dd>{format!("{} ms", test.duration_ms)}</dd>
                            <dt>"Tested"</dt><dd>{when(&test.tested_at)}</dd>
                        </dl>
                        {(!test.excerpt.is_empty()).then(|| view! {
                            <pre class="excerpt" tabindex="0" data-testid="test-excerpt">{test.excerpt.clone()}</pre>
                        })}
                    </div>
                }
            })}
        </section>
    }
}

/// Days ahead the token page warns of a due re-authorization (the
/// `token.reauthorization_due` event's default notice).
const REAUTHORIZATION_WARNING_DAYS: i64 = 14;

/// The plain-words warning when a person must authorize `t` again soon.
fn reauthorization_warning(t: &TokenView, now: i64) -> Option<String> {
    let due = t.reauthorization_due_at.as_deref()?;
    let left = epoch_seconds(due)? - now;
    if left > REAUTHORIZATION_WARNING_DAYS * 86_400 {
        return None;
    }
    let what = if t.has_refresh_token {
        "its refresh token expires"
    } else {
        "it has no refresh token and its access token expires"
    };
    Some(if left <= 0 {
        format!(
            "This token can no longer be renewed: {what} on {}. Authorize it again.",
            when(due)
        )
    } else {
        format!(
            "A person must authorize this token again {}: {what} on {}. Authorize it again before then.",
            expires_in(Some(due), now),
            when(due)
        )
    })
}

/// "1 access token handed out", "12 access tokens handed out".
fn count_label(n: u64) -> String {
    format!(
        "{n} access token{} handed out",
        if n == 1 { "" } else { "s" }
    )
}

#[component]
fn TokenDetailView(
    detail: TokenDetail,
    notices: Notices,
    menu: RwSignal<Option<MenuTarget>>,
    changed: Callback<()>,
) -> impl IntoView {
    let now = ticking_now();
    let t = detail.token.clone();
    let status = t.status;
    let expires = t.expires_at.clone();
    let badge = Signal::derive(move || status_badge(status, expires.as_deref(), now.get()));
    let open_menu = {
        let t = t.clone();
        move |ev: leptos::ev::MouseEvent| {
            if let Some(el) = ev
                .current_target()
                .and_then(|x| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(x).ok())
            {
                let rect = el.get_bounding_client_rect();
                menu.set(Some(MenuTarget {
                    token: TokenSummary::from(&t),
                    x: rect.left(),
                    y: rect.bottom() + 4.0,
                    return_focus: Some("detail-menu".into()),
                }));
            }
        }
    };
    let primary = {
        let t = t.clone();
        move |_| {
            let summary = TokenSummary::from(&t);
            if t.flow.is_interactive() {
                actions::reauthorize(&summary, notices, changed);
            } else if t.flow == Flow::DeviceCode && !t.has_refresh_token {
                actions::request_again(&summary, notices, changed);
            } else {
                actions::refresh(&summary, notices, changed);
            }
        }
    };
    let expires_at = t.expires_at.clone();
    let refreshed = t.last_refreshed_at.clone();
    let refresh_expires = t.refresh_token_expires_at.clone();
    let reauthorization = reauthorization_warning(&t, now.get_untracked());
    let notes = t.renewal_notes.clone();
    let used = t.last_used_at.clone();
    let used_30d: u64 = detail.usage.iter().map(|d| d.uses).sum();
    view! {
        <div class="page-head">
            <h1 data-testid="token-title">{t.name.clone()}</h1>
            <div class="actions">
                <button type="button" class="button" on:click=primary data-testid="detail-primary">
                    {if t.flow.is_interactive() {
                        "Re-authorize"
                    } else if t.flow == Flow::DeviceCode && !t.has_refresh_token {
                        "Authorize with a code"
                    } else {
                        "Refresh Access Token"
                    }}
                </button>
                <button type="button" class="button button-secondary" id="detail-menu" aria-haspopup="menu"
                    on:click=open_menu>"More actions"</button>
            </div>
        </div>
        {t.pending_authorization.clone().map(|device| view! { <DeviceCodePanel token_id=t.id.clone() device /> })}
        {reauthorization.map(|text| view! {
            <p class="alert alert-warning" role="status" data-testid="reauthorization-due">{text}</p>
        })}
        {(!notes.is_empty()).then(|| view! {
            <div class="alert alert-warning" data-testid="renewal-notes">
                <p><strong>"The provider's last answer left something out:"</strong></p>
                <ul>{notes.iter().map(|n| view! { <li data-kind=n.kind()>{n.explain()}</li> }).collect_view()}</ul>
            </div>
        })}
        <section class="card" aria-labelledby="state-heading">
            <h2 id="state-heading">"State"</h2>
            <dl class="facts">
                <dt>"Status"</dt>
                <dd><span class=move || format!("badge status-{}", badge.get().0) data-testid="status-badge">{move || badge.get().1}</span></dd>
                <dt>"Expires"</dt>
                <dd>{move || expires_in(expires_at.as_deref(), now.get())}
                    {t.expires_at.as_deref().map(|e| format!(" ({})", when(e)))}</dd>
                <dt>"Last refreshed"</dt><dd>{move || ago(refreshed.as_deref(), now.get())}</dd>
                <dt>"Next automatic refresh"</dt>
                <dd data-testid="next-refresh">{match (t.auto_refresh, t.next_refresh_at.as_deref()) {
                    (false, _) => "off (automatic refresh is disabled)".to_owned(),
                    (true, None) => "none scheduled".to_owned(),
                    (true, Some(at)) => when(at),
                }}
                {(t.failure_count > 0).then(|| format!(" — {} failed attempt{} in a row", t.failure_count, if t.failure_count == 1 { "" } else { "s" }))}</dd>
                <dt>"Granted scope"</dt><dd data-testid="granted-scope">{t.granted_scope.clone().unwrap_or_else(|| "—".into())}</dd>
                {t.response_fields.iter().map(|(name, value)| view! {
                    <dt>{name.clone()}</dt><dd data-testid="response-field"><code>{value.clone()}</code></dd>
                }).collect_view()}
                <dt>"Token type"</dt><dd>{t.token_type.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Access token"</dt><dd>{set_label(t.has_access_token)}</dd>
                <dt>"Refresh token"</dt><dd>{set_label(t.has_refresh_token)}</dd>
                {t.has_refresh_token.then(|| view! {
                    <dt>"Refresh token expires"</dt>
                    <dd data-testid="refresh-token-expires">{match refresh_expires.clone() {
                        Some(at) => format!("{} ({})", expires_in(Some(&at), now.get_untracked()), when(&at)),
                        None => "not known: the provider does not say, and its settings give no lifetime".into(),
                    }}</dd>
                })}
                {t.reauthorization_due_at.clone().map(|at| view! {
                    <dt>"Authorize again by"</dt><dd data-testid="reauthorization-due-at">{when(&at)}</dd>
                })}
                <dt>"Token ID"</dt><dd><code data-testid="token-id">{t.id.clone()}</code></dd>
                <dt>"Owner"</dt><dd>{t.owner_email.clone()}</dd>
                <dt>"Created"</dt><dd>{when(&t.created_at)}</dd>
            </dl>
            {t.identity.clone().map(|i| view! {
                <h3>"Identity at the provider"</h3>
                <dl class="facts" data-testid="identity">
                    <dt>"Subject"</dt><dd><code>{i.sub}</code></dd>
                    {i.name.map(|n| view! { <dt>"Name"</dt><dd>{n}</dd> })}
                    {i.email.map(|e| view! { <dt>"Email"</dt><dd>{e}</dd> })}
                </dl>
            })}
            {(t.status == TokenStatus::NeedsCredentials).then(|| view! {
                <div class="alert alert-warning" role="status" data-testid="needs-credentials">
                    "Imported without its secrets. Give its provider a client secret (Providers → Edit), or this token its own secret or password (Manage → Edit), then use Manage → Request Token; an Authorization Code token needs Manage → Get Auth Link."
                </div>
            })}
            {t.error.clone().map(|e| view! {
                <div class="alert alert-error" role="alert" data-testid="last-error">
                    <strong>"Last error: "</strong><code>{e.error}</code>
                    {e.error_description.map(|d| format!(" — {d}"))}
                    {e.http_status.map(|s| format!(" (HTTP {s})"))}
                    {e.retry_after_seconds.map(|s| format!("; the provider asked to wait {s} s"))}
                </div>
            })}
        </section>
        <ConnectionTestPanel token_id=t.id.clone() can_test=t.can_test last=t.last_test.clone() />
        <section class="card" aria-labelledby="usage-heading" data-testid="usage">
            <h2 id="usage-heading">"Usage"</h2>
            <dl class="facts">
                <dt>"Last used"</dt>
                <dd data-testid="last-used">{move || ago(used.as_deref(), now.get())}
                    {t.last_used_by.clone().map(|by| format!(" by {by}"))}</dd>
                <dt>"Last 24 hours"</dt><dd data-testid="uses-24h">{count_label(t.uses_24h)}</dd>
                <dt>"Last 30 days"</dt><dd data-testid="uses-30d">{count_label(used_30d)}</dd>
            </dl>
            // Drawn by the server: numbers and dates only, escaped there.
            <figure class="chart-figure" data-testid="usage-chart" inner_html=detail.usage_chart.clone()></figure>
        </section>
        <SettingsForm token=t notices changed />
        <section class="card" aria-labelledby="history-heading">
            <h2 id="history-heading">"History"</h2>
            {if detail.history.is_empty() {
                view! { <p class="muted">"Nothing recorded yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="history">
                            <thead><tr><th scope="col">"When"</th><th scope="col">"Action"</th><th scope="col">"Outcome"</th>
                                <th scope="col">"By"</th><th scope="col">"Detail"</th></tr></thead>
                            <tbody>
                                {detail.history.into_iter().map(|h| view! {
                                    <tr><td>{when(&h.at)}</td><td>{h.action}</td><td>{h.outcome}</td><td>{h.actor}</td>
                                        <td>{h.detail.unwrap_or_default()}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

fn set_label(set: bool) -> &'static str {
    if set { "Set" } else { "Not set" }
}

/// The token's settings, editable; secrets are write-only.
#[component]
fn SettingsForm(token: TokenView, notices: Notices, changed: Callback<()>) -> impl IntoView {
    let name = RwSignal::new(token.name.clone());
    let use_default_keys = RwSignal::new(token.use_default_keys);
    let client_id = RwSignal::new(token.client_id.clone().unwrap_or_default());
    let client_secret = RwSignal::new(String::new());
    let next_secret = RwSignal::new(String::new());
    let secret_expires = RwSignal::new(date_input(
        token.rotation.client_secret_expires_at.as_deref(),
    ));
    let next_expires = RwSignal::new(date_input(
        token.rotation.next_client_secret_expires_at.as_deref(),
    ));
    let username = RwSignal::new(token.username.clone().unwrap_or_default());
    let password = RwSignal::new(String::new());
    let resource = RwSignal::new(token.resource.clone().unwrap_or_default());
    let scope = RwSignal::new(token.scope.clone().unwrap_or_default());
    let margin = RwSignal::new(token.refresh_margin_seconds.to_string());
    let auto_refresh = RwSignal::new(token.auto_refresh);
    let lead = RwSignal::new(token.refresh_lead_seconds.to_string());
    let additional = KeyValueRows::from_map(&token.additional_values);
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let password_flow = token.flow == Flow::Password;
    let id = token.id.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let margin_value = margin.get_untracked();
        let margin_seconds = match margin_value.trim().parse::<i64>() {
            Ok(m) => m,
            Err(_) => {
                error.set(Some(AppError::invalid(
                    "refresh_margin_seconds",
                    "must be a whole number of seconds",
                )));
                return;
            }
        };
        let lead_seconds = match lead.get_untracked().trim().parse::<i64>() {
            Ok(l) => l,
            Err(_) => {
                error.set(Some(AppError::invalid(
                    "refresh_lead_seconds",
                    "must be a whole number of seconds",
                )));
                return;
            }
        };
        let input = TokenInput {
            name: Some(name.get_untracked()),
            use_default_keys: Some(use_default_keys.get_untracked()),
            client_id: (!use_default_keys.get_untracked()).then(|| client_id.get_untracked()),
            client_secret: Some(client_secret.get_untracked()).filter(|s| !s.is_empty()),
            next_client_secret: Some(next_secret.get_untracked()).filter(|s| !s.is_empty()),
            client_secret_expires_at: (!use_default_keys.get_untracked())
                .then(|| secret_expires.get_untracked()),
            next_client_secret_expires_at: (!use_default_keys.get_untracked())
                .then(|| next_expires.get_untracked()),
            username: password_flow.then(|| username.get_untracked()),
            password: Some(password.get_untracked()).filter(|s| !s.is_empty()),
            resource: Some(resource.get_untracked()),
            scope: Some(scope.get_untracked()),
            additional_values: Some(additional.to_map()),
            refresh_margin_seconds: Some(margin_seconds),
            auto_refresh: Some(auto_refresh.get_untracked()),
            refresh_lead_seconds: Some(lead_seconds),
            ..TokenInput::default()
        };
        let id = id.clone();
        busy.set(true);
        spawn_local(async move {
            match update_token(id, input).await {
                Ok(t) => {
                    error.set(None);
                    notices.ok(format!("Saved the settings of {}.", t.name));
                    changed.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let err = Signal::derive(move || error.get());
    view! {
        <section class="card" aria-labelledby="settings-heading">
            <h2 id="settings-heading">"Settings"</h2>
            <form class="form form-wide" on:submit=save novalidate>
                <dl class="facts">
                    <dt>"Provider"</dt><dd><a href=format!("/providers/{}", token.provider_id)>{token.provider_name.clone()}</a></dd>
                    <dt>"OAuth Flow"</dt><dd>{flow_label(token.flow)}</dd>
                </dl>
                <label for="edit-name">"Token Name"</label>
                <input id="edit-name" prop:value=name maxlength="100" aria-describedby="edit-name-error"
                    on:input=move |ev| name.set(event_target_value(&ev)) />
                <FieldError error=err field="name" id="edit-name-error".into() />
                <div class="field-switch">
                    <input id="edit-default-keys" type="checkbox" role="switch" prop:checked=use_default_keys aria-describedby="edit-default-keys-error"
                        on:change=move |ev| use_default_keys.set(event_target_checked(&ev)) />
                    <label for="edit-default-keys">"Use Default Keys"</label>
                </div>
                <FieldError error=err field="use_default_keys" id="edit-default-keys-error".into() />
                <div class="field" hidden=move || use_default_keys.get()>
                    <label for="edit-client-id">"Consumer Key"</label>
                    <input id="edit-client-id" prop:value=client_id aria-describedby="edit-client-id-error"
                        on:input=move |ev| client_id.set(event_target_value(&ev)) />
                    <FieldError error=err field="client_id" id="edit-client-id-error".into() />
                    <label for="edit-client-secret">"Secret Key"</label>
                    <input id="edit-client-secret" type="password" autocomplete="new-password"
                        placeholder=if token.has_client_secret { "Set; type to replace" } else { "Not set" }
                        prop:value=client_secret on:input=move |ev| client_secret.set(event_target_value(&ev)) />
                    <p class="help" data-testid="client-secret-state">{if token.has_client_secret { "Secret Key: set" } else { "Secret Key: not set" }}</p>
                    <FieldError error=err field="client_secret" id="edit-client-secret-error".into() />
                    <label for="edit-secret-expires">"Secret Key expires"</label>
                    <input id="edit-secret-expires" type="date" prop:value=secret_expires aria-describedby="edit-secret-expires-error"
                        on:input=move |ev| secret_expires.set(event_target_value(&ev)) />
                    <FieldError error=err field="client_secret_expires_at" id="edit-secret-expires-error".into() />
                    <label for="edit-next-secret">"Next Secret Key"</label>
                    <input id="edit-next-secret" type="password" autocomplete="new-password" aria-describedby="edit-next-secret-help"
                        placeholder=if token.rotation.has_next_client_secret { "Set; type to replace" } else { "Not set" }
                        prop:value=next_secret on:input=move |ev| next_secret.set(event_target_value(&ev)) />
                    <p class="help" id="edit-next-secret-help">"For a rotation: the provider's new secret, tried when the current one is refused (invalid_client)."</p>
                    <FieldError error=err field="next_client_secret" id="edit-next-secret-error".into() />
                    <label for="edit-next-secret-expires">"Next Secret Key expires"</label>
                    <input id="edit-next-secret-expires" type="date" prop:value=next_expires aria-describedby="edit-next-secret-expires-error"
                        on:input=move |ev| next_expires.set(event_target_value(&ev)) />
                    <FieldError error=err field="next_client_secret_expires_at" id="edit-next-secret-expires-error".into() />
                    {token.rotation.has_next_client_secret.then(|| {
                        let id = token.id.clone();
                        let in_use = match token.rotation.secret_in_use {
                            Some(SecretSlot::Next) => "The provider refused the current secret and accepts the next one: promote it.",
                            Some(SecretSlot::Current) => "The provider accepts the current secret; the next one waits.",
                            None => "Which secret the provider accepts is known after the next request.",
                        };
                        let promote = move |_| {
                            let id = id.clone();
                            spawn_local(async move {
                                match promote_token_secret(id).await {
                                    Ok(_) => {
                                        notices.ok("The next secret is now the current one.");
                                        changed.run(());
                                    }
                                    Err(e) => notices.error(e.to_string()),
                                }
                            });
                        };
                        view! {
                            <p class="help" data-testid="secret-in-use">{in_use}</p>
                            <button type="button" class="button button-secondary button-small" data-testid="promote-secret"
                                on:click=promote>"Promote next secret"</button>
                        }
                    })}
                </div>
                {password_flow.then(|| view! {
                    <label for="edit-username">"Username"</label>
                    <input id="edit-username" prop:value=username on:input=move |ev| username.set(event_target_value(&ev)) />
                    <FieldError error=err field="username" id="edit-username-error".into() />
                    <label for="edit-password">"Password"</label>
                    <input id="edit-password" type="password" autocomplete="new-password"
                        placeholder=if token.has_password { "Set; type to replace" } else { "Not set" }
                        prop:value=password on:input=move |ev| password.set(event_target_value(&ev)) />
                    <p class="help" data-testid="password-state">{if token.has_password { "Password: set" } else { "Password: not set" }}</p>
                    <FieldError error=err field="password" id="edit-password-error".into() />
                })}
                <label for="edit-resource">"Resource Identifier"</label>
                <input id="edit-resource" prop:value=resource on:input=move |ev| resource.set(event_target_value(&ev)) />
                <FieldError error=err field="resource" id="edit-resource-error".into() />
                <label for="edit-scope">"Scope"</label>
                <input id="edit-scope" prop:value=scope on:input=move |ev| scope.set(event_target_value(&ev)) />
                <FieldError error=err field="scope" id="edit-scope-error".into() />
                <fieldset>
                    <legend>"Additional Values"</legend>
                    <KeyValueEditor rows=additional label="additional value" />
                    <FieldError error=err field="additional_values" id="edit-additional-error".into() />
                </fieldset>
                <label for="edit-margin">"Refresh margin (seconds)"</label>
                <input id="edit-margin" inputmode="numeric" prop:value=margin aria-describedby="edit-margin-help edit-margin-error"
                    on:input=move |ev| margin.set(event_target_value(&ev)) />
                <p class="help" id="edit-margin-help">"Programs asking for an access token get a refreshed one when it expires within this margin."</p>
                <FieldError error=err field="refresh_margin_seconds" id="edit-margin-error".into() />
                <div class="field-switch">
                    <input id="edit-auto-refresh" type="checkbox" role="switch" prop:checked=auto_refresh
                        aria-describedby="edit-auto-refresh-help"
                        on:change=move |ev| auto_refresh.set(event_target_checked(&ev)) />
                    <label for="edit-auto-refresh">"Refresh automatically"</label>
                </div>
                <p class="help" id="edit-auto-refresh-help">"Quiver renews the token in the background before it expires, and uses a refresh token at least once a day."</p>
                <div class="field" hidden=move || !auto_refresh.get()>
                    <label for="edit-lead">"Refresh this long before expiry (seconds)"</label>
                    <input id="edit-lead" inputmode="numeric" prop:value=lead aria-describedby="edit-lead-error"
                        on:input=move |ev| lead.set(event_target_value(&ev)) />
                    <FieldError error=err field="refresh_lead_seconds" id="edit-lead-error".into() />
                </div>
                {move || error.get().and_then(|e| form_level(&e)).map(|m| view! { <div class="alert alert-error" role="alert">{m}</div> })}
                <div class="modal-actions">
                    <button type="submit" class="button" disabled=busy>"Save settings"</button>
                </div>
            </form>
        </section>
    }
}
