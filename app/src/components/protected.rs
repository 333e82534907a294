//! Who may see a page: the signed-in user shared by every component, and
//! the guard that sends anyone else to sign in and back.

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_location;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::auth::CurrentUser;
use crate::components::ErrorBox;
use crate::error::AppError;

/// What a query value must not hold as is: separators, `%`, `+` (a space
/// in forms), and anything outside printable ASCII. `/` stays readable.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`');

/// `text` percent-encoded for the value of a query parameter.
fn query_value(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

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
