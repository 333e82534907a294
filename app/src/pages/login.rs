//! The sign-in screen.

use leptos::prelude::*;
use leptos_meta::Title;

use leptos_router::hooks::use_location;

use crate::auth::{Login, LoginRefusal, get_login_page_info};
use crate::redirect::{after_sign_in, next_param};

/// `/login`. It works as a plain HTML form, and the server sends it without
/// the web app (see the shell): someone who is not signed in downloads
/// only this page. The form posts `next` along, and the server sends the
/// browser on; in the web app (after a session ended) the action does.
#[component]
pub fn LoginPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| get_login_page_info());
    let login = ServerAction::<Login>::new();
    let location = use_location();
    // The query as the browser reads it, decoded once.
    let next_value = move || {
        location
            .search
            .with(|query| next_param(&format!("http://quiver.invalid/?{query}")))
            .unwrap_or_default()
    };
    // A refusal the server sent back in the address after a plain post.
    let refused = move || {
        location
            .search
            .with(|query| LoginRefusal::from_query(query))
    };
    // Only somewhere on this page's own origin, never another site.
    let next = move || {
        let location = window().location();
        let href = location.href().unwrap_or_default();
        let origin = location.origin().unwrap_or_default();
        after_sign_in(next_param(&href).as_deref(), &origin)
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = login.value().get() {
            // A full load, so every part of the page sees the new session.
            let _ = window().location().set_href(&next());
        }
    });
    let error = move || match login.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        Some(Ok(_)) => None,
        None => refused().map(LoginRefusal::message),
    };
    view! {
        <Title text="Sign in · Quiver" />
        <div class="login">
            <h1>"Sign in to Quiver"</h1>
            <Suspense>
                {move || Suspend::new(async move {
                    info.await.ok().filter(|i| i.no_users_yet).map(|_| view! {
                        <div class="alert alert-warning" role="status" data-testid="first-admin-hint">
                            <strong>"No account exists yet. "</strong>
                            "Create the first admin on the server with "
                            <code>"quiver user create --email you@example.com --admin"</code>
                            ", then sign in here."
                        </div>
                    })
                })}
            </Suspense>
            <ActionForm action=login attr:class="card form" attr:aria-label="Sign in">
                <input type="hidden" name="next" value=next_value />
                <label for="login-email">"Email"</label>
                <input id="login-email" name="email" type="email" autocomplete="username" required />
                <label for="login-password">"Password"</label>
                <input
                    id="login-password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    required
                />
                {move || error().map(|message| view! {
                    <p class="field-error" role="alert" data-testid="login-error">{message}</p>
                })}
                <button class="button" type="submit" disabled=move || login.pending().get()>
                    {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
        </div>
    }
}
