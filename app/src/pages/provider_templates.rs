//! `/providers/new/template`: "Create provider from template": pick a
//! well-known provider from the catalogue, type its inputs (tenant, domain,
//! realm …) and the client, and the provider is made with the catalogue's
//! endpoints, scopes, parameters and quirks.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::components::{ErrorBox, FieldError, form_level};
use crate::error::AppError;
use crate::providers::{
    ProviderInput, ProviderTemplate, TemplateInputKind, create_provider, list_provider_templates,
};

/// The catalogue page.
#[component]
pub fn ProviderTemplatePage() -> impl IntoView {
    let templates = Resource::new(|| (), |_| list_provider_templates());
    view! {
        <Title text="Provider from template · Quiver" />
        <p class="breadcrumb"><a href="/providers">"← OAuth providers"</a></p>
        <div class="page-head"><h1>"Create provider from template"</h1></div>
        <Transition fallback=|| view! { <p class="loading" aria-busy="true">"Loading the catalogue…"</p> }>
            {move || Suspend::new(async move {
                match templates.await {
                    Ok(list) => view! { <TemplateForm templates=list /> }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn input_type(kind: TemplateInputKind) -> &'static str {
    match kind {
        TemplateInputKind::Url => "url",
        TemplateInputKind::Label | TemplateInputKind::Host | TemplateInputKind::Value => "text",
    }
}

#[component]
fn TemplateForm(templates: Vec<ProviderTemplate>) -> impl IntoView {
    let templates = StoredValue::new(templates);
    let chosen = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let client_id = RwSignal::new(String::new());
    let client_secret = RwSignal::new(String::new());
    let inputs = RwSignal::new(BTreeMap::<String, String>::new());
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let err = Signal::derive(move || error.get());
    let current = move || {
        let id = chosen.get();
        templates.with_value(|all| all.iter().find(|t| t.id == id).cloned())
    };
    let choose = move |id: String| {
        let template = templates.with_value(|all| all.iter().find(|t| t.id == id).cloned());
        chosen.set(id);
        error.set(None);
        if let Some(t) = template {
            name.set(t.name.clone());
            inputs.set(
                t.inputs
                    .iter()
                    .map(|i| (i.name.clone(), i.default.clone().unwrap_or_default()))
                    .collect(),
            );
        }
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let template = chosen.get_untracked();
        if template.is_empty() {
            error.set(Some(AppError::invalid("template", "choose a provider")));
            return;
        }
        let input = ProviderInput {
            template: Some(template),
            template_inputs: Some(
                inputs
                    .get_untracked()
                    .into_iter()
                    .filter(|(_, v)| !v.trim().is_empty())
                    .collect(),
            ),
            name: Some(name.get_untracked()),
            client_id: Some(client_id.get_untracked()),
            client_secret: Some(client_secret.get_untracked()).filter(|s| !s.is_empty()),
            ..Default::default()
        };
        busy.set(true);
        spawn_local(async move {
            let result = create_provider(input).await;
            busy.set(false);
            match result {
                Ok(p) => {
                    let _ = window()
                        .location()
                        .set_href(&format!("/providers/{}", p.id));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <form class="form form-wide card" on:submit=save novalidate data-testid="template-form">
            <div class="field">
                <label for="template-choice">"Provider"</label>
                <select id="template-choice" aria-describedby="template-choice-help template-choice-error"
                    data-testid="template-choice"
                    on:change=move |ev| choose(event_target_value(&ev))>
                    <option value="" selected=move || chosen.get().is_empty()>"Choose a provider…"</option>
                    {templates.with_value(|all| all.iter().map(|t| {
                        let id = t.id.clone();
                        let selected_id = id.clone();
                        view! { <option value=id selected=move || chosen.get() == selected_id>{t.name.clone()}</option> }
                    }).collect_view())}
                </select>
                <p class="help" id="template-choice-help">"Endpoints, scopes and the provider's habits come from Quiver's catalogue; you can change any of them afterwards."</p>
                <FieldError error=err field="template" id="template-choice-error".into() />
            </div>
            {move || current().map(|t| {
                let docs = t.documentation.clone();
                view! {
                    <div class="field" data-testid="template-about">
                        <p>{t.description.clone()}</p>
                        <p><a href=docs.clone() target="_blank" rel="noopener noreferrer">"Register a client at "{t.name.clone()}</a></p>
                        {t.notes.clone().map(|n| view! { <details><summary>"What to know"</summary><p class="help">{n}</p></details> })}
                    </div>
                    {t.inputs.iter().map(|i| {
                        let key = i.name.clone();
                        let value_key = key.clone();
                        let field_id = format!("template-input-{}", i.name);
                        let help_id = format!("{field_id}-help");
                        let error_id = format!("{field_id}-error");
                        let described = format!("{help_id} {error_id}");
                        let field = format!("template_inputs.{}", i.name);
                        view! {
                            <div class="field">
                                <label for=field_id.clone()>{i.label.clone()}</label>
                                <input id=field_id.clone() type=input_type(i.kind) autocomplete="off"
                                    aria-describedby=described placeholder=i.example.clone().unwrap_or_default()
                                    prop:value=move || inputs.with(|m| m.get(&value_key).cloned().unwrap_or_default())
                                    on:input=move |ev| {
                                        let v = event_target_value(&ev);
                                        inputs.update(|m| { m.insert(key.clone(), v); });
                                    } />
                                <p class="help" id=help_id>{i.help.clone()}</p>
                                <FieldError error=err field id=error_id />
                            </div>
                        }
                    }).collect_view()}
                }
            })}
            <FieldError error=err field="template_inputs" id="template-inputs-error".into() />
            <div class="field">
                <label for="template-name">"Name"</label>
                <input id="template-name" type="text" autocomplete="off" aria-describedby="template-name-error"
                    prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) />
                <FieldError error=err field="name" id="template-name-error".into() />
            </div>
            <div class="field">
                <label for="template-client-id">"Client id"</label>
                <input id="template-client-id" type="text" autocomplete="off" aria-describedby="template-client-id-error"
                    prop:value=client_id on:input=move |ev| client_id.set(event_target_value(&ev)) />
                <FieldError error=err field="client_id" id="template-client-id-error".into() />
            </div>
            <div class="field">
                <label for="template-client-secret">"Client secret"</label>
                <input id="template-client-secret" type="password" autocomplete="new-password"
                    aria-describedby="template-client-secret-help template-client-secret-error"
                    prop:value=client_secret on:input=move |ev| client_secret.set(event_target_value(&ev)) />
                <p class="help" id="template-client-secret-help">"Stored encrypted and never shown."</p>
                <FieldError error=err field="client_secret" id="template-client-secret-error".into() />
            </div>
            {move || error.get().and_then(|e| form_level(&e)).map(|m| view! {
                <div class="alert alert-error" role="alert" data-testid="template-form-error">{m}</div>
            })}
            <div class="modal-actions">
                <button type="submit" class="button" disabled=busy data-testid="create-from-template">"Create provider"</button>
            </div>
        </form>
    }
}
