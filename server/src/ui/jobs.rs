//! The jobs and notifications screens' service: the same operations the
//! REST API uses, for the caller of the request.

use app::error::AppError;
use app::jobs::{
    JobDetail, JobInput, JobRunView, JobView, JobsService, Notification, NotificationPage,
};
use leptos::server_fn::http_export::request::Parts;

use crate::http::caller::Authenticated;
use crate::schedule::jobs::Jobs;
use crate::startup::Instance;

/// Notifications shown per page.
const PAGE: u64 = 50;

/// The jobs and notifications screens' data and actions: the same
/// operations the REST API uses.
pub struct JobsFacade {
    instance: Instance,
}

impl JobsFacade {
    /// Wraps the instance.
    pub fn new(instance: Instance) -> Self {
        Self { instance }
    }

    fn jobs(&self) -> Jobs {
        Jobs::new(self.instance.tokens.clone())
    }
}

#[async_trait::async_trait]
impl JobsService for JobsFacade {
    async fn list(&self, parts: &Parts) -> Result<Vec<JobView>, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        self.jobs().list(&caller).await
    }

    async fn get(&self, parts: &Parts, id: String) -> Result<JobDetail, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        self.jobs().get(&caller, &id).await
    }

    async fn create(&self, parts: &Parts, input: JobInput) -> Result<JobView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.jobs().create(&caller, input, addr).await
    }

    async fn update(
        &self,
        parts: &Parts,
        id: String,
        input: JobInput,
    ) -> Result<JobView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.jobs().update(&caller, &id, input, addr).await
    }

    async fn delete(&self, parts: &Parts, id: String) -> Result<(), AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.jobs().delete(&caller, &id, addr).await
    }

    async fn run(&self, parts: &Parts, id: String) -> Result<JobRunView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.jobs().run_now(&caller, &id, addr).await
    }

    async fn notifications(
        &self,
        parts: &Parts,
        offset: u64,
    ) -> Result<NotificationPage, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        let page = self
            .instance
            .tokens
            .events
            .list(&caller, PAGE, offset)
            .await?;
        Ok(NotificationPage {
            total: page.total,
            items: page
                .items
                .into_iter()
                .map(|e| Notification {
                    id: e.id,
                    kind: e.kind,
                    token_id: e.token_id,
                    job_id: e.job_id,
                    message: e.message,
                    created_at: e.created_at,
                    webhook_status: e.webhook_status,
                })
                .collect(),
        })
    }
}
