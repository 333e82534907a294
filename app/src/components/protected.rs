//! Who may see a page: the signed-in user shared by every component, and
//! the guard that sends anyone else to sign in and back.

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_location;

use crate::auth::CurrentUser;
use crate::components::ErrorBox;
use crate::error::AppError;
use crate::redirect::query_value;

/// The signed-in user, loaded once per page load and shared by every
/// component (`None` when nobody is signed in).
#[derive(Clone, Copy)]
pub struct Session(pub Resource<Result<Option<CurrentUser>, AppError>>);

/// Shows its children to a signed-in user (an admin when `admin` is set);
/// sends anyone else to the login page, which brings them back here (path
/// and query).
/// The server enforces the same rules on every call; this only spares
/// people a page they cannot use.
#[component]
pub fn Protected(
    /// Only admins may see the children.
    #[prop(optional)]
    admin: bool,
    children: ChildrenFn,
) -> impl IntoView {
    let session = expect_context::<Session>();
    let location = use_location();
    view! {
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading…"</p> }>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    match session.0.await {
                        Ok(Some(user)) if !admin || user.is_admin() => children().into_any(),
                        Ok(Some(_)) => view! {
                            <h1>"Not allowed"</h1>
                            <p>"This page is for admins. "<a href="/tokens">"Go to your tokens"</a>"."</p>
                        }
                        .into_any(),
                        Ok(None) => {
                            let mut here = location.pathname.get_untracked();
                            let search = location.search.get_untracked();
                            if !search.is_empty() {
                                here = format!("{here}?{search}");
                            }
                            view! { <Redirect path=format!("/login?next={}", query_value(&here)) /> }
                                .into_any()
                        }
                        Err(error) => view! { <ErrorBox error /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
