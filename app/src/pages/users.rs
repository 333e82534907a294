//! The users screen (admins): accounts, roles, disabling and sessions.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::accounts::{CreateUser, RevokeUserSessions, UpdateUser, UserView, list_users};
use crate::components::ErrorBox;

/// `/users` (admins): accounts, roles, disabling, sessions.
#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let update = ServerAction::<UpdateUser>::new();
    let revoke = ServerAction::<RevokeUserSessions>::new();
    let users = Resource::new(
        move || (create.version().get(), update.version().get()),
        |_| list_users(),
    );
    let feedback = move || {
        if let Some(Err(e)) = update.value().get() {
            return Some(format!("Could not change the account: {e}"));
        }
        match revoke.value().get() {
            Some(Ok(n)) => Some(format!("{n} sessions ended.")),
            Some(Err(e)) => Some(format!("Could not end the sessions: {e}")),
            None => None,
        }
    };
    view! {
        <Title text="Users · Quiver" />
        <div class="page-head"><h1>"Users"</h1></div>
        <section class="card" aria-labelledby="new-user-heading">
            <h2 id="new-user-heading">"New account"</h2>
            <ActionForm action=create attr:class="form form-inline">
                <label for="new-user-email">"Email"</label>
                <input id="new-user-email" name="email" type="email" required />
                <label for="new-user-role">"Role"</label>
                <select id="new-user-role" name="role">
                    <option value="user">"User"</option>
                    <option value="admin">"Admin"</option>
                </select>
                <label for="new-user-password">"Password (empty: generate one)"</label>
                <input id="new-user-password" name="password" type="password" autocomplete="new-password" />
                <button class="button" type="submit">"Create account"</button>
            </ActionForm>
            {move || create.value().get().map(|result| match result {
                Ok(created) => view! {
                    <p role="status" data-testid="user-created">
                        "Created " {created.user.email.clone()} "."
                        {created.generated_password.map(|p| view! {
                            " Password, shown once: " <code data-testid="generated-password">{p}</code>
                        })}
                    </p>
                }.into_any(),
                Err(e) => view! { <p class="field-error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </section>
        <p role="status">{feedback}</p>
        <Suspense fallback=|| view! { <p class="loading">"Loading accounts…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(list) => view! { <UserTable users=list update revoke /> }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn UserTable(
    users: Vec<UserView>,
    update: ServerAction<UpdateUser>,
    revoke: ServerAction<RevokeUserSessions>,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead>
                    <tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Status"</th><th scope="col">"Created"</th><th scope="col">"Actions"</th></tr>
                </thead>
                <tbody>
                    {users.into_iter().map(|u| {
                        let (id1, id2, id3) = (u.id.clone(), u.id.clone(), u.id.clone());
                        let other_role = if u.role == "admin" { "user" } else { "admin" };
                        let disabled = u.disabled;
                        view! {
                            <tr data-testid="user-row">
                                <td>{u.email.clone()}</td>
                                <td>{u.role.clone()}</td>
                                <td>{if disabled { "Disabled" } else { "Active" }}</td>
                                <td>{u.created_at.clone()}</td>
                                <td class="actions">
                                    <button class="button button-small" on:click=move |_| {
                                        update.dispatch(UpdateUser { id: id1.clone(), role: Some(other_role.into()), disabled: None });
                                    }>{format!("Make {other_role}")}</button>
                                    <button class="button button-small" on:click=move |_| {
                                        update.dispatch(UpdateUser { id: id2.clone(), role: None, disabled: Some(!disabled) });
                                    }>{if disabled { "Enable" } else { "Disable" }}</button>
                                    <button class="button button-small" on:click=move |_| {
                                        revoke.dispatch(RevokeUserSessions { id: id3.clone() });
                                    }>"End sessions"</button>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
