//! Scheduled jobs: an admin names an action (refresh, or reset client
//! credentials), its targets (one token, every token of a provider, every
//! Client Credentials token) and when (every N minutes, or a cron
//! expression in UTC). Due jobs are claimed with a lease, so each
//! occurrence runs on one replica; a replica that dies mid-run leaves a
//! lapsed lease, and another replica runs the job again (the dead run is
//! marked `interrupted`). Each run keeps the outcome per token.

use crate::db::db_error;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use app::error::AppError;
use app::jobs::{JobAction, JobDetail, JobInput, JobRunResult, JobRunView, JobTarget, JobView};
use app::tokens::ResetInput;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use tokio::sync::Semaphore;

use crate::account::ops::rfc3339;
use crate::audit::{Actor, AuditEvent, Outcome};
use crate::auth::Caller;
use crate::db::entity::{job, job_run, provider, token};
use crate::events::EventKind;
use crate::tokens::engine::{Mode, TokenEngine};
use crate::tokens::{Flow, TokenStatus};

/// How long a replica may run a job before others take over.
const LEASE: Duration = Duration::minutes(30);
/// Tokens a run renews at once.
const PARALLEL: usize = 4;
/// Runs listed with a job.
const RECENT_RUNS: u64 = 20;

/// When a job runs.
#[derive(Debug, Clone)]
pub enum When {
    /// Every N minutes.
    Every(i64),
    /// A five-field cron expression, in UTC.
    Cron(Box<croner::Cron>),
}

impl When {
    /// Reads the schedule of a job input: exactly one of the two.
    pub fn parse(every: Option<i64>, cron: Option<&str>) -> Result<Self, AppError> {
        match (every, cron.map(str::trim).filter(|c| !c.is_empty())) {
            (Some(_), Some(_)) => Err(AppError::invalid(
                "cron",
                "give either every_minutes or cron, not both",
            )),
            (None, None) => Err(AppError::invalid(
                "every_minutes",
                "give every_minutes or a cron expression",
            )),
            (Some(n), None) if (1..=525_600).contains(&n) => Ok(Self::Every(n)),
            (Some(_), None) => Err(AppError::invalid(
                "every_minutes",
                "must be between 1 and 525600 (a year)",
            )),
            (None, Some(text)) => {
                if text.split_whitespace().count() != 5 {
                    return Err(AppError::invalid(
                        "cron",
                        "must have five fields: minute hour day-of-month month day-of-week (UTC), e.g. 0 3 * * *",
                    ));
                }
                croner::Cron::from_str(text)
                    .map(|c| Self::Cron(Box::new(c)))
                    .map_err(|e| {
                        AppError::invalid("cron", format!("is not a valid cron expression: {e}"))
                    })
            }
        }
    }

    /// The first run time after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Every(n) => Some(after + Duration::minutes(*n)),
            Self::Cron(c) => c.find_next_occurrence(&after, false).ok(),
        }
    }
}

fn run_view(r: job_run::Model) -> JobRunView {
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

/// Scheduled jobs: their definitions, runs and the runner.
#[derive(Clone)]
pub struct Jobs {
    db: DatabaseConnection,
    engine: TokenEngine,
}

impl Jobs {
    /// The service over the engine's database.
    pub fn new(engine: TokenEngine) -> Self {
        Self {
            db: engine.tokens.db.clone(),
            engine,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.engine.tokens.clock.now()
    }

    async fn audited<T>(
        &self,
        actor: Actor,
        addr: Option<String>,
        action: &'static str,
        id: Option<String>,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let event = AuditEvent::new(actor, action, "job", Outcome::Success)
            .from_addr(addr)
            .maybe_object(id);
        self.engine.audit.record_result(event, result).await
    }

    fn admin(caller: &Caller) -> Result<(), AppError> {
        if caller.is_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    async fn find(&self, id: &str) -> Result<job::Model, AppError> {
        job::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::NotFound("the job".into()))
    }

    /// What a job works on, in words, with names from `names` (token and
    /// provider ids to names).
    fn target_label(j: &job::Model, names: &HashMap<String, String>) -> String {
        let name = |id: &String, gone: &str| names.get(id).cloned().unwrap_or_else(|| gone.into());
        match (j.target, &j.target_id) {
            (JobTarget::Token, Some(id)) => format!("token {}", name(id, "(deleted)")),
            (JobTarget::Provider, Some(id)) => {
                format!("all tokens of {}", name(id, "(deleted provider)"))
            }
            (JobTarget::ClientCredentials, Some(id)) => format!(
                "all Client Credentials tokens of {}",
                name(id, "(deleted provider)")
            ),
            (JobTarget::ClientCredentials, None) => "all Client Credentials tokens".into(),
            // Refused when the job is saved.
            (JobTarget::Token | JobTarget::Provider, None) => "nothing".into(),
        }
    }

    /// The names of the tokens and providers `jobs` target, by id: two
    /// queries whatever the number of jobs.
    async fn target_names(&self, jobs: &[job::Model]) -> Result<HashMap<String, String>, AppError> {
        let ids = |kind: fn(JobTarget) -> bool| -> Vec<String> {
            let set: HashSet<&String> = jobs
                .iter()
                .filter(|j| kind(j.target))
                .filter_map(|j| j.target_id.as_ref())
                .collect();
            set.into_iter().cloned().collect()
        };
        let token_ids = ids(|t| t == JobTarget::Token);
        let provider_ids = ids(|t| t != JobTarget::Token);
        let mut names = self
            .names_of::<token::Entity>(&token_ids, token::Column::Id, token::Column::Name)
            .await?;
        names.extend(
            self.names_of::<provider::Entity>(
                &provider_ids,
                provider::Column::Id,
                provider::Column::Name,
            )
            .await?,
        );
        Ok(names)
    }

    /// The `name` of each row of `E` whose `id` is in `ids`, by id.
    async fn names_of<E: EntityTrait>(
        &self,
        ids: &[String],
        id: E::Column,
        name: E::Column,
    ) -> Result<HashMap<String, String>, AppError> {
        let mut names = HashMap::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<(String, String)> = E::find()
                .select_only()
                .column(id)
                .column(name)
                .filter(id.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(db_error)?;
            names.extend(rows);
        }
        Ok(names)
    }

    fn view(
        j: job::Model,
        last_run: Option<job_run::Model>,
        names: &HashMap<String, String>,
    ) -> JobView {
        JobView {
            target_label: Self::target_label(&j, names),
            id: j.id,
            name: j.name,
            action: j.action,
            target: j.target,
            target_id: j.target_id,
            every_minutes: j.every_minutes.map(i64::from),
            cron: j.cron,
            paused: j.paused,
            next_run_at: j.next_run_at.map(rfc3339),
            last_run_at: j.last_run_at.map(rfc3339),
            last_run: last_run.map(run_view),
            created_at: rfc3339(j.created_at),
        }
    }

    /// One job as lists show it.
    async fn view_one(&self, j: job::Model) -> Result<JobView, AppError> {
        let last_run = job_run::Entity::find()
            .filter(job_run::Column::JobId.eq(j.id.clone()))
            .order_by_desc(job_run::Column::StartedAt)
            .one(&self.db)
            .await
            .map_err(db_error)?;
        let names = self.target_names(std::slice::from_ref(&j)).await?;
        Ok(Self::view(j, last_run, &names))
    }

    /// Every job, by name: four queries whatever the number of jobs.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<JobView>, AppError> {
        Self::admin(caller)?;
        let jobs = job::Entity::find()
            .order_by_asc(job::Column::Name)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        // The newest run of each job (index job_id, started_at).
        let newest = Statement::from_string(
            self.db.get_database_backend(),
            "SELECT * FROM job_runs r WHERE r.started_at = \
             (SELECT MAX(n.started_at) FROM job_runs n WHERE n.job_id = r.job_id)",
        );
        let mut last_runs: HashMap<String, job_run::Model> = HashMap::new();
        for run in job_run::Entity::find()
            .from_raw_sql(newest)
            .all(&self.db)
            .await
            .map_err(db_error)?
        {
            last_runs.insert(run.job_id.clone(), run);
        }
        let names = self.target_names(&jobs).await?;
        Ok(jobs
            .into_iter()
            .map(|j| {
                let last_run = last_runs.remove(&j.id);
                Self::view(j, last_run, &names)
            })
            .collect())
    }

    /// One job and its recent runs.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<JobDetail, AppError> {
        Self::admin(caller)?;
        let j = self.find(id).await?;
        let runs = job_run::Entity::find()
            .filter(job_run::Column::JobId.eq(id))
            .order_by_desc(job_run::Column::StartedAt)
            .limit(RECENT_RUNS)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(run_view)
            .collect();
        Ok(JobDetail {
            job: self.view_one(j).await?,
            runs,
        })
    }

    /// Checks `input` over `existing` (absent keeps) and fills `active`.
    async fn apply(
        &self,
        active: &mut job::ActiveModel,
        existing: Option<&job::Model>,
        input: &JobInput,
    ) -> Result<(), AppError> {
        let name = match (&input.name, existing) {
            (Some(n), _) => n.trim().to_owned(),
            (None, Some(e)) => e.name.clone(),
            (None, None) => String::new(),
        };
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::invalid(
                "name",
                "is required (at most 100 characters)",
            ));
        }
        let taken = job::Entity::find()
            .filter(job::Column::Name.eq(name.clone()))
            .one(&self.db)
            .await
            .map_err(db_error)?;
        if taken.is_some_and(|t| existing.is_none_or(|e| e.id != t.id)) {
            return Err(AppError::invalid("name", "another job has this name"));
        }
        let action = match (&input.action, existing) {
            (Some(a), _) => a.parse::<JobAction>()?,
            (None, Some(e)) => e.action,
            (None, None) => return Err(AppError::invalid("action", "is required")),
        };
        let target = match (&input.target, existing) {
            (Some(t), _) => t.parse::<JobTarget>()?,
            (None, Some(e)) => e.target,
            (None, None) => return Err(AppError::invalid("target", "is required")),
        };
        let target_id = match &input.target_id {
            Some(t) if t.trim().is_empty() => None,
            Some(t) => Some(t.trim().to_owned()),
            None => existing.and_then(|e| e.target_id.clone()),
        };
        match (target, &target_id) {
            (JobTarget::Token, Some(id)) => {
                let t = token::Entity::find_by_id(id.clone())
                    .one(&self.db)
                    .await
                    .map_err(db_error)?
                    .ok_or_else(|| AppError::invalid("target_id", "no token has this id"))?;
                if action == JobAction::ResetClientCredentials && t.flow != Flow::ClientCredentials
                {
                    return Err(AppError::invalid(
                        "target_id",
                        "Reset Client Credentials applies to Client Credentials tokens only",
                    ));
                }
            }
            (JobTarget::Provider | JobTarget::ClientCredentials, Some(id)) => {
                provider::Entity::find_by_id(id.clone())
                    .one(&self.db)
                    .await
                    .map_err(db_error)?
                    .ok_or_else(|| AppError::invalid("target_id", "no provider has this id"))?;
            }
            (JobTarget::ClientCredentials, None) => {}
            (JobTarget::Token | JobTarget::Provider, None) => {
                return Err(AppError::invalid(
                    "target_id",
                    format!("is required for target {target}"),
                ));
            }
        }
        // The schedule: a new one replaces both fields.
        let (every, cron) = if input.every_minutes.is_some() || input.cron.is_some() {
            (input.every_minutes, input.cron.clone())
        } else {
            (
                existing.and_then(|e| e.every_minutes.map(i64::from)),
                existing.and_then(|e| e.cron.clone()),
            )
        };
        let cron = cron.filter(|c| !c.trim().is_empty());
        let when = When::parse(every, cron.as_deref())?;
        let paused = input
            .paused
            .or_else(|| existing.map(|e| e.paused))
            .unwrap_or(false);
        let now = self.now();
        let schedule_changed = existing.is_none_or(|e| {
            e.every_minutes.map(i64::from) != every || e.cron != cron || e.paused != paused
        });
        active.name = Set(name);
        active.action = Set(action);
        active.target = Set(target);
        active.target_id = Set(target_id);
        active.every_minutes = Set(every.map(|n| n as i32));
        active.cron = Set(cron.map(|c| c.trim().to_owned()));
        active.paused = Set(paused);
        if schedule_changed {
            active.next_run_at = Set(if paused { None } else { when.next_after(now) });
        }
        active.updated_at = Set(now);
        Ok(())
    }

    /// Creates a job.
    pub async fn create(
        &self,
        caller: &Caller,
        input: JobInput,
        addr: Option<String>,
    ) -> Result<JobView, AppError> {
        let result = async {
            Self::admin(caller)?;
            let now = self.now();
            let mut active = job::ActiveModel {
                id: Set(uuid::Uuid::new_v4().to_string()),
                created_by: Set(caller.user.email.clone()),
                created_at: Set(now),
                last_run_at: Set(None),
                lease_owner: Set(None),
                lease_until: Set(None),
                ..Default::default()
            };
            self.apply(&mut active, None, &input).await?;
            let j = active.insert(&self.db).await.map_err(db_error)?;
            self.view_one(j).await
        }
        .await;
        let id = result.as_ref().ok().map(|j| j.id.clone());
        self.audited(caller.actor(), addr, "job.create", id, result)
            .await
    }

    /// Changes a job.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        input: JobInput,
        addr: Option<String>,
    ) -> Result<JobView, AppError> {
        let result = async {
            Self::admin(caller)?;
            let existing = self.find(id).await?;
            let mut active: job::ActiveModel = existing.clone().into();
            self.apply(&mut active, Some(&existing), &input).await?;
            let j = active.update(&self.db).await.map_err(db_error)?;
            self.view_one(j).await
        }
        .await;
        self.audited(
            caller.actor(),
            addr,
            "job.update",
            Some(id.to_owned()),
            result,
        )
        .await
    }

    /// Deletes a job and its runs.
    pub async fn delete(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<(), AppError> {
        let result = async {
            Self::admin(caller)?;
            self.find(id).await?;
            job_run::Entity::delete_many()
                .filter(job_run::Column::JobId.eq(id))
                .exec(&self.db)
                .await
                .map_err(db_error)?;
            job::Entity::delete_by_id(id.to_owned())
                .exec(&self.db)
                .await
                .map_err(db_error)?;
            Ok(())
        }
        .await;
        self.audited(
            caller.actor(),
            addr,
            "job.delete",
            Some(id.to_owned()),
            result,
        )
        .await
    }

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
