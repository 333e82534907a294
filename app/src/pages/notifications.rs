//! The notifications screen: token failures, re-authorization needed,
//! recoveries and job failures, with their webhook delivery.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::ErrorBox;
use crate::components::format::when;
use crate::jobs::list_notifications;

const PAGE: u64 = 50;

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "token.failed" => "Token failed",
        "token.reauthorization_needed" => "Re-authorization needed",
        "token.recovered" => "Token recovered",
        "job.failed" => "Job failed",
        "provider.certificate_expiring" => "Certificate expiring",
        "token.reauthorization_due" => "Re-authorization due",
        "token.refresh_token_dropped" => "Refresh token dropped",
        "token.scope_narrowed" => "Scope narrowed",
        "token.expires_in_missing" => "No expiry given",
        "token.test_failed" => "Connection test failed",
        "provider.secret_expiring" => "Client secret expiring",
        "token.unused" => "Unused",
        _ => "Event",
    }
}

fn kind_class(kind: &str) -> &'static str {
    match kind {
        "token.recovered" => "badge status-active",
        "token.reauthorization_needed"
        | "token.reauthorization_due"
        | "token.scope_narrowed"
        | "token.expires_in_missing" => "badge status-expiring_soon",
        _ => "badge status-failed",
    }
}

/// `/notifications`: token failures, re-authorization needed, recoveries
/// and job failures, newest first (users see their own tokens' events).
#[component]
pub fn NotificationsPage() -> impl IntoView {
    let offset = RwSignal::new(0u64);
    let page = Resource::new(move || offset.get(), list_notifications);
    view! {
        <Title text="Notifications · Quiver" />
        <div class="page-head"><h1>"Notifications"</h1></div>
        <Suspense fallback=|| view! { <p class="loading">"Loading notifications…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) if page.total == 0 => view! {
                        <p class="empty" data-testid="notifications-empty">"Nothing to report: no token has failed or needs re-authorization."</p>
                    }.into_any(),
                    Ok(page) => {
                        let start = offset.get_untracked();
                        let shown = page.items.len() as u64;
                        let total = page.total;
                        view! {
                            <ul class="notifications" data-testid="notifications">
                                {page.items.into_iter().map(|n| {
                                    let link = match (&n.token_id, &n.job_id) {
                                        (Some(t), _) => Some((format!("/tokens/{t}"), "Open the token")),
                                        (None, Some(_)) => Some(("/jobs".to_owned(), "Open the jobs")),
                                        _ => None,
                                    };
                                    view! {
                                        <li class="card notification" data-testid="notification">
                                            <span class=kind_class(&n.kind)>{kind_label(&n.kind)}</span>
                                            " "<strong>{n.message}</strong>
                                            <p class="help">{when(&n.created_at)}
                                                {(n.webhook_status != "none").then(|| format!(" · webhook: {}", n.webhook_status))}
                                                {link.map(|(href, label)| view! { " · "<a href=href>{label}</a> })}
                                            </p>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
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
