//! Job definitions: listed, shown, created, edited and deleted by admins,
//! with the names of their targets.

use crate::db::db_error;
use std::collections::{HashMap, HashSet};

use app::error::AppError;
use app::jobs::{JobAction, JobDetail, JobInput, JobTarget, JobView};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};

use super::runs::run_view;
use super::{Jobs, When};
use crate::account::ops::rfc3339;
use crate::auth::Caller;
use crate::db::entity::{job, job_run, provider, token};
use crate::tokens::Flow;

/// Runs listed with a job.
const RECENT_RUNS: u64 = 20;

impl Jobs {
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
}
