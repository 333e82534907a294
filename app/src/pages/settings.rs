//! The settings screen: this instance's facts and checks, and the caller's
//! API keys.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{ErrorBox, HttpsWarning};
use crate::instance::{CheckDatabase, InstanceInfo, get_instance_info};

/// `/settings`: this instance's facts and checks.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| get_instance_info());
    view! {
        <Title text="Settings · Quiver" />
        <div class="page-head">
            <h1>"Settings"</h1>
        </div>
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading instance information…"</p> }>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(info) => view! { <InstanceDetails info /> }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Suspense>
        <super::ApiKeysCard />
        <DatabaseCheckCard />
    }
}

#[component]
fn InstanceDetails(info: InstanceInfo) -> impl IntoView {
    view! {
        <HttpsWarning https=info.https public_url=info.public_url.clone() />
        <section class="card" aria-labelledby="instance-heading">
            <h2 id="instance-heading">"Instance"</h2>
            <dl class="facts">
                <dt>"Version"</dt>
                <dd data-testid="version">{info.version}</dd>
                <dt>"Database"</dt>
                <dd data-testid="database-kind">{info.database_kind}</dd>
                <dt>"Public URL"</dt>
                <dd><code>{info.public_url}</code></dd>
                <dt>"OAuth redirect URI"</dt>
                <dd><code data-testid="redirect-uri">{info.redirect_uri}</code></dd>
                <dt>"HTTPS"</dt>
                <dd>{if info.https { "Yes" } else { "No" }}</dd>
            </dl>
        </section>
    }
}

#[component]
fn DatabaseCheckCard() -> impl IntoView {
    let check = ServerAction::<CheckDatabase>::new();
    let outcome = move || match check.value().get() {
        None => "Not checked yet.".to_owned(),
        Some(Ok(c)) if c.reachable => format!(
            "Database reachable: round trip {} ms, {} migrations applied.",
            c.latency_ms, c.migrations
        ),
        Some(Ok(_)) => "The database did not answer.".to_owned(),
        Some(Err(e)) => format!("Check failed: {e}"),
    };
    view! {
        <section class="card" aria-labelledby="db-heading">
            <h2 id="db-heading">"Database"</h2>
            <p>"Runs a query on the database from the server and reports how long it took."</p>
            <button
                class="button"
                data-testid="check-database"
                disabled=move || check.pending().get()
                on:click=move |_| {
                    check.dispatch(CheckDatabase {});
                }
            >
                {move || if check.pending().get() { "Checking…" } else { "Check database" }}
            </button>
            <p role="status" data-testid="database-check">{outcome}</p>
        </section>
    }
}
