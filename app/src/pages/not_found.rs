//! The page for a path the app does not know.

use leptos::prelude::*;
use leptos_meta::Title;

/// Any path the app does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(leptos::server_fn::http_export::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found · Quiver" />
        <h1>"Page not found"</h1>
        <p>"There is nothing at this address. " <a href="/tokens">"Go to the tokens"</a> "."</p>
    }
}
