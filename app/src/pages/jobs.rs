//! The scheduled jobs screen: each job's schedule, next and last runs, its
//! recent runs, and the form that creates one.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::components::format::when;
use crate::components::{ErrorBox, FieldError, Notices, form_level};
use crate::error::AppError;
use crate::jobs::{
    JobAction, JobInput, JobRunView, JobTarget, JobView, create_job, delete_job, get_job,
    list_jobs, run_job, update_job,
};
use crate::providers::list_providers;

fn action_label(action: JobAction) -> &'static str {
    match action {
        JobAction::ResetClientCredentials => "Reset Client Credentials",
        JobAction::Refresh => "Refresh Access Token",
    }
}

fn target_choice_label(target: JobTarget) -> &'static str {
    match target {
        JobTarget::ClientCredentials => "All Client Credentials tokens",
        JobTarget::Provider => "All tokens of a provider",
        JobTarget::Token => "One token",
    }
}

fn schedule_label(job: &JobView) -> String {
    match (&job.cron, job.every_minutes) {
        (Some(c), _) => format!("cron {c} (UTC)"),
        (None, Some(1)) => "every minute".into(),
        (None, Some(n)) => format!("every {n} minutes"),
        _ => "—".into(),
    }
}

/// `/jobs` (admins): scheduled jobs, their next and last runs, and a form
/// to create one (run a flow's renewal on a schedule).
#[component]
pub fn JobsPage() -> impl IntoView {
    let notices = Notices::new();
    let version = RwSignal::new(0u32);
    let jobs = Resource::new(move || version.get(), |_| list_jobs());
    let changed = Callback::new(move |()| version.update(|v| *v += 1));
    view! {
        <Title text="Scheduled jobs · Quiver" />
        <div class="page-head"><h1>"Scheduled jobs"</h1></div>
        {notices.view()}
        <Suspense fallback=|| view! { <p class="loading">"Loading jobs…"</p> }>
            {move || Suspend::new(async move {
                match jobs.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty" data-testid="jobs-empty">"No scheduled job yet. Create one below: for example, reset the client credentials of every Client Credentials token each night."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap">
                            <table class="table table-cards" data-testid="jobs-table">
                                <thead><tr>
                                    <th scope="col">"Name"</th><th scope="col">"Action"</th><th scope="col">"Targets"</th>
                                    <th scope="col">"Schedule"</th><th scope="col">"Next run"</th><th scope="col">"Last run"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|job| view! { <JobRow job notices changed /> }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Suspense>
        <NewJobForm notices changed />
    }
}

#[component]
fn JobRow(job: JobView, notices: Notices, changed: Callback<()>) -> impl IntoView {
    let busy = RwSignal::new(false);
    let runs_open = RwSignal::new(false);
    let id = job.id.clone();
    let name = job.name.clone();
    let run_now = {
        let (id, name) = (id.clone(), name.clone());
        move |_| {
            let (id, name) = (id.clone(), name.clone());
            busy.set(true);
            spawn_local(async move {
                match run_job(id).await {
                    Ok(run) => notices.ok(format!(
                        "Ran {name}: {} of {} tokens succeeded, {} failed.",
                        run.succeeded, run.total, run.failed
                    )),
                    Err(e) => notices.error(format!("Could not run {name}: {e}")),
                }
                busy.set(false);
                changed.run(());
            });
        }
    };
    let toggle = {
        let (id, name) = (id.clone(), name.clone());
        let paused = job.paused;
        move |_| {
            let (id, name) = (id.clone(), name.clone());
            spawn_local(async move {
                let input = JobInput {
                    paused: Some(!paused),
                    ..JobInput::default()
                };
                match update_job(id, input).await {
                    Ok(_) => notices.ok(format!(
                        "{} {name}.",
                        if paused { "Resumed" } else { "Paused" }
                    )),
                    Err(e) => notices.error(format!("Could not change {name}: {e}")),
                }
                changed.run(());
            });
        }
    };
    let remove = {
        let (id, name) = (id.clone(), name.clone());
        move |_| {
            let confirmed = web_sys_confirm(&format!("Delete the job {name} and its run history?"));
            if !confirmed {
                return;
            }
            let (id, name) = (id.clone(), name.clone());
            spawn_local(async move {
                match delete_job(id).await {
                    Ok(()) => notices.ok(format!("Deleted {name}.")),
                    Err(e) => notices.error(format!("Could not delete {name}: {e}")),
                }
                changed.run(());
            });
        }
    };
    let last = job.last_run.clone();
    view! {
        <tr data-testid="job-row">
            <th scope="row">
                <button type="button" class="link-button" aria-expanded=move || runs_open.get().to_string()
                    on:click=move |_| runs_open.update(|o| *o = !*o)>{job.name.clone()}</button>
                {job.paused.then(|| view! { <span class="badge status-pending_authorization">"Paused"</span> })}
            </th>
            <td data-label="Action">{action_label(job.action)}</td>
            <td data-label="Targets">{job.target_label.clone()}</td>
            <td data-label="Schedule">{schedule_label(&job)}</td>
            <td data-testid="job-next-run" data-label="Next run">{job.next_run_at.as_deref().map_or_else(|| "—".to_owned(), when)}</td>
            <td data-testid="job-last-run" data-label="Last run">{last.map_or_else(|| "never".to_owned(), |r| format!("{} — {} ({} of {} succeeded)", when(&r.started_at), r.status, r.succeeded, r.total))}</td>
            <td class="row-actions row-actions-card">
                <button type="button" class="button button-small" disabled=busy on:click=run_now>"Run now"</button>
                <button type="button" class="button button-small button-secondary" on:click=toggle>
                    {if job.paused { "Resume" } else { "Pause" }}
                </button>
                <button type="button" class="button button-small button-danger" on:click=remove>"Delete"</button>
            </td>
        </tr>
        <Show when=move || runs_open.get()>
            <tr class="job-runs"><td colspan="7"><JobRuns id=id.clone() /></td></tr>
        </Show>
    }
}

/// Asks the person to confirm (the browser's own dialog).
fn web_sys_confirm(question: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.confirm_with_message(question).ok())
            .unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = question;
        false
    }
}

#[component]
fn JobRuns(id: String) -> impl IntoView {
    let detail = Resource::new(move || id.clone(), get_job);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading runs…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(d) if d.runs.is_empty() => view! { <p>"No run yet."</p> }.into_any(),
                    Ok(d) => view! {
                        <ul class="runs" data-testid="job-runs">
                            {d.runs.into_iter().map(|r| view! { <RunItem run=r /> }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(error) => view! { <ErrorBox error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn RunItem(run: JobRunView) -> impl IntoView {
    view! {
        <li data-testid="job-run">
            <details>
                <summary>{format!("{} — {} ({}): {} succeeded, {} failed of {}", when(&run.started_at), run.status, run.trigger, run.succeeded, run.failed, run.total)}</summary>
                <ul>
                    {run.results.into_iter().map(|r| view! {
                        <li data-testid="job-run-result">
                            <a href=format!("/tokens/{}", r.token_id)>{r.token_name}</a>
                            {format!(": {}", r.outcome)}
                            {r.error.map(|e| format!(" — {e}"))}
                        </li>
                    }).collect_view()}
                </ul>
            </details>
        </li>
    }
}

#[component]
fn NewJobForm(notices: Notices, changed: Callback<()>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let action = RwSignal::new(JobAction::ResetClientCredentials);
    let target = RwSignal::new(JobTarget::ClientCredentials);
    let target_id = RwSignal::new(String::new());
    let kind = RwSignal::new("every".to_owned());
    let every = RwSignal::new("60".to_owned());
    let cron = RwSignal::new("0 3 * * *".to_owned());
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let providers = Resource::new(|| (), |_| list_providers());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let every_minutes = if kind.get_untracked() == "every" {
            match every.get_untracked().trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    error.set(Some(AppError::invalid(
                        "every_minutes",
                        "must be a whole number of minutes",
                    )));
                    return;
                }
            }
        } else {
            None
        };
        let input = JobInput {
            name: Some(name.get_untracked()),
            action: Some(action.get_untracked().to_string()),
            target: Some(target.get_untracked().to_string()),
            target_id: Some(target_id.get_untracked()),
            every_minutes,
            cron: (kind.get_untracked() == "cron").then(|| cron.get_untracked()),
            paused: Some(false),
        };
        busy.set(true);
        spawn_local(async move {
            match create_job(input).await {
                Ok(job) => {
                    error.set(None);
                    name.set(String::new());
                    notices.ok(format!("Created the job {}.", job.name));
                    changed.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let err = Signal::derive(move || error.get());
    view! {
        <section class="card" aria-labelledby="new-job-heading">
            <h2 id="new-job-heading">"Create a scheduled job"</h2>
            <form class="form form-wide" on:submit=submit novalidate data-testid="new-job-form">
                <label for="job-name">"Name"</label>
                <input id="job-name" prop:value=name maxlength="100" aria-describedby="job-name-error"
                    on:input=move |ev| name.set(event_target_value(&ev)) />
                <FieldError error=err field="name" id="job-name-error".into() />
                <label for="job-action">"Action"</label>
                <select id="job-action" prop:value=move || action.get().as_str()
                    on:change=move |ev| if let Ok(a) = event_target_value(&ev).parse() { action.set(a) }>
                    {[JobAction::ResetClientCredentials, JobAction::Refresh].map(|a| view! {
                        <option value=a.as_str()>{action_label(a)}</option>
                    })}
                </select>
                <FieldError error=err field="action" id="job-action-error".into() />
                <label for="job-target">"Targets"</label>
                <select id="job-target" prop:value=move || target.get().as_str()
                    on:change=move |ev| if let Ok(t) = event_target_value(&ev).parse() { target.set(t); target_id.set(String::new()); }>
                    {[JobTarget::ClientCredentials, JobTarget::Provider, JobTarget::Token].map(|t| view! {
                        <option value=t.as_str()>{target_choice_label(t)}</option>
                    })}
                </select>
                <FieldError error=err field="target" id="job-target-error".into() />
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let providers = providers.await.unwrap_or_default();
                        view! {
                            <div class="field" hidden=move || target.get() == JobTarget::Token>
                                <label for="job-provider">{move || if target.get() == JobTarget::Provider { "Provider" } else { "Provider (optional)" }}</label>
                                <select id="job-provider" prop:value=target_id aria-describedby="job-target-id-error"
                                    on:change=move |ev| target_id.set(event_target_value(&ev))>
                                    <option value="">{move || if target.get() == JobTarget::Provider { "Choose a provider" } else { "Every provider" }}</option>
                                    {providers.into_iter().map(|p| view! { <option value=p.id>{p.name}</option> }).collect_view()}
                                </select>
                            </div>
                            <div class="field" hidden=move || target.get() != JobTarget::Token>
                                <label for="job-token">"Token ID"</label>
                                <input id="job-token" prop:value=target_id aria-describedby="job-token-help job-target-id-error"
                                    on:input=move |ev| target_id.set(event_target_value(&ev)) />
                                <p class="help" id="job-token-help">"Copy it from the token's menu: Manage → Copy Token ID."</p>
                            </div>
                        }
                    })}
                </Suspense>
                <FieldError error=err field="target_id" id="job-target-id-error".into() />
                <fieldset>
                    <legend>"When"</legend>
                    <div class="field-radio">
                        <input type="radio" id="job-kind-every" name="job-kind" value="every" prop:checked=move || kind.get() == "every"
                            on:change=move |_| kind.set("every".into()) />
                        <label for="job-kind-every">"Every N minutes"</label>
                    </div>
                    <div class="field-radio">
                        <input type="radio" id="job-kind-cron" name="job-kind" value="cron" prop:checked=move || kind.get() == "cron"
                            on:change=move |_| kind.set("cron".into()) />
                        <label for="job-kind-cron">"Cron expression (UTC)"</label>
                    </div>
                    <div class="field" hidden=move || kind.get() != "every">
                        <label for="job-every">"Minutes between runs"</label>
                        <input id="job-every" inputmode="numeric" prop:value=every aria-describedby="job-every-error"
                            on:input=move |ev| every.set(event_target_value(&ev)) />
                        <FieldError error=err field="every_minutes" id="job-every-error".into() />
                    </div>
                    <div class="field" hidden=move || kind.get() != "cron">
                        <label for="job-cron">"Cron expression"</label>
                        <input id="job-cron" prop:value=cron aria-describedby="job-cron-help job-cron-error"
                            on:input=move |ev| cron.set(event_target_value(&ev)) />
                        <p class="help" id="job-cron-help">"Five fields in UTC: minute hour day-of-month month day-of-week. 0 3 * * * runs at 03:00 every day."</p>
                        <FieldError error=err field="cron" id="job-cron-error".into() />
                    </div>
                </fieldset>
                {move || error.get().and_then(|e| form_level(&e)).map(|m| view! { <div class="alert alert-error" role="alert">{m}</div> })}
                <div class="modal-actions">
                    <button type="submit" class="button" disabled=busy>"Create job"</button>
                </div>
            </form>
        </section>
    }
}
