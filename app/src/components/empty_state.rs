//! The empty state of a list: what the page will show, and the first step
//! to take.

use leptos::prelude::*;

/// What a page shows when it has nothing yet, and what to do about it.
#[component]
pub fn EmptyState(
    /// One line: what is missing.
    title: &'static str,
    /// What the person can do next.
    children: Children,
) -> impl IntoView {
    view! {
        <div class="empty-state">
            <h2>{title}</h2>
            {children()}
        </div>
    }
}
