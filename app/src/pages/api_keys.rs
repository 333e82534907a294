//! The caller's API keys: create one (its secret shown once), list, revoke.

use leptos::prelude::*;

use crate::accounts::{CreateApiKey, RevokeApiKey, list_api_keys};
use crate::components::ErrorBox;

/// The caller's API keys: create (shown once), list, revoke.
#[component]
pub fn ApiKeysCard() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_api_keys(),
    );
    view! {
        <section class="card" aria-labelledby="keys-heading">
            <h2 id="keys-heading">"API keys"</h2>
            <p>"Programs send a key as " <code>"Authorization: Bearer <key>"</code> "; it acts with your role."</p>
            <ActionForm action=create attr:class="form form-inline">
                <label for="key-name">"Name"</label>
                <input id="key-name" name="name" required maxlength="100" />
                <button class="button" type="submit">"Create key"</button>
            </ActionForm>
            {move || create.value().get().map(|result| match result {
                Ok(created) => view! {
                    <p role="status">"New key, shown once: " <code data-testid="new-api-key">{created.key}</code></p>
                }.into_any(),
                Err(e) => view! { <p class="field-error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            <Suspense fallback=|| view! { <p class="loading">"Loading keys…"</p> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Ok(list) if list.is_empty() => view! { <p>"No API keys yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap"><table class="table">
                                <thead><tr><th scope="col">"Name"</th><th scope="col">"Prefix"</th><th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col">"Access tokens, 24 h"</th><th scope="col">"Status"</th><th scope="col"></th></tr></thead>
                                <tbody>
                                {list.into_iter().map(|k| {
                                    let id = k.id.clone();
                                    let revoked = k.revoked_at.is_some();
                                    view! {
                                        <tr data-testid="api-key-row">
                                            <td>{k.name}</td>
                                            <td><code>{k.prefix}"…"</code></td>
                                            <td>{k.created_at}</td>
                                            <td>{k.last_used_at.unwrap_or_else(|| "never".into())}</td>
                                            <td data-testid="api-key-uses">{k.access_tokens_24h}</td>
                                            <td>{if revoked { "Revoked" } else { "Active" }}</td>
                                            <td>{(!revoked).then(|| view! {
                                                <button class="button button-small" on:click=move |_| {
                                                    revoke.dispatch(RevokeApiKey { id: id.clone() });
                                                }>"Revoke"</button>
                                            })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                        Err(error) => view! { <ErrorBox error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
