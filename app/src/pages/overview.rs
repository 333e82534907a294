//! `/`: the overview. How many tokens are in each state, the ones that
//! need a person (why, and what to do), and how renewals went over the
//! last day and month, in charts the server draws.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::ErrorBox;
use crate::components::format::when;
use crate::overview::{AttentionItem, AttentionReason, OverviewScreen, get_overview};

/// The statuses shown, in order, with their labels.
const STATUSES: &[(&str, &str)] = &[
    ("active", "Active"),
    ("expiring_soon", "Expiring soon"),
    ("expired", "Expired"),
    ("failed", "Failed"),
    ("pending_authorization", "Waiting for authorization"),
    ("needs_credentials", "Needs credentials"),
];

fn reason_class(reason: AttentionReason) -> &'static str {
    match reason {
        AttentionReason::Failed => "badge status-failed",
        AttentionReason::Unused => "badge",
        _ => "badge status-expiring_soon",
    }
}

#[component]
pub fn OverviewPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_overview());
    view! {
        <Title text="Overview · Quiver" />
        <div class="page-head">
            <h1>"Overview"</h1>
            <a class="button button-secondary" href="/tokens">"All tokens"</a>
        </div>
        <Transition fallback=|| view! { <p class="loading" aria-busy="true">"Loading the overview…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(screen) => view! { <OverviewView screen /> }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OverviewView(screen: OverviewScreen) -> impl IntoView {
    let o = screen.overview;
    let counts = o.counts.clone();
    let attention_total: u64 = o.attention_counts.values().sum();
    view! {
        <section aria-labelledby="counts-heading">
            <h2 id="counts-heading" class="visually-hidden">"Tokens by status"</h2>
            <ul class="stat-grid" data-testid="status-counts">
                <li class="stat">
                    <a href="/tokens"><span class="stat-value" data-testid="count-total">{o.total}</span>
                    <span class="stat-label">"Tokens"</span></a>
                </li>
                {STATUSES.iter().map(|(status, label)| {
                    let n = counts.get(*status).copied().unwrap_or(0);
                    view! {
                        <li class="stat" data-status=*status>
                            <a href=format!("/tokens?status={status}")>
                                <span class="stat-value" data-testid=format!("count-{status}")>{n}</span>
                                <span class="stat-label">{*label}</span>
                            </a>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
        <section class="card" aria-labelledby="attention-heading">
            <h2 id="attention-heading">"Needs attention"</h2>
            {if o.attention.is_empty() {
                view! { <p class="muted" data-testid="attention-none">"Nothing needs attention: every token renews on its own."</p> }.into_any()
            } else {
                let shown = o.attention.len() as u64;
                view! {
                    <p class="muted" data-testid="attention-summary">
                        {o.attention_counts.iter().filter(|(_, n)| **n > 0).map(|(reason, n)| {
                            let label = reason.parse::<AttentionReason>().map(|r| r.label()).unwrap_or("Other");
                            format!("{label}: {n}")
                        }).collect::<Vec<_>>().join(" · ")}
                        {(attention_total > shown).then(|| format!(" — the first {shown} are listed."))}
                    </p>
                    <ul class="attention-list" data-testid="attention">
                        {o.attention.into_iter().map(|item| view! { <AttentionRow item /> }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="renewals-heading">
            <h2 id="renewals-heading">"Renewals"</h2>
            <h3>"Last 24 hours, per hour"</h3>
            // Drawn by the server: numbers and labels only, escaped there.
            <figure class="chart-figure" data-testid="renewals-hourly" inner_html=screen.hourly_chart></figure>
            <h3>"Last 30 days, per day"</h3>
            <figure class="chart-figure" data-testid="renewals-daily" inner_html=screen.daily_chart></figure>
            <p class="help"><span class="legend legend-renewals"></span>" renewals "
                <span class="legend legend-failed"></span>" failed renewals"</p>
        </section>
    }
}

#[component]
fn AttentionRow(item: AttentionItem) -> impl IntoView {
    view! {
        <li class="attention-item" data-testid="attention-item" data-reason=item.reason.as_str()>
            <div class="attention-head">
                <a href=format!("/tokens/{}", item.token_id) class="token-name">{item.token_name}</a>
                <span class=reason_class(item.reason)>{item.reason.label()}</span>
                <span class="muted">{item.provider_name}</span>
            </div>
            <p>{item.why}{item.due_at.as_deref().map(|d| format!(" ({})", when(d)))}</p>
            <p class="muted"><strong>"What to do: "</strong>{item.what_to_do}</p>
        </li>
    }
}
