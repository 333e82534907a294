//! The Import/Export screen: export to a bundle file, and import one
//! (preview first, then apply with progress).

use std::cell::RefCell;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::components::browser::{chosen_file_snapshot, download, random_id, upload_form};
use crate::components::{EmptyState, FieldError, Notices, form_level};
use crate::error::AppError;
use crate::providers::list_providers;
use crate::transfer::{
    ExportInput, ImportItem, ImportProgressView, ImportReportView, export_bundle, import_bundle,
    import_form, import_progress,
};

/// `/import-export` (admins): export providers and tokens to a bundle
/// file, and import a bundle (preview first, then apply with progress).
#[component]
pub fn ImportExportPage() -> impl IntoView {
    let notices = Notices::new();
    view! {
        <Title text="Import/Export · Quiver" />
        <div class="page-head"><h1>"Import and export"</h1></div>
        {notices.view()}
        <ExportSection notices />
        <ImportSection notices />
    }
}

#[component]
fn ExportSection(notices: Notices) -> impl IntoView {
    let providers = Resource::new(|| (), |_| list_providers());
    let everything = RwSignal::new(true);
    let chosen = RwSignal::new(Vec::<String>::new());
    let include_secrets = RwSignal::new(false);
    let passphrase = RwSignal::new(String::new());
    let repeat = RwSignal::new(String::new());
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let secrets = include_secrets.get_untracked();
        if secrets && passphrase.get_untracked() != repeat.get_untracked() {
            error.set(Some(AppError::invalid(
                "passphrase_repeat",
                "the two passphrases differ",
            )));
            return;
        }
        let provider_ids = if everything.get_untracked() {
            Vec::new()
        } else {
            let ids = chosen.get_untracked();
            if ids.is_empty() {
                error.set(Some(AppError::invalid(
                    "provider_ids",
                    "choose at least one provider, or export everything",
                )));
                return;
            }
            ids
        };
        let input = ExportInput {
            provider_ids,
            include_secrets: secrets,
            passphrase: secrets.then(|| passphrase.get_untracked()),
        };
        busy.set(true);
        spawn_local(async move {
            match export_bundle(input).await {
                Ok(file) => {
                    error.set(None);
                    match download(&file.file_name, &file.content) {
                        Ok(()) => notices.ok(format!(
                            "Exported {} providers and {} tokens to {}{}.",
                            file.providers,
                            file.tokens,
                            file.file_name,
                            if file.secrets {
                                ", secrets sealed under your passphrase"
                            } else {
                                ", without secrets"
                            }
                        )),
                        Err(e) => notices.error(format!("Could not save the export: {e}")),
                    }
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let err = Signal::derive(move || error.get());
    view! {
        <section class="card" aria-labelledby="export-heading">
            <h2 id="export-heading">"Export"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading providers…"</p> }>
                {move || Suspend::new(async move {
                    match providers.await {
                        Ok(list) if list.is_empty() => view! {
                            <EmptyState title="Nothing to export yet">
                                <p>"Providers and tokens are exported from one Quiver instance as a bundle and imported into another. Once this instance holds providers, they can be exported here; a bundle from another instance can be imported below."</p>
                            </EmptyState>
                        }.into_any(),
                        Ok(list) => view! {
                            <form class="form form-wide" on:submit=submit novalidate data-testid="export-form">
                                <p class="help">"Writes the chosen providers with their tokens to one JSON file (format quiver-export, version 1). Secrets stay out unless you ask for them; then they are sealed under a passphrase you choose, never written in clear."</p>
                                <fieldset>
                                    <legend>"What"</legend>
                                    <div class="field-radio">
                                        <input type="radio" id="export-all" name="export-what" prop:checked=move || everything.get()
                                            on:change=move |_| everything.set(true) />
                                        <label for="export-all">"Every provider and token"</label>
                                    </div>
                                    <div class="field-radio">
                                        <input type="radio" id="export-some" name="export-what" prop:checked=move || !everything.get()
                                            on:change=move |_| everything.set(false) />
                                        <label for="export-some">"Chosen providers, with their tokens"</label>
                                    </div>
                                    <ul class="check-list" hidden=move || everything.get() aria-describedby="export-providers-error">
                                        {list.into_iter().map(|p| {
                                            let id = p.id.clone();
                                            let input_id = format!("export-provider-{}", p.id);
                                            let toggle = {
                                                let id = id.clone();
                                                move |ev: leptos::ev::Event| {
                                                    let on = event_target_checked(&ev);
                                                    chosen.update(|c| {
                                                        c.retain(|x| x != &id);
                                                        if on { c.push(id.clone()); }
                                                    });
                                                }
                                            };
                                            view! {
                                                <li class="field-check">
                                                    <input type="checkbox" id=input_id.clone() on:change=toggle />
                                                    <label for=input_id>{p.name}</label>
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                    <FieldError error=err field="provider_ids" id="export-providers-error".into() />
                                </fieldset>
                                <div class="field-check">
                                    <input type="checkbox" id="export-secrets" prop:checked=include_secrets
                                        on:change=move |ev| include_secrets.set(event_target_checked(&ev)) />
                                    <label for="export-secrets">"Include secrets (client secrets, keys, access and refresh tokens)"</label>
                                </div>
                                <div class="field" hidden=move || !include_secrets.get()>
                                    <label for="export-passphrase">"Passphrase"</label>
                                    <input id="export-passphrase" type="password" autocomplete="new-password" prop:value=passphrase
                                        aria-describedby="export-passphrase-help export-passphrase-error"
                                        on:input=move |ev| passphrase.set(event_target_value(&ev)) />
                                    <p class="help" id="export-passphrase-help">"At least 12 characters. The importing admin needs it; Quiver does not keep it."</p>
                                    <FieldError error=err field="passphrase" id="export-passphrase-error".into() />
                                    <label for="export-passphrase-repeat">"Passphrase again"</label>
                                    <input id="export-passphrase-repeat" type="password" autocomplete="new-password" prop:value=repeat
                                        aria-describedby="export-repeat-error"
                                        on:input=move |ev| repeat.set(event_target_value(&ev)) />
                                    <FieldError error=err field="passphrase_repeat" id="export-repeat-error".into() />
                                </div>
                                {move || error.get().and_then(|e| form_level(&e)).map(|m| view! { <div class="alert alert-error" role="alert">{m}</div> })}
                                <div class="modal-actions">
                                    <button type="submit" class="button" disabled=busy data-testid="export-button">
                                        {move || if busy.get() { "Exporting…" } else { "Export" }}
                                    </button>
                                </div>
                            </form>
                        }.into_any(),
                        Err(error) => view! { <crate::components::ErrorBox error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// What the import form is doing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Idle,
    Previewing,
    Applying,
}

/// The import upload: the options, then the bundle file, which the
/// browser sends from its own copy as it is (never read into the page or
/// re-encoded as a JSON string).
fn import_upload(
    file: &(String, web_sys::Blob),
    passphrase: &str,
    on_conflict: &str,
    apply: Option<&str>,
) -> Result<leptos::server_fn::codec::MultipartData, AppError> {
    let mut fields = vec![(import_form::ON_CONFLICT, on_conflict)];
    if !passphrase.is_empty() {
        fields.push((import_form::PASSPHRASE, passphrase));
    }
    if let Some(import_id) = apply {
        fields.push((import_form::APPLY, "true"));
        fields.push((import_form::IMPORT_ID, import_id));
    }
    upload_form(&fields, import_form::BUNDLE, file)
        .map(Into::into)
        .map_err(|e| AppError::invalid(import_form::BUNDLE, e))
}

thread_local! {
    /// The file read at preview, applied as previewed: the browser's copy.
    /// A `Blob` belongs to the browser's one thread, so it is kept here
    /// rather than in the page's reactive state, which the server also
    /// builds (and drops on any of its threads); only the browser sets it.
    static PREVIEWED: RefCell<Option<(String, web_sys::Blob)>> = const { RefCell::new(None) };
}

fn set_previewed(file: Option<(String, web_sys::Blob)>) {
    PREVIEWED.with(|previewed| *previewed.borrow_mut() = file);
}

fn previewed() -> Option<(String, web_sys::Blob)> {
    PREVIEWED.with(|previewed| previewed.borrow().clone())
}

#[component]
fn ImportSection(notices: Notices) -> impl IntoView {
    let passphrase = RwSignal::new(String::new());
    let on_conflict = RwSignal::new("skip".to_owned());
    let error = RwSignal::new(None::<AppError>);
    let stage = RwSignal::new(Stage::Idle);
    let report = RwSignal::new(None::<ImportReportView>);
    let progress = RwSignal::new(None::<ImportProgressView>);
    on_cleanup(|| set_previewed(None));
    let preview = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        stage.set(Stage::Previewing);
        report.set(None);
        progress.set(None);
        spawn_local(async move {
            let file = match chosen_file_snapshot("import-file").await {
                Ok(Some(file)) => file,
                Ok(None) => {
                    error.set(Some(AppError::invalid(
                        import_form::BUNDLE,
                        "choose a bundle file exported from Quiver",
                    )));
                    stage.set(Stage::Idle);
                    return;
                }
                Err(e) => {
                    error.set(Some(AppError::invalid(import_form::BUNDLE, e)));
                    stage.set(Stage::Idle);
                    return;
                }
            };
            let upload = match import_upload(
                &file,
                &passphrase.get_untracked(),
                &on_conflict.get_untracked(),
                None,
            ) {
                Ok(upload) => upload,
                Err(e) => {
                    error.set(Some(e));
                    stage.set(Stage::Idle);
                    return;
                }
            };
            match import_bundle(upload).await {
                Ok(r) => {
                    error.set(None);
                    set_previewed(Some(file));
                    report.set(Some(r));
                }
                Err(e) => error.set(Some(e)),
            }
            stage.set(Stage::Idle);
        });
    };
    let apply = move |_| {
        let Some(file) = previewed() else {
            return;
        };
        let import_id = random_id();
        let upload = match import_upload(
            &file,
            &passphrase.get_untracked(),
            &on_conflict.get_untracked(),
            Some(&import_id),
        ) {
            Ok(upload) => upload,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        let name = file.0;
        stage.set(Stage::Applying);
        progress.set(Some(ImportProgressView {
            phase: "reading".into(),
            ..ImportProgressView::default()
        }));
        // Follows the apply while it runs.
        let poll = set_interval_with_handle(
            move || {
                let id = import_id.clone();
                spawn_local(async move {
                    if let Ok(p) = import_progress(id).await
                        && stage.get_untracked() == Stage::Applying
                    {
                        progress.set(Some(p));
                    }
                });
            },
            Duration::from_millis(250),
        )
        .ok();
        spawn_local(async move {
            let result = import_bundle(upload).await;
            if let Some(poll) = poll {
                poll.clear();
            }
            match result {
                Ok(r) if r.applied => {
                    let s = r.summary;
                    notices.ok(format!(
                        "Imported {name}: {} providers and {} tokens created, {} and {} updated, {} and {} skipped.",
                        s.providers.created, s.tokens.created, s.providers.updated,
                        s.tokens.updated, s.providers.skipped, s.tokens.skipped
                    ));
                    // The last poll may not have seen the end (or any of
                    // it, for a small file): the report has the numbers.
                    let written = s.providers.created
                        + s.providers.updated
                        + s.tokens.created
                        + s.tokens.updated;
                    progress.set(Some(ImportProgressView {
                        phase: "done".into(),
                        done: written,
                        total: written,
                        finished: true,
                    }));
                    set_previewed(None);
                    report.set(Some(r));
                }
                Ok(r) => {
                    notices.error(format!(
                        "Nothing was imported from {name}: see the problems below."
                    ));
                    progress.set(None);
                    report.set(Some(r));
                }
                Err(e) => {
                    notices.error(format!("Nothing was imported from {name}: {e}"));
                    progress.set(None);
                    error.set(Some(e));
                }
            }
            stage.set(Stage::Idle);
        });
    };
    let err = Signal::derive(move || error.get());
    let can_apply = move || {
        stage.get() == Stage::Idle
            && report
                .get()
                .is_some_and(|r| !r.applied && r.problems.is_empty())
    };
    view! {
        <section class="card" aria-labelledby="import-heading">
            <h2 id="import-heading">"Import"</h2>
            <form class="form form-wide" on:submit=preview novalidate data-testid="import-form">
                <p class="help">"Choose a bundle exported from a Quiver instance. The preview shows what will be created, updated and skipped, and every problem with its place in the file; nothing is written until you import, and then everything is written or nothing."</p>
                <label for="import-file">"Bundle file"</label>
                <input id="import-file" type="file" accept=".json,application/json" aria-describedby="import-file-error"
                    on:change=move |_| { report.set(None); progress.set(None); set_previewed(None); } />
                <FieldError error=err field="bundle" id="import-file-error".into() />
                <label for="import-passphrase">"Passphrase (when the bundle holds secrets)"</label>
                <input id="import-passphrase" type="password" autocomplete="off" prop:value=passphrase
                    aria-describedby="import-passphrase-error"
                    on:input=move |ev| passphrase.set(event_target_value(&ev)) />
                <FieldError error=err field="passphrase" id="import-passphrase-error".into() />
                <label for="import-conflict">"When a name is already taken"</label>
                <select id="import-conflict" prop:value=on_conflict aria-describedby="import-conflict-error"
                    on:change=move |ev| { on_conflict.set(event_target_value(&ev)); report.set(None); }>
                    <option value="skip">"Skip: keep what is here"</option>
                    <option value="overwrite">"Overwrite: replace what is here"</option>
                    <option value="rename">"Keep both: import under a new name"</option>
                </select>
                <FieldError error=err field="on_conflict" id="import-conflict-error".into() />
                {move || error.get().and_then(|e| form_level(&e)).map(|m| view! { <div class="alert alert-error" role="alert">{m}</div> })}
                <div class="modal-actions">
                    <button type="submit" class="button button-secondary" disabled=move || stage.get() != Stage::Idle data-testid="import-preview">
                        {move || if stage.get() == Stage::Previewing { "Checking…" } else { "Preview" }}
                    </button>
                    <button type="button" class="button" disabled=move || !can_apply() on:click=apply data-testid="import-apply">
                        {move || if stage.get() == Stage::Applying { "Importing…" } else { "Import" }}
                    </button>
                </div>
            </form>
            {move || progress.get().map(|p| view! { <ImportProgress progress=p /> })}
            {move || report.get().map(|r| view! { <ImportReport report=r /> })}
        </section>
    }
}

fn phase_label(phase: &str) -> &'static str {
    match phase {
        "reading" => "Reading the bundle",
        "unlocking" => "Opening the secrets",
        "planning" => "Comparing with this instance",
        "writing" => "Writing",
        "committing" => "Committing",
        "done" => "Done",
        "failed" => "Failed",
        _ => "Working",
    }
}

#[component]
fn ImportProgress(progress: ImportProgressView) -> impl IntoView {
    let total = progress.total.max(1);
    let text = if progress.total > 0 {
        format!(
            "{}: {} of {} rows",
            phase_label(&progress.phase),
            progress.done,
            progress.total
        )
    } else {
        format!("{}…", phase_label(&progress.phase))
    };
    view! {
        <div class="import-progress" data-testid="import-progress">
            <progress max=total.to_string() value=progress.done.to_string() aria-labelledby="import-progress-text"></progress>
            <p id="import-progress-text" role="status" aria-live="polite">{text}</p>
        </div>
    }
}

fn item_line(item: ImportItem) -> impl IntoView {
    let mut text = item.name;
    if let Some(new_name) = item.new_name {
        text.push_str(&format!(" → {new_name}"));
    }
    if let Some(status) = item.status {
        text.push_str(&format!(" ({})", status.as_str().replace('_', " ")));
    }
    if let Some(reason) = item.reason {
        text.push_str(&format!(": {reason}"));
    }
    view! { <li><code>{item.path}</code>" "{text}</li> }
}

#[component]
fn ImportReport(report: ImportReportView) -> impl IntoView {
    let s = report.summary;
    let heading = if report.applied {
        "Imported"
    } else if report.problems.is_empty() {
        "Preview: nothing is written until you import"
    } else {
        "This bundle cannot be imported"
    };
    let lists = [
        ("Created", report.created),
        ("Updated", report.updated),
        ("Skipped", report.skipped),
    ];
    let authenticated = report.authenticated;
    let hosts = report.endpoint_hosts;
    view! {
        <div class="import-report" data-testid="import-report">
            <h3>{heading}</h3>
            {(!report.problems.is_empty()).then(|| view! {
                <div class="alert alert-error" role="alert" data-testid="import-problems">
                    <p>{format!("{} problems; nothing was imported:", report.problems.len())}</p>
                    <ul>
                        {report.problems.into_iter().map(|p| view! { <li><code>{p.path}</code>" "{p.message}</li> }).collect_view()}
                    </ul>
                </div>
            })}
            <table class="table" data-testid="import-summary">
                <thead><tr><th scope="col">""</th><th scope="col">"Created"</th><th scope="col">"Updated"</th><th scope="col">"Skipped"</th></tr></thead>
                <tbody>
                    <tr><th scope="row">"Providers"</th><td>{s.providers.created}</td><td>{s.providers.updated}</td><td>{s.providers.skipped}</td></tr>
                    <tr><th scope="row">"Tokens"</th><td>{s.tokens.created}</td><td>{s.tokens.updated}</td><td>{s.tokens.skipped}</td></tr>
                </tbody>
            </table>
            {(!hosts.is_empty()).then(|| view! {
                <div class=if authenticated { "alert alert-info" } else { "alert alert-warning" } data-testid="import-hosts">
                    <p>{if authenticated {
                        "The bundle is as it was exported (its passphrase authenticates it). Its providers' endpoints name these hosts:"
                    } else {
                        "Nothing proves this bundle is as it was exported (only a bundle with secrets, given its passphrase, can be checked). Before importing, check that its providers' endpoints name only hosts you expect:"
                    }}</p>
                    <ul>
                        {hosts.into_iter().map(|h| {
                            let n = h.paths.len();
                            let shown = h.paths.into_iter().take(6).collect::<Vec<_>>().join(", ");
                            let more = if n > 6 { format!(" and {} more", n - 6) } else { String::new() };
                            view! { <li><code>{h.host}</code>" "{format!("({shown}{more})")}</li> }
                        }).collect_view()}
                    </ul>
                </div>
            })}
            {(s.needs_credentials > 0).then(|| view! {
                <p class="help">{format!("{} tokens arrive without credentials (status Needs credentials): give their provider a client secret, or the token its password or secret, then request it; interactive tokens get an authorization link.", s.needs_credentials)}</p>
            })}
            {(!report.warnings.is_empty()).then(|| view! {
                <details>
                    <summary>{format!("{} warnings", report.warnings.len())}</summary>
                    <ul>{report.warnings.into_iter().map(|p| view! { <li><code>{p.path}</code>" "{p.message}</li> }).collect_view()}</ul>
                </details>
            })}
            {lists.into_iter().filter(|(_, items)| !items.providers.is_empty() || !items.tokens.is_empty()).map(|(label, items)| view! {
                <details>
                    <summary>{format!("{label}: {} providers, {} tokens", items.providers.len(), items.tokens.len())}</summary>
                    <ul>
                        {items.providers.into_iter().take(200).map(item_line).collect_view()}
                        {items.tokens.into_iter().take(500).map(item_line).collect_view()}
                    </ul>
                </details>
            }).collect_view()}
        </div>
    }
}
