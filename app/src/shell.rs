//! The page around every screen: the HTML document, the navigation and the
//! routes.

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::{SsrMode, path};

use crate::auth::{Logout, get_current_user};
use crate::components::{FailedCallNotice, Protected, Session};
use crate::pages::{
    AuditPage, ImportExportPage, JobsPage, LoginPage, NotFound, NotificationsPage, OverviewPage,
    ProviderEditPage, ProviderTemplatePage, ProvidersPage, SettingsPage, TokenDetailPage,
    TokensPage, UsersPage,
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The login page is a plain form that needs no web app: someone who is
    // not signed in downloads only the page. Every other page hydrates.
    let hydrate = !is_login_page();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                // `/pkg/<output name>.css`: the server names the bundle
                // after its content hash when the site has one.
                <HashedStylesheet options=options.clone() id="leptos" />
                {hydrate.then(|| view! { <HydrationScripts options /> })}
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Whether the page being rendered is the login page.
fn is_login_page() -> bool {
    #[cfg(feature = "ssr")]
    {
        use_context::<leptos::server_fn::http_export::request::Parts>()
            .is_some_and(|parts| parts.uri.path() == "/login")
    }
    #[cfg(not(feature = "ssr"))]
    {
        false
    }
}

/// The app: navigation and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let session = Session(Resource::new(|| (), |_| get_current_user()));
    provide_context(session);
    // Pages render completely before the first byte (`SsrMode::Async`), so a
    // page that needs a session can still answer with a real redirect.
    view! {
        <Title text="Quiver" />
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="topbar">
                <a class="brand" href="/tokens">"Quiver"</a>
                <Transition>
                    {move || Suspend::new(async move {
                        session.0.await.ok().flatten().map(|user| {
                            let admin = user.is_admin();
                            // On a phone the links fold behind a menu button;
                            // following one folds them again.
                            let open = RwSignal::new(false);
                            let location = use_location();
                            Effect::new(move |_| {
                                location.pathname.track();
                                open.set(false);
                            });
                            view! {
                                <nav aria-label="Main" class="main-nav">
                                    <button type="button" class="button button-secondary button-small nav-toggle"
                                        aria-controls="main-nav-links" aria-expanded=move || open.get().to_string()
                                        data-testid="nav-toggle"
                                        on:click=move |_| open.update(|o| *o = !*o)>"Menu"</button>
                                    <ul class="nav" id="main-nav-links" class:open=move || open.get()>
                                        <NavLink href="/" label="Overview" />
                                        <NavLink href="/tokens" label="Tokens" />
                                        <NavLink href="/providers" label="Providers" />
                                        <NavLink href="/notifications" label="Notifications" />
                                        <NavLink href="/settings" label="Settings" />
                                        {admin.then(|| view! {
                                            <NavLink href="/import-export" label="Import/Export" />
                                            <NavLink href="/jobs" label="Jobs" />
                                            <NavLink href="/users" label="Users" />
                                            <NavLink href="/audit" label="Audit" />
                                        })}
                                    </ul>
                                </nav>
                                <UserMenu email=user.email role=user.role />
                            }
                        })
                    })}
                </Transition>
            </header>
            <FailedCallNotice />
            <main id="main" class="content">
                <Routes fallback=NotFound>
                    <Route path=path!("") ssr=SsrMode::Async view=|| view! { <Protected><OverviewPage /></Protected> } />
                    <Route path=path!("/login") ssr=SsrMode::Async view=LoginPage />
                    <Route path=path!("/tokens") ssr=SsrMode::Async view=|| view! { <Protected><TokensPage /></Protected> } />
                    <Route path=path!("/tokens/:id") ssr=SsrMode::Async view=|| view! { <Protected><TokenDetailPage /></Protected> } />
                    <Route path=path!("/providers") ssr=SsrMode::Async view=|| view! { <Protected><ProvidersPage /></Protected> } />
                    <Route path=path!("/providers/:id") ssr=SsrMode::Async view=|| view! { <Protected><ProviderEditPage /></Protected> } />
                    <Route
                        path=path!("/providers/new/template") ssr=SsrMode::Async
                        view=|| view! { <Protected admin=true><ProviderTemplatePage /></Protected> }
                    />
                    <Route
                        path=path!("/import-export") ssr=SsrMode::Async
                        view=|| view! { <Protected admin=true><ImportExportPage /></Protected> }
                    />
                    <Route path=path!("/settings") ssr=SsrMode::Async view=|| view! { <Protected><SettingsPage /></Protected> } />
                    <Route path=path!("/users") ssr=SsrMode::Async view=|| view! { <Protected admin=true><UsersPage /></Protected> } />
                    <Route path=path!("/audit") ssr=SsrMode::Async view=|| view! { <Protected admin=true><AuditPage /></Protected> } />
                    <Route path=path!("/jobs") ssr=SsrMode::Async view=|| view! { <Protected admin=true><JobsPage /></Protected> } />
                    <Route path=path!("/notifications") ssr=SsrMode::Async view=|| view! { <Protected><NotificationsPage /></Protected> } />
                </Routes>
            </main>
        </Router>
    }
}

/// The signed-in user and the sign-out button.
#[component]
fn UserMenu(email: String, role: String) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = logout.value().get() {
            let _ = window().location().set_href("/login");
        }
    });
    view! {
        <div class="user-menu">
            <span data-testid="signed-in-as">{email}</span>
            <span class="badge">{role}</span>
            <ActionForm action=logout>
                <button class="button button-small" type="submit">"Sign out"</button>
            </ActionForm>
        </div>
    }
}

/// A main-navigation link, marked `aria-current="page"` on its own page and
/// below it. The router handles the click in the browser.
#[component]
fn NavLink(href: &'static str, label: &'static str) -> impl IntoView {
    let location = use_location();
    let is_current = move |path: &String| {
        (path == href || path.starts_with(&format!("{href}/"))).then_some("page")
    };
    let current = move || location.pathname.with(is_current);
    view! {
        <li>
            <a href=href aria-current=current>{label}</a>
        </li>
    }
}
