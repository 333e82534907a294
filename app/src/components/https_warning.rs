//! The warning shown while the instance is not reachable over HTTPS.

use leptos::prelude::*;

/// Warns that OAuth tokens may not work when the instance is not reachable
/// over HTTPS (providers refuse plain-HTTP redirect URIs). Renders nothing
/// when it is.
#[component]
pub fn HttpsWarning(
    /// Whether the public URL is https.
    https: bool,
    /// The public URL, shown in the message.
    public_url: String,
) -> impl IntoView {
    (!https).then(|| {
        view! {
            <div class="alert alert-warning" role="alert" data-testid="https-warning">
                <strong>"This instance is not reachable over HTTPS. "</strong>
                "Its public URL is " <code>{public_url}</code>
                ". Tokens may not work correctly: most OAuth providers accept only https \
                 redirect URIs. Serve Quiver over HTTPS and set QUIVER_PUBLIC_URL to that address."
            </div>
        }
    })
}
