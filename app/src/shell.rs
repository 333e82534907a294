//! The page around every screen: the HTML document, the navigation and the
//! routes.

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::{Lazy, LazyRoute, SsrMode, path};

use crate::auth::{Logout, get_current_user, logout};
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
                    <Route path=path!("") ssr=SsrMode::Async view={Lazy::<OverviewRoute>::new()} />
                    <Route path=path!("/login") ssr=SsrMode::Async view={Lazy::<LoginRoute>::new()} />
                    <Route path=path!("/tokens") ssr=SsrMode::Async view=|| view! { <Protected><TokensPage /></Protected> } />
                    <Route path=path!("/tokens/:id") ssr=SsrMode::Async view={Lazy::<TokenDetailRoute>::new()} />
                    <Route path=path!("/providers") ssr=SsrMode::Async view={Lazy::<ProvidersRoute>::new()} />
                    <Route path=path!("/providers/:id") ssr=SsrMode::Async view={Lazy::<ProviderEditRoute>::new()} />
                    <Route path=path!("/providers/new/template") ssr=SsrMode::Async view={Lazy::<ProviderTemplateRoute>::new()} />
                    <Route path=path!("/import-export") ssr=SsrMode::Async view={Lazy::<ImportExportRoute>::new()} />
                    <Route path=path!("/settings") ssr=SsrMode::Async view={Lazy::<SettingsRoute>::new()} />
                    <Route path=path!("/users") ssr=SsrMode::Async view={Lazy::<UsersRoute>::new()} />
                    <Route path=path!("/audit") ssr=SsrMode::Async view={Lazy::<AuditRoute>::new()} />
                    <Route path=path!("/jobs") ssr=SsrMode::Async view={Lazy::<JobsRoute>::new()} />
                    <Route path=path!("/notifications") ssr=SsrMode::Async view={Lazy::<NotificationsRoute>::new()} />
                </Routes>
            </main>
        </Router>
    }
}

// The pages whose code the browser loads only when one of them is visited.
// In the release build each group below is a WASM module of its own,
// fetched on the first navigation to one of its pages; code that groups
// share lands in shared modules. The tokens list, where people land, stays
// in the main module, so its first load carries no other page.

/// The login page, in the web app only after a session ended (the server
/// sends it to a browser without the app): its form and the sign-in
/// target's URL parsing need not be in every first load.
#[leptos::lazy]
fn login_page() -> AnyView {
    view! { <LoginPage /> }.into_any()
}

/// A token's own page: opened from the list more than any other.
#[leptos::lazy]
fn token_pages() -> AnyView {
    view! { <Protected><TokenDetailPage /></Protected> }.into_any()
}

#[derive(Clone, Copy)]
#[repr(u8)]
enum ProviderPage {
    List,
    Edit,
    Template,
}

/// The provider list and forms.
#[leptos::lazy]
fn provider_pages(page: ProviderPage) -> AnyView {
    match page {
        ProviderPage::List => view! { <Protected><ProvidersPage /></Protected> }.into_any(),
        ProviderPage::Edit => view! { <Protected><ProviderEditPage /></Protected> }.into_any(),
        ProviderPage::Template => {
            view! { <Protected admin=true><ProviderTemplatePage /></Protected> }.into_any()
        }
    }
}

#[derive(Clone, Copy)]
#[repr(u8)]
enum OtherPage {
    Overview,
    Settings,
    Notifications,
    ImportExport,
    Jobs,
    Users,
    Audit,
}

/// The overview, the person's own settings and notifications, and the
/// administration pages.
#[leptos::lazy]
fn other_pages(page: OtherPage) -> AnyView {
    match page {
        OtherPage::Overview => view! { <Protected><OverviewPage /></Protected> }.into_any(),
        OtherPage::Settings => view! { <Protected><SettingsPage /></Protected> }.into_any(),
        OtherPage::Notifications => {
            view! { <Protected><NotificationsPage /></Protected> }.into_any()
        }
        OtherPage::ImportExport => {
            view! { <Protected admin=true><ImportExportPage /></Protected> }.into_any()
        }
        OtherPage::Jobs => view! { <Protected admin=true><JobsPage /></Protected> }.into_any(),
        OtherPage::Users => view! { <Protected admin=true><UsersPage /></Protected> }.into_any(),
        OtherPage::Audit => view! { <Protected admin=true><AuditPage /></Protected> }.into_any(),
    }
}

/// A route to a page of one of the groups above.
macro_rules! lazy_route {
    ($route:ident, $view:expr) => {
        struct $route;

        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            async fn view(_this: Self) -> AnyView {
                $view.await
            }
        }
    };
}

lazy_route!(LoginRoute, login_page());
lazy_route!(TokenDetailRoute, token_pages());
lazy_route!(ProvidersRoute, provider_pages(ProviderPage::List));
lazy_route!(ProviderEditRoute, provider_pages(ProviderPage::Edit));
lazy_route!(
    ProviderTemplateRoute,
    provider_pages(ProviderPage::Template)
);
lazy_route!(OverviewRoute, other_pages(OtherPage::Overview));
lazy_route!(SettingsRoute, other_pages(OtherPage::Settings));
lazy_route!(NotificationsRoute, other_pages(OtherPage::Notifications));
lazy_route!(ImportExportRoute, other_pages(OtherPage::ImportExport));
lazy_route!(JobsRoute, other_pages(OtherPage::Jobs));
lazy_route!(UsersRoute, other_pages(OtherPage::Users));
lazy_route!(AuditRoute, other_pages(OtherPage::Audit));

/// The module a page loaded on demand needs.
#[cfg(any(feature = "hydrate", test))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageModule {
    Login,
    Token,
    Providers,
    Other,
}

/// The module the page at `path` needs, `None` for a page of the main
/// module (the tokens list, an unknown path). It follows
/// the routes in [`App`].
#[cfg(any(feature = "hydrate", test))]
fn page_module(path: &str) -> Option<PageModule> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let below = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| !rest.is_empty())
    };
    match path {
        "/" | "/settings" | "/notifications" | "/import-export" | "/jobs" | "/users" | "/audit" => {
            Some(PageModule::Other)
        }
        "/login" => Some(PageModule::Login),
        "/providers" => Some(PageModule::Providers),
        _ if below("/providers") => Some(PageModule::Providers),
        _ if below("/tokens") => Some(PageModule::Token),
        _ => None,
    }
}

/// Loads the module of the page at `path` when it is one of the pages
/// loaded on demand, so that the page the server rendered hydrates in one
/// pass, as the others do. Later navigations load modules as the router
/// needs them.
#[cfg(feature = "hydrate")]
pub async fn load_page_module(path: &str) {
    match page_module(path) {
        Some(PageModule::Login) => __preload_login_page().await,
        Some(PageModule::Token) => __preload_token_pages().await,
        Some(PageModule::Providers) => __preload_provider_pages().await,
        Some(PageModule::Other) => __preload_other_pages().await,
        None => {}
    }
}

/// The signed-in user and the sign-out button.
#[component]
fn UserMenu(email: String, role: String) -> impl IntoView {
    // A plain form that works before the app has loaded; once it has, the
    // app signs out without leaving the page first. (Leptos's `ActionForm`
    // would read the form back into the call's arguments with a query-string
    // parser that nothing else in the list's first load needs.)
    const LOGOUT_URL: &str = <Logout as leptos::server_fn::ServerFn>::PATH;
    let sign_out = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        leptos::task::spawn_local(async {
            if logout().await.is_ok() {
                let _ = window().location().set_href("/login");
            }
        });
    };
    view! {
        <div class="user-menu">
            <span data-testid="signed-in-as">{email}</span>
            <span class="badge">{role}</span>
            <form method="post" action=LOGOUT_URL on:submit=sign_out>
                <button class="button button-small" type="submit">"Sign out"</button>
            </form>
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

#[cfg(test)]
mod tests {
    use super::{PageModule, page_module};

    #[test]
    fn each_route_loaded_on_demand_names_the_module_its_page_is_in() {
        for (path, module) in [
            ("/", Some(PageModule::Other)),
            ("/settings", Some(PageModule::Other)),
            ("/notifications/", Some(PageModule::Other)),
            ("/import-export", Some(PageModule::Other)),
            ("/jobs", Some(PageModule::Other)),
            ("/users", Some(PageModule::Other)),
            ("/audit", Some(PageModule::Other)),
            ("/providers", Some(PageModule::Providers)),
            (
                "/providers/8f0c2a1e-1d2b-4c3d-9e4f-5a6b7c8d9e0f",
                Some(PageModule::Providers),
            ),
            ("/providers/new", Some(PageModule::Providers)),
            ("/providers/new/template", Some(PageModule::Providers)),
            (
                "/tokens/8f0c2a1e-1d2b-4c3d-9e4f-5a6b7c8d9e0f",
                Some(PageModule::Token),
            ),
            // The main module's pages and paths no route answers.
            ("/tokens", None),
            ("/tokens/", None),
            ("/login", Some(PageModule::Login)),
            ("/tokensx", None),
            ("/no-such-page", None),
        ] {
            assert_eq!(page_module(path), module, "{path}");
        }
    }
}
