//! "Create and Store OAuth Credentials": the dialog that creates a token and
//! requests it, shows the outcome, and lets the person request again after a
//! failure. Interactive flows authorize in a popup.

use std::time::Duration;

use leptos::prelude::*;

use leptos::task::spawn_local;

use super::browser::{Popup, callback_token_id};
use super::field::{FieldError, form_level};
use super::format::{expires_in, flow_label};
use super::{DeviceCodePanel, HttpsWarning, KeyValueEditor, KeyValueRows};
use crate::error::AppError;
use crate::instance::get_instance_info;
use crate::names::WireName;
use crate::providers::ClientAuthMethod;
use crate::tokens::{
    Flow, TokenInput, TokenStatus, TokenView, create_token, delete_token, get_token,
    get_token_form, request_token, update_token,
};

/// The dialog; `open` shows it, `on_change` runs whenever a token was
/// created or changed (the list reloads).
#[component]
pub fn TokenDialog(open: RwSignal<bool>, on_change: Callback<()>) -> impl IntoView {
    let dialog_ref = NodeRef::<leptos::html::Dialog>::new();
    Effect::new(move |_| {
        if let Some(dialog) = dialog_ref.get() {
            if open.get() {
                if !dialog.open() {
                    let _ = dialog.show_modal();
                }
            } else if dialog.open() {
                dialog.close();
            }
        }
    });
    view! {
        <dialog
            node_ref=dialog_ref
            class="modal"
            aria-labelledby="create-token-title"
            data-testid="token-dialog"
            on:close=move |_| open.set(false)
        >
            // Its own Suspense: the form's resources must not suspend the
            // page around the dialog (that would re-insert the dialog and
            // drop it out of the modal top layer).
            {move || open.get().then(|| view! {
                <Suspense fallback=|| view! { <p class="loading modal-body">"Loading…"</p> }>
                    {Suspend::new(token_form(open, on_change))}
                </Suspense>
            })}
        </dialog>
    }
}

/// The form, in a WASM module of its own: most visits to the list create no
/// token, so the list's first load does not carry the form; the first
/// opening of the dialog fetches it (the dialog says "Loading…" meanwhile).
#[leptos::lazy]
fn token_form(open: RwSignal<bool>, on_change: Callback<()>) -> AnyView {
    view! { <TokenForm open on_change /> }.into_any()
}

#[component]
fn TokenForm(open: RwSignal<bool>, on_change: Callback<()>) -> impl IntoView {
    let options = Resource::new(|| (), |_| get_token_form());
    let instance = Resource::new(|| (), |_| get_instance_info());

    let name = RwSignal::new(String::new());
    let provider_id = RwSignal::new(String::new());
    let flow = RwSignal::new(Flow::ClientCredentials);
    let use_default_keys = RwSignal::new(true);
    let client_id = RwSignal::new(String::new());
    let client_secret = RwSignal::new(String::new());
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let resource = RwSignal::new(String::new());
    let scope = RwSignal::new(String::new());
    let additional = KeyValueRows::new();

    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    // The token once created: a retry changes and requests it again.
    let saved = RwSignal::new(None::<TokenView>);
    let popup_blocked = RwSignal::new(false);

    // The provider chosen, and what it allows.
    let chosen = move || {
        let id = provider_id.get();
        options
            .get()
            .and_then(Result::ok)
            .and_then(|o| o.providers.into_iter().find(|p| p.id == id))
    };
    let pkjwt =
        move || chosen().is_some_and(|p| p.client_auth_method == ClientAuthMethod::PrivateKeyJwt);
    let provider_key = move || chosen().is_some_and(|p| p.client_auth_method.uses_provider_key());
    let no_authorize = move || chosen().is_some_and(|p| !p.interactive);
    let no_device = move || chosen().is_some_and(|p| !p.device);
    // A provider's default scope fills the scope field unless the person
    // typed their own: choosing another provider replaces the default
    // filled in before (an empty field when the new one has none), so a
    // scope meant for one provider is not sent to another.
    let filled_default = StoredValue::new(String::new());
    Effect::new(move |_| {
        if let Some(p) = chosen() {
            let current = scope.get_untracked();
            if current.trim().is_empty() || current == filled_default.get_value() {
                let default = p.default_scope.unwrap_or_default();
                filled_default.set_value(default.clone());
                scope.set(default);
            }
        }
    });
    // A key or certificate of the provider proves the provider's client only.
    Effect::new(move |_| {
        if provider_key() {
            use_default_keys.set(true);
        }
    });
    Effect::new(move |_| {
        if pkjwt() && flow.get_untracked() != Flow::ClientCredentials {
            flow.set(Flow::ClientCredentials);
        }
    });

    let input = move || TokenInput {
        name: Some(name.get_untracked()),
        provider_id: Some(provider_id.get_untracked()),
        flow: Some(flow.get_untracked().to_string()),
        use_default_keys: Some(use_default_keys.get_untracked()),
        client_id: (!use_default_keys.get_untracked()).then(|| client_id.get_untracked()),
        client_secret: Some(client_secret.get_untracked()).filter(|s| !s.is_empty()),
        username: (flow.get_untracked() == Flow::Password).then(|| username.get_untracked()),
        password: Some(password.get_untracked()).filter(|s| !s.is_empty()),
        resource: Some(resource.get_untracked()),
        scope: Some(scope.get_untracked()),
        additional_values: Some(additional.to_map()),
        request: Some(true),
        ..TokenInput::default()
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let input = input();
        let popup = if flow.get_untracked().is_interactive() {
            Popup::open_blank()
        } else {
            None
        };
        busy.set(true);
        error.set(None);
        popup_blocked.set(false);
        let previous = saved.get_untracked();
        spawn_local(async move {
            let result = match previous {
                // Same provider: change the stored token and request it again.
                Some(old) if Some(&old.provider_id) == input.provider_id.as_ref() => {
                    let id = old.id.clone();
                    let change = TokenInput {
                        request: None,
                        provider_id: None,
                        ..input
                    };
                    match update_token(id.clone(), change).await {
                        Ok(_) => request_token(id).await,
                        Err(e) => Err(e),
                    }
                }
                // Another provider: the failed token is replaced.
                Some(old) => {
                    let _ = delete_token(old.id).await;
                    create_token(input).await
                }
                None => create_token(input).await,
            };
            busy.set(false);
            match result {
                Ok(view) => {
                    match (&view.auth_url, popup) {
                        (Some(url), Some(popup)) => {
                            if !popup.go(url) {
                                popup_blocked.set(true);
                            }
                        }
                        (Some(_), None) => popup_blocked.set(true),
                        (None, Some(popup)) => popup.close(),
                        (None, None) => {}
                    }
                    saved.set(Some(view));
                    on_change.run(());
                }
                Err(e) => {
                    if let Some(popup) = popup {
                        popup.close();
                    }
                    error.set(Some(e));
                }
            }
        });
    };

    // The callback page tells this window when authorization finished;
    // polling covers a popup without an opener.
    let waiting = move || {
        saved.with(|s| {
            s.as_ref()
                .filter(|t| t.status == TokenStatus::PendingAuthorization)
                .map(|t| t.id.clone())
        })
    };
    let reload = move |id: String| {
        spawn_local(async move {
            if let Ok(detail) = get_token(id).await {
                let done = detail.token.status != TokenStatus::PendingAuthorization;
                saved.set(Some(detail.token));
                if done {
                    on_change.run(());
                }
            }
        });
    };
    let listener = window_event_listener(leptos::ev::message, move |ev| {
        if let (Some(id), Some(waiting)) = (callback_token_id(&ev), waiting())
            && id == waiting
        {
            reload(id);
        }
    });
    on_cleanup(move || listener.remove());
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if let Some(id) = waiting() {
                    reload(id);
                }
            },
            Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });

    let close = move |_| open.set(false);
    let err = Signal::derive(move || error.get());
    let described = |id: &'static str| format!("{id}-help {id}-error");

    view! {
        <form class="form modal-body" on:submit=submit novalidate>
            <header class="modal-head">
                <h2 id="create-token-title">"Create and Store OAuth Credentials"</h2>
                <button type="button" class="button button-ghost" aria-label="Close" on:click=close>"×"</button>
            </header>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    instance.await.ok().map(|i| view! { <HttpsWarning https=i.https public_url=i.public_url /> })
                })}
            </Suspense>
            {move || saved.get().filter(|t| t.status == TokenStatus::Active).map(|t| view! { <Success token=t open /> })}
            {move || saved.get().filter(|t| t.status == TokenStatus::PendingAuthorization).map(|t| view! {
                <Waiting token=t blocked=popup_blocked />
            })}
            {move || saved.get().filter(|t| t.status == TokenStatus::Failed).map(|t| view! { <Failure token=t /> })}
            <div class="fields" hidden=move || saved.with(|s| s.as_ref().is_some_and(|t| t.status == TokenStatus::Active))>
                <div class="field">
                    <label for="token-name">"Token Name"</label>
                    <input id="token-name" required maxlength="100" autocomplete="off"
                        aria-describedby=described("token-name")
                        prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) />
                    <p class="help" id="token-name-help">"The name of the token as it appears in Quiver."</p>
                    <FieldError error=err field="name" id="token-name-error".into() />
                </div>
                <div class="field">
                    <label for="token-provider">"Provider"</label>
                    <Suspense fallback=|| view! { <select id="token-provider" disabled><option>"Loading…"</option></select> }>
                        {move || Suspend::new(async move {
                            let loaded = options.await;
                            let failed = loaded.as_ref().err().map(ToString::to_string);
                            let providers = loaded.map(|o| o.providers).unwrap_or_default();
                            if provider_id.get_untracked().is_empty() && let Some(first) = providers.first() {
                                provider_id.set(first.id.clone());
                            }
                            let empty = providers.is_empty() && failed.is_none();
                            view! {
                                <select id="token-provider" aria-describedby=described("token-provider")
                                    prop:value=provider_id on:change=move |ev| provider_id.set(event_target_value(&ev))>
                                    {providers.into_iter().map(|p| {
                                        let id = p.id.clone();
                                        view! { <option value=id.clone() selected=move || provider_id.get() == id>{p.name}</option> }
                                    }).collect_view()}
                                </select>
                                {failed.map(|message| view! {
                                    <p class="field-error" role="alert">"Could not load the providers: " {message}</p>
                                })}
                                {empty.then(|| view! {
                                    <p class="field-error">"No provider yet: " <a href="/providers/new">"register one first"</a> "."</p>
                                })}
                            }
                        })}
                    </Suspense>
                    <p class="help" id="token-provider-help">
                        "The OAuth provider holds the endpoints and validation the token uses for authorization."
                    </p>
                    <FieldError error=err field="provider_id" id="token-provider-error".into() />
                </div>
                <div class="field">
                    <label for="token-flow">"OAuth Flow"</label>
                    <select id="token-flow" aria-describedby=described("token-flow")
                        prop:value=move || flow.get().as_str()
                        on:change=move |ev| if let Ok(f) = event_target_value(&ev).parse() { flow.set(f) }>
                        {Flow::ALL.iter().copied().map(|f| view! {
                            <option value=f.as_str() selected=move || flow.get() == f
                                disabled=move || (pkjwt() && f != Flow::ClientCredentials) || (no_authorize() && f.is_interactive()) || (no_device() && f == Flow::DeviceCode)>
                                {flow_label(f)}
                            </option>
                        }).collect_view()}
                    </select>
                    <p class="help" id="token-flow-help">{move || flow_help(flow.get())}</p>
                    {move || pkjwt().then(|| view! {
                        <p class="note" data-testid="pkjwt-note">
                            "This provider authenticates with Private Key JWT, so its tokens must use the Client \
                             Credentials flow; the other flows would not work."
                        </p>
                    })}
                    {move || (no_authorize() && !pkjwt()).then(|| view! {
                        <p class="note">"This provider has no authorization endpoint, so the interactive flows are unavailable."</p>
                    })}
                    <FieldError error=err field="flow" id="token-flow-error".into() />
                </div>
                <div class="field field-switch">
                    <input id="token-default-keys" type="checkbox" role="switch"
                        aria-describedby="token-default-keys-help token-default-keys-error"
                        prop:checked=use_default_keys disabled=provider_key
                        on:change=move |ev| use_default_keys.set(event_target_checked(&ev)) />
                    <label for="token-default-keys">"Use Default Keys"</label>
                    <p class="help" id="token-default-keys-help">
                        "Use the Consumer Key and Secret Key of the provider. Turn off to give this token its own."
                    </p>
                    <FieldError error=err field="use_default_keys" id="token-default-keys-error".into() />
                </div>
                <div class="field" hidden=move || use_default_keys.get()>
                    <label for="token-client-id">"Consumer Key"</label>
                    <input id="token-client-id" autocomplete="off" aria-describedby=described("token-client-id")
                        prop:value=client_id on:input=move |ev| client_id.set(event_target_value(&ev)) />
                    <p class="help" id="token-client-id-help">"An identifier that works like the application's username (the client id)."</p>
                    <FieldError error=err field="client_id" id="token-client-id-error".into() />
                </div>
                <div class="field" hidden=move || use_default_keys.get()>
                    <label for="token-client-secret">"Secret Key"</label>
                    <input id="token-client-secret" type="password" autocomplete="new-password"
                        aria-describedby=described("token-client-secret")
                        placeholder=move || saved.with(|s| s.as_ref().is_some_and(|t| t.has_client_secret)).then_some("Set; type to replace")
                        prop:value=client_secret on:input=move |ev| client_secret.set(event_target_value(&ev)) />
                    <p class="help" id="token-client-secret-help">"Works like the application's password (the client secret). Stored encrypted, never shown again."</p>
                    <FieldError error=err field="client_secret" id="token-client-secret-error".into() />
                </div>
                <div class="field" hidden=move || flow.get() != Flow::Password>
                    <label for="token-username">"Username"</label>
                    <input id="token-username" autocomplete="off" aria-describedby=described("token-username")
                        prop:value=username on:input=move |ev| username.set(event_target_value(&ev)) />
                    <p class="help" id="token-username-help">"The resource owner's username at the provider."</p>
                    <FieldError error=err field="username" id="token-username-error".into() />
                </div>
                <div class="field" hidden=move || flow.get() != Flow::Password>
                    <label for="token-password">"Password"</label>
                    <input id="token-password" type="password" autocomplete="new-password" aria-describedby=described("token-password")
                        prop:value=password on:input=move |ev| password.set(event_target_value(&ev)) />
                    <p class="help" id="token-password-help">"Saved encrypted, so new tokens are obtained without anyone present."</p>
                    <FieldError error=err field="password" id="token-password-error".into() />
                </div>
                <div class="field">
                    <label for="token-resource">"Resource Identifier"</label>
                    <input id="token-resource" autocomplete="off" aria-describedby=described("token-resource")
                        prop:value=resource on:input=move |ev| resource.set(event_target_value(&ev)) />
                    <p class="help" id="token-resource-help">"Used by some providers as extra validation (sent as resource). Varies between applications."</p>
                    <FieldError error=err field="resource" id="token-resource-error".into() />
                </div>
                <div class="field">
                    <label for="token-scope">"Scope"</label>
                    <input id="token-scope" autocomplete="off" aria-describedby=described("token-scope")
                        prop:value=scope on:input=move |ev| scope.set(event_target_value(&ev)) />
                    <p class="help" id="token-scope-help">"Permissions that limit the application's access, separated by spaces. The API's documentation lists them."</p>
                    <FieldError error=err field="scope" id="token-scope-error".into() />
                </div>
                <fieldset class="field">
                    <legend>"Additional Values"</legend>
                    <p class="help" id="token-additional-help">"Extra values some providers require with each request; their API documentation names them."</p>
                    <KeyValueEditor rows=additional label="additional value" />
                    <FieldError error=err field="additional_values" id="token-additional-error".into() />
                </fieldset>
                {move || error.get().and_then(|e| form_level(&e)).map(|m| view! {
                    <div class="alert alert-error" role="alert" data-testid="token-form-error">{m}</div>
                })}
                <div class="modal-actions">
                    <button type="button" class="button button-secondary" on:click=close>"Cancel"</button>
                    <button type="submit" class="button" disabled=busy aria-busy=move || busy.get().to_string()>
                        {move || if busy.get() {
                            "Requesting…"
                        } else if saved.with(|s| s.as_ref().is_some_and(|t| t.status == TokenStatus::Failed)) {
                            "Request again"
                        } else {
                            "Request Token"
                        }}
                    </button>
                </div>
            </div>
        </form>
    }
}

fn flow_help(flow: Flow) -> &'static str {
    match flow {
        Flow::AuthorizationCode => {
            "The resource owner authorizes in a browser window; Quiver then keeps the token fresh with its refresh token."
        }
        Flow::ClientCredentials => {
            "Uses the Consumer Key and Secret Key only; no user interaction. The most reliable way to configure a token."
        }
        Flow::Password => {
            "Uses a username and password saved with the token, so no user interaction is needed to obtain new tokens."
        }
        Flow::OidcHybrid => {
            "Part of OpenID Connect: the provider returns an ID token with the code; the token may come with refresh data."
        }
        Flow::DeviceCode => {
            "The resource owner types a short code on any device (RFC 8628), for accounts where a redirect back to Quiver is impossible; Quiver waits for the approval."
        }
    }
}

#[component]
fn Success(token: TokenView, open: RwSignal<bool>) -> impl IntoView {
    let now = super::format::now_seconds();
    let href = format!("/tokens/{}", token.id);
    view! {
        <div class="alert alert-success" role="status" data-testid="token-success">
            <strong>"Token stored: " {token.name.clone()}</strong>
            <dl class="facts">
                <dt>"Expires"</dt><dd data-testid="token-success-expiry">{expires_in(token.expires_at.as_deref(), now)}</dd>
                <dt>"Granted scope"</dt><dd data-testid="token-success-scope">{token.granted_scope.clone().unwrap_or_else(|| "—".into())}</dd>
                {token.identity.clone().map(|i| view! {
                    <dt>"Signed in as"</dt><dd>{i.email.or(i.name).unwrap_or(i.sub)}</dd>
                })}
            </dl>
            <div class="modal-actions">
                <a class="button button-secondary" href=href>"Open token"</a>
                <button type="button" class="button" on:click=move |_| open.set(false)>"Done"</button>
            </div>
        </div>
    }
}

#[component]
fn Failure(token: TokenView) -> impl IntoView {
    let e = token.error.clone();
    view! {
        <div class="alert alert-error" role="alert" data-testid="token-failure">
            <strong>"The provider refused the request."</strong>
            {e.map(|e| view! {
                <dl class="facts">
                    <dt>"Error"</dt><dd data-testid="token-failure-error"><code>{e.error}</code></dd>
                    {e.error_description.map(|d| view! { <dt>"Description"</dt><dd data-testid="token-failure-description">{d}</dd> })}
                    {e.http_status.map(|s| view! { <dt>"HTTP status"</dt><dd data-testid="token-failure-status">{s}</dd> })}
                </dl>
            })}
            <p>"Correct the settings below and request again; the token is kept until then."</p>
        </div>
    }
}

#[component]
fn Waiting(token: TokenView, blocked: RwSignal<bool>) -> impl IntoView {
    if let Some(device) = token.pending_authorization.clone() {
        return view! { <DeviceCodePanel token_id=token.id.clone() device /> }.into_any();
    }
    let url = token.auth_url.clone().unwrap_or_default();
    view! {
        <div class="alert alert-info" role="status" data-testid="token-waiting">
            <strong>"Waiting for authorization"</strong>
            {move || if blocked.get() {
                view! { <p>"The browser blocked the popup. Open the provider's page to authorize:"</p> }.into_any()
            } else {
                view! { <p>"Sign in and approve in the popup window. This dialog updates when you are done."</p> }.into_any()
            }}
            <p><a href=url target="quiver-oauth" rel="opener" data-testid="auth-link">"Open the provider's page"</a></p>
        </div>
    }
    .into_any()
}
