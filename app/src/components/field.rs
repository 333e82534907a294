//! Form errors as the server reports them: beside the field they name, or
//! for the whole form.

use leptos::prelude::*;

use crate::error::AppError;

/// The server's validation message for one form field, shown beside it
/// (the server is the one source of truth for what is valid).
#[component]
pub fn FieldError(
    /// The last error of the form.
    error: Signal<Option<AppError>>,
    /// The field's name as the server reports it.
    #[prop(into)]
    field: Oco<'static, str>,
    /// The id the input's `aria-describedby` points at.
    id: String,
) -> impl IntoView {
    let field = StoredValue::new(field);
    let message = move || {
        error.with(|e| {
            e.as_ref()
                .and_then(|e| field.with_value(|f| e.message_for(f)))
        })
    };
    view! {
        <p class="field-error" id=id role="alert" hidden=move || message().is_none()>
            {message}
        </p>
    }
}

/// The error of a form that no single field explains, or `None`.
pub fn form_level(error: &AppError) -> Option<String> {
    match error.field() {
        Some(_) => None,
        None => Some(error.to_string()),
    }
}
