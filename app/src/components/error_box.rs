//! An error in place of content that could not be loaded.

use leptos::prelude::*;

use crate::error::AppError;

/// An error shown in place of content that could not be loaded.
#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    view! {
        <div class="alert alert-error" role="alert">
            <strong>"Could not load this: "</strong>
            {error.to_string()}
        </div>
    }
}
