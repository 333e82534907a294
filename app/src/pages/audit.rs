//! The audit log screen (admins): who did what, when and from where, with
//! filters and paging.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::accounts::{AuditQuery, get_audit_page};
use crate::components::ErrorBox;

const PAGE: u64 = 50;

/// `/audit` (admins): the audit log with filters and paging.
#[component]
pub fn AuditPage() -> impl IntoView {
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let object = RwSignal::new(String::new());
    let since = RwSignal::new(String::new());
    let until = RwSignal::new(String::new());
    let offset = RwSignal::new(0u64);
    let applied = RwSignal::new(AuditQuery::default());
    let page = Resource::new(
        move || (applied.get(), offset.get()),
        |(query, offset)| {
            get_audit_page(AuditQuery {
                offset: Some(offset),
                limit: Some(PAGE),
                ..query
            })
        },
    );
    let opt = |s: RwSignal<String>| {
        let v = s.get_untracked().trim().to_owned();
        (!v.is_empty()).then_some(v)
    };
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        offset.set(0);
        applied.set(AuditQuery {
            actor: opt(actor),
            action: opt(action),
            object_id: opt(object),
            since: opt(since),
            until: opt(until),
            ..AuditQuery::default()
        });
    };
    view! {
        <Title text="Audit log · Quiver" />
        <div class="page-head"><h1>"Audit log"</h1></div>
        <form class="card form form-inline" on:submit=apply aria-label="Filter the audit log">
            <label for="audit-actor">"Actor"</label>
            <input id="audit-actor" bind:value=actor placeholder="email, key name or id" />
            <label for="audit-action">"Action"</label>
            <input id="audit-action" bind:value=action placeholder="e.g. login" />
            <label for="audit-object">"Object id"</label>
            <input id="audit-object" bind:value=object />
            <label for="audit-since">"Since (RFC 3339)"</label>
            <input id="audit-since" bind:value=since placeholder="2026-01-31T00:00:00Z" />
            <label for="audit-until">"Until (RFC 3339)"</label>
            <input id="audit-until" bind:value=until />
            <button class="button" type="submit">"Filter"</button>
        </form>
        <Suspense fallback=|| view! { <p class="loading">"Loading the audit log…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) => {
                        let total = page.total;
                        let start = offset.get_untracked();
                        let shown = page.items.len() as u64;
                        view! {
                            <p data-testid="audit-total">{format!("{total} entries; showing {}–{}", if shown == 0 { 0 } else { start + 1 }, start + shown)}</p>
                            <div class="table-wrap">
                                <table class="table">
                                    <thead><tr>
                                        <th scope="col">"Time"</th><th scope="col">"Actor"</th><th scope="col">"Action"</th>
                                        <th scope="col">"Object"</th><th scope="col">"Outcome"</th><th scope="col">"Address"</th><th scope="col">"Detail"</th>
                                    </tr></thead>
                                    <tbody>
                                        {page.items.into_iter().map(|e| view! {
                                            <tr data-testid="audit-row">
                                                <td>{e.at}</td>
                                                <td>{e.actor}</td>
                                                <td>{e.action}</td>
                                                <td>{format!("{} {}", e.object_kind, e.object_id.unwrap_or_default())}</td>
                                                <td>{e.outcome}</td>
                                                <td>{e.client_addr.unwrap_or_default()}</td>
                                                <td>{e.detail.unwrap_or_default()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <div class="pager">
                                <button class="button button-small" disabled={start == 0}
                                    on:click=move |_| offset.update(|o| *o = o.saturating_sub(PAGE))>"Newer"</button>
                                <button class="button button-small" disabled={start + shown >= total}
                                    on:click=move |_| offset.update(|o| *o += PAGE)>"Older"</button>
                            </div>
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
