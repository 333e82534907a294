//! The tokens screen: the list with search, filters, sort and paging, the
//! create dialog, and each token's actions.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::components::actions::rename;
use crate::components::format::{ago, expires_in, flow_label, now_seconds, status_badge};
use crate::components::{
    ActionHooks, ActionMenu, EmptyState, ErrorBox, MenuTarget, Notices, Session, TokenDialog,
};
use crate::names::WireName;
use crate::tokens::{Flow, TokenListQuery, TokenSummary, list_token_providers, list_tokens};

const PAGE: u64 = 50;

/// A clock for countdowns, in seconds since the Unix epoch, ticking once a
/// second in the browser.
pub fn ticking_now() -> RwSignal<i64> {
    let now = RwSignal::new(now_seconds());
    Effect::new(move |_| {
        if let Ok(handle) =
            set_interval_with_handle(move || now.set(now_seconds()), Duration::from_secs(1))
        {
            on_cleanup(move || handle.clear());
        }
    });
    now
}

/// `/tokens`: the OAuth tokens Quiver stores for the signed-in user (all
/// of them for an admin), with search, filters, sort, paging, the create
/// dialog and each token's actions.
#[component]
pub fn TokensPage() -> impl IntoView {
    // Filters can come in the link (from the overview): `?status=failed`.
    let query_map = leptos_router::hooks::use_query_map();
    let from_link = move |name: &str| {
        query_map
            .with_untracked(|q| q.get(name))
            .unwrap_or_default()
    };
    let search = RwSignal::new(String::new());
    let status = RwSignal::new(from_link("status"));
    let provider = RwSignal::new(String::new());
    let flow = RwSignal::new(String::new());
    let unused = RwSignal::new(from_link("unused_days").parse::<u32>().unwrap_or(0));
    let sort = RwSignal::new("name".to_owned());
    let desc = RwSignal::new(false);
    let offset = RwSignal::new(0u64);
    let version = RwSignal::new(0u32);
    let query = move || TokenListQuery {
        q: search.get(),
        status: status.get(),
        provider_id: provider.get(),
        flow: flow.get(),
        unused_days: unused.get(),
        sort: sort.get(),
        desc: desc.get(),
        offset: offset.get(),
    };
    let tokens = Resource::new(move || (query(), version.get()), |(q, _)| list_tokens(q));
    // The providers' names for the filter: the full provider records
    // (endpoints, keys, certificates) would bring their decoding code into
    // the list's first load for two fields.
    let providers = Resource::new(|| (), |_| list_token_providers());
    let now = ticking_now();
    let notices = Notices::new();
    let menu = RwSignal::new(None::<MenuTarget>);
    let renaming = RwSignal::new(None::<String>);
    let creating = RwSignal::new(false);
    let changed = Callback::new(move |_| version.update(|v| *v += 1));
    let hooks = ActionHooks {
        changed,
        deleted: Callback::new(move |_| version.update(|v| *v += 1)),
        rename: Callback::new(move |id| renaming.set(Some(id))),
    };
    let is_admin = move || {
        expect_context::<Session>()
            .0
            .get()
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|u| u.is_admin())
    };
    let filtered = move || {
        !(search.get().is_empty()
            && status.get().is_empty()
            && provider.get().is_empty()
            && flow.get().is_empty()
            && unused.get() == 0)
    };
    let reset_page = move || offset.set(0);
    view! {
        <Title text="Tokens · Quiver" />
        <div class="page-head">
            <h1>"OAuth tokens"</h1>
            <button class="button" type="button" data-testid="create-token" on:click=move |_| creating.set(true)>
                "Create token"
            </button>
        </div>
        {notices.view()}
        <form class="toolbar" role="search" on:submit=|ev| ev.prevent_default()>
            <div class="control">
                <label for="token-search">"Search by name"</label>
                <input id="token-search" type="search" prop:value=search
                    on:input=move |ev| { reset_page(); search.set(event_target_value(&ev)); } />
            </div>
            <div class="control">
                <label for="filter-status">"Status"</label>
                <select id="filter-status" prop:value=status on:change=move |ev| { reset_page(); status.set(event_target_value(&ev)); }>
                    <option value="">"All"</option>
                    <option value="active">"Active"</option>
                    <option value="expiring_soon">"Expiring soon"</option>
                    <option value="expired">"Expired"</option>
                    <option value="failed">"Failed"</option>
                    <option value="pending_authorization">"Waiting for authorization"</option>
                    <option value="needs_credentials">"Needs credentials"</option>
                </select>
            </div>
            <div class="control">
                <label for="filter-provider">"Provider"</label>
                <select id="filter-provider" prop:value=provider on:change=move |ev| { reset_page(); provider.set(event_target_value(&ev)); }>
                    <option value="">"All"</option>
                    <Suspense>
                        {move || Suspend::new(async move {
                            providers.await.unwrap_or_default().into_iter()
                                .map(|p| view! { <option value=p.id>{p.name}</option> })
                                .collect_view()
                        })}
                    </Suspense>
                </select>
            </div>
            <div class="control">
                <label for="filter-flow">"Flow"</label>
                <select id="filter-flow" prop:value=flow on:change=move |ev| { reset_page(); flow.set(event_target_value(&ev)); }>
                    <option value="">"All"</option>
                    {Flow::ALL.iter().map(|f| view! { <option value=f.as_str()>{flow_label(*f)}</option> }).collect_view()}
                </select>
            </div>
            <div class="control">
                <label for="filter-unused">"Unused for"</label>
                <select id="filter-unused" prop:value=move || unused.get().to_string()
                    on:change=move |ev| { reset_page(); unused.set(event_target_value(&ev).parse().unwrap_or(0)); }>
                    <option value="0">"Any time"</option>
                    <option value="1">"1 day or more"</option>
                    <option value="7">"7 days or more"</option>
                    <option value="30">"30 days or more"</option>
                    <option value="90">"90 days or more"</option>
                </select>
            </div>
            <div class="control">
                <label for="token-sort">"Sort by"</label>
                <select id="token-sort" prop:value=sort on:change=move |ev| { reset_page(); sort.set(event_target_value(&ev)); }>
                    <option value="name">"Name"</option>
                    <option value="expires_at">"Expiry"</option>
                    <option value="last_refreshed_at">"Last refreshed"</option>
                    <option value="last_used_at">"Last used"</option>
                    <option value="created_at">"Created"</option>
                </select>
            </div>
            <div class="control control-check">
                <input id="token-desc" type="checkbox" prop:checked=desc
                    on:change=move |ev| { reset_page(); desc.set(event_target_checked(&ev)); } />
                <label for="token-desc">"Descending"</label>
            </div>
        </form>
        <Transition fallback=|| view! { <p class="loading" aria-busy="true">"Loading tokens…"</p> }>
            {move || Suspend::new(async move {
                match tokens.await {
                    Ok(page) if page.total == 0 && !filtered() => view! {
                        <EmptyState title="No tokens yet">
                            <p>
                                "A token holds the credentials one program uses to call a third-party API. \
                                 Tokens are requested from an OAuth provider ("
                                <a href="/providers">"providers"</a> ")."
                            </p>
                            <button class="button" type="button" on:click=move |_| creating.set(true)>"Create token"</button>
                        </EmptyState>
                    }
                    .into_any(),
                    Ok(page) => {
                        let admin = is_admin();
                        let start = offset.get_untracked();
                        let shown = page.items.len() as u64;
                        let total = page.total;
                        let range = if shown == 0 {
                            "No tokens match.".to_owned()
                        } else {
                            format!("{}–{} of {total} tokens", start + 1, start + shown)
                        };
                        view! {
                            <p data-testid="token-total" class="muted">{range}</p>
                            <div class="table-wrap">
                                <table class="table tokens-table table-cards">
                                    <caption class="visually-hidden">"OAuth tokens; right-click a row or use its menu button for actions"</caption>
                                    <thead><tr>
                                        <th scope="col">"Name"</th><th scope="col">"Provider"</th><th scope="col">"Flow"</th>
                                        <th scope="col">"Status"</th><th scope="col">"Expires"</th><th scope="col">"Last refreshed"</th>
                                        <th scope="col">"Last used"</th>
                                        {admin.then(|| view! { <th scope="col">"Owner"</th> })}
                                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody>
                                        {page.items.into_iter().map(|t| view! {
                                            <TokenRow token=t admin now menu renaming notices changed />
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <nav class="pager" aria-label="Pages">
                                <button class="button button-secondary button-small" type="button" disabled={start == 0}
                                    on:click=move |_| offset.update(|o| *o = o.saturating_sub(PAGE))>"Previous"</button>
                                <button class="button button-secondary button-small" type="button" disabled={start + shown >= total}
                                    on:click=move |_| offset.update(|o| *o += PAGE)>"Next"</button>
                            </nav>
                        }
                        .into_any()
                    }
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Transition>
        <ActionMenu target=menu notices hooks />
        <TokenDialog open=creating on_change=changed />
    }
}

#[component]
fn TokenRow(
    token: TokenSummary,
    admin: bool,
    now: RwSignal<i64>,
    menu: RwSignal<Option<MenuTarget>>,
    renaming: RwSignal<Option<String>>,
    notices: Notices,
    changed: Callback<()>,
) -> impl IntoView {
    let button_id = format!("menu-{}", token.id);
    let expires = token.expires_at.clone();
    let refreshed = token.last_refreshed_at.clone();
    let used = token.last_used_at.clone();
    let used_title = token
        .last_used_by
        .clone()
        .map(|by| format!("{} in the last 24 hours; last by {by}", token.uses_24h));
    let status = token.status;
    let badge = {
        let expires = expires.clone();
        Signal::derive(move || status_badge(status, expires.as_deref(), now.get()))
    };
    let open_at = {
        let token = token.clone();
        let button_id = button_id.clone();
        move |x: f64, y: f64| {
            let width = window()
                .inner_width()
                .ok()
                .and_then(|w| w.as_f64())
                .unwrap_or(1024.0);
            menu.set(Some(MenuTarget {
                token: token.clone(),
                x: x.min(width - 264.0),
                y,
                return_focus: Some(button_id.clone()),
            }))
        }
    };
    let on_context = {
        let open_at = open_at.clone();
        move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            open_at(f64::from(ev.client_x()), f64::from(ev.client_y()));
        }
    };
    let on_button = move |ev: leptos::ev::MouseEvent| {
        if let Some(el) = ev
            .current_target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
        {
            let rect = el.get_bounding_client_rect();
            open_at(rect.right() - 256.0, rect.bottom() + 4.0);
        }
    };
    let id = token.id.clone();
    let editing = {
        let id = id.clone();
        move || renaming.get().as_deref() == Some(id.as_str())
    };
    let name = token.name.clone();
    let href = format!("/tokens/{}", token.id);
    view! {
        <tr data-testid="token-row" data-token-id=token.id.clone() on:contextmenu=on_context>
            <th scope="row">
                {move || if editing() {
                    view! { <RenameForm id=id.clone() name=name.clone() renaming notices changed /> }.into_any()
                } else {
                    view! { <a href=href.clone() class="token-name">{name.clone()}</a> }.into_any()
                }}
            </th>
            <td class="hide-narrow">{token.provider_name.clone()}</td>
            <td class="hide-narrow">{flow_label(token.flow)}</td>
            <td data-label="Status">
                <span class=move || format!("badge status-{}", badge.get().0) data-testid="status-badge">{move || badge.get().1}</span>
            </td>
            <td data-testid="expires-in" data-label="Expires">{
                let expires = expires.clone();
                move || expires_in(expires.as_deref(), now.get())
            }</td>
            <td class="hide-narrow">{move || ago(refreshed.as_deref(), now.get())}</td>
            <td class="hide-narrow" data-testid="last-used" title=used_title>{move || ago(used.as_deref(), now.get())}</td>
            {admin.then(|| view! { <td class="hide-narrow">{token.owner_email.clone()}</td> })}
            <td class="cell-actions">
                <button type="button" class="button button-ghost button-small menu-button" id=button_id
                    aria-haspopup="menu" aria-label=format!("Actions for {}", token.name) data-testid="row-menu"
                    on:click=on_button>"⋯"</button>
            </td>
        </tr>
    }
}

/// Inline rename: Enter saves, Escape cancels.
#[component]
fn RenameForm(
    id: String,
    name: String,
    renaming: RwSignal<Option<String>>,
    notices: Notices,
    changed: Callback<()>,
) -> impl IntoView {
    let value = RwSignal::new(name.clone());
    let error = RwSignal::new(None::<String>);
    let input_ref = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = input_ref.get() {
            let _ = input.focus();
            input.select();
        }
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (id, old) = (id.clone(), name.clone());
        let new = value.get_untracked();
        spawn_local(async move {
            match rename(id, old, new).await {
                Ok(done) => {
                    renaming.set(None);
                    notices.ok(done);
                    changed.run(());
                }
                Err(message) => error.set(Some(message)),
            }
        });
    };
    view! {
        <form class="rename" on:submit=save>
            <label class="visually-hidden" for="rename-input">"New name"</label>
            <input id="rename-input" node_ref=input_ref prop:value=value maxlength="100"
                aria-describedby="rename-error"
                on:input=move |ev| value.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Escape" { renaming.set(None) } />
            <button class="button button-small" type="submit">"Save"</button>
            <button class="button button-small button-secondary" type="button" on:click=move |_| renaming.set(None)>"Cancel"</button>
            <p class="field-error" id="rename-error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get()}</p>
        </form>
    }
}
