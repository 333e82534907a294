use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::EmptyState;

/// `/import-export`: moving providers and tokens between instances.
#[component]
pub fn ImportExportPage() -> impl IntoView {
    view! {
        <Title text="Import/Export · Quiver" />
        <div class="page-head">
            <h1>"Import and export"</h1>
        </div>
        <EmptyState title="Nothing to export yet">
            <p>
                "Providers and tokens are exported from one Quiver instance as a bundle and \
                 imported into another. Once this instance holds providers, they can be \
                 exported here."
            </p>
        </EmptyState>
    }
}
