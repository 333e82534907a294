//! Job runs: a due job claimed with a lease, its targets renewed a few at
//! a time, and the outcome per token kept with the run.

use crate::db::db_error;
use std::sync::Arc;

use app::error::AppError;
use app::jobs::{JobAction, JobRunResult, JobRunView, JobTarget};
use app::tokens::ResetInput;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use tokio::sync::Semaphore;

use super::{Jobs, When};
use crate::account::ops::rfc3339;
use crate::audit::Actor;
use crate::auth::Caller;
use crate::db::entity::{job, job_run, token};
use crate::events::EventKind;
use crate::tokens::engine::Mode;
use crate::tokens::{Flow, TokenStatus};
use chrono::Duration;

/// How long a replica may run a job before others take over.
const LEASE: Duration = Duration::minutes(30);
/// Tokens a run renews at once.
const PARALLEL: usize = 4;

pub(super) fn run_view(r: job_run::Model) -> JobRunView {
    JobRunView {
        id: r.id,
        job_id: r.job_id,
        started_at: rfc3339(r.started_at),
        finished_at: r.finished_at.map(rfc3339),
        status: r.status,
        trigger: r.trigger,
        total: i64::from(r.total),
        succeeded: i64::from(r.succeeded),
        failed: i64::from(r.failed),
        results: r
            .results
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default(),
    }
}

impl Jobs {
    /// Runs a job now (its schedule stays).
    pub async fn run_now(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<JobRunView, AppError> {
        let result = async {
            Self::admin(caller)?;
            let j = self.find(id).await?;
            if !self.claim(&j.id, false).await? {
                return Err(AppError::Conflict(
                    "this job is running now; wait for the run to finish".into(),
                ));
            }
            Ok(self.execute(j, "manual").await)
        }
        .await;
        self.audited(caller.actor(), addr, "job.run", Some(id.to_owned()), result)
            .await
    }

    /// Claims a job's lease; for a scheduled run, only while it is due.
    async fn claim(&self, id: &str, scheduled: bool) -> Result<bool, AppError> {
        let now = self.now();
        let mut update = job::Entity::update_many()
            .col_expr(
                job::Column::LeaseOwner,
                Expr::value(self.engine.replica.clone()),
            )
            .col_expr(job::Column::LeaseUntil, Expr::value(now + LEASE))
            .filter(job::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(job::Column::LeaseUntil.is_null())
                    .add(job::Column::LeaseUntil.lt(now)),
            );
        if scheduled {
            update = update
                .filter(job::Column::Paused.eq(false))
                .filter(job::Column::NextRunAt.lte(now));
        }
        let claimed = update.exec(&self.db).await.map_err(db_error)?.rows_affected == 1;
        if claimed {
            // A run left `running` by another replica died with it.
            let _ = job_run::Entity::update_many()
                .col_expr(job_run::Column::Status, Expr::value("interrupted"))
                .col_expr(job_run::Column::FinishedAt, Expr::value(now))
                .filter(job_run::Column::JobId.eq(id))
                .filter(job_run::Column::Status.eq("running"))
                .exec(&self.db)
                .await;
        }
        Ok(claimed)
    }

    /// Runs every due job this replica can claim; answers how many ran.
    pub async fn pass(&self) -> usize {
        let now = self.now();
        let due = match job::Entity::find()
            .filter(job::Column::Paused.eq(false))
            .filter(job::Column::NextRunAt.lte(now))
            .filter(
                Condition::any()
                    .add(job::Column::LeaseUntil.is_null())
                    .add(job::Column::LeaseUntil.lt(now)),
            )
            .order_by_asc(job::Column::NextRunAt)
            .all(&self.db)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot list due jobs");
                return 0;
            }
        };
        let mut ran = 0;
        for j in due {
            if matches!(self.claim(&j.id, true).await, Ok(true)) {
                self.execute(j, "schedule").await;
                ran += 1;
            }
        }
        ran
    }

    async fn targets(&self, j: &job::Model) -> Result<Vec<token::Model>, sea_orm::DbErr> {
        let mut query = token::Entity::find().order_by_asc(token::Column::Name);
        query = match (j.target, j.target_id.clone()) {
            (JobTarget::Token, Some(id)) => query.filter(token::Column::Id.eq(id)),
            (JobTarget::Provider, Some(id)) => query.filter(token::Column::ProviderId.eq(id)),
            (JobTarget::ClientCredentials, provider) => {
                let q = query.filter(token::Column::Flow.eq(Flow::ClientCredentials));
                match provider {
                    Some(p) => q.filter(token::Column::ProviderId.eq(p)),
                    None => q,
                }
            }
            (JobTarget::Token | JobTarget::Provider, None) => return Ok(Vec::new()),
        };
        query.all(&self.db).await
    }

    /// Runs a claimed job to the end and records it.
    async fn execute(&self, j: job::Model, trigger: &'static str) -> JobRunView {
        let started = self.now();
        let run_id = uuid::Uuid::new_v4().to_string();
        let run = job_run::ActiveModel {
            id: Set(run_id.clone()),
            job_id: Set(j.id.clone()),
            started_at: Set(started),
            finished_at: Set(None),
            status: Set("running".into()),
            trigger: Set(trigger.into()),
            total: Set(0),
            succeeded: Set(0),
            failed: Set(0),
            results: Set(None),
            replica: Set(self.engine.replica.clone()),
        };
        if let Err(e) = run.insert(&self.db).await {
            tracing::error!(error = %e, job = %j.id, "cannot record a job run");
        }
        let action = j.action;
        let targets = self.targets(&j).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, job = %j.id, "cannot list a job's targets");
            Vec::new()
        });
        let limit = Arc::new(Semaphore::new(PARALLEL));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, t) in targets.into_iter().enumerate() {
            let engine = self.engine.clone();
            let limit = limit.clone();
            let actor = Actor::System(format!("job {}", j.name));
            tasks.spawn(async move {
                let _slot = limit.acquire().await;
                let (id, name) = (t.id.clone(), t.name.clone());
                let result = |outcome: &str, error: Option<String>| JobRunResult {
                    token_id: id.clone(),
                    token_name: name.clone(),
                    outcome: outcome.to_owned(),
                    error,
                };
                let done = if t.status == TokenStatus::PendingAuthorization {
                    result("skipped", Some("waiting for authorization".into()))
                } else if t.status == TokenStatus::NeedsCredentials {
                    result(
                        "skipped",
                        Some("imported without credentials; supply them first".into()),
                    )
                } else if action == JobAction::ResetClientCredentials
                    && t.flow != Flow::ClientCredentials
                {
                    result(
                        "skipped",
                        Some("reset applies to Client Credentials tokens only".into()),
                    )
                } else {
                    // The job's copy of the row only names the token: the
                    // renewal reads it again once it holds the claim.
                    let outcome = match action {
                        JobAction::Refresh => engine.refresh_for_job(actor, t, started).await,
                        JobAction::ResetClientCredentials => {
                            engine
                                .reset_as(actor, t, ResetInput::default(), None, Mode::Asked)
                                .await
                        }
                    };
                    match outcome {
                        Ok(answer) => match (answer.refusal, answer.view.error) {
                            (None, _) => result("success", None),
                            // The provider's words, as stored on the token.
                            (Some(_), Some(e)) => result(
                                "failure",
                                Some(format!(
                                    "{}{}",
                                    e.error,
                                    e.error_description
                                        .map(|d| format!(": {d}"))
                                        .unwrap_or_default()
                                )),
                            ),
                            (Some(e), None) => result("failure", Some(e.to_string())),
                        },
                        Err(e) => result("failure", Some(e.to_string())),
                    }
                };
                (index, done)
            });
        }
        let mut results = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(r) = done {
                results.push(r);
            }
        }
        results.sort_by_key(|(i, _)| *i);
        let results: Vec<JobRunResult> = results.into_iter().map(|(_, r)| r).collect();
        let succeeded = results.iter().filter(|r| r.outcome == "success").count();
        let failed = results.iter().filter(|r| r.outcome == "failure").count();
        let status = match (succeeded, failed) {
            (_, 0) => "success",
            (0, _) => "failure",
            _ => "partial",
        };
        let finished = self.now();
        let run = job_run::Model {
            id: run_id,
            job_id: j.id.clone(),
            started_at: started,
            finished_at: Some(finished),
            status: status.into(),
            trigger: trigger.into(),
            total: results.len() as i32,
            succeeded: succeeded as i32,
            failed: failed as i32,
            results: Some(serde_json::to_string(&results).unwrap_or_default()),
            replica: self.engine.replica.clone(),
        };
        let mut active: job_run::ActiveModel = run.clone().into();
        for column in [
            job_run::Column::FinishedAt,
            job_run::Column::Status,
            job_run::Column::Total,
            job_run::Column::Succeeded,
            job_run::Column::Failed,
            job_run::Column::Results,
        ] {
            sea_orm::ActiveModelTrait::reset(&mut active, column);
        }
        if let Err(e) = active.update(&self.db).await {
            tracing::error!(error = %e, job = %j.id, "cannot record a job run's outcome");
        }
        // Completing the run and releasing the lease is one update; a
        // scheduled run moves the schedule on.
        let mut done: job::ActiveModel = j.clone().into();
        done.last_run_at = Set(Some(started));
        done.lease_owner = Set(None);
        done.lease_until = Set(None);
        if trigger == "schedule" {
            let when = When::parse(j.every_minutes.map(i64::from), j.cron.as_deref()).ok();
            done.next_run_at = Set(when.and_then(|w| w.next_after(finished)));
        }
        let latest = job::Entity::find_by_id(j.id.clone())
            .one(&self.db)
            .await
            .ok()
            .flatten();
        if let Some(latest) = latest {
            // Keep changes an admin made while it ran (pause, schedule).
            done.paused = Set(latest.paused);
            if latest.paused {
                done.next_run_at = Set(None);
            } else if trigger != "schedule" {
                done.next_run_at = Set(latest.next_run_at);
            }
            if let Err(e) = done.update(&self.db).await {
                tracing::error!(error = %e, job = %j.id, "cannot release a job");
            }
        }
        self.engine
            .metrics
            .job_run(if failed == 0 { "success" } else { "failure" });
        if failed > 0 {
            self.engine
                .events
                .raise(
                    EventKind::JobFailed,
                    None,
                    Some(&j.id),
                    format!(
                        "Job {}: {failed} of {} tokens failed",
                        j.name,
                        results.len()
                    ),
                    serde_json::json!({"job_name": j.name, "run_id": run.id, "failed": failed, "total": results.len()}),
                )
                .await;
        }
        tracing::info!(job = %j.id, status, succeeded, failed, "job run finished");
        run_view(run)
    }
}
