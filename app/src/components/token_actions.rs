//! A token's actions: the menu (right-click on a row, or its menu button),
//! the delete confirmation, and the notices that report what happened.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::browser::{Popup, copy_to_clipboard};
use crate::tokens::{Flow, TokenStatus, TokenSummary};

/// One message in the page's live region.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    id: u32,
    error: bool,
    text: String,
    link: Option<String>,
}

/// The page's notices, newest last; a live region reads them out.
#[derive(Clone, Copy)]
pub struct Notices {
    items: RwSignal<Vec<Notice>>,
    next: RwSignal<u32>,
}

impl Notices {
    /// None yet.
    pub fn new() -> Self {
        Self {
            items: RwSignal::new(Vec::new()),
            next: RwSignal::new(0),
        }
    }

    fn push(&self, error: bool, text: String, link: Option<String>) {
        let id = self.next.get_untracked();
        self.next.set(id + 1);
        self.items.update(|items| {
            items.push(Notice {
                id,
                error,
                text,
                link,
            });
            // A few at a time.
            if items.len() > 3 {
                items.remove(0);
            }
        });
    }

    /// Reports a success.
    pub fn ok(&self, text: impl Into<String>) {
        self.push(false, text.into(), None);
    }

    /// Reports a failure.
    pub fn error(&self, text: impl Into<String>) {
        self.push(true, text.into(), None);
    }

    /// Shows a link (an authorization link) with a message.
    pub fn link(&self, text: impl Into<String>, link: String) {
        self.push(false, text.into(), Some(link));
    }

    /// The live region.
    pub fn view(self) -> impl IntoView {
        view! {
            <div class="notices" role="status" aria-live="polite" data-testid="notices">
                <For each=move || self.items.get() key=|n| n.id let:notice>
                    {
                        let id = notice.id;
                        view! {
                            <div class=if notice.error { "notice notice-error" } else { "notice" } data-testid="notice">
                                <span>{notice.text}</span>
                                {notice.link.map(|l| view! {
                                    <a href=l.clone() target="quiver-oauth" rel="opener" data-testid="notice-link">"Open link"</a>
                                    <button type="button" class="button button-small button-secondary"
                                        on:click=move |_| { copy_to_clipboard(&l); }>"Copy link"</button>
                                })}
                                <button type="button" class="button button-ghost button-small" aria-label="Dismiss"
                                    on:click=move |_| self.items.update(|i| i.retain(|n| n.id != id))>"×"</button>
                            </div>
                        }
                    }
                </For>
            </div>
        }
    }
}

impl Default for Notices {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the menu opens and for which token.
#[derive(Clone, Debug)]
pub struct MenuTarget {
    /// The token.
    pub token: TokenSummary,
    /// Viewport position of the menu's top left corner.
    pub x: f64,
    /// Viewport position of the menu's top left corner.
    pub y: f64,
    /// The element to focus when the menu closes.
    pub return_focus: Option<String>,
}

/// What the page does after an action.
#[derive(Clone, Copy)]
pub struct ActionHooks {
    /// Reload the data shown.
    pub changed: Callback<()>,
    /// The token was deleted.
    pub deleted: Callback<String>,
    /// Start renaming this token inline.
    pub rename: Callback<String>,
}

/// What an action asks of the server about one token.
#[derive(Clone, Debug)]
pub enum TokenCall {
    /// Refresh the access token.
    Refresh,
    /// Reset Client Credentials: revoke, then issue a new token.
    Reset,
    /// Request a non-interactive token again.
    RequestAgain,
    /// Make an authorization link.
    AuthLink,
    /// Revoke and delete the token.
    Delete,
    /// Give the token this name.
    Rename(String),
}

/// How a [`TokenCall`] went, in the words the page shows.
#[derive(Clone, Debug, PartialEq)]
pub enum CallOutcome {
    /// It worked: the message that says so.
    Done(String),
    /// It did not: the message that says why.
    Failed(String),
    /// The authorization link that was asked for.
    Link(String),
}

/// Runs a call for the token `id` named `name`. The server calls, the
/// decoding of their answers and the wording of the outcome are a WASM
/// module of their own: the list's first load shows the menu without
/// them, and the first action fetches them.
#[leptos::lazy]
async fn token_call(call: TokenCall, id: String, name: String) -> CallOutcome {
    use crate::tokens::{
        Revocation, TokenInput, delete_token, refresh_token, request_token, reset_token,
        token_auth_link, update_token,
    };
    match call {
        TokenCall::Refresh => provider_outcome(
            refresh_token(id).await,
            "Refreshing",
            &name,
            format!("Refreshed {name}."),
        ),
        TokenCall::Reset => provider_outcome(
            reset_token(id).await,
            "Resetting",
            &name,
            format!("Reset {name}: the old token was revoked and a new one issued."),
        ),
        TokenCall::RequestAgain => provider_outcome(
            request_token(id).await,
            "Requesting",
            &name,
            format!("Requested {name} again."),
        ),
        TokenCall::AuthLink => match token_auth_link(id).await {
            Ok(url) => CallOutcome::Link(url),
            Err(e) => CallOutcome::Failed(format!("Could not make a link for {name}: {e}")),
        },
        TokenCall::Delete => match delete_token(id).await {
            Ok(outcome) => {
                let revocation = match outcome.revocation {
                    Revocation::Revoked => "it was revoked at the provider".to_owned(),
                    Revocation::NotSupported => {
                        "the provider has no revocation endpoint".to_owned()
                    }
                    Revocation::NothingToRevoke => "there was nothing to revoke".to_owned(),
                    Revocation::Failed => format!(
                        "revocation at the provider failed ({})",
                        outcome.revocation_error.unwrap_or_default()
                    ),
                };
                CallOutcome::Done(format!("Deleted {name}; {revocation}."))
            }
            Err(e) => CallOutcome::Failed(format!("Could not delete {name}: {e}")),
        },
        TokenCall::Rename(new) => {
            let input = TokenInput {
                name: Some(new),
                ..TokenInput::default()
            };
            match update_token(id, input).await {
                Ok(t) => CallOutcome::Done(format!("Renamed {name} to {}.", t.name)),
                Err(e) => {
                    CallOutcome::Failed(e.message_for("name").unwrap_or_else(|| e.to_string()))
                }
            }
        }
    }
}

/// What a provider call did to a token: `done` when it is active, else the
/// provider's words (or the status) after "`doing` {name} failed".
fn provider_outcome(
    result: Result<crate::tokens::TokenView, crate::error::AppError>,
    doing: &str,
    name: &str,
    done: String,
) -> CallOutcome {
    match result {
        Ok(t) if t.status == TokenStatus::Active => CallOutcome::Done(done),
        Ok(t) => CallOutcome::Failed(format!(
            "{doing} {name} failed: {}",
            t.error
                .map(|e| e.error_description.unwrap_or(e.error))
                .unwrap_or_else(|| t.status.to_string())
        )),
        Err(e) => CallOutcome::Failed(format!("{doing} {name} failed: {e}")),
    }
}

/// Runs `call` and reports its outcome; `changed` runs afterwards.
fn run_and_report(call: TokenCall, token: &TokenSummary, notices: Notices, changed: Callback<()>) {
    let (id, name) = (token.id.clone(), token.name.clone());
    spawn_local(async move {
        match token_call(call, id, name).await {
            CallOutcome::Done(text) | CallOutcome::Link(text) => notices.ok(text),
            CallOutcome::Failed(text) => notices.error(text),
        }
        changed.run(());
    });
}

/// Refreshes a token's access token and reports it.
pub fn refresh(token: &TokenSummary, notices: Notices, changed: Callback<()>) {
    run_and_report(TokenCall::Refresh, token, notices, changed);
}

/// Reset Client Credentials: revoke, then issue a new token; reports it.
pub fn reset(token: &TokenSummary, notices: Notices, changed: Callback<()>) {
    run_and_report(TokenCall::Reset, token, notices, changed);
}

/// Requests a non-interactive token again and reports it.
pub fn request_again(token: &TokenSummary, notices: Notices, changed: Callback<()>) {
    run_and_report(TokenCall::RequestAgain, token, notices, changed);
}

/// Renames a token; `Err` carries what to show beside the name field.
pub async fn rename(id: String, old_name: String, new_name: String) -> Result<String, String> {
    match token_call(TokenCall::Rename(new_name), id, old_name).await {
        CallOutcome::Done(text) | CallOutcome::Link(text) => Ok(text),
        CallOutcome::Failed(text) => Err(text),
    }
}

/// Re-authorizes an interactive token in a popup (the link is shown when
/// the popup is blocked).
pub fn reauthorize(token: &TokenSummary, notices: Notices, changed: Callback<()>) {
    let (id, name) = (token.id.clone(), token.name.clone());
    // Within the click: browsers block a popup opened after a wait.
    let popup = Popup::open_blank();
    spawn_local(async move {
        match token_call(TokenCall::AuthLink, id, name.clone()).await {
            CallOutcome::Link(url) => match popup {
                Some(p) if p.go(&url) => notices.ok(format!(
                    "Authorize {name} in the popup window; the list updates when you are done."
                )),
                _ => notices.link(
                    format!("The popup was blocked. Authorize {name} with this link:"),
                    url,
                ),
            },
            CallOutcome::Done(text) | CallOutcome::Failed(text) => {
                if let Some(p) = popup {
                    p.close();
                }
                notices.error(text);
            }
        }
        changed.run(());
    });
}

/// Gets an authorization link to hand to whoever authorizes the token.
pub fn get_auth_link(token: &TokenSummary, notices: Notices) {
    let (id, name) = (token.id.clone(), token.name.clone());
    spawn_local(async move {
        match token_call(TokenCall::AuthLink, id, name.clone()).await {
            CallOutcome::Link(url) => notices.link(format!("Authorization link for {name}:"), url),
            CallOutcome::Done(text) | CallOutcome::Failed(text) => notices.error(text),
        }
    });
}

/// Copies the token's id (within the click: the clipboard wants a gesture).
pub fn copy_id(token: &TokenSummary, notices: Notices) {
    if copy_to_clipboard(&token.id) {
        notices.ok(format!(
            "Copied the token ID of {}: {}",
            token.name, token.id
        ));
    } else {
        notices.error(format!("Could not copy; the token ID is {}", token.id));
    }
}

/// The action menu and the delete confirmation.
#[component]
pub fn ActionMenu(
    target: RwSignal<Option<MenuTarget>>,
    notices: Notices,
    hooks: ActionHooks,
) -> impl IntoView {
    let confirm = RwSignal::new(None::<TokenSummary>);
    let menu_ref = NodeRef::<leptos::html::Div>::new();
    let close = move || {
        if let Some(t) = target.get_untracked() {
            target.set(None);
            if let Some(id) = t.return_focus
                && let Some(el) = document().get_element_by_id(&id)
                && let Ok(el) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el)
            {
                let _ = el.focus();
            }
        }
    };
    // Keep the menu inside the window, then focus its first item.
    Effect::new(move |_| {
        if target.with(Option::is_some)
            && let Some(menu) = menu_ref.get()
        {
            // Through the CSSOM: the page's CSP refuses inline style attributes.
            let (x, y) = target.with_untracked(|t| t.as_ref().map_or((0.0, 0.0), |t| (t.x, t.y)));
            let rect = menu.get_bounding_client_rect();
            let size = |v: Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>| {
                v.ok().and_then(|v| v.as_f64()).unwrap_or(0.0)
            };
            let (width, height) = (size(window().inner_width()), size(window().inner_height()));
            let left = x.min(width - rect.width() - 4.0).max(4.0);
            let top = y.min(height - rect.height() - 4.0).max(4.0);
            let style = web_sys::HtmlElement::style(&menu);
            // Whole pixels: formatting an `f64` would bring the float
            // printing code into the list's first load for this alone.
            let _ = style.set_property("left", &format!("{}px", left.round() as i32));
            let _ = style.set_property("top", &format!("{}px", top.round() as i32));
        }
        if target.with(Option::is_some)
            && let Some(menu) = menu_ref.get()
            && let Ok(Some(first)) = menu.query_selector("[role=menuitem]")
            && let Ok(first) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(first)
        {
            let _ = first.focus();
        }
    });
    let keydown = move |ev: leptos::ev::KeyboardEvent| {
        let Some(menu) = menu_ref.get_untracked() else {
            return;
        };
        let Ok(items) = menu.query_selector_all("[role=menuitem]") else {
            return;
        };
        let count = items.length();
        let active = document().active_element();
        let current = (0..count).find(|i| {
            items.item(*i).zip(active.clone()).is_some_and(|(n, a)| {
                wasm_bindgen::JsValue::from(n) == wasm_bindgen::JsValue::from(a)
            })
        });
        let go = |index: u32| {
            if let Some(n) = items.item(index)
                && let Ok(el) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(n)
            {
                let _ = el.focus();
            }
        };
        match ev.key().as_str() {
            "ArrowDown" => {
                ev.prevent_default();
                go(current.map_or(0, |c| (c + 1) % count));
            }
            "ArrowUp" => {
                ev.prevent_default();
                go(current.map_or(count.saturating_sub(1), |c| (c + count - 1) % count));
            }
            "Home" => {
                ev.prevent_default();
                go(0);
            }
            "End" => {
                ev.prevent_default();
                go(count.saturating_sub(1));
            }
            "Escape" | "Tab" => {
                ev.prevent_default();
                close();
            }
            _ => {}
        }
    };
    // A click anywhere else closes the menu.
    let outside = window_event_listener(leptos::ev::pointerdown, move |ev| {
        if target.with_untracked(Option::is_none) {
            return;
        }
        let inside = menu_ref.get_untracked().is_some_and(|m| {
            ev.target()
                .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Node>(t).ok())
                .is_some_and(|n| m.contains(Some(&n)))
        });
        if !inside {
            target.set(None);
        }
    });
    on_cleanup(move || outside.remove());

    let item = move |label: &'static str,
                     testid: &'static str,
                     run: Box<dyn Fn(TokenSummary) + Send + Sync>| {
        view! {
            <button type="button" role="menuitem" tabindex="-1" data-testid=testid
                on:click=move |_| {
                    if let Some(t) = target.get_untracked() {
                        close();
                        run(t.token);
                    }
                }>{label}</button>
        }
    };

    view! {
        {move || target.get().map(|t| {
            let token = t.token.clone();
            let cc = token.flow == Flow::ClientCredentials;
            let interactive = token.flow.is_interactive();
            view! {
                <div class="menu" role="menu" aria-label=format!("Actions for {}", token.name)
                    node_ref=menu_ref on:keydown=keydown data-testid="action-menu">
                    <a role="menuitem" tabindex="-1" href=format!("/tokens/{}", token.id) data-testid="action-open">"Open details"</a>
                    {item("Refresh Access Token", "action-refresh", Box::new(move |t| refresh(&t, notices, hooks.changed)))}
                    {item("Rename OAuth Token", "action-rename", Box::new(move |t| hooks.rename.run(t.id)))}
                    {cc.then(|| item("Reset Client Credentials", "action-reset", Box::new(move |t| reset(&t, notices, hooks.changed))))}
                    {interactive.then(|| item("Re-authorize", "action-reauthorize", Box::new(move |t| reauthorize(&t, notices, hooks.changed))))}
                    {interactive.then(|| item("Get Auth Link", "action-auth-link", Box::new(move |t| get_auth_link(&t, notices))))}
                    {(!interactive).then(|| item("Request Token again", "action-request", Box::new(move |t| request_again(&t, notices, hooks.changed))))}
                    <div role="group" aria-label="Manage" class="menu-group">
                        <span class="menu-label" aria-hidden="true">"Manage"</span>
                        {item("Copy Token ID", "action-copy-id", Box::new(move |t| copy_id(&t, notices)))}
                    </div>
                    {item("Delete OAuth Token", "action-delete", Box::new(move |t| confirm.set(Some(t))))}
                </div>
            }
        })}
        <ConfirmDelete confirm notices hooks />
    }
}

/// "Delete this token?", then the revocation outcome.
#[component]
fn ConfirmDelete(
    confirm: RwSignal<Option<TokenSummary>>,
    notices: Notices,
    hooks: ActionHooks,
) -> impl IntoView {
    let dialog_ref = NodeRef::<leptos::html::Dialog>::new();
    let busy = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(dialog) = dialog_ref.get() {
            if confirm.with(Option::is_some) {
                if !dialog.open() {
                    let _ = dialog.show_modal();
                }
            } else if dialog.open() {
                dialog.close();
            }
        }
    });
    let delete = move |_| {
        let Some(token) = confirm.get_untracked() else {
            return;
        };
        busy.set(true);
        spawn_local(async move {
            match token_call(TokenCall::Delete, token.id.clone(), token.name.clone()).await {
                CallOutcome::Done(text) | CallOutcome::Link(text) => {
                    notices.ok(text);
                    hooks.deleted.run(token.id);
                }
                CallOutcome::Failed(text) => notices.error(text),
            }
            busy.set(false);
            confirm.set(None);
        });
    };
    view! {
        <dialog node_ref=dialog_ref class="modal modal-small" aria-labelledby="confirm-delete-title"
            on:close=move |_| confirm.set(None) data-testid="confirm-delete">
            <div class="modal-body">
                <h2 id="confirm-delete-title">"Delete OAuth Token"</h2>
                <p>
                    "Delete " <strong>{move || confirm.get().map(|t| t.name).unwrap_or_default()}</strong>
                    "? Quiver revokes it at the provider first (when the provider allows), then forgets it. \
                     Programs using it will stop getting access tokens."
                </p>
                <div class="modal-actions">
                    <button type="button" class="button button-secondary" on:click=move |_| confirm.set(None)>"Cancel"</button>
                    <button type="button" class="button button-danger" disabled=busy on:click=delete>
                        {move || if busy.get() { "Deleting…" } else { "Delete" }}
                    </button>
                </div>
            </div>
        </dialog>
    }
}
