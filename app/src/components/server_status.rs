//! The notice shown when a call to the server failed before the server could
//! answer it: the network was down, a proxy answered with its own error page,
//! or the page was built for another version of the server. Whatever button
//! was clicked, the person learns that nothing happened and what to do.

use leptos::prelude::*;
use leptos::server_fn::error::ServerFnErrorErr;

thread_local! {
    // Per browser tab; the server never writes it (see `note_failed_call`).
    static FAILED_CALL: ArcRwSignal<Option<String>> = ArcRwSignal::new(None);
}

/// What a person reads about a call that did not get a usable answer.
pub fn failed_call_message(error: &ServerFnErrorErr) -> String {
    match error {
        ServerFnErrorErr::Request(_) => {
            "Quiver's server could not be reached; check the connection and try again.".to_owned()
        }
        ServerFnErrorErr::Deserialization(_) | ServerFnErrorErr::Response(_) => {
            "Quiver's server did not answer as this page expects (it may have been updated or \
             restarted); reload the page and try again."
                .to_owned()
        }
        other => other.to_string(),
    }
}

/// Records a call that failed in the browser, for [`FailedCallNotice`].
/// On the server this does nothing: one process serves everybody there, and
/// its failures are answers with a status, not lost calls.
pub fn note_failed_call(error: &ServerFnErrorErr) {
    #[cfg(feature = "hydrate")]
    FAILED_CALL.with(|notice| notice.set(Some(failed_call_message(error))));
    #[cfg(not(feature = "hydrate"))]
    let _ = error;
}

/// The notice at the top of every page, shown once a call failed.
#[component]
pub fn FailedCallNotice() -> impl IntoView {
    let notice = FAILED_CALL.with(Clone::clone);
    let dismiss = notice.clone();
    view! {
        <div class="failed-call" aria-live="assertive">
            {move || notice.get().map(|message| {
                let dismiss = dismiss.clone();
                view! {
                    <div class="alert alert-error" role="alert" data-testid="failed-call">
                        <span>{message}</span>
                        " "
                        <button class="button button-small" type="button"
                            on:click=move |_| dismiss.set(None)>"Dismiss"</button>
                    </div>
                }
            })}
        </div>
    }
}
